"""A page per task column: every model's score with its interval, published rows too, as a
table and as the report's score chart (hear_runner.report.charts), and what the task is:
metric, folder(s), version and content hash of the records, the release it is compared with.
"""

from __future__ import annotations

from html import escape

from hear_runner.report.charts import column_chart, fmt_score
from hear_runner.report.data import Entry
from hear_runner.results.leaderboard import Cell, Column, Row, column_name, ranked
from hear_runner.site.links import href
from hear_runner.site.pages import SiteData, shell


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


def _table(data: SiteData, scored: list[tuple[Row, Cell, int | None]]) -> str:
    rows = []
    for row, cell, rank in scored:
        name = escape(row.model)
        if not row.published:
            name = f'<a href="{href(data.map.model_file(row.model), 1)}">{name}</a>'
        interval = f"[{fmt_score(cell.ci[0])}, {fmt_score(cell.ci[1])}]" if cell.ci else "—"
        records = " ".join(f'<a href="{href(p.as_posix(), 1)}">record</a>' for p in cell.records)
        mark = (
            f' class="published" data-reference="{escape(row.reference)}"' if row.reference else ""
        )
        published = f"published ({escape(row.reference)})" if row.reference else ""
        rank_text = "—" if rank is None else str(rank)
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


def _chart(data: SiteData, column: Column, scored: list[tuple[Row, Cell, int | None]]) -> str:
    if not scored:
        return '<p class="note">No score in this column.</p>'
    svg, sub = column_chart(
        column, scored, lambda c: Entry(f) if (f := data.record_of(c)) else None
    )
    return (
        f'<figure class="plot task-scores" data-task="{escape(column.name)}">'
        f'<figcaption>{escape(column.name)}<span class="sub">{escape(sub)}</span></figcaption>'
        f"{svg}</figure>"
    )
