"""A torch MLP probe with early stopping on the validation split's primary score.

heareval's shape of probe (Linear, BatchNorm1d, Dropout, ReLU per hidden
layer; Adam; batch 1024; validation every few epochs; patience; best
checkpoint), trained on standardized embeddings.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel

PredictionType = Literal["multiclass", "multilabel"]


class MLPConfig(BaseModel):
    hidden_layers: int = 1
    hidden_dim: int = 1024
    dropout: float = 0.1
    lr: float = 1e-3
    batch_size: int = 1024
    max_epochs: int = 500
    check_every: int = 3
    patience: int = 20  # checks without improvement before stopping
    seed: int = 42
    # heareval initializes weights with xavier (gain from the preceding activation) and
    # feeds embeddings as they are; "default" keeps torch's init, standardize rescales inputs.
    initialization: Literal["default", "xavier_uniform", "xavier_normal"] = "default"
    standardize: bool = True


class TrainedProbe:
    """A fitted probe: standardization, network, and how it was selected."""

    def __init__(
        self, net: torch.nn.Module, mean: np.ndarray, std: np.ndarray, kind: PredictionType
    ) -> None:
        self.net = net
        self.mean = mean
        self.std = std
        self.kind = kind
        self.best_epoch = 0
        self.best_valid_score = float("nan")
        self.epochs_trained = 0
        self.seconds = 0.0

    @torch.no_grad()
    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (multiclass) or per-label probabilities (multilabel)."""
        self.net.eval()
        device = next(self.net.parameters()).device
        logits = self.net(torch.from_numpy((x - self.mean) / self.std).to(device))
        probs = logits.softmax(-1) if self.kind == "multiclass" else logits.sigmoid()
        return probs.cpu().numpy()


def _network(n_in: int, n_out: int, config: MLPConfig) -> torch.nn.Module:
    layers: list[torch.nn.Module] = []
    width = n_in
    activation = "linear"  # what precedes each Linear: sets heareval's xavier gain
    for _ in range(config.hidden_layers):
        linear = torch.nn.Linear(width, config.hidden_dim)
        _initialize(linear, config.initialization, activation)
        layers += [
            linear,
            torch.nn.BatchNorm1d(config.hidden_dim),
            torch.nn.Dropout(config.dropout),
            torch.nn.ReLU(),
        ]
        width, activation = config.hidden_dim, "relu"
    projection = torch.nn.Linear(width, n_out)
    _initialize(projection, config.initialization, activation)
    layers.append(projection)
    return torch.nn.Sequential(*layers)


def _initialize(linear: torch.nn.Linear, how: str, activation: str) -> None:
    gain = torch.nn.init.calculate_gain(activation)  # type: ignore[arg-type]
    if how == "xavier_uniform":
        torch.nn.init.xavier_uniform_(linear.weight, gain=gain)
    elif how == "xavier_normal":
        torch.nn.init.xavier_normal_(linear.weight, gain=gain)


def train_mlp(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    kind: PredictionType,
    valid_score: Callable[[np.ndarray, np.ndarray], float],
    config: MLPConfig | None = None,
    device: str | None = None,
) -> TrainedProbe:
    """Train until the validation score stops improving; keep the best checkpoint."""
    config = config or MLPConfig()
    started = time.perf_counter()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    if config.standardize:
        mean = x_train.mean(axis=0, keepdims=True)
        std = x_train.std(axis=0, keepdims=True) + 1e-8
    else:
        mean = np.zeros((1, x_train.shape[1]), np.float32)
        std = np.ones((1, x_train.shape[1]), np.float32)
    net = _network(x_train.shape[1], y_train.shape[1], config).to(device)
    probe = TrainedProbe(net, mean, std, kind)
    xt = torch.from_numpy((x_train - mean) / std).to(device)
    yt = torch.from_numpy(y_train).to(device)
    loss_fn: torch.nn.Module
    if kind == "multiclass":
        loss_fn = torch.nn.CrossEntropyLoss()
        yt = yt.argmax(dim=1)
    else:
        loss_fn = torch.nn.BCEWithLogitsLoss()
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    best_state = copy.deepcopy(net.state_dict())
    best, checks_without_gain = -np.inf, 0
    n = len(xt)
    batch = min(config.batch_size, n)
    for epoch in range(1, config.max_epochs + 1):
        net.train()
        order = torch.randperm(n, generator=generator).to(device)
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            if len(idx) < 2:  # BatchNorm needs two rows
                continue
            optimizer.zero_grad()
            loss = loss_fn(net(xt[idx]), yt[idx])
            loss.backward()
            optimizer.step()
        probe.epochs_trained = epoch
        if epoch % config.check_every:
            continue
        score = valid_score(y_valid, probe.predict(x_valid))
        if score > best:
            best, checks_without_gain = score, 0
            best_state = copy.deepcopy(net.state_dict())
            probe.best_epoch = epoch
        else:
            checks_without_gain += 1
            if checks_without_gain >= config.patience:
                break
    net.load_state_dict(best_state)
    probe.best_valid_score = float(best)
    probe.seconds = time.perf_counter() - started
    return probe


# heareval's names for probe settings, and ours.
_HEAREVAL_KEYS = {
    "hidden_layers": "hidden_layers",
    "hidden_dim": "hidden_dim",
    "dropout": "dropout",
    "lr": "lr",
    "batch_size": "batch_size",
    "max_epochs": "max_epochs",
    "patience": "patience",
    "check_val_every_n_epoch": "check_every",
    "initialization": "initialization",
}
# heareval's built-in per-task overrides (sed_eval is slow on this task's validation).
_TASK_OVERRIDES: dict[str, dict[str, list[Any]]] = {
    "dcase2016_task2": {"check_val_every_n_epoch": [10]}
}


def from_heareval(settings: dict[str, Any]) -> dict[str, Any]:
    """MLPConfig fields from heareval-named settings (a list value gives its first item)."""
    return {
        _HEAREVAL_KEYS[k]: v[0] if isinstance(v, list) else v
        for k, v in settings.items()
        if k in _HEAREVAL_KEYS
    }


def task_overrides(task_name: str, evaluation_params: dict[str, Any]) -> dict[str, list[Any]]:
    """heareval's grid updates for a task: its built-in ones, then ``task_specific_param_grid``."""
    return {
        **_TASK_OVERRIDES.get(task_name, {}),
        **evaluation_params.get("task_specific_param_grid", {}),
    }


def config_for_task(
    base: MLPConfig, task_name: str, evaluation_params: dict[str, Any]
) -> MLPConfig:
    """``base`` with the task's overrides applied, as heareval updates its grid."""
    return base.model_copy(update=from_heareval(task_overrides(task_name, evaluation_params)))
