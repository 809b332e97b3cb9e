"""The `hear` command: parse, call, render. No logic lives here."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from platformdirs import user_data_path
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hear_runner import __version__
from hear_runner.errors import HearError, ModelError

if TYPE_CHECKING:
    from hear_runner.embed.store import Overwrite
    from hear_runner.probes.stage import ProbeMode

app = typer.Typer(
    name="hear",
    help=(
        "Evaluate audio embedding models on HEAR tasks. Each model runs in its own "
        "Docker image (named with --model, see `hear models list`, or --model-image; or, "
        "with --model-module, in a local process) behind a small versioned contract; the "
        "host embeds the audio, trains probes and scores them."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
image_app = typer.Typer(help="Build model images offline.", no_args_is_help=True)
cache_app = typer.Typer(help="The embedding store: list and remove.", no_args_is_help=True)
tasks_app = typer.Typer(help="Prepare the task folders that plugins provide.", no_args_is_help=True)
models_app = typer.Typer(
    help="Named models that plugins register (for --model): their images.", no_args_is_help=True
)
app.add_typer(image_app, name="image")
app.add_typer(tasks_app, name="tasks")
app.add_typer(models_app, name="models")
app.add_typer(cache_app, name="cache")

# Piped output is not squeezed into 80 columns: tables stay readable in logs and CI.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def default_tasks_dir() -> Path:
    return Path(os.environ.get("HEAR_TASKS_DIR") or user_data_path("hear-runner") / "tasks")


TasksDir = Annotated[
    Path,
    typer.Option(
        "--tasks-dir",
        help="Folder of hear-preprocess task folders (or one task folder). "
        "Default: $HEAR_TASKS_DIR, else the platform data folder.",
        default_factory=default_tasks_dir,
        show_default=False,
    ),
]


ModelImage = Annotated[
    list[str] | None,
    typer.Option(
        "--model-image",
        help="Docker image serving a HEAR module (FROM hear/base). Repeat to compare models.",
    ),
]
OneModelName = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="A named model (hear models list): its image, built from its plugin's image "
        "folder if not here.",
    ),
]
ModelName = Annotated[
    list[str] | None,
    typer.Option(
        "--model",
        help="A named model (hear models list): its image, built from its plugin's image "
        "folder if not here, with its options under --model-options. Repeatable; combines "
        "with --model-image.",
    ),
]
ModelModule = Annotated[
    list[str] | None,
    typer.Option(
        "--model-module",
        help="HEAR-API module importable here, run by a local engine (no Docker). Repeatable.",
    ),
]
ModelPython = Annotated[
    str | None,
    typer.Option(
        "--model-python",
        help="Interpreter for --model-module (e.g. the model's own venv). Default: this one.",
    ),
]
ModelOptions = Annotated[
    str | None,
    typer.Option("--model-options", help="JSON object of keyword options for load_model()."),
]
ModelPath = Annotated[
    str | None,
    typer.Option("--model-path", help="Weights path passed to load_model() (inside the image)."),
]
Gpus = Annotated[
    str | None,
    typer.Option("--gpus", help="GPUs for model containers: all, a count, or device=0,2."),
]
Memory = Annotated[str, typer.Option("--memory", help="Memory limit of each model container.")]
Transport = Annotated[
    str,
    typer.Option(
        "--transport",
        help="How the host talks to model containers: socket (a Unix socket in a shared "
        "folder; fast), stdio (the attach stream; for a remote engine or hear in a "
        "container), or auto.",
    ),
]
Workers = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=1,
        help="Model servers sharing the work (default: one per GPU in --gpus, else one).",
    ),
]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Clips per model call.")]
MaxClipSeconds = Annotated[
    float | None,
    typer.Option(
        "--max-clip-seconds",
        min=0.5,
        help="Embed clips longer than this in chunks (timestamps kept exact). Clips a model "
        "runs out of memory on alone are chunked without it.",
    ),
]
LoadTimeout = Annotated[
    float, typer.Option("--load-timeout", help="Seconds a model may take to load.")
]
CallTimeout = Annotated[
    float,
    typer.Option(
        "--call-timeout",
        help="Seconds a model call may take, plus --call-timeout-per-second per audio second.",
    ),
]
CallTimeoutPerSecond = Annotated[
    float, typer.Option("--call-timeout-per-second", help="Extra call budget per audio second.")
]
TaskNames = Annotated[
    list[str] | None,
    typer.Option("--task", help="Task folder name to run (repeatable). Default: every task found."),
]
ProbeModeOption = Annotated[
    str,
    typer.Option(
        "--probe",
        "--mode",
        help="fast: heareval's grid trained at once as one batched network (GPU when present). "
        "faithful: heareval's protocol, network by network. linear: logistic regression.",
    ),
]
CacheDir = Annotated[
    Path,
    typer.Option(
        "--cache-dir",
        help="Embedding store. Default: $HEAR_CACHE_DIR, else the platform cache folder.",
        default_factory=lambda: _default_cache_dir(),
        show_default=False,
    ),
]
OverwriteOption = Annotated[
    str,
    typer.Option(
        "--overwrite",
        help="only-missing: reuse stored embeddings, compute the rest (a stopped run resumes). "
        "always: recompute. never: use the store only, fail if something is missing.",
    ),
]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the probe's training.")]
GridPoints = Annotated[
    int,
    typer.Option(
        "--grid-points",
        min=1,
        help="How many of heareval's shuffled grid points to try on the first fold (as "
        "heareval's --grid-points).",
    ),
]
Seeds = Annotated[
    int,
    typer.Option(
        "--seeds",
        min=1,
        help="Repeat the probe with N seeds (--seed, --seed+1, ...): mean and spread.",
    ),
]


@app.command()
def run(
    model: ModelName = None,
    model_image: ModelImage = None,
    model_module: ModelModule = None,
    model_python: ModelPython = None,
    tasks_dir: TasksDir = ...,  # type: ignore[assignment]
    task: TaskNames = None,
    results_dir: Annotated[
        Path, typer.Option("--results-dir", help="Where one JSON per (model, task) is written.")
    ] = Path("hear-results"),
    model_options: ModelOptions = None,
    model_path: ModelPath = None,
    gpus: Gpus = None,
    workers: Workers = None,
    transport: Transport = "auto",
    memory: Memory = "8g",
    batch_size: BatchSize = 32,
    max_clip_seconds: MaxClipSeconds = None,
    load_timeout: LoadTimeout = 600.0,
    call_timeout: CallTimeout = 60.0,
    call_timeout_per_second: CallTimeoutPerSecond = 10.0,
    probe: ProbeModeOption = "fast",
    grid_points: GridPoints = 8,
    seed: Seed = 42,
    seeds: Seeds = 1,
    cache_dir: CacheDir = ...,  # type: ignore[assignment]
    overwrite: OverwriteOption = "only-missing",
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the result records as JSON instead of a table.")
    ] = False,
) -> None:
    """Embed each task with each model, train a probe and score it on the test split."""
    from hear_runner.embed.store import EmbeddingStore
    from hear_runner.engines.base import worker_gpus
    from hear_runner.evaluate import evaluate
    from hear_runner.results.table import scores_table
    from hear_runner.tasks.folder import find_tasks

    mode = _probe_mode(probe)
    policy = _overwrite(overwrite)
    tasks = find_tasks(tasks_dir, task)
    _check_results_dir(results_dir)
    engine, sources = _engine_and_sources(
        model_image, model_module, model_python, model_options, model_path, gpus, memory,
        load_timeout, call_timeout, call_timeout_per_second, transport, model_names=model,
        max_clip_seconds=max_clip_seconds,
    )  # fmt: skip
    records = evaluate(
        engine,
        sources,
        tasks,
        results_dir,
        EmbeddingStore(cache_dir),
        batch_size,
        err,
        on_record=lambda r, p: err.print(f"[green]wrote[/] {_esc(p)}", soft_wrap=True),
        probe_mode=mode,
        seeds=list(range(seed, seed + seeds)),
        grid_points=grid_points,
        overwrite=policy,
        gpus=worker_gpus(gpus, workers),
    )
    _write_manifest(
        engine, sources, tasks, records, results_dir,
        {"memory": memory, "gpus": gpus, "workers": workers, "transport": transport,
         "load_timeout": load_timeout, "call_timeout": call_timeout,
         "call_timeout_per_second": call_timeout_per_second},
        {"mode": mode, "seeds": list(range(seed, seed + seeds)), "grid_points": grid_points,
         "batch_size": batch_size},
    )  # fmt: skip
    if json_output:
        out.print_json(json.dumps([r.model_dump(mode="json") for r in records]))
    else:
        out.print(scores_table(records))


def _write_manifest(
    engine: Any,
    sources: list[Any],
    tasks: list[Any],
    records: list[Any],
    results_dir: Path,
    settings: dict[str, Any],
    probe: dict[str, Any],
    rerun_of: Path | None = None,
) -> Path:
    """The run's manifest (for `hear rerun`), beside its records."""
    from hear_runner.results.manifest import ManifestEngine, ManifestProbe, build_manifest

    manifest = build_manifest(
        ManifestEngine(engine=engine.name, python=getattr(engine, "python", None), **settings),
        sources, [engine.check(s) for s in sources], tasks, ManifestProbe(**probe), records,
        results_dir, rerun_of,
    )  # fmt: skip
    path = manifest.write(results_dir)
    err.print(
        f"[green]wrote[/] {_esc(path)} (hear rerun {_esc(path)} repeats this run)", soft_wrap=True
    )
    return path


