"""The leaderboard: models by tasks, each task's primary test score with its interval.

Cells follow heareval's convention: the primary metric's test score, the mean over
folds for k-fold tasks (the record's ``test_score``), with the record's bootstrap
interval over test clips. A model without a record for a task has a missing cell,
never a zero.

The aggregate is the HEAR leaderboard's normalized score
(hearbenchmark/hear-leaderboard ``leaderboard.py``): each task's scores are
standardized across models (zero mean, unit variance: population standard
deviation, as scikit-learn's StandardScaler; a task where every model scores the
same gives 0), winsorized (clipped) to [-1, +1], then averaged. HEAR's script
first imputes missing cells (IterativeImputer); here a model's aggregate is the
mean over the tasks it has, and the count of those tasks is shown beside it. A
task whose primary metric is lower-is-better has its standardized scores negated,
so a higher aggregate is always better (HEAR's primary metrics are all higher-is-better).

Task columns of HEAR 2021 tasks are named as on HEAR's published leaderboard;
other tasks by their folder name. Records are read by hear_runner.results.reader (as
`hear report`, `compare` and `rerun` read them): with several records of one (model,
task) (results folders inside the results folder, say), the newest is used and a note
says so. `hear report` shows this module's :class:`Leaderboard`, never a recomputation.

With reference results (``--reference hear2021``: published scores a plugin ships), each
published submission is a row marked as published, on the columns of the user's records
that are released tasks at their released version (see hear_runner.results.reference);
the normalization is computed over the union of the user's and the published rows.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.markup import escape
from rich.table import Table

from hear_runner.errors import HearError
from hear_runner.results.reader import FoundRecord, Results, read_results
from hear_runner.results.reference import (
    Released,
    released_folders,
    released_names,
    version_note,
)
from hear_runner.specs import ReferenceResults

# HEAR's published leaderboard columns (hearbenchmark/hearbenchmark.com
# docs/leaderboard.csv, commit 9d9e55b), in its order, by released task folder.
# Beehive is the mean of its two folds' folders there (see hear_2021's catalogue, [R]).
HEAR_2021_COLUMNS: dict[str, tuple[str, ...]] = {
    "Beehive": ("beehive_states_fold0-v2-full", "beehive_states_fold1-v2-full"),
    "Beijing Opera": ("beijing_opera-v1.0-hear2021-full",),
    "CREMA-D": ("tfds_crema_d-1.0.0-full",),
    "DCASE 2016": ("dcase2016_task2-hear2021-full",),
    "ESC-50": ("esc50-v2.0.0-full",),
    "FSD50K": ("fsd50k-v1.0-full",),
    "GTZAN Genre": ("tfds_gtzan-1.0.0-full",),
    "GTZAN Music/Speech": ("tfds_gtzan_music_speech-1.0.0-full",),
    "Gunshot": ("gunshot_triangulation-v1.0-full",),
    "Libricount": ("libricount-v1.0.0-hear2021-full",),
    "Maestro 5h": ("maestro-v3.0.0-5h",),
    "Mridangam Stroke": ("mridangam_stroke-v1.5-full",),
    "Mridangam Tonic": ("mridangam_tonic-v1.5-full",),
    "NSynth Pitch 50h": ("nsynth_pitch-v2.2.3-50h",),
    "NSynth Pitch 5h": ("nsynth_pitch-v2.2.3-5h",),
    "Speech commands 5h": ("speech_commands-v0.0.2-5h",),
    "Speech commands full": ("speech_commands-v0.0.2-full",),
    "Vocal Imitation": ("vocal_imitation-v1.1.3-full",),
    "VoxLingua107 top 10": ("vox_lingua_top10-hear2021-full",),
}
_COLUMN_OF = {folder: name for name, folders in HEAR_2021_COLUMNS.items() for folder in folders}
FORMATS = ("table", "csv", "json", "markdown")
MISSING = "—"


@dataclass
class Cell:
    score: float
    ci: tuple[float, float] | None
    metric: str
    records: list[Path]


@dataclass
class Column:
    name: str
    tasks: list[str]  # the task folders it holds
    higher_is_better: bool = True


@dataclass
class Row:
    model: str
    cells: dict[str, Cell]
    aggregate: float | None = None
    normalized: dict[str, float] = field(default_factory=dict)  # column -> clipped z
    reference: str | None = None  # the reference results a published row is from

    @property
    def published(self) -> bool:
        return self.reference is not None


@dataclass
class Leaderboard:
    columns: list[Column]
    rows: list[Row]
    notes: list[str]
    references: list[dict[str, Any]] = field(default_factory=list)  # name, title, source


def column_name(task: str) -> str:
    """A task folder's column: HEAR's published name for HEAR 2021 tasks, else the folder."""
    return _COLUMN_OF.get(task, task)


def build_leaderboard(
    results: Path | Results, references: Sequence[ReferenceResults] = ()
) -> Leaderboard:
    """The leaderboard of a results folder (read by :func:`read_results`, or already read),
    with the published rows of ``references`` beside its own."""
    if isinstance(results, Path):
        results = read_results(results)
    if not results.latest:
        raise HearError(f"{results.folder}: no result records (hear run writes them there)")
    notes = list(results.notes)
    released = released_folders(references)
    by_name = released_names(released)
    by_model: dict[str, dict[str, list[FoundRecord]]] = {}
    tasks_of: dict[str, set[str]] = {}
    for (model, task), found in results.latest.items():
        name = _column_of(task, found, released, by_name, notes)
        by_model.setdefault(model, {}).setdefault(name, []).append(found)
        tasks_of.setdefault(name, set()).add(task)
    hear = [c for c in HEAR_2021_COLUMNS if c in tasks_of]
    names = hear + sorted(c for c in tasks_of if c not in HEAR_2021_COLUMNS)
    columns = []
    for name in names:
        metrics = {
            f.record.primary_metric for cells in by_model.values() for f in cells.get(name, [])
        }
        if len(metrics) > 1:
            disagree = ", ".join(sorted(metrics))
            notes.append(f"{name}: records disagree on the primary metric ({disagree})")
        columns.append(Column(name, sorted(tasks_of[name]), _higher_is_better(metrics, notes)))
    rows = []
    for model, held in by_model.items():
        cells = {name: _cell(name, model, records, notes) for name, records in held.items()}
        rows.append(Row(model, cells))
    rows += _published_rows(references, rows, columns, notes)
    _normalize(columns, rows, notes)
    rows.sort(key=lambda r: (r.aggregate is None, -(r.aggregate or 0.0), r.model))
    shown = [{"name": r.name, "title": r.title, "source": r.source} for r in references]
    return Leaderboard(columns, rows, notes, shown)


def _column_of(
    task: str,
    found: FoundRecord,
    released: dict[str, Released],
    by_name: dict[str, Released],
    notes: list[str],
) -> str:
    """A record's column: a released task at another version is a column apart, noted."""
    version = found.record.task.version
    same = released.get(task) or by_name.get(found.record.task.task_name)
    if same is None or version == same.version:
        return column_name(task)
    note = version_note(task, version, same)
    if note not in notes:
        notes.append(note)
    # A released folder name holding another version must not share the released column.
    return f"{task} (version {version})" if task in released else task


