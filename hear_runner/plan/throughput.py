"""Measured throughputs shipped with hear-runner: what a plan assumes without a record.

``throughputs.json`` (beside this module; ``$HEAR_THROUGHPUTS`` names another file)::

    {"models": {NAME: {"scene_audio_per_second": float,      audio s embedded per wall s
                       "timestamp_audio_per_second": float,  the same for event tasks
                       "scene_seconds_per_clip": float,      a clip's own cost (optional, 0)
                       "timestamp_seconds_per_clip": float,
                       "start_seconds": float,               starting its server, once a run
                       "scene_embedding_size": int,
                       "timestamp_embedding_size": int,
                       "measured": {"command", "date", "machine", "note"}}},
     "probes": {MODE: {"fixed_seconds": float, "seconds_per_training": float,
                       "seconds_per_unit": float, "measured": {...},
                       "event": {the same four, for event tasks} (optional)}},
     "references": [{"model": NAME, "task_name": str, "embedding_type": str,
                     "clips": int, "audio_seconds": float, "embed_seconds": float,
                     "probes": {MODE: {"trainings": int, "units": float, "seconds": float}},
                     "measured": {...}}]}

NAME is a named model (``hear models list``), or ``default`` for any other. The probe's
cost model, per (model, task)::

    seconds = fixed_seconds + trainings x seconds_per_training + units x seconds_per_unit

trainings = seeds x (grid points + folds - 1), as heareval trains the grid on the first
fold, then the best point on every other fold (1 grid point for ``linear``); units =
trainings x rows x embedding size, with rows the clips (scene tasks) or frames (event
tasks) in one fold's train splits. The per-training term is what a training costs
whatever its size (epochs, validation, early stopping); the per-unit term what grows
with the data. Measured figures are fitted to it (least squares, non-negative).

The cost model cannot know how many epochs a task's trainings run before early stopping
ends them: on the bench's full-size tasks that alone moves a training's time by 2x either
way. So the table also holds ``references``, tasks measured end to end
(``bench/full_size.py``); a plan of a task with a reference scales the reference's own
time by the cost model's ratio of the two tasks' work (see
:mod:`hear_runner.plan.estimate`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hear_runner.errors import HearError, first_field_error

SHIPPED = Path(__file__).with_name("throughputs.json")
DEFAULT_MODEL = "default"


class Measured(BaseModel):
    """Where a figure comes from, so that a reader can redo it."""

    model_config = ConfigDict(extra="forbid")

    command: str
    date: str
    machine: str
    note: str = ""


class ModelThroughput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scene_audio_per_second: float = Field(gt=0)
    timestamp_audio_per_second: float = Field(gt=0)
    start_seconds: float = Field(ge=0)
    scene_embedding_size: int = Field(ge=1)
    timestamp_embedding_size: int = Field(ge=1)
    # What a clip costs whatever its length (reading, resampling, a server call's share):
    # it dominates on one-second clips, so audio seconds alone mis-time short-clip tasks.
    scene_seconds_per_clip: float = Field(default=0.0, ge=0)
    timestamp_seconds_per_clip: float = Field(default=0.0, ge=0)
    measured: Measured

    def audio_per_second(self, embedding_type: str) -> float:
        event = embedding_type == "event"
        return self.timestamp_audio_per_second if event else self.scene_audio_per_second

    def embed_seconds(self, embedding_type: str, clips: float, audio_seconds: float) -> float:
        """clips x seconds per clip + audio seconds / audio seconds per second."""
        event = embedding_type == "event"
        per_clip = self.timestamp_seconds_per_clip if event else self.scene_seconds_per_clip
        return clips * per_clip + audio_seconds / self.audio_per_second(embedding_type)

    def embedding_size(self, embedding_type: str) -> int:
        event = embedding_type == "event"
        return self.timestamp_embedding_size if event else self.scene_embedding_size


class ProbeCost(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fixed_seconds: float = Field(ge=0)  # per (model, task): data, scoring
    seconds_per_training: float = Field(ge=0)
    seconds_per_unit: float = Field(ge=0)  # per training row x embedding size x training
    measured: Measured
    # Event tasks' own terms where they were measured apart: their probes also choose a
    # post-processing setting at every check, and their rows are frames, not clips.
    event: ProbeCost | None = None

    def for_type(self, embedding_type: str) -> ProbeCost:
        """The terms for a task of ``embedding_type``: the event terms where there are any."""
        return self.event if embedding_type == "event" and self.event is not None else self

    def seconds(self, trainings: int, units: float) -> float:
        return (self.fixed_seconds + self.seconds_per_training * trainings
                + self.seconds_per_unit * units)  # fmt: skip


class ProbeRun(BaseModel):
    """A probe run measured on a reference task, in the cost model's units."""

    model_config = ConfigDict(extra="forbid")

    trainings: int = Field(ge=1)
    units: float = Field(ge=0)
    seconds: float = Field(gt=0)


class Reference(BaseModel):
    """A task measured end to end: its size, its embedding time with ``model`` and its
    probe time per mode, on the machine ``measured`` names."""

    model_config = ConfigDict(extra="forbid")

    model: str  # a key of ``models``
    task_name: str  # task_metadata.json's task_name
    embedding_type: str
    clips: int = Field(ge=1)
    audio_seconds: float = Field(gt=0)
    embed_seconds: float | None = Field(default=None, gt=0)
    probes: dict[str, ProbeRun] = {}
    measured: Measured


class Throughputs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: dict[str, ModelThroughput]
    probes: dict[str, ProbeCost]
    references: list[Reference] = []
    path: str = ""  # the file read (set by the loader)

    def model(self, name: str) -> tuple[str, ModelThroughput]:
        """The entry for ``name`` and its key (``default`` when the table has no such model)."""
        key = name if name in self.models else DEFAULT_MODEL
        return key, self.models[key]


def throughputs_path() -> Path:
    return Path(os.environ.get("HEAR_THROUGHPUTS") or SHIPPED)


def load_throughputs(path: Path | None = None) -> Throughputs:
    """The table; a malformed one is one line naming the file and the field at fault."""
    path = path or throughputs_path()
    try:
        raw = json.loads(path.read_text())
    except OSError as e:
        raise HearError(f"{path}: throughputs file not readable ({e.strerror})") from None
    except ValueError as e:
        raise HearError(f"{path}: throughputs file is not valid JSON ({e})") from None
    try:
        table = Throughputs.model_validate(raw)
    except ValidationError as e:
        raise HearError(f"{path}: {first_field_error(e)}") from None
    if DEFAULT_MODEL not in table.models:
        raise HearError(f"{path}: field 'models': needs a {DEFAULT_MODEL!r} entry")
    return table.model_copy(update={"path": str(path)})