@app.command()
def report(
    results_dir: Annotated[
        Path, typer.Option("--results-dir", help="The folder `hear run` wrote its records into.")
    ] = Path("hear-results"),
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The HTML file to write.")
    ] = Path("report.html"),
    timeline_files: Annotated[
        int, typer.Option("--timeline-files", min=1, help="Test files per event timeline.")
    ] = 3,
) -> None:
    """Write one self-contained HTML page of the results (opens with no network): the
    leaderboard with intervals, a score chart per task, quality against embedding cost,
    event timelines (predicted against true) and confusion matrices of multiclass scene tasks.
    """
    from hear_runner.files import check_writable
    from hear_runner.report import write_report

    check_writable(output.parent, "report's folder")
    written = write_report(results_dir, output, timeline_files)
    plots = ", ".join(f"{len(ids)} {kind}" for kind, ids in written.plots.items())
    for note in written.notes:
        err.print(f"[dim]•[/] {_esc(note)}", soft_wrap=True)
    out.print(
        f"[green]wrote[/] {_esc(written.path)}: {len(written.models)} models, {len(written.tasks)} "
        f"tasks; plots: {plots}",
        soft_wrap=True,
    )


@app.command()
def rerun(
    manifest_path: Annotated[
        Path, typer.Argument(help="A run manifest: <results-dir>/manifests/<time>.json.")
    ],
    results_dir: Annotated[
        Path | None,
        typer.Option(
            "--results-dir",
            help="Where the rerun's records go. Default: <the run's results dir>-rerun-<manifest "
            "name>, beside it (the run's records are kept).",
        ),
    ] = None,
    tasks_dir: Annotated[
        Path | None,
        typer.Option(
            "--tasks-dir",
            help="Find the task folders here by name (default: the paths the manifest names).",
        ),
    ] = None,
    allow_changes: Annotated[
        bool,
        typer.Option(
            "--allow-changes",
            help="Run even where an image id or a task's content hash differs from the manifest.",
        ),
    ] = False,
    tolerance: Annotated[
        float,
        typer.Option("--tolerance", min=0, help="Largest absolute score difference that matches."),
    ] = 1e-9,
    allow_local: Annotated[
        bool,
        typer.Option(
            "--allow-local",
            help="Run the manifest's --model-module models: its interpreter runs them here, "
            "outside any container (a manifest from elsewhere can name any program). Without "
            "it such a rerun stops, saying what it would run.",
        ),
    ] = False,
    cache_dir: CacheDir = ...,  # type: ignore[assignment]
    overwrite: Annotated[
        str,
        typer.Option(
            "--overwrite",
            help="always (default): embed again; only-missing: reuse the embedding store "
            "(a re-score of the probes only); never: the store only.",
        ),
    ] = "always",
) -> None:
    """Run a manifest's models, tasks and options again and compare the scores with the
    ones it kept. Refuses an image whose id, or a task whose content hash, is not the
    manifest's (unless --allow-changes), and models that would run outside a container
    (unless --allow-local). Exit code 0 when every test score of every (model, task)
    matches within --tolerance, 1 when one differs or is missing."""
    from hear_runner.embed.store import EmbeddingStore
    from hear_runner.engines.base import worker_gpus
    from hear_runner.evaluate import evaluate
    from hear_runner.results.manifest import RunManifest, changes, compare
    from hear_runner.tasks.folder import Task

    manifest = RunManifest.load(manifest_path)
    policy = _overwrite(overwrite)
    settings = manifest.engine
    local = [
        f"module {m.ref} with the interpreter {settings.python or sys.executable}"
        for m in manifest.models
        if m.kind != "image"
    ]
    if local and not allow_local:
        raise HearError(
            f"{manifest_path}: this rerun would run outside a container, unsandboxed: "
            + "; ".join(local)
            + " (check them, then pass --allow-local to run them)"
        )
    for line in local:
        err.print(f"[yellow]running outside a container[/] (--allow-local): {_esc(line)}",
                  soft_wrap=True)  # fmt: skip
    images = [m.ref for m in manifest.models if m.kind == "image"]
    modules = [m.ref for m in manifest.models if m.kind == "module"]
    engine, _ = _engine_and_sources(
        images or None, modules or None, settings.python, None, None, settings.gpus,
        settings.memory, settings.load_timeout, settings.call_timeout,
        settings.call_timeout_per_second, settings.transport,
    )  # fmt: skip
    sources = manifest.sources()
    tasks = [Task(tasks_dir / t.name if tasks_dir else Path(t.path)) for t in manifest.tasks]
    changed = changes(manifest, [engine.check(s) for s in sources], tasks)
    if changed and not allow_changes:
        raise HearError(
            f"{manifest_path}: not the same inputs (--allow-changes runs anyway): "
            + "; ".join(changed)
        )
    for line in changed:
        err.print(f"[yellow]changed[/] {_esc(line)}", soft_wrap=True)
    kept = Path(manifest.results_dir)
    target = results_dir or kept.with_name(f"{kept.name}-rerun-{manifest_path.stem}")
    _check_results_dir(target)
    probe = manifest.probe
    records = evaluate(
        engine, sources, tasks, target, EmbeddingStore(cache_dir), probe.batch_size, err,
        on_record=lambda r, p: err.print(f"[green]wrote[/] {_esc(p)}", soft_wrap=True),
        probe_mode=_probe_mode(probe.mode), seeds=probe.seeds, grid_points=probe.grid_points,
        overwrite=policy, gpus=worker_gpus(settings.gpus, settings.workers),
    )  # fmt: skip
    _write_manifest(
        engine, sources, tasks, records, target,
        settings.model_dump(exclude={"engine", "python"}), probe.model_dump(), manifest_path,
    )  # fmt: skip
    rows = compare(manifest, target, tolerance)
    table = Table(title=f"hear rerun {_esc(manifest_path.name)}: test scores", header_style="bold")
    for column in ("model", "task", "metric", "manifest", "rerun", "max |diff|", "same"):
        left = column in ("model", "task", "metric")
        table.add_column(column, justify="left" if left else "right")
    for row in rows:
        table.add_row(
            _esc(row.model), _esc(row.task), _esc(row.metric),
            _score_text(row.old), _score_text(row.new),
            "—" if row.difference is None else f"{row.difference:.2e}",
            "[green]yes[/]" if row.match else "[red]no[/]",
        )  # fmt: skip
    out.print(table)
    differ = sum(not r.match for r in rows)
    if differ:
        out.print(f"[red]{differ} of {len(rows)} (model, task) scores differ[/] "
                  f"(tolerance {tolerance:g})")  # fmt: skip
        raise typer.Exit(1)
    out.print(f"[green]all {len(rows)} (model, task) scores match[/] (tolerance {tolerance:g})")


