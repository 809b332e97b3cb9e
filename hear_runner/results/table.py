"""Readable tables of results for the terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from rich.markup import escape
from rich.table import Table

from hear_runner.results.records import RunRecord

if TYPE_CHECKING:
    from hear_runner.probes.data import ProbeProblem
    from hear_runner.probes.stage import ProbeOutcome


def scores_table(records: list[RunRecord]) -> Table:
    """One row per (model, task), a column per test metric; the primary one is starred."""
    metrics: list[str] = []
    for r in records:
        metrics += [m for m in r.scores["test"] if m not in metrics]
    title = "HEAR results (test split; * primary metric, ± its std over folds)"
    table = Table(title=title, header_style="bold")
    table.add_column("model", no_wrap=True)
    table.add_column("task", no_wrap=True)
    for metric in metrics:
        table.add_column(escape(metric), justify="right")
    seeded = any(len(r.seed_scores) > 1 for r in records)
    if seeded:
        table.add_column("seeds", justify="right")
    table.add_column("embed s", justify="right")
    table.add_column("probe s", justify="right")
    for r in records:
        cells = []
        for metric in metrics:
            value = r.scores["test"].get(metric)
            star = "*" if metric == r.primary_metric else ""
            spread = f"±{r.test_score_std:.3f}" if star and r.test_score_std is not None else ""
            cells.append("—" if value is None else f"{value:.3f}{spread}{star}")
        if seeded:
            cells.append(_seed_spread(r.seed_scores))
        table.add_row(
            escape(r.model.name),
            escape(r.task.name),
            *cells,
            f"{r.timings.get('embed', 0.0):.1f}",
            f"{r.timings.get('probe', 0.0):.1f}",
        )
    return table


def probe_table(rows: list[tuple[ProbeProblem, ProbeOutcome]]) -> Table:
    """`hear probe`: one row per embeddings folder."""
    table = Table(title="Probe results (test split; ± std over folds)", header_style="bold")
    for name in ("folder", "mode", "primary metric", "test", "valid", "seeds", "probe s"):
        table.add_column(name, justify="left" if name in ("folder", "mode") else "right")
    for problem, outcome in rows:
        scores = outcome.mean_scores()
        std = outcome.fold_std()
        table.add_row(
            escape(problem.source.name),
            outcome.label,
            escape(outcome.primary),
            f"{scores['test'][outcome.primary]:.3f}" + (f"±{std:.3f}" if std is not None else ""),
            f"{scores['valid'][outcome.primary]:.3f}",
            _seed_spread(outcome.seed_scores()),
            f"{outcome.seconds:.1f}",
        )
    return table


def _seed_spread(scores: list[float]) -> str:
    """ "n: ±std" of the per-seed primary scores."""
    if len(scores) < 2:
        return str(len(scores))
    return f"{len(scores)}: ±{float(np.std(scores, ddof=1)):.3f}"
