#!/usr/bin/env python3
"""What a cluster run of HEAR 2021 would cost: measured (model, task) costs replayed through
Ray's own scheduler on 1, 8, 32 and 128 simulated GPUs; makespan and utilization.

    python bench/ray_schedule.py --netns [--gpus 1,8,32,128] [--records DIR]
        [--out bench/results/ray-schedule.json] [--md bench/results/ray-schedule.md]

The workload is `hear run --ray`'s: one embedding unit per (model, task, shard of a split),
one probe unit per (model, task, seed) that takes the embedding units' ObjectRefs as
arguments, so Ray starts it only when they have all finished. A unit's cost is, in order
of preference, (1) measured at full size, by a `hear run` record (--records) or a row of
bench/results/full-size.json; (2) extrapolated to full size from rows (or records) below
it, with bench/full_size_report.py's fit; (3) estimated as `hear plan` estimates it
(hear_runner/plan/estimate.py's plan_row: the records' throughput, else the shipped
throughputs table) from the task's released size in plugins/hear_2021/catalogue.py. Every
cost names its source in the JSON.

This is a scheduling bench, not a model census. The measured costs are one model's (the
bench rows' hear/naive) on a 2-core CPU; the assumptions that turn them into 29 models'
GPU costs are stated in the output and set by options: a seeded log-normal factor per
model on embedding time (GPU throughput) and on probe time (embedding size), and a GPU
speed-up per stage.

The replay: for each GPU count N a fresh local Ray instance with N logical GPUs and N
``hear_docker`` resources (no real GPU is used) runs every unit as a task of
``num_gpus=1, num_cpus=0`` that sleeps its cost / --compress (chosen per N so that the
replay takes about --replay-seconds of wall time), recording its own start and end. N
sleeping workers are started and held before the clock starts (Ray starts at most one
worker per CPU at a time; worker start-up is not what is measured). Makespan is scaled
back to real seconds; utilization = the units' GPU seconds (their costs) / (N x makespan);
the lower bound is max(total / N, longest chain: an embedding shard then a probe). Beside
them: the units replayed without any overhead in the order Ray started them, and a greedy
list schedule in submission order, so that Ray's dispatch time per task (a millisecond,
multiplied by the compression) can be told apart from the order Ray chose.

Ray binds some of its ports on every address; --netns runs the bench inside a fresh
network namespace where loopback is the only interface, so nothing is reachable from
outside (needs root; by hand: unshare -n sh -c 'ip link set lo up; exec python
bench/ray_schedule.py ...'). Without root, run it on a machine whose other addresses are
firewalled.
"""

# ruff: noqa: RUF001  (the multiplication sign on purpose)
from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import shlex
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import full_size_report as report
import numpy as np
from machine import REPO, git_state, machine

sys.path[:0] = [str(REPO), str(REPO / "plugins")]  # this checkout's hear_runner and plugins

from hear_2021.catalogue import CATALOGUE, CatalogueTask  # noqa: E402

from hear_runner.plan.build import model_records  # noqa: E402
from hear_runner.plan.estimate import newest_first, plan_row  # noqa: E402
from hear_runner.plan.identify import PlannedModel  # noqa: E402
from hear_runner.plan.sizes import TaskSize  # noqa: E402
from hear_runner.plan.throughput import Throughputs, load_throughputs  # noqa: E402
from hear_runner.results.records import RunRecord  # noqa: E402

FULL_SIZE = REPO / "bench" / "results" / "full-size.json"
HEAR_2021_MODELS = 29  # submissions to HEAR 2021 (hearbenchmark.com leaderboard)
NETNS_ENV = "HEAR_BENCH_NETNS"  # set inside the namespace --netns re-executes in

Source = Literal["measured", "extrapolated", "estimated"]
SOURCE_RANK: dict[str, int] = {"measured": 0, "extrapolated": 1, "estimated": 2}


# ---------------------------------------------------------------- per-task costs


