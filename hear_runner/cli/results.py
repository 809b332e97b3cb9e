"""`hear leaderboard`, `hear compare` and `hear report`: reading the records of runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from hear_runner.cli.options import JsonOutput, ResultsDir
from hear_runner.cli.render import HelpGroup, esc, out, say
from hear_runner.errors import HearError

Reference = Annotated[
    list[str] | None,
    typer.Option(
        "--reference",
        metavar="NAME",
        help="Also show published scores, marked as published (hear2021: HEAR's published "
        "leaderboard), on your released tasks at their released version. Repeatable.",
    ),
]

#: `hear leaderboard` ranks a results folder as it always did; `hear leaderboard add` is its
#: one subcommand.
leaderboard_app = typer.Typer(cls=HelpGroup, invoke_without_command=True)


@leaderboard_app.callback(invoke_without_command=True)
def leaderboard(
    ctx: typer.Context,
    results_dir: ResultsDir = Path("hear-results"),
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="FORMAT",
            help="table (rich), csv, json, markdown, or site (a folder of HTML pages: --output).",
        ),
    ] = "table",
    reference: Reference = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="DIR",
            help="With --format site: the site's folder (new, empty, or a site to update).",
        ),
    ] = None,
) -> None:
    """Models by tasks: each task's primary test score and HEAR's normalized aggregate.

    Each score comes with its 95% bootstrap interval; the aggregate is per-task z-scores
    across models clipped to [-1, 1], averaged over the tasks a model has. Missing cells
    are shown as missing; of several records of one (model, task) the newest is used. With
    --reference, the published rows join the normalization. --format site writes a static
    site (index, a page per task and per model) that works from disk or any static host;
    `hear leaderboard add PACK --site DIR` adds a submission pack to one.
    """
    if ctx.invoked_subcommand is not None:
        return
    from hear_runner.results.leaderboard import FORMATS, build_leaderboard, render, to_table
    from hear_runner.results.reference import lookup

    if fmt not in (*FORMATS, "site"):
        raise HearError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}, site")
    if fmt == "site":
        if output is None:
            raise HearError("--format site writes a folder: name it with --output DIR")
        _site(results_dir, output, reference)
        return
    if output is not None:
        raise HearError(f"--output is for --format site; --format {fmt} prints to stdout")
    board = build_leaderboard(results_dir, lookup(reference or []))
    if fmt == "table":
        out.print(to_table(board))
        for note in board.notes:
            say(note)
    else:
        sys.stdout.write(render(board, fmt))


def _site(results_dir: Path, output: Path, reference: list[str] | None) -> None:
    from hear_runner.site import write_site

    written = write_site(output, results_dir, reference or None)
    for note in written.notes:
        say(note)
    published = f", {written.published} published rows" if written.published else ""
    out.print(
        f"[green]wrote[/] {esc(output)}/index.html: {len(written.models)} models, "
        f"{len(written.tasks)} tasks{published}; {len(written.pages)} pages",
        soft_wrap=True,
    )


def compare(
    model_a: Annotated[str, typer.Argument(help="Model A, named as in its records.")],
    model_b: Annotated[str, typer.Argument(help="Model B.")],
    results_dir: ResultsDir = Path("hear-results"),
    resamples: Annotated[
        int | None,
        typer.Option(
            "--resamples",
            min=1,
            metavar="N",
            help="Bootstrap resamples (default: 1000 scene, 200 event).",
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", metavar="N", help="Seed of the bootstrap draws.")
    ] = 0,
    json_output: JsonOutput = False,
) -> None:
    """A paired bootstrap of two models on each task both have: A - B, and who is better.

    The difference of the primary test score on the same resampled test clips, its 95%
    interval, a two-sided p-value and a verdict (A better, B better, or a tie where
    p >= 0.05).
    """
    from hear_runner.results.compare import compare_models, to_json, to_table

    rows, notes = compare_models(results_dir, model_a, model_b, resamples, seed)
    if json_output:
        out.print_json(json.dumps(to_json(model_a, model_b, rows, notes)))
        return
    out.print(to_table(model_a, model_b, rows))
    for note in notes:
        say(note)


def report(
    results_dir: Annotated[
        Path,
        typer.Option(
            "--results-dir", metavar="DIR", help="The folder `hear run` wrote its records into."
        ),
    ] = Path("hear-results"),
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="FILE", help="The HTML file to write.")
    ] = Path("report.html"),
    timeline_files: Annotated[
        int,
        typer.Option("--timeline-files", min=1, metavar="N", help="Test files per event timeline."),
    ] = 3,
    reference: Reference = None,
) -> None:
    """Write one self-contained HTML page of the results (it opens with no network).

    The leaderboard with intervals, a score chart per task, quality against embedding
    cost, event timelines (predicted against true) and confusion matrices of multiclass
    scene tasks. With --reference, the published rows join the leaderboard and the score
    charts (in grey), and each of your scores says its rank among them.
    """
    from hear_runner.files import check_writable
    from hear_runner.report import write_report
    from hear_runner.results.reference import lookup

    check_writable(output.parent, "report's folder")
    references = lookup(reference or [])
    written = write_report(results_dir, output, timeline_files, references=references)
    plots = ", ".join(f"{len(ids)} {kind}" for kind, ids in written.plots.items())
    for note in written.notes:
        say(note)
    out.print(
        f"[green]wrote[/] {esc(written.path)}: {len(written.models)} models, {len(written.tasks)} "
        f"tasks; plots: {plots}",
        soft_wrap=True,
    )
