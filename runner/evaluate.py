"""A HEAR run: for each model, start its server once, then embed, probe and score each task."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path

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
from runner.metrics import Metric, get_metric
from runner.probes.data import ProbeProblem
from runner.probes.mlp import default_device
from runner.probes.stage import ProbeMode, probe_points, run_probe
from runner.results.records import ModelInfo, ProbeInfo, RunRecord, TaskInfo
from runner.tasks.folder import Task


def evaluate(
    engine: Engine,
    sources: list[ModelSource],
    tasks: list[Task],
    results_dir: Path,
    batch_size: int = 32,
    console: Console | None = None,
    on_record: Callable[[RunRecord, Path], None] | None = None,
    probe_mode: ProbeMode = "fast",
    seeds: list[int] | None = None,
    grid_points: int | None = None,
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
                    running, source, task, batch_size, console, probe_mode, seeds, grid_points
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
    batch_size: int,
    console: Console,
    probe_mode: ProbeMode = "fast",
    seeds: list[int] | None = None,
    grid_points: int | None = None,
) -> RunRecord:
    hello = running.client.hello
    assert hello is not None
    embedded = embed_task(running, task, batch_size, console)
    problem = ProbeProblem.from_task(task, embedded)
    seeds = seeds or [42]
    tried = len(probe_points(problem, probe_mode, seeds[0], grid_points))
    trainings = len(seeds) * (tried + len(task.folds) - 1)
    with _progress(console, unit="trainings") as progress:
        bar = progress.add_task(f"{task.name} · {probe_mode} probe", total=trainings)
        outcome = run_probe(
            problem, probe_mode, seeds, grid_points, lambda n: progress.advance(bar, n)
        )
    scores = outcome.mean_scores()
    seed_scores = outcome.seed_scores()
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
            seeds=outcome.seeds,
            grid=outcome.grid if len(outcome.grid) > 1 else [],
            config=outcome.config,
            selection_metric=outcome.selection_metric,
            device=default_device(),
        ),
        primary_metric=outcome.primary,
        test_score=scores["test"][outcome.primary],
        test_score_std=outcome.fold_std(),
        seed_scores=seed_scores,
        seed_std=float(np.std(seed_scores, ddof=1)) if len(seed_scores) > 1 else None,
        scores=scores,
        folds=outcome.folds,
        timings={
            "embed": round(sum(e.seconds for e in embedded.values()), 3),
            "audio_seconds": round(sum(e.audio_seconds for e in embedded.values()), 3),
            "probe": round(outcome.seconds, 3),
        },
    )


def embed_task(
    running: RunningModel, task: Task, batch_size: int, console: Console
) -> dict[str, SplitEmbeddings]:
    """Every split of ``task`` embedded, with a progress bar per split."""
    embedded: dict[str, SplitEmbeddings] = {}
    with _progress(console) as progress:
        for split in task.splits:
            bar = progress.add_task(f"{task.name} · {split}", total=len(task.clips(split)))
            advance = functools.partial(_advance, progress, bar)
            embedded[split] = embed_split(running.client, task, split, batch_size, on_batch=advance)
    return embedded


def export_embeddings(
    engine: Engine,
    source: ModelSource,
    tasks: list[Task],
    out: Path,
    batch_size: int = 32,
    console: Console | None = None,
) -> list[Path]:
    """Embed every task and write ``out/<task>`` in heareval's embeddings layout."""
    from runner.probes.heareval_dir import write_embeddings_dir

    console = console or Console(stderr=True)
    engine.check(source)
    written = []
    with engine.start(source) as running:
        for task in tasks:
            embedded = embed_task(running, task, batch_size, console)
            written.append(write_embeddings_dir(task, embedded, out / task.name))
    return written


def _check_metric(task: Task, metric: Metric) -> None:
    kind = "event" if task.metadata.embedding_type == "event" else "scene"
    if metric.kind != kind:
        raise HearError(
            f"{task.path / 'task_metadata.json'}: field 'evaluation': {metric.name} is a "
            f"{metric.kind} metric, but this is a {kind} task"
        )


def _advance(progress: Progress, bar: TaskID, clips: int, _audio_seconds: float) -> None:
    progress.advance(bar, clips)


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
