"""heareval's MLP probe, one network at a time (the faithful mode), and its settings.

Linear, BatchNorm1d, Dropout, ReLU per hidden layer; xavier initialization with the
gain of the preceding activation; Adam; batches of 1024 taken in the training rows'
order, the same every epoch, as heareval 2021.1.3 takes them; validation every few
epochs; early stopping after ``patience`` checks without gain; the best checkpoint kept.
Embeddings go in as they are, as heareval feeds them.

Random draws follow heareval's runner too (:class:`HearevalDraws`): it seeds torch once
per task and trains its grid points, then the other folds, one after the other from that
one stream; each network's initialization, each torchinfo summary, each DataLoader pass
and each dropout mask takes its draws in turn. Trained in the same order from the same
seed, a faithful network starts and drops out as heareval's does, so the two runs are
paired draw for draw, not merely alike in distribution.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel

from hear_runner.errors import HearError
from hear_runner.probes.data import ProbeSplit, Rows
from hear_runner.probes.resume import Checkpoint

PredictionType = Literal["multiclass", "multilabel"]
#: The arithmetic of the fast probe's products: float32 (heareval's), or bfloat16 under
#: torch's autocast (weights, Adam and BatchNorm statistics stay float32).
Precision = Literal["float32", "bfloat16"]
PRECISIONS: tuple[Precision, ...] = ("float32", "bfloat16")
#: select(valid_targets, valid_logits) -> a score to maximize. Logits, not probabilities:
#: a loss is then computed as heareval computes it, exact where a probability rounds to 0 or 1.
Selector = Callable[[np.ndarray, np.ndarray], float]


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
    # heareval initializes weights with xavier, the gain from the preceding activation;
    # "default" keeps torch's own initialization.
    initialization: Literal["default", "xavier_uniform", "xavier_normal"] = "xavier_uniform"
    # heareval 2021.1.3 never shuffles the training rows: its runner shuffles a split only
    # when its name is "train", and always passes a list of names (["train"], or the
    # training folds). Its batches are the rows in file order, the same every epoch; on
    # event tasks that is 1024 consecutive frames of a few clips. True draws a new order
    # each epoch (the seed's), as its authors meant for in-memory runs.
    shuffle_batches: bool = False
    # The fast probe only: "bfloat16" runs its matrix products in bfloat16 (1.2x to 1.8x an
    # epoch on a CPU with AVX512-BF16; GPUs not measured); scores then differ from float32's
    # and are reported as such. The faithful probe always trains in float32, as heareval does.
    precision: Precision = "float32"


class TrainingOptions(BaseModel):
    """The settings a user may change in every MLP grid point; the defaults are heareval's."""

    precision: Precision = "float32"
    shuffle_batches: bool = False

    def check(self, mode: str) -> TrainingOptions:
        """These options, where the probe ``mode`` has them; else a one-line error."""
        if self.precision != "float32" and mode != "fast":
            raise HearError(
                f"--precision {self.precision}: only the fast probe trains in reduced "
                f"precision (the {mode} probe trains in float32, as heareval does)"
            )
        return self


class Probe:
    """A trained probe, and how its training went."""

    def __init__(self, kind: PredictionType) -> None:
        self.kind = kind
        self.best_epoch = 0
        self.best_valid_score = float("nan")
        self.epochs_trained = 0
        self.seconds = 0.0
        self.input_rank: int | None = None  # the first layer went through a basis of this rank

    def logits(self, x: np.ndarray) -> np.ndarray:
        """The scores before softmax (multiclass) or sigmoid (multilabel), float32."""
        raise NotImplementedError

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (multiclass) or per-label probabilities (multilabel)."""
        return activate(self.logits(x), self.kind)

    def outputs(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits and probabilities from one pass (scoring needs both: loss and metrics)."""
        logits = self.logits(x)
        return logits, activate(logits, self.kind)


