"""`hear cache ...`: the embedding store."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from hear_runner.cli.options import CacheDir, JsonOutput, flag
from hear_runner.cli.render import command_group, esc, out
from hear_runner.errors import HearError

cache_app = command_group("The embedding store: list and remove.")


@cache_app.command("list")
def cache_list(
    cache_dir: CacheDir = ...,  # type: ignore[assignment]
    json_output: JsonOutput = False,
) -> None:
    """Every stored split: model, task, rows, size, and whether it is complete."""
    from hear_runner.embed.store import EmbeddingStore

    entries = EmbeddingStore(cache_dir).entries()
    if json_output:
        out.print_json(json.dumps(entries))
        return
    table = Table(title=f"Embedding store: {esc(cache_dir)}", header_style="bold")
    for column in ("model", "task", "split", "rows", "MiB", "state"):
        table.add_column(column, justify="right" if column in ("rows", "MiB") else "left")
    for e in entries:
        state = "complete" if e["complete"] else f"partial ({e['batches']} batches)"
        table.add_row(esc(e["model"]), esc(e["task"]), esc(e["split"]), str(e["rows"] or "—"),
                      f"{e['bytes'] / 2**20:.1f}", state)  # fmt: skip
    out.print(table)


@cache_app.command("remove")
def cache_remove(
    model: Annotated[
        str | None,
        typer.Option("--model", metavar="NAME", help="Only this model (as named to hear run)."),
    ] = None,
    task: Annotated[
        str | None, typer.Option("--task", metavar="NAME", help="Only this task folder.")
    ] = None,
    all_: Annotated[bool, flag("--all", "Everything in the store.")] = False,
    cache_dir: CacheDir = ...,  # type: ignore[assignment]
) -> None:
    """Remove stored embeddings of a model, a task, or both (--all for everything)."""
    from hear_runner.embed.store import EmbeddingStore

    if not (model or task or all_):
        raise HearError("name what to remove: --model, --task, or --all")
    removed = EmbeddingStore(cache_dir).remove(model, task)
    for path in removed:
        out.print(f"removed {esc(path)}", soft_wrap=True)
    if not removed:
        out.print("nothing matched")
