"""The fast probe: every grid point of one depth trained at once, as one batched network.

Each point is heareval's MLP (Linear, BatchNorm1d, Dropout, ReLU per hidden layer,
xavier init, Adam) with its own weights, learning rate and early stopping; all
points see the same batches. The first layer of every point is one matrix
product over the shared input, the others are batched products, and a point that
stops early leaves the batch.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from itertools import groupby, pairwise
from typing import Any

import numpy as np
import torch

from hear_runner.probes.data import ProbeSplit, Rows
from hear_runner.probes.mlp import (
    EarlyStopping,
    MLPConfig,
    PredictionType,
    Probe,
    Selector,
    batch_source,
    default_device,
    epoch_batches,
    tensor_source,
)
from hear_runner.probes.resume import NO_STEPS, Checkpoint, Steps
from hear_runner.probes.subspace import find_subspace, worthwhile_rank

BN_EPS = 1e-5
BN_MOMENTUM = 0.1

#: On a CPU, the most weights one batched network holds (4M floats: 16 MB, within a cache).
#: A 4096-wide point (4.2M) trains alone, no slower per step than the faithful path
#: (bench/results/probe-cpu.md): batching shares no arithmetic and no weight traffic.
CPU_GROUP_PARAMS = 4 * 2**20

#: Settings all points of one batched network share (the rest may differ per point).
SHARED = (
    "hidden_layers",
    "hidden_dim",
    "dropout",
    "batch_size",
    "max_epochs",
    "check_every",
    "shuffle_batches",
    "precision",
)


class BatchedMLP:
    """G MLPs of one shape; every tensor has a point axis (``axis[name]``).

    ``w0`` is (D, G, H), so that the first layer is a single (B, D) x (D, G*H) product.
    With a ``basis`` (D, r) of the inputs' span (``probes.subspace``), inputs may come as
    coordinates (B, r) in it, and the first layer is (B, r) x ((r, D) x (D, G*H)).
    Per-point learning rates ride on the parameters: each point's tensors are stored
    divided by ``scale`` = its lr / the largest lr and multiplied back in the forward
    pass, so one Adam with the largest lr moves every point at its own rate
    (Adam ignores the gradient's scale; only its epsilon is rescaled, by at most the
    ratio of learning rates).
    """

    def __init__(
        self, n_in: int, n_out: int, configs: list[MLPConfig], device: str, seed: int
    ) -> None:
        first = configs[0]
        self.depth = first.hidden_layers
        self.dropout = first.dropout
        self.device = device
        self.bfloat16 = first.precision == "bfloat16"
        self.masks = np.random.default_rng(seed)  # dropout's: the seed fixes them, run by run
        self.basis: torch.Tensor | None = None
        self.lr = max(c.lr for c in configs)
        g, h = len(configs), first.hidden_dim
        gen = torch.Generator().manual_seed(seed)
        self.params: dict[str, torch.Tensor] = {}
        self.buffers: dict[str, torch.Tensor] = {}
        self.scales: dict[str, torch.Tensor] = {}
        self.axis: dict[str, int] = {}
        ratio = torch.tensor([c.lr / self.lr for c in configs])
        widths = [n_in] + [h] * first.hidden_layers + [n_out]
        activation = "linear"
        for layer, (fan_in, fan_out) in enumerate(pairwise(widths)):
            w = torch.empty(g, fan_in, fan_out)
            for i, config in enumerate(configs):
                _init_weight(w[i], config.initialization, activation, gen)
            bound = 1 / math.sqrt(fan_in)  # torch's Linear bias init
            b = torch.empty(g, fan_out).uniform_(-bound, bound, generator=gen)
            if layer == 0:
                self._add(f"w{layer}", w.permute(1, 0, 2).contiguous(), 1, ratio)
            else:
                self._add(f"w{layer}", w, 0, ratio)
            self._add(f"b{layer}", b, 0, ratio)
            if layer < first.hidden_layers:
                self._add(f"gamma{layer}", torch.ones(g, fan_out), 0, ratio)
                self._add(f"beta{layer}", torch.zeros(g, fan_out), 0, ratio)
                self._add(f"mean{layer}", torch.zeros(g, fan_out), 0)
                self._add(f"var{layer}", torch.ones(g, fan_out), 0)
            activation = "relu"

    def _add(
        self, name: str, value: torch.Tensor, axis: int, ratio: torch.Tensor | None = None
    ) -> None:
        self.axis[name] = axis
        if ratio is None:  # a buffer
            self.buffers[name] = value.to(self.device)
            return
        shape = [1] * value.dim()
        shape[axis] = -1
        self.scales[name] = ratio.view(shape).to(self.device)
        self.params[name] = (value.to(self.device) / self.scales[name]).requires_grad_()

    @property
    def points(self) -> int:
        return int(self.params["b0"].shape[0])

    def weights(self) -> dict[str, torch.Tensor]:
        """Each point's actual parameters (the stored ones when every point has the top lr)."""
        if all(bool((s == 1).all()) for s in self.scales.values()):
            return self.params
        return {name: p * self.scales[name] for name, p in self.params.items()}

    @contextlib.contextmanager
    def arithmetic(self) -> Iterator[None]:
        """The products' precision: float32, or bfloat16 under torch's autocast."""
        with torch.autocast(
            device_type=torch.device(self.device).type, dtype=torch.bfloat16,
            enabled=self.bfloat16,
        ):  # fmt: skip
            yield

    def first_weights(
        self, in_basis: bool, w: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """The first layer's weights: (D, G*H), or (r, G*H) for coordinates in ``basis``."""
        w0 = (w or self.weights())["w0"]
        w0 = w0.view(w0.shape[0], -1)
        if not in_basis:
            return w0
        assert self.basis is not None
        with self.arithmetic():
            return self.basis.T @ w0  # autograd takes W's gradient through the basis

    def forward(
        self,
        x: torch.Tensor,
        train: bool,
        in_basis: bool = False,
        first: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits (G, B, C), in float32, for input (B, D), or (B, r) coordinates in ``basis``.

        ``first`` is :meth:`first_weights`, where the caller has it already (prediction
        chunk by chunk). Hidden activations stay (B, G*H): every point's BatchNorm is then
        one fused BatchNorm over G*H features, and dropout and ReLU one pass each.
        """
        w, g, n = self.weights(), self.points, len(x)
        w0 = self.first_weights(in_basis, w) if first is None else first
        with self.arithmetic():
            h = torch.addmm(w["b0"].view(-1), x, w0)  # (B, G*H)
            for layer in range(self.depth):
                if layer:
                    h = torch.einsum("bgh,ghk->bgk", h.view(n, g, -1), w[f"w{layer}"])
                    h = (h + w[f"b{layer}"]).reshape(n, -1)
                h = torch.nn.functional.batch_norm(
                    h,
                    self.buffers[f"mean{layer}"].view(-1),
                    self.buffers[f"var{layer}"].view(-1),
                    w[f"gamma{layer}"].view(-1),
                    w[f"beta{layer}"].view(-1),
                    training=train,
                    momentum=BN_MOMENTUM,
                    eps=BN_EPS,
                )
                if train and self.dropout:
                    h = _dropout(h, self.dropout, self.masks)
                h = torch.relu_(h)
            out = self.depth
            logits = torch.einsum("bgh,ghc->gbc", h.view(n, g, -1), w[f"w{out}"])
            return (logits + w[f"b{out}"][:, None, :]).float()

    def keep(self, points: list[int]) -> torch.Tensor:
        """Drop every point not in ``points`` (indices into the current batch)."""
        index = torch.tensor(points, device=self.device)
        for name in list(self.params):
            axis = self.axis[name]
            self.params[name] = (
                self.params[name].detach().index_select(axis, index).requires_grad_()
            )
            self.scales[name] = self.scales[name].index_select(axis, index)
        for name in list(self.buffers):
            self.buffers[name] = self.buffers[name].index_select(self.axis[name], index)
        return index

    @torch.no_grad()
    def point(self, i: int) -> dict[str, torch.Tensor]:
        """A copy of point ``i``'s actual tensors, each with a point axis of length 1."""
        state = {}
        for name, t in self.params.items():
            axis = self.axis[name]
            state[name] = t.narrow(axis, i, 1) * self.scales[name].narrow(axis, i, 1)
        for name, t in self.buffers.items():
            state[name] = t.narrow(self.axis[name], i, 1).clone()
        return state

    def load_point(self, state: dict[str, torch.Tensor]) -> None:
        """Become the single point in ``state`` (from :meth:`point`)."""
        for name, t in state.items():
            if name in self.params:
                self.scales[name] = torch.ones_like(self.scales[name][:1])
                self.params[name] = t.clone().requires_grad_()
            else:
                self.buffers[name] = t.clone()


def _adam(net: BatchedMLP, state: dict[str, dict[str, torch.Tensor]] | None = None) -> Any:
    """torch's Adam over the net's parameters (fused where torch has it), resuming ``state``."""
    params = list(net.params.values())
    try:
        optimizer = torch.optim.Adam(params, lr=net.lr, fused=True)
    except (RuntimeError, TypeError):
        optimizer = torch.optim.Adam(params, lr=net.lr)
    for name, values in (state or {}).items():
        optimizer.state[net.params[name]] = values
    return optimizer


def _sliced_state(
    optimizer: Any, net: BatchedMLP, old: dict[str, torch.Tensor], index: torch.Tensor
) -> dict[str, dict[str, torch.Tensor]]:
    """The optimizer's moments for the points kept, keyed by parameter name."""
    state = {}
    for name, param in old.items():
        values = optimizer.state.get(param)
        if values:
            axis = net.axis[name]
            state[name] = {
                k: v if k == "step" else v.index_select(axis, index) for k, v in values.items()
            }
    return state


def _state(net: BatchedMLP, optimizer: Any) -> dict[str, Any]:
    """The net's tensors of the points still training, its dropout generator, Adam's moments."""
    params = {name: p.detach() for name, p in net.params.items()}
    moments = {name: optimizer.state[p] for name, p in net.params.items() if p in optimizer.state}
    return {"params": params, "scales": net.scales, "buffers": net.buffers,
            "masks": net.masks.bit_generator.state, "moments": moments}  # fmt: skip


def _restore(net: BatchedMLP, state: dict[str, Any]) -> Any:
    """Put :func:`_state`'s tensors back into ``net``; Adam with its moments, to go on."""
    net.params = {name: p.clone().requires_grad_() for name, p in state["params"].items()}
    net.scales, net.buffers = state["scales"], state["buffers"]
    net.masks.bit_generator.state = state["masks"]
    return _adam(net, state["moments"])


def _dropout(h: torch.Tensor, p: float, masks: np.random.Generator) -> torch.Tensor:
    """Inverted dropout with a mask drawn from 16-bit random integers.

    The same distribution as torch's (to 1/65536 in p), at a fraction of its cost on CPU,
    where drawing a float per activation costs as much as the layer's matrix product.
    """
    if h.is_cuda:
        return torch.nn.functional.dropout(h, p, training=True)
    bits = torch.from_numpy(masks.integers(0, 65536, h.shape, dtype=np.uint16).view(np.int16))
    keep = bits >= round(p * 65536) - 32768
    return h * keep / (1 - p)


class PointProbe(Probe):
    """One trained point, used alone for prediction."""

    def __init__(self, net: BatchedMLP, kind: PredictionType) -> None:
        super().__init__(kind)
        self.net = net

    def logits(self, x: np.ndarray) -> np.ndarray:
        return _logits(self.net, x)[0]


@torch.no_grad()
def _logits(
    net: BatchedMLP, x: np.ndarray, in_basis: bool = False, first: torch.Tensor | None = None
) -> np.ndarray:
    """(G, B, C) logits of every point for input rows (or coordinates in the basis)."""
    x_t = torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(net.device)
    return net.forward(x_t, train=False, in_basis=in_basis, first=first).cpu().numpy()


def train_batched(
    train: Rows,
    valid: ProbeSplit,
    kind: PredictionType,
    select: Selector,
    configs: list[MLPConfig],
    device: str | None = None,
    steps: Steps = NO_STEPS,
    on_trained: Callable[[int], None] | None = None,
) -> list[PointProbe]:
    """Train every config; one probe per config, in the order given.

    Configs that share a shape train as one network: all of them on a GPU, where each
    small kernel costs as much as a large one; on a CPU as many as keep their weights
    within CPU_GROUP_PARAMS, since beyond the cache a batched step is slower than
    the same steps one network at a time. Each group is one of ``steps`` (saved as it
    finishes, loaded where an earlier run saved it); ``on_trained(n)`` after each group of n.
    """
    device = device or default_device()
    n_in, n_out = valid.embeddings.shape[1], valid.targets.shape[1]
    probes: dict[int, PointProbe] = {}
    groups: list[list[int]] = []
    order = sorted(range(len(configs)), key=lambda i: _shared(configs[i]))
    for _, members in groupby(order, key=lambda i: _shared(configs[i])):
        indices = list(members)
        size = len(indices)
        if device == "cpu":
            size = max(1, CPU_GROUP_PARAMS // _parameters(n_in, n_out, configs[indices[0]]))
        groups += [indices[start : start + size] for start in range(0, len(indices), size)]
    spans: dict[int, Span | None] = {}  # by batch size: found once, when first needed
    span_seeds: dict[int, int] = {}  # the first group's seed for each batch size
    for chunk in groups:
        span_seeds.setdefault(min(configs[chunk[0]].batch_size, len(train)), configs[chunk[0]].seed)

    def train_chunk(chunk: list[int], name: str) -> list[PointProbe]:
        checkpoint = steps.checkpoint(name)
        batch = min(configs[chunk[0]].batch_size, len(train))
        if batch not in spans:
            spans[batch] = _span(train, valid, batch, span_seeds[batch])
        group = _train_group(
            train, valid, kind, select, [configs[i] for i in chunk], device, spans[batch],
            checkpoint,
        )  # fmt: skip
        for probe in group:  # the span's search counted in
            probe.seconds = checkpoint.seconds() / len(group)
        return group

    for chunk in groups:
        name = "points-" + "-".join(map(str, chunk))
        group = steps.run(name, functools.partial(train_chunk, chunk, name), len(chunk))
        probes.update(zip(chunk, group, strict=True))
        if on_trained is not None:
            on_trained(len(chunk))
    return [probes[i] for i in range(len(configs))]


def _parameters(n_in: int, n_out: int, config: MLPConfig) -> int:
    """Weights of one point's network."""
    h = config.hidden_dim
    return n_in * h + (config.hidden_layers - 1) * h * h + h * n_out


def _shared(config: MLPConfig) -> tuple[object, ...]:
    return tuple(getattr(config, name) for name in SHARED)


def _train_group(
    train: Rows,
    valid: ProbeSplit,
    kind: PredictionType,
    select: Selector,
    configs: list[MLPConfig],
    device: str,
    span: Span | None = None,
    checkpoint: Checkpoint | None = None,
) -> list[PointProbe]:
    checkpoint = checkpoint or Checkpoint()
    first = configs[0]
    seed = first.seed
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    n_in, n_out = valid.embeddings.shape[1], valid.targets.shape[1]
    net = BatchedMLP(n_in, n_out, configs, device, seed)
    optimizer = _adam(net)
    loss_fn = _batched_loss(kind)
    stopping = [EarlyStopping(c.patience) for c in configs]
    best = [net.point(i) for i in range(len(configs))]
    epochs = [0] * len(configs)
    active = list(range(len(configs)))  # original index of each point still training
    n = len(train)
    batch = min(first.batch_size, n)
    if span is None:
        take, valid_in_basis = batch_source(train, device), None
    else:
        net.basis = torch.from_numpy(span.basis).to(device)
        x, y = torch.from_numpy(span.train), torch.from_numpy(train.targets())
        take, valid_in_basis = tensor_source(x.to(device), y.to(device)), span.valid
    saved = checkpoint.load()
    start = 1
    if saved is not None:
        optimizer = _restore(net, saved)
        generator.set_state(saved["generator"])
        stopping = [EarlyStopping(**s) for s in saved["stopping"]]
        best, epochs, active = saved["best"], saved["epochs"], saved["active"]
        start = saved["epoch"] + 1
    for epoch in range(start, first.max_epochs + 1):
        for x, y in epoch_batches(take, n, batch, generator, first.shuffle_batches):
            loss = loss_fn(net.forward(x, train=True, in_basis=net.basis is not None), y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        for i in active:
            epochs[i] = epoch
        if epoch % first.check_every == 0:
            logits = _logits_all(net, valid, valid_in_basis)
            for slot, i in enumerate(active):
                if stopping[i].update(select(valid.targets, logits[slot]), epoch):
                    best[i] = net.point(slot)
            still = [slot for slot, i in enumerate(active) if not stopping[i].stopped]
            if not still:
                break
            if len(still) < len(active):
                old = dict(net.params)
                index = net.keep(still)
                optimizer = _adam(net, _sliced_state(optimizer, net, old, index))
                active = [active[slot] for slot in still]
        top = max(stopping, key=lambda s: s.best)
        checkpoint.epoch_end(epoch, first.max_epochs, top.best, top.best_epoch)
        if checkpoint.due():
            checkpoint.save(epoch, {
                **_state(net, optimizer), "generator": generator.get_state(),
                "stopping": [asdict(s) for s in stopping], "best": best,
                "epochs": epochs, "active": active,
            })  # fmt: skip
    probes = []
    for i, config in enumerate(configs):
        single = BatchedMLP(n_in, n_out, [config], device, seed)
        single.load_point(best[i])
        probe = PointProbe(single, kind)
        probe.best_epoch = stopping[i].best_epoch
        probe.best_valid_score = float(stopping[i].best)
        probe.epochs_trained = epochs[i]
        probe.input_rank = None if net.basis is None else int(net.basis.shape[1])
        probes.append(probe)
    return probes


@dataclass
class Span:
    """The training rows' small span: its basis, and the rows' coordinates in it."""

    basis: np.ndarray  # (D, r)
    train: np.ndarray  # (n_train, r)
    valid: np.ndarray | None  # (n_valid, r), or None where a validation row lies outside


def _span(train: Rows, valid: ProbeSplit, batch: int, seed: int) -> Span | None:
    """Where the training rows span a small subspace, it and the rows in it; else None."""
    subspace = find_subspace(train, batch, seed)
    coordinates = subspace.coordinates(train.parts) if subspace else None
    if subspace is not None and coordinates is None:  # a few rows use rarer directions
        limit = worthwhile_rank(train.parts[0].embeddings.shape[1], batch)
        subspace = subspace.grown(train.parts, limit)
        coordinates = subspace.coordinates(train.parts) if subspace else None
    if subspace is None or coordinates is None:
        return None
    return Span(subspace.basis, coordinates, subspace.coordinates([valid]))


def _logits_all(net: BatchedMLP, split: ProbeSplit, in_basis: np.ndarray | None) -> np.ndarray:
    """(G, n_rows, C) logits of every point still training, chunk by chunk.

    The first layer's weights are formed once for all chunks (through the basis, that
    product costs as much as a training step's).
    """
    with torch.no_grad():
        first = net.first_weights(in_basis is not None)
    if in_basis is None:
        chunks = [_logits(net, chunk, first=first) for chunk in split.chunks()]
    else:
        step = split.chunk_rows
        chunks = [
            _logits(net, in_basis[i : i + step], in_basis=True, first=first)
            for i in range(0, len(in_basis), step)
        ]
    return np.concatenate(chunks, axis=1)


def _batched_loss(kind: PredictionType) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The sum over points of each point's mean loss, so that points train independently."""

    def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        g, b, c = logits.shape
        if kind == "multiclass":
            target = y.argmax(dim=-1).repeat(g)
            return torch.nn.functional.cross_entropy(logits.reshape(g * b, c), target) * g
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, y.expand(g, b, c)) * g

    return loss


def _init_weight(w: torch.Tensor, how: str, activation: str, gen: torch.Generator) -> None:
    """Initialize an (in, out) weight as torch would its (out, in) Linear weight."""
    fan_in, fan_out = w.shape
    if how == "default":  # kaiming uniform, a=sqrt(5): bound 1/sqrt(fan_in)
        bound = 1 / math.sqrt(fan_in)
        w.uniform_(-bound, bound, generator=gen)
        return
    gain = torch.nn.init.calculate_gain(activation)  # type: ignore[arg-type]
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    if how == "xavier_uniform":
        w.uniform_(-math.sqrt(3.0) * std, math.sqrt(3.0) * std, generator=gen)
    else:
        w.normal_(0.0, std, generator=gen)