def outputs_split(probe: Probe, split: ProbeSplit) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`Probe.outputs` for a whole split, made chunk by chunk."""
    parts = [probe.outputs(chunk) for chunk in split.chunks()]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def logits_split(probe: Probe, split: ProbeSplit) -> np.ndarray:
    """Logits for a whole split, made chunk by chunk."""
    return np.concatenate([probe.logits(chunk) for chunk in split.chunks()])


def activate(logits: np.ndarray, kind: PredictionType) -> np.ndarray:
    """Probabilities from logits, as torch (and heareval's model) computes them."""
    scores = torch.from_numpy(np.ascontiguousarray(logits))
    return (scores.softmax(-1) if kind == "multiclass" else scores.sigmoid()).numpy()


def probe_loss(targets: np.ndarray, logits: np.ndarray, kind: PredictionType) -> float:
    """heareval's loss over a split: the training loss of the logits, mean over rows."""
    loss = loss_function(kind)(torch.from_numpy(logits), torch.from_numpy(targets))
    return float(loss)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


Batches = Callable[[np.ndarray], tuple[torch.Tensor, torch.Tensor]]


def batch_source(train: Rows, device: str) -> Batches:
    """``take(index) -> (x, y)`` on ``device``.

    On a GPU the training rows are uploaded once, a chunk at a time (the device holds
    the one copy); on the CPU each batch is gathered from the splits as they are.
    """
    if device == "cpu":

        def take_host(index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            x, y = train.take(index)
            return torch.from_numpy(x), torch.from_numpy(y)

        return take_host
    dim = train.parts[0].embeddings.shape[1]
    x_all = torch.empty((len(train), dim), dtype=torch.float32, device=device)
    row = 0
    for part in train.parts:
        for chunk in part.chunks():
            x_all[row : row + len(chunk)].copy_(torch.from_numpy(chunk))
            row += len(chunk)
    return tensor_source(x_all, torch.from_numpy(train.targets()).to(device))


def tensor_source(x: torch.Tensor, y: torch.Tensor) -> Batches:
    """``take(index) -> (x, y)`` over rows already in one tensor, on its device."""

    def take(index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        i = torch.from_numpy(index).to(x.device)
        return x[i], y[i]

    return take


def epoch_batches(
    take: Batches, n: int, batch: int, generator: torch.Generator, shuffle: bool
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of batches, in the rows' order or shuffled by ``generator``.

    A last batch of one row is skipped (BatchNorm needs two).
    """
    order = torch.randperm(n, generator=generator).numpy() if shuffle else np.arange(n)
    for start in range(0, n, batch):
        index = order[start : start + batch]
        if len(index) > 1:
            yield take(index)


@dataclass
class EarlyStopping:
    """heareval's rule: a check must beat the best so far; stop after ``patience`` that don't.

    A check whose score is not finite stops training at once, as lightning's
    EarlyStopping (``check_finite``, on in heareval's runner) does: an event probe whose
    validation predictions hold no event at all scores NaN (sed_eval's precision over
    no system output), and heareval's points stop there.
    """

    patience: int
    best: float = -np.inf
    best_epoch: int = 0
    checks_without_gain: int = 0
    stopped: bool = False
    history: list[float] = field(default_factory=list)

    def update(self, score: float, epoch: int) -> bool:
        """Record a check; True when it is the new best."""
        self.history.append(score)
        if not math.isfinite(score):
            self.stopped = True
            return False
        if score > self.best:
            self.best, self.best_epoch, self.checks_without_gain = score, epoch, 0
            return True
        self.checks_without_gain += 1
        self.stopped = self.checks_without_gain >= self.patience
        return False


class TrainedProbe(Probe):
    """One fitted torch network."""

    def __init__(self, net: torch.nn.Module, kind: PredictionType) -> None:
        super().__init__(kind)
        self.net = net

    @torch.no_grad()
    def logits(self, x: np.ndarray) -> np.ndarray:
        self.net.eval()
        device = next(self.net.parameters()).device
        logits = self.net(torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(device))
        return np.asarray(logits.cpu().numpy(), np.float32)


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


def loss_function(kind: PredictionType) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Mean loss of logits against multi-hot targets: cross-entropy on the argmax, or BCE."""
    if kind == "multiclass":
        return lambda logits, y: torch.nn.functional.cross_entropy(logits, y.argmax(dim=-1))
    return torch.nn.functional.binary_cross_entropy_with_logits


class HearevalDraws:
    """The draws from torch's global generator that heareval 2021.1.3's runner makes
    besides the network's own (initialization and dropout), repeated so that a faithful
    run stays on heareval's stream.

    - Building its model calls ``torchinfo.summary(predictor, input_size=(64, n_in))``,
      which runs one forward pass (in eval mode) on ``torch.rand(64, n_in)``.
    - Every pass over a DataLoader (each training epoch, each validation check) starts an
      iterator, and each iterator draws one int64 base seed for its workers.
    """

    SUMMARY_ROWS = 64

    @staticmethod
    def summary(n_in: int) -> None:
        torch.rand(HearevalDraws.SUMMARY_ROWS, n_in)

    @staticmethod
    def loader_pass() -> None:
        torch.empty((), dtype=torch.int64).random_()


def train_mlp(
    train: Rows,
    valid: ProbeSplit,
    kind: PredictionType,
    select: Selector,
    config: MLPConfig,
    device: str | None = None,
    seeded: bool = False,
    checkpoint: Checkpoint | None = None,
) -> TrainedProbe:
    """Train one network until the validation score stops improving; keep the best checkpoint.

    Seeds torch with ``config.seed`` first, unless ``seeded``: then the draws go on from
    torch's generator as the caller left it, as heareval's grid points go on from one
    seeding per task. Goes on from the state ``checkpoint`` holds, and saves its own there.
    """
    checkpoint = checkpoint or Checkpoint()
    device = device or default_device()
    generator = torch.Generator().manual_seed(config.seed)
    if not seeded:
        torch.manual_seed(config.seed)
    net = _network(valid.embeddings.shape[1], valid.targets.shape[1], config).to(device)
    HearevalDraws.summary(valid.embeddings.shape[1])
    probe = TrainedProbe(net, kind)
    loss_fn = loss_function(kind)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    best_state = copy.deepcopy(net.state_dict())
    stopping = EarlyStopping(config.patience)
    n = len(train)
    batch = min(config.batch_size, n)
    take = batch_source(train, device)
    saved = checkpoint.load()
    if saved is not None:
        net.load_state_dict(saved["net"])
        optimizer.load_state_dict(saved["optimizer"])
        generator.set_state(saved["generator"])
        best_state, stopping = saved["best"], EarlyStopping(**saved["stopping"])
        probe.epochs_trained = saved["epoch"]
    for epoch in range(probe.epochs_trained + 1, config.max_epochs + 1):
        net.train()
        HearevalDraws.loader_pass()
        for x, y in epoch_batches(take, n, batch, generator, config.shuffle_batches):
            optimizer.zero_grad()
            loss = loss_fn(net(x), y)
            loss.backward()
            optimizer.step()
        probe.epochs_trained = epoch
        if epoch % config.check_every == 0:
            HearevalDraws.loader_pass()
            if stopping.update(select(valid.targets, logits_split(probe, valid)), epoch):
                best_state = copy.deepcopy(net.state_dict())
            if stopping.stopped:
                break
        checkpoint.epoch_end(epoch, config.max_epochs, stopping.best, stopping.best_epoch)
        if checkpoint.due():
            checkpoint.save(epoch, {
                "net": net.state_dict(), "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(), "best": best_state,
                "stopping": asdict(stopping),
            })  # fmt: skip
    net.load_state_dict(best_state)
    probe.best_epoch = stopping.best_epoch
    probe.best_valid_score = float(stopping.best)
    probe.seconds = checkpoint.seconds()
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
