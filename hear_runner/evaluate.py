"""A HEAR run: for each model, start its server once, then embed, probe and score each task."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console
from rich.markup import escape

from hear_runner.contract.messages import Hello
from hear_runner.embed.pipeline import embed_split, split_stamps
from hear_runner.embed.split import SplitEmbeddings
from hear_runner.embed.store import EmbeddingStore, ModelKey, Overwrite, SplitStore
from hear_runner.engines.base import Engine, ModelSource, RunningModel
from hear_runner.errors import HearError
from hear_runner.metrics import Metric, get_metric
from hear_runner.probes.data import ProbeProblem
from hear_runner.probes.heareval_dir import predicted_scores
from hear_runner.probes.mlp import TrainingOptions, default_device
from hear_runner.probes.resume import PROGRESS_FOLDER, resumed_line
from hear_runner.probes.stage import ProbeMode, ProbeOutcome, run_probe, trainings
from hear_runner.progress import progress
from hear_runner.results.predictions import FoldPredictions
from hear_runner.results.records import ModelInfo, ProbeInfo, RunRecord, TaskInfo, model_folder
from hear_runner.results.stats import Interval, bootstrap_interval
from hear_runner.tasks.folder import Task

if TYPE_CHECKING:
    from hear_runner.cluster.driver import Cluster, ClusterModel


def evaluate(
    engine: Engine,
    sources: list[ModelSource],
    tasks: list[Task],
    results_dir: Path,
    store: EmbeddingStore,
    batch_size: int = 32,
    console: Console | None = None,
    on_record: Callable[[RunRecord, Path], None] | None = None,
    probe_mode: ProbeMode = "fast",
    seeds: list[int] | None = None,
    grid_points: int | None = None,
    overwrite: Overwrite = "only-missing",
    gpus: list[str | None] | None = None,
    cluster: Cluster | None = None,
    options: TrainingOptions | None = None,
) -> list[RunRecord]:
    """Evaluate every model on every task; each finished record is written at once.

    Embeddings come from ``store`` where it has them; a model is started only for
    a task with something left to embed (and at most once). With a ``cluster``
    (hear_runner.cluster.driver), units on its nodes embed and probe instead.
    """
    console = console or Console(stderr=True)
    for task in tasks:  # every metric is known before any model starts
        for name in task.metadata.evaluation:
            _check_metric(task, get_metric(name))
    check_tasks(tasks, console)
    identities = [engine.check(source) for source in sources]  # checked up front
    if cluster is not None:
        cluster.check_tasks(tasks)
        cluster.check_store(store.root)
    records = []
    for source, identity in zip(sources, identities, strict=True):
        key = model_key(source, identity)
        model: ModelOnDemand | ClusterModel = (
            cluster.model(source, key, identity, store)
            if cluster is not None
            else ModelOnDemand(engine, source, key, store, console, gpus)
        )
        with model:
            for task in tasks:
                embedded, hello, provenance = embed_or_load(
                    model, task, store, batch_size, console, overwrite
                )
                saved = model_folder(results_dir, source.display_name) / (
                    task.name + PROGRESS_FOLDER
                )
                record = probe_and_score(
                    source, hello, provenance, task, embedded, console,
                    probe_mode, seeds, grid_points, cluster.run_probe if cluster else run_probe,
                    options, None if cluster else saved,
                )  # fmt: skip
                if cluster is not None:
                    record.model.engine.setdefault("ray", {})["probe"] = cluster.probe_nodes
                record.timings["model_start"] = round(model.start_seconds, 3)
                path = record.write(results_dir)
                records.append(record)
                if on_record:
                    on_record(record, path)
    return records


def check_tasks(tasks: list[Task], console: Console) -> None:
    """Before any model starts, cached or not: every listed clip is there as a regular
    file (:meth:`Task.check_audio`), and each task's warnings are printed, once."""
    for task in tasks:
        task.check_audio()
        for warning in task.warnings:
            console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)


def model_key(source: ModelSource, identity: str) -> ModelKey:
    return ModelKey(
        source.display_name, identity, tuple(sorted(source.options.items())), source.model_path,
        source.max_clip_seconds,
    )  # fmt: skip


