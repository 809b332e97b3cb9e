#!/usr/bin/env python3
"""The linear probe on a multilabel or event task: one-vs-rest against the joint fit.

    python bench/linear_multilabel.py EMBED_DIR [--json OUT]

Trains `hear probe --mode linear`'s first-fold training (``train_linear``) twice on the
folder, in this order: with scikit-learn's one-vs-rest logistic regressions (what the
probe fitted before: one L-BFGS run per label, each reading the whole training matrix
every step) and with ``JointLogistic`` (every label in one L-BFGS run, the same optimum).
Reports, per fit, the wall seconds of the training (standardizing, fitting and the
validation score), L-BFGS iterations and the validation selection score, and the largest
difference between the two fits' validation probabilities. Compare within one run only.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "plugins")]

from hear_runner.probes import linear, stage  # noqa: E402
from hear_runner.probes.data import Rows  # noqa: E402
from hear_runner.probes.heareval_dir import read_embeddings_dir  # noqa: E402


class OneVsRest:
    """The reference: scikit-learn's one-vs-rest, behind the joint fit's interface."""

    def __init__(self, C: float = 1.0, max_iter: int = 1000) -> None:
        self.model = OneVsRestClassifier(LogisticRegression(C=C, max_iter=max_iter))
        self.n_iter_ = 0

    def fit(self, x: np.ndarray, y: np.ndarray) -> OneVsRest:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence, a label absent from training
            self.model.fit(x, y.astype(np.int64))
        self.n_iter_ = max(int(np.max(getattr(e, "n_iter_", [0]))) for e in self.model.estimators_)
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict_proba(x), np.float32)


def fit(folder: Path, method: str) -> tuple[dict[str, Any], np.ndarray]:
    problem = read_embeddings_dir(folder)
    fold = problem.folds[0]
    train, valid = Rows([problem.splits[s] for s in fold.train]), problem.splits[fold.valid]
    check = stage._selector(problem, valid, stage.get_metric(problem.metadata.evaluation[0]))
    joint = linear.JointLogistic
    linear.JointLogistic = OneVsRest if method == "one-vs-rest" else joint  # type: ignore[misc]
    try:  # predict inside too: the probe tells a multilabel model by its class
        probe = linear.train_linear(train, valid, "multilabel", check, linear.LinearConfig())
        probabilities = np.concatenate([probe.predict(chunk) for chunk in valid.chunks()])
    finally:
        linear.JointLogistic = joint  # type: ignore[misc]
    score = None if math.isnan(probe.best_valid_score) else probe.best_valid_score
    row = {"method": method, "seconds": round(probe.seconds, 2),
           "iterations": probe.epochs_trained, "labels": probe.n_labels,
           "training_rows": len(train), "valid_score": score}  # fmt: skip
    return row, probabilities


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows, probabilities = [], []
    for method in ("one-vs-rest", "joint"):
        row, p = fit(args.folder, method)
        rows.append(row)
        probabilities.append(p)
        print(json.dumps(row), flush=True)
    difference = float(np.abs(probabilities[0] - probabilities[1]).max())
    result = {"folder": str(args.folder), "fits": rows, "max_probability_difference": difference,
              "speed_up": rows[0]["seconds"] / rows[1]["seconds"]}  # fmt: skip
    print("| fit | s | iterations | validation score |\n|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['method']} | {r['seconds']:.1f} | {r['iterations']} | {r['valid_score']} |")
    print(f"speed-up {result['speed_up']:.1f}x; largest probability difference {difference:.2g}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
