"""Metrics: named scoring functions contributed by plugins (heareval's names)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from hear_runner import plugins
from hear_runner.errors import HearError

SceneScoreFn = Callable[[np.ndarray, np.ndarray, list[str]], float]
Events = dict[str, list[dict[str, Any]]]
EventScoreFn = Callable[[Events, Events, list[str]], dict[str, float]]


@dataclass(frozen=True)
class Metric:
    """A named score, as heareval names it.

    Scene metrics: ``score(targets, scores, labels) -> float`` with multi-hot
    targets and predicted scores, both (n_clips, n_labels), and the label
    vocabulary in column order. Event metrics (``kind="event"``):
    ``score(reference, predicted, labels) -> {sub-score: value}`` on events
    ``{"label", "start", "end"}`` (ms) per file; the first sub-score is the metric's value.
    """

    name: str
    score: Callable[..., Any]
    higher_is_better: bool = True
    plugin: str = ""
    kind: Literal["scene", "event"] = "scene"


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
