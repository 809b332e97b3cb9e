"""`hear validate`: a model against the HEAR API and the contract."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from rich.table import Table

from hear_runner.cli.options import flag, model_options, serve_options
from hear_runner.cli.render import err, esc, out, say
from hear_runner.engines.settings import ModelChoice, ServeSettings
from hear_runner.errors import HearError

MARKS = {"pass": "[green]pass[/]", "fail": "[red]FAIL[/]", "skip": "[dim]skip[/]"}


@serve_options(
    "gpus", "memory", "transport", "load_timeout", "call_timeout", "call_timeout_per_second",
    exit_code=2,
)  # fmt: skip
@model_options(many=False, exit_code=2)
def validate_model(
    models: ModelChoice,
    serve: ServeSettings,
    long_seconds: Annotated[
        float,
        typer.Option(
            "--long-seconds",
            min=0,
            metavar="SECONDS",
            help="Length of the long-input check's clip (0 skips it).",
        ),
    ] = 1200.0,
    seed: Annotated[
        int, typer.Option("--seed", metavar="N", help="Seed of the random test audio.")
    ] = 0,
    json_output: Annotated[
        bool, flag("--json", "Print the report as JSON instead of a table.")
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
    from hear_runner.engines.select import select_engine
    from hear_runner.validate import validate

    try:
        engine, sources = select_engine(models, serve, say=say)
        if len(sources) != 1:
            raise HearError("hear validate checks one model: name it once")
        engine.check(sources[0])  # a missing or non-contract image: nothing to check
    except HearError as e:
        e.exit_code = 2
        raise

    def said(check: Any) -> None:
        colour = {"pass": "green", "fail": "red", "skip": "dim"}[check.result]
        err.print(
            f"[dim]•[/] {esc(check.name)}: [{colour}]{check.result}[/] ({check.seconds:.1f} s)"
        )
        if check.traceback and os.environ.get("HEAR_DEBUG"):
            err.print(check.traceback, highlight=False, markup=False)

    report = validate(engine, sources[0], long_seconds, seed, on_check=said)
    if json_output:
        out.print_json(report.model_dump_json())
    else:
        table = Table(title=f"hear validate: {esc(report.model)}", header_style="bold")
        for column in ("check", "result", "detail", "seconds"):
            table.add_column(column, justify="right" if column == "seconds" else "left")
        for c in report.checks:
            table.add_row(esc(c.name), MARKS[c.result], esc(c.detail), f"{c.seconds:.2f}")
        out.print(table)
        n = report.counts
        verdict = "[green]passed[/]" if report.passed else "[red]failed[/]"
        out.print(
            f"{esc(report.model)}: {verdict}: {n['pass']} passed, {n['fail']} failed, "
            f"{n['skip']} skipped in {sum(c.seconds for c in report.checks):.1f} s"
        )
    raise typer.Exit(0 if report.passed else 1)