@dataclass(frozen=True)
class Cost:
    """Seconds of one stage on the measuring machine, and where the figure comes from."""

    seconds: float
    source: Source
    detail: str
    lower_bound: bool = False  # the run it comes from timed out


@dataclass(frozen=True)
class TaskCost:
    """The measured model's cost of one task: embedding (all splits) and probe (one seed)."""

    task: str
    embedding_type: str
    split_audio_seconds: dict[str, float]
    embed: Cost
    probe: Cost


def catalogue_size(task: CatalogueTask) -> TaskSize:
    """The task at its released size, as `hear plan` would size its prepared folder."""
    assert task.sized is not None  # every catalogued task has its sizes
    per_clip = task.sample_duration or task.sized.mean_duration or 0.0
    clips = dict(task.sized.split_clips)
    return TaskSize(
        name=task.folder,
        prepared=True,
        embedding_type=task.embedding_type,
        prediction_type=task.prediction_type,
        split_mode=task.split_mode,
        task_name=task.task_name,
        clips=clips,
        audio_seconds={split: n * per_clip for split, n in clips.items()},
    )


def _better(old: Cost | None, new: Cost | None) -> Cost | None:
    """The cost of the better source (measured, extrapolated, estimated); ties keep ``old``."""
    if new is None or (old is not None and SOURCE_RANK[old.source] <= SOURCE_RANK[new.source]):
        return old
    return new


def bench_row_costs(rows: list[dict], mode: str) -> dict[str, dict[str, Cost]]:
    """Per task, the embed and probe (``mode``) costs bench/full_size.py measured: a full-size
    row's own time, else the extrapolation full_size_report fits across the scales."""
    rows = json.loads(json.dumps(rows))  # annotate() writes into the rows
    report.annotate(rows)
    costs: dict[str, dict[str, Cost]] = {}
    for row in rows:
        runs = {"embed": row.get("embed"), "probe": (row.get("probes") or {}).get(mode)}
        stages = {"embed": "embed", "probe": f"probe {mode}"}
        where = f"bench/results/full-size.json, {row['model']} at scale {row['scale']}"
        for stage, run in runs.items():
            cost: Cost | None = None
            if run and report.scale_factor(row["scale"]) == 1.0:
                timed_out = run["status"] != "ok"
                cost = Cost(run["wall_s"], "measured", where, lower_bound=timed_out)
            elif run and (row.get("extrapolated") or {}).get(stages[stage]):
                fit = row["extrapolated"][stages[stage]]
                cost = Cost(
                    fit["seconds"],
                    "extrapolated",
                    f"{where}: {fit['method']}",
                    lower_bound=fit["lower_bound"],
                )
            per_task = costs.setdefault(row["task"], {})
            best = _better(per_task.get(stage), cost)
            if best is not None:
                per_task[stage] = best
    return costs


def record_costs(records: list[RunRecord], mode: str) -> dict[str, dict[str, Cost]]:
    """Per catalogue task, the embed and probe (``mode``, one seed) costs of `hear run`
    records: their own times when the record's task has the released clip count, else
    extrapolated linearly in clips (full_size_report.extrapolate with one point)."""
    by_task = {(t.task_name, t.mode): t for t in CATALOGUE}
    costs: dict[str, dict[str, Cost]] = {}
    for record in records:
        task = by_task.get((record.task.task_name, record.task.mode or ""))
        if task is None or task.sized is None:
            continue
        clips = sum(record.task.clips.values())
        factor = clips / sum(task.sized.split_clips.values())
        timings = record.timings
        stages = {
            "embed": timings.get("embed_wall"),
            "probe": timings.get("probe", 0) / len(record.probe.seeds)
            if record.probe.mode == mode
            else None,
        }
        for stage, seconds in stages.items():
            if not seconds:  # nothing embedded (all from the store), or another probe mode
                continue
            where = f"record of {record.model.name} on {record.task.name}, {record.created}"
            cost = Cost(seconds, "measured", where)
            if factor < 1:
                fit = report.extrapolate([report.Point(factor, clips, seconds)])
                assert fit is not None
                cost = Cost(fit["seconds"], "extrapolated", f"{where}: {fit['method']}")
            per_task = costs.setdefault(task.name, {})
            best = _better(per_task.get(stage), cost)
            if best is not None:
                per_task[stage] = best
    return costs


