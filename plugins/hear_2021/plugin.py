"""The ``hear2021`` suite's hooks: each catalogued task is a source that downloads itself."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hear_2021.catalogue import CATALOGUE, SUITE, CatalogueTask
from hear_runner.api import TaskSource, download_task, hookimpl


def _source(task: CatalogueTask) -> TaskSource:
    def prepare(tasks_dir: Path, scale: str) -> Path:
        return download_task(task, tasks_dir)

    def folder_name(scale: str) -> str:
        return task.folder  # one released folder, whatever the scale

    domain = task.domain or ""  # "" where HEAR publishes no domain (see the catalogue)
    return TaskSource(
        name=task.name,
        suite=SUITE,
        description=f"{task.title} (HEAR 2021, downloaded at 48 kHz)",
        domain=domain,
        embedding_type=task.embedding_type,
        prediction_type=task.prediction_type,
        split_mode=task.split_mode,
        prepare=prepare,
        folder_name=folder_name,
        scales=("full",),
    )


@hookimpl
def hear_register_tasks(register: Callable[[TaskSource], None]) -> None:
    for task in CATALOGUE:
        register(_source(task))
