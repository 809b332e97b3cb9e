"""`hear rerun`: a manifest's run again, its scores compared with the kept ones."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table

from hear_runner.cli.choices import overwrite_policy, probe_mode
from hear_runner.cli.options import CacheDir, RayAddress, flag
from hear_runner.cli.render import err, esc, out, say
from hear_runner.cli.run import check_results_dir, evaluate_and_record
from hear_runner.errors import HearError


def rerun(
    manifest_path: Annotated[
        Path, typer.Argument(help="A run manifest: <results-dir>/manifests/<time>.json.")
    ],
    results_dir: Annotated[
        Path | None,
        typer.Option(
            "--results-dir",
            metavar="DIR",
            help="Where the rerun's records go. Default: <the run's results dir>-rerun-<manifest "
            "name>, beside it (the run's records are kept).",
        ),
    ] = None,
    tasks_dir: Annotated[
        Path | None,
        typer.Option(
            "--tasks-dir",
            metavar="DIR",
            help="Find the task folders here by name (default: the paths the manifest names).",
        ),
    ] = None,
    allow_changes: Annotated[
        bool,
        flag(
            "--allow-changes",
            "Run even where an image id or a task's content hash differs from the manifest.",
        ),
    ] = False,
    tolerance: Annotated[
        float,
        typer.Option(
            "--tolerance",
            min=0,
            metavar="DIFF",
            help="Largest absolute score difference that matches.",
        ),
    ] = 1e-9,
    allow_local: Annotated[
        bool,
        flag(
            "--allow-local",
            "Run the manifest's --model-module models: its interpreter runs them here, "
            "outside any container (a manifest from elsewhere can name any program). Without "
            "it such a rerun stops, saying what it would run.",
        ),
    ] = False,
    cache_dir: CacheDir = ...,  # type: ignore[assignment]
    overwrite: Annotated[
        str,
        typer.Option(
            "--overwrite",
            metavar="POLICY",
            help="always (default): embed again; only-missing: reuse the embedding store "
            "(a re-score of the probes only); never: the store only.",
        ),
    ] = "always",
    ray: RayAddress = None,
) -> None:
    """Run a manifest's models, tasks and options again and compare the scores it kept.

    Refuses an image whose id, or a task whose content hash, is not the manifest's
    (unless --allow-changes), and models that would run outside a container (unless
    --allow-local). Exit code 0 when every test score of every (model, task) matches
    within --tolerance, 1 when one differs or is missing.
    """
    from hear_runner.engines.select import select_engine
    from hear_runner.engines.settings import ModelChoice, ServeSettings
    from hear_runner.results.manifest import RunManifest, changes, compare
    from hear_runner.tasks.folder import Task

    manifest = RunManifest.load(manifest_path)
    policy = overwrite_policy(overwrite)
    kept = manifest.engine
    local = [
        f"module {m.ref} with the interpreter {kept.python or sys.executable}"
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
        err.print(f"[yellow]running outside a container[/] (--allow-local): {esc(line)}",
                  soft_wrap=True)  # fmt: skip
    choice = ModelChoice(
        images=[m.ref for m in manifest.models if m.kind == "image"],
        modules=[m.ref for m in manifest.models if m.kind == "module"],
        python=kept.python,
    )
    try:
        serve = ServeSettings(
            **kept.model_dump(exclude={"engine", "python", "batch_size"}),
            batch_size=manifest.probe.batch_size,
        )
    except ValidationError as e:
        raise HearError(f"{manifest_path}: engine settings: {e.errors()[0]['msg']}") from None
    engine, _ = select_engine(choice, serve, say=say)
    sources = manifest.sources()
    tasks = [Task(tasks_dir / t.name if tasks_dir else Path(t.path)) for t in manifest.tasks]
    changed = changes(manifest, [engine.check(s) for s in sources], tasks)
    if changed and not allow_changes:
        raise HearError(
            f"{manifest_path}: not the same inputs (--allow-changes runs anyway): "
            + "; ".join(changed)
        )
    for line in changed:
        err.print(f"[yellow]changed[/] {esc(line)}", soft_wrap=True)
    kept_dir = Path(manifest.results_dir)
    target = results_dir or kept_dir.with_name(f"{kept_dir.name}-rerun-{manifest_path.stem}")
    check_results_dir(target)
    probe = manifest.probe.model_dump()
    probe["mode"] = probe_mode(probe["mode"])
    evaluate_and_record(
        engine, sources, tasks, target, cache_dir, serve, probe, policy, manifest_path, ray
    )
    rows = compare(manifest, target, tolerance)
    table = Table(title=f"hear rerun {esc(manifest_path.name)}: test scores", header_style="bold")
    for column in ("model", "task", "metric", "manifest", "rerun", "max |diff|", "same"):
        left = column in ("model", "task", "metric")
        table.add_column(column, justify="left" if left else "right")
    for row in rows:
        table.add_row(
            esc(row.model), esc(row.task), esc(row.metric),
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
