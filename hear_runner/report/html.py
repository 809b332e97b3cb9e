"""`hear report`: one self-contained HTML page (inline CSS and SVG, no script, no network)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from hear_runner import __version__
from hear_runner.files import atomic_output
from hear_runner.names import slug
from hear_runner.report.board import leaderboard_table
from hear_runner.report.charts import (
    CostPoint,
    Timeline,
    column_chart,
    confusion_chart,
    confusion_counts,
    cost_chart,
    score_chart,
    timeline_chart,
    whisker,
)
from hear_runner.report.data import Entry, hardware_text
from hear_runner.results.leaderboard import Leaderboard, build_leaderboard, ranked
from hear_runner.results.reader import read_results
from hear_runner.specs import ReferenceResults

CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; color: #1d1f23;
       margin: 0 auto; padding: 24px 32px 64px; max-width: 1240px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 1px solid #ddd; }
h3 { font-size: 15px; margin: 18px 0 6px; }
nav a { margin-right: 14px; }
a { color: #0b5cad; }
.meta, .note { color: #555; font-size: 13px; }
.note { max-width: 900px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { border: 1px solid #dde1e6; padding: 4px 8px; vertical-align: top; }
th { background: #f3f5f7; text-align: left; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.missing { color: #999; text-align: center; }
td .sub, th .sub { display: block; color: #666; font-size: 11px; font-weight: normal; }
td.best { background: #eef6ee; }
code { font-size: 12px; background: #f3f5f7; padding: 0 3px; border-radius: 3px; }
.plots { display: flex; flex-wrap: wrap; gap: 18px; }
figure.plot { margin: 0; padding: 10px 12px; width: fit-content; max-width: 100%;
              border: 1px solid #e3e6ea; border-radius: 6px; background: #fff; overflow-x: auto; }
figure.plot figcaption { font-weight: 600; margin-bottom: 6px; }
figure.plot figcaption .sub { display: block; font-weight: normal; color: #555; font-size: 12px; }
svg { display: block; }
.warn { color: #8a4b00; }
tr.published th, tr.published td { color: #595959; background: #f0f0f0; font-weight: normal; }
tr.published td b { font-weight: normal; }
tbody tr[data-yours] th { border-left: 4px solid #0072b2; color: #0b4f8a; }
"""


@dataclass
class Report:
    """What was written: the page and the plots in it (by kind), for the command to say."""

    path: Path
    models: list[str]
    tasks: list[str]
    plots: dict[str, list[str]] = field(default_factory=dict)  # kind -> element ids
    notes: list[str] = field(default_factory=list)


def write_report(
    results_dir: Path,
    output: Path,
    timeline_files: int = 3,
    image_sizes: Callable[[list[Entry]], tuple[dict[str, int], str | None]] | None = None,
    references: Sequence[ReferenceResults] = (),
) -> Report:
    """Read the records under ``results_dir`` as `hear leaderboard` does (the newest of each
    model and task, at any depth) and write the page to ``output`` atomically; with
    ``references``, their published rows are on the leaderboard and the score charts (grey),
    and each of your cells says its rank among them."""
    results = read_results(results_dir)
    board = build_leaderboard(results, references)  # the one leaderboard, shown as it is
    entries = [Entry(found) for found in results.records()]
    page = Page(entries, board, results_dir, timeline_files, image_sizes or docker_image_sizes)
    html = page.render()
    with atomic_output(output, "w") as handle:
        handle.write(html)
        os.chmod(handle.name, 0o644)
    return Report(output, page.models, page.tasks, page.plots, board.notes + page.notes)