def _published_rows(
    references: Sequence[ReferenceResults], own: list[Row], columns: list[Column], notes: list[str]
) -> list[Row]:
    """Each published submission's scores on the columns the user's records share with it
    (same folder and version; same primary metric, else a note and no comparison)."""
    rows = []
    for ref in references:
        shared: dict[str, tuple[str, str]] = {}  # column -> (published folder, metric)
        for folder, task in ref.tasks.items():
            name = column_name(folder)
            if not any(c.name == name for c in columns):
                continue
            metrics = {r.cells[name].metric for r in own if name in r.cells}
            if metrics != {task.metric}:
                theirs = ", ".join(sorted(metrics))
                notes.append(f"{name}: records score {theirs}, {ref.name} publishes "
                             f"{task.metric}: not compared")  # fmt: skip
                continue
            shared[name] = (folder, task.metric)
        url = ref.source.get("url", "")
        notes.append(
            f"{ref.name}: {len(ref.rows)} published rows ({ref.title}{', ' + url if url else ''}),"
            f" compared on {len(shared)} of its {len(ref.tasks)} tasks; the aggregate is "
            "normalized over your rows and the published ones together"
        )
        for submission, scores in ref.rows.items():
            cells = {
                name: Cell(scores[folder], None, metric, [])
                for name, (folder, metric) in shared.items()
                if folder in scores
            }
            rows.append(Row(submission, cells, reference=ref.name))
    return rows


