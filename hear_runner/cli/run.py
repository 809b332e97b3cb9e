"""`hear run` and `hear embed`: serve models over tasks (and what `hear rerun` shares)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hear_runner.cli.choices import overwrite_policy, probe_mode, training_options
from hear_runner.cli.options import (
    CacheDir,
    OverwriteOption,
    RayAddress,
    TaskNames,
    TasksDir,
    flag,
    model_options,
    serve_options,
)
from hear_runner.cli.probe_options import (
    GridPoints,
    PrecisionOption,
    ProbeModeOption,
    Seed,
    Seeds,
    ShuffleBatches,
)
from hear_runner.cli.render import err, esc, out, say, wrote
from hear_runner.engines.settings import ModelChoice, ServeSettings
from hear_runner.errors import HearError

if TYPE_CHECKING:
    from hear_runner.embed.store import Overwrite


@serve_options()
@model_options(many=True)
def run(
    models: ModelChoice,
    serve: ServeSettings,
    tasks_dir: TasksDir = ...,  # type: ignore[assignment]
    task: TaskNames = None,
    results_dir: Annotated[
        Path,
        typer.Option(
            "--results-dir", metavar="DIR", help="Where one JSON per (model, task) is written."
        ),
    ] = Path("hear-results"),
    probe: ProbeModeOption = "fast",
    grid_points: GridPoints = 8,
    seed: Seed = 42,
    seeds: Seeds = 1,
    precision: PrecisionOption = "float32",
    shuffle_batches: ShuffleBatches = False,
    cache_dir: CacheDir = ...,  # type: ignore[assignment]
    overwrite: OverwriteOption = "only-missing",
    json_output: Annotated[
        bool, flag("--json", "Print the result records as JSON instead of a table.")
    ] = False,
    dry_run: Annotated[
        bool, flag("--dry-run", "Print the plan (as `hear plan`) and exit; start nothing.")
    ] = False,
    ray: RayAddress = None,
) -> None:
    """Embed each task with each model, train a probe and score it on the test split.

    A run expected to take over a minute first prints its plan (see `hear plan`). A stopped
    run resumes when run again: embeddings are stored batch by batch, and each probe
    training is saved as it finishes, and every 5 minutes on its way
    (<results-dir>/<model>/<task>.probe-progress).
    """
    from hear_runner.cli.plan import announce_long_run, plan_request, show_plan
    from hear_runner.engines.select import select_engine
    from hear_runner.results.table import scores_table
    from hear_runner.tasks.choose import choose_tasks

    policy = overwrite_policy(overwrite)
    request = plan_request(models, serve, tasks_dir, task, results_dir, cache_dir, probe,
                           grid_points, seeds, policy)  # fmt: skip
    if dry_run:  # the probe mode is checked against the plan's table (no torch to import)
        return show_plan(request, json_output)
    mode = probe_mode(probe)
    training_options(mode, precision, shuffle_batches)  # checked before any model starts
    tasks = choose_tasks(tasks_dir, task, say=say)
    check_results_dir(results_dir)
    engine, sources = select_engine(models, serve, say=say)  # a missing image fails first
    if not json_output:  # stdout is the records' JSON then; stderr is for errors
        announce_long_run(request)
    probe_settings = {"mode": mode, "seeds": list(range(seed, seed + seeds)),
                      "grid_points": grid_points, "batch_size": serve.batch_size,
                      "precision": precision, "shuffle_batches": shuffle_batches}  # fmt: skip
    records = evaluate_and_record(
        engine, sources, tasks, results_dir, cache_dir, serve, probe_settings, policy, ray=ray
    )
    if json_output:
        out.print_json(json.dumps([r.model_dump(mode="json") for r in records]))
    else:
        out.print(scores_table(records))


@serve_options()
@model_options(many=False)
def embed(
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Folder to write <task>/ into, in heareval's embeddings layout.",
        ),
    ],
    models: ModelChoice,
    serve: ServeSettings,
    tasks_dir: TasksDir = ...,  # type: ignore[assignment]
    task: TaskNames = None,
    cache_dir: CacheDir = ...,  # type: ignore[assignment]
    overwrite: OverwriteOption = "only-missing",
) -> None:
    """Embed tasks with one model and write heareval's embeddings folders.

    They are what `hear probe`, heareval's predictions runner and notebooks that read its
    files take.
    """
    from hear_runner.embed.store import EmbeddingStore
    from hear_runner.engines.select import select_engine
    from hear_runner.evaluate import export_embeddings
    from hear_runner.files import check_writable
    from hear_runner.tasks.choose import choose_tasks

    if models.names and models.images:
        raise HearError("hear embed writes one model: name it with --model or --model-image")
    policy = overwrite_policy(overwrite)
    tasks = choose_tasks(tasks_dir, task, say=say)
    check_writable(out_dir, "--out folder")
    engine, sources = select_engine(models, serve, say=say)
    for path in export_embeddings(
        engine, sources[0], tasks, out_dir, EmbeddingStore(cache_dir), serve.batch_size, err,
        policy, serve.worker_gpus(),
    ):  # fmt: skip
        out.print(f"[green]wrote[/] {esc(path)}", soft_wrap=True)


def evaluate_and_record(
    engine: Any,
    sources: list[Any],
    tasks: list[Any],
    results_dir: Path,
    cache_dir: Path,
    serve: ServeSettings,
    probe: dict[str, Any],
    policy: Overwrite,
    rerun_of: Path | None = None,
    ray: str | None = None,
) -> list[Any]:
    """Evaluate, writing each record as it comes, then the run's manifest (for `hear rerun`);
    on the Ray cluster at ``ray`` when given (hear_runner.cluster)."""
    from hear_runner.embed.store import EmbeddingStore
    from hear_runner.evaluate import evaluate
    from hear_runner.results.manifest import (
        ManifestEngine,
        ManifestProbe,
        build_manifest,
    )

    if ray and engine.name != "docker":
        raise HearError("--ray runs Docker images (--model, --model-image), not --model-module")
    with _on_cluster(ray, serve) as cluster:
        records = evaluate(
            engine, sources, tasks, results_dir, EmbeddingStore(cache_dir), serve.batch_size,
            err, on_record=lambda r, p: wrote(p), probe_mode=probe["mode"],
            seeds=probe["seeds"], grid_points=probe["grid_points"], overwrite=policy,
            gpus=serve.worker_gpus(), cluster=cluster,
            options=training_options(probe["mode"], probe.get("precision", "float32"),
                                     probe.get("shuffle_batches", False)),
        )  # fmt: skip
        nodes = cluster.info.model_dump() if cluster else None
    manifest = build_manifest(
        ManifestEngine(
            engine=engine.name, python=getattr(engine, "python", None), **serve.model_dump()
        ),
        sources, [engine.check(s) for s in sources], tasks, ManifestProbe(**probe), records,
        results_dir, rerun_of, nodes,
    )  # fmt: skip
    path = manifest.write(results_dir)
    err.print(
        f"[green]wrote[/] {esc(path)} (hear rerun {esc(path)} repeats this run)", soft_wrap=True
    )
    return records


def check_results_dir(results_dir: Path) -> None:
    """The records and the manifest folder can be written: known before hours of work."""
    from hear_runner.files import check_writable
    from hear_runner.results.manifest import FOLDER

    check_writable(results_dir, "results folder")
    check_writable(results_dir / FOLDER, "manifest folder")


def _on_cluster(ray: str | None, serve: ServeSettings) -> Any:
    """The Ray cluster a run joins (``--ray``), or nothing for a local run."""
    if not ray:
        return contextlib.nullcontext()
    from hear_runner.cluster.connect import import_ray

    import_ray()  # before hear_runner.cluster.driver, which imports it
    from hear_runner.cluster.driver import joined

    return joined(ray, serve, err)