def estimated_costs(
    task: CatalogueTask, records: list[RunRecord], table: Throughputs, probe: tuple[str, int]
) -> dict[str, Cost]:
    """`hear plan`'s estimate of the task at its released size, for one seed."""
    model = PlannedModel(
        name="ray-schedule bench", table_name=None, store_folder=None, identity="a simulated model"
    )
    mode, grid_points = probe
    row = plan_row(
        model, catalogue_size(task), records, table, Path("/nonexistent"), (mode, grid_points, 1)
    )
    out = {}
    for stage, estimate in (("embed", row.embed), ("probe", row.probe)):
        assert estimate.seconds is not None  # the task is sized: the plan always estimates
        detail = f"hear plan ({estimate.source}): {estimate.detail}"
        out[stage] = Cost(estimate.seconds, "estimated", detail)
    return out


def task_costs(
    bench_rows: list[dict], records: list[RunRecord], table: Throughputs, probe: tuple[str, int]
) -> list[TaskCost]:
    """Every HEAR 2021 task's cost: the records', the bench rows', the plan's, best first."""
    measured = [record_costs(records, probe[0]), bench_row_costs(bench_rows, probe[0])]
    out = []
    for task in CATALOGUE:
        chosen = estimated_costs(task, records, table, probe)
        for stage in ("embed", "probe"):
            for costs in measured:
                best = _better(chosen[stage], costs.get(task.name, {}).get(stage))
                assert best is not None
                chosen[stage] = best
        out.append(
            TaskCost(
                task.name,
                task.embedding_type,
                catalogue_size(task).audio_seconds,
                chosen["embed"],
                chosen["probe"],
            )
        )
    return out


# ---------------------------------------------------------------- units of work


@dataclass(frozen=True)
class Assumptions:
    """What turns one model's CPU costs into 29 models' GPU costs (all stated in the JSON)."""

    models: int = HEAR_2021_MODELS
    seed: int = 2021
    embed_spread: float = 0.8
    probe_spread: float = 0.5
    gpu_speedup: float = 10.0
    probe_speedup: float = 5.0
    shard_seconds: float = 600.0
    seeds: int = 1
    unit_start_seconds: float = 0.0

    def model_factors(self) -> list[tuple[float, float]]:
        """(embedding, probe) time factor per model; model 0 is the measured model (1, 1)."""
        rng = np.random.default_rng(self.seed)
        embed = rng.lognormal(0.0, self.embed_spread, self.models)
        probe = rng.lognormal(0.0, self.probe_spread, self.models)
        return [(1.0, 1.0)] + [
            (float(e), float(p)) for e, p in zip(embed[1:], probe[1:], strict=True)
        ]


#: Each assumption's command-line help (its option is the field's name, dashed).
ASSUMPTION_HELP = {
    "models": "models in the workload (HEAR 2021 had 29 submissions)",
    "seed": "seed of the per-model factors",
    "embed_spread": "sigma of the log of each model's embedding time factor (GPU throughput)",
    "probe_spread": "sigma of the log of each model's probe time factor (embedding size)",
    "gpu_speedup": "a GPU's embedding speed over the 2-core CPU measured (assumed)",
    "probe_speedup": "a GPU's probe speed over the 2-core CPU measured (assumed)",
    "shard_seconds": "longest embedding unit, GPU seconds",
    "seeds": "probe units per (model, task)",
    "unit_start_seconds": "added to each embedding unit (a model container's start)",
}


@dataclass(frozen=True)
class Unit:
    """One Ray task of the run: GPU seconds, and the units it waits for (by index)."""

    name: str
    kind: Literal["embed", "probe"]
    seconds: float
    deps: tuple[int, ...] = ()


def shard(seconds: float, limit: float) -> list[float]:
    """``seconds`` cut into the fewest equal pieces of at most ``limit``."""
    pieces = max(1, math.ceil(seconds / limit))
    return [seconds / pieces] * pieces


