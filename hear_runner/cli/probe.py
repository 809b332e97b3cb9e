"""`hear probe` and `hear score`: probes on embeddings made elsewhere, and predictions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hear_runner.cli.choices import probe_mode, training_options
from hear_runner.cli.options import flag
from hear_runner.cli.probe_options import (
    GridPoints,
    PrecisionOption,
    ProbeModeOption,
    Seed,
    Seeds,
    ShuffleBatches,
)
from hear_runner.cli.render import esc, kept, out, progress_bar, say, wrote
from hear_runner.errors import HearError


def probe(
    embeddings_dirs: Annotated[
        list[Path],
        typer.Argument(
            help="Embeddings folders in heareval's layout (<split>.embeddings.npy, "
            "<split>.embedding-dimensions.json, <split>.target-labels.pkl, task_metadata.json, "
            "labelvocabulary.csv; event tasks also <split>.filename-timestamps.json and "
            "<split>.json), or a folder of them."
        ),
    ],
    mode: ProbeModeOption = "fast",
    grid_points: GridPoints = 8,
    seed: Seed = 42,
    seeds: Seeds = 1,
    precision: PrecisionOption = "float32",
    shuffle_batches: ShuffleBatches = False,
    json_output: Annotated[bool, flag("--json", "Print heareval's score files as JSON.")] = False,
) -> None:
    """Train and score probes on precomputed embeddings (heareval's layout).

    Each folder gets heareval's test.predicted-scores.json. Trainings are saved in the
    folder's .probe-progress as they finish, and every 5 minutes on their way: run a
    stopped probe again to resume it.
    """
    from hear_runner.files import check_writable
    from hear_runner.probes.heareval_dir import (
        is_embeddings_dir,
        predicted_scores,
        read_embeddings_dir,
        write_predicted_scores,
    )
    from hear_runner.probes.resume import PROGRESS_FOLDER, resumed_line
    from hear_runner.probes.stage import run_probe, trainings
    from hear_runner.results.table import probe_table

    chosen = probe_mode(mode)
    options = training_options(chosen, precision, shuffle_batches)
    folders = []
    for path in embeddings_dirs:
        found = (
            [path]
            if is_embeddings_dir(path)
            else sorted(p for p in path.glob("*") if is_embeddings_dir(p))
        )
        if not found:
            raise HearError(
                f"{path}: not an embeddings folder (no task_metadata.json and "
                "<split>.embedding-dimensions.json), nor a folder of them"
            )
        folders += found
    for folder in folders:  # each gets heareval's score file: known before any training
        check_writable(folder, "embeddings folder")
    rows = []
    for folder in folders:
        problem = read_embeddings_dir(folder)
        seed_list = list(range(seed, seed + seeds))
        total = trainings(problem, chosen, seed_list, grid_points, options)
        saved = folder / PROGRESS_FOLDER
        bar = progress_bar(f"{folder.name} · {chosen} probe", total)
        with bar as shown, kept(saved):
            outcome = run_probe(
                problem, chosen, seed_list, grid_points, shown.trained, options=options,
                progress_dir=saved, on_loaded=shown.loaded,
                on_epoch=lambda epoch: shown.note(epoch.line()),
            )  # fmt: skip
        line = resumed_line(outcome.resumed, outcome.continued, total, str(saved))
        if line:
            say(line)
        wrote(write_predicted_scores(problem, outcome))
        rows.append((problem, outcome))
    if json_output:
        out.print_json(json.dumps({str(p.source): predicted_scores(p, o) for p, o in rows}))
    else:
        out.print(probe_table(rows))


def score(
    task_dir: Annotated[Path, typer.Argument(help="A task folder (hear-preprocess layout).")],
    split: Annotated[str, typer.Argument(help="The split the predictions are for, e.g. test.")],
    predictions: Annotated[
        Path,
        typer.Argument(
            help="JSON: scene {file: {label: score}}; event {file: [{label, start, end}]} (ms)."
        ),
    ],
    json_output: Annotated[
        bool, flag("--json", "Print {metric: value} ({metric: {sub: value}} for events).")
    ] = False,
) -> None:
    """Score predictions made elsewhere with the task's own metrics.

    The metrics are heareval's definitions.
    """
    from hear_runner.score import score_predictions
    from hear_runner.tasks.folder import Task

    task = Task(task_dir)
    values = score_predictions(task, split, predictions)
    if json_output:
        out.print_json(json.dumps(values))
        return
    table = Table(title=f"{esc(task.name)} · {esc(split)}", header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in values.items():
        if isinstance(value, dict):
            table.add_row(esc(name), esc(", ".join(f"{k} {v:.4f}" for k, v in value.items())))
        else:
            table.add_row(esc(name), f"{value:.4f}")
    out.print(table)
