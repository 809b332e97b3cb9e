"""The probe stage: batched training, data handling, modes and seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hear_runner.errors import HearError
from hear_runner.metrics import get_metric
from hear_runner.probes.batched import BatchedMLP, _adam, _batched_loss, train_batched
from hear_runner.probes.data import ProbeProblem, ProbeSplit, Rows
from hear_runner.probes.linear import LinearConfig, train_linear
from hear_runner.probes.mlp import MLPConfig, TrainedProbe, _network, epoch_batches, train_mlp
from hear_runner.probes.stage import _score_fold, run_probe
from hear_runner.tasks.folder import Fold
from hear_runner.tasks.metadata import TaskMetadata


def clusters(name: str, rows: int, dim: int = 16, classes: int = 3, seed: int = 0) -> ProbeSplit:
    """Rows around one centre per class: a problem any working probe learns."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(size=(classes, dim)) * 2
    y = rng.integers(0, classes, rows)
    x = (centres[y] + rng.normal(size=(rows, dim))).astype(np.float32)
    return ProbeSplit(name, x, np.eye(classes, dtype=np.float32)[y])


def scene_problem(**splits: ProbeSplit) -> ProbeProblem:
    metadata = TaskMetadata(
        task_name="clusters", version="1", embedding_type="scene",
        prediction_type="multiclass", split_mode="trainvaltest", evaluation=["top1_acc"],
    )  # fmt: skip
    labels = [str(i) for i in range(next(iter(splits.values())).targets.shape[1])]
    folds = [Fold("test", ("train",), "valid", "test")]
    return ProbeProblem(Path("clusters"), metadata, labels, folds, dict(splits))


def torch_network(state: dict[str, torch.Tensor], layers: int) -> torch.nn.Sequential:
    """heareval's module stack holding one batched point's weights."""
    modules: list[torch.nn.Module] = []
    for layer in range(layers):
        w = state[f"w{layer}"].squeeze(1 if layer == 0 else 0)
        linear = torch.nn.Linear(*w.shape)
        linear.weight.data = w.T.clone()
        linear.bias.data = state[f"b{layer}"][0].clone()
        norm = torch.nn.BatchNorm1d(w.shape[1])
        norm.weight.data = state[f"gamma{layer}"][0].clone()
        norm.bias.data = state[f"beta{layer}"][0].clone()
        modules += [linear, norm, torch.nn.Dropout(0.0), torch.nn.ReLU()]
    w = state[f"w{layers}"][0]
    projection = torch.nn.Linear(*w.shape)
    projection.weight.data = w.T.clone()
    projection.bias.data = state[f"b{layers}"][0].clone()
    return torch.nn.Sequential(*modules, projection)


@pytest.mark.parametrize("layers", [1, 2])
def test_batched_points_train_exactly_as_separate_networks(layers: int) -> None:
    configs = [
        MLPConfig(hidden_layers=layers, hidden_dim=32, dropout=0.0, lr=lr, initialization=init)
        for lr, init in ((3.2e-3, "xavier_uniform"), (1e-4, "xavier_normal"))
    ]
    net = BatchedMLP(12, 5, configs, "cpu", seed=0)
    separate = [torch_network(net.point(i), layers) for i in range(2)]
    optimizers = [
        torch.optim.Adam(m.parameters(), lr=c.lr) for m, c in zip(separate, configs, strict=True)
    ]
    batched_adam = _adam(net)
    loss = _batched_loss("multiclass")
    rng = np.random.default_rng(1)
    for _ in range(6):
        x = torch.from_numpy(rng.normal(size=(40, 12)).astype(np.float32))
        y = torch.from_numpy(np.eye(5, dtype=np.float32)[rng.integers(0, 5, 40)])
        loss(net.forward(x, train=True), y).backward()
        batched_adam.step()
        batched_adam.zero_grad(set_to_none=True)
        for model, optimizer in zip(separate, optimizers, strict=True):
            model.train()
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y.argmax(dim=1)).backward()
            optimizer.step()
    # Biases before a BatchNorm get only rounding noise as gradient (the norm cancels them),
    # which Adam magnifies differently in any two implementations: they are left out.
    weights = net.weights()
    for i, model in enumerate(separate):
        linears = [m for m in model if isinstance(m, torch.nn.Linear)]
        norms = [m for m in model if isinstance(m, torch.nn.BatchNorm1d)]
        for layer, linear in enumerate(linears):
            w = weights[f"w{layer}"].select(1 if layer == 0 else 0, i)
            assert torch.allclose(w, linear.weight.T, atol=1e-6), f"point {i} w{layer}"
        assert torch.allclose(weights[f"b{layers}"][i], linears[-1].bias, atol=1e-6)
        for layer, norm in enumerate(norms):
            assert torch.allclose(weights[f"gamma{layer}"][i], norm.weight, atol=1e-6)
            assert torch.allclose(weights[f"beta{layer}"][i], norm.bias, atol=1e-6)
    x = torch.from_numpy(rng.normal(size=(30, 12)).astype(np.float32))
    with torch.no_grad():
        batched = net.forward(x, train=True)
        for i, model in enumerate(separate):
            assert torch.allclose(batched[i], model(x), atol=1e-5), f"point {i} drifted"


