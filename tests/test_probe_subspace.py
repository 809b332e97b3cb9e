"""The fast probe's first layer through the training rows' span (hear_runner/probes/subspace.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hear_runner.probes.batched import BatchedMLP, _batched_loss
from hear_runner.probes.data import ProbeSplit, Rows
from hear_runner.probes.mlp import MLPConfig
from hear_runner.probes.stage import run_probe
from hear_runner.probes.subspace import find_subspace, worthwhile_rank
from tests.test_probes import scene_problem

DIM = 512


def projected(name: str, rows: int, rank: int, seed: int, classes: int = 3) -> ProbeSplit:
    """Rows as a model like hearbaseline's naive one makes them: a fixed projection of fewer numbers."""
    rng = np.random.default_rng(seed)
    projection = np.random.default_rng(7).normal(size=(rank, DIM))
    centres = np.random.default_rng(99).normal(size=(classes, rank)) * 2
    y = rng.integers(0, classes, rows)
    x = ((centres[y] + rng.normal(size=(rows, rank))) @ projection).astype(np.float32)
    return ProbeSplit(name, x, np.eye(classes, dtype=np.float32)[y])


def test_the_span_of_projected_rows_is_found_and_holds_every_row() -> None:
    train = projected("train", 900, rank=40, seed=1)
    subspace = find_subspace(Rows([train]), batch=1024, seed=0)
    assert subspace is not None and subspace.rank == 40
    assert np.allclose(subspace.basis.T @ subspace.basis, np.eye(40), atol=1e-5)
    z = subspace.coordinates([train])
    assert z is not None and z.shape == (900, 40)
    assert np.allclose(z @ subspace.basis.T, train.embeddings, rtol=0, atol=1e-4 * 40)


def test_rows_of_full_rank_or_too_few_get_no_basis() -> None:
    rng = np.random.default_rng(0)
    full = ProbeSplit("train", rng.normal(size=(900, DIM)).astype(np.float32), np.eye(3)[[0] * 900])
    assert find_subspace(Rows([full]), batch=1024, seed=0) is None
    # A span wider than pays (r (B + D) > B D / 2) is not used either.
    wide = projected("train", 900, rank=worthwhile_rank(DIM, 1024) + 5, seed=1)
    assert find_subspace(Rows([wide]), batch=1024, seed=0) is None


def test_a_row_outside_the_span_refuses_the_basis_for_its_split() -> None:
    train = projected("train", 900, rank=40, seed=1)
    subspace = find_subspace(Rows([train]), batch=1024, seed=0)
    assert subspace is not None
    valid = projected("valid", 100, rank=40, seed=2)
    assert subspace.coordinates([valid]) is not None
    valid.embeddings[17] += np.random.default_rng(3).normal(size=DIM).astype(np.float32)
    assert subspace.coordinates([valid]) is None


def test_a_basis_grows_by_the_rare_directions_of_the_rows_outside_it() -> None:
    from hear_runner.probes.batched import _span

    clean = projected("train", 900, rank=40, seed=1)
    subspace = find_subspace(Rows([clean]), batch=1024, seed=0)
    assert subspace is not None and subspace.rank == 40
    train = projected("train", 900, rank=40, seed=1)
    rare = np.random.default_rng(5).normal(size=(2, DIM)).astype(np.float32)
    for row, direction in ((3, 0), (500, 1), (801, 1)):  # two directions, in three rows
        train.embeddings[row] += 0.01 * direction_norm(train, row) * rare[direction]
    assert subspace.coordinates([train]) is None
    grown = subspace.grown([train], limit=worthwhile_rank(DIM, 1024))
    assert grown is not None and grown.rank == 42
    assert np.allclose(grown.basis.T @ grown.basis, np.eye(42), atol=1e-5)
    z = grown.coordinates([train])
    assert z is not None and np.allclose(z @ grown.basis.T, train.embeddings, atol=1e-3)
    span = _span(Rows([train]), clean, 1024, seed=0)  # the fast probe's search grows it too
    assert span is not None and span.basis.shape[1] >= 42
    noise = np.random.default_rng(6).normal(size=(300, DIM)).astype(np.float32)
    train.embeddings[:300] += noise  # more rows outside than the basis may grow by
    assert subspace.grown([train], limit=worthwhile_rank(DIM, 1024)) is None


def direction_norm(split: ProbeSplit, row: int) -> float:
    return float(np.linalg.norm(split.embeddings[row]) / np.sqrt(DIM))


@pytest.mark.parametrize("layers", [1, 2])
def test_the_first_layer_through_the_basis_gives_the_same_outputs_and_gradients(
    layers: int,
) -> None:
    split = projected("train", 300, rank=40, seed=1)
    subspace = find_subspace(Rows([split]), batch=1024, seed=0)
    assert subspace is not None
    z = subspace.coordinates([split])
    assert z is not None
    configs = [
        MLPConfig(hidden_layers=layers, hidden_dim=64, dropout=0.0, lr=lr) for lr in (1e-3, 1e-4)
    ]
    results = []
    for in_basis in (False, True):
        net = BatchedMLP(DIM, 3, configs, "cpu", seed=0)
        net.basis = torch.from_numpy(subspace.basis)
        x = torch.from_numpy(z if in_basis else split.embeddings)
        logits = net.forward(x, train=True, in_basis=in_basis)
        _batched_loss("multiclass")(logits, torch.from_numpy(split.targets)).backward()
        grad = net.params["w0"].grad
        assert grad is not None
        results.append((logits.detach(), grad.clone()))
    (direct, direct_grad), (through, through_grad) = results
    assert torch.allclose(direct, through, atol=1e-4)
    scale = direct_grad.abs().max()
    assert scale > 0
    assert torch.allclose(direct_grad, through_grad, atol=1e-4 * float(scale))


def test_fast_mode_uses_the_span_says_so_and_learns() -> None:
    problem = scene_problem(
        train=projected("train", 1500, rank=40, seed=1), valid=projected("valid", 200, rank=40, seed=2),
        test=projected("test", 200, rank=40, seed=3),
    )  # fmt: skip
    fast = run_probe(problem, "fast", grid_points=2)
    assert fast.folds[0].details["input_basis_rank"] == 40
    assert fast.mean_scores()["test"]["top1_acc"] > 0.9
    faithful = run_probe(problem, "faithful", grid_points=2)
    assert "input_basis_rank" not in faithful.folds[0].details
    assert (
        abs(fast.mean_scores()["test"]["top1_acc"] - faithful.mean_scores()["test"]["top1_acc"])
        <= 0.05
    )
