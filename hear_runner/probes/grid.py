"""heareval's downstream grid, for the faithful probe mode.

heareval 2021.1.3 builds sklearn's ParameterGrid over its PARAM_GRID (keys sorted, the
last key varying fastest), applies the task's overrides, shuffles it with Python's
``random`` seeded 42 and trains the first 8 points on the first split only; the best on
validation is then retrained on the other folds.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

from hear_runner.probes.mlp import MLPConfig, from_heareval, task_overrides

# The grid's multi-valued keys in heareval's names (its single-valued ones are MLPConfig's
# defaults: hidden_dim 1024, dropout 0.1, batch 1024, 500 epochs, checks every 3, patience 20).
HEAREVAL_GRID: dict[str, list[Any]] = {
    "batch_size": [1024],
    "check_val_every_n_epoch": [3],
    "dropout": [0.1],
    "hidden_dim": [1024],
    "hidden_layers": [1, 2],
    "initialization": ["xavier_uniform", "xavier_normal"],
    "lr": [3.2e-3, 1e-3, 3.2e-4, 1e-4],
    "max_epochs": [500],
    "patience": [20],
}
GRID_POINTS = 8
SHUFFLE_SEED = 42


def heareval_grid(
    task_name: str, evaluation_params: dict[str, Any], seed: int = 42, points: int = GRID_POINTS
) -> list[MLPConfig]:
    """The grid points heareval trains for this task, in its order."""
    grid = {**HEAREVAL_GRID, **task_overrides(task_name, evaluation_params)}
    keys = sorted(grid)
    confs = [
        dict(zip(keys, values, strict=True))
        for values in itertools.product(*(grid[k] for k in keys))
    ]
    random.Random(SHUFFLE_SEED).shuffle(confs)
    return [MLPConfig(seed=seed, **from_heareval(c)) for c in confs[:points]]
