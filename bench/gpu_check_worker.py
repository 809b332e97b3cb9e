"""One probe run for bench/gpu-check, in its own process: the check can stop it at its deadline.

    python bench/gpu_check_worker.py EMBEDDINGS_DIR --mode fast [--grid-points 8]
        [--max-epochs N --patience N]

Prints one JSON line: seconds, device, the primary test score, epochs, peak GPU bytes.
CUDA is used when torch sees it (hear_runner.probes' own choice); the check hides the GPU
(CUDA_VISIBLE_DEVICES="") for its CPU steps. Imports hear_runner from this checkout and
registers the hear_core metrics itself when no installed entry point provides them (the
device machine has the checkout, not an install).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "plugins")]


def register_core_metrics() -> str:
    """The core metrics from entry points when installed, else registered here."""
    import hear_core.metrics

    from hear_runner import plugins

    if plugins.manager().get_plugin("core_metrics") is not None:
        return "entry point"
    plugins.register(hear_core.metrics, "core_metrics")
    return "registered by the check"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("embeddings_dir", type=Path)
    ap.add_argument("--mode", choices=["fast", "faithful", "linear"], default="fast")
    ap.add_argument("--grid-points", type=int, default=8)
    ap.add_argument("--max-epochs", type=int, default=None, help="smoke runs only")
    ap.add_argument("--patience", type=int, default=None, help="smoke runs only")
    args = ap.parse_args()

    import torch

    from hear_runner.probes.heareval_dir import read_embeddings_dir
    from hear_runner.probes.mlp import default_device
    from hear_runner.probes.stage import probe_points, run_probe

    metrics_from = register_core_metrics()
    started = time.perf_counter()
    problem = read_embeddings_dir(args.embeddings_dir)
    overrides = {
        k: v
        for k, v in (("max_epochs", args.max_epochs), ("patience", args.patience))
        if v is not None
    }

    def points(seed: int) -> list:
        tried = probe_points(problem, args.mode, seed, args.grid_points)
        return [c.model_copy(update=overrides) for c in tried] if overrides else tried

    read_seconds = time.perf_counter() - started
    outcome = run_probe(problem, args.mode, [42], args.grid_points, points=points)
    cuda = torch.cuda.is_available()
    first = outcome.folds[0]
    print(
        json.dumps(
            {
                "device": default_device(),
                "device_name": torch.cuda.get_device_name() if cuda else "cpu",
                "torch": torch.__version__,
                "metrics_from": metrics_from,
                "rows": {name: len(split) for name, split in problem.splits.items()},
                "dim": problem.dim,
                "read_seconds": round(read_seconds, 3),
                "probe_seconds": round(outcome.seconds, 3),
                "grid_points": len(outcome.grid),
                "epochs_trained": first.epochs_trained,
                "best_epoch": first.best_epoch,
                "primary": outcome.primary,
                "test_score": outcome.seed_scores()[0],
                "peak_gpu_bytes": int(torch.cuda.max_memory_allocated()) if cuda else None,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