def _score_text(value: float | str | None) -> str:
    return "missing" if value is None else value if isinstance(value, str) else f"{value:.6f}"


@app.command()
def embed(
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out", help="Folder to write <task>/ into, in heareval's embeddings layout."
        ),
    ],
    model: OneModelName = None,
    model_image: Annotated[
        str | None, typer.Option("--model-image", help="Docker image serving a HEAR module.")
    ] = None,
    model_module: Annotated[
        str | None,
        typer.Option("--model-module", help="HEAR-API module run by a local engine (no Docker)."),
    ] = None,
    model_python: ModelPython = None,
    tasks_dir: TasksDir = ...,  # type: ignore[assignment]
    task: TaskNames = None,
    model_options: ModelOptions = None,
    model_path: ModelPath = None,
    gpus: Gpus = None,
    workers: Workers = None,
    transport: Transport = "auto",
    memory: Memory = "8g",
    batch_size: BatchSize = 32,
    max_clip_seconds: MaxClipSeconds = None,
    load_timeout: LoadTimeout = 600.0,
    call_timeout: CallTimeout = 60.0,
    call_timeout_per_second: CallTimeoutPerSecond = 10.0,
    cache_dir: CacheDir = ...,  # type: ignore[assignment]
    overwrite: OverwriteOption = "only-missing",
) -> None:
    """Embed tasks with one model and write heareval's embeddings folders (for `hear probe`,
    heareval's predictions runner and notebooks that read its files)."""
    from hear_runner.embed.store import EmbeddingStore
    from hear_runner.engines.base import worker_gpus
    from hear_runner.evaluate import export_embeddings
    from hear_runner.files import check_writable
    from hear_runner.tasks.folder import find_tasks

    if model and model_image:
        raise HearError("hear embed writes one model: name it with --model or --model-image")
    policy = _overwrite(overwrite)
    tasks = find_tasks(tasks_dir, task)
    check_writable(out_dir, "--out folder")
    engine, sources = _engine_and_sources(
        [model_image] if model_image else None, [model_module] if model_module else None,
        model_python, model_options, model_path, gpus, memory,
        load_timeout, call_timeout, call_timeout_per_second, transport,
        model_names=[model] if model else None, max_clip_seconds=max_clip_seconds,
    )  # fmt: skip
    store = EmbeddingStore(cache_dir)
    for path in export_embeddings(
        engine, sources[0], tasks, out_dir, store, batch_size, err, policy,
        worker_gpus(gpus, workers),
    ):  # fmt: skip
        out.print(f"[green]wrote[/] {_esc(path)}", soft_wrap=True)


