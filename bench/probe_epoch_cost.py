#!/usr/bin/env python3
"""What one training epoch of the fast probe costs on an embeddings folder, and its floor.

    python bench/probe_epoch_cost.py EMBED_DIR [--epochs 3,18] [--precisions float32]
        [--json OUT]

For one grid point of each depth (heareval's shape: 1024 wide, batch 1024), in float32
and in bfloat16, trains ``train_batched`` for the two epoch counts with validation checks
every 3 epochs (a NaN check does not stop it here, so both counts are trained) and reports
the difference over the epochs between: an epoch's cost without start-up. Then times, in
isolation, the matrix products a step of the 1-layer point makes through the training
rows' span (``probes/subspace.py``) and a square 1024 product, in GFLOP/s: how close the
step is to what the CPU's float32 arithmetic allows. Compare figures within one run only.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "plugins")]

from hear_runner.probes import stage  # noqa: E402
from hear_runner.probes.batched import train_batched  # noqa: E402
from hear_runner.probes.data import Rows  # noqa: E402
from hear_runner.probes.heareval_dir import read_embeddings_dir  # noqa: E402
from hear_runner.probes.mlp import MLPConfig  # noqa: E402
from hear_runner.probes.subspace import find_subspace  # noqa: E402


def epoch_seconds(folder: Path, layers: int, precision: str, epochs: tuple[int, int]) -> float:
    problem = read_embeddings_dir(folder)
    fold = problem.folds[0]
    train, valid = Rows([problem.splits[s] for s in fold.train]), problem.splits[fold.valid]
    kind = "multilabel" if problem.event else problem.metadata.prediction_type
    primary = stage.get_metric(problem.metadata.evaluation[0])
    check = stage._selector(problem, valid, primary)

    def select(targets, predictions):  # NaN (no event) counts as 0: every epoch is trained
        score = check(targets, predictions)
        return 0.0 if math.isnan(score) else score

    took = []
    for n in epochs:
        config = MLPConfig(hidden_layers=layers, max_epochs=n, patience=10**6,
                           precision=precision)  # fmt: skip
        started = time.perf_counter()
        train_batched(train, valid, kind, select, [config], "cpu")
        took.append(time.perf_counter() - started)
    return (took[1] - took[0]) / (epochs[1] - epochs[0])


def gflops(fn, flop: float, reps: int = 20) -> float:
    for _ in range(3):
        fn()
    started = time.perf_counter()
    for _ in range(reps):
        fn()
    return flop * reps / (time.perf_counter() - started) / 1e9


def products(folder: Path) -> dict[str, float]:
    problem = read_embeddings_dir(folder)
    train = Rows([problem.splits[s] for s in problem.folds[0].train])
    dim, hidden, batch = problem.splits[problem.folds[0].valid].embeddings.shape[1], 1024, 1024
    subspace = find_subspace(train, batch, 42)
    rank = subspace.rank if subspace else dim
    g = torch.Generator().manual_seed(0)
    basis, w = torch.randn(dim, rank, generator=g), torch.randn(dim, hidden, generator=g)
    coords, grad = torch.randn(batch, rank, generator=g), torch.randn(batch, hidden, generator=g)
    small, square = torch.randn(rank, hidden, generator=g), torch.randn(hidden, hidden, generator=g)
    return {
        "rank": rank,
        "basisT_W_gflops": gflops(lambda: basis.T @ w, 2 * rank * dim * hidden),
        "basis_G_gflops": gflops(lambda: basis @ small, 2 * rank * dim * hidden),
        "coordsT_dH_gflops": gflops(lambda: coords.T @ grad, 2 * rank * batch * hidden),
        "square_1024_gflops": gflops(lambda: square @ square, 2 * hidden**3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--epochs", default="3,18", help="two epoch counts, comma-separated")
    ap.add_argument(
        "--precisions",
        default="float32,bfloat16",
        help="comma-separated: float32 alone halves the time on a large folder",
    )
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    low, high = (int(e) for e in args.epochs.split(","))
    rows = [
        {"layers": layers, "precision": precision,
         "epoch_s": epoch_seconds(args.folder, layers, precision, (low, high))}
        for layers in (1, 2) for precision in args.precisions.split(",")
    ]  # fmt: skip
    result = {"folder": str(args.folder), "threads": torch.get_num_threads(), "epochs": rows,
              "products": products(args.folder)}  # fmt: skip
    print("| point | precision | s per epoch |\n|---|---|---:|")
    for r in rows:
        print(f"| {r['layers']} hidden layer(s) | {r['precision']} | {r['epoch_s']:.3f} |")
    print("\n| product (float32) | GFLOP/s |\n|---|---:|")
    for name, value in result["products"].items():
        print(f"| {name} | {value:.0f} |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
