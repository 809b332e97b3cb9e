"""Task sources: tasks that plugins can write into a tasks directory (generate or download)."""

from __future__ import annotations

from hear_runner import plugins
from hear_runner.errors import HearError
from hear_runner.specs import TaskSource

__all__ = ["TaskSource", "select_sources", "task_sources"]


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