class Page:
    def __init__(
        self,
        entries: list[Entry],
        board: Leaderboard,
        results_dir: Path,
        timeline_files: int,
        image_sizes: Callable[[list[Entry]], tuple[dict[str, int], str | None]],
    ) -> None:
        self.entries = entries
        self.board = board
        self.results_dir = results_dir
        self.timeline_files = timeline_files
        self.image_sizes = image_sizes
        self.models = sorted({e.model for e in entries})
        self.tasks = sorted({e.task for e in entries})
        self.cell = {(e.model, e.task): e for e in entries}
        self.plots: dict[str, list[str]] = {}
        self.notes: list[str] = []
        self._ids: set[str] = set()

    # -- assembly -----------------------------------------------------------------------

    def render(self) -> str:
        sections = [
            ("leaderboard-section", "Leaderboard", self.leaderboard()),
            ("task-scores", "Scores per task", self.task_scores()),
            ("cost", "Quality against cost", self.cost()),
            ("timelines", "Event timelines", self.timelines()),
            ("confusions", "Confusion matrices", self.confusions()),
            ("provenance", "Provenance", self.provenance()),
        ]
        nav = " ".join(f'<a href="#{sid}">{escape(title)}</a>' for sid, title, _ in sections)
        body = "\n".join(
            f'<section id="{sid}"><h2>{escape(title)}</h2>\n{content}</section>'
            for sid, title, content in sections
        )
        created = datetime.now(UTC).isoformat(timespec="seconds")
        return (
            "<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>HEAR report: {escape(self.results_dir.name)}</title>"
            f"<style>{CSS}</style></head>\n<body>\n"
            "<header><h1>HEAR results</h1>"
            f'<p class="meta">{len(self.models)} model(s) &times; {len(self.tasks)} task(s), '
            f"{len(self.entries)} result record(s) from "
            f"<code>{escape(str(self.results_dir))}</code>; "
            f"report written {created} by hear-runner {escape(__version__)}. "
            "Scores are on each task's test split, under its primary metric.</p>"
            f"<nav>{nav}</nav></header>\n{body}\n</body></html>\n"
        )

    def _id(self, *parts: str) -> str:
        """A stable element id from names: the same names give the same id in every report."""
        base = "-".join(slug(p, keep="-_") for p in parts)
        found, n = base, 2
        while found in self._ids:
            found, n = f"{base}-{n}", n + 1
        self._ids.add(found)
        return found

    def _figure(self, kind: str, fid: str, title: str, sub: str, svg: str, **data: str) -> str:
        self.plots.setdefault(kind, []).append(fid)
        attrs = "".join(f' data-{k}="{escape(v)}"' for k, v in data.items())
        return (
            f'<figure class="plot {kind}" id="{fid}"{attrs}>'
            f'<figcaption>{escape(title)}<span class="sub">{sub}</span></figcaption>'
            f"{svg}</figure>"
        )

    # -- sections -----------------------------------------------------------------------

    def leaderboard(self) -> str:
        return leaderboard_table(self.board, {e.found.path: e for e in self.entries})

    def task_scores(self) -> str:
        if self.board.references:
            return self._column_scores()
        figures = []
        for task in self.tasks:
            mine = {m: self.cell[(m, task)] for m in self.models if (m, task) in self.cell}
            whiskers = {w[2] for e in mine.values() if (w := whisker(e))}
            sub = "a point per model; whiskers: " + (
                " / ".join(sorted(whiskers)) or "none (one fold, no interval in the record)"
            )
            figures.append(
                self._figure(
                    "task-scores",
                    self._id("scores", task),
                    f"{task}: {self._metric(task)}",
                    escape(sub),
                    score_chart(task, self.models, mine),
                    task=task,
                    models=json.dumps(sorted(mine)),
                )
            )
        return f'<div class="plots">{"".join(figures)}</div>'

    def _column_scores(self) -> str:
        """With published rows: a chart per leaderboard column, every row best first, and
        your models' ranks there."""
        by_path = {e.found.path: e for e in self.entries}
        figures = []
        for column in self.board.columns:
            scored = ranked(self.board.rows, column)
            svg, sub = column_chart(
                column, scored, lambda c: by_path.get(c.records[0]) if len(c.records) == 1 else None
            )
            yours = [
                f"{row.model}: rank {rank} of {len(scored)}"
                for row, _, rank in scored
                if not row.published and rank is not None
            ]
            figures.append(
                self._figure(
                    "task-scores",
                    self._id("scores", column.name),
                    f"{column.name}: {self._metric(column.tasks[0])}",
                    escape("; ".join([*yours, sub])),
                    svg,
                    task=column.name,
                    models=json.dumps(sorted({r.model for r, _, _ in scored if not r.published})),
                )
            )
        return f'<div class="plots">{"".join(figures)}</div>'

    def cost(self) -> str:
        sizes, size_note = self.image_sizes(self.entries)
        points, how = [], set()
        for e in self.entries:
            measured = e.seconds_per_audio_hour()
            if measured is None:
                continue
            how.add(measured[1])
            points.append(CostPoint(e.model, e.task, measured[0], e.score, sizes.get(e.model)))
        parts = []
        if points:
            sub = (
                "x: embedding seconds per hour of audio (" + "; ".join(sorted(how)) + "), "
                "log scale; y: the task's primary test score; grey lines join one task's models"
            )
            parts.append(
                self._figure(
                    "cost",
                    "cost-plot",
                    "Test score against embedding cost",
                    escape(sub),
                    cost_chart(points, self.models),
                )
            )
        else:
            parts.append('<p class="note">No record has embedding timings: no cost plot.</p>')
        parts.append(self._cost_table(sizes))
        notes = [
            "Embedding cost is the wall time the run spent embedding a task's audio, per hour "
            "of that audio, on the hardware in the provenance table below (model start-up "
            "excluded; a task read back from the embedding store falls back to the model-call "
            "time the store kept)."
        ]
        if size_note:
            notes.append(escape(size_note))
            self.notes.append(size_note)
        parts.append("".join(f'<p class="note">{n}</p>' for n in notes))
        return "\n".join(parts)

    def _cost_table(self, sizes: dict[str, int]) -> str:
        rows = []
        for model in self.models:
            mine = [e for e in self.entries if e.model == model]
            costs = [c[0] for e in mine if (c := e.seconds_per_audio_hour())]
            median = sorted(costs)[len(costs) // 2] if costs else None
            kind = mine[0].record.model.kind
            size = sizes.get(model)
            size_text = (
                f"{size / 1e9:.2f} GB" if size else "— (local module)" if kind == "module" else "—"
            )
            rss = [
                s.get("peak_rss_bytes")
                for e in mine
                for s in e.engine.get("servers", [])
                if isinstance(s, dict)
            ]
            peak = max((r for r in rss if isinstance(r, int | float)), default=None)
            rows.append(
                f"<tr><th>{escape(model)}</th><td>{escape(kind)}</td>"
                f'<td class="num">{"—" if median is None else f"{median:,.1f}"}</td>'
                f'<td class="num">{size_text}</td>'
                f'<td class="num">{"—" if peak is None else f"{peak / 2**20:,.0f} MiB"}</td></tr>'
            )
        return (
            '<table id="cost-table"><thead><tr><th>model</th><th>kind</th>'
            '<th>embedding s per audio hour<span class="sub">median over tasks</span></th>'
            '<th>image size</th><th>peak server memory<span class="sub">resident, largest '
            f"seen</span></th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )

    def timelines(self) -> str:
        event_tasks = [t for t in self.tasks if self._embedding_type(t) == "event"]
        if not event_tasks:
            return '<p class="note">No timestamp (event) task among these records.</p>'
        return "\n".join(self._timeline(task) for task in event_tasks)

    def _timeline(self, task: str) -> str:
        loaded = []
        for model in self.models:
            entry = self.cell.get((model, task))
            found = entry.predictions() if entry else None
            if entry and found:
                loaded.append((model, entry, found))
        if not loaded:
            return (
                f'<p class="note">{escape(task)}: no predictions saved beside these records '
                "(older runs): no timeline.</p>"
            )
        _, first, (vocabulary, folds) = loaded[0]
        ref = folds[0]
        with_events = [f for f in sorted(ref.reference) if ref.reference[f]]
        chosen = with_events + [f for f in sorted(ref.reference) if f not in with_events]
        chosen = chosen[: self.timeline_files]
        models = [m for m, _, _ in loaded]
        panels = []
        for name in chosen:
            predicted = {}
            for model, _, (_, mfolds) in loaded:
                fold = next((f for f in mfolds if f.fold == ref.fold and f.seed == ref.seed), None)
                predicted[model] = list(fold.events.get(name, [])) if fold else []
            panels.append(Timeline(name, list(ref.reference.get(name, [])), predicted))
        duration = _clip_seconds(first, panels)
        sub = (
            f"fold {ref.fold}, seed {ref.seed}: the first {len(chosen)} test files with true "
            "events; dark bars are the true events, coloured bars each model's post-processed "
            "predictions (heareval's median filter and minimum duration, chosen on validation)"
        )
        svg = timeline_chart(task, models, vocabulary, panels, duration)
        return self._figure(
            "event-timeline",
            self._id("timeline", task),
            f"{task}: predicted and true events",
            escape(sub),
            svg,
            task=task,
            models=json.dumps(models),
        )

    def confusions(self) -> str:
        tasks = [
            t
            for t in self.tasks
            if self._embedding_type(t) == "scene" and self._prediction_type(t) == "multiclass"
        ]
        if not tasks:
            return '<p class="note">No multiclass scene task among these records.</p>'
        out = []
        for task in tasks:
            figures = []
            for model in self.models:
                entry = self.cell.get((model, task))
                if entry is None:
                    continue
                found = entry.predictions()
                if not found:
                    figures.append(
                        f'<p class="note">{escape(model)}: no predictions saved '
                        "beside the record (an older run).</p>"
                    )
                    continue
                labels, folds = found
                counts = confusion_counts(labels, folds)
                sub = (
                    "test clips of every fold (first seed), rows: true label, columns: the "
                    "probe's top-scoring label; colour: share of the row"
                )
                figures.append(
                    self._figure(
                        "confusion",
                        self._id("confusion", task, model),
                        f"{task} · {model}",
                        escape(sub),
                        confusion_chart(task, model, labels, counts),
                        task=task,
                        model=model,
                    )
                )
            out.append(f'<h3>{escape(task)}</h3><div class="plots">{"".join(figures)}</div>')
        return "\n".join(out)

    def provenance(self) -> str:
        rows = []
        for e in sorted(self.entries, key=lambda e: (e.model, e.task)):
            engine = e.engine
            if engine.get("image_id"):
                digests = engine.get("repo_digests") or []
                build = f"image <code>{escape(str(engine['image_id'])[:19])}</code>"
                if digests:
                    build += f'<span class="sub">{escape(str(digests[0]))}</span>'
            else:
                build = (
                    f"module <code>{escape(str(engine.get('module', e.model)))}</code>"
                    f'<span class="sub">{escape(str(engine.get("python", "")))}</span>'
                )
            record = e.record
            seeds = ", ".join(map(str, record.probe.seeds))
            rows.append(
                f"<tr><td>{escape(e.model)}</td><td>{escape(e.task)}"
                f'<span class="sub">hash {escape(record.task.content_hash)}</span></td>'
                f"<td>{build}</td><td>{escape(record.probe.label)}"
                f'<span class="sub">seeds {escape(seeds or "?")}</span></td>'
                f"<td>{escape(hardware_text(record.host))}</td>"
                f"<td>{escape(record.runner_version)}"
                f'<span class="sub">{escape(record.created)}</span>'
                f'<span class="sub record">{escape(str(e.found.path))}</span></td></tr>'
            )
        return (
            '<table id="provenance-table"><thead><tr><th>model</th><th>task</th><th>build</th>'
            "<th>probe</th><th>hardware</th><th>runner</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )

    # -- helpers --------------------------------------------------------------------------

    def _metric(self, task: str) -> str:
        return next(e.metric for e in self.entries if e.task == task)

    def _embedding_type(self, task: str) -> str:
        return next(e.record.task.embedding_type for e in self.entries if e.task == task)

    def _prediction_type(self, task: str) -> str:
        return next(e.record.task.prediction_type for e in self.entries if e.task == task)


def _clip_seconds(entry: Entry, panels: list[Timeline]) -> float:
    """The task's clip length (its metadata where the folder is still there), else the
    last event's end, rounded up to a second."""
    try:
        meta = json.loads((Path(entry.record.task.path) / "task_metadata.json").read_text())
        duration = float(meta.get("sample_duration") or 0)
        if duration > 0:
            return duration
    except (OSError, ValueError, TypeError, AttributeError):
        pass
    ends = [
        end
        for p in panels
        for e in [*p.truth, *(x for v in p.predicted.values() for x in v)]
        if isinstance(end := e.get("end"), int | float)
    ]
    return max(1.0, math.ceil(max(ends, default=1000.0) / 1000))


def docker_image_sizes(entries: list[Entry]) -> tuple[dict[str, int], str | None]:
    """Each image model's size, from the Docker engine (by the image id in its record).

    Only asked when a record is an image's, with a short timeout; where the engine
    cannot say, the sizes are left out and the note says why.
    """
    ids = {e.model: str(e.engine["image_id"]) for e in entries if e.engine.get("image_id")}
    if not ids:
        return {}, "Image size: every model here ran as a local module (no image)."
    try:
        import docker

        client = docker.from_env(timeout=5)
        client.ping()
    except Exception as e:
        return {}, f"Image size left out: no Docker engine answered ({type(e).__name__})."
    sizes, missing = {}, []
    for model, image_id in ids.items():
        try:
            sizes[model] = int(client.images.get(image_id).attrs["Size"])
        except Exception:
            missing.append(model)
    note = "Image size: the uncompressed size the Docker engine reports for the image id."
    if missing:
        note += f" Not on this engine any more: {', '.join(missing)}."
    return sizes, note
