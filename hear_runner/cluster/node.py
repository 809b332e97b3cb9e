"""What runs on a Ray node: the model's server actor, and the embedding and probe units.

Imported only where ``ray`` is installed (``pip install hear-runner[ray]``), on the driver
and on every node. A unit is a Ray task: it runs on a node with a Docker engine (the
``hear_docker`` custom resource), finds or starts that node's model server (a detached
actor per run, model, node and GPU, so a container starts once per node and model), and
embeds its clips the way a local run does (:class:`hear_runner.embed.pipeline.BatchEmbedder`),
reading the task folder where the node sees it and the audio the driver shipped where it
does not. Batches stream back to the driver, which alone writes the store.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import ray
from pydantic import BaseModel, ConfigDict
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from hear_runner.cluster.connect import NAMESPACE
from hear_runner.contract.messages import Hello
from hear_runner.engines.base import ModelSource, RunningModel
from hear_runner.engines.settings import ServeSettings
from hear_runner.errors import HearError, ImageError, ModelDied
from hear_runner.tasks.folder import Task


class Placement(BaseModel):
    """Where a unit ran: the node (Ray's id, its address and host name) and its GPU."""

    model_config = ConfigDict(frozen=True)

    node_id: str
    ip: str
    hostname: str
    gpu: str | None = None

    @property
    def label(self) -> str:
        return f"{self.hostname} ({self.ip}, node {self.node_id[:8]})"


class UnitSpec(BaseModel):
    """One embedding unit: these clips of one split, by one model (a shard of the split)."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    source: ModelSource
    serve: ServeSettings
    identity: str  # the image id the driver expects every node's engine to have
    task_path: str
    task_hash: str
    split: str
    clips: list[int]
    batch_size: int


@dataclass
class ShippedTask:
    """A task folder's small files and one shard's audio, for a node that cannot see it."""

    files: dict[str, bytes]  # metadata, vocabulary and split files, by name
    audio: dict[str, bytes]  # relative path (<rate>/<split>/<file>) to the file's bytes


@dataclass
class StoredRows:
    """A split's embeddings by reference: the store's memory-mapped file, which every node
    sees where the store is on a shared filesystem (checked at start), so a probe unit
    maps the rows there instead of receiving them through the driver's memory."""

    path: str
    offset: int
    shape: tuple[int, ...]
    dtype: str

    def open(self) -> np.ndarray:
        return np.memmap(self.path, np.dtype(self.dtype), "r", self.offset, self.shape)


@dataclass
class Batch:
    """One committed-to-be batch as the node's BatchEmbedder made it (see SplitStore)."""

    clips: list[int]
    rows: np.ndarray
    rows_per_clip: list[int]
    frame_ms: np.ndarray | None
    clip_seconds: list[float]
    seconds: float


def here() -> Placement:
    """This worker's node and GPU."""
    context = ray.get_runtime_context()
    gpus = ray.get_gpu_ids()
    return Placement(
        node_id=context.get_node_id(),
        ip=ray.util.get_node_ip_address(),
        hostname=socket.gethostname(),
        gpu=str(gpus[0]) if gpus else None,
    )


@ray.remote(num_cpus=0, max_restarts=0)
class ModelServer:
    """One model's container on one node (and GPU), kept for every unit that node runs.

    It starts on the first :meth:`start` (so a failure comes back as the engine's own
    error), checks the node's image against the driver's, and starts again after its
    container died.
    """

    def __init__(
        self, source: ModelSource, serve: ServeSettings, identity: str, placement: Placement
    ) -> None:
        self.source, self.serve, self.identity, self.placement = source, serve, identity, placement
        self.running: RunningModel | None = None

    def start(self) -> Hello:
        if self.running is None:
            from hear_runner.engines.docker import DockerEngine

            engine = DockerEngine(self.serve.limits(), self.serve.sandbox())
            try:
                found = engine.check(self.source)  # a missing image is pulled
            except HearError as e:
                raise ImageError(f"node {self.placement.label}: {e}") from None
            check_identity(found, self.identity, self.source.ref, self.placement)
            self.running = engine.start(self.source, self.placement.gpu)
        hello = self.running.client.hello
        assert hello is not None
        return hello

    def scene(self, audio: np.ndarray, context: str) -> np.ndarray:
        return self._call("scene", audio, context)  # type: ignore[no-any-return]

    def timestamps(self, audio: np.ndarray, context: str) -> tuple[np.ndarray, np.ndarray]:
        return self._call("timestamps", audio, context)  # type: ignore[no-any-return]

    def _call(self, name: str, audio: np.ndarray, context: str) -> Any:
        assert self.running is not None
        try:
            return getattr(self.running.client, name)(audio, context)
        except ModelDied:
            self.running.close(graceful=False)
            self.running = None  # the next unit starts a fresh container
            raise

    def info(self) -> dict[str, Any]:
        """The server's device and use so far (a record's provenance)."""
        client = self.running.client if self.running else None
        hello, usage = (client.hello, client.usage) if client else (None, None)
        return {
            "node": self.placement.model_dump(),
            "device": hello.device if hello else None,
            "device_name": hello.device_name if hello else None,
            "peak_rss_bytes": usage.peak_rss_bytes if usage else None,
            "peak_gpu_bytes": usage.peak_gpu_bytes if usage else None,
            "calls": usage.calls if usage else 0,
            "provenance": self.running.provenance if self.running else {},
        }

    def stop(self) -> None:
        if self.running is not None:
            self.running.close()
            self.running = None


def check_identity(found: str, expected: str, ref: str, placement: Placement) -> None:
    """A node's image must be the driver's: the same tag can name other bytes elsewhere."""
    if expected and found != expected:
        raise ImageError(
            f"node {placement.label}: image {ref} is {found[:19]} there, but {expected[:19]} "
            "on the driver; push one image to a registry every node pulls from"
        )


def model_tag(source: ModelSource) -> str:
    """A short name of the model (its source's hash), in its servers' actor names."""
    return hashlib.sha256(source.model_dump_json().encode()).hexdigest()[:12]


def server_name(run_id: str, source: ModelSource, placement: Placement) -> str:
    """The named actor of (run, model, node, GPU): found again by every later unit there."""
    return f"{run_id}/{model_tag(source)}/{placement.node_id}/{placement.gpu or 'cpu'}"


def model_server(spec: UnitSpec, placement: Placement) -> Any:
    """This node's model server for the unit's run and model (started if not yet)."""
    return ModelServer.options(  # type: ignore[attr-defined]
        name=server_name(spec.run_id, spec.source, placement),
        namespace=NAMESPACE,
        get_if_exists=True,
        lifetime="detached",  # owned by the run (the driver stops it), not by this unit
        scheduling_strategy=NodeAffinitySchedulingStrategy(placement.node_id, soft=False),
    ).remote(spec.source, spec.serve, spec.identity, placement)


def unwrap(ref: Any) -> Any:
    """``ray.get``, raising a model's or a task's own error rather than Ray's wrapper."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        if isinstance(e.cause, HearError):
            raise e.cause from None
        raise


class ServerClient:
    """The node's model server as the embedding pipeline's client (``scene``,
    ``timestamps``, ``hello``, ``label``): every call goes to the actor."""

    def __init__(self, server: Any, hello: Hello, label: str) -> None:
        self.server, self.hello, self.label = server, hello, label

    def scene(self, audio: np.ndarray, context: str = "") -> np.ndarray:
        return unwrap(self.server.scene.remote(audio, context))  # type: ignore[no-any-return]

    def timestamps(self, audio: np.ndarray, context: str = "") -> tuple[np.ndarray, np.ndarray]:
        return unwrap(self.server.timestamps.remote(audio, context))  # type: ignore[no-any-return]


class Outbox:
    """The store a unit's BatchEmbedder writes to: each batch goes to the driver instead."""

    def __init__(self) -> None:
        self.batches: queue.Queue[Batch | BaseException | None] = queue.Queue(maxsize=2)

    def write_batch(
        self,
        clips: list[int],
        embeddings: np.ndarray | list[np.ndarray],
        rows_per_clip: list[int],
        frame_ms: np.ndarray | None,
        clip_seconds: list[float],
        seconds: float,
        stamps: list[Any],
    ) -> None:
        rows = np.concatenate(embeddings) if isinstance(embeddings, list) else embeddings
        self.batches.put(Batch(list(clips), rows, rows_per_clip, frame_ms, clip_seconds, seconds))


def task_view(path: str) -> str | None:
    """This node's content hash of the task folder at ``path``; None where it cannot see it."""
    folder = Path(path)
    if not (folder / "task_metadata.json").is_file():
        return None
    return Task(folder, audio=False).content_hash


@contextlib.contextmanager
def node_task(spec: UnitSpec, shipped: list[Any], placement: Placement) -> Iterator[Task]:
    """The unit's task: the shared folder where this node sees the driver's, else a folder
    made here from the shipped files (decoded and resampled here, as locally)."""
    seen = task_view(spec.task_path)
    if seen is not None:
        if seen != spec.task_hash:
            raise HearError(
                f"node {placement.label}: the task folder {spec.task_path} differs from the "
                f"driver's (content hash {seen}, the driver's {spec.task_hash})"
            )
        yield Task(Path(spec.task_path))
        return
    if not shipped:
        raise HearError(f"node {placement.label} cannot see the task folder {spec.task_path}")
    files: ShippedTask = ray.get(shipped[0])
    scratch = Path(tempfile.mkdtemp(prefix="hear-unit-"))
    try:
        folder = scratch / Path(spec.task_path).name
        for name, data in [*files.files.items(), *files.audio.items()]:
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        yield Task(folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@ray.remote(max_retries=0, num_returns="streaming")
def embed_unit(spec: UnitSpec, shipped: list[Any]) -> Iterator[Placement | Batch]:
    """Embed the unit's clips on this node; yield where it runs, then batch by batch.

    ``shipped`` is empty, or holds (unresolved) the reference to a :class:`ShippedTask`,
    fetched only when this node cannot see the task folder. Retries are the driver's: it
    resubmits only the clips whose batches it has not committed.
    """
    yield from embed_here(spec, shipped)


@ray.remote(max_retries=0)
def embed_unit_whole(spec: UnitSpec, shipped: list[Any]) -> list[Placement | Batch]:
    """:func:`embed_unit` for a driver on Ray Client, which carries no streaming tasks: the
    shard's batches come back together when it is done (a shard is 4 batches)."""
    return list(embed_here(spec, shipped))


def embed_here(spec: UnitSpec, shipped: list[Any]) -> Iterator[Placement | Batch]:
    """Where the unit runs, then its batches as the node's BatchEmbedder commits them."""
    from hear_runner.embed.pipeline import BatchEmbedder, SplitPlan

    placement = here()
    yield placement
    server = model_server(spec, placement)
    hello: Hello = unwrap(server.start.remote())
    label = f"{spec.source.display_name} on {placement.label}"
    with node_task(spec, shipped, placement) as task:
        client = ServerClient(server, hello, label)
        outbox = Outbox()
        plan = SplitPlan(task, spec.split, None, task.source_rate(hello.sample_rate), spec.clips)
        worker = BatchEmbedder(
            client,  # type: ignore[arg-type]
            task, spec.split, outbox, spec.batch_size, None,  # type: ignore[arg-type]
            spec.source.max_clip_seconds,
        )  # fmt: skip

        def work() -> None:
            try:
                worker.run(plan)
                outbox.batches.put(None)
            except BaseException as e:  # handed to the generator, which raises it
                outbox.batches.put(e)

        thread = threading.Thread(target=work, name="hear-unit", daemon=True)
        thread.start()
        while (item := outbox.batches.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
        thread.join()


@ray.remote(max_retries=0)
def view_unit(path: str) -> tuple[Placement, str | None]:
    """Run on one node (by affinity): its view of a task folder, for the start-up check."""
    return here(), task_view(path)


@ray.remote(max_retries=0)
def sweep_unit() -> list[str]:
    """On one node (by affinity): remove the containers of model servers that died with
    their process (a node's raylet killed mid-run, on a machine still up)."""
    from hear_runner.engines import leftovers
    from hear_runner.engines.docker import SOCKET_DIR, connect

    return leftovers.sweep_containers(connect(), SOCKET_DIR)


@ray.remote(max_retries=0)
def hello_unit(spec: UnitSpec) -> tuple[Placement, Hello]:
    """Start the model on some node with a Docker engine: its hello, before any unit."""
    placement = here()
    return placement, unwrap(model_server(spec, placement).start.remote())


@ray.remote(max_retries=0)
def store_view_unit(path: str, token: str) -> tuple[Placement, bool]:
    """Run on one node (by affinity): whether it sees the driver's embedding store (the
    token file the driver just wrote there, with its content)."""
    target = Path(path)
    return here(), target.is_file() and target.read_text() == token


@ray.remote(max_retries=1)
def probe_unit(
    problem: Any, mode: Any, seed: int, grid_points: int | None, threads: int, options: Any = None
) -> Any:
    """One seed's probe of one (model, task), trained as a local run trains it (with the
    driver's number of torch threads, so a CPU's sums come out the same). Splits sent as
    :class:`StoredRows` are mapped from the shared store here."""
    import dataclasses

    import torch

    from hear_runner.probes.stage import run_probe

    splits = {
        name: dataclasses.replace(split, embeddings=split.embeddings.open())
        if isinstance(split.embeddings, StoredRows)
        else split
        for name, split in problem.splits.items()
    }
    torch.set_num_threads(threads)
    problem = dataclasses.replace(problem, splits=splits)
    return here(), run_probe(problem, mode, [seed], grid_points, options=options)
