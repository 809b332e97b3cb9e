"""Task sources: tasks that plugins can write into a tasks directory (generate or download)."""

from __future__ import annotations

from hear_runner import plugins
from hear_runner.errors import HearError
from hear_runner.specs import TaskSource

__all__ = ["TaskSource", "only_sources", "select_sources", "task_sources"]


def task_sources() -> list[TaskSource]:
    """Every registered task, by suite then name; a name registered twice is an error."""
    return sorted(plugins.collect(TaskSource), key=lambda s: (s.suite, s.name))


def select_sources(names: list[str]) -> list[TaskSource]:
    """Sources by task name or suite name; unknown names are an error listing the known ones."""
    sources = task_sources()
    chosen: list[TaskSource] = []
    for name in names:
        matched = [s for s in sources if name in (s.name, s.suite)]
        if not matched:
            known = sorted({s.name for s in sources} | {s.suite for s in sources})
            raise HearError(f"no task or suite named {name!r}; known: {', '.join(known) or 'none'}")
        chosen += [s for s in matched if s not in chosen]
    return chosen


def only_sources(sources: list[TaskSource], only: list[str]) -> list[TaskSource]:
    """The ``sources`` named in ``only``: by task name, or by the name without the prefix its
    suite's names share (``maestro`` for ``sized_maestro``); a name none has is an error."""
    short = {s.name: s.name.removeprefix(_suite_prefix(sources, s.suite)) for s in sources}
    for name in only:
        if name not in short and name not in short.values():
            known = ", ".join(sorted(set(short.values()))) or "none"
            raise HearError(f"--tasks: no task {name!r} among those chosen; known: {known}")
    return [s for s in sources if s.name in only or short[s.name] in only]


def _suite_prefix(sources: list[TaskSource], suite: str) -> str:
    """What every name in ``suite`` starts with, up to and including its last ``_``."""
    names = [s.name for s in sources if s.suite == suite]
    first, last = min(names), max(names)  # the sorted extremes share what all share
    pairs = enumerate(zip(first, last, strict=False))
    shared = next((i for i, (a, b) in pairs if a != b), len(first))
    common = first[:shared]
    return common[: common.rfind("_") + 1]
