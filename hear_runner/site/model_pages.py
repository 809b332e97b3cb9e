"""A page per model of the site's records: its score per task, and its provenance as the
records and manifests keep it: image id, digests and labels (or module and interpreter),
the run manifests that name its records, model and probe options, hardware and times."""

from __future__ import annotations

import json
from html import escape
from pathlib import PurePosixPath
from typing import Any

from hear_runner.report.charts import fmt_score
from hear_runner.report.data import hardware_text
from hear_runner.results.leaderboard import column_name
from hear_runner.results.manifest import FoundManifest
from hear_runner.results.reader import FoundRecord
from hear_runner.site.links import href
from hear_runner.site.pages import SiteData, shell


def model_page(data: SiteData, model: str) -> str:
    mine = sorted(
        ((p, f) for p, f in data.found.items() if f.record.model.name == model),
        key=lambda pf: pf[1].record.task.name,
    )
    first = mine[0][1].record if mine else None
    kind = first.model.kind if first else "?"
    body = (
        f"<h1>{escape(model)}</h1>"
        f'<p class="meta">{escape(kind)} · {len(mine)} task record(s)</p>'
        f"<h2>Scores</h2>{_scores(data, model, mine)}"
        f'<h2 id="provenance">Provenance</h2>{_provenance(mine)}'
        f'<h2 id="manifests">Manifests</h2>{_manifests(data, mine)}'
        f'<h2 id="options">Options</h2>{_options(mine)}'
        f'<h2 id="hardware">Hardware</h2>{_hardware(mine)}'
        f'<h2 id="times">Times</h2>{_times(mine)}'
    )
    return shell(model, body, 1)


Mine = list[tuple[PurePosixPath, FoundRecord]]