class ModelOnDemand:
    """Starts the model's servers (one per GPU, or ``gpus`` long) the first time they are
    needed, and stops them at the end."""

    def __init__(
        self,
        engine: Engine,
        source: ModelSource,
        key: ModelKey,
        store: EmbeddingStore,
        console: Console,
        gpus: list[str | None] | None = None,
    ) -> None:
        self.engine, self.source, self.key, self.store = engine, source, key, store
        self.console = console
        self.gpus = gpus or [None]
        self.running: list[RunningModel] = []
        self.start_seconds = 0.0

    def get(self) -> list[RunningModel]:
        if not self.running:
            count = len(self.gpus)
            self.console.print(
                f"[bold]starting[/] {escape(self.source.display_name)} on the "
                f"{self.engine.name} engine" + (f" ({count} servers)" if count > 1 else "")
            )
            started = time.perf_counter()
            for gpu in self.gpus:
                self.running.append(self.engine.start(self.source, gpu))
            self.start_seconds = time.perf_counter() - started
            first = self.running[0]
            hello = first.client.hello
            assert hello is not None
            self.store.save_model_info(
                self.key, {"hello": hello.model_dump(), "provenance": self.provenance()}
            )
        return self.running

    def hello(self) -> Hello:
        """The model's hello (its servers started if they were not)."""
        hello = self.get()[0].client.hello
        assert hello is not None
        return hello

    def embed_task(
        self,
        task: Task,
        batch_size: int,
        console: Console,
        stores: dict[str, SplitStore],
        stored: dict[str, SplitEmbeddings],
    ) -> dict[str, SplitEmbeddings]:
        """The task's splits not in ``stored``, embedded by this host's servers."""
        servers = self.get()
        max_seconds = self.source.max_clip_seconds
        return embed_task(servers, task, batch_size, console, stores, max_seconds, stored)

    def provenance(self) -> dict[str, Any]:
        """The first server's provenance, and each server's device and peak memory so far."""
        info = dict(self.running[0].provenance)
        info["servers"] = [_server_info(r) for r in self.running]
        return info

    def __enter__(self) -> ModelOnDemand:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        for running in self.running:
            running.close(graceful=exc_type is None)


def _server_info(running: RunningModel) -> dict[str, Any]:
    hello, usage = running.client.hello, running.client.usage
    return {
        "label": running.label,
        "device": hello.device if hello else None,
        "device_name": hello.device_name if hello else None,
        "peak_rss_bytes": usage.peak_rss_bytes,
        "peak_gpu_bytes": usage.peak_gpu_bytes,
        "calls": usage.calls,  # since the server started (it may have served earlier tasks)
        "model_seconds": round(usage.model_seconds, 3),
    }


def embed_or_load(
    model: ModelOnDemand | ClusterModel,
    task: Task,
    store: EmbeddingStore,
    batch_size: int,
    console: Console,
    overwrite: Overwrite = "only-missing",
) -> tuple[dict[str, SplitEmbeddings], Hello, dict[str, Any]]:
    """The task's embeddings (from the store, or computed), the model's hello and provenance.

    Before the model starts, every clip is stat-ed: a clip that vanished is an error naming
    it, and a stored split is served only if its clips' files and its own files' checksums
    are what the store recorded (see hear_runner.embed.store); the rest is embedded.
    """

    def say(message: str) -> None:
        console.print(f"[yellow]store[/] {escape(message)}", soft_wrap=True)

    splits = {split: store.split(model.key, task, split, say) for split in task.splits}
    if overwrite == "always":
        for split_store in splits.values():
            with split_store.locked():
                split_store.clear()
    info = store.model_info(model.key)
    stored: dict[str, SplitEmbeddings] = {}
    if info is not None:
        rate = task.source_rate(Hello.model_validate(info["hello"]).sample_rate)
        stamps = {split: split_stamps(task, split, rate) for split in task.splits}
        for split, split_store in splits.items():
            if split_store.complete:
                with split_store.locked():
                    files = [c.file for c in task.clips(split)]
                    split_store.reconcile(files, stamps[split])
                    if split_store.complete:
                        stored[split] = split_store.load()
                        stored[split].split = split
        if len(stored) == len(splits):
            console.print(
                f"[green]cached[/] {escape(task.name)}: every split's embeddings are in the store"
            )
            return stored, Hello.model_validate(info["hello"]), info["provenance"]
    if overwrite == "never":
        missing = next(name for name in splits if name not in stored)
        raise HearError(
            f"{model.source.display_name} on {task.name}: split {missing!r} is not in the "
            f"embedding store ({splits[missing].path}) and --overwrite never computes nothing"
        )
    hello = model.hello()
    embedded = model.embed_task(task, batch_size, console, splits, stored)
    return embedded, hello, model.provenance()


