"""Metrics: named scoring functions contributed by plugins (heareval's names)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hear_runner import plugins
from hear_runner.errors import HearError
from hear_runner.specs import Metric

__all__ = ["EventScoreFn", "Events", "Metric", "SceneScoreFn", "get_metric", "metrics"]

SceneScoreFn = Callable[[np.ndarray, np.ndarray, list[str]], float]
Events = dict[str, list[dict[str, Any]]]
EventScoreFn = Callable[[Events, Events, list[str]], dict[str, float]]


def metrics() -> dict[str, Metric]:
    """Every registered metric by name; a name registered twice is an error naming both."""
    return {m.name: m for m in plugins.collect(Metric)}


def get_metric(name: str) -> Metric:
    found = metrics()
    if name not in found:
        raise HearError(
            f"metric {name!r} is not provided by any loaded plugin "
            f"(loaded: {', '.join(sorted(found)) or 'none'})"
        )
    return found[name]
