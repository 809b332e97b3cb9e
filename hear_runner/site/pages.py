"""What every page of the site shares (the data it is rendered from, the page shell) and
the index: the leaderboard table as `hear report` draws it (hear_runner.report.board), with
links to the task and model pages, the references' sources and the board's notes.

Pages are plain HTML with one stylesheet and, on the index, one script (sorting); they
name nothing on a network but the references' source links, and hold no time of writing,
so the same records render the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from html import escape
from pathlib import Path, PurePosixPath

from hear_runner import __version__
from hear_runner.report.board import leaderboard_table
from hear_runner.report.data import Entry
from hear_runner.results.leaderboard import Cell, Leaderboard, Row
from hear_runner.results.manifest import FoundManifest
from hear_runner.results.reader import FoundRecord, Results
from hear_runner.site.folder import RECORDS
from hear_runner.site.links import ASSETS, SiteMap, href
from hear_runner.specs import ReferenceResults

SITE_TITLE = "HEAR leaderboard"


@dataclass
class SiteData:
    """A site's records as read, its leaderboard, and where each thing's page is. Record
    paths are relative to the site's folder (``records/...``): pages link to them, and the
    pages do not change when the folder moves."""

    board: Leaderboard
    found: dict[PurePosixPath, FoundRecord]  # by path relative to the site folder
    manifests: list[FoundManifest]
    references: Sequence[ReferenceResults]
    map: SiteMap = field(init=False)

    def __post_init__(self) -> None:
        mine = [r.model for r in self.board.rows if not r.published]
        self.map = SiteMap.of(mine, [c.name for c in self.board.columns])

    @classmethod
    def read(
        cls,
        site_dir: Path,
        results: Results,
        board: Leaderboard,
        manifests: list[FoundManifest],
        references: Sequence[ReferenceResults],
    ) -> SiteData:
        """Make ``board``'s record paths and notes relative to ``site_dir``."""
        records = str(site_dir / RECORDS)

        def relative(path: Path) -> PurePosixPath:
            return PurePosixPath(path.relative_to(site_dir).as_posix())

        def moved(cell: Cell) -> Cell:
            return replace(cell, records=[Path(relative(p)) for p in cell.records])

        rows = [
            replace(row, cells={name: moved(cell) for name, cell in row.cells.items()})
            for row in board.rows
        ]
        notes = [note.replace(records, RECORDS) for note in board.notes]
        board = replace(board, rows=rows, notes=notes)
        found = {relative(f.path): f for f in results.records()}
        for m in manifests:
            m.path = Path(relative(m.path))
        return cls(board, found, manifests, references)

    def entries(self) -> dict[Path, Entry]:
        """The report's view of each record, by its path as the board's cells name it."""
        return {Path(p): Entry(f) for p, f in self.found.items()}

    def found_at(self, path: Path) -> FoundRecord | None:
        """The record at a cell's path (relative to the site's folder)."""
        return self.found.get(PurePosixPath(path.as_posix()))

    def record_of(self, cell: Cell) -> FoundRecord | None:
        """The one record a cell shows (none for a published cell or a mean of folders)."""
        return self.found_at(cell.records[0]) if len(cell.records) == 1 else None

    def rows_of(self, model: str) -> list[Row]:
        return [r for r in self.board.rows if r.model == model and not r.published]


def shell(title: str, body: str, depth: int, script: bool = False) -> str:
    """A whole page: head (stylesheet, no favicon fetch), navigation, ``body``, footer."""
    up = "../" * depth
    tail = f'<script src="{up}{ASSETS}/site.js"></script>' if script else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · {SITE_TITLE}</title>"
        '<link rel="icon" href="data:,">'
        f'<link rel="stylesheet" href="{up}{ASSETS}/site.css"></head>\n<body>\n'
        f'<header><nav><a href="{up}index.html">Leaderboard</a>'
        f'<a href="{up}index.html#tasks">Tasks</a><a href="{up}index.html#models">Models</a>'
        f'<a href="{up}index.html#sources">Sources</a></nav></header>\n'
        f"<main>\n{body}\n</main>\n"
        f"<footer>Written by hear-runner {escape(__version__)} from the records in the site's "
        f"<code>{RECORDS}/</code> folder; every score is the primary metric on the task's test "
        f"split.</footer>\n{tail}</body></html>\n"
    )


def index_page(data: SiteData) -> str:
    board = data.board
    mine = [r for r in board.rows if not r.published]
    published = len(board.rows) - len(mine)
    summary = (
        f"{len(mine)} model(s) of these records"
        + (f" beside {published} published submission(s)" if published else "")
        + f", on {len(board.columns)} task(s). Published rows are grey and marked "
        "\u201cpublished\u201d; yours are in colour and link to their pages. "
        "Each task's name links to its page."
    )
    table = leaderboard_table(board, data.entries(), data.map.table_links(0))
    return shell(
        "Leaderboard",
        f"<h1>{SITE_TITLE}</h1>"
        f'<p class="meta">{escape(summary)}</p>'
        f'<section id="leaderboard-section"><div class="scroll">{table}</div></section>'
        f'<section id="tasks"><h2>Tasks</h2>{_task_list(data)}</section>'
        f'<section id="models"><h2>Models</h2>{_model_list(data)}</section>'
        f'<section id="sources"><h2>Sources</h2>{_sources(board)}</section>',
        0,
        script=True,
    )


def _task_list(data: SiteData) -> str:
    items = "".join(
        f'<li><a href="{href(data.map.task_file(c.name), 0)}">{escape(c.name)}</a>'
        f' <span class="note">({escape(", ".join(c.tasks))})</span></li>'
        for c in data.board.columns
    )
    return f"<ul>{items}</ul>"


def _model_list(data: SiteData) -> str:
    items = "".join(
        f'<li><a href="{href(data.map.model_file(m), 0)}">{escape(m)}</a></li>'
        for m in data.map.models
    )
    return f"<ul>{items}</ul>"


def _sources(board: Leaderboard) -> str:
    if not board.references:
        return '<p class="note">No published results are shown (<code>--reference</code>).</p>'
    items = []
    for ref in board.references:
        source = ref.get("source") or {}
        url = str(source.get("url") or "")
        link = f' <a href="{escape(url)}">{escape(url)}</a>' if url.startswith("https://") else ""
        facts = "; ".join(
            f"{k} <code>{escape(str(source[k]))}</code>"
            for k in ("repo", "path", "commit")
            if source.get(k)
        )
        items.append(
            f"<li><b>{escape(str(ref.get('name')))}</b>: {escape(str(ref.get('title')))}"
            f'{link}<span class="sub">{facts}</span></li>'
        )
    return f"<ul>{''.join(items)}</ul>"
