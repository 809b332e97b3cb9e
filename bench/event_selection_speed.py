#!/usr/bin/env python3
"""What one validation check of an event probe costs outside the network: old path vs new.

    python bench/event_selection_speed.py EMBEDDINGS_DIR [--points 8] [--reps 3]

At every check the fast probe scores each grid point's validation predictions under every
post-processing setting and keeps the best (``EventScoring.best``). This times that step
alone, on the valid split of a heareval-layout embeddings folder, two ways, taking turns:

  * reference: ``predict_events`` (per clip, per label, a dict per event) and the metric's
    dict ``score`` (hear_core.event_metrics: an object per event, a matrix per file), per
    grid setting, as the probe did before;
  * fast: ``EventScoring.best`` (hear_runner.event_arrays + the metric's ``score_arrays``).

Predictions are made up, two kinds (the network's own output does not matter here, only
how many events it yields): ``trained`` (targets blurred by noise: few events, mostly
right) and ``untrained`` (noise around the threshold: many short events, as early checks
give). Both paths must choose the same setting with the same score (checked).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np

from hear_runner.events import EventScoring, predict_events
from hear_runner.metrics import get_metric
from hear_runner.probes.heareval_dir import read_embeddings_dir


def reference_best(scoring: EventScoring, metric, scores: np.ndarray):  # type: ignore[no-untyped-def]
    """The selection as it was: events as dicts per setting, the metric's dict score."""
    ranked = []
    for params in scoring.grid:
        events = predict_events(scores, scoring.frames, scoring.labels, **params)
        value = next(iter(metric.score(scoring.reference, events, scoring.labels).values()))
        value = 0.0 if np.isnan(value) else value
        signed = value if metric.higher_is_better else -value
        ranked.append((signed, tuple(sorted(params.items())), params))
    signed, _, params = max(ranked, key=lambda r: r[:2])
    return params, float(signed)


def made_up(kind: str, targets: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noise = rng.normal(0, 0.15, targets.shape)
    base = 0.15 + 0.7 * targets if kind == "trained" else 0.5
    return np.clip(base + noise, 0, 1).astype(np.float32)


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--points", type=int, default=8, help="grid points per check")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    problem = read_embeddings_dir(args.folder)
    valid = problem.splits[problem.folds[0].valid]
    metric = get_metric(problem.metadata.evaluation[0])
    scoring = EventScoring(valid.reference, valid, problem.labels, problem.metadata)
    rng = np.random.default_rng(0)
    rows = []
    for kind in ("trained", "untrained"):
        checks = [made_up(kind, valid.targets, rng) for _ in range(args.points)]
        n_events = int(np.mean([len(scoring.event_arrays(s, scoring.grid[0])) for s in checks]))
        timings: dict[str, list[tuple[float, float]]] = {"reference": [], "fast": []}
        for _ in range(args.reps):
            for path in ("reference", "fast"):
                wall, cpu0 = time.perf_counter(), cpu()
                chosen = [
                    reference_best(scoring, metric, s) if path == "reference"
                    else scoring.best(metric, s)
                    for s in checks
                ]  # fmt: skip
                timings[path].append((time.perf_counter() - wall, cpu() - cpu0))
                if path == "reference":
                    expected = chosen
                elif chosen != expected:
                    raise SystemExit(f"{kind}: the paths chose differently: {chosen} {expected}")
        row = {
            "predictions": kind,
            "events per point (first setting)": n_events,
            **{
                f"{path} {what} s": round(float(np.median([t[i] for t in timings[path]])), 4)
                for path in timings
                for i, what in enumerate(("wall", "CPU"))
            },
        }
        row["speedup (wall)"] = round(row["reference wall s"] / row["fast wall s"], 1)
        rows.append(row)
    print(json.dumps({"valid rows": len(valid), "files": len(valid.files),
                      "grid": scoring.grid, "points per check": args.points, "rows": rows},
                     indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
