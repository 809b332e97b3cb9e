"""How sure a score is: bootstrap intervals over test clips, and paired comparisons.

A record's primary test score is the mean, over its folds (and probe seeds), of
the primary metric on each fold's test clips. Its interval resamples those test
clips: each resample draws, for every fold, as many clips as the fold tests,
with replacement; every seed's predictions of that fold are scored on the same
draw with the task's own metric (the plugin's function, quirks included), and
the fold scores are averaged as the record averages them. The 95% interval is
the 2.5th and 97.5th percentiles of those averages (percentile bootstrap).

Event tasks resample files: a file drawn twice counts twice (its reference and
predicted events under a second name). A resample whose score is not finite
(e.g. ROC AUC with a label absent from the draw) is left out and counted.

A paired comparison (``paired_bootstrap``) draws the clips once per resample for
both models, so their difference is measured on the same clips; its two-sided
p-value is ``2 * min(P(d <= 0), P(d >= 0))`` over the resampled differences
(each with +1 in numerator and denominator), clipped at 1.
"""

from __future__ import annotations

import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hear_runner.metrics import Metric
from hear_runner.results.predictions import FoldPredictions

# Resamples per interval by task kind. Measured on a shared 2-core EPYC VM: one metric call
# costs ~0.02 ms for top-1/pitch accuracy on 40 clips, ~2 ms for mAP or ROC AUC (sklearn, 40
# clips x 8 labels; ~300 ms at FSD50K's 10231 x 200), ~1 ms for an event metric on 40 short
# files (~170 ms on 40 files x 500 events). On the mini suite (smoke, linear probe) 1000
# resamples took 0.02-0.1 s per top-1 task and 10.7 s for mini_sound_mix (mAP, 5 folds); 200
# event resamples 0.2 s. Event tasks at full scale (MAESTRO: thousands of notes) keep 200.
SCENE_RESAMPLES = 1000
EVENT_RESAMPLES = 200
DEFAULT_SEED = 0
LEVEL = 0.95
ALPHA = 0.05  # significance level of `hear compare`


def default_resamples(metric: Metric) -> int:
    return EVENT_RESAMPLES if metric.kind == "event" else SCENE_RESAMPLES


