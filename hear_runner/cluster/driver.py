"""The driver of a run on Ray: units out to the nodes, batches back into the store.

`hear run --ray ADDRESS` evaluates as a local run does (hear_runner.evaluate), with two
parts replaced: a split's missing clips are cut into shards, each embedded by a unit on
some node (:func:`hear_runner.cluster.node.embed_unit`), whose batches this process alone
commits to the store; and each seed's probe is a unit too. A unit lost with its node is
submitted again for the clips not yet committed, so finished batches are never recomputed;
a model that keeps crashing fails after MAX_ATTEMPTS with its own one-line error.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import ray
from rich.console import Console
from rich.markup import escape

from hear_runner.cluster.connect import NAMESPACE, RESOURCE, ClusterInfo, connect
from hear_runner.cluster.node import (
    Batch,
    Placement,
    ShippedTask,
    StoredRows,
    UnitSpec,
    embed_unit,
    embed_unit_whole,
    hello_unit,
    model_tag,
    probe_unit,
    store_view_unit,
    sweep_unit,
    unwrap,
    view_unit,
)
from hear_runner.contract.messages import Hello
from hear_runner.embed.pipeline import SplitPlan, fill_split, split_stamps
from hear_runner.embed.split import SplitEmbeddings
from hear_runner.embed.store import EmbeddingStore, ModelKey, SplitStore
from hear_runner.engines.base import ModelSource
from hear_runner.engines.settings import ServeSettings
from hear_runner.errors import HearError, ModelDied, one_line
from hear_runner.progress import progress
from hear_runner.tasks.folder import METADATA_FILE, VOCABULARY_FILE, Task

#: Tries of one shard (its first included) before the run fails.
MAX_ATTEMPTS = 3

#: Batches per embedding unit: small enough that a lost node costs little, large enough
#: that a unit's start (finding its node's model server) is paid rarely.
SHARD_BATCHES = 4


class Cluster:
    """A joined Ray cluster: the run's id, where task folders are seen, its model servers."""

    def __init__(self, info: ClusterInfo, serve: ServeSettings, console: Console) -> None:
        self.info, self.serve, self.console = info, serve, console
        self.run_id = f"run-{uuid.uuid4().hex[:12]}"
        self.shipping: dict[str, bool] = {}  # task path: some node cannot see it
        gpus = ray.cluster_resources().get("GPU", 0)
        self.unit_gpus = 1 if gpus else 0
        self.slots = max(1, int(sum(n.resources.get(RESOURCE, 0) for n in info.nodes)))
        self.probe_nodes: list[dict[str, Any]] = []  # the last probe's units: seed, node, GPU
        self.store_shared = False  # every Docker node sees the driver's embedding store
        self.client = info.address.startswith("ray://")  # Ray Client: no streaming tasks

    def check_store(self, root: Path) -> None:
        """Whether every node with a Docker engine sees the embedding store at ``root`` (a
        shared filesystem): then probe units map the stored rows themselves, and the driver
        sends paths, not gigabytes, through its memory."""
        import secrets

        token = root / f".hear-cluster-{self.run_id}"
        try:
            root.mkdir(parents=True, exist_ok=True)
            token.write_text(secret := secrets.token_hex(16))
            views = self.on_docker_nodes(store_view_unit, str(token.resolve()), secret)
        finally:
            token.unlink(missing_ok=True)
        self.store_shared = bool(views) and all(seen for _, seen in views)

    def check_tasks(self, tasks: list[Task]) -> None:
        """Every node with a Docker engine sees each task folder as the driver does, or not
        at all (its audio is then shipped); a node that sees another folder is an error."""
        for task in tasks:
            views = self.on_docker_nodes(view_unit, str(task.path.resolve()))
            expected = task.content_hash
            missing = []
            for placement, seen in views:
                if seen is None:
                    missing.append(placement.label)
                elif seen != expected:
                    raise HearError(
                        f"node {placement.label} sees another task folder at {task.path} "
                        f"(content hash {seen}, the driver's {expected})"
                    )
            self.shipping[str(task.path.resolve())] = bool(missing)
            if missing:
                self.console.print(
                    f"[yellow]cluster[/] {escape(task.name)}: not seen by "
                    f"{escape(', '.join(missing))}; its audio goes to them through Ray's "
                    "object store",
                    soft_wrap=True,
                    highlight=False,
                )

    def model(
        self, source: ModelSource, key: ModelKey, identity: str, store: EmbeddingStore
    ) -> ClusterModel:
        return ClusterModel(self, source, key, identity, store)

    def run_probe(
        self,
        problem: Any,
        mode: Any,
        seeds: list[int],
        grid_points: int | None,
        on_trained: Callable[[int], None] | None = None,
        options: Any = None,
        on_epoch: Callable[[Any], None] | None = None,
    ) -> Any:
        """One probe unit per seed; their outcomes joined in seed order (as one local run's).

        Takes the local :func:`~hear_runner.probes.stage.run_probe`'s arguments. A unit
        trains on a node, out of the driver's sight, so ``on_epoch`` is not told: progress
        advances per seed, as each unit's trainings come back."""
        import torch

        from hear_runner.probes.stage import trainings

        started = time.perf_counter()
        shared = ray.put(self.by_reference(problem) if self.store_shared else problem)
        cpus = max(n.resources.get("CPU", 1) for n in self.info.nodes)
        threads = int(min(torch.get_num_threads(), cpus))
        units = [
            probe_unit.options(  # type: ignore[attr-defined]
                num_gpus=self.unit_gpus, num_cpus=threads
            ).remote(shared, mode, seed, grid_points, threads, options)
            for seed in seeds
        ]
        outcome, self.probe_nodes = None, []
        for seed, unit in zip(seeds, units, strict=True):
            placement, part = unwrap(unit)
            self.probe_nodes.append({"seed": seed, **placement.model_dump()})
            if on_trained:
                on_trained(trainings(problem, mode, [seed], grid_points, options))
            if outcome is None:
                outcome = part
            else:
                outcome.seeds += part.seeds
                outcome.folds += part.folds
                outcome.predictions += part.predictions
        assert outcome is not None
        outcome.seconds = time.perf_counter() - started
        return outcome

    @staticmethod
    def by_reference(problem: Any) -> Any:
        """``problem`` with each split held whole in a store file sent as that file's place."""
        import dataclasses
        import os

        splits = {}
        for name, split in problem.splits.items():
            rows = split.embeddings
            whole = (
                isinstance(rows, np.memmap)
                and rows.filename is not None
                and rows.offset + rows.nbytes == os.path.getsize(rows.filename)
            )
            splits[name] = (
                dataclasses.replace(split, embeddings=StoredRows(
                    str(rows.filename), rows.offset, rows.shape, rows.dtype.str))
                if whole
                else split
            )  # fmt: skip
        return dataclasses.replace(problem, splits=splits)

    def servers(self, prefix: str = "") -> Iterator[Any]:
        """The run's model servers (of one model, with ``prefix``), wherever they run."""
        for entry in ray.util.list_named_actors(all_namespaces=True):
            name = entry["name"]
            if entry["namespace"] == NAMESPACE and name.startswith(f"{self.run_id}/{prefix}"):
                try:
                    yield ray.get_actor(name, namespace=NAMESPACE)
                except ValueError:  # gone with its node meanwhile
                    continue

    def close(self, graceful: bool = True) -> None:
        """Stop every model container the run started, on every node; then leave."""
        servers = list(self.servers())
        if graceful and servers:
            ray.wait([s.stop.remote() for s in servers], num_returns=len(servers), timeout=30)
        for server in servers:
            ray.kill(server)
        self.on_docker_nodes(sweep_unit, timeout=60)
        ray.shutdown()

    def on_docker_nodes(self, unit: Any, *args: Any, timeout: float | None = None) -> list[Any]:
        """``unit`` run once on every live node with a Docker engine (Ray's node affinity)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        refs = [
            unit.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(n.node_id, soft=False),
                num_cpus=0,
            ).remote(*args)
            for n in self.info.nodes
            if n.resources.get(RESOURCE) and n.node_id in alive
        ]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
        return [ray.get(r) for r in ready]


class ClusterModel:
    """One model on the cluster: what :class:`hear_runner.evaluate.ModelOnDemand` is locally."""

    def __init__(
        self,
        cluster: Cluster,
        source: ModelSource,
        key: ModelKey,
        identity: str,
        store: EmbeddingStore,
    ) -> None:
        self.cluster, self.source, self.key, self.store = cluster, source, key, store
        self.identity = identity
        self.start_seconds = 0.0
        self._hello: Hello | None = None
        self.splits: dict[str, list[dict[str, Any]]] = {}  # "<task>/<split>": units' nodes

    def spec(self, task: Task, split: str, clips: list[int], batch_size: int) -> UnitSpec:
        return UnitSpec(
            run_id=self.cluster.run_id, source=self.source, serve=self.cluster.serve,
            identity=self.identity, task_path=str(task.path.resolve()),
            task_hash=task.content_hash, split=split, clips=clips, batch_size=batch_size,
        )  # fmt: skip

    def hello(self) -> Hello:
        """The model's hello, from its server on the first node a unit reaches."""
        if self._hello is None:
            started = time.perf_counter()
            spec = UnitSpec(
                run_id=self.cluster.run_id, source=self.source, serve=self.cluster.serve,
                identity=self.identity, task_path="", task_hash="", split="", clips=[],
                batch_size=1,
            )  # fmt: skip
            _, self._hello = unwrap(
                hello_unit.options(  # type: ignore[attr-defined]
                    resources={RESOURCE: 1}, num_gpus=self.cluster.unit_gpus
                ).remote(spec)
            )
            self.start_seconds = time.perf_counter() - started
            self.store.save_model_info(
                self.key, {"hello": self._hello.model_dump(), "provenance": self.provenance()}
            )
        return self._hello

    def provenance(self) -> dict[str, Any]:
        """The cluster, each server's node and device, and which nodes embedded each split."""
        servers = []
        for server in self.cluster.servers(model_tag(self.source)):
            try:
                servers.append(ray.get(server.info.remote(), timeout=60))
            except ray.exceptions.RayError:  # gone with its node: its splits still name it
                continue
        first: dict[str, Any] = next((s["provenance"] for s in servers if s["provenance"]), {})
        return {
            **first,
            "engine": "ray",
            "ray": {**self.cluster.info.model_dump(), "store_shared": self.cluster.store_shared},
            "servers": servers,
            "splits": dict(self.splits),
        }

    def embed_task(
        self,
        task: Task,
        batch_size: int,
        console: Console,
        stores: dict[str, SplitStore],
        stored: dict[str, SplitEmbeddings],
    ) -> dict[str, SplitEmbeddings]:
        """Every split not in ``stored``, embedded by units over the cluster."""
        embedded = dict(stored)
        rate = task.source_rate(self.hello().sample_rate)
        with progress(console) as bars:
            for split in task.splits:
                if split in embedded:
                    continue
                bar = bars.add_task(f"{task.name} · {split}", total=len(task.clips(split)))
                spread = SplitUnits(self, task, split, stores[split], batch_size, rate, bars, bar)
                embedded[split] = fill_split(
                    task, split, stores[split], rate, spread.run, batch_size,
                    lambda n, audio, bar=bar: bars.advance(bar, n, audio),  # type: ignore[misc]
                )  # fmt: skip
                self.splits[f"{task.name}/{split}"] = list(spread.placements.values())
        return embedded

    def __enter__(self) -> ClusterModel:
        return self

    def __exit__(self, *_: object) -> None:
        return None