def test_rows_gather_across_splits_in_the_order_asked() -> None:
    a, b = clusters("a", 5, seed=1), clusters("b", 7, seed=2)
    rows = Rows([a, b])
    x, y = rows.take(np.array([6, 0, 11, 4]))
    assert np.array_equal(
        x, np.stack([b.embeddings[1], a.embeddings[0], b.embeddings[6], a.embeddings[4]])
    )
    assert np.array_equal(y, np.stack([b.targets[1], a.targets[0], b.targets[6], a.targets[4]]))
    assert len(rows) == 12


def heareval_loop(train: ProbeSplit, config: MLPConfig, epochs: int) -> torch.nn.Module:
    """heareval 2021.1.3's training as lightning runs it: a DataLoader that never shuffles."""
    torch.manual_seed(config.seed)
    net = _network(train.embeddings.shape[1], train.targets.shape[1], config)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    rows = torch.utils.data.TensorDataset(
        torch.from_numpy(train.embeddings), torch.from_numpy(train.targets)
    )
    net.train()
    for _ in range(epochs):
        for x, y in torch.utils.data.DataLoader(rows, batch_size=config.batch_size, shuffle=False):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y.argmax(dim=1)).backward()
            optimizer.step()
    return net


def test_faithful_training_takes_the_rows_in_order_as_heareval_does() -> None:
    """heareval's runner passes its splits as a list, so its shuffle never fires."""
    train = clusters("train", 150, seed=1)
    order = np.argsort(train.targets.argmax(axis=1), kind="stable")  # rows sorted by class:
    train = ProbeSplit("train", train.embeddings[order], train.targets[order])  # order matters
    config = MLPConfig(hidden_dim=16, dropout=0.0, batch_size=32, max_epochs=3, check_every=3)
    valid = clusters("valid", 30, seed=2)
    ours = train_mlp(Rows([train]), valid, "multiclass", lambda t, p: 1.0, config, "cpu").net
    reference = heareval_loop(train, config, epochs=3)
    for mine, theirs in zip(ours.parameters(), reference.parameters(), strict=True):
        assert torch.allclose(mine, theirs, atol=1e-6)
    shuffled = config.model_copy(update={"shuffle_batches": True})
    drawn = train_mlp(Rows([train]), valid, "multiclass", lambda t, p: 1.0, shuffled, "cpu").net
    assert not torch.allclose(drawn[0].weight, reference[0].weight, atol=1e-3)


def heareval_stream(
    train: ProbeSplit, valid: ProbeSplit, configs: list[MLPConfig], seed: int, epochs: int
) -> list[torch.nn.Module]:
    """heareval 2021.1.3's runner as torch's generator sees it: seeded once per task; per grid
    point, in turn, the model's layers, then torchinfo.summary's forward pass (eval mode) on
    torch.rand(64, n_in) (the one draw re-enacted here), then lightning's loop: a real
    DataLoader pass each epoch and at each validation check (each pass draws its workers' base
    seed), dropout masks in training."""
    torch.manual_seed(seed)
    nets = []
    rows = torch.utils.data.TensorDataset(
        torch.from_numpy(train.embeddings), torch.from_numpy(train.targets)
    )
    for config in configs:
        net = _network(train.embeddings.shape[1], train.targets.shape[1], config)
        torch.rand(64, train.embeddings.shape[1])
        optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
        for epoch in range(1, epochs + 1):
            net.train()
            for x, y in torch.utils.data.DataLoader(rows, batch_size=config.batch_size):
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(net(x), y.argmax(dim=1)).backward()
                optimizer.step()
            if epoch % config.check_every == 0:
                net.eval()
                with torch.no_grad():
                    for (x,) in torch.utils.data.DataLoader(
                        torch.utils.data.TensorDataset(torch.from_numpy(valid.embeddings)),
                        batch_size=config.batch_size,
                    ):
                        net(x)
        nets.append(net)
    return nets