def build_units(costs: list[TaskCost], assume: Assumptions) -> list[Unit]:
    """Every unit, in submission order: (model, task) pairs with the longest chain first,
    each pair's embedding shards (per split, in proportion to its audio) then its probes."""
    pairs = []
    for m, (embed_factor, probe_factor) in enumerate(assume.model_factors()):
        for cost in costs:
            embed = cost.embed.seconds * embed_factor / assume.gpu_speedup
            total_audio = sum(cost.split_audio_seconds.values())
            shards = [
                (split, piece + assume.unit_start_seconds)
                for split, audio in cost.split_audio_seconds.items()
                for piece in shard(embed * audio / total_audio, assume.shard_seconds)
            ]
            probe = cost.probe.seconds * probe_factor / assume.probe_speedup
            pairs.append(
                (max(s for _, s in shards) + probe, f"m{m:02d}/{cost.task}", shards, probe)
            )
    units: list[Unit] = []
    for _, name, shards, probe in sorted(pairs, key=lambda p: -p[0]):
        first = len(units)
        units += [
            Unit(f"{name}/embed/{split}#{i}", "embed", s) for i, (split, s) in enumerate(shards)
        ]
        deps = tuple(range(first, len(units)))
        units += [Unit(f"{name}/probe/seed{k}", "probe", probe, deps) for k in range(assume.seeds)]
    return units


def lower_bound(units: Sequence[Unit], gpus: int) -> float:
    """No schedule beats the work spread evenly, nor a probe after its longest shard."""
    chain = max(u.seconds + max((units[d].seconds for d in u.deps), default=0.0) for u in units)
    return max(sum(u.seconds for u in units) / gpus, chain)


def list_schedule(units: Sequence[Unit], gpus: int, rank: Sequence[int] | None = None) -> float:
    """Makespan of greedy list scheduling without overhead: whenever a GPU is free, the
    ready unit first in ``rank`` (default: submission order) starts on it."""
    rank = rank or range(len(units))
    waiting = [len(u.deps) for u in units]
    dependents: list[list[int]] = [[] for _ in units]
    for i, unit in enumerate(units):
        for d in unit.deps:
            dependents[d].append(i)
    ready = [(rank[i], i) for i, n in enumerate(waiting) if n == 0]
    heapq.heapify(ready)
    running: list[tuple[float, int]] = []
    now = 0.0
    while ready or running:
        while ready and len(running) < gpus:
            _, i = heapq.heappop(ready)
            heapq.heappush(running, (now + units[i].seconds, i))
        now, done = heapq.heappop(running)
        for j in dependents[done]:
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, (rank[j], j))
    return now


# ---------------------------------------------------------------- the replay


def _sleep_unit(
    seconds: float, *finished: tuple[float, float, float]
) -> tuple[float, float, float]:
    """A unit on a worker: (start, end, latest end of the units it waited for)."""
    start = time.time()
    time.sleep(seconds)
    return start, time.time(), max((span[1] for span in finished), default=0.0)


def _hold_worker(folder: str, workers: int, timeout: float) -> int:
    """Keep this worker busy until ``workers`` of them are (a barrier through files)."""
    Path(folder, str(os.getpid())).touch()
    deadline = time.time() + timeout
    while len(os.listdir(folder)) < workers and time.time() < deadline:
        time.sleep(0.2)
    return os.getpid()


@dataclass
class Replay:
    gpus: int
    compress: float
    spans: list[tuple[float, float, float]]  # per unit: start, end, its inputs' latest end
    t0: float  # when the first unit was submitted
    warm_up_s: float
    workers: int
    wall_s: float = field(default=0.0)


