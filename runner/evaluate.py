"""A HEAR run: for each model, start its server once, then embed, probe and score each task."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from runner.embed.pipeline import SplitEmbeddings, embed_split
from runner.engines.base import Engine, ModelSource, RunningModel
from runner.errors import HearError
from runner.events import EventScoring, frame_targets
from runner.metrics import Metric, get_metric
from runner.probes.grid import heareval_grid
from runner.probes.mlp import MLPConfig, config_for_task, train_mlp
from runner.results.records import FoldResult, ModelInfo, ProbeInfo, RunRecord, TaskInfo
from runner.tasks.folder import Fold, Task

#: single: one MLP configuration on standardized embeddings (quick); faithful: heareval's
#: grid (8 points on the first fold, best retrained on the others), embeddings as they are.
ProbeMode = Literal["single", "faithful"]


def evaluate(
    engine: Engine,
    sources: list[ModelSource],
    tasks: list[Task],
    results_dir: Path,
    probe_config: MLPConfig | None = None,
    batch_size: int = 32,
    console: Console | None = None,
    on_record: Callable[[RunRecord, Path], None] | None = None,
    probe_mode: ProbeMode = "single",
) -> list[RunRecord]:
    """Evaluate every model on every task; each finished record is written at once."""
    console = console or Console(stderr=True)
    for task in tasks:  # every metric is known before any model starts
        for name in task.metadata.evaluation:
            _check_metric(task, get_metric(name))
    for source in sources:  # every image is checked before the first one starts
        engine.check(source)
    records = []
    for source in sources:
        console.print(f"[bold]starting[/] {source.display_name} on the {engine.name} engine")
        started = time.perf_counter()
        with engine.start(source) as running:
            start_seconds = time.perf_counter() - started
            for task in tasks:
                record = evaluate_task(
                    running,
                    source,
                    task,
                    probe_config or MLPConfig(),
                    batch_size,
                    console,
                    probe_mode,
                )
                record.timings["model_start"] = round(start_seconds, 3)
                path = record.write(results_dir)
                records.append(record)
                if on_record:
                    on_record(record, path)
    return records


def evaluate_task(
    running: RunningModel,
    source: ModelSource,
    task: Task,
    probe_config: MLPConfig,
    batch_size: int,
    console: Console,
    probe_mode: ProbeMode = "single",
) -> RunRecord:
    client = running.client
    hello = client.hello
    assert hello is not None
    embedded: dict[str, SplitEmbeddings] = {}
    with _progress(console) as progress:
        for split in task.splits:
            clips = task.clips(split)
            bar = progress.add_task(f"{task.name} · {split}", total=len(clips))
            advance = functools.partial(_advance, progress, bar)
            embedded[split] = embed_split(client, task, split, batch_size, on_batch=advance)
    metrics = [get_metric(name) for name in task.metadata.evaluation]
    primary = metrics[0]
    grid: list[dict[str, Any]] = []
    if probe_mode == "faithful":
        # heareval: the grid's first points on the first fold only; the best is retrained.
        points = heareval_grid(
            task.metadata.task_name, task.metadata.evaluation_params, probe_config.seed
        )
    else:
        points = [
            config_for_task(probe_config, task.metadata.task_name, task.metadata.evaluation_params)
        ]
    folds: list[FoldResult] = []
    with _progress(console, unit="trainings") as progress:
        bar = progress.add_task(f"{task.name} · probe", total=len(points) + len(task.folds) - 1)
        tried = []
        for point in points:
            tried.append(_evaluate_fold(task, task.folds[0], embedded, metrics, point))
            grid.append(
                {**point.model_dump(), "valid_selection_score": tried[-1].valid_selection_score}
            )
            progress.advance(bar)
        best = max(range(len(points)), key=lambda i: tried[i].valid_selection_score)
        probe_config = points[best]
        folds.append(tried[best])
        for fold in task.folds[1:]:
            folds.append(_evaluate_fold(task, fold, embedded, metrics, probe_config))
            progress.advance(bar)
    means = {
        role: {m.name: float(np.mean([f.scores[role][m.name] for f in folds])) for m in metrics}
        for role in ("valid", "test")
    }
    primary_scores = [f.scores["test"][primary.name] for f in folds]
    return RunRecord(
        model=ModelInfo(
            name=source.display_name,
            kind=source.kind,
            options=source.options,
            sample_rate=hello.sample_rate,
            scene_embedding_size=hello.scene_embedding_size,
            timestamp_embedding_size=hello.timestamp_embedding_size,
            engine=running.provenance,
        ),
        task=TaskInfo(
            name=task.name,
            task_name=task.metadata.task_name,
            version=task.metadata.version,
            mode=task.metadata.mode,
            path=str(task.path.resolve()),
            content_hash=task.content_hash,
            embedding_type=task.metadata.embedding_type,
            prediction_type=task.metadata.prediction_type,
            split_mode=task.metadata.split_mode,
            clips={s: len(task.clips(s)) for s in task.splits},
            source_sample_rate=task.source_rate(hello.sample_rate),
        ),
        probe=ProbeInfo(
            mode=probe_mode,
            grid=grid if len(grid) > 1 else [],
            config=probe_config.model_dump(),
            selection_metric=primary.name
            if task.metadata.use_scoring_for_early_stopping is not False
            else "validation loss",
        ),
        primary_metric=primary.name,
        test_score=means["test"][primary.name],
        test_score_std=float(np.std(primary_scores, ddof=1)) if len(folds) > 1 else None,
        scores=means,
        folds=folds,
        timings={
            "embed": round(sum(e.seconds for e in embedded.values()), 3),
            "audio_seconds": round(sum(e.audio_seconds for e in embedded.values()), 3),
            "probe": round(sum(f.probe_seconds for f in folds), 3),
        },
    )


def _check_metric(task: Task, metric: Metric) -> None:
    kind = "event" if task.metadata.embedding_type == "event" else "scene"
    if metric.kind != kind:
        raise HearError(
            f"{task.path / 'task_metadata.json'}: field 'evaluation': {metric.name} is a "
            f"{metric.kind} metric, but this is a {kind} task"
        )


def _evaluate_fold(
    task: Task,
    fold: Fold,
    embedded: dict[str, SplitEmbeddings],
    metrics: list[Metric],
    config: MLPConfig,
) -> FoldResult:
    """Train on the fold's train splits, select on valid, score on test."""
    started = time.perf_counter()
    event = task.metadata.embedding_type == "event"
    labels = task.vocabulary
    primary = metrics[0]

    def targets(split: str) -> np.ndarray:
        return frame_targets(task, split, embedded[split]) if event else task.targets(split)

    valid_scoring = EventScoring(task, fold.valid, embedded[fold.valid]) if event else None
    # heareval selects on the primary score unless the task says use_scoring_for_early_stopping
    # is false; for events that score is the best over the post-processing grid.
    select: Callable[[np.ndarray, np.ndarray], float]
    if task.metadata.use_scoring_for_early_stopping is False:
        select = _negative_bce if event else _negative_loss(task.metadata.prediction_type)
    elif valid_scoring is not None:
        select = functools.partial(_best_event_score, valid_scoring, primary)
    else:
        select = functools.partial(_score_with_labels, primary, labels)
    probe = train_mlp(
        np.concatenate([embedded[s].embeddings for s in fold.train]),
        np.concatenate([targets(s) for s in fold.train]),
        embedded[fold.valid].embeddings,
        targets(fold.valid),
        "multilabel" if event else task.metadata.prediction_type,
        select,
        config,
    )
    scores: dict[str, dict[str, float]] = {}
    details: dict[str, Any] = {}
    if valid_scoring is not None:
        valid_frames = probe.predict(embedded[fold.valid].embeddings)
        chosen, _ = valid_scoring.best(primary, valid_frames)
        details["postprocessing"] = chosen
        test_scoring = EventScoring(task, fold.test, embedded[fold.test])
        for role, scoring in (("valid", valid_scoring), ("test", test_scoring)):
            frames = probe.predict(embedded[scoring.embedded.split].embeddings)
            full = {m.name: scoring.score(m, frames, chosen) for m in metrics}
            scores[role] = {name: _first(value) for name, value in full.items()}
            details[role] = full
    else:
        for role, split in (("valid", fold.valid), ("test", fold.test)):
            predictions = probe.predict(embedded[split].embeddings)
            y = task.targets(split)
            scores[role] = {m.name: m.score(y, predictions, labels) for m in metrics}
    return FoldResult(
        fold=fold.name,
        train=list(fold.train),
        valid=fold.valid,
        test=fold.test,
        scores=scores,
        details=details,
        valid_selection_score=probe.best_valid_score,
        best_epoch=probe.best_epoch,
        epochs_trained=probe.epochs_trained,
        probe_seconds=round(time.perf_counter() - started, 3),
    )


