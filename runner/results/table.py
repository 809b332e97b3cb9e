"""Readable tables of results for the terminal."""

from __future__ import annotations

from rich.table import Table

from runner.results.records import RunRecord


def scores_table(records: list[RunRecord]) -> Table:
    """One row per (model, task): the primary test score first, then every test metric."""
    table = Table(title="HEAR results (test split)", header_style="bold")
    for column in (
        "model",
        "task",
        "primary",
        "test score",
        "other test metrics",
        "embed s",
        "probe s",
    ):
        justify = "right" if column in ("test score", "embed s", "probe s") else "left"
        table.add_column(column, justify=justify)
    for r in records:
        others = ", ".join(
            f"{name} {value:.3f}"
            for name, value in r.scores["test"].items()
            if name != r.primary_metric
        )
        table.add_row(
            r.model.name,
            r.task.name,
            r.primary_metric,
            f"{r.test_score:.3f}",
            others,
            f"{r.timings.get('embed', 0.0):.1f}",
            f"{r.timings.get('probe', 0.0):.1f}",
        )
    return table
