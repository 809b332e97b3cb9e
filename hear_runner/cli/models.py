"""`hear models list`, `hear image build` and `hear plugins`: what plugins provide."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hear_runner.cli.options import JsonOutput, flag
from hear_runner.cli.render import command_group, esc, out, say

models_app = command_group("Named models that plugins register (for --model): their images.")
image_app = command_group("Build model images offline.")


@models_app.command("list")
def models_list(
    json_output: Annotated[
        bool, flag("--json", "Print the specs as JSON (present: null if unknown).")
    ] = False,
) -> None:
    """List the named models plugins register (for --model) and whether their images are here.

    The table shows image, whether the Docker engine has it, GPU, sample rate and plugin;
    --json adds the folder a missing image is built from.
    """
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
            esc(s.name),
            esc(s.image),
            "unknown" if here is None else "yes" if here else "no",
            "yes" if s.gpu else "no",
            str(s.sample_rate or ""),
            esc(s.plugin),
            esc(s.description),
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
        str | None,
        typer.Option(
            "--tag", metavar="NAME", help="Image name. Default: hear/<folder name>:latest."
        ),
    ] = None,
    base_image: Annotated[
        str | None,
        typer.Option(
            "--base-image",
            metavar="IMAGE",
            help="Override the Dockerfile's BASE_IMAGE build argument.",
        ),
    ] = None,
    force: Annotated[bool, flag("--force", "Rebuild even if nothing changed.")] = False,
) -> None:
    """Build an image folder offline: wheels are prepared on this host from requirements.txt.

    Where no registry is reachable, a public base is replaced by a Debian base made
    locally with debootstrap. Model images are started once and their sample rate and
    embedding sizes are stamped into the image's labels.
    """
    from hear_runner.build.builder import build_image
    from hear_runner.engines.docker import connect

    result = build_image(connect(), folder, tag, base_image, say=say, force=force)
    out.print(f"{esc(result.tag)} {result.image_id[:19]}", highlight=False)


def list_plugins(json_output: JsonOutput = False) -> None:
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
        table.add_row(*map(esc, cells))
    out.print(table)