def _cell(name: str, model: str, found: list[FoundRecord], notes: list[str]) -> Cell:
    """One record's score and interval; several folders of one column (Beehive's two folds,
    as HEAR's leaderboard does) give their mean, without an interval."""
    if len(found) == 1:
        record = found[0].record
        return Cell(record.test_score, record.test_score_ci, record.primary_metric, [found[0].path])
    wanted = len(HEAR_2021_COLUMNS.get(name, ()))
    notes.append(
        f"{model} · {name}: the mean of {len(found)} task folders' scores"
        + (f" ({wanted} make the published score)" if wanted > len(found) else "")
        + "; no interval is shown for a mean of folders"
    )
    return Cell(
        float(np.mean([f.record.test_score for f in found])),
        None,
        found[0].record.primary_metric,
        [f.path for f in found],
    )


def _higher_is_better(metrics: set[str], notes: list[str]) -> bool:
    from hear_runner.metrics import metrics as loaded

    known = loaded()
    for name in metrics:
        if name in known:
            return known[name].higher_is_better
        notes.append(f"metric {name} is not loaded: taken as higher-is-better in the aggregate")
    return True


def normalized_scores(values: dict[str, float], higher_is_better: bool = True) -> dict[str, float]:
    """One task's scores by model, standardized across models and clipped to [-1, 1]."""
    finite = {m: v for m, v in values.items() if math.isfinite(v)}
    if not finite:
        return {}
    data = np.array(list(finite.values()), dtype=np.float64)
    mean, std = float(data.mean()), float(data.std())  # population std, as StandardScaler
    sign = 1.0 if higher_is_better else -1.0
    return {
        m: float(np.clip(sign * (v - mean) / std, -1.0, 1.0)) if std > 0 else 0.0
        for m, v in finite.items()
    }


def _normalize(columns: list[Column], rows: list[Row], notes: list[str]) -> None:
    # By row position: a published submission may share a name with one of the user's models.
    for column in columns:
        values = {str(i): r.cells[column.name].score for i, r in enumerate(rows)
                  if column.name in r.cells}  # fmt: skip
        for i, value in values.items():
            if not math.isfinite(value):
                model = rows[int(i)].model
                notes.append(f"{model} · {column.name}: the score is {value}, not in the aggregate")
        for i, z in normalized_scores(values, column.higher_is_better).items():
            rows[int(i)].normalized[column.name] = z
    for row in rows:
        if row.normalized:
            row.aggregate = float(np.mean(list(row.normalized.values())))


# --- rendering ---------------------------------------------------------------------------

TITLE = "HEAR leaderboard: primary test score [95% bootstrap interval over test clips]"
CAPTION = (
    "aggregate: each task's scores z-scored across models, clipped to [-1, 1], averaged over "
    "the model's tasks (HEAR's normalization; tasks: how many it has)"
)


