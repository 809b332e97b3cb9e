"""The faithful probe mode trains heareval's grid points, in heareval's order."""

from __future__ import annotations

import random

import numpy as np
import torch
from sklearn.model_selection import ParameterGrid

from hear_runner.probes.grid import heareval_grid
from hear_runner.probes.mlp import MLPConfig, _network


def heareval_order(overrides: dict | None = None) -> list[tuple]:
    """heareval 2021.1.3's recipe with its own PARAM_GRID (class values named as strings)."""
    grid = {
        "hidden_layers": [1, 2], "hidden_dim": [1024], "dropout": [0.1],
        "lr": [3.2e-3, 1e-3, 3.2e-4, 1e-4], "patience": [20], "max_epochs": [500],
        "check_val_every_n_epoch": [3], "batch_size": [1024], "hidden_norm": ["BatchNorm1d"],
        "norm_after_activation": [False], "embedding_norm": ["Identity"],
        "initialization": ["xavier_uniform", "xavier_normal"], "optim": ["Adam"],
    }  # fmt: skip
    grid.update(overrides or {})
    confs = list(ParameterGrid(grid))
    random.seed(42)  # what seed_everything(42) does to Python's random
    random.shuffle(confs)
    return [
        (c["hidden_layers"], c["initialization"], c["lr"], c["check_val_every_n_epoch"])
        for c in confs[:8]
    ]


def ours(task: str = "t", params: dict | None = None) -> list[tuple]:
    return [
        (c.hidden_layers, c.initialization, c.lr, c.check_every)
        for c in heareval_grid(task, params or {})
    ]


def test_first_eight_points_in_heareval_order() -> None:
    assert ours() == heareval_order()


def test_task_overrides_change_the_grid_as_in_heareval() -> None:
    assert ours("dcase2016_task2") == heareval_order({"check_val_every_n_epoch": [10]})
    params = {"task_specific_param_grid": {"lr": [1e-2, 1e-3]}}
    assert ours("t", params) == heareval_order({"lr": [1e-2, 1e-3]})


def test_xavier_gains_follow_the_preceding_activation() -> None:
    torch.manual_seed(0)
    net = _network(4096, 10, MLPConfig(hidden_layers=2, initialization="xavier_normal"))
    first, second, projection = (m for m in net if isinstance(m, torch.nn.Linear))
    # xavier normal std = gain * sqrt(2 / (fan_in + fan_out)); gain 1 after the input, sqrt(2) after ReLU
    assert abs(float(first.weight.detach().std()) - np.sqrt(2 / (4096 + 1024))) < 2e-4
    assert abs(float(second.weight.detach().std()) - np.sqrt(2) * np.sqrt(2 / 2048)) < 1e-3
    assert abs(float(projection.weight.detach().std()) - np.sqrt(2) * np.sqrt(2 / 1034)) < 3e-3
