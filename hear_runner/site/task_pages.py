"""A page per task column: every model's score with its interval, published rows too, as a
table and as the report's score chart (hear_runner.report.charts), and what the task is:
metric, folder(s), version and content hash of the records, the release it is compared with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

from hear_runner.report.charts import fmt_score, score_chart, whisker
from hear_runner.report.data import Entry
from hear_runner.results.leaderboard import Cell, Column, Row, column_name
from hear_runner.site.links import href
from hear_runner.site.pages import SiteData, shell


@dataclass(frozen=True)
class CellScore:
    """A score the chart draws without a record: a published one, or a mean of folders."""

    score: float
    metric: str
    ci: tuple[float, float] | None = None
    ci_level: float | None = None
    fold_std: float | None = None


def ranked(rows: list[Row], column: Column) -> list[tuple[Row, Cell]]:
    """The rows with a score in ``column``, best first (NaN last; ties in board order)."""
    sign = 1.0 if column.higher_is_better else -1.0
    scored = [(row, row.cells[column.name]) for row in rows if column.name in row.cells]
    return sorted(
        scored, key=lambda rc: (not math.isfinite(rc[1].score), -sign * rc[1].score or 0.0)
    )


def task_page(data: SiteData, column: Column) -> str:
    scored = ranked(data.board.rows, column)
    metric = scored[0][1].metric if scored else "?"
    direction = "higher is better" if column.higher_is_better else "lower is better"
    body = (
        f"<h1>{escape(column.name)}</h1>"
        f'<dl class="facts"><dt>metric</dt><dd><code>{escape(metric)}</code> ({direction}), '
        "on the test split</dd>"
        f"{_facts(data, column)}</dl>"
        f"<h2>Scores</h2>{_table(data, scored)}"
        f"<h2>Chart</h2>{_chart(data, column, scored)}"
    )
    return shell(column.name, body, 1)


def _facts(data: SiteData, column: Column) -> str:
    folders = ", ".join(f"<code>{escape(t)}</code>" for t in column.tasks)
    seen: dict[tuple[str, str, str], set[str]] = {}
    for row in data.board.rows:
        cell = row.cells.get(column.name)
        for path in cell.records if cell else []:
            found = data.found_at(path)
            if found is not None:
                task = found.record.task
                seen.setdefault((task.name, task.version, task.content_hash), set()).add(row.model)
    versions = "".join(
        f"<li><code>{escape(name)}</code> version <code>{escape(version)}</code>, content hash "
        f"<code>{escape(digest)}</code> ({escape(', '.join(sorted(models)))})</li>"
        for (name, version, digest), models in sorted(seen.items())
    )
    facts = f"<dt>task folder(s)</dt><dd>{folders}</dd>"
    facts += f"<dt>records</dt><dd><ul>{versions}</ul></dd>" if versions else ""
    for ref in data.references:
        for folder, released in ref.tasks.items():
            published = sum(
                1 for r in data.board.rows if r.reference == ref.name and column.name in r.cells
            )
            if column_name(folder) == column.name and published:
                facts += (
                    f"<dt>published</dt><dd>{published} scores from {escape(ref.name)} "
                    f"({escape(ref.title)}): released folder <code>{escape(folder)}</code>, "
                    f"version <code>{escape(released.version)}</code>, metric "
                    f"<code>{escape(released.metric)}</code>; published scores have no "
                    "interval</dd>"
                )
    return facts


def _table(data: SiteData, scored: list[tuple[Row, Cell]]) -> str:
    rows = []
    for rank, (row, cell) in enumerate(scored, 1):
        name = escape(row.model)
        if not row.published:
            name = f'<a href="{href(data.map.model_file(row.model), 1)}">{name}</a>'
        interval = f"[{fmt_score(cell.ci[0])}, {fmt_score(cell.ci[1])}]" if cell.ci else "—"
        records = " ".join(f'<a href="{href(p.as_posix(), 1)}">record</a>' for p in cell.records)
        mark = (
            f' class="published" data-reference="{escape(row.reference)}"' if row.reference else ""
        )
        published = f"published ({escape(row.reference)})" if row.reference else ""
        rank_text = str(rank) if math.isfinite(cell.score) else "—"
        rows.append(
            f'<tr{mark}><td class="num">{rank_text}</td><th scope="row">{name}</th>'
            f'<td class="reference">{published}</td>'
            f'<td class="num" data-score="{cell.score!r}">{fmt_score(cell.score)}</td>'
            f'<td class="num">{interval}</td><td>{records}</td></tr>'
        )
    return (
        '<div class="scroll"><table id="scores"><thead><tr><th scope="col">rank</th>'
        '<th scope="col">model</th><th scope="col">published</th><th scope="col">score</th>'
        '<th scope="col">95% interval<span class="sub">bootstrap over test clips</span></th>'
        f'<th scope="col">record</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
    )


def _chart(data: SiteData, column: Column, scored: list[tuple[Row, Cell]]) -> str:
    if not scored:
        return '<p class="note">No score in this column.</p>'
    labels, entries, muted = [], {}, set()
    for row, cell in scored:
        label = f"{row.model} · {row.reference}" if row.reference else row.model
        found = data.record_of(cell)
        entries[label] = Entry(found) if found else CellScore(cell.score, cell.metric, cell.ci)
        labels.append(label)
        if row.published:
            muted.add(label)
    whiskers = {w[2] for e in entries.values() if (w := whisker(e))}
    sub = "a point per model, published ones grey; whiskers: " + (
        " / ".join(sorted(whiskers)) or "none (no interval in these records)"
    )
    svg = score_chart(column.name, labels, entries, muted)
    return (
        f'<figure class="plot task-scores" data-task="{escape(column.name)}">'
        f'<figcaption>{escape(column.name)}<span class="sub">{escape(sub)}</span></figcaption>'
        f"{svg}</figure>"
    )
