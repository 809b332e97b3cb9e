"""The report's leaderboard table: `hear leaderboard`'s :class:`Leaderboard`, as HTML.

Every number is the leaderboard's (its cells, intervals and aggregate), never recomputed
here, so the page and `hear leaderboard` agree. Each cell carries its exact values as
``data-`` attributes (score, interval, the records it came from) for readers of the page,
and each header the direction a sort by it starts in (``data-first``): the leaderboard
site's script sorts by them. Published rows (``--reference``) have class ``published``
and a "published" column naming their reference, as in every other format.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from hear_runner.report.charts import fmt_score
from hear_runner.report.data import Entry
from hear_runner.results.leaderboard import Cell, Column, Leaderboard


@dataclass
class Links:
    """Pages a table's names link to (the site's): href by model and by column name."""

    models: dict[str, str] = field(default_factory=dict)
    tasks: dict[str, str] = field(default_factory=dict)


def _linked(text: str, href: str | None) -> str:
    return f'<a href="{escape(href)}">{escape(text)}</a>' if href else escape(text)


def leaderboard_table(
    board: Leaderboard, entries: dict[Path, Entry], links: Links | None = None
) -> str:
    """The table, its explanation and the leaderboard's notes; ``entries`` by record path
    give a one-record cell its spread over folds and seeds; ``links`` make names links."""
    links = links or Links()
    head = '<th scope="col" data-first="ascending">model</th>'
    if board.references:
        head += '<th scope="col" data-first="ascending">published</th>'
    head += "".join(
        f'<th scope="col" data-task="{escape(c.name)}" data-first="'
        f'{"descending" if c.higher_is_better else "ascending"}">'
        f"{_linked(c.name, links.tasks.get(c.name))}"
        f'<span class="sub">{escape(_metric_text(board, c))}</span></th>'
        for c in board.columns
    )
    head += (
        '<th scope="col" data-first="descending" aria-sort="descending">aggregate'
        '<span class="sub">HEAR normalized</span></th>'
    )
    rows = []
    for row in board.rows:
        cells = []
        if board.references:
            mark = f"published ({row.reference})" if row.reference else ""
            cells.append(f'<td class="reference">{escape(mark)}</td>')
        for column in board.columns:
            cell = row.cells.get(column.name)
            if cell is None:
                cells.append('<td class="missing" title="no record">—</td>')
                continue
            best = " best" if _best(board, column) == row.model else ""
            entry = entries.get(cell.records[0]) if len(cell.records) == 1 else None
            cells.append(
                f'<td class="num{best}" data-model="{escape(row.model)}" '
                f'data-task="{escape(column.name)}"{_cell_data(cell)}>{_cell(cell, entry)}</td>'
            )
        text = "—" if row.aggregate is None else f"<b>{row.aggregate:+.3f}</b>"
        value = "" if row.aggregate is None else f' data-aggregate="{row.aggregate!r}"'
        cells.append(
            f'<td class="num aggregate"{value} data-tasks="{len(row.normalized)}">{text}'
            f'<span class="sub">{len(row.normalized)}/{len(board.columns)} tasks</span></td>'
        )
        mark = (
            f' class="published" data-reference="{escape(row.reference)}"' if row.reference else ""
        )
        rows.append(
            f'<tr{mark}><th scope="row" data-model="{escape(row.model)}">'
            f"{_linked(row.model, links.models.get(row.model))}</th>{''.join(cells)}</tr>"
        )
    notes = "".join(f"<li>{escape(n)}</li>" for n in board.notes)
    return (
        f'<table id="leaderboard"><thead><tr>{head}</tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table><p class="note">{_explanation(board)}</p>'
        + (f'<ul class="note warn" id="leaderboard-notes">{notes}</ul>' if notes else "")
    )


def _explanation(board: Leaderboard) -> str:
    ci = any(c.ci for r in board.rows for c in r.cells.values())
    note = (
        "Each cell: the primary test score; below it "
        + (
            "its confidence interval from the record (bootstrap over test clips) where it "
            "has one, else "
            if ci
            else ""
        )
        + "± its standard deviation over folds (k-fold tasks) and over probe seeds (with "
        "several seeds). A dash is a (model, task) that was not run: it is missing, not zero. "
        "Green: the task's best score. Aggregate: as HEAR's leaderboard, each task's scores "
        "standardized across the models here, clipped to [-1, 1] and averaged over the tasks a "
        "model has: <code>hear leaderboard</code>'s table, from the same records (of several "
        "records of one model and task, the newest)."
    )
    if not ci:
        note += (
            " No record here has a confidence interval (<code>test_score_ci</code>); "
            "the whiskers below show the spread over folds where there is one."
        )
    return note


def _metric_text(board: Leaderboard, column: Column) -> str:
    metric = next(r.cells[column.name].metric for r in board.rows if column.name in r.cells)
    return metric if column.higher_is_better else f"{metric} (lower is better)"


def _best(board: Leaderboard, column: Column) -> str | None:
    """The model with the column's best finite score, where more than one has one."""
    sign = 1.0 if column.higher_is_better else -1.0
    scored = [
        (sign * cell.score, row.model)
        for row in board.rows
        if (cell := row.cells.get(column.name)) and math.isfinite(cell.score)
    ]
    return max(scored)[1] if len(scored) > 1 else None


def _cell_data(cell: Cell) -> str:
    """The cell's exact values: ``repr`` of each float, the records as a JSON list."""
    attrs = {"score": repr(cell.score), "metric": cell.metric}
    if cell.ci is not None:
        attrs |= {"ci-low": repr(cell.ci[0]), "ci-high": repr(cell.ci[1])}
    attrs["records"] = json.dumps([str(p) for p in cell.records])
    return "".join(f' data-{k}="{escape(v)}"' for k, v in attrs.items())


def _cell(cell: Cell, entry: Entry | None) -> str:
    if not math.isfinite(cell.score):
        return '<span title="the metric is undefined on these predictions (NaN)">n/a (NaN)</span>'
    text = f"<b>{fmt_score(cell.score)}</b>"
    subs = []
    if cell.ci:
        subs.append(f'<span class="ci">[{fmt_score(cell.ci[0])}, {fmt_score(cell.ci[1])}]</span>')
    if entry is None and len(cell.records) > 1:
        subs.append(f"mean of {len(cell.records)} task folders")
    if entry is not None:
        for spread, over in ((entry.fold_std, "folds"), (entry.record.seed_std, "seeds")):
            if spread is not None and math.isfinite(spread):
                subs.append(f"±{spread:.3f} {over}")
    if subs:
        text += f'<span class="sub">{" ".join(subs)}</span>'
    return text