@dataclass
class Interval:
    """A percentile bootstrap interval of a mean-over-folds score."""

    low: float | None
    high: float | None
    resamples: int
    seed: int
    level: float = LEVEL
    invalid: int = 0  # resamples left out: their score was not finite
    seconds: float = field(default=0.0, compare=False)

    def settings(self) -> dict[str, Any]:
        """What the record keeps beside the interval (its ``bootstrap`` field)."""
        return {
            "resamples": self.resamples,
            "seed": self.seed,
            "level": self.level,
            "method": "percentile; test clips resampled with replacement within each fold",
            "invalid": self.invalid,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class Paired:
    """A's score minus B's on the same test clips, with its interval and p-value."""

    difference: float
    low: float | None
    high: float | None
    p_value: float
    resamples: int
    seed: int
    score_a: float
    score_b: float
    invalid: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class FoldScorer:
    """Scores one fold's (and seed's) test predictions on any draw of its clips."""

    def __init__(self, fold: FoldPredictions, labels: list[str], metric: Metric) -> None:
        self.fold, self.labels, self.metric = fold, labels, metric
        self.size = len(fold.files)

    def score(self, draw: np.ndarray | None = None) -> float:
        """The metric on the clips at ``draw`` (indices into the fold's files; all when None)."""
        fold = self.fold
        if self.metric.kind != "event":
            if draw is None:
                return float(self.metric.score(fold.targets, fold.scores, self.labels))
            return float(self.metric.score(fold.targets[draw], fold.scores[draw], self.labels))
        files = fold.files if draw is None else [fold.files[i] for i in draw]
        names = _unique_names(files)
        reference = {n: fold.reference.get(f, []) for n, f in zip(names, files, strict=True)}
        predicted = {n: fold.events.get(f, []) for n, f in zip(names, files, strict=True)}
        value = self.metric.score(reference, predicted, self.labels)
        return float(next(iter(value.values()))) if isinstance(value, dict) else float(value)


def _unique_names(files: Sequence[str]) -> list[str]:
    """A file's first draw keeps its name, later ones get ``#2``, ``#3``..."""
    seen: Counter[str] = Counter()
    names = []
    for f in files:
        seen[f] += 1
        names.append(f if seen[f] == 1 else f"{f}#{seen[f]}")
    return names


def _fold_sizes(folds: Sequence[FoldPredictions], what: str) -> dict[str, int]:
    """Clips per fold name; every seed of a fold must test the same clips."""
    sizes: dict[str, int] = {}
    files: dict[str, list[str]] = {}
    for f in folds:
        if f.fold in files and files[f.fold] != f.files:
            raise ValueError(f"{what}: fold {f.fold!r} tests different clips in different seeds")
        files[f.fold] = f.files
        sizes[f.fold] = len(f.files)
    empty = [name for name, n in sizes.items() if n == 0]
    if empty:
        raise ValueError(f"{what}: fold {empty[0]!r} has no test clips")
    return sizes


def _draws(sizes: dict[str, int], resamples: int, seed: int) -> Callable[[], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)

    def draw() -> dict[str, np.ndarray]:
        return {name: rng.integers(0, n, n) for name, n in sizes.items()}

    return draw


def _mean(scorers: list[FoldScorer], draw: dict[str, np.ndarray] | None) -> float:
    return float(np.mean([s.score(None if draw is None else draw[s.fold.fold]) for s in scorers]))


def bootstrap_interval(
    labels: list[str],
    folds: Sequence[FoldPredictions],
    metric: Metric,
    resamples: int | None = None,
    seed: int = DEFAULT_SEED,
    level: float = LEVEL,
) -> Interval:
    """Percentile interval of the mean over ``folds`` of ``metric``, test clips resampled."""
    started = time.perf_counter()
    resamples = default_resamples(metric) if resamples is None else resamples
    sizes = _fold_sizes(folds, "predictions")
    scorers = [FoldScorer(f, labels, metric) for f in folds]
    draw = _draws(sizes, resamples, seed)
    with warnings.catch_warnings():  # sklearn warns on every draw that misses a label
        warnings.simplefilter("ignore")
        values = np.array([_mean(scorers, draw()) for _ in range(resamples)])
    finite = values[np.isfinite(values)]
    low = high = None
    if len(finite):
        tail = (1 - level) / 2 * 100
        low, high = (float(v) for v in np.percentile(finite, [tail, 100 - tail]))
    return Interval(
        low, high, resamples, seed, level, int(len(values) - len(finite)),
        time.perf_counter() - started,
    )  # fmt: skip


def paired_bootstrap(
    labels: list[str],
    folds_a: Sequence[FoldPredictions],
    folds_b: Sequence[FoldPredictions],
    metric: Metric,
    resamples: int | None = None,
    seed: int = DEFAULT_SEED,
    level: float = LEVEL,
    what: str = "",
) -> Paired:
    """A minus B on the same resampled test clips.

    Both must test the same clips in each fold (matched by file name; B's rows are
    put in A's order); a ValueError names ``what`` otherwise.
    """
    started = time.perf_counter()
    resamples = default_resamples(metric) if resamples is None else resamples
    sizes = _fold_sizes(folds_a, what)
    _fold_sizes(folds_b, what)
    order = {f.fold: f.files for f in folds_a}
    names_b = {f.fold for f in folds_b}
    if set(order) != names_b:
        raise ValueError(
            f"{what}: the models were tested on different folds "
            f"({', '.join(sorted(order))} against {', '.join(sorted(names_b))})"
        )
    aligned_b = [_align(f, order[f.fold], what) for f in folds_b]
    scorers_a = [FoldScorer(f, labels, metric) for f in folds_a]
    scorers_b = [FoldScorer(f, labels, metric) for f in aligned_b]
    draw = _draws(sizes, resamples, seed)
    differences = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score_a, score_b = _mean(scorers_a, None), _mean(scorers_b, None)
        for _ in range(resamples):
            indices = draw()
            differences.append(_mean(scorers_a, indices) - _mean(scorers_b, indices))
    values = np.array(differences)
    finite = values[np.isfinite(values)]
    low = high = None
    p_value = 1.0
    if len(finite):
        tail = (1 - level) / 2 * 100
        low, high = (float(v) for v in np.percentile(finite, [tail, 100 - tail]))
        n = len(finite)
        below = (np.count_nonzero(finite <= 0) + 1) / (n + 1)
        above = (np.count_nonzero(finite >= 0) + 1) / (n + 1)
        p_value = float(min(1.0, 2 * min(below, above)))
    return Paired(
        difference=score_a - score_b,
        low=low,
        high=high,
        p_value=p_value,
        resamples=resamples,
        seed=seed,
        score_a=score_a,
        score_b=score_b,
        invalid=int(len(values) - len(finite)),
        seconds=time.perf_counter() - started,
    )


def _align(fold: FoldPredictions, files: list[str], what: str) -> FoldPredictions:
    """``fold`` with its clips in the order of ``files`` (which must be the same set)."""
    if fold.files == files:
        return fold
    if sorted(fold.files) != sorted(files):
        only_a = sorted(set(files) - set(fold.files))[:3]
        only_b = sorted(set(fold.files) - set(files))[:3]
        raise ValueError(
            f"{what}: fold {fold.fold!r}: the models were tested on different files "
            f"(only A: {', '.join(only_a) or 'none'}; only B: {', '.join(only_b) or 'none'})"
        )
    if fold.targets.size == 0:  # events are looked up by file name
        return FoldPredictions(fold.fold, fold.seed, files, events=fold.events,
                               reference=fold.reference)  # fmt: skip
    position = {f: i for i, f in enumerate(fold.files)}
    rows = np.array([position[f] for f in files])
    return FoldPredictions(
        fold.fold, fold.seed, files, targets=fold.targets[rows], scores=fold.scores[rows],
        events=fold.events, reference=fold.reference,
    )  # fmt: skip