def _number(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else str(value)


def cell_text(cell: Cell | None) -> str:
    if cell is None:
        return MISSING
    text = _number(cell.score)
    if cell.ci is not None:
        text += f" [{cell.ci[0]:.3f}, {cell.ci[1]:.3f}]"
    return text


def _aggregate_text(row: Row) -> str:
    return MISSING if row.aggregate is None else f"{row.aggregate:+.3f}"


def _tasks_text(row: Row, columns: list[Column]) -> str:
    return f"{len(row.normalized)}/{len(columns)}"


def _published_header(board: Leaderboard) -> list[str]:
    """A "published" column where the board shows reference results, else none."""
    return ["published"] if board.references else []


def _published_text(board: Leaderboard, row: Row) -> list[str]:
    """A published row's reference name (its "published" cell); the user's rows: empty."""
    return [row.reference or ""] if board.references else []


def to_table(board: Leaderboard) -> Table:
    table = Table(title=TITLE, caption=CAPTION, header_style="bold")
    table.add_column("model", no_wrap=True)
    table.add_column("aggregate", justify="right")
    table.add_column("tasks", justify="right")
    for name in _published_header(board):
        table.add_column(name)
    for column in board.columns:
        table.add_column(escape(column.name), justify="right")
    for row in board.rows:
        table.add_row(
            escape(row.model),
            _aggregate_text(row),
            _tasks_text(row, board.columns),
            *(escape(text) for text in _published_text(board, row)),
            *(cell_text(row.cells.get(c.name)) for c in board.columns),
            style="dim" if row.published else None,
        )
    return table


def to_markdown(board: Leaderboard) -> str:
    header = ["model", "aggregate", "tasks", *_published_header(board)]
    header += [c.name for c in board.columns]
    lines = [
        f"**{TITLE}**",
        "",
        "| " + " | ".join(_md(h) for h in header) + " |",
        "|---|" + "---:|" * (len(header) - 1),
    ]
    for row in board.rows:
        cells = [
            row.model,
            _aggregate_text(row),
            _tasks_text(row, board.columns),
            *_published_text(board, row),
            *(cell_text(row.cells.get(c.name)) for c in board.columns),
        ]
        lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    lines += ["", f"_{CAPTION}_"]
    lines += [f"- {note}" for note in board.notes]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def to_csv(board: Leaderboard) -> str:
    """One row per model; per task its score, interval bounds and metric; missing: empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["model", "aggregate", "tasks", *_published_header(board)]
    for c in board.columns:
        header += [c.name, f"{c.name} ci_low", f"{c.name} ci_high", f"{c.name} metric"]
    writer.writerow(header)
    for row in board.rows:
        line: list[Any] = [row.model, _csv(row.aggregate), len(row.normalized)]
        line += _published_text(board, row)
        for c in board.columns:
            cell = row.cells.get(c.name)
            if cell is None:
                line += ["", "", "", ""]
            else:
                low, high = cell.ci if cell.ci else (None, None)
                line += [_csv(cell.score), _csv(low), _csv(high), cell.metric]
        writer.writerow(line)
    return buffer.getvalue()


def _csv(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def to_json(board: Leaderboard) -> dict[str, Any]:
    """Missing cells are null; a score that is not finite is its string ("nan", "inf")."""
    return {
        "title": TITLE,
        "aggregate": CAPTION,
        "columns": [
            {"name": c.name, "tasks": c.tasks, "higher_is_better": c.higher_is_better}
            for c in board.columns
        ],
        "rows": [
            {
                "model": row.model,
                "aggregate": row.aggregate,
                "tasks": len(row.normalized),
                "normalized": row.normalized,
                "published": row.published,
                "reference": row.reference,
                "scores": {c.name: _json_cell(row.cells.get(c.name)) for c in board.columns},
            }
            for row in board.rows
        ],
        "notes": board.notes,
        "references": board.references,
    }


def _json_cell(cell: Cell | None) -> dict[str, Any] | None:
    if cell is None:
        return None
    low, high = cell.ci if cell.ci else (None, None)
    return {
        "score": cell.score if math.isfinite(cell.score) else str(cell.score),
        "ci_low": low,
        "ci_high": high,
        "metric": cell.metric,
        "records": [str(p) for p in cell.records],
    }


def render(board: Leaderboard, fmt: str) -> str:
    """csv, json or markdown text (the table is rich's, see :func:`to_table`)."""
    if fmt == "csv":
        return to_csv(board)
    if fmt == "json":
        return json.dumps(to_json(board), indent=2) + "\n"
    if fmt == "markdown":
        return to_markdown(board)
    raise HearError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
