"""Readable tables of results for the terminal."""

from __future__ import annotations

from rich.table import Table

from runner.results.records import RunRecord


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
        table.add_column(metric, justify="right")
    table.add_column("embed s", justify="right")
    table.add_column("probe s", justify="right")
    for r in records:
        cells = []
        for metric in metrics:
            value = r.scores["test"].get(metric)
            star = "*" if metric == r.primary_metric else ""
            spread = f"±{r.test_score_std:.3f}" if star and r.test_score_std is not None else ""
            cells.append("—" if value is None else f"{value:.3f}{spread}{star}")
        table.add_row(
            r.model.name,
            r.task.name,
            *cells,
            f"{r.timings.get('embed', 0.0):.1f}",
            f"{r.timings.get('probe', 0.0):.1f}",
        )
    return table
