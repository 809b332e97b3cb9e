"""One result record per (model, task) run, with what is needed to trust and redo it."""

from __future__ import annotations

import functools
import json
import os
import platform
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from hear_runner import __version__
from hear_runner.contract.wire import CONTRACT_VERSION
from hear_runner.errors import first_field_error
from hear_runner.files import atomic_group, atomic_write
from hear_runner.names import slug
from hear_runner.results.predictions import FoldPredictions, predictions_path, save_predictions

# heareval's test.predicted-scores.json for the record's run goes in a folder per (model,
# task) beside the record: RESULTS/<model>/<task>/test.predicted-scores.json, the path
# heareval's runner writes under EMBEDDINGS_DIR, so scripts that collect its scores by
# <dir>/<model>/<task>/test.predicted-scores.json read a results folder as they are.
HEAREVAL_SCORES = "test.predicted-scores.json"


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
    grid: list[dict[str, Any]] = []  # each point tried on the first fold: score and epochs
    device: str = "cpu"
    # trainings loaded from a stopped run's saved progress (the stage's time is then this
    # run's; each fold's probe_seconds stays its own training's)
    resumed: int = 0
    # trainings that went on from a stopped run's state part way: the epoch each went on from
    continued: list[int] = []

    @property
    def label(self) -> str:
        return probe_label(self.mode, self.config)


def probe_label(mode: str, config: dict[str, Any]) -> str:
    """The mode, and the fast probe's precision where it is not float32: such a probe's
    scores and times are not float32's, and every table shows it."""
    precision = config.get("precision", "float32")
    return mode if precision == "float32" else f"{mode} {precision}"


def _none_as_nan(value: Any) -> Any:
    """Scores as records before Infinity/NaN were kept wrote them: null for inf or NaN."""
    if isinstance(value, dict):
        return {k: _none_as_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_none_as_nan(v) for v in value]
    return float("nan") if value is None else value


class FoldResult(BaseModel):
    """One train/valid/test arrangement: for k-fold tasks, one per fold."""

    model_config = ConfigDict(ser_json_inf_nan="constants")

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

    _scores_nan = field_validator("scores", mode="before")(_none_as_nan)


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
    host: dict[str, Any] = Field(default_factory=lambda: host_info())
    model: ModelInfo
    task: TaskInfo
    probe: ProbeInfo
    primary_metric: str
    test_score: float
    test_score_std: float | None = None
    # Percentile bootstrap interval of test_score over test clips (hear_runner.results.stats),
    # and how it was drawn (resamples, seed, level, method, seconds).
    test_score_ci: tuple[float, float] | None = None
    bootstrap: dict[str, Any] | None = None
    seed_scores: list[float] = []
    seed_std: float | None = None
    scores: dict[str, dict[str, float]]  # "valid" | "test" -> metric -> mean over folds
    folds: list[FoldResult]
    timings: dict[str, float]  # seconds per stage
    predictions_file: str | None = None  # each fold's test predictions, beside this record
    heareval_scores_file: str | None = None  # <task>/test.predicted-scores.json (heareval's)
    _predictions: tuple[list[str], list[FoldPredictions]] | None = PrivateAttr(default=None)
    _heareval_scores: dict[str, Any] | None = PrivateAttr(default=None)

    # inf and NaN are real scores (d_prime of a perfect label, AUC of an absent one): kept
    # as JSON's Infinity/NaN constants, as Python's json module (and heareval) writes them.
    model_config = ConfigDict(ser_json_inf_nan="constants")
    _scores_nan = field_validator("scores", "test_score", "seed_scores", mode="before")(
        _none_as_nan
    )

    def keep_predictions(self, labels: list[str], folds: list[FoldPredictions]) -> None:
        """Have :meth:`write` save these test predictions beside the record."""
        self._predictions = (labels, folds)

    def keep_heareval_scores(self, scores: dict[str, Any]) -> None:
        """Have :meth:`write` save heareval's ``test.predicted-scores.json`` content beside it."""
        self._heareval_scores = scores

    def path_in(self, results_dir: Path) -> Path:
        return model_folder(results_dir, self.model.name) / f"{self.task.name}.json"

    def write(self, results_dir: Path) -> Path:
        """Write the record and its files so that no failure leaves one without the other.

        The order: first every file's bytes go to a temporary name beside it (the
        predictions, heareval's scores, then the record): a full disk or Ctrl-C fails here,
        the temporary files are removed, and nothing is left, an earlier record and its
        files at the same place staying as they were. Then each is renamed into place (a
        rename needs no space), the record last; if a rename fails, the files already
        renamed are removed. So a reader never sees half a file, nor a predictions or
        score file without its record.
        """
        path = self.path_in(results_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_group() as group:
            if self._predictions is not None:
                target, predictions = predictions_path(path), self._predictions
                group.stage(target, lambda t: save_predictions(t, *predictions))
                self.predictions_file = target.name
            if self._heareval_scores is not None:
                folder = path.with_name(path.name.removesuffix(".json"))
                folder.mkdir(exist_ok=True)
                target, text = folder / HEAREVAL_SCORES, json.dumps(self._heareval_scores, indent=4)
                group.stage(target, lambda t: atomic_write(t, text))
                self.heareval_scores_file = f"{folder.name}/{HEAREVAL_SCORES}"
            record = self.model_dump_json(indent=2)
            group.stage(path, lambda t: atomic_write(t, record))
        return path


def host_info() -> dict[str, Any]:
    """Where the probe ran: platform, CPU, memory, GPUs, torch. Measured once per process."""
    return json.loads(json.dumps(_host_info()))  # a copy the caller may change


@functools.cache
def _host_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "hostname": platform.node(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_bytes": _memory_bytes(),
    }
    info.update(_torch_info())
    return info


def _cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware", "cpu model"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def _torch_info() -> dict[str, Any]:
    """torch's version and the CUDA GPUs it sees (the probe's devices)."""
    try:
        import torch
    except ImportError:
        return {"torch": None, "gpus": []}
    gpus = []
    try:
        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                props = torch.cuda.get_device_properties(i)
                gpus.append({"name": props.name, "memory_bytes": int(props.total_memory)})
    except Exception:  # a broken driver must not stop a record being written
        pass
    return {"torch": torch.__version__, "cuda": torch.version.cuda, "gpus": gpus}


def find_records(results_dir: Path) -> Iterator[tuple[Path, RunRecord | str]]:
    """Every result record under ``results_dir`` (any depth), in path order.

    Sidecars (predictions, heareval's score files), hidden files and JSON that is not a
    record (no ``test_score`` and ``model``: a run manifest, say) are passed over; a file
    that is not readable JSON, or a record that does not validate, comes with the reason
    (one line naming the field at fault) in place of the record.
    """
    for path in sorted(results_dir.rglob("*.json")):
        if path.name.startswith(".") or path.name == HEAREVAL_SCORES:
            continue
        try:
            raw = json.loads(path.read_text())
        except OSError as e:
            yield path, f"not readable ({e.strerror})"
            continue
        except ValueError as e:
            yield path, f"not JSON ({e})"
            continue
        if not (isinstance(raw, dict) and "test_score" in raw and "model" in raw):
            continue
        try:
            yield path, RunRecord.model_validate(raw)
        except ValidationError as e:
            yield path, f"not a result record: {first_field_error(e)}"


def model_folder(results_dir: Path, model_name: str) -> Path:
    """Where a model's records (and its tasks' unfinished probe stages) live."""
    return results_dir / slug(model_name, default="model")