def probe_and_score(
    source: ModelSource,
    hello: Hello,
    provenance: dict[str, Any],
    task: Task,
    embedded: dict[str, SplitEmbeddings],
    console: Console,
    probe_mode: ProbeMode = "fast",
    seeds: list[int] | None = None,
    grid_points: int | None = None,
    runner: Callable[..., ProbeOutcome] = run_probe,
    options: TrainingOptions | None = None,
    progress_dir: Path | None = None,
) -> RunRecord:
    """Train and score the probe on one task's embeddings: one result record.

    ``runner`` trains it (:func:`run_probe` here; a cluster's units on a Ray run); with
    ``progress_dir``, each training is saved there as it finishes, and a run stopped
    before its record resumes from them."""
    problem = ProbeProblem.from_task(task, embedded)
    seeds = seeds or [42]
    total = trainings(problem, probe_mode, seeds, grid_points, options)
    with progress(console, unit="trainings") as bars:
        bar = bars.add_task(f"{task.name} · {probe_mode} probe", total=total)
        saving: dict[str, Any] = {}
        if progress_dir:
            saving = {"progress_dir": progress_dir, "on_loaded": lambda n: bars.loaded(bar, n)}
        outcome = runner(
            problem, probe_mode, seeds, grid_points, lambda n: bars.advance(bar, n),
            options=options, on_epoch=lambda epoch: bars.note(bar, epoch.line()), **saving,
        )  # fmt: skip
    resumed = resumed_line(outcome.resumed, outcome.continued, total, escape(str(progress_dir)))
    if resumed:
        console.print(f"{escape(task.name)}: {resumed}", highlight=False, soft_wrap=True)
    scores = outcome.mean_scores()
    seed_scores = outcome.seed_scores()
    record = RunRecord(
        model=ModelInfo(
            name=source.display_name,
            kind=source.kind,
            options=source.options,
            max_clip_seconds=source.max_clip_seconds,
            sample_rate=hello.sample_rate,
            scene_embedding_size=hello.scene_embedding_size,
            timestamp_embedding_size=hello.timestamp_embedding_size,
            engine=provenance,
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
            resumed=outcome.resumed,
            continued=outcome.continued,
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
            "embed_cached": float(all(e.cached for e in embedded.values())),
            "clips_embedded": sum(e.clips_embedded for e in embedded.values()),
            "clips_from_store": sum(e.clips_from_store for e in embedded.values()),
            "clips_changed": sum(e.clips_changed for e in embedded.values()),
            "audio_seconds": round(sum(e.audio_seconds for e in embedded.values()), 3),
            "embedding_rows": sum(len(e.embeddings) for e in embedded.values()),
            **_throughput(embedded),
            "probe": round(outcome.seconds, 3),
        },
    )
    record.keep_predictions(problem.labels, outcome.predictions)
    record.keep_heareval_scores(predicted_scores(problem, outcome))
    interval = add_interval(record, problem.labels, outcome.predictions)
    if interval.seconds > 5:
        console.print(
            f"{task.name} · bootstrap interval: {interval.resamples} resamples of "
            f"{record.primary_metric} in {interval.seconds:.0f} s",
            markup=False,
        )
    return record


def add_interval(
    record: RunRecord, labels: list[str], predictions: list[FoldPredictions]
) -> Interval:
    """Set the record's bootstrap interval of its primary test score over test clips
    (hear_runner.results.stats, default resamples and seed); timed as ``timings["bootstrap"]``."""
    interval = bootstrap_interval(labels, predictions, get_metric(record.primary_metric))
    if interval.low is not None and interval.high is not None:
        record.test_score_ci = (interval.low, interval.high)
    record.bootstrap = interval.settings()
    record.timings["bootstrap"] = round(interval.seconds, 3)
    return interval


def embed_task(
    servers: list[RunningModel],
    task: Task,
    batch_size: int,
    console: Console,
    stores: dict[str, SplitStore],
    max_clip_seconds: float | None = None,
    stored: dict[str, SplitEmbeddings] | None = None,
) -> dict[str, SplitEmbeddings]:
    """Every split of ``task`` embedded into its store by every server, a progress bar each
    (the splits in ``stored``, already checked and loaded from the store, are kept as they are)."""
    embedded: dict[str, SplitEmbeddings] = dict(stored or {})
    with progress(console) as bars:
        for split in task.splits:
            if split in embedded:
                continue
            bar = bars.add_task(f"{task.name} · {split}", total=len(task.clips(split)))
            advance = functools.partial(bars.advance, bar)
            embedded[split] = embed_split(
                [s.client for s in servers], task, split, stores[split], batch_size, advance,
                max_clip_seconds,
            )  # fmt: skip
            batch_size = embedded[split].batch_size  # kept small after out-of-memory
    return embedded


def export_embeddings(
    engine: Engine,
    source: ModelSource,
    tasks: list[Task],
    out: Path,
    store: EmbeddingStore,
    batch_size: int = 32,
    console: Console | None = None,
    overwrite: Overwrite = "only-missing",
    gpus: list[str | None] | None = None,
) -> list[Path]:
    """Embed every task (through the store) and write ``out/<task>`` in heareval's layout."""
    from hear_runner.probes.heareval_dir import write_embeddings_dir

    console = console or Console(stderr=True)
    check_tasks(tasks, console)
    key = model_key(source, engine.check(source))
    written = []
    with ModelOnDemand(engine, source, key, store, console, gpus) as model:
        for task in tasks:
            embedded, _, _ = embed_or_load(model, task, store, batch_size, console, overwrite)
            written.append(write_embeddings_dir(task, embedded, out / task.name))
    return written


def _throughput(embedded: dict[str, SplitEmbeddings]) -> dict[str, float]:
    """Wall time of this run's embedding and audio seconds per second (when it computed any)."""
    wall = sum(e.wall_seconds for e in embedded.values())
    audio = sum(e.audio_seconds for e in embedded.values() if e.wall_seconds)
    if not wall:
        return {}
    return {"embed_wall": round(wall, 3), "audio_per_second": round(audio / wall, 2)}


def _check_metric(task: Task, metric: Metric) -> None:
    kind = "event" if task.metadata.embedding_type == "event" else "scene"
    if metric.kind != kind:
        raise HearError(
            f"{task.path / 'task_metadata.json'}: field 'evaluation': {metric.name} is a "
            f"{metric.kind} metric, but this is a {kind} task"
        )