def replay(units: Sequence[Unit], gpus: int, compress: float, cpus: int = 2) -> Replay:
    """Run every unit through a fresh local Ray instance with ``gpus`` logical GPUs."""
    import ray

    temp = tempfile.mkdtemp(prefix="ray-sched-")
    ray.init(
        address="local",
        num_cpus=cpus,
        num_gpus=gpus,
        resources={"hear_docker": gpus},
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        _temp_dir=temp,
        log_to_driver=False,
        _system_config={"num_workers_soft_limit": gpus + cpus},
    )
    try:
        # A unit holds one GPU and the Docker engine's slot, as `hear run --ray`'s do; no CPU,
        # so that 128 sleeping units need no 128 CPUs; max_calls=0: reuse GPU workers.
        one_gpu = ray.remote(num_cpus=0, num_gpus=1, resources={"hear_docker": 1}, max_calls=0)
        unit_task = one_gpu(_sleep_unit)
        begin = time.time()
        with tempfile.TemporaryDirectory(dir=temp) as barrier:
            hold = one_gpu(_hold_worker)
            held = ray.get([hold.remote(barrier, gpus, 300.0) for _ in range(gpus)])
        t0 = time.time()
        refs: list[Any] = []
        for unit in units:
            refs.append(unit_task.remote(unit.seconds / compress, *(refs[d] for d in unit.deps)))
        spans = ray.get(refs)
        out = Replay(gpus, compress, spans, t0, t0 - begin, len(set(held)))
        out.wall_s = time.time() - t0
        return out
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


def outcome(units: Sequence[Unit], run: Replay) -> dict[str, Any]:
    """Makespan, utilization and bound of one replay, in real (uncompressed) seconds."""
    c = run.compress
    makespan = (max(end for _, end, _ in run.spans) - run.t0) * c
    busy = sum(end - start for start, end, _ in run.spans) * c
    work = sum(u.seconds for u in units)
    bound = lower_bound(units, run.gpus)
    listed = list_schedule(units, run.gpus)
    started = sorted(range(len(units)), key=lambda i: run.spans[i][0])
    ray_rank = [0] * len(units)
    for position, i in enumerate(started):
        ray_rank[i] = position
    ray_order = list_schedule(units, run.gpus, ray_rank)
    order_ok = all(start >= inputs for start, _, inputs in run.spans)
    return {
        "gpus": run.gpus,
        "units": len(units),
        "makespan_s": round(makespan, 1),
        "makespan_h": round(makespan / 3600, 3),
        "utilization": round(work / (run.gpus * makespan), 4),
        "work_s": round(work, 1),
        "busy_measured_s": round(busy, 1),
        "ray_overhead_wall_s": round((makespan - ray_order) / c, 2),
        "ray_order_s": round(ray_order, 1),
        "ray_order_ratio": round(ray_order / bound, 4),
        "lower_bound_s": round(bound, 1),
        "ratio": round(makespan / bound, 4),
        "list_schedule_s": round(listed, 1),
        "list_schedule_ratio": round(listed / bound, 4),
        "compress": round(c, 3),
        "replay_wall_s": round(run.wall_s, 2),
        "warm_up_s": round(run.warm_up_s, 2),
        "workers_held": run.workers,
        "probes_after_their_embeddings": order_ok,
    }


def unit_spans(units: Sequence[Unit], run: Replay) -> list[dict[str, Any]]:
    """Each unit's start and end in real seconds from the first submission (--spans)."""
    c = run.compress
    return [
        {
            "name": u.name,
            "kind": u.kind,
            "deps": list(u.deps),
            "seconds": u.seconds,
            "start": (start - run.t0) * c,
            "end": (end - run.t0) * c,
        }
        for u, (start, end, _) in zip(units, run.spans, strict=True)
    ]


# ---------------------------------------------------------------- output


