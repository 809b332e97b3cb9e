"""The fast probe's options: bfloat16 products, the batch order, and the shared prediction path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hear_runner.errors import HearError
from hear_runner.probes.batched import BatchedMLP, _logits, _logits_all
from hear_runner.probes.data import ProbeProblem, Rows
from hear_runner.probes.mlp import MLPConfig, TrainingOptions
from hear_runner.probes.stage import run_probe
from hear_runner.probes.subspace import find_subspace
from tests.test_probe_subspace import DIM, projected
from tests.test_probes import clusters, scene_problem


def clusters_problem() -> ProbeProblem:
    return scene_problem(
        train=clusters("train", 300, seed=1), valid=clusters("valid", 80, seed=2),
        test=clusters("test", 80, seed=3),
    )  # fmt: skip


def test_bfloat16_trains_in_bfloat16_records_it_and_still_learns() -> None:
    problem = clusters_problem()
    runs = {
        p: run_probe(problem, "fast", grid_points=2, options=TrainingOptions(precision=p))  # type: ignore[arg-type]
        for p in ("float32", "bfloat16")
    }
    for precision, outcome in runs.items():
        assert outcome.config["precision"] == precision
        assert {point["precision"] for point in outcome.grid} == {precision}
        assert outcome.mean_scores()["test"]["top1_acc"] > 0.9
    # The same seed and batches: only the products' rounding differs, so the test
    # predictions differ (else bfloat16 was never used), and not by much.
    first, second = (o.predictions[0].scores for o in runs.values())
    assert not np.array_equal(first, second)
    assert np.abs(first - second).mean() < 0.05


def test_bfloat16_rounds_the_products_and_nothing_else() -> None:
    """Logits come back float32, close to float32's, not equal; the weights stay float32."""
    x = torch.from_numpy(clusters("train", 64, dim=DIM).embeddings)
    logits = {}
    for precision in ("float32", "bfloat16"):
        config = MLPConfig(hidden_layers=2, hidden_dim=64, precision=precision)  # type: ignore[arg-type]
        net = BatchedMLP(DIM, 3, [config, config], "cpu", seed=0)
        logits[precision] = net.forward(x, train=False)
        assert all(p.dtype == torch.float32 for p in net.params.values())
    assert logits["bfloat16"].dtype == torch.float32
    assert not torch.equal(logits["float32"], logits["bfloat16"])
    scale = float(logits["float32"].detach().abs().max())
    assert torch.allclose(logits["float32"], logits["bfloat16"], atol=0.05 * scale)


@pytest.mark.parametrize("mode", ["faithful", "linear"])
def test_reduced_precision_is_refused_where_the_probe_has_none(mode: str) -> None:
    options = TrainingOptions(precision="bfloat16")
    with pytest.raises(HearError, match=f"only the fast probe.*the {mode} probe trains in float32"):
        run_probe(clusters_problem(), mode, grid_points=1, options=options)  # type: ignore[arg-type]


def test_shuffled_batches_are_recorded_and_change_the_training() -> None:
    problem = clusters_problem()
    runs = [
        run_probe(problem, "fast", grid_points=1, options=TrainingOptions(shuffle_batches=s))
        for s in (False, True)
    ]
    assert [r.config["shuffle_batches"] for r in runs] == [False, True]
    assert not np.array_equal(runs[0].predictions[0].scores, runs[1].predictions[0].scores)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_the_validation_split_predicted_at_once_equals_chunk_by_chunk(
    precision: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first layer's weights are formed once per check, with the very same result."""
    train, valid = (
        projected("train", 900, rank=40, seed=1),
        projected("valid", 700, rank=40, seed=2),
    )
    subspace = find_subspace(Rows([train]), batch=1024, seed=0)
    assert subspace is not None
    z = subspace.coordinates([valid])
    assert z is not None
    monkeypatch.setattr("hear_runner.probes.data.CHUNK_BYTES", 256 * 4 * DIM)
    assert valid.chunk_rows == 256  # three chunks
    config = MLPConfig(hidden_dim=32, precision=precision)  # type: ignore[arg-type]
    net = BatchedMLP(DIM, 3, [config, config.model_copy(update={"lr": 1e-4})], "cpu", seed=0)
    net.basis = torch.from_numpy(subspace.basis)
    at_once = _logits_all(net, valid, z)
    chunked = np.concatenate(
        [_logits(net, z[i : i + 256], in_basis=True) for i in (0, 256, 512)], axis=1
    )
    assert at_once.shape == (2, 700, 3)
    assert np.array_equal(at_once, chunked)


def test_the_same_seed_gives_the_same_probe_run_after_run() -> None:
    """Dropout masks come from the network's own generator, not one left over by a run before."""
    problem = clusters_problem()
    first, second = (run_probe(problem, "fast", grid_points=2) for _ in range(2))
    assert np.array_equal(first.predictions[0].scores, second.predictions[0].scores)
    assert first.grid == second.grid
