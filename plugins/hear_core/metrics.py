"""Scene metrics with heareval 2021.1.3's names and definitions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score

from runner.hookspecs import hookimpl
from runner.metrics import Metric


def top1_acc(targets: np.ndarray, scores: np.ndarray, labels: list[str]) -> float:
    """Top-1 accuracy; on multi-hot targets heareval takes the target's argmax too."""
    return float(np.mean(targets.argmax(axis=1) == scores.argmax(axis=1)))


def mean_average_precision(targets: np.ndarray, scores: np.ndarray, labels: list[str]) -> float:
    """sklearn's macro-averaged average precision over labels."""
    return float(average_precision_score(targets, scores, average="macro"))


@hookimpl
def hear_register_metrics(register: Callable[[Any], None]) -> None:
    register(Metric("top1_acc", top1_acc, plugin="core_metrics"))
    register(Metric("mAP", mean_average_precision, plugin="core_metrics"))