def _scores(data: SiteData, model: str, mine: Mine) -> str:
    rows = []
    for path, found in mine:
        record = found.record
        column = _column_of(data, model, path)
        task = escape(record.task.name)
        if column is not None:
            task = f'<a href="{href(data.map.task_file(column), 1)}">{task}</a>'
        ci = record.test_score_ci
        interval = f"[{fmt_score(ci[0])}, {fmt_score(ci[1])}]" if ci else "—"
        files = [("record", path)]
        for label, name in (("predictions", record.predictions_file),
                            ("heareval scores", record.heareval_scores_file)):  # fmt: skip
            if name:
                files.append((label, path.parent / name))
        links = " · ".join(f'<a href="{href(p, 1)}">{label}</a>' for label, p in files)
        rows.append(
            f'<tr><th scope="row">{task}</th><td><code>{escape(record.primary_metric)}</code></td>'
            f'<td class="num" data-score="{record.test_score!r}">{fmt_score(record.test_score)}'
            f'</td><td class="num">{interval}</td><td>{links}</td></tr>'
        )
    return (
        '<div class="scroll"><table id="model-scores"><thead><tr><th scope="col">task</th>'
        '<th scope="col">metric</th><th scope="col">test score</th><th scope="col">95% interval'
        '</th><th scope="col">files</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _column_of(data: SiteData, model: str, path: PurePosixPath) -> str | None:
    """The leaderboard column that shows this record (a mean of folders' column too)."""
    for row in data.rows_of(model):
        for name, cell in row.cells.items():
            if any(PurePosixPath(p.as_posix()) == path for p in cell.records):
                return name
    name = column_name(path.stem)
    return name if name in data.map.tasks else None


# The engine's facts shown first, in this order (image labels as a list), then the rest.
SHOWN = ("image", "image_id", "repo_digests", "module", "python", "engine", "image_labels")


def _provenance(mine: Mine) -> str:
    """How the model was served, once per distinct engine description."""
    seen: dict[str, list[str]] = {}
    for _, found in mine:
        described = json.dumps(found.record.model.engine, sort_keys=True)
        seen.setdefault(described, []).append(found.record.task.name)
    parts = []
    for described, tasks in seen.items():
        engine: dict[str, Any] = json.loads(described)
        facts = ""
        for key in SHOWN[:-1]:
            if engine.get(key):
                facts += f"<dt>{escape(key.replace('_', ' '))}</dt><dd>{_value(engine[key])}</dd>"
        labels = engine.get("image_labels") or {}
        if labels:
            items = "".join(
                f"<li><code>{escape(k)}</code> = <code>{escape(str(v))}</code></li>"
                for k, v in sorted(labels.items())
            )
            facts += f"<dt>image labels</dt><dd><ul>{items}</ul></dd>"
        rest = {k: v for k, v in engine.items() if k not in SHOWN}
        for key, value in sorted(rest.items()):
            facts += f"<dt>{escape(key)}</dt><dd>{_value(value)}</dd>"
        parts.append(
            f'<p class="note">for {escape(", ".join(tasks))}</p><dl class="facts">{facts}</dl>'
        )
    return "".join(parts) or '<p class="note">No record.</p>'


def _manifests(data: SiteData, mine: Mine) -> str:
    paths = {found.path.resolve() for _, found in mine}
    naming: list[FoundManifest] = [m for m in data.manifests if paths & set(m.records)]
    if not naming:
        return '<p class="note">No run manifest in the site names these records.</p>'
    items = []
    for m in naming:
        run = m.manifest
        probe = run.probe
        tasks = "".join(
            f"<li><code>{escape(t.name)}</code> version <code>{escape(t.version)}</code>, "
            f"content hash <code>{escape(t.content_hash)}</code></li>"
            for t in run.tasks
        )
        items.append(
            f'<li><a href="{href(PurePosixPath(m.path.as_posix()), 1)}">'
            f"{escape(m.path.name)}</a>"
            f'<dl class="facts"><dt>created</dt><dd>{escape(run.created)}</dd>'
            f"<dt>hear-runner</dt><dd>{escape(run.runner_version)}</dd>"
            f"<dt>command</dt><dd><code>{escape(' '.join(run.command))}</code></dd>"
            f"<dt>engine</dt><dd>{escape(run.engine.engine)}</dd>"
            f"<dt>probe</dt><dd>{escape(probe.mode)}, seeds {escape(str(probe.seeds))}, "
            f"{probe.grid_points} grid point(s), batch size {probe.batch_size}</dd>"
            f"<dt>models</dt><dd>{escape(', '.join(x.identity for x in run.models))}</dd>"
            f"<dt>tasks</dt><dd><ul>{tasks}</ul></dd></dl></li>"
        )
    return f'<ul class="manifests">{"".join(items)}</ul>'


def _options(mine: Mine) -> str:
    rows = []
    for _, found in mine:
        record = found.record
        probe = record.probe
        rows.append(
            f'<tr><th scope="row">{escape(record.task.name)}</th>'
            f"<td>{_value(record.model.options)}</td><td>{escape(probe.label)}</td>"
            f"<td>{escape(', '.join(map(str, probe.seeds)))}</td>"
            f"<td><code>{escape(probe.selection_metric)}</code></td><td>{escape(probe.device)}</td>"
            f"<td>{_value(probe.config)}</td></tr>"
        )
    return (
        '<div class="scroll"><table id="options"><thead><tr><th scope="col">task</th>'
        '<th scope="col">model options</th><th scope="col">probe</th><th scope="col">seeds</th>'
        '<th scope="col">selected on</th><th scope="col">device</th>'
        '<th scope="col">probe configuration</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _hardware(mine: Mine) -> str:
    seen: dict[str, list[str]] = {}
    for _, found in mine:
        seen.setdefault(hardware_text(found.record.host), []).append(found.record.task.name)
    items = "".join(
        f'<li>{escape(text)}<span class="sub">for {escape(", ".join(tasks))}</span></li>'
        for text, tasks in seen.items()
    )
    return f'<ul id="hardware-list">{items}</ul>'


def _times(mine: Mine) -> str:
    stages = sorted({k for _, f in mine for k in f.record.timings})
    if not stages:
        return '<p class="note">The records keep no timings.</p>'
    head = "".join(f'<th scope="col">{escape(s)}</th>' for s in stages)
    rows = []
    for _, found in mine:
        t = found.record.timings
        cells = "".join(
            f'<td class="num">{t[s]:,.2f}</td>' if s in t else '<td class="missing">—</td>'
            for s in stages
        )
        rows.append(f'<tr><th scope="row">{escape(found.record.task.name)}</th>{cells}</tr>')
    return (
        '<p class="note">Seconds per stage, except rates (per second) and audio amounts '
        "as the record names them.</p>"
        f'<div class="scroll"><table id="times"><thead><tr><th scope="col">task</th>{head}</tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _value(value: Any) -> str:
    """A value as code: text as it is, anything else as JSON."""
    if isinstance(value, str):
        return f"<code>{escape(value)}</code>"
    if value in ({}, [], None):
        return "—"
    return f"<code>{escape(json.dumps(value, sort_keys=True))}</code>"