@app.command()
def probe(
    embeddings_dirs: Annotated[
        list[Path],
        typer.Argument(
            help="Embeddings folders in heareval's layout (<split>.embeddings.npy, "
            "<split>.embedding-dimensions.json, <split>.target-labels.pkl, task_metadata.json, "
            "labelvocabulary.csv; event tasks also <split>.filename-timestamps.json and "
            "<split>.json), or a folder of them."
        ),
    ],
    mode: ProbeModeOption = "fast",
    grid_points: GridPoints = 8,
    seed: Seed = 42,
    seeds: Seeds = 1,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print heareval's score files as JSON.")
    ] = False,
) -> None:
    """Train and score probes on precomputed embeddings; write heareval's
    test.predicted-scores.json into each folder."""
    from hear_runner.files import check_writable
    from hear_runner.probes.heareval_dir import (
        is_embeddings_dir,
        predicted_scores,
        read_embeddings_dir,
        write_predicted_scores,
    )
    from hear_runner.probes.stage import run_probe
    from hear_runner.results.table import probe_table

    probe_mode = _probe_mode(mode)
    folders = []
    for path in embeddings_dirs:
        found = (
            [path]
            if is_embeddings_dir(path)
            else sorted(p for p in path.glob("*") if is_embeddings_dir(p))
        )
        if not found:
            raise HearError(
                f"{path}: not an embeddings folder (no task_metadata.json and "
                "<split>.embedding-dimensions.json), nor a folder of them"
            )
        folders += found
    for folder in folders:  # each gets heareval's score file: known before any training
        check_writable(folder, "embeddings folder")
    rows = []
    for folder in folders:
        problem = read_embeddings_dir(folder)
        with _progress_bar(f"{folder.name} · {probe_mode} probe") as advance:
            outcome = run_probe(
                problem, probe_mode, list(range(seed, seed + seeds)), grid_points, advance
            )
        path = write_predicted_scores(problem, outcome)
        err.print(f"[green]wrote[/] {_esc(path)}", soft_wrap=True)
        rows.append((problem, outcome))
    if json_output:
        out.print_json(json.dumps({str(p.source): predicted_scores(p, o) for p, o in rows}))
    else:
        out.print(probe_table(rows))


