"""The linear probe: scikit-learn logistic regression on standardized embeddings, for a quick look.

Multiclass tasks fit one multinomial model; multilabel and event tasks one binary
model per label. scikit-learn needs the training rows as one matrix: that
standardized float32 matrix is the probe's one copy of them (the splits themselves
stay memory-mapped where they come from disk).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from pydantic import BaseModel
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

from hear_runner.probes.data import ProbeSplit, Rows
from hear_runner.probes.mlp import PredictionType, Probe, Selector, logits_split


class LinearConfig(BaseModel):
    C: float = 1.0  # inverse regularization strength
    max_iter: int = 1000
    seed: int = 42


class LinearProbe(Probe):
    def __init__(
        self,
        model: LogisticRegression | OneVsRestClassifier,
        mean: np.ndarray,
        std: np.ndarray,
        kind: PredictionType,
        n_labels: int,
    ) -> None:
        super().__init__(kind)
        self.model = model
        self.mean = mean
        self.std = std
        self.n_labels = n_labels

    def logits(self, x: np.ndarray) -> np.ndarray:
        return self.outputs(x)[0]

    def outputs(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Log-probabilities as logits (a probability of 0 or 1 taken as 1e-7 from it)."""
        probabilities = self.predict(x)
        return self._logits(probabilities), probabilities

    def _logits(self, probabilities: np.ndarray) -> np.ndarray:
        p = np.clip(probabilities, 1e-7, 1 - 1e-7)
        if self.kind == "multilabel":
            return np.asarray(np.log(p) - np.log1p(-p), np.float32)
        return np.asarray(np.log(p), np.float32)

    def predict(self, x: np.ndarray) -> np.ndarray:
        probs = self.model.predict_proba((x - self.mean) / self.std)
        if self.kind == "multilabel":
            return np.asarray(probs, np.float32)
        full = np.zeros((len(x), self.n_labels), np.float32)  # classes unseen in training: 0
        full[:, self.model.classes_] = probs
        return full


def train_linear(
    train: Rows, valid: ProbeSplit, kind: PredictionType, select: Selector, config: LinearConfig
) -> LinearProbe:
    started = time.perf_counter()
    mean, std = _moments(train)
    x = np.empty((len(train), mean.shape[1]), np.float32)
    row = 0
    for part in train.parts:
        for chunk in part.chunks():
            x[row : row + len(chunk)] = (chunk - mean) / std
            row += len(chunk)
    y = train.targets()
    base = LogisticRegression(C=config.C, max_iter=config.max_iter, random_state=config.seed)
    model: LogisticRegression | OneVsRestClassifier
    if kind == "multiclass":
        model = base
        target = y.argmax(axis=1)
    else:
        model = OneVsRestClassifier(base)
        target = y.astype(np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)  # a label absent from training
        model.fit(x, target)
    del x
    probe = LinearProbe(model, mean, std, kind, y.shape[1])
    probe.best_valid_score = select(valid.targets, logits_split(probe, valid))
    probe.epochs_trained = int(np.max(getattr(model, "n_iter_", [0])))
    probe.seconds = time.perf_counter() - started
    return probe


def _moments(rows: Rows) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation over every row, a chunk at a time."""
    total = sumsq = None
    for part in rows.parts:
        for chunk in part.chunks():
            c = chunk.astype(np.float64)
            total = c.sum(axis=0) if total is None else total + c.sum(axis=0)
            sumsq = (c * c).sum(axis=0) if sumsq is None else sumsq + (c * c).sum(axis=0)
    assert total is not None and sumsq is not None
    n = len(rows)
    mean = total / n
    std = np.sqrt(np.maximum(sumsq / n - mean * mean, 0.0)) + 1e-8
    return mean[None, :].astype(np.float32), std[None, :].astype(np.float32)
