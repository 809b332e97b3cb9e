"""Task sources: tasks that plugins can write into a tasks directory (generate or download)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hear_runner import plugins
from hear_runner.errors import HearError


@dataclass(frozen=True)
class TaskSource:
    """A task a plugin provides. ``prepare(tasks_dir, scale)`` returns the task folder."""

    name: str
    suite: str
    description: str
    domain: str  # speech | environment | music
    embedding_type: str  # scene | event
    prediction_type: str  # multiclass | multilabel
    split_mode: str  # trainvaltest | new_split_kfold | presplit_kfold
    prepare: Callable[[Path, str], Path]
    folder_name: Callable[[str], str]  # scale -> the task folder's name
    scales: tuple[str, ...] = ("full",)
    plugin: str = ""


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