def _first(value: Any) -> float:
    """An event metric's value: the first of its sub-scores."""
    return float(next(iter(value.values()))) if isinstance(value, dict) else float(value)


def _best_event_score(
    scoring: EventScoring, metric: Metric, _targets: np.ndarray, frames: np.ndarray
) -> float:
    return scoring.best(metric, frames)[1]


def _negative_loss(kind: str) -> Callable[[np.ndarray, np.ndarray], float]:
    return _negative_bce if kind == "multilabel" else _negative_cross_entropy


def _negative_cross_entropy(targets: np.ndarray, probabilities: np.ndarray) -> float:
    p = np.clip((targets * probabilities).sum(axis=1), 1e-7, 1.0)
    return float(np.mean(np.log(p)))


def _negative_bce(targets: np.ndarray, probabilities: np.ndarray) -> float:
    p = np.clip(probabilities, 1e-7, 1 - 1e-7)
    return float(np.mean(targets * np.log(p) + (1 - targets) * np.log(1 - p)))


def _advance(progress: Progress, bar: TaskID, clips: int, _audio_seconds: float) -> None:
    progress.advance(bar, clips)


def _score_with_labels(
    metric: Metric, labels: list[str], targets: np.ndarray, scores: np.ndarray
) -> float:
    return metric.score(targets, scores, labels)


def _progress(console: Console, unit: str = "clips") -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
