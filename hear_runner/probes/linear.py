"""The linear probe: scikit-learn logistic regression on standardized embeddings, for a quick look.

Multiclass tasks fit one multinomial model; multilabel and event tasks one binary
model per label, all labels fitted as one problem (:class:`JointLogistic`). The fit
needs the training rows as one matrix: that standardized float32 matrix is the probe's
one copy of them (the splits themselves stay memory-mapped where they come from disk).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from pydantic import BaseModel
from scipy import optimize
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from hear_runner.probes.data import ProbeSplit, Rows
from hear_runner.probes.mlp import PredictionType, Probe, Selector, logits_split


class LinearConfig(BaseModel):
    C: float = 1.0  # inverse regularization strength
    max_iter: int = 1000
    seed: int = 42


#: scikit-learn's LogisticRegression defaults, which the joint fit keeps.
TOL = 1e-4


class JointLogistic:
    """One L2-regularized logistic regression per label, fitted together.

    The objective is scikit-learn's for each label (mean log-loss over the rows plus
    ||w||^2 / (2 C n), intercept not penalized), summed over labels. The sum is separable,
    so its minimum is one-vs-rest's, label by label; L-BFGS stops when every label's
    gradient is under ``tol``, as scikit-learn's does per label. What changes is the cost:
    one-vs-rest reads the whole training matrix once per label and step (MAESTRO at its
    released size: 87 labels over 4.4 GB, over an hour for one fold's first label set),
    the joint fit once per step for all labels (two matrix products).
    """

    def __init__(self, C: float = 1.0, max_iter: int = 1000, tol: float = TOL) -> None:
        self.C, self.max_iter, self.tol = C, max_iter, tol
        self.coef_ = np.zeros((0, 0), np.float32)  # (dim, labels)
        self.intercept_ = np.zeros(0, np.float32)
        self.n_iter_ = 0

    def fit(self, x: np.ndarray, y: np.ndarray) -> JointLogistic:
        n, dim = x.shape
        labels = y.shape[1]
        target = y.astype(np.float32)
        strength = 1.0 / (self.C * n)

        def value_and_gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
            w = theta[: dim * labels].reshape(dim, labels).astype(np.float32)
            b = theta[dim * labels :].astype(np.float32)
            z = x @ w + b
            loss = float(np.sum(np.logaddexp(0.0, z) - target * z, dtype=np.float64)) / n
            residual = (expit(z) - target) / n
            grad_w = (x.T @ residual).astype(np.float64) + strength * w
            grad_b = residual.sum(axis=0, dtype=np.float64)
            value = loss + 0.5 * strength * float(np.sum(w.astype(np.float64) ** 2))
            return value, np.concatenate([grad_w.ravel(), grad_b])

        result = optimize.minimize(
            value_and_gradient, np.zeros(dim * labels + labels), method="L-BFGS-B", jac=True,
            options={"maxiter": self.max_iter, "maxls": 50, "gtol": self.tol,
                     "ftol": 64 * np.finfo(float).eps},
        )  # fmt: skip
        self.coef_ = result.x[: dim * labels].reshape(dim, labels).astype(np.float32)
        self.intercept_ = result.x[dim * labels :].astype(np.float32)
        self.n_iter_ = int(result.nit)
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(expit(x @ self.coef_ + self.intercept_), np.float32)


class LinearProbe(Probe):
    def __init__(
        self,
        model: LogisticRegression | JointLogistic,
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
        if isinstance(self.model, JointLogistic):  # multilabel: a column per label
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
    model: LogisticRegression | JointLogistic
    if kind == "multiclass":
        model = LogisticRegression(C=config.C, max_iter=config.max_iter, random_state=config.seed)
        target = y.argmax(axis=1)
    else:
        model = JointLogistic(C=config.C, max_iter=config.max_iter)
        target = y
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
