"""Each fold's test predictions, kept beside the result record.

Scores alone cannot say whether a difference between two models is real, nor
show what a model gets wrong: bootstrap intervals, paired comparisons,
confusion matrices and event timelines all need the predictions per test clip.
They are written as ``<record>.predictions.npz`` (arrays, plus a JSON entry for
names and events) next to the record's JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from hear_runner.files import atomic_save

SUFFIX = ".predictions.npz"


@dataclass
class FoldPredictions:
    """One fold's (and seed's) test split: scene scores per clip, or events per file."""

    fold: str
    seed: int
    files: list[str]
    # Scene tasks: multi-hot targets (n_clips, n_labels) and the probe's scores for them.
    targets: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.uint8))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    # Event tasks: predicted (post-processed) and true events, per file.
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    reference: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def predictions_path(record_path: Path) -> Path:
    return record_path.with_name(record_path.name.removesuffix(".json") + SUFFIX)


def save_predictions(path: Path, labels: list[str], folds: list[FoldPredictions]) -> Path:
    """Write atomically, as the record is."""
    meta = {
        "labels": labels,
        "folds": [
            {"fold": f.fold, "seed": f.seed, "files": f.files,
             "events": f.events, "reference": f.reference}
            for f in folds
        ],
    }  # fmt: skip
    arrays: dict[str, Any] = {"meta": np.array(json.dumps(meta))}
    for i, f in enumerate(folds):
        arrays[f"targets_{i}"] = f.targets.astype(np.uint8)
        arrays[f"scores_{i}"] = f.scores.astype(np.float32)
    atomic_save(path, lambda handle: np.savez_compressed(handle, **arrays))
    return path


def load_predictions(path: Path | IO[bytes]) -> tuple[list[str], list[FoldPredictions]]:
    """The labels and every fold's predictions from a ``.predictions.npz`` (a file, or its
    bytes as read from a submission pack)."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        folds = [
            FoldPredictions(
                fold=m["fold"],
                seed=m["seed"],
                files=m["files"],
                targets=data[f"targets_{i}"],
                scores=data[f"scores_{i}"],
                events=m["events"],
                reference=m["reference"],
            )
            for i, m in enumerate(meta["folds"])
        ]
    return meta["labels"], folds