def markdown(result: dict[str, Any]) -> str:
    assume = result["assumptions"]
    lines = [
        "# HEAR 2021 on a cluster: the scheduling bench",
        "",
        f"Made by `{result['command']}` ({result['generated']}).",
        "",
        f"{assume['models']} models × {len(result['tasks'])} HEAR 2021 tasks, probe mode "
        f"`{result['probe_mode']}` ({result['grid_points']} grid points), "
        f"{assume['seeds']} seed(s); embedding units of at most "
        f"{assume['shard_seconds']:g} GPU s. Each unit replayed as a sleeping Ray task "
        "(`num_gpus=1`, `num_cpus=0`) on a local Ray "
        f"{result['ray_version']} with N logical GPUs, time compressed per N. Makespan and "
        "utilization are Ray's, scaled back to real seconds; list schedule: the same units "
        "greedily without any overhead.",
        "",
        "| GPUs | units | makespan (h) | utilization | makespan / lower bound "
        "| Ray's order, no overhead / bound | lower bound (h) | compress | replay wall s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["runs"]:
        lines.append(
            f"| {r['gpus']} | {r['units']} | {r['makespan_h']:.2f} | {r['utilization']:.1%} "
            f"| {r['ratio']:.3f} | {r['ray_order_ratio']:.3f} "
            f"| {r['lower_bound_s'] / 3600:.2f} | {r['compress']:,.0f} | {r['replay_wall_s']:.1f} |"
        )
    lines += [
        "",
        "Utilization: the units' GPU seconds over GPUs × makespan. Lower bound: max(GPU "
        "seconds / GPUs, the longest embedding shard + probe chain). Ray's order, no overhead: "
        "the units started in the order Ray started them, with no time between them; the gap "
        "to makespan / lower bound is Ray's dispatch time per task (about a millisecond of "
        "wall time here) multiplied by the compression, an artefact of the replay, which a "
        "real run's units (minutes to hours) would not feel.",
    ]
    lines += [
        "",
        "Assumptions (this is about scheduling; the costs are one model's, measured on a "
        "2-core CPU):",
        "",
        *[f"- {text}" for text in result["assumption_notes"]],
        "",
        "Per-task costs of the measured model (model 0), before the factors above "
        "(CPU seconds; probe: one seed):",
        "",
        "| task | embed s | source | probe s | source |",
        "|---|---:|---|---:|---|",
    ]
    for t in result["tasks"]:
        cells = []
        for stage in ("embed", "probe"):
            cost = t[stage]
            bound = "≥ " if cost["lower_bound"] else ""
            cells.append(f"{bound}{cost['seconds']:,.0f} | {cost['source']}")
        lines.append(f"| {t['task']} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def assumption_notes(assume: Assumptions) -> list[str]:
    return [
        f"{assume.models} models (HEAR 2021's submissions): model 0 is the measured one; the "
        f"others' embedding times are its own × a log-normal factor (σ = "
        f"{assume.embed_spread:g} of the log, seed {assume.seed}: GPU throughput varies), "
        f"their probe times × another (σ = {assume.probe_spread:g}: embedding sizes vary).",
        f"A GPU embeds {assume.gpu_speedup:g}× and probes {assume.probe_speedup:g}× as fast as "
        "the 2-core CPU the costs were measured on.",
        f"Each task's embedding is cut per split (in proportion to its audio) into shards of "
        f"at most {assume.shard_seconds:g} GPU s; each shard costs "
        f"{assume.unit_start_seconds:g} s more (a model container's start).",
        "Costs: measured at full size where a record or bench row has it, else extrapolated "
        "to full size (bench/full_size_report.py), else estimated as `hear plan` does "
        "(hear_runner/plan); ≥ marks a cost from a run that timed out (a lower bound).",
    ]


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    import ray

    assume = Assumptions(**{name: getattr(args, name) for name in ASSUMPTION_HELP})
    records = _records(args.records, args.records_model)
    bench_rows = json.loads(args.full_size.read_text())["rows"] if args.full_size else []
    costs = task_costs(bench_rows, records, load_throughputs(), (args.probe, args.grid_points))
    if args.tasks:
        costs = [c for c in costs if c.task in args.tasks]
    units = build_units(costs, assume)
    runs, spans = [], []
    for gpus in args.gpus:
        compress = args.compress or lower_bound(units, gpus) / args.replay_seconds
        done = replay(units, gpus, compress)
        runs.append(outcome(units, done))
        spans.append({"gpus": gpus, "units": unit_spans(units, done)})
        print(json.dumps(runs[-1]), flush=True)
    if args.spans:
        args.spans.write_text(json.dumps(spans) + "\n")
    return {
        "schema": "hear-ray-schedule/1",
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", "bench/ray_schedule.py", *args.argv]),
        "machine": machine(),
        "git": git_state("bench", "hear_runner"),
        "ray_version": ray.__version__,
        "network_interfaces": sorted(name for _, name in socket.if_nameindex()),
        "probe_mode": args.probe,
        "grid_points": args.grid_points,
        "assumptions": asdict(assume),
        "assumption_notes": assumption_notes(assume),
        "model_factors": [
            {"model": m, "embed": round(e, 4), "probe": round(p, 4)}
            for m, (e, p) in enumerate(assume.model_factors())
        ],
        "tasks": [asdict(c) for c in costs],
        "unit_counts": {kind: sum(u.kind == kind for u in units) for kind in ("embed", "probe")},
        "total_gpu_s": round(sum(u.seconds for u in units), 1),
        "runs": runs,
    }


def _records(folder: Path | None, model: str | None) -> list[RunRecord]:
    """One model's newest record per task (the named one, else the one with most tasks)."""
    if folder is None:
        return []
    by_model = model_records(folder)
    if not by_model:
        raise SystemExit(f"{folder}: no result records")
    name = model or max(by_model, key=lambda m: (len(by_model[m]), m))
    if name not in by_model:
        raise SystemExit(f"{folder}: no records of {name}; there are {', '.join(by_model)}")
    return newest_first(by_model[name])


def _list(kind: Callable[[str], Any]) -> Callable[[str], list]:
    return lambda text: [kind(x) for x in text.split(",") if x]


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The module docstring as written; defaults shown where there is one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=_HelpFormatter)
    p.add_argument("--gpus", type=_list(int), default=[1, 8, 32, 128], help="GPU counts")
    p.add_argument("--records", type=Path, help="`hear run` results folder: measured costs")
    p.add_argument("--records-model", help="whose records (default: the most tasks)")
    p.add_argument(
        "--full-size",
        type=Path,
        default=FULL_SIZE,
        help="bench/full_size.py's results (measured and extrapolated costs)",
    )
    p.add_argument("--tasks", type=_list(str), help="only these catalogue tasks (tests)")
    p.add_argument("--probe", default="fast", help="probe mode (`hear run --probe`)")
    p.add_argument("--grid-points", type=int, default=8, help="`hear run --grid-points`")
    for name, help_text in ASSUMPTION_HELP.items():
        default = getattr(Assumptions(), name)
        option = "--" + name.replace("_", "-")
        p.add_argument(option, type=type(default), default=default, help=help_text)
    p.add_argument(
        "--compress",
        type=float,
        help="real seconds per replayed second (default: per GPU count, "
        "lower bound / --replay-seconds)",
    )
    p.add_argument(
        "--replay-seconds",
        type=float,
        default=30.0,
        help="wall time each GPU count's replay aims at",
    )
    p.add_argument(
        "--netns",
        action="store_true",
        help="re-run inside a fresh network namespace (unshare -n; root)",
    )
    p.add_argument("--out", type=Path, default=REPO / "bench/results/ray-schedule.json")
    p.add_argument("--md", type=Path, help="markdown table (default: --out with .md)")
    p.add_argument("--spans", type=Path, help="also write every unit's start and end here")
    args = p.parse_args(argv)
    args.argv = argv
    return args


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.netns and not os.environ.get(NETNS_ENV):
        os.environ[NETNS_ENV] = "1"
        script = 'ip link set lo up && exec "$0" "$@"'
        os.execvp(
            "unshare",
            [
                "unshare",
                "-n",
                "sh",
                "-c",
                script,
                sys.executable,
                str(Path(__file__).resolve()),
                *argv,
            ],
        )
    result = run_bench(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    md = args.md or args.out.with_suffix(".md")
    md.write_text(markdown(result))
    print(f"wrote {args.out} and {md}")


if __name__ == "__main__":
    main()
