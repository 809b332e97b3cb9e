"""Each mini task's shape, declared once: what the plugin lists and what task_metadata.json says.

The plugin reads these to register the tasks (``hear tasks list``) without importing the
task modules, which pull in numpy, soundfile and the generators; each task module takes
its name, version and metadata header from its shape here, so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hear_runner.api import EmbeddingType, PredictionType, SplitMode, build_folder

SCALES = ("smoke", "full")


@dataclass(frozen=True)
class TaskShape:
    """What a mini task is, as HEAR's task_metadata.json and the task catalogue state it."""

    module: str  # the hear_mini module that generates it
    version: str
    description: str
    domain: str
    embedding_type: EmbeddingType
    prediction_type: PredictionType
    split_mode: SplitMode
    sample_duration: float
    evaluation: tuple[str, ...]
    nfolds: int | None = None  # k-fold split modes only

    @property
    def name(self) -> str:
        return f"mini_{self.module}"

    def folder_name(self, scale: str) -> str:
        return f"{self.name}-{self.version}-{scale}"

    @property
    def folds(self) -> tuple[str, ...]:
        """The k folds' split names (none for trainvaltest)."""
        return tuple(f"fold{i:02d}" for i in range(self.nfolds or 0))

    def check_scale(self, scale: str) -> None:
        if scale not in SCALES:
            raise ValueError(f"unknown scale {scale!r}: expected one of {', '.join(SCALES)}")

    def progress_label(self, scale: str) -> str:
        return f"Preparing {self.name} ({scale})"

    def hashed(self, revision: int, sample_rate: int, **params: Any) -> dict[str, Any]:
        """The generation parameters to hash: the task, its generator's ``revision`` (bumped
        when the audio processing changes), the audio format, and the task's own ``params``."""
        return {
            "task": [self.name, self.version, revision],
            "sample_rate": sample_rate,
            "sample_duration": self.sample_duration,
            **params,
        }

    def prepare(
        self, out_dir: Path, scale: str, digest: str, write: Callable[[Path], None]
    ) -> Path:
        """The task folder at ``scale`` under ``out_dir``: reused if complete for ``digest``,
        else built by ``write(folder)`` under a temporary name and renamed into place."""
        self.check_scale(scale)
        return build_folder(Path(out_dir), self.folder_name(scale), digest, write)

    def metadata(self, scale: str, sample_rate: int, **rest: Any) -> dict[str, Any]:
        """task_metadata.json's content: the shape, then ``rest`` (evaluation_params,
        generator), in hear-preprocess's key order."""
        head: dict[str, Any] = {
            "task_name": self.name,
            "version": self.version,
            "embedding_type": self.embedding_type,
            "prediction_type": self.prediction_type,
            "split_mode": self.split_mode,
        }
        if self.nfolds is not None:
            head["nfolds"] = self.nfolds
        head |= {"sample_duration": self.sample_duration, "evaluation": list(self.evaluation)}
        if "evaluation_params" in rest:
            head["evaluation_params"] = rest.pop("evaluation_params")
        return head | {"mode": scale, "sample_rates": [sample_rate]} | rest


SPOKEN_DIGITS = TaskShape(
    "spoken_digits", "1.0.0",
    "Spoken digits zero-nine by espeak-ng voices; test voices unseen in training",
    "speech", "scene", "multiclass", "trainvaltest", 1.0, ("top1_acc", "mAP"),
)  # fmt: skip
SPOKEN_LANGUAGE = TaskShape(
    "spoken_language", "1.0.0", "Which of ten languages a phrase of numbers is spoken in",
    "speech", "scene", "multiclass", "trainvaltest", 2.0, ("top1_acc", "mAP"),
)  # fmt: skip
SOUND_EVENTS = TaskShape(
    "sound_events", "1.0.0",
    "Desktop event sounds (shutter, message, error...) to detect in time",
    "environment", "event", "multilabel", "trainvaltest", 4.0,
    ("event_onset_200ms_fms", "segment_1s_er"),
)  # fmt: skip
SOUND_MIX = TaskShape(
    "sound_mix", "1.0.0", "Which desktop sounds (message, error, ringtone...) a 2 s mix holds",
    "environment", "scene", "multilabel", "new_split_kfold", 2.0, ("mAP", "d_prime", "aucroc"),
    nfolds=5,
)  # fmt: skip
PITCH = TaskShape(
    "pitch", "1.0.0", "Which note (MIDI 48-83) a GM instrument plays; test instruments unseen",
    "music", "scene", "multiclass", "presplit_kfold", 1.0, ("pitch_acc", "chroma_acc"), nfolds=5,
)  # fmt: skip
DRUMS = TaskShape(
    "drums", "1.0.0",
    "Which drum (kick, snare, hi-hat, tom, crash, ride, clap) a stroke is; folds by kit",
    "music", "scene", "multiclass", "presplit_kfold", 1.0, ("top1_acc", "mAP"), nfolds=5,
)  # fmt: skip

#: In the order ``hear tasks list`` shows them.
SHAPES = (SPOKEN_DIGITS, SPOKEN_LANGUAGE, SOUND_EVENTS, SOUND_MIX, PITCH, DRUMS)
