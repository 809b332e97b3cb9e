"""The probe stage: choose a probe on the first fold, retrain it on the others, score every fold.

Modes:
- ``fast`` (default): heareval's grid points trained at once as one batched network.
- ``faithful``: heareval's protocol network by network, as its runner does, on its random
  stream: torch seeded once per seed, the grid points then the other folds drawing in turn.
- ``linear``: one scikit-learn logistic regression, for a quick look.

Selection follows heareval: every grid point is trained on the first fold's train
splits and selected on its valid split by the primary score (for event tasks the
best over the post-processing grid; the validation loss where the task sets
``use_scoring_for_early_stopping`` false); the best point is retrained on the
other folds. Each seed repeats the whole stage.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from hear_runner.events import EventScoring
from hear_runner.metrics import Metric, get_metric
from hear_runner.probes.batched import train_batched
from hear_runner.probes.data import ProbeProblem, ProbeSplit, Rows
from hear_runner.probes.grid import GRID_POINTS, heareval_grid
from hear_runner.probes.linear import LinearConfig, train_linear
from hear_runner.probes.mlp import (
    MLPConfig,
    PredictionType,
    Probe,
    Selector,
    TrainingOptions,
    activate,
    default_device,
    outputs_split,
    probe_loss,
    train_mlp,
)
from hear_runner.probes.resume import NO_STEPS, EpochDone, ProbeProgress, Steps, Watched
from hear_runner.results.predictions import FoldPredictions
from hear_runner.results.records import FoldResult, probe_label

ProbeMode = Literal["fast", "faithful", "linear"]
PROBE_MODES: tuple[str, ...] = ("fast", "faithful", "linear")
ProbeConfig = MLPConfig | LinearConfig


@dataclass
class ProbeOutcome:
    """Every fold of every seed, and what was tried and chosen (for the first seed)."""

    mode: ProbeMode
    seeds: list[int]
    folds: list[FoldResult]
    config: dict[str, Any]
    grid: list[dict[str, Any]]
    selection_metric: str
    primary: str
    seconds: float = 0.0
    resumed: int = 0  # trainings loaded from an earlier, stopped run's saved progress
    continued: list[int] = field(default_factory=list)  # epochs trainings went on from
    metrics: list[str] = field(default_factory=list)
    predictions: list[FoldPredictions] = field(default_factory=list)  # each fold's test split

    @property
    def label(self) -> str:
        return probe_label(self.mode, self.config)

    def add(self, scored: tuple[FoldResult, FoldPredictions]) -> None:
        self.folds.append(scored[0])
        self.predictions.append(scored[1])

    def mean_scores(self) -> dict[str, dict[str, float]]:
        return {
            role: {m: float(np.mean([f.scores[role][m] for f in self.folds])) for m in self.metrics}
            for role in ("valid", "test")
        }

    def seed_scores(self) -> list[float]:
        """The primary test score (mean over folds) of each seed."""
        return [
            float(np.mean([f.scores["test"][self.primary] for f in self.folds if f.seed == s]))
            for s in self.seeds
        ]

    def fold_std(self) -> float | None:
        """Sample standard deviation over folds of the primary test score (averaged over seeds)."""
        names = list(dict.fromkeys(f.fold for f in self.folds))
        if len(names) < 2:
            return None
        per_fold = [
            np.mean([f.scores["test"][self.primary] for f in self.folds if f.fold == name])
            for name in names
        ]
        return float(np.std(per_fold, ddof=1))


def probe_points(
    problem: ProbeProblem,
    mode: ProbeMode,
    seed: int,
    grid_points: int | None = None,
    options: TrainingOptions | None = None,
) -> list[ProbeConfig]:
    """The configurations tried on the first fold (heareval's grid, with ``options``)."""
    options = (options or TrainingOptions()).check(mode)
    if mode == "linear":
        return [LinearConfig(seed=seed)]
    metadata = problem.metadata
    grid = heareval_grid(
        metadata.task_name, metadata.evaluation_params, seed, grid_points or GRID_POINTS
    )
    return [config.model_copy(update=options.model_dump()) for config in grid]


def trainings(
    problem: ProbeProblem,
    mode: ProbeMode,
    seeds: list[int],
    grid_points: int | None = None,
    options: TrainingOptions | None = None,
) -> int:
    """How many networks :func:`run_probe` trains: per seed, the grid, then one per other fold."""
    tried = len(probe_points(problem, mode, seeds[0], grid_points, options))
    return len(seeds) * (tried + len(problem.folds) - 1)


def run_probe(
    problem: ProbeProblem,
    mode: ProbeMode = "fast",
    seeds: list[int] | None = None,
    grid_points: int | None = None,
    on_trained: Callable[[int], None] | None = None,
    points: Callable[[int], list[ProbeConfig]] | None = None,
    options: TrainingOptions | None = None,
    progress_dir: Path | None = None,
    on_loaded: Callable[[int], None] | None = None,
    on_epoch: Callable[[EpochDone], None] | None = None,
) -> ProbeOutcome:
    """Probe ``problem`` once per seed; ``on_trained(n)`` reports n trainings done,
    ``on_loaded(n)``, where given, those of them loaded from ``progress_dir`` (a display's
    speed and time left are then this run's own), and ``on_epoch``, where given, where the
    MLP training in progress stands after each of its epochs.

    ``points(seed)`` replaces heareval's grid (its first ``grid_points``) with other configs;
    ``options`` change every MLP point's precision or batch order. With ``progress_dir``,
    each training is saved there as it finishes and loaded from there by a run of the
    same inputs (``probes.resume``): a stopped stage goes on where it was.
    """
    started = time.perf_counter()
    seeds = seeds or [42]
    metrics = [get_metric(name) for name in problem.metadata.evaluation]
    choose = points or functools.partial(
        probe_points, problem, mode, grid_points=grid_points, options=options
    )
    progress = None
    if progress_dir is not None:
        settings = {
            "mode": mode,
            "seeds": seeds,
            "points": [[c.model_dump() for c in choose(seed)] for seed in seeds],
            "device": default_device(),
        }
        progress = ProbeProgress(progress_dir, problem, settings)
        if on_loaded is not None:
            on_trained = _telling_loaded(progress, on_trained, on_loaded)
    by_loss = problem.metadata.use_scoring_for_early_stopping is False
    outcome = ProbeOutcome(
        mode=mode,
        seeds=seeds,
        folds=[],
        config={},
        grid=[],
        selection_metric="validation loss" if by_loss else metrics[0].name,
        primary=metrics[0].name,
        metrics=[m.name for m in metrics],
    )
    for seed in seeds:
        tried = choose(seed)
        if mode == "faithful":
            torch.manual_seed(seed)  # once per seed: heareval's points share one stream
        first = problem.folds[0]
        steps = _steps(progress, f"seed{seed}-{first.name}", on_epoch)
        probes = _train(problem, first, mode, tried, metrics, on_trained, steps)
        best = max(range(len(tried)), key=lambda i: probes[i].best_valid_score)  # first of equals
        if seed == seeds[0]:
            outcome.config = tried[best].model_dump()
            outcome.grid = [
                {
                    **c.model_dump(),
                    "valid_selection_score": p.best_valid_score,
                    "best_epoch": p.best_epoch,
                    "epochs_trained": p.epochs_trained,
                }
                for c, p in zip(tried, probes, strict=True)
            ]
        outcome.add(_score_fold(problem, first, probes[best], metrics, seed))
        for fold in problem.folds[1:]:
            steps = _steps(progress, f"seed{seed}-{fold.name}", on_epoch)
            (probe,) = _train(problem, fold, mode, [tried[best]], metrics, on_trained, steps)
            outcome.add(_score_fold(problem, fold, probe, metrics, seed))
    outcome.seconds = time.perf_counter() - started
    if progress is not None:
        outcome.resumed, outcome.continued = progress.resumed, progress.continued
        progress.finish()
    return outcome


def _steps(
    progress: ProbeProgress | None, scope: str, on_epoch: Callable[[EpochDone], None] | None
) -> Steps:
    """The trainings of ``scope``: saved in ``progress`` where given, watched by ``on_epoch``."""
    steps = progress.scope(scope) if progress else NO_STEPS
    return Watched(steps, on_epoch) if on_epoch else steps


def _telling_loaded(
    progress: ProbeProgress,
    on_trained: Callable[[int], None] | None,
    on_loaded: Callable[[int], None],
) -> Callable[[int], None]:
    """``on_trained`` for the trainings ``progress`` did not load, ``on_loaded`` for those
    it did."""
    told = 0

    def report(n: int) -> None:
        nonlocal told
        loaded, told = progress.resumed - told, progress.resumed
        if loaded:
            on_loaded(loaded)
        if n > loaded and on_trained is not None:
            on_trained(n - loaded)

    return report


def _train(
    problem: ProbeProblem,
    fold: Any,
    mode: ProbeMode,
    configs: list[Any],
    metrics: list[Metric],
    on_trained: Callable[[int], None] | None = None,
    steps: Steps = NO_STEPS,
) -> list[Probe]:
    """Train ``configs`` on ``fold``, each training one of ``steps``; ``on_trained(n)`` as
    each network (faithful, linear) or batched group of n (fast) finishes: a long grid
    shows progress point by point. Each probe's ``seconds`` are its own training's."""
    report = on_trained or (lambda n: None)
    train = Rows([problem.splits[s] for s in fold.train])
    valid = problem.splits[fold.valid]
    kind: PredictionType = "multilabel" if problem.event else problem.metadata.prediction_type
    select = _selector(problem, valid, metrics[0])
    if mode == "fast":
        return list(train_batched(train, valid, kind, select, configs, None, steps, report))
    probes: list[Probe] = []
    for i, config in enumerate(configs):
        name = f"point{i}"
        training: Callable[[], Probe]
        if mode == "linear":
            training = functools.partial(train_linear, train, valid, kind, select, config)
        else:
            checkpoint = steps.checkpoint(name)
            training = functools.partial(
                train_mlp, train, valid, kind, select, config, seeded=True, checkpoint=checkpoint
            )
        probes.append(steps.run(name, training))
        report(1)
    return probes


def _selector(problem: ProbeProblem, valid: ProbeSplit, primary: Metric) -> Selector:
    kind = "multilabel" if problem.event else problem.metadata.prediction_type
    if problem.metadata.use_scoring_for_early_stopping is False:  # heareval's val_loss
        return lambda targets, logits: -probe_loss(targets, logits, kind)
    if problem.event:
        scoring = EventScoring(valid.reference, valid, problem.labels, problem.metadata)
        return functools.partial(_event_check, scoring, primary)
    return lambda targets, logits: float(
        primary.score(targets, activate(logits, kind), problem.labels)
    )


def _event_check(
    scoring: EventScoring, primary: Metric, _targets: np.ndarray, logits: np.ndarray
) -> float:
    """A validation check's score as heareval logs it: the best setting's own value.

    The setting is chosen with NaN counted as 0 (``EventScoring.best``); a NaN of the
    chosen setting itself (no event predicted) is kept, and stops training.
    """
    frames = activate(logits, "multilabel")
    params, value = scoring.best(primary, frames)
    if value == 0.0 and np.isnan(_first(scoring.score(primary, frames, params))):
        return float("nan")
    return value


def _score_fold(
    problem: ProbeProblem, fold: Any, probe: Probe, metrics: list[Metric], seed: int
) -> tuple[FoldResult, FoldPredictions]:
    """Score the fold's valid and test splits with the trained probe; keep the test's output."""
    test = problem.splits[fold.test]
    kept = FoldPredictions(fold=fold.name, seed=seed, files=list(test.files))
    scores: dict[str, dict[str, float]] = {}
    details: dict[str, Any] = {}
    losses: dict[str, float] = {}
    chosen: dict[str, float] | None = None
    if probe.input_rank:  # fast mode's first layer went through the rows' span
        details["input_basis_rank"] = probe.input_rank
    for role, name in (("valid", fold.valid), ("test", fold.test)):
        split = problem.splits[name]
        logits, predictions = outputs_split(probe, split)
        kind = "multilabel" if problem.event else problem.metadata.prediction_type
        losses[role] = probe_loss(split.targets, logits, kind)
        if problem.event:
            scoring = EventScoring(split.reference, split, problem.labels, problem.metadata)
            if chosen is None:  # chosen on validation, reused on test
                chosen, _ = scoring.best(metrics[0], predictions)
                details["postprocessing"] = chosen
            full = {m.name: scoring.score(m, predictions, chosen) for m in metrics}
            scores[role] = {name: _first(value) for name, value in full.items()}
            details[role] = full
            if role == "test":
                kept.events, kept.reference = scoring.events(predictions, chosen), split.reference
        else:
            scores[role] = {
                m.name: float(m.score(split.targets, predictions, problem.labels)) for m in metrics
            }
            if role == "test":
                kept.targets, kept.scores = split.targets, predictions
    return FoldResult(
        fold=fold.name,
        seed=seed,
        train=list(fold.train),
        valid=fold.valid,
        test=fold.test,
        scores=scores,
        losses=losses,
        details=details,
        valid_selection_score=probe.best_valid_score,
        best_epoch=probe.best_epoch,
        epochs_trained=probe.epochs_trained,
        probe_seconds=round(probe.seconds, 3),
    ), kept


def _first(value: Any) -> float:
    """An event metric's value: the first of its sub-scores."""
    return float(next(iter(value.values()))) if isinstance(value, dict) else float(value)
