"""The report's plots, each an inline SVG string drawn from result records and predictions."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from hear_runner.report.svg import Linear, Log, Svg, blend, color, text_width, x_axis, y_axis
from hear_runner.results.predictions import FoldPredictions

LABEL_SIZE = 12.0
MAX_LABEL_PX = 240.0


def short(name: str, size: float = LABEL_SIZE, limit: float = MAX_LABEL_PX) -> str:
    """``name``, cut with an ellipsis where it would be wider than ``limit`` pixels."""
    if text_width(name, size) <= limit:
        return name
    keep = max(int(limit / (size * 0.6)) - 1, 4)
    return name[:keep] + "…"


class Scored(Protocol):
    """What a score chart draws of one model: a report :class:`Entry` (a record), or a
    leaderboard cell the site draws (a published score has no record)."""

    @property
    def score(self) -> float: ...
    @property
    def metric(self) -> str: ...
    @property
    def ci(self) -> tuple[float, float] | None: ...
    @property
    def ci_level(self) -> float | None: ...
    @property
    def fold_std(self) -> float | None: ...


MUTED = "#595959"  # published rows: grey, and still 7:1 against white


def whisker(entry: Scored) -> tuple[float, float, str] | None:
    """The interval drawn around a score: the record's confidence interval, else ± the
    standard deviation over folds; and what it is."""
    if entry.ci is not None:
        pct = entry.ci_level * 100 if entry.ci_level and entry.ci_level <= 1 else entry.ci_level
        level = f"{pct:.0f}% " if pct else ""
        return entry.ci[0], entry.ci[1], f"{level}bootstrap CI over test clips"
    if entry.fold_std is not None and math.isfinite(entry.fold_std) and math.isfinite(entry.score):
        return entry.score - entry.fold_std, entry.score + entry.fold_std, "± std over folds"
    return None


def _value_domain(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(finite), max(finite)
    if lo >= 0 and hi <= 1:
        return 0.0, 1.0
    pad = (hi - lo) * 0.08 or 0.5
    return lo - pad, hi + pad


def score_chart(
    task: str, models: list[str], entries: Mapping[str, Scored], muted: Collection[str] = ()
) -> str:
    """One row per model: the task's primary test score as a point, its interval as whiskers;
    ``muted`` models (published rows) in grey, the others in the palette's colours."""
    metric = next(iter(entries.values())).metric
    left = min(max(text_width(short(m)) for m in models), MAX_LABEL_PX) + 16
    width, right, top, row = 640.0, 150.0, 8.0, 28.0
    height = top + row * len(models) + 46
    svg = Svg(width, height, f"{task}: {metric} per model", class_="chart")
    values = []
    for e in entries.values():
        values.append(e.score)
        w = whisker(e)
        if w:
            values += [w[0], w[1]]
    scale = Linear(_value_domain(values), (left, width - right))
    bottom = top + row * len(models)
    x_axis(svg, scale, bottom, top, f"{metric} (test split)")
    coloured = [m for m in models if m not in muted]
    for i, model in enumerate(models):
        y = top + row * i + row / 2
        if i % 2 == 0:
            svg.rect(left, y - row / 2, width - right - left, row, fill="#f6f7f9")
        grey = model in muted
        ink = MUTED if grey else color(coloured.index(model))
        name_fill = MUTED if grey else "#222"
        svg.text(left - 8, y + 4, short(model), anchor="end", tooltip=model,
                 class_="model-name", fill=name_fill)  # fmt: skip
        entry = entries.get(model)
        if entry is None:
            svg.text(left + 6, y + 4, "no record", size=11, fill="#595959", font_style="italic")
            continue
        if not math.isfinite(entry.score):
            svg.text(left + 6, y + 4, "no score (NaN)", size=11, fill="#595959",
                     font_style="italic")  # fmt: skip
            continue
        w = whisker(entry)
        label = fmt_score(entry.score)
        tip = f"{model} · {task}: {metric} {entry.score:.4f}"
        if w:
            lo, hi, what = w
            x0, x1 = scale(lo), scale(hi)
            svg.line(x0, y, x1, y, stroke=ink, stroke_width=2, class_="whisker")
            for x in (x0, x1):
                svg.line(x, y - 6, x, y + 6, stroke=ink, stroke_width=2)
            label += f" [{fmt_score(lo)}, {fmt_score(hi)}]"
            tip += f"; {what}: [{lo:.4f}, {hi:.4f}]"
        svg.circle(
            scale(entry.score),
            y,
            5.5,
            tooltip=tip,
            fill=ink,
            stroke="#fff",
            class_="score-point published" if grey else "score-point",
            data_model=model,
        )
        svg.text(width - right + 8, y + 4, label, size=11, fill=name_fill if grey else "#333")
    return svg.render()


