"""What the report shows of one record: a view of a :class:`FoundRecord`, as
hear_runner.results.reader found it (the report reads nothing the leaderboard does not)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from hear_runner.errors import HearError
from hear_runner.results.reader import FoundRecord, Predictions
from hear_runner.results.records import RunRecord


@dataclass
class Entry:
    """One (model, task): the newest record of it, with the numbers the plots draw."""

    found: FoundRecord

    @property
    def record(self) -> RunRecord:
        return self.found.record

    @property
    def engine(self) -> dict[str, Any]:
        """How the model was served: image id and digests, or module and interpreter."""
        return self.record.model.engine

    @property
    def model(self) -> str:
        return self.record.model.name

    @property
    def task(self) -> str:
        return self.record.task.name

    @property
    def metric(self) -> str:
        return self.record.primary_metric

    @property
    def score(self) -> float:
        return self.record.test_score

    @property
    def fold_std(self) -> float | None:
        return self.record.test_score_std

    @property
    def ci(self) -> tuple[float, float] | None:
        """The record's bootstrap interval of the test score, where it has a finite one."""
        ci = self.record.test_score_ci
        if ci is None or not all(math.isfinite(v) for v in ci):
            return None
        return min(ci), max(ci)

    @property
    def ci_level(self) -> float | None:
        level = (self.record.bootstrap or {}).get("level")
        return float(level) if isinstance(level, int | float) else None

    def seconds_per_audio_hour(self) -> tuple[float, str] | None:
        """Embedding wall seconds per hour of audio, and how it was measured.

        From this run's wall time (``embed_wall``, ``audio_per_second``) when it embedded
        anything; else from the model-call seconds the embedding store kept.
        """
        t = self.record.timings
        rate = t.get("audio_per_second")
        if rate and rate > 0:
            return 3600.0 / rate, "wall time of this run's embedding"
        wall, audio = t.get("embed_wall"), t.get("audio_seconds")
        if wall and audio:
            return 3600.0 * wall / audio, "wall time of this run's embedding"
        calls = t.get("embed")
        if calls and audio:
            return 3600.0 * calls / audio, "model-call time kept in the embedding store"
        return None

    def predictions(self) -> Predictions | None:
        """The record's test predictions, where it kept readable ones (older runs did not)."""
        try:
            return self.found.predictions()
        except HearError:
            return None


def hardware_text(host: dict[str, Any]) -> str:
    """The hardware the record's ``host`` names, on one line."""
    parts = []
    for k, v in host.items():
        if k.endswith("_bytes") and isinstance(v, int | float) and v > 0:
            parts.append(f"{k.removesuffix('_bytes')}: {v / 2**30:.1f} GiB")
        elif isinstance(v, str | int | float) and not isinstance(v, bool):
            parts.append(f"{k}: {v}")
        elif isinstance(v, list | dict) and v:
            parts.append(f"{k}: {json.dumps(v)[:120]}")
    return "; ".join(dict.fromkeys(parts)) or "?"
