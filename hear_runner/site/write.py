"""Writing a site: copy a results folder's records in (or keep the site's), then render every
page from ``records/`` and ``site.json``.

Every page is rendered in memory before anything is written, so an error in rendering leaves
the previous pages as they were; the task and model folders are then replaced whole
(a reader sees the old folder or the new one) and the index, stylesheet and script are
each replaced atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hear_runner.errors import HearError
from hear_runner.files import atomic_directory, atomic_write
from hear_runner.results.leaderboard import build_leaderboard
from hear_runner.results.manifest import find_manifests
from hear_runner.results.reader import read_results
from hear_runner.results.reference import lookup
from hear_runner.site.assets import CSS, JS
from hear_runner.site.folder import (
    RECORDS,
    SITE_FILE,
    SiteInfo,
    copy_records,
    open_site,
)
from hear_runner.site.links import ASSETS, MODELS, TASKS
from hear_runner.site.model_pages import model_page
from hear_runner.site.pages import SiteData, index_page
from hear_runner.site.task_pages import task_page


@dataclass
class SiteWritten:
    """What was written, for the command to say."""

    site_dir: Path
    pages: list[str]  # paths relative to the site folder, index first
    models: list[str]  # the user's models (a page each)
    tasks: list[str]  # the leaderboard's columns (a page each)
    published: int  # published rows shown
    notes: list[str] = field(default_factory=list)


def write_site(
    site_dir: Path, results_dir: Path | None = None, references: Sequence[str] | None = None
) -> SiteWritten:
    """Write (or re-render) the leaderboard site in ``site_dir``.

    With ``results_dir``: its newest record of each (model, task), their sidecars and the
    manifests naming them are copied into ``site_dir/records/`` first. ``references``: the
    reference results to show (None: what ``site.json`` says; a new site: none).
    """
    info = open_site(site_dir)
    if info is None and results_dir is None:
        raise HearError(
            f"{site_dir}: not a leaderboard site (no {SITE_FILE}); give a results folder"
        )
    names = list(references) if references is not None else (info.references if info else [])
    refs = lookup(names)  # an unknown name fails here, before anything is written
    notes: list[str] = []
    if results_dir is not None:
        results = read_results(results_dir)
        _check_apart(site_dir, results_dir)
        build_leaderboard(results, refs)  # no records: one line, and nothing written
        site_dir.mkdir(parents=True, exist_ok=True)
        notes += copy_records(results, site_dir / RECORDS)
    info = info.model_copy(update={"references": names}) if info else SiteInfo(references=names)
    records = read_results(site_dir / RECORDS)
    board = build_leaderboard(records, refs)
    manifests = find_manifests(site_dir / RECORDS, notes)
    data = SiteData.read(site_dir, records, board, manifests, refs)
    pages = {"index.html": index_page(data)}
    pages |= {data.map.task_file(c.name): task_page(data, c) for c in board.columns}
    pages |= {data.map.model_file(m): model_page(data, m) for m in data.map.models}
    info.write(site_dir)
    for folder in (TASKS, MODELS):
        with atomic_directory(site_dir / folder) as staging:
            for path, html in pages.items():
                if path.startswith(f"{folder}/"):
                    _write(staging / path.removeprefix(f"{folder}/"), html)
    for path, text in ((f"{ASSETS}/site.css", CSS), (f"{ASSETS}/site.js", JS)):
        _write(site_dir / path, text.lstrip("\n"))
    _write(site_dir / "index.html", pages["index.html"])
    return SiteWritten(
        site_dir,
        data.map.pages(),
        list(data.map.models),
        [c.name for c in board.columns],
        sum(1 for r in board.rows if r.published),
        notes + data.board.notes,
    )


def _check_apart(site_dir: Path, results_dir: Path) -> None:
    """A site inside the results folder would have its records read as results again."""
    site, results = site_dir.resolve(), results_dir.resolve()
    if site == results or site.is_relative_to(results):
        raise HearError(
            f"{site_dir}: inside the results folder {results_dir}: its copies of the records "
            "would be read as records again; write the site elsewhere"
        )


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text)
    os.chmod(path, 0o644)  # readable by a web server, as any page
