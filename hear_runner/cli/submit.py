"""`hear submit pack|check` and `hear leaderboard add`: submission packs for a leaderboard site."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Annotated

import typer

from hear_runner.cli.options import ResultsDir, flag
from hear_runner.cli.render import command_group, esc, out, say
from hear_runner.cli.results import Reference

submit_app = command_group(
    "Pack a model's results for a leaderboard site, and check a pack.\n\n"
    "A pack holds one model's records, test predictions, manifests and image labels; a "
    "site checks it and adds it with `hear leaderboard add PACK --site DIR`."
)

PackFile = Annotated[
    Path, typer.Argument(metavar="PACK", help="A submission pack (`hear submit pack` writes one).")
]


@submit_app.command("pack")
def pack(
    model: Annotated[
        str, typer.Option("--model", metavar="NAME", help="The model, named as in its records.")
    ],
    results_dir: ResultsDir = Path("hear-results"),
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="FILE", help="The pack to write (default: MODEL.hear.zip)."
        ),
    ] = None,
) -> None:
    """Pack one model's results for a leaderboard site (a zip).

    Its newest record of each task, with the record's test predictions, heareval's scores
    file, the run manifests that name it and the image labels. The pack is checked as a
    site will check it before it is written; the same records always give the same bytes.
    """
    from hear_runner.names import slug
    from hear_runner.results.pack import build_pack, write_pack
    from hear_runner.results.pack_check import check_pack

    output = output or Path(f"{slug(model, default='model')}.hear.zip")
    index, data = build_pack(results_dir, model)
    check_pack(io.BytesIO(data), name=str(output))
    write_pack(data, output)
    tasks = _tasks([e.task for e in index.entries])
    out.print(
        f"[green]wrote[/] {esc(output)}: {esc(model)}, {tasks}, {len(data):,} bytes; checked: "
        "scores recomputed from its predictions agree",
        soft_wrap=True,
    )


@submit_app.command("check")
def check(pack_file: PackFile) -> None:
    """Check a pack as `hear leaderboard add` does, without a site.

    A safe zip, its schema, every file's sha256, the records, released task versions, and
    every score recomputed from the packed predictions. A failure is one line naming the
    task or file, and a non-zero exit."""
    from hear_runner.results.pack_check import check_pack

    checked = check_pack(pack_file, name=str(pack_file))
    out.print(
        f"[green]ok[/] {esc(pack_file)}: {esc(checked.index.model)}, "
        f"{_tasks(sorted(checked.records))}; scores agree with its predictions",
        soft_wrap=True,
    )


def add(
    pack_file: PackFile,
    site: Annotated[
        Path,
        typer.Option(
            "--site",
            metavar="DIR",
            help="The site folder (`hear leaderboard --format site`); a new or empty one "
            "becomes a site of the submissions added to it.",
        ),
    ],
    replace: Annotated[
        bool, flag("--replace", "Replace the model's submission if it is on the site.")
    ] = False,
    reference: Reference = None,
) -> None:
    """Add a submission pack to a leaderboard site, then render the site again.

    The pack is checked as `hear submit check` does, then against the site: its task
    folders' content hashes must be the site's, and a model already there is refused
    unless --replace. Its records go under DIR/records/submissions/MODEL/. --reference
    sets the published scores the site shows (default: as the site had them).
    """
    from hear_runner.site.submissions import add_pack

    added = add_pack(pack_file, site, replace, reference)
    for note in added.site.notes:
        say(note)
    verb = "replaced" if added.replaced else "added"
    out.print(
        f"[green]{verb}[/] {esc(added.model)} ({_tasks(added.tasks)}) in {esc(added.folder)}; "
        f"site {esc(site)} rendered again: {len(added.site.pages)} pages",
        soft_wrap=True,
    )


def _tasks(names: list[str]) -> str:
    return f"{len(names)} task{'' if len(names) == 1 else 's'}: {esc(', '.join(names))}"
