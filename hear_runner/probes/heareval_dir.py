"""heareval's embeddings folder: read it for `hear probe`, write it for heareval and its notebooks.

heareval's embedding runner writes, beside copies of ``task_metadata.json``,
``labelvocabulary.csv`` and each ``<split>.json``:

- ``<split>.embeddings.npy``: a raw float32 memmap (no .npy header) of every row;
- ``<split>.embedding-dimensions.json``: ``[n_rows, dim]``;
- ``<split>.target-labels.pkl``: a pickled list, one list of labels per row;
- ``<split>.filename-timestamps.json`` (event tasks): ``[[path, ms], ...]`` per row,
  the file being the path's last part.

Its predictions runner writes ``test.predicted-scores.json``: per test split the
``test_*`` scores, ``validation_score``, ``epoch`` and ``time_in_min``; across folds
``aggregated_scores`` (``<key>_mean``, ``<key>_std``); then ``hparams``,
``postprocessing``, ``score_mode`` and ``embedding_path``.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from hear_runner.embed.split import SplitEmbeddings
from hear_runner.errors import TaskError
from hear_runner.events import reference_events
from hear_runner.files import atomic_directory, atomic_write
from hear_runner.probes.data import ProbeProblem, ProbeSplit
from hear_runner.probes.stage import ProbeOutcome
from hear_runner.tasks.folder import METADATA_FILE, VOCABULARY_FILE, Task

SCORES_FILE = "test.predicted-scores.json"
# heareval's names for the probe settings it reports as hparams.
_HPARAM_NAMES = {"check_every": "check_val_every_n_epoch"}


def is_embeddings_dir(path: Path) -> bool:
    return (path / METADATA_FILE).is_file() and any(path.glob("*.embedding-dimensions.json"))


def read_embeddings_dir(path: Path) -> ProbeProblem:
    """A probe problem from an embeddings folder; embeddings stay memory-mapped on disk."""
    if not path.is_dir():
        raise TaskError(path, "embeddings folder does not exist")
    task = Task(path, audio=False)
    index = {label: i for i, label in enumerate(task.vocabulary)}
    splits = {}
    for name in task.splits:
        dims_path = path / f"{name}.embedding-dimensions.json"
        dims = _read_json(dims_path)
        if not (
            isinstance(dims, list) and len(dims) == 2 and all(isinstance(d, int) for d in dims)
        ):
            raise TaskError(dims_path, "expected [n_rows, dim]")
        rows, dim = dims
        data_path = path / f"{name}.embeddings.npy"
        if not data_path.is_file():
            raise TaskError(data_path, "file is missing")
        if data_path.stat().st_size != rows * dim * 4:
            raise TaskError(
                data_path,
                f"holds {data_path.stat().st_size} bytes; [{rows}, {dim}] float32 needs "
                f"{rows * dim * 4}",
            )
        embeddings = np.memmap(data_path, dtype=np.float32, mode="r", shape=(rows, dim))
        targets = _read_targets(path / f"{name}.target-labels.pkl", rows, index)
        split = ProbeSplit(name, embeddings, targets)
        if task.metadata.embedding_type == "event":
            _read_frames(path / f"{name}.filename-timestamps.json", rows, split)
            split.reference = reference_events(task, name)
        splits[name] = split
    problem = ProbeProblem(path, task.metadata, task.vocabulary, task.folds, splits)
    problem.check()
    return problem


def write_embeddings_dir(task: Task, embedded: dict[str, SplitEmbeddings], out: Path) -> Path:
    """Write ``out`` (replaced whole, atomically) as heareval's embedding runner would."""
    with atomic_directory(out) as staging:
        for name in (METADATA_FILE, VOCABULARY_FILE, *(f"{s}.json" for s in task.splits)):
            shutil.copyfile(task.path / name, staging / name)
        metadata = json.loads((staging / METADATA_FILE).read_text())
        if "splits" not in metadata:  # heareval's predictions runner reads it
            metadata["splits"] = list(task.splits)
            (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
        problem = ProbeProblem.from_task(task, embedded)
        for name, split in problem.splits.items():
            data = np.ascontiguousarray(split.embeddings, dtype=np.float32)
            data.tofile(staging / f"{name}.embeddings.npy")
            (staging / f"{name}.embedding-dimensions.json").write_text(json.dumps(data.shape))
            labels = [[problem.labels[i] for i in np.flatnonzero(row)] for row in split.targets]
            with (staging / f"{name}.target-labels.pkl").open("wb") as handle:
                pickle.dump(labels, handle)
            if problem.event:
                rows = [
                    [f"{name}/{split.files[c]}", float(t)]
                    for c, t in zip(split.frame_clip, split.frame_ms, strict=True)
                ]
                (staging / f"{name}.filename-timestamps.json").write_text(json.dumps(rows))
    return out


def predicted_scores(problem: ProbeProblem, outcome: ProbeOutcome) -> dict[str, Any]:
    """heareval's ``test.predicted-scores.json`` content, from the first seed's folds."""
    by_loss = outcome.selection_metric == "validation loss"
    results: dict[str, Any] = {}
    for fold in (f for f in outcome.folds if f.seed == outcome.seeds[0]):
        entry: dict[str, float] = {"test_loss": fold.losses.get("test", float("nan"))}
        entry["test_score"] = fold.scores["test"][outcome.primary]
        for metric, value in fold.scores["test"].items():
            entry[f"test_{metric}"] = value
            for sub, sub_value in fold.details.get("test", {}).get(metric, {}).items():
                entry[f"test_{metric}_{sub}"] = float(sub_value)
        entry["validation_score"] = (
            -fold.valid_selection_score if by_loss else fold.valid_selection_score
        )
        entry["epoch"] = max(fold.best_epoch - 1, 0)  # heareval counts epochs from 0
        entry["time_in_min"] = fold.probe_seconds / 60
        results[fold.test] = entry
    if len(results) > 1:
        keys = next(iter(results.values())).keys()
        with np.errstate(invalid="ignore"):  # an infinite d' has a NaN spread, as in heareval
            results["aggregated_scores"] = {
                f"{key}_{stat}": float(fn([r[key] for r in results.values()]))
                for key in keys
                for stat, fn in (("mean", np.mean), ("std", lambda v: np.std(v, ddof=1)))
            }
    first = outcome.folds[0]
    postprocessing = first.details.get("postprocessing")
    results.update(
        {
            "hparams": {_HPARAM_NAMES.get(k, k): v for k, v in outcome.config.items()},
            "postprocessing": [[k, v] for k, v in sorted(postprocessing.items())]
            if postprocessing
            else [],
            "score_mode": "min" if by_loss else "max",
            "embedding_path": str(problem.source),
            "probe_mode": outcome.mode,
            "seeds": outcome.seeds,
            "grid": outcome.grid,  # what each point tried on the first fold scored, and its epochs
        }
    )
    return results


def write_predicted_scores(problem: ProbeProblem, outcome: ProbeOutcome) -> Path:
    path = problem.source / SCORES_FILE
    atomic_write(path, json.dumps(predicted_scores(problem, outcome), indent=4))
    return path


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise TaskError(path, "file is missing") from None
    except json.JSONDecodeError as e:
        raise TaskError(path, f"not valid JSON (line {e.lineno}): {e.msg}") from None


def _read_targets(path: Path, rows: int, index: dict[str, int]) -> np.ndarray:
    """Multi-hot targets from heareval's pickled per-row label lists (a file heareval wrote)."""
    try:
        with path.open("rb") as handle:
            labels = pickle.load(handle)  # heareval's own format: trust it as heareval does
    except FileNotFoundError:
        raise TaskError(path, "file is missing") from None
    except (pickle.UnpicklingError, EOFError) as e:
        raise TaskError(path, f"not a readable pickle: {e}") from None
    if not isinstance(labels, list) or len(labels) != rows:
        got = len(labels) if isinstance(labels, list) else type(labels).__name__
        raise TaskError(path, f"expected a list of {rows} label lists, got {got}")
    targets = np.zeros((rows, len(index)), np.float32)
    for row, row_labels in enumerate(labels):
        for label in row_labels:
            if str(label) not in index:
                raise TaskError(path, f"row {row}: label {label!r} is not in {VOCABULARY_FILE}")
            targets[row, index[str(label)]] = 1.0
    return targets


def _read_frames(path: Path, rows: int, split: ProbeSplit) -> None:
    """Each row's file and time, from ``[[path, ms], ...]``."""
    data = _read_json(path)
    if not isinstance(data, list) or len(data) != rows:
        raise TaskError(path, f"expected {rows} [file, timestamp] pairs")
    clip_of: dict[str, int] = {}
    clips = np.empty(rows, np.int64)
    times = np.empty(rows, np.float64)
    for row, item in enumerate(data):
        try:
            slug, ms = item
            times[row] = float(ms)
        except (TypeError, ValueError):
            raise TaskError(path, f"row {row}: expected [file, timestamp]") from None
        clips[row] = clip_of.setdefault(Path(str(slug)).name, len(clip_of))
    split.files = list(clip_of)
    split.frame_clip = clips
    split.frame_ms = times
