"""The `mini` suite's hooks: tasks generated offline from material installable here.

Each task's shape is declared in hear_mini.shapes; its module, which exposes
prepare(tasks_dir, scale), is imported only when its task is prepared.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hear_mini.shapes import SCALES, SHAPES, TaskShape
from hear_runner.api import TaskSource, hookimpl


def _module(name: str) -> Any:
    return importlib.import_module(f"hear_mini.{name}")


def _source(shape: TaskShape) -> TaskSource:
    def prepare(tasks_dir: Path, scale: str) -> Path:
        return Path(_module(shape.module).prepare(tasks_dir, scale))

    return TaskSource(
        name=shape.name,
        suite="mini",
        description=shape.description,
        domain=shape.domain,
        embedding_type=shape.embedding_type,
        prediction_type=shape.prediction_type,
        split_mode=shape.split_mode,
        prepare=prepare,
        folder_name=shape.folder_name,
        scales=SCALES,
    )


@hookimpl
def hear_register_tasks(register: Callable[[TaskSource], None]) -> None:
    for shape in SHAPES:
        register(_source(shape))
