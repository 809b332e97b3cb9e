"""The `mini` suite's hooks: tasks generated offline from material installable here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from runner.hookspecs import hookimpl
from runner.tasks.sources import TaskSource


def _prepare_spoken_digits(tasks_dir: Path, scale: str) -> Path:
    from hear_mini import spoken_digits

    return spoken_digits.prepare(tasks_dir, scale)


@hookimpl
def hear_register_tasks(register: Callable[[Any], None]) -> None:
    register(
        TaskSource(
            name="mini_spoken_digits",
            suite="mini",
            description="Spoken digits zero-nine by espeak-ng voices; test voices unseen in training",  # noqa: E501
            domain="speech",
            embedding_type="scene",
            prediction_type="multiclass",
            split_mode="trainvaltest",
            prepare=_prepare_spoken_digits,
            folder_name=lambda scale: f"mini_spoken_digits-1.0.0-{scale}",
            scales=("smoke", "full"),
            plugin="mini",
        )
    )
