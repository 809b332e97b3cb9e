"""One result record per (model, task) run, with what is needed to trust and redo it."""

from __future__ import annotations

import os
import platform
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, PrivateAttr

from runner import __version__
from runner.contract.wire import CONTRACT_VERSION
from runner.results.predictions import FoldPredictions, predictions_path, save_predictions


class ModelInfo(BaseModel):
    name: str  # the image or module as the user named it
    kind: str  # image | module
    options: dict[str, Any] = {}
    max_clip_seconds: float | None = None  # longer clips were embedded in chunks
    sample_rate: int
    scene_embedding_size: int
    timestamp_embedding_size: int
    engine: dict[str, Any] = {}  # image id and digests, sandbox, hello, versions


class TaskInfo(BaseModel):
    name: str  # the folder name, as heareval identifies tasks
    task_name: str
    version: str
    mode: str | None
    path: str
    content_hash: str
    embedding_type: str
    prediction_type: str
    split_mode: str
    clips: dict[str, int]
    source_sample_rate: int


class ProbeInfo(BaseModel):
    mode: str = "fast"  # fast | faithful | linear
    seeds: list[int] = [42]
    config: dict[str, Any]  # the configuration used on every fold (the grid's best)
    selection_metric: str
    grid: list[dict[str, Any]] = []  # each point tried on the first fold, its validation score
    device: str = "cpu"


class FoldResult(BaseModel):
    """One train/valid/test arrangement: for k-fold tasks, one per fold."""

    fold: str
    seed: int = 42
    train: list[str]
    valid: str
    test: str
    scores: dict[str, dict[str, float]]  # "valid" | "test" -> metric -> value
    losses: dict[str, float] = {}  # "valid" | "test" -> the probe's loss (cross-entropy or BCE)
    # Event tasks: the chosen post-processing and each metric's sub-scores per role.
    details: dict[str, Any] = {}
    valid_selection_score: float = float("nan")  # what the probe maximized on validation
    best_epoch: int
    epochs_trained: int
    probe_seconds: float


class RunRecord(BaseModel):
    """Scores under heareval's metric names.

    ``scores`` holds each metric's mean over folds (one fold for train/valid/test
    tasks) and seeds; ``test_score`` is the primary metric's, ``test_score_std`` its
    sample standard deviation over folds (None with one fold), ``seed_scores`` the
    primary test score of each seed and ``seed_std`` their sample standard deviation.
    """

    runner_version: str = __version__
    contract_version: int = CONTRACT_VERSION
    created: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    host: dict[str, Any] = Field(
        default_factory=lambda: {
            "platform": platform.platform(),
            "python": platform.python_version(),
        }
    )
    model: ModelInfo
    task: TaskInfo
    probe: ProbeInfo
    primary_metric: str
    test_score: float
    test_score_std: float | None = None
    seed_scores: list[float] = []
    seed_std: float | None = None
    scores: dict[str, dict[str, float]]  # "valid" | "test" -> metric -> mean over folds
    folds: list[FoldResult]
    timings: dict[str, float]  # seconds per stage
    predictions_file: str | None = None  # each fold's test predictions, beside this record
    _predictions: tuple[list[str], list[FoldPredictions]] | None = PrivateAttr(default=None)

    def keep_predictions(self, labels: list[str], folds: list[FoldPredictions]) -> None:
        """Have :meth:`write` save these test predictions beside the record."""
        self._predictions = (labels, folds)

    def path_in(self, results_dir: Path) -> Path:
        return results_dir / _slug(self.model.name) / f"{self.task.name}.json"

    def write(self, results_dir: Path) -> Path:
        """Write atomically: a reader never sees half a record."""
        path = self.path_in(results_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        if self._predictions is not None:
            saved = save_predictions(predictions_path(path), *self._predictions)
            self.predictions_file = saved.name
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            handle.write(self.model_dump_json(indent=2))
        os.replace(tmp, path)
        return path


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("_") or "model"