def test_faithful_points_draw_in_turn_from_one_seeding_as_heareval_does() -> None:
    """Paired with heareval draw for draw: same initializations, same dropout masks."""
    train, valid = clusters("train", 120, seed=1), clusters("valid", 30, seed=2)
    configs = [
        MLPConfig(hidden_dim=16, batch_size=32, max_epochs=6, lr=lr, patience=99, seed=7)
        for lr in (1e-3, 3e-3)
    ]
    checks = iter(range(100))  # every check a new best: the last epoch's weights are kept

    def train_in_turn(seeded: bool) -> list[torch.nn.Module]:
        torch.manual_seed(7)
        select = lambda t, p: next(checks)  # noqa: E731
        return [
            train_mlp(Rows([train]), valid, "multiclass", select, c, "cpu", seeded=seeded).net
            for c in configs
        ]

    reference = heareval_stream(train, valid, configs, seed=7, epochs=6)
    for ours, theirs in zip(train_in_turn(seeded=True), reference, strict=True):
        for mine, its in zip(ours.parameters(), theirs.parameters(), strict=True):
            assert torch.equal(mine, its)
    reseeded = train_in_turn(seeded=False)  # each network seeded afresh: a different second one
    assert not torch.allclose(reseeded[1][0].weight, reference[1][0].weight, atol=1e-3)


def test_losses_come_from_the_logits_as_heareval_computes_them() -> None:
    """A probability that rounds to 0 in float32 (e**-150) still costs its 150 nats."""
    net = torch.nn.Linear(2, 3)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[50.0, 0.0], [0.0, 50.0], [-50.0, -50.0]]))
        net.bias.zero_()
    x = np.array([[1, 0], [0, 1], [1, 1]], np.float32)
    targets = np.eye(3, dtype=np.float32)[[0, 0, 2]]  # the last two confidently wrong
    split = ProbeSplit("test", x, targets)
    problem = scene_problem(train=split, valid=split, test=split)
    result, _ = _score_fold(problem, problem.folds[0], TrainedProbe(net, "multiclass"), [get_metric("top1_acc")], 1)  # fmt: skip
    with torch.no_grad():
        logits = net(torch.from_numpy(x))
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 0, 2]))
    assert result.losses["test"] == pytest.approx(float(expected), rel=1e-6)
    # (0 + 50 + 150.7) / 3 = 66.9, where probabilities clipped at 1e-7 gave 10.7
    assert result.losses["test"] > 60
    assert result.scores["test"]["top1_acc"] == pytest.approx(1 / 3)


@pytest.mark.parametrize(("mode", "reports"), [("faithful", [1, 1, 1]), ("fast", [2, 1])])
def test_progress_is_reported_network_by_network_where_they_train_one_by_one(
    mode: str, reports: list[int]
) -> None:
    problem = scene_problem(
        train=clusters("train", 60, seed=1), valid=clusters("valid", 20, seed=2),
        test=clusters("test", 20, seed=3),
    )  # fmt: skip
    seen: list[int] = []
    run_probe(problem, mode, grid_points=3, on_trained=seen.append)  # type: ignore[arg-type]
    assert seen == reports  # fast: one report per batched group (here: the points by depth)


def test_fast_reports_each_point_where_the_cpu_trains_them_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hear_runner.probes import batched

    monkeypatch.setattr(batched, "CPU_GROUP_PARAMS", 1)  # as a 4,096-wide point on a CPU
    problem = scene_problem(
        train=clusters("train", 60, seed=1), valid=clusters("valid", 20, seed=2),
        test=clusters("test", 20, seed=3),
    )  # fmt: skip
    seen: list[int] = []
    run_probe(problem, "fast", grid_points=3, on_trained=seen.append)
    assert seen == [1, 1, 1]


