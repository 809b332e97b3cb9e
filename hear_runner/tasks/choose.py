"""The tasks a run asks for: folders in the tasks directory, else prepared from plugins."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path

from hear_runner.errors import HearError
from hear_runner.tasks.folder import Task, find_tasks, task_folders
from hear_runner.tasks.sources import TaskSource, task_sources

#: The scale `hear tasks prepare` and `hear run --task NAME` generate tasks at, where a task
#: has it; a task with other scales only (a download, a plugin's own clips) uses its first.
DEFAULT_SCALE = "smoke"


def default_scale(source: TaskSource) -> str:
    return DEFAULT_SCALE if DEFAULT_SCALE in source.scales else source.scales[0]


def prepare_sources(
    sources: list[TaskSource], tasks_dir: Path, scale: str | None = None
) -> list[Path]:
    """Write each source's task folder into ``tasks_dir`` (created) at ``scale`` (default:
    each source's :func:`default_scale`); their paths."""
    for source in sources:
        if scale is not None and not source.accepts_scale(scale):
            factor = " or a positive factor" if source.scale_factor else ""
            raise HearError(
                f"task {source.name} has scales {', '.join(source.scales)}{factor}, not {scale!r}"
            )
    tasks_dir.mkdir(parents=True, exist_ok=True)
    return [source.prepare(tasks_dir, scale or default_scale(source)) for source in sources]


def choose_tasks(
    tasks_dir: Path, names: list[str] | None, say: Callable[[str], None] = lambda _: None
) -> list[Task]:
    """Task folders by name; a name no folder has but a plugin's task source does is
    prepared into ``tasks_dir`` first (at its default scale), saying so."""
    chosen: list[str] = []
    for item in resolve_tasks(tasks_dir, names):
        if isinstance(item, str):
            chosen.append(item)
            continue
        scale = default_scale(item)
        say(f"task {item.name} is not in {tasks_dir}: preparing it ({scale}) from plugin "
            f"{item.plugin or item.suite}")  # fmt: skip
        # What the plugin prints (its progress) is not the run's output: stdout may be --json.
        with contextlib.redirect_stdout(sys.stderr):
            path = prepare_sources([item], tasks_dir, scale)[0]
        say(f"{item.name}: {path}")
        chosen.append(path.name)
    return find_tasks(tasks_dir, chosen or None)


def resolve_tasks(tasks_dir: Path, names: list[str] | None) -> list[str | TaskSource]:
    """Each name as a folder name (``find_tasks`` names what is missing), or as the plugin
    task source that would prepare it where ``tasks_dir`` has no folder for it yet."""
    folders = {folder.name for folder in task_folders(tasks_dir)}
    sources = {s.name: s for s in task_sources()}
    chosen: list[str | TaskSource] = []
    for name in names or []:
        source = sources.get(name)
        if name in folders or source is None:
            chosen.append(name)
            continue
        folder = source.folder_name(default_scale(source))
        chosen.append(folder if folder in folders else source)
    return chosen
