"""`hear compare A B`: is one model's score really higher than the other's, task by task?

For each task both models have a record of (the newest, read by hear_runner.results.reader
as the leaderboard reads it), both
records' test predictions are scored on the same bootstrap draws of the test clips
(hear_runner.results.stats.paired_bootstrap): the difference A - B of the primary score, its
95% percentile interval, and a two-sided p-value. Below 0.05 the better model is named;
otherwise the task is a tie. Clips are matched by file name; different test files are
an error naming the task.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from hear_runner.errors import HearError
from hear_runner.metrics import get_metric
from hear_runner.results.leaderboard import column_name
from hear_runner.results.reader import FoundRecord, read_results
from hear_runner.results.stats import ALPHA, DEFAULT_SEED, paired_bootstrap

TIE = f"tie (not significant at {ALPHA:g})"
UNDETERMINED = "undetermined (a score is not finite)"


@dataclass
class TaskComparison:
    task: str  # the task folder
    column: str  # its leaderboard name
    metric: str
    higher_is_better: bool
    score_a: float
    score_b: float
    difference: float  # A - B
    ci_low: float | None
    ci_high: float | None
    p_value: float
    verdict: str  # "A better" | "B better" | TIE | UNDETERMINED
    better: str | None  # the better model's name
    resamples: int
    seed: int
    seconds: float


def compare_models(
    results_dir: Path,
    a: str,
    b: str,
    resamples: int | None = None,
    seed: int = DEFAULT_SEED,
    alpha: float = ALPHA,
) -> tuple[list[TaskComparison], list[str]]:
    """A paired comparison per task both models have; notes on the records used."""
    results = read_results(results_dir)
    latest, notes, models = results.latest, list(results.notes), results.models()
    for name in (a, b):
        if name not in models:
            raise HearError(
                f"no records of model {name!r} in {results_dir} (models: {', '.join(models)})"
            )
    tasks_a, tasks_b = results.tasks_of(a), results.tasks_of(b)
    shared = sorted(tasks_a & tasks_b)
    if not shared:
        raise HearError(
            f"{a} and {b} have no task in common in {results_dir} "
            f"({a}: {', '.join(sorted(tasks_a))}; {b}: {', '.join(sorted(tasks_b))})"
        )
    for model, only in ((a, tasks_a - tasks_b), (b, tasks_b - tasks_a)):
        if only:
            notes.append(f"only {model} has {', '.join(sorted(only))}: not compared")
    rows = [
        _compare_task(task, latest[(a, task)], latest[(b, task)], resamples, seed, alpha)
        for task in shared
    ]
    return rows, notes


def _compare_task(
    task: str,
    found_a: FoundRecord,
    found_b: FoundRecord,
    resamples: int | None,
    seed: int,
    alpha: float,
) -> TaskComparison:
    record_a, record_b = found_a.record, found_b.record
    if record_a.primary_metric != record_b.primary_metric:
        raise HearError(
            f"{task}: the records' primary metrics differ ({record_a.primary_metric} in "
            f"{found_a.path}, {record_b.primary_metric} in {found_b.path})"
        )
    labels_a, folds_a = found_a.predictions()
    labels_b, folds_b = found_b.predictions()
    if labels_a != labels_b:
        raise HearError(
            f"{task}: the records' label vocabularies differ ({found_a.path}, {found_b.path})"
        )
    metric = get_metric(record_a.primary_metric)
    try:
        paired = paired_bootstrap(labels_a, folds_a, folds_b, metric, resamples, seed, what=task)
    except ValueError as e:
        raise HearError(str(e)) from None
    verdict, better = TIE, None
    if not math.isfinite(paired.difference) or paired.low is None:
        verdict = UNDETERMINED
    elif paired.p_value < alpha and paired.difference != 0:
        a_wins = (paired.difference > 0) == metric.higher_is_better
        verdict = "A better" if a_wins else "B better"
        better = record_a.model.name if a_wins else record_b.model.name
    return TaskComparison(
        task=task,
        column=column_name(task),
        metric=metric.name,
        higher_is_better=metric.higher_is_better,
        score_a=paired.score_a,
        score_b=paired.score_b,
        difference=paired.difference,
        ci_low=paired.low,
        ci_high=paired.high,
        p_value=paired.p_value,
        verdict=verdict,
        better=better,
        resamples=paired.resamples,
        seed=paired.seed,
        seconds=round(paired.seconds, 3),
    )


def to_json(a: str, b: str, rows: list[TaskComparison], notes: list[str]) -> dict[str, Any]:
    """Plain JSON: a score that is not finite is null."""
    tasks = [
        {
            k: None if isinstance(v, float) and not math.isfinite(v) else v
            for k, v in asdict(r).items()
        }
        for r in rows
    ]
    return {"a": a, "b": b, "alpha": ALPHA, "tasks": tasks, "notes": notes}


def to_table(a: str, b: str, rows: list[TaskComparison]) -> Table:
    table = Table(
        title=f"A = {escape(a)}, B = {escape(b)}: paired bootstrap over the same test clips",
        caption="difference A - B of the primary test score, its 95% interval and two-sided "
        f"p-value; a tie where p >= {ALPHA:g}",
        header_style="bold",
    )
    for name in ("task", "metric", "A", "B", "A - B", "95% interval", "p", "verdict"):
        table.add_column(name, justify="left" if name in ("task", "metric", "verdict") else "right")
    for r in rows:
        interval = (
            "—" if r.ci_low is None or r.ci_high is None else f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}]"
        )
        verdict = r.verdict if r.better is None else f"{r.verdict} ({r.better})"
        table.add_row(
            escape(r.column),
            escape(r.metric) + ("" if r.higher_is_better else " (lower is better)"),
            f"{r.score_a:.3f}", f"{r.score_b:.3f}", _signed(r.difference), interval,
            f"{r.p_value:.3g}", verdict,
        )  # fmt: skip
    return table


def _signed(value: float) -> str:
    return f"{value:+.3f}" if math.isfinite(value) else str(value)