@pytest.mark.parametrize("shuffle", [False, True])
def test_epoch_batches_repeat_the_rows_order_unless_shuffled(shuffle: bool) -> None:
    taken: list[list[int]] = []

    def take(index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        taken.append(index.tolist())
        return torch.zeros(len(index)), torch.zeros(len(index))

    generator = torch.Generator().manual_seed(0)
    for _ in range(2):
        list(epoch_batches(take, 10, 4, generator, shuffle))
    first, second = [i for b in taken[:3] for i in b], [i for b in taken[3:] for i in b]
    assert [len(b) for b in taken] == [4, 4, 2] * 2
    assert sorted(first) == sorted(second) == list(range(10))
    if shuffle:
        assert first != second and first != list(range(10))
    else:
        assert first == second == list(range(10))


@pytest.mark.parametrize("mode", ["fast", "faithful", "linear"])
def test_every_mode_learns_separable_clusters(mode: str) -> None:
    problem = scene_problem(
        train=clusters("train", 300, seed=1), valid=clusters("valid", 80, seed=2),
        test=clusters("test", 80, seed=3),
    )  # fmt: skip
    outcome = run_probe(problem, mode, grid_points=2)  # type: ignore[arg-type]
    assert outcome.mean_scores()["test"]["top1_acc"] > 0.9
    if mode != "linear":
        assert len(outcome.grid) == 2
        best = max(outcome.grid, key=lambda p: p["valid_selection_score"])
        assert outcome.config["lr"] == best["lr"]
        assert outcome.folds[0].epochs_trained <= 500


def test_fast_mode_stops_each_point_on_its_own() -> None:
    """A point whose validation score stalls leaves the batch; the others go on."""
    problem = scene_problem(
        train=clusters("train", 200, seed=1), valid=clusters("valid", 60, seed=2),
        test=clusters("test", 60, seed=3),
    )  # fmt: skip
    configs = [
        MLPConfig(hidden_dim=16, lr=lr, max_epochs=60, check_every=1, patience=3)
        for lr in (1e-2, 1e-7)  # 1e-7 barely moves: its score stalls at once
    ]
    outcome = run_probe(problem, "fast", points=lambda seed: configs)
    scores = [p["valid_selection_score"] for p in outcome.grid]
    assert scores[0] > scores[1]
    assert outcome.folds[0].epochs_trained < 60 or scores[0] == 1.0
    stalled = outcome.grid[1]  # each point's own epochs are kept, for comparing runs
    assert stalled["best_epoch"] < stalled["epochs_trained"] < outcome.grid[0]["epochs_trained"]


@pytest.mark.parametrize("mode", ["fast", "faithful"])
def test_a_nonfinite_check_stops_training_as_lightning_does(mode: str) -> None:
    """heareval's EarlyStopping (check_finite) stops at a NaN score; the best check is kept."""
    train, valid = clusters("train", 120, seed=1), clusters("valid", 40, seed=2)
    checks: list[int] = []

    def select(targets: np.ndarray, predictions: np.ndarray) -> float:
        checks.append(len(checks))
        return 0.5 if len(checks) == 1 else float("nan")  # as sed_eval's F of no events

    config = MLPConfig(hidden_dim=16, max_epochs=60, check_every=3, patience=20)
    if mode == "fast":
        (probe,) = train_batched(Rows([train]), valid, "multiclass", select, [config], "cpu")
    else:
        probe = train_mlp(Rows([train]), valid, "multiclass", select, config, "cpu")
    assert (probe.epochs_trained, probe.best_epoch, probe.best_valid_score) == (6, 3, 0.5)
    assert len(checks) == 2


def test_seeds_repeat_the_stage_and_report_each() -> None:
    problem = scene_problem(
        train=clusters("train", 120, seed=1), valid=clusters("valid", 40, seed=2),
        test=clusters("test", 40, seed=3),
    )  # fmt: skip
    configs = [MLPConfig(hidden_dim=16, max_epochs=6, check_every=3)]
    outcome = run_probe(problem, "fast", seeds=[1, 2], points=lambda seed: [
        c.model_copy(update={"seed": seed}) for c in configs
    ])  # fmt: skip
    assert [f.seed for f in outcome.folds] == [1, 2]
    assert len(outcome.seed_scores()) == 2


def test_nonfinite_embedding_is_named_by_split_and_row() -> None:
    valid = clusters("valid", 20)
    valid.embeddings[13, 2] = np.inf
    problem = scene_problem(train=clusters("train", 20), valid=valid, test=clusters("test", 20))
    with pytest.raises(HearError, match=r"split 'valid', row 13.*NaN or Inf"):
        problem.check()


def test_linear_probe_predicts_every_class_even_one_unseen_in_training() -> None:
    train = clusters("train", 90, classes=4)
    keep = train.targets[:, 3] == 0  # class 3 never appears in training
    train = ProbeSplit("train", train.embeddings[keep], train.targets[keep])
    valid = clusters("valid", 40, classes=4)
    probe = train_linear(Rows([train]), valid, "multiclass", lambda t, p: 0.0, LinearConfig())
    predictions = probe.predict(valid.embeddings)
    assert predictions.shape == (40, 4) and np.all(predictions[:, 3] == 0)
    assert np.allclose(predictions.sum(axis=1), 1.0, atol=1e-5)
