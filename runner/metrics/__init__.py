"""Metrics: named scoring functions contributed by plugins (heareval's names)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from runner import plugins
from runner.errors import HearError

ScoreFn = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class Metric:
    """``score(targets, scores)``: multi-hot targets and predicted scores, both (n, labels)."""

    name: str
    score: ScoreFn
    higher_is_better: bool = True
    plugin: str = ""


def metrics() -> dict[str, Metric]:
    return {m.name: m for m in plugins.collect("hear_register_metrics")}


def get_metric(name: str) -> Metric:
    found = metrics()
    if name not in found:
        raise HearError(
            f"metric {name!r} is not provided by any loaded plugin "
            f"(loaded: {', '.join(sorted(found)) or 'none'})"
        )
    return found[name]
