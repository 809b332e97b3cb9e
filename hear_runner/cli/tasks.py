"""`hear tasks ...`: the tasks plugins provide, and their folders."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from hear_runner.cli.options import JsonOutput, TasksDir
from hear_runner.cli.render import command_group, esc, out

tasks_app = command_group("Prepare the task folders that plugins provide.")


@tasks_app.command("list")
def tasks_list(
    tasks_dir: TasksDir = ...,  # type: ignore[assignment]
    json_output: JsonOutput = False,
) -> None:
    """List the tasks plugins provide and the task folders found, and whether data is here."""
    from hear_runner.tasks.catalog import list_tasks

    listings = list_tasks(tasks_dir)
    if json_output:
        rows = [{**lst.model_dump(), "present": lst.present} for lst in listings]
        out.print_json(json.dumps(rows))
        return
    table = Table(title=f"HEAR tasks ({esc(tasks_dir)})", header_style="bold")
    columns = ("name", "plugin", "domain", "embedding", "prediction", "split mode", "clips", "data")
    for column in columns:
        table.add_column(column, justify="right" if column == "clips" else "left")
    for t in listings:
        table.add_row(
            esc(t.name),
            esc(t.plugin or "(folder)"),
            esc(t.domain),
            esc(t.embedding_type),
            esc(t.prediction_type),
            esc(t.split_mode),
            "" if t.clips is None else str(t.clips),
            esc(", ".join(t.folders)) if t.present else "[dim]not prepared[/]",
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
            f"[bold]{esc(folder)}[/]: {esc(splits)}; labels {len(task.vocabulary)}; "
            f"rates {task.sample_rates}"
        )
        out.print_json(task.metadata.model_dump_json())


@tasks_app.command("download")
def tasks_download(
    names: Annotated[
        list[str],
        typer.Argument(
            help="HEAR 2021 task names or folder names, or hear2021 for all 19.",
        ),
    ],
    tasks_dir: TasksDir = ...,  # type: ignore[assignment]
    sample_rate: Annotated[
        int,
        typer.Option(
            "--sample-rate",
            metavar="HZ",
            help="Rate to have on disk: 16000, 22050, 32000, 44100 or 48000 (resampled here).",
        ),
    ] = 48000,
    mirror: Annotated[
        str | None,
        typer.Option(
            "--mirror",
            envvar="HEAR_MIRROR",
            metavar="URL",
            help="Base URL of a mirror: each archive is fetched from <URL>/<archive file name> "
            "(e.g. <URL>/hear2021-esc50-v2.0.0-full-48000.tar.gz), not from Zenodo.",
        ),
    ] = None,
    max_expansion: Annotated[
        float | None,
        typer.Option(
            "--max-expansion",
            envvar="HEAR_MAX_EXPANSION",
            metavar="RATIO",
            help="Refuse an archive that unpacks to more than this many times its size "
            "(plus 64 MiB). Default 20.",
        ),
    ] = None,
) -> None:
    """Download released HEAR task archives (resumable, verified) and extract them.

    Where the catalogue has no checksum, the first complete download's size and sha256
    are kept in TASKS_DIR/.downloads/<archive>.verified.json and every later one must
    match.
    """
    from hear_runner.tasks.download import download_tasks

    paths = download_tasks(
        names, tasks_dir, sample_rate, progress=True, mirror=mirror or None,
        max_expansion=max_expansion,
    )  # fmt: skip
    for path in paths:
        out.print(f"{esc(path.name)}: {esc(path)}", soft_wrap=True)


@tasks_app.command("prepare")
def tasks_prepare(
    names: Annotated[list[str], typer.Argument(help="Task or suite names (e.g. mini).")],
    tasks_dir: TasksDir = ...,  # type: ignore[assignment]
    scale: Annotated[
        str | None,
        typer.Option(
            "--scale",
            metavar="SCALE",
            help="Size of generated tasks: smoke or full, or a factor of the full size (e.g. "
            "0.01) where a task takes one (hear2021-sized). Default: smoke where a task has "
            "it, else its first scale.",
        ),
    ] = None,
    only: Annotated[
        str | None,
        typer.Option(
            "--tasks",
            metavar="A,B",
            help="Only these tasks of the suites named (e.g. speech_commands_full,maestro).",
        ),
    ] = None,
) -> None:
    """Write task folders (hear-preprocess layout) that plugins can generate or download."""
    from hear_runner.tasks.choose import prepare_sources
    from hear_runner.tasks.sources import only_sources, select_sources

    sources = select_sources(names)
    if only is not None:
        sources = only_sources(sources, [n.strip() for n in only.split(",") if n.strip()])
    for source, path in zip(sources, prepare_sources(sources, tasks_dir, scale), strict=True):
        out.print(f"{esc(source.name)}: {esc(path)}")
