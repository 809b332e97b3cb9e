"""Task sources: tasks that plugins can write into a tasks directory (generate or download)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from runner import plugins
from runner.errors import HearError


@dataclass(frozen=True)
class TaskSource:
    """A task a plugin provides. ``prepare(tasks_dir, scale)`` returns the task folder."""

    name: str
    suite: str
    description: str
    domain: str
    prepare: Callable[[Path, str], Path]
    scales: tuple[str, ...] = ("full",)


def task_sources() -> list[TaskSource]:
    return sorted(plugins.collect("hear_register_tasks"), key=lambda s: (s.suite, s.name))


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
