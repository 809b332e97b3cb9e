"""Scene metrics with heareval 2021.1.3's names and definitions, quirks included.

Each takes ``(targets, scores, labels)``: multi-hot targets and predicted scores, both
(n_clips, n_labels), and the label vocabulary in column order. heareval calls its own
score functions as ``score(predictions, targets)``; the values are the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hear_core.event_metrics import EVENT_METRICS, HIGHER_IS_BETTER
from hear_core.event_metrics_fast import EVENT_ARRAY_METRICS
from hear_runner.api import Metric, hookimpl


def _check_2d(targets: np.ndarray, scores: np.ndarray) -> None:
    # heareval asserts both are 2-D (one row per clip, one column per label).
    if np.ndim(targets) != 2 or np.ndim(scores) != 2:
        raise ValueError(
            f"targets and scores must be 2-D, got shapes {np.shape(targets)} and {np.shape(scores)}"
        )


def _argmax_hits(targets: np.ndarray, scores: np.ndarray, modulo: int | None = None) -> float:
    _check_2d(targets, scores)
    target_idx = np.argmax(targets, axis=1)
    predicted_idx = np.argmax(scores, axis=1)
    if modulo is not None:
        target_idx, predicted_idx = target_idx % modulo, predicted_idx % modulo
    # heareval divides by len(targets) in plain Python: no clips raises ZeroDivisionError.
    return int(np.count_nonzero(target_idx == predicted_idx)) / len(targets)


def top1_acc(targets: np.ndarray, scores: np.ndarray, labels: list[str]) -> float:
    """Top-1 accuracy; the target class is the target row's argmax (first one on multi-hot)."""
    return _argmax_hits(targets, scores)


def pitch_acc(targets: np.ndarray, scores: np.ndarray, labels: list[str]) -> float:
    """heareval's pitch_acc is top1_acc under another name."""
    return _argmax_hits(targets, scores)


def chroma_acc(targets: np.ndarray, scores: np.ndarray, labels: list[str]) -> float:
    """Top-1 accuracy ignoring octave errors: column indices (not label values) compared mod 12.

    Quirk: ``labels`` are never read, so this is a chroma only when the vocabulary's columns are
    consecutive semitones (HEAR's pitch vocabularies, sorted MIDI numbers, are).
    """
    return _argmax_hits(targets, scores, modulo=12)


def mean_average_precision(targets: np.ndarray, scores: np.ndarray, labels: list[str]) -> float:
    """sklearn's macro-averaged average precision over labels.

    Quirks: not NaN-guarded (an sklearn error propagates), and a label with no positive clip
    counts as AP 0 with sklearn >= 1.1 (heareval's 2021 environment, sklearn 1.0, gave NaN).
    """
    _check_2d(targets, scores)
    from sklearn.metrics import average_precision_score  # imported when scored: `hear` starts fast

    return float(average_precision_score(targets, scores, average="macro"))


def _roc_auc_or_nan(targets: np.ndarray, scores: np.ndarray, average: str | None) -> Any:
    from sklearn.metrics import roc_auc_score

    _check_2d(targets, scores)
    try:
        return roc_auc_score(targets, scores, average=average)
    except ValueError:
        # heareval returns NaN where sklearn raises (e.g. a label with one class only).
        return np.nan


def aucroc(targets: np.ndarray, scores: np.ndarray, labels: list[str]) -> float:
    """sklearn's macro ROC AUC; NaN when any label has a single class (sklearn raises or NaNs)."""
    return float(_roc_auc_or_nan(targets, scores, average="macro"))


def d_prime(targets: np.ndarray, scores: np.ndarray, labels: list[str]) -> float:
    """Mean over labels of sqrt(2) * Phi^-1(AUC); one undefined AUC makes it NaN, AUC 1 inf."""
    auc = _roc_auc_or_nan(targets, scores, average=None)
    from scipy import stats

    return float(np.mean(stats.norm().ppf(auc) * np.sqrt(2.0)))


SCENE_METRICS: dict[str, Callable[[np.ndarray, np.ndarray, list[str]], float]] = {
    "top1_acc": top1_acc,
    "pitch_acc": pitch_acc,
    "chroma_acc": chroma_acc,
    "mAP": mean_average_precision,
    "d_prime": d_prime,
    "aucroc": aucroc,
}


@hookimpl
def hear_register_metrics(register: Callable[[Metric], None]) -> None:
    for name, fn in SCENE_METRICS.items():
        # All of heareval's scene scores are maximized.
        register(Metric(name=name, score=fn, higher_is_better=True))
    for name, event_fn in EVENT_METRICS.items():
        better = HIGHER_IS_BETTER[name]
        fast = EVENT_ARRAY_METRICS.get(name)
        register(
            Metric(
                name=name, score=event_fn, higher_is_better=better, kind="event", score_arrays=fast
            )
        )