@app.command()
def score(
    task_dir: Annotated[Path, typer.Argument(help="A task folder (hear-preprocess layout).")],
    split: Annotated[str, typer.Argument(help="The split the predictions are for, e.g. test.")],
    predictions: Annotated[
        Path,
        typer.Argument(
            help="JSON: scene {file: {label: score}}; event {file: [{label, start, end}]} (ms)."
        ),
    ],
    json_output: Annotated[
        bool,
        typer.Option("--json", help="Print {metric: value} ({metric: {sub: value}} for events)."),
    ] = False,
) -> None:
    """Score predictions made elsewhere with the task's own metrics (heareval's definitions)."""
    from hear_runner.score import score_predictions
    from hear_runner.tasks.folder import Task

    task = Task(task_dir)
    values = score_predictions(task, split, predictions)
    if json_output:
        out.print_json(json.dumps(values))
        return
    table = Table(title=f"{_esc(task.name)} · {_esc(split)}", header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in values.items():
        if isinstance(value, dict):
            table.add_row(_esc(name), _esc(", ".join(f"{k} {v:.4f}" for k, v in value.items())))
        else:
            table.add_row(_esc(name), f"{value:.4f}")
    out.print(table)


@app.command("validate")
def validate_model(
    model: OneModelName = None,
    model_image: Annotated[
        str | None, typer.Option("--model-image", help="Docker image to validate (FROM hear/base).")
    ] = None,
    model_module: Annotated[
        str | None,
        typer.Option("--model-module", help="HEAR-API module to validate with the local engine."),
    ] = None,
    model_python: ModelPython = None,
    model_options: ModelOptions = None,
    model_path: ModelPath = None,
    gpus: Gpus = None,
    memory: Memory = "8g",
    transport: Transport = "auto",
    load_timeout: LoadTimeout = 600.0,
    long_seconds: Annotated[
        float,
        typer.Option(
            "--long-seconds", min=0, help="Length of the long-input check's clip (0 skips it)."
        ),
    ] = 1200.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random test audio.")] = 0,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON instead of a table.")
    ] = False,
) -> None:
    """Check that a model honours the HEAR API and the contract, as `hear run` starts it.

    hear-validator's checks (sample rate in 16000, 22050, 32000, 44100, 48000; integer
    sizes; timestamp embeddings of 2 clips of 1.07, 1.98 and 4.0 s: float32, shaped
    (2, T, size) with (2, T) timestamps, the same for both clips, a regular hop within
    1 ms, increasing, inside the clip; scene embeddings of 4 clips of 2.74 s: float32,
    (4, size)), then: no NaN or Inf, the same call twice gives the same output, 4 clips
    in one call match one by one, one --long-seconds clip (20 minutes by default: speed,
    timestamps still on the clip), cold start and peak memory, and an image's org.hear.*
    labels against its hello. The audio is random in [-1, 1]. Exit code 0 when nothing
    fails (skips allowed), 1 when a check fails, 2 when nothing could be checked.
    """
    from hear_runner.validate import validate

    try:
        engine, sources = _engine_and_sources(
            [model_image] if model_image else None, [model_module] if model_module else None,
            model_python, model_options, model_path, gpus, memory, load_timeout, 60.0, 10.0,
            transport, model_names=[model] if model else None,
        )  # fmt: skip
        if len(sources) != 1:
            raise HearError("hear validate checks one model: name it once")
        engine.check(sources[0])  # a missing or non-contract image: nothing to check
    except HearError as e:
        e.exit_code = 2
        raise

    def said(check: Any) -> None:
        colour = {"pass": "green", "fail": "red", "skip": "dim"}[check.result]
        err.print(
            f"[dim]•[/] {_esc(check.name)}: [{colour}]{check.result}[/] ({check.seconds:.1f} s)"
        )
        if check.traceback and os.environ.get("HEAR_DEBUG"):
            err.print(check.traceback, highlight=False, markup=False)

    report = validate(engine, sources[0], long_seconds, seed, on_check=said)
    if json_output:
        out.print_json(report.model_dump_json())
    else:
        table = Table(title=f"hear validate: {escape(report.model)}", header_style="bold")
        for column in ("check", "result", "detail", "seconds"):
            table.add_column(column, justify="right" if column == "seconds" else "left")
        marks = {"pass": "[green]pass[/]", "fail": "[red]FAIL[/]", "skip": "[dim]skip[/]"}
        for c in report.checks:
            table.add_row(_esc(c.name), marks[c.result], escape(c.detail), f"{c.seconds:.2f}")
        out.print(table)
        n = report.counts
        verdict = "[green]passed[/]" if report.passed else "[red]failed[/]"
        out.print(
            f"{escape(report.model)}: {verdict}: {n['pass']} passed, {n['fail']} failed, "
            f"{n['skip']} skipped in {sum(c.seconds for c in report.checks):.1f} s"
        )
    raise typer.Exit(0 if report.passed else 1)


