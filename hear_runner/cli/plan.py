"""`hear plan` and `hear run --dry-run`: what a run would do and how long it would take.

Nothing is started: no task prepared, no model server, no container (an image's id is
read with ``docker image inspect`` to find its embeddings in the store).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table

from hear_runner.cli.options import (
    CacheDir,
    JsonOutput,
    OverwriteOption,
    ResultsDir,
    TaskNames,
    TasksDir,
    model_options,
    serve_options,
)
from hear_runner.cli.probe_options import GridPoints, ProbeModeOption, Seed, Seeds
from hear_runner.cli.render import esc, out
from hear_runner.engines.settings import ModelChoice, ServeSettings

if TYPE_CHECKING:
    from rich.console import Console

    from hear_runner.plan.build import PlanRequest
    from hear_runner.plan.estimate import Estimate, Plan, PlanRow

#: `hear run` shows its plan first when it expects to take longer than this.
LONG_RUN_SECONDS = 60.0


@serve_options()
@model_options(many=True)
def plan(
    models: ModelChoice,
    serve: ServeSettings,
    tasks_dir: TasksDir = ...,  # type: ignore[assignment]
    task: TaskNames = None,
    results_dir: ResultsDir = Path("hear-results"),
    probe: ProbeModeOption = "fast",
    grid_points: GridPoints = 8,
    seed: Seed = 42,
    seeds: Seeds = 1,
    cache_dir: CacheDir = ...,  # type: ignore[assignment]
    overwrite: OverwriteOption = "only-missing",
    json_output: JsonOutput = False,
) -> None:
    """Show what `hear run` would do with the same options, and how long it should take.

    One row per (model, task): clips, audio hours, frames (event tasks), what the embedding
    store holds, and the expected embedding and probe time: from the model's last result
    record of the task in --results-dir, else the bench's measurement of the same task
    (scaled to its size, and to this machine by a record of another measured task), else
    another task's record, else the cost models of the shipped throughput table
    ($HEAR_THROUGHPUTS names another). Starts nothing and prepares no task.
    """
    from hear_runner.cli.choices import overwrite_policy

    request = plan_request(
        models, serve, tasks_dir, task, results_dir, cache_dir, probe, grid_points, seeds,
        overwrite_policy(overwrite),
    )  # fmt: skip
    del seed  # the same for every seed: accepted so that a `hear run` line plans as it is
    show_plan(request, json_output)


def plan_request(
    models: ModelChoice, serve: ServeSettings, tasks_dir: Path, task: list[str] | None,
    results_dir: Path, cache_dir: Path, mode: str, grid_points: int, seeds: int, overwrite: str,
) -> PlanRequest:  # fmt: skip
    from hear_runner.plan.build import PlanRequest

    return PlanRequest(
        models=models, max_clip_seconds=serve.max_clip_seconds, tasks_dir=tasks_dir,
        task_names=task, results_dir=results_dir, cache_dir=cache_dir, probe_mode=mode,
        grid_points=grid_points, seeds=seeds, recompute=overwrite == "always",
    )  # fmt: skip


def show_plan(request: PlanRequest, json_output: bool) -> None:
    """The plan on stdout: a table and a total line, or JSON."""
    from hear_runner.plan.build import build_plan

    planned = build_plan(request)
    if json_output:
        out.print_json(planned.model_dump_json())
    else:
        print_plan(planned, out)


def announce_long_run(request: PlanRequest) -> None:
    """Before a run expected to take over a minute: its plan, on stdout before the scores
    (stderr carries only progress and the one-line error a failure is)."""
    from hear_runner.plan.build import build_plan

    planned = build_plan(request)
    if planned.total_seconds > LONG_RUN_SECONDS:
        print_plan(planned, out)


def print_plan(planned: Plan, console: Console) -> None:
    table = Table(title="hear plan", header_style="bold")
    for column in ("model", "task", "clips", "hours", "frames (hop)", "stored",
                   "embed", f"{planned.probe_mode} probe"):  # fmt: skip
        numeric = column in ("clips", "hours", "frames (hop)")
        table.add_column(column, justify="right" if numeric else "left", overflow="fold")
    for row in planned.rows:
        table.add_row(*_cells(row))
    console.print(table)
    sized = sorted({r.task.name for r in planned.rows if r.task.duration_source.startswith("file")})
    if sized:
        console.print(f"hours of {esc(', '.join(sized))}: from file sizes (16-bit PCM WAV, "
                      "44-byte header), no audio read", soft_wrap=True)  # fmt: skip
    starts = sum(e.seconds or 0.0 for e in planned.model_start.values())
    left_out = f"; {planned.unknown} estimate(s) without data left out" if planned.unknown else ""
    console.print(
        f"[bold]total[/]: {len(planned.rows)} (model, task) pairs, about "
        f"{seconds_text(planned.total_seconds)} (model starts {seconds_text(starts)}{left_out}); "
        "estimates from the model's last record (record), else the bench's measurement of "
        f"the task (reference), else the cost models (table), both in {esc(planned.throughputs)}",
        soft_wrap=True,
    )  # fmt: skip


def _cells(row: PlanRow) -> list[str]:
    task = row.task
    if not task.prepared:
        clips, hours = "[dim]not prepared[/]", ""
    else:
        clips = f"{task.total_clips:,} ({_splits(task.clips)})"
        hours = f"{task.total_seconds / 3600:.3g}"
    frames = "" if row.frames is None else f"{row.frames:,} ({row.hop_ms:g} ms, {row.hop_source})"
    return [esc(row.model), esc(task.name), clips, hours, esc(frames), esc(row.stored.label()),
            _estimate(row.embed), _estimate(row.probe)]  # fmt: skip


def _splits(clips: dict[str, int]) -> str:
    if all(split.startswith("fold") for split in clips):
        return f"{len(clips)} folds"
    return " / ".join(f"{n:,}" for n in clips.values())


def _estimate(estimate: Estimate) -> str:
    if estimate.seconds is None:
        return f"[dim]? ({estimate.source})[/]"
    return f"{seconds_text(estimate.seconds)} [dim]{estimate.source}[/]"


def seconds_text(seconds: float) -> str:
    """2 s, 3 min 20 s, 4 h 05 min: as precise as an estimate deserves."""
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


__all__ = ["announce_long_run", "plan", "plan_request", "show_plan"]
