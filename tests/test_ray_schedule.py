"""bench/ray_schedule.py: a tiny HEAR workload replayed through a real local Ray scheduler
(2 models x 3 tasks on 3 logical GPUs), and the schedule arithmetic it is judged by."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_stats import record_with_predictions

from hear_runner.results.records import ProbeInfo

ROOT = Path(__file__).parent.parent
SCRIPT = ROOT / "bench" / "ray_schedule.py"
sys.path.insert(0, str(ROOT / "bench"))

import ray_schedule as bench  # noqa: E402

TASKS = ["dcase2016_task2", "maestro", "esc50"]


def _netns() -> list[str]:
    """--netns where this user may make a network namespace (keeps Ray on loopback)."""
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        return []
    works = subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0
    return ["--netns"] if works else []


def test_replay_through_ray_keeps_order_and_bounds(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the replay needs Ray (pip install ray)")
    out, spans_file = tmp_path / "schedule.json", tmp_path / "spans.json"
    # Embedding made 100x dearer than by default, so that shards run as long as probes:
    # a probe let loose before its shards end would show. Shards of at most 100 s: the
    # measured full-size embeddings (DCASE's train split ~290 s at this speed, a MAESTRO
    # fold ~250 s) fit whole in 300 s, and the cutting would go untested.
    netns = _netns()
    command = [sys.executable, str(SCRIPT), *netns, "--models", "2",
               "--tasks", ",".join(TASKS), "--gpus", "3", "--seeds", "2", "--gpu-speedup",
               "0.1", "--shard-seconds", "100", "--replay-seconds", "2", "--out", str(out),
               "--spans", str(spans_file)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]

    result = json.loads(out.read_text())
    [run] = result["runs"]
    if netns:  # Ray ran where loopback is the only interface
        assert result["network_interfaces"] == ["lo"]
    assert sorted(t["task"] for t in result["tasks"]) == sorted(TASKS)
    assert result["unit_counts"]["probe"] == 2 * 3 * 2
    # The 100 s shard limit cuts some splits into several units.
    assert result["unit_counts"]["embed"] > 2 * (3 + 5 + 5)
    assert run["units"] == sum(result["unit_counts"].values())
    assert run["makespan_s"] >= run["lower_bound_s"]
    assert 0 < run["utilization"] <= 1
    assert run["list_schedule_s"] >= run["lower_bound_s"]
    assert run["workers_held"] == 3

    [spans] = json.loads(spans_file.read_text())
    units = spans["units"]
    for unit in units:
        assert unit["end"] - unit["start"] >= unit["seconds"] * 0.99  # slept its whole cost
        for dep in unit["deps"]:
            assert unit["start"] >= units[dep]["end"]
    probes = [u for u in units if u["kind"] == "probe"]
    assert all(p["deps"] for p in probes)
    # Never more units at once than GPUs: Ray held each to one logical GPU.
    events = sorted([(u["start"], 1) for u in units] + [(u["end"], -1) for u in units])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak <= 3
    assert (tmp_path / "schedule.md").read_text().count("\n| 3 |") == 1


def test_costs_name_their_source() -> None:
    from hear_runner.plan.throughput import load_throughputs

    rows = json.loads(bench.FULL_SIZE.read_text())["rows"]
    # esc50 with no measurement, nsynth_pitch_50h measured only at reduced scales (0.01):
    # whatever later benches add to the results file.
    rows = [r for r in rows if r["task"] != "esc50"]
    rows = [r for r in rows if (r["task"], r["scale"]) != ("nsynth_pitch_50h", "full")]
    assert any(r["task"] == "nsynth_pitch_50h" and "fast" in r["probes"] for r in rows)
    costs = {c.task: c for c in bench.task_costs(rows, [], load_throughputs(), ("fast", 8))}
    assert len(costs) == 19
    # bench/results/full-size.json has maestro embedded at full size.
    assert costs["maestro"].embed.source == "measured"
    assert costs["nsynth_pitch_50h"].probe.source == "extrapolated"
    assert costs["esc50"].embed.source == costs["esc50"].probe.source == "estimated"
    assert all(c.embed.seconds > 0 and c.probe.seconds > 0 for c in costs.values())


def test_list_schedule_and_lower_bound() -> None:
    u = bench.Unit
    # Two chains: a 1 s and a 3 s shard before a 4 s probe; one 2 s shard before a 1 s probe.
    units = [u("a0", "embed", 1), u("a1", "embed", 3), u("ap", "probe", 4, (0, 1)),
             u("b0", "embed", 2), u("bp", "probe", 1, (3,))]  # fmt: skip
    assert bench.lower_bound(units, 1) == 11
    assert bench.lower_bound(units, 2) == 7  # the longest chain: 3 s then 4 s
    assert bench.list_schedule(units, 1) == 11
    # GPU 1: a0 (0-1), b0 (1-3), bp (3-4); GPU 2: a1 (0-3), ap (3-7).
    assert bench.list_schedule(units, 2) == 7
    assert bench.shard(10, 4) == [10 / 3] * 3


def test_records_are_measured_or_extrapolated_by_their_clips(tmp_path: Path) -> None:
    """A record of esc50 with half its released clips counts double; one of beijing_opera at
    its released size counts as measured; the probe's time is per seed."""
    esc50 = record_with_predictions("m", "esc50-v2.0.0-full", [], score=0.5)
    esc50.task.task_name, esc50.task.clips = "esc50", {f"fold0{i}": 200 for i in range(5)}
    esc50.probe = ProbeInfo(mode="fast", seeds=[1, 2], config={}, selection_metric="top1_acc")
    esc50.timings = {"embed_wall": 10.0, "probe": 40.0}
    opera = record_with_predictions("m", "beijing_opera-v1.0-hear2021-full", [], score=0.5)
    opera.task.task_name = "beijing_opera"
    opera.task.clips = {"fold00": 48, "fold01": 47, "fold02": 47, "fold03": 47, "fold04": 47}
    opera.probe = ProbeInfo(mode="linear", config={}, selection_metric="top1_acc")
    opera.timings = {"embed_wall": 3.0, "probe": 7.0}
    maestro = record_with_predictions("m", "maestro-v3.0.0-5h", [], score=0.5)
    maestro.task.task_name, maestro.task.mode = "maestro", "5h"
    maestro.task.clips = {f"fold0{i}": 37 for i in range(5)}
    maestro.timings = {"embed_wall": 99.0, "probe": 1.0}
    for made in (esc50, opera, maestro):
        made.write(tmp_path)

    records = bench._records(tmp_path, None)
    costs = bench.record_costs(records, "fast")
    assert (costs["esc50"]["embed"].seconds, costs["esc50"]["probe"].seconds) == (20.0, 40.0)
    assert costs["esc50"]["embed"].source == "extrapolated"
    assert costs["beijing_opera"]["embed"] == bench.Cost(
        3.0, "measured", f"record of m on beijing_opera-v1.0-hear2021-full, {opera.created}"
    )
    assert "probe" not in costs["beijing_opera"]  # a linear probe's time: not the fast one's

    # A record's measurement comes before full-size.json's of the same rank (maestro's
    # embedding there: 203 s at full size), an extrapolation from a record before an estimate.
    from hear_runner.plan.throughput import load_throughputs

    rows = json.loads(bench.FULL_SIZE.read_text())["rows"]
    chosen = {c.task: c for c in bench.task_costs(rows, records, load_throughputs(), ("fast", 8))}
    assert chosen["maestro"].embed.seconds == 99.0
    assert chosen["esc50"].embed.seconds == 20.0
    assert chosen["dcase2016_task2"].embed.detail.startswith("bench/results/full-size.json")