@app.command("plugins")
def list_plugins(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List loaded plugins with their versions and the hooks they implement."""
    from hear_runner.plugins import plugins

    infos = plugins()
    if json_output:
        out.print_json(json.dumps([vars(i) for i in infos]))
        return
    table = Table(title="hear plugins", header_style="bold")
    for column in ("name", "module", "distribution", "version", "hooks"):
        table.add_column(column)
    for i in infos:
        cells = (i.name, i.module, i.distribution or "", i.version or "", ", ".join(i.hooks))
        table.add_row(*map(_esc, cells))
    out.print(table)


ResultsDir = Annotated[
    Path,
    typer.Option("--results-dir", help="The folder `hear run` wrote its records into (searched "
                 "at any depth)."),
]  # fmt: skip


@app.command()
def leaderboard(
    results_dir: ResultsDir = Path("hear-results"),
    fmt: Annotated[
        str, typer.Option("--format", help="table (rich), csv, json or markdown.")
    ] = "table",
) -> None:
    """Models by tasks: each task's primary test score with its 95% bootstrap interval, and
    HEAR's normalized aggregate (per-task z-scores across models clipped to [-1, 1], averaged
    over the tasks a model has). Missing cells are shown as missing; of several records of one
    (model, task) the newest is used."""
    from hear_runner.results.leaderboard import FORMATS, build_leaderboard, render, to_table

    if fmt not in FORMATS:
        raise HearError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    board = build_leaderboard(results_dir)
    if fmt == "table":
        out.print(to_table(board))
        for note in board.notes:
            err.print(f"[dim]•[/] {escape(note)}", soft_wrap=True)
    else:
        sys.stdout.write(render(board, fmt))


@app.command()
def compare(
    model_a: Annotated[str, typer.Argument(help="Model A, named as in its records.")],
    model_b: Annotated[str, typer.Argument(help="Model B.")],
    results_dir: ResultsDir = Path("hear-results"),
    resamples: Annotated[
        int | None,
        typer.Option(
            "--resamples", min=1, help="Bootstrap resamples (default: 1000 scene, 200 event)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap draws.")] = 0,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A paired bootstrap per task both models have: the difference A - B of the primary
    test score on the same resampled test clips, its 95% interval, a two-sided p-value and a
    verdict (A better, B better, or a tie where p >= 0.05)."""
    from hear_runner.results.compare import compare_models, to_json, to_table

    rows, notes = compare_models(results_dir, model_a, model_b, resamples, seed)
    if json_output:
        out.print_json(json.dumps(to_json(model_a, model_b, rows, notes)))
        return
    out.print(to_table(model_a, model_b, rows))
    for note in notes:
        err.print(f"[dim]•[/] {escape(note)}", soft_wrap=True)


@models_app.command("list")
def models_list(
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the specs as JSON (present: null if unknown).")
    ] = False,
) -> None:
    """List the named models plugins register (for --model): image, whether the Docker engine
    has it, GPU, sample rate, plugin (--json adds the folder a missing image is built from)."""
    from hear_runner.models import is_present, model_specs

    specs = model_specs()
    present: dict[str, bool | None] = {s.name: None for s in specs}
    with contextlib.suppress(Exception):  # no engine: "unknown", the listing still works
        import docker

        client = docker.from_env(timeout=10)
        client.ping()
        present = {s.name: is_present(client, s.image) for s in specs}
    if json_output:
        rows = [{**s.model_dump(mode="json"), "present": present[s.name]} for s in specs]
        out.print_json(json.dumps(rows))
        return
    table = Table(title="hear models", header_style="bold")
    for column in ("name", "image", "present", "gpu", "rate", "plugin", "description"):
        table.add_column(column, justify="right" if column == "rate" else "left")
    for s in specs:
        here = present[s.name]
        table.add_row(
            _esc(s.name),
            _esc(s.image),
            "unknown" if here is None else "yes" if here else "no",
            "yes" if s.gpu else "no",
            str(s.sample_rate or ""),
            _esc(s.plugin),
            _esc(s.description),
        )
    out.print(table)