class SplitUnits:
    """One split's missing clips, as units over the cluster; their batches committed here."""

    def __init__(
        self,
        model: ClusterModel,
        task: Task,
        split: str,
        store: SplitStore,
        batch_size: int,
        rate: int,
        bars: Any,
        bar: int,
    ) -> None:
        self.model, self.task, self.split, self.store = model, task, split, store
        self.batch_size, self.rate, self.bars, self.bar = batch_size, rate, bars, bar
        self.stamps = split_stamps(task, split, rate)
        self.ship = model.cluster.shipping.get(str(task.path.resolve()), False)
        self.lock = threading.Lock()
        self.node_bars: dict[str, int] = {}
        self.placements: dict[str, dict[str, Any]] = {}  # node label: where, and clips it embedded
        self.stopped = threading.Event()
        self.streams: set[Any] = set()  # units in flight, cancelled when the run stops

    def run(self, plan: SplitPlan) -> list[int]:
        """Embed ``plan.todo`` in shards, as many at once as the cluster has slots."""
        size = self.batch_size * SHARD_BATCHES
        shards = [plan.todo[i : i + size] for i in range(0, len(plan.todo), size)]
        workers = min(self.model.cluster.slots, len(shards)) or 1
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hear-unit") as pool:
            futures = [pool.submit(self.shard, shard) for shard in shards]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                self.stop()
                raise
        return [self.batch_size]

    def stop(self) -> None:
        """After an error or Ctrl-C: no new unit starts, and those in flight are cancelled."""
        self.stopped.set()
        with self.lock:
            streams = list(self.streams)
        for stream in streams:
            try:
                ray.cancel(stream, force=True)
            except Exception:  # finished meanwhile
                continue

    def shard(self, clips: list[int]) -> None:
        """One shard, submitted again (for what is left) after its unit was lost."""
        remaining = list(clips)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if self.stopped.is_set() or not remaining:
                return
            placement: Placement | None = None
            try:
                for item in self.unit(remaining):
                    if isinstance(item, Placement):
                        placement = item
                        continue
                    self.commit(item, placement)
                    done = set(item.clips)
                    remaining = [c for c in remaining if c not in done]
                return
            except (ModelDied, ray.exceptions.RayError) as e:
                if self.stopped.is_set():
                    return
                where = placement.label if placement else "an unknown node"
                if _fatal(e) or attempt == MAX_ATTEMPTS:
                    if isinstance(e, ModelDied):
                        raise
                    raise HearError(
                        f"{self.task.name} · {self.split}: a unit failed {attempt} times, last "
                        f"on {where}: {one_line(e).split(' Traceback')[0][:300]}"
                    ) from None
                self.model.cluster.console.print(
                    f"[yellow]cluster[/] {escape(self.task.name)} · {self.split}: a unit on "
                    f"{where} was lost ({type(e).__name__}); its {len(remaining)} clips not "
                    "committed go again",
                    soft_wrap=True,
                    highlight=False,
                )

    def unit(self, clips: list[int]) -> Iterator[Placement | Batch]:
        """One unit's items as they come (through Ray Client, which carries no streaming
        tasks, all at the unit's end); the unit counts as in flight meanwhile."""
        spec = self.model.spec(self.task, self.split, clips, self.batch_size)
        shipped = [ray.put(self.shipped(clips))] if self.ship else []
        options = {"resources": {RESOURCE: 1}, "num_gpus": self.model.cluster.unit_gpus}
        whole = self.model.cluster.client
        function: Any = embed_unit_whole if whole else embed_unit
        unit = function.options(**options).remote(spec, shipped)
        with self.lock:
            self.streams.add(unit)
        try:
            yield from unwrap(unit) if whole else (unwrap(ref) for ref in unit)
        finally:
            with self.lock:
                self.streams.discard(unit)

    def shipped(self, clips: list[int]) -> ShippedTask:
        """The task's small files and these clips' audio, for nodes that cannot see it."""
        path = self.task.path
        names = [METADATA_FILE, VOCABULARY_FILE, *(f"{s}.json" for s in self.task.splits)]
        files = {name: (path / name).read_bytes() for name in names if (path / name).exists()}
        audio = {}
        for i in clips:
            file = self.task.clips(self.split)[i].file
            audio[f"{self.rate}/{self.split}/{file}"] = self.task.audio_path(
                self.split, file, self.rate
            ).read_bytes()
        return ShippedTask(files, audio)

    def commit(self, batch: Batch, placement: Placement | None) -> None:
        """Write a unit's batch to the store (this process alone writes it) and count it."""
        assert placement is not None
        with self.lock:
            self.store.write_batch(
                batch.clips, batch.rows, batch.rows_per_clip, batch.frame_ms,
                batch.clip_seconds, batch.seconds, [self.stamps[i] for i in batch.clips],
            )  # fmt: skip
            node = placement.label + (f" GPU {placement.gpu}" if placement.gpu else "")
            if node not in self.node_bars:
                self.node_bars[node] = self.bars.add_task(f"  on {node}", total=None)
                self.placements[node] = {**placement.model_dump(), "clips": 0}
            self.placements[node]["clips"] += len(batch.clips)
            audio = sum(batch.clip_seconds)
            self.bars.advance(self.node_bars[node], len(batch.clips), audio)
            self.bars.advance(self.bar, len(batch.clips), audio)


def _fatal(error: BaseException) -> bool:
    """A unit's own failure (a bug, not a lost node or worker): trying again cannot help."""
    return isinstance(error, ray.exceptions.RayTaskError) and not isinstance(
        error.cause, ray.exceptions.RayError
    )


@contextlib.contextmanager
def joined(address: str, serve: ServeSettings, console: Console) -> Iterator[Cluster]:
    """The cluster at ``address`` for a run; left at the end, with every model container
    the run started on any node stopped (at once after an error or Ctrl-C)."""
    info = connect(address, RESOURCE)
    cluster = Cluster(info, serve, console)
    console.print(
        f"[bold]cluster[/] {address}: {len(info.nodes)} nodes, "
        f"{cluster.slots} model slots, Ray {info.ray_version}",
        highlight=False,
    )
    try:
        yield cluster
    except BaseException:
        cluster.close(graceful=False)
        raise
    cluster.close()