def test_cluster_examples_offer_hear_docker_where_docker_is() -> None:
    yaml = pytest.importorskip("yaml")
    examples = ROOT / "docs" / "examples"
    kuberay = yaml.safe_load((examples / "kuberay-cluster.yaml").read_text())
    [workers] = kuberay["spec"]["workerGroupSpecs"]
    resources = json.loads(json.loads(workers["rayStartParams"]["resources"]))
    assert resources == {"hear_docker": 1}
    pod = workers["template"]["spec"]
    sockets = [v for v in pod["volumes"] if v.get("hostPath", {}).get("type") == "Socket"]
    [socket] = sockets
    [container] = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[socket["name"]] == socket["hostPath"]["path"] == "/var/run/docker.sock"
    assert "hear_docker" not in kuberay["spec"]["headGroupSpec"]["rayStartParams"]

    ray_up = yaml.safe_load((examples / "ray-up.yaml").read_text())
    assert ray_up["available_node_types"]["gpu"]["resources"] == {"hear_docker": 1}
    assert any(
        "--resources='{\"hear_docker\": 1}'" in c for c in ray_up["worker_start_ray_commands"]
    )


def test_the_cluster_section_shows_the_committed_results() -> None:
    result = json.loads((ROOT / "bench" / "results" / "ray-schedule.json").read_text())
    text = (ROOT / "docs" / "cluster.md").read_text()
    assert result["command"] == "python bench/ray_schedule.py --netns"
    for run in result["runs"]:
        row = (
            f"| {run['gpus']} | {run['units']} | {run['makespan_h']:.2f} "
            f"| {run['utilization']:.1%} | {run['ratio']:.3f} | {run['ray_order_ratio']:.3f} |"
        )
        assert row in text
