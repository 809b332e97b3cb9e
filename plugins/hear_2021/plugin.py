"""The ``hear2021`` suite's hooks: each catalogued task is a source that downloads itself;
the ``hear2021-sized`` suite: a synthetic copy of each at its released size; and the
published HEAR 2021 leaderboard as reference results (``--reference hear2021``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hear_2021.catalogue import CATALOGUE, SUITE, CatalogueTask
from hear_runner.api import ReferenceResults, TaskSource, download_task, hookimpl

SIZED_SUITE = "hear2021-sized"  # hear_2021.sized.SUITE, known without importing numpy


def _source(task: CatalogueTask) -> TaskSource:
    def prepare(tasks_dir: Path, scale: str) -> Path:
        return download_task(task, tasks_dir)

    def folder_name(scale: str) -> str:
        return task.folder  # one released folder, whatever the scale

    return TaskSource(
        name=task.name,
        suite=SUITE,
        description=f"{task.title} (HEAR 2021, downloaded at 48 kHz)",
        prepare=prepare,
        folder_name=folder_name,
        scales=("full",),
        **_shape(task),
    )


def _shape(task: CatalogueTask) -> dict[str, Any]:
    """The listing fields a released task and its synthetic copy share."""
    return {
        "domain": task.domain or "",  # "" where HEAR publishes no domain (see the catalogue)
        "embedding_type": task.embedding_type,
        "prediction_type": task.prediction_type,
        "split_mode": task.split_mode,
    }


def _sized_source(task: CatalogueTask) -> TaskSource:
    """The generator is imported only when a sized task is prepared or named."""

    def prepare(tasks_dir: Path, scale: str) -> Path:
        from hear_2021 import sized

        return sized.prepare(task, tasks_dir, scale)

    def folder_name(scale: str) -> str:
        from hear_2021 import sized

        return sized.folder_name(task, scale)

    only_fold0 = ", its fold0 folder" if task.name == "beehive_states" else ""
    return TaskSource(
        name=f"sized_{task.name}",
        suite=SIZED_SUITE,
        description=f"{task.title}: synthetic tones at the released size{only_fold0} "
        "(--scale F for a fraction)",
        prepare=prepare,
        folder_name=folder_name,
        scales=("full",),
        scale_factor=True,
        **_shape(task),
    )


@hookimpl
def hear_register_tasks(register: Callable[[TaskSource], None]) -> None:
    for task in CATALOGUE:
        register(_source(task))
    for task in CATALOGUE:
        register(_sized_source(task))


@hookimpl
def hear_register_reference_results(register: Callable[[ReferenceResults], None]) -> None:
    from hear_2021 import reference

    register(reference.load())
