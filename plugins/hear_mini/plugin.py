"""The `mini` suite's hooks: tasks generated offline from material installable here.

Each task module exposes TASK_NAME, SCALES, folder_name(scale) and
prepare(tasks_dir, scale); it is imported only when its task is prepared.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hear_runner.api import EmbeddingType, PredictionType, SplitMode, TaskSource, hookimpl

# module, description, domain, embedding type, prediction type, split mode
_TASKS: list[tuple[str, str, str, EmbeddingType, PredictionType, SplitMode]] = [
    ("spoken_digits", "Spoken digits zero-nine by espeak-ng voices; test voices unseen in training",
     "speech", "scene", "multiclass", "trainvaltest"),
    ("spoken_language", "Which of ten languages a phrase of numbers is spoken in",
     "speech", "scene", "multiclass", "trainvaltest"),
    ("sound_events", "Desktop event sounds (shutter, message, error...) to detect in time",
     "environment", "event", "multilabel", "trainvaltest"),
    ("sound_mix", "Which desktop sounds (message, error, ringtone...) a 2 s mix holds",
     "environment", "scene", "multilabel", "new_split_kfold"),
    ("pitch", "Which note (MIDI 48-83) a GM instrument plays; test instruments unseen",
     "music", "scene", "multiclass", "presplit_kfold"),
    ("drums", "Which drum (kick, snare, hi-hat, tom, crash, ride, clap) a stroke is; folds by kit",
     "music", "scene", "multiclass", "presplit_kfold"),
]  # fmt: skip


def _module(name: str) -> Any:
    return importlib.import_module(f"hear_mini.{name}")


def _source(
    module: str,
    description: str,
    domain: str,
    embedding: EmbeddingType,
    prediction: PredictionType,
    split: SplitMode,
) -> TaskSource:
    def prepare(tasks_dir: Path, scale: str) -> Path:
        return Path(_module(module).prepare(tasks_dir, scale))

    def folder_name(scale: str) -> str:
        return str(_module(module).folder_name(scale))

    return TaskSource(
        name=f"mini_{module}",
        suite="mini",
        description=description,
        domain=domain,
        embedding_type=embedding,
        prediction_type=prediction,
        split_mode=split,
        prepare=prepare,
        folder_name=folder_name,
        scales=("smoke", "full"),
    )


@hookimpl
def hear_register_tasks(register: Callable[[TaskSource], None]) -> None:
    for task in _TASKS:
        register(_source(*task))