def fmt_score(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else "—"


@dataclass
class CostPoint:
    model: str
    task: str
    seconds_per_hour: float
    score: float
    image_size: int | None


def cost_chart(points: list[CostPoint], models: list[str]) -> str:
    """Each (model, task): embedding seconds per audio hour (log) against the test score;
    the models' points on one task are joined, so each line is a trade-off."""
    width, height = 680.0, 400.0
    left, right, top, bottom = 70.0, 180.0, 40.0, 56.0
    svg = Svg(width, height, "test score against embedding cost", class_="chart")
    xs = [p.seconds_per_hour for p in points]
    xscale = Log((min(xs), max(xs)), (left, width - right))
    yscale = Linear(_value_domain([p.score for p in points]), (height - bottom, top))
    x_axis(svg, xscale, height - bottom, top, "embedding seconds per hour of audio (log scale)")
    y_axis(svg, yscale, left, width - right, "primary test score")
    for i, model in enumerate(models):  # legend
        x = left + (i % 3) * 170
        y = 14 + (i // 3) * 16
        svg.circle(x, y - 4, 5, fill=color(i))
        svg.text(x + 9, y, short(model, 11, 150), size=11, tooltip=model)
    tasks = sorted({p.task for p in points})
    for task in tasks:
        mine = sorted(
            (p for p in points if p.task == task and math.isfinite(p.score)),
            key=lambda p: p.seconds_per_hour,
        )
        if not mine:
            continue
        svg.polyline(
            [(xscale(p.seconds_per_hour), yscale(p.score)) for p in mine],
            stroke="#bbb",
            stroke_width=1,
        )
        last = mine[-1]
        svg.text(
            xscale(last.seconds_per_hour) + 8,
            yscale(last.score) + 4,
            short(task, 10, 170),
            size=10,
            fill="#666",
            tooltip=task,
        )
    for p in points:
        if not math.isfinite(p.score):
            continue
        i = models.index(p.model)
        size = f"; image {p.image_size / 1e9:.2f} GB" if p.image_size else ""
        tip = (
            f"{p.model} · {p.task}: score {p.score:.4f}; "
            f"{p.seconds_per_hour:.1f} s per audio hour{size}"
        )
        svg.circle(
            xscale(p.seconds_per_hour),
            yscale(p.score),
            5.5,
            tooltip=tip,
            fill=color(i),
            stroke="#fff",
            class_="cost-point",
            data_model=p.model,
        )
    return svg.render()


def confusion_counts(labels: list[str], folds: list[FoldPredictions]) -> np.ndarray:
    """True label (rows) by predicted label (columns), summed over folds, first seed only."""
    counts = np.zeros((len(labels), len(labels)), np.int64)
    seed = folds[0].seed if folds else None
    for fold in folds:
        if fold.seed != seed or fold.targets.size == 0 or fold.scores.shape != fold.targets.shape:
            continue
        np.add.at(counts, (fold.targets.argmax(1), fold.scores.argmax(1)), 1)
    return counts


def confusion_chart(task: str, model: str, labels: list[str], counts: np.ndarray) -> str:
    """A heat map: cell colour is the share of the row's (true label's) clips; counts inside."""
    n = len(labels)
    cell = min(max(360.0 / max(n, 1), 10.0), 36.0)
    size = 11.0 if cell >= 14 else 9.0
    names = [short(label, size, 160) for label in labels]
    label_px = max((text_width(s, size) for s in names), default=20.0)
    left, top = label_px + 40, 30.0
    bottom = label_px * 0.75 + 50
    width = left + cell * n + 90
    height = top + cell * n + bottom
    accuracy = np.trace(counts) / counts.sum() if counts.sum() else math.nan
    svg = Svg(width, height, f"{task} · {model}: confusion matrix", class_="chart")
    svg.text(
        left,
        18,
        f"accuracy {fmt_score(accuracy)} over {counts.sum()} test clips",
        size=11,
        fill="#444",
    )
    rows = counts.sum(1)
    for r in range(n):
        y = top + r * cell
        svg.text(
            left - 6, y + cell / 2 + size / 3, names[r], size=size, anchor="end", tooltip=labels[r]
        )
        for c in range(n):
            share = counts[r, c] / rows[r] if rows[r] else 0.0
            tip = (
                f"true {labels[r]} → predicted {labels[c]}: {counts[r, c]} clips"
                f" ({share * 100:.0f}% of {labels[r]})"
            )
            svg.rect(
                left + c * cell,
                y,
                cell,
                cell,
                tooltip=tip,
                fill=blend("#f7fbff", "#08306b", share),
                stroke="#fff",
                stroke_width=1,
                class_="cell",
            )
            if cell >= 16 and counts[r, c]:
                svg.text(
                    left + c * cell + cell / 2,
                    y + cell / 2 + 4,
                    str(counts[r, c]),
                    size=min(11.0, cell / 2),
                    anchor="middle",
                    fill="#fff" if share > 0.55 else "#222",
                )
        svg.text(left + n * cell + 6, y + cell / 2 + 4, f"n={rows[r]}", size=10, fill="#666")
    grid_bottom = top + n * cell
    for c in range(n):
        x = left + c * cell + cell / 2
        svg.text(
            x,
            grid_bottom + 10,
            names[c],
            size=size,
            anchor="end",
            tooltip=labels[c],
            transform=f"rotate(-45 {x:.1f} {grid_bottom + 10:.1f})",
        )
    mid_y = top + n * cell / 2
    svg.text(
        14,
        mid_y,
        "true label",
        size=11,
        anchor="middle",
        fill="#333",
        transform=f"rotate(-90 14 {mid_y:.1f})",
    )
    svg.text(
        left + n * cell / 2, height - 8, "predicted label", size=11, anchor="middle", fill="#333"
    )
    return svg.render()


@dataclass
class Timeline:
    """One test file: the true events and each model's predicted events (ms)."""

    file: str
    truth: list[dict[str, object]]
    predicted: dict[str, list[dict[str, object]]]  # model -> events


def timeline_chart(
    task: str, models: list[str], vocabulary: list[str], files: list[Timeline], duration: float
) -> str:
    """A panel per file: a row per label, the true events above each model's predictions."""
    width, right = 760.0, 20.0
    labels_here = [
        sorted(
            {str(e["label"]) for e in [*f.truth, *(x for v in f.predicted.values() for x in v)]},
            key=lambda lab: (vocabulary.index(lab) if lab in vocabulary else 1 << 30, lab),
        )
        for f in files
    ]
    names = [short(lab, 11, 180) for labs in labels_here for lab in labs] or ["(no events)"]
    left = max(text_width(s, 11) for s in names) + 20
    lane, truth_lane, gap, panel_head, axis_h = 6.0, 9.0, 7.0, 22.0, 40.0
    row_h = truth_lane + lane * len(models) + gap
    heights = [panel_head + row_h * max(len(labs), 1) + axis_h for labs in labels_here]
    legend_h = 26.0
    height = legend_h + sum(heights)
    svg = Svg(width, height, f"{task}: predicted and true events", class_="chart")
    x = left
    svg.rect(x, 6, 18, truth_lane, fill="#444")
    svg.text(x + 24, 14, "true events", size=11)
    x += 24 + text_width("true events", 11) + 16
    for i, model in enumerate(models):
        svg.rect(x, 8, 18, lane, fill=color(i))
        name = short(model, 11, 200)
        svg.text(x + 24, 14, f"{name} (predicted)", size=11, tooltip=model)
        x += 24 + text_width(f"{name} (predicted)", 11) + 16
    scale = Linear((0.0, duration), (left, width - right))
    y0 = legend_h
    for f, labs, h in zip(files, labels_here, heights, strict=True):
        svg.text(left, y0 + 15, f"test file {f.file}", size=12, font_weight="600")
        top = y0 + panel_head
        if not labs:
            svg.text(
                left + 6,
                top + row_h / 2 + 4,
                "no true or predicted events",
                size=11,
                fill="#888",
                font_style="italic",
            )
        for r, label in enumerate(labs):
            y = top + r * row_h
            if r % 2 == 0:
                svg.rect(left, y, width - right - left, row_h, fill="#f6f7f9")
            svg.text(
                left - 8,
                y + row_h / 2 + 3,
                short(label, 11, 180),
                size=11,
                anchor="end",
                tooltip=label,
            )
            for e in (e for e in f.truth if e["label"] == label):
                s, t = _ms(e["start"]) / 1000, _ms(e["end"]) / 1000
                svg.rect(
                    scale(s),
                    y + 1,
                    max(scale(t) - scale(s), 1.5),
                    truth_lane - 2,
                    fill="#444",
                    tooltip=f"true {label}: {s:.2f} to {t:.2f} s",
                    class_="true-event",
                )
            for i, model in enumerate(models):
                ly = y + truth_lane + lane * i
                for e in (e for e in f.predicted.get(model, []) if e["label"] == label):
                    s, t = _ms(e["start"]) / 1000, _ms(e["end"]) / 1000
                    svg.rect(
                        scale(s),
                        ly + 0.5,
                        max(scale(t) - scale(s), 1.5),
                        lane - 1,
                        fill=color(i),
                        tooltip=f"{model} predicted {label}: {s:.2f} to {t:.2f} s",
                        class_="predicted-event",
                        data_model=model,
                    )
        bottom = top + row_h * max(len(labs), 1)
        x_axis(svg, scale, bottom, top, "time in clip (seconds)")
        y0 += h
    return svg.render()


def _ms(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0