@image_app.command("build")
def image_build(
    folder: Annotated[
        Path,
        typer.Argument(
            help="Image folder with a Dockerfile (e.g. ./my-model), or one that hear-runner "
            "ships, by name (e.g. base, naive: no clone needed)."
        ),
    ],
    tag: Annotated[
        str | None, typer.Option("--tag", help="Image name. Default: hear/<folder name>:latest.")
    ] = None,
    base_image: Annotated[
        str | None,
        typer.Option("--base-image", help="Override the Dockerfile's BASE_IMAGE build argument."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild even if nothing changed.")
    ] = False,
) -> None:
    """Build an image folder offline: wheels are prepared on this host from requirements.txt.

    Where no registry is reachable, a public base is replaced by a Debian base made
    locally with debootstrap. Model images are started once and their sample rate and
    embedding sizes are stamped into the image's labels.
    """
    from hear_runner.build.builder import build_image
    from hear_runner.engines.docker import connect

    result = build_image(
        connect(), folder, tag, base_image, say=lambda m: err.print(f"[dim]•[/] {_esc(m)}"),
        force=force,
    )  # fmt: skip
    out.print(f"{_esc(result.tag)} {result.image_id[:19]}", highlight=False)


@tasks_app.command("list")
def tasks_list(
    tasks_dir: TasksDir = ...,  # type: ignore[assignment]
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the tasks plugins provide and the task folders found, and whether data is here."""
    from hear_runner.tasks.catalog import list_tasks

    listings = list_tasks(tasks_dir)
    if json_output:
        rows = [{**lst.model_dump(), "present": lst.present} for lst in listings]
        out.print_json(json.dumps(rows))
        return
    table = Table(title=f"HEAR tasks ({_esc(tasks_dir)})", header_style="bold")
    columns = ("name", "plugin", "domain", "embedding", "prediction", "split mode", "clips", "data")
    for column in columns:
        table.add_column(column, justify="right" if column == "clips" else "left")
    for t in listings:
        table.add_row(
            _esc(t.name),
            _esc(t.plugin or "(folder)"),
            _esc(t.domain),
            _esc(t.embedding_type),
            _esc(t.prediction_type),
            _esc(t.split_mode),
            "" if t.clips is None else str(t.clips),
            _esc(", ".join(t.folders)) if t.present else "[dim]not prepared[/]",
        )
    out.print(table)


@tasks_app.command("info")
def tasks_info(
    name: Annotated[str, typer.Argument(help="Task name or task folder name.")],
    tasks_dir: TasksDir = ...,  # type: ignore[assignment]
) -> None:
    """Show one task: what it is, its folders, splits and metadata."""
    from hear_runner.tasks.catalog import find_listing
    from hear_runner.tasks.folder import Task

    listing = find_listing(tasks_dir, name)
    out.print_json(json.dumps({**listing.model_dump(), "present": listing.present}))
    for folder in listing.folders:
        task = Task(tasks_dir / folder)
        splits = {s: len(task.clips(s)) for s in task.splits}
        out.print(
            f"[bold]{_esc(folder)}[/]: {_esc(splits)}; labels {len(task.vocabulary)}; "
            f"rates {task.sample_rates}"
        )
        out.print_json(task.metadata.model_dump_json())


@tasks_app.command("download")
def tasks_download(
    names: Annotated[
        list[str],
        typer.Argument(help="HEAR 2021 task names or folder names, or hear2021 for all 19."),
    ],
    tasks_dir: TasksDir = ...,  # type: ignore[assignment]
    sample_rate: Annotated[
        int,
        typer.Option(
            "--sample-rate",
            help="Rate to have on disk: 16000, 22050, 32000, 44100 or 48000 (resampled here).",
        ),
    ] = 48000,
    mirror: Annotated[
        str | None,
        typer.Option(
            "--mirror",
            envvar="HEAR_MIRROR",
            help="Base URL of a mirror: each archive is fetched from <URL>/<archive file name> "
            "(e.g. <URL>/hear2021-esc50-v2.0.0-full-48000.tar.gz), not from Zenodo.",
        ),
    ] = None,
    max_expansion: Annotated[
        float | None,
        typer.Option(
            "--max-expansion",
            envvar="HEAR_MAX_EXPANSION",
            help="Refuse an archive that unpacks to more than this many times its size "
            "(plus 64 MiB). Default 20.",
        ),
    ] = None,
) -> None:
    """Download released HEAR task archives (resumable, verified) and extract them. Where
    the catalogue has no checksum, the first complete download's size and sha256 are kept
    in TASKS_DIR/.downloads/<archive>.verified.json and every later one must match."""
    from hear_runner.tasks.download import download_tasks

    paths = download_tasks(
        names, tasks_dir, sample_rate, progress=True, mirror=mirror or None,
        max_expansion=max_expansion,
    )  # fmt: skip
    for path in paths:
        out.print(f"{_esc(path.name)}: {_esc(path)}", soft_wrap=True)


@tasks_app.command("prepare")
def tasks_prepare(
    names: Annotated[list[str], typer.Argument(help="Task or suite names (e.g. mini).")],
    tasks_dir: TasksDir = ...,  # type: ignore[assignment]
    scale: Annotated[
        str, typer.Option("--scale", help="Size of generated tasks: smoke or full.")
    ] = "smoke",
) -> None:
    """Write task folders (hear-preprocess layout) that plugins can generate or download."""
    from hear_runner.tasks.sources import select_sources

    tasks_dir.mkdir(parents=True, exist_ok=True)
    for source in select_sources(names):
        if scale not in source.scales:
            raise HearError(
                f"task {source.name} has scales {', '.join(source.scales)}, not {scale!r}"
            )
        path = source.prepare(tasks_dir, scale)
        out.print(f"{_esc(source.name)}: {_esc(path)}")


@cache_app.command("list")
def cache_list(
    cache_dir: CacheDir = ...,  # type: ignore[assignment]
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every stored split: model, task, rows, size, and whether it is complete."""
    from hear_runner.embed.store import EmbeddingStore

    entries = EmbeddingStore(cache_dir).entries()
    if json_output:
        out.print_json(json.dumps(entries))
        return
    table = Table(title=f"Embedding store: {_esc(cache_dir)}", header_style="bold")
    for column in ("model", "task", "split", "rows", "MiB", "state"):
        table.add_column(column, justify="right" if column in ("rows", "MiB") else "left")
    for e in entries:
        state = "complete" if e["complete"] else f"partial ({e['batches']} batches)"
        table.add_row(_esc(e["model"]), _esc(e["task"]), _esc(e["split"]), str(e["rows"] or "—"),
                      f"{e['bytes'] / 2**20:.1f}", state)  # fmt: skip
    out.print(table)


@cache_app.command("remove")
def cache_remove(
    model: Annotated[
        str | None, typer.Option("--model", help="Only this model (as named to hear run).")
    ] = None,
    task: Annotated[str | None, typer.Option("--task", help="Only this task folder.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Everything in the store.")] = False,
    cache_dir: CacheDir = ...,  # type: ignore[assignment]
) -> None:
    """Remove stored embeddings of a model, a task, or both (--all for everything)."""
    from hear_runner.embed.store import EmbeddingStore

    if not (model or task or all_):
        raise HearError("name what to remove: --model, --task, or --all")
    removed = EmbeddingStore(cache_dir).remove(model, task)
    for path in removed:
        out.print(f"removed {_esc(path)}", soft_wrap=True)
    if not removed:
        out.print("nothing matched")


def _check_results_dir(results_dir: Path) -> None:
    """The records and the manifest folder can be written: known before hours of work."""
    from hear_runner.files import check_writable
    from hear_runner.results.manifest import FOLDER

    check_writable(results_dir, "results folder")
    check_writable(results_dir / FOLDER, "manifest folder")


def _probe_mode(value: str) -> ProbeMode:
    from hear_runner.probes.stage import PROBE_MODES

    if value not in PROBE_MODES:
        raise HearError(f"probe mode {value!r}: expected one of {', '.join(PROBE_MODES)}")
    return value  # type: ignore[return-value]


def _overwrite(value: str) -> Overwrite:
    from hear_runner.embed.store import OVERWRITE_CHOICES

    if value not in OVERWRITE_CHOICES:
        raise HearError(f"--overwrite {value!r}: expected one of {', '.join(OVERWRITE_CHOICES)}")
    return value  # type: ignore[return-value]


def _default_cache_dir() -> Path:
    from hear_runner.embed.store import default_cache_dir

    return default_cache_dir()


def _engine_and_sources(
    model_image: list[str] | None,
    model_module: list[str] | None,
    model_python: str | None,
    model_options: str | None,
    model_path: str | None,
    gpus: str | None,
    memory: str,
    load_timeout: float,
    call_timeout: float,
    call_timeout_per_second: float,
    transport: str = "auto",
    model_names: list[str] | None = None,
    max_clip_seconds: float | None = None,
) -> tuple[Any, list[Any]]:
    """The engine the model options ask for, and a source per named model."""
    from hear_runner.engines.base import EngineSettings, ModelSource

    if model_names and model_module:
        raise HearError(
            "--model names a Docker image: it cannot be combined with --model-module (local)"
        )
    if bool(model_image or model_names) == bool(model_module):
        raise HearError(
            "name the model with --model or --model-image (Docker) or --model-module (local), "
            "not both"
        )
    specs = []
    if model_names:
        from hear_runner.models import find_models

        specs = find_models(model_names)  # unknown names fail before Docker is asked
    options = _json_object(model_options, "--model-options")
    settings = EngineSettings(
        load_timeout=load_timeout,
        budget_base_seconds=call_timeout,
        budget_per_audio_second=call_timeout_per_second,
    )
    engine: Any
    kind: Literal["image", "module"]
    if model_image or specs:
        from hear_runner.engines.docker import DockerEngine, Sandbox
        from hear_runner.models import ensure_image

        if transport not in ("auto", "socket", "stdio"):
            raise HearError(f"--transport {transport!r}: expected auto, socket or stdio")
        sandbox = Sandbox(memory=memory, gpus=gpus, transport=transport)  # type: ignore[arg-type]
        engine = DockerEngine(settings, sandbox)
        named = []
        for spec in specs:
            if spec.gpu and not gpus:
                err.print(
                    f"[dim]•[/] model {_esc(spec.name)} wants a GPU: without --gpus it runs on CPU"
                )
            tag = ensure_image(engine.docker, spec, say=lambda m: err.print(f"[dim]•[/] {_esc(m)}"))
            named.append(
                ModelSource(kind="image", ref=tag, options={**spec.options, **options},
                            model_path=model_path)
            )  # fmt: skip
        images = [
            ModelSource(kind="image", ref=r, options=options, model_path=model_path)
            for r in model_image or []
        ]
        sources = named + images
    else:
        from hear_runner.engines.local import LocalEngine

        engine = LocalEngine(settings, model_python or sys.executable)
        refs, kind = model_module or [], "module"
        sources = [
            ModelSource(kind=kind, ref=r, options=options, model_path=model_path) for r in refs
        ]
    if max_clip_seconds:
        sources = [s.model_copy(update={"max_clip_seconds": max_clip_seconds}) for s in sources]
    return engine, sources


@contextlib.contextmanager
def _progress_bar(description: str) -> Iterator[Callable[[int], None]]:
    from hear_runner.progress import progress

    with progress(err, unit="trainings") as bars:
        bar = bars.add_task(description, total=None)
        yield lambda n: bars.advance(bar, n)


def _esc(value: object) -> str:
    """Text a model, task, plugin or file supplied, shown as it is: rich reads ``[...]`` in
    printed strings and table cells as markup (a crash on ``[/bold]``, a restyle, a link)."""
    return escape(str(value))


def _json_object(text: str | None, option: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise HearError(f"{option}: not valid JSON: {e.msg}") from None
    if not isinstance(value, dict):
        raise HearError(f"{option}: expected a JSON object")
    return value


def version_callback(value: bool) -> None:
    if value:
        out.print(f"hear-runner {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=version_callback, is_eager=True, help="Show the version."
        ),
    ] = False,
) -> None:
    """Evaluate audio embeddings on HEAR tasks."""


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM: unwinds every `with` so model servers are stopped and removed."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


#: OSErrors that main() shows as one line naming the file (disk full, read-only, no access).
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES}


def _interrupt(signum: int, _frame: object) -> None:
    raise Interrupted(signum)


def main() -> None:
    """Entry point: one-line errors, containers removed on Ctrl-C and SIGTERM."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        app()
    except ModelError as e:
        err.print(f"[red]error:[/] {_esc(e)}", highlight=False, soft_wrap=True)
        if e.detail and os.environ.get("HEAR_DEBUG"):
            err.print(e.detail, highlight=False, markup=False)
        sys.exit(e.exit_code)
    except HearError as e:
        err.print(f"[red]error:[/] {_esc(e)}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except OSError as e:
        # A full or read-only disk met outside the atomic writers: one line naming the path.
        if e.errno not in _DISK_ERRNOS or not e.filename:
            raise
        reason = e.strerror or os.strerror(e.errno)
        err.print(f"[red]error:[/] {_esc(e.filename)}: {_esc(reason)}", highlight=False,
                  soft_wrap=True)  # fmt: skip
        sys.exit(1)
    except Interrupted as e:
        err.print(f"[yellow]interrupted[/] ({e}): model servers stopped; finished results are kept")
        sys.exit(128 + e.signum)
