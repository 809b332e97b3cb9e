"""What the report reads: result records (as JSON, read defensively) and their predictions."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hear_runner.results.predictions import FoldPredictions, load_predictions


@dataclass
class Entry:
    """One (model, task) record, with the fields the report shows."""

    path: Path
    raw: dict[str, Any]
    model: str
    task: str
    metric: str
    score: float
    fold_std: float | None
    ci: tuple[float, float] | None  # the record's test_score_ci, where it has one
    ci_level: float | None
    seeds: list[int]
    embedding_type: str
    prediction_type: str
    _predictions: tuple[list[str], list[FoldPredictions]] | None = field(default=None, repr=False)

    @property
    def model_info(self) -> dict[str, Any]:
        return _dict(self.raw.get("model"))

    @property
    def task_info(self) -> dict[str, Any]:
        return _dict(self.raw.get("task"))

    @property
    def engine(self) -> dict[str, Any]:
        return _dict(self.model_info.get("engine"))

    @property
    def timings(self) -> dict[str, Any]:
        return _dict(self.raw.get("timings"))

    def seconds_per_audio_hour(self) -> tuple[float, str] | None:
        """Embedding wall seconds per hour of audio, and how it was measured.

        From this run's wall time (``embed_wall``, ``audio_per_second``) when it embedded
        anything; else from the model-call seconds the embedding store kept.
        """
        t = self.timings
        rate = _number(t.get("audio_per_second"))
        if rate and rate > 0:
            return 3600.0 / rate, "wall time of this run's embedding"
        wall, audio = _number(t.get("embed_wall")), _number(t.get("audio_seconds"))
        if wall and audio:
            return 3600.0 * wall / audio, "wall time of this run's embedding"
        calls = _number(t.get("embed"))
        if calls and audio:
            return 3600.0 * calls / audio, "model-call time kept in the embedding store"
        return None

    def predictions(self) -> tuple[list[str], list[FoldPredictions]] | None:
        """The record's test predictions (the ``.predictions.npz`` beside it), if any."""
        if self._predictions is None:
            name = self.raw.get("predictions_file")
            if not isinstance(name, str):
                return None
            try:
                self._predictions = load_predictions(self.path.parent / name)
            except (OSError, ValueError, KeyError):
                return None
        return self._predictions


def load_entries(results_dir: Path) -> tuple[list[Entry], list[str]]:
    """Every record in ``results_dir/<model>/<task>.json``; and what was skipped, and why."""
    entries, skipped = [], []
    for path in sorted(results_dir.glob("*/*.json")):
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            skipped.append(f"{path}: not readable JSON ({e})")
            continue
        if not (isinstance(raw, dict) and "test_score" in raw and "model" in raw):
            continue  # a run manifest or another file: not a record
        try:
            entries.append(_entry(path, raw))
        except (KeyError, TypeError, ValueError) as e:
            skipped.append(f"{path}: not a result record ({e})")
    return entries, skipped


def _entry(path: Path, raw: dict[str, Any]) -> Entry:
    task = _dict(raw["task"])
    ci, level = read_interval(raw.get("test_score_ci"))
    if level is None:  # the bootstrap's settings, where the record keeps them apart
        level = _number(_dict(raw.get("bootstrap")).get("level"))
    probe = _dict(raw.get("probe"))
    return Entry(
        path=path,
        raw=raw,
        model=str(_dict(raw["model"])["name"]),
        task=str(task["name"]),
        metric=str(raw.get("primary_metric", "score")),
        score=_or_nan(_number(raw["test_score"])),  # NaN is written as null
        fold_std=_number(raw.get("test_score_std")),
        ci=ci,
        ci_level=level,
        seeds=[int(s) for s in probe.get("seeds", []) if isinstance(s, int)],
        embedding_type=str(task.get("embedding_type", "scene")),
        prediction_type=str(task.get("prediction_type", "")),
    )


def read_interval(value: Any) -> tuple[tuple[float, float] | None, float | None]:
    """A confidence interval however a record spells it: ``[lo, hi]`` or an object with
    ``low``/``high`` (or ``lo``/``hi``, ``lower``/``upper``) and maybe a ``level``."""
    level = None
    if isinstance(value, dict):
        level = _number(value.get("level", value.get("confidence")))
        keys = next(
            (k for k in (("low", "high"), ("lo", "hi"), ("lower", "upper")) if k[0] in value),
            None,
        )
        value = [value[keys[0]], value[keys[1]]] if keys and keys[1] in value else None
    if isinstance(value, list | tuple) and len(value) == 2:
        lo, hi = _number(value[0]), _number(value[1])
        if lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi):
            return (min(lo, hi), max(lo, hi)), level
    return None, level


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None
