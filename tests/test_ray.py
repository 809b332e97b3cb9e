"""`hear run --ray`: a real Ray cluster of two nodes on this machine's loopback.

Each cluster is started by the test (tests/raycluster.py: its own network namespace, its
own processes, stopped by pid), and both nodes start model containers through this
machine's Docker engine. Skipped with a reason where Ray or namespaces are missing; CI
installs Ray (scripts/setup).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import hear_containers
from raycluster import LoopbackCluster, can_run

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(bool(can_run()), reason=can_run() or ""),
]

HEAR = [sys.executable, "-m", "hear_runner"]
SHAPES = ("spoken_digits", "sound_mix", "sound_events")  # multiclass, multilabel, events


@pytest.fixture(scope="module")
def ray_tasks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three task shapes at smoke scale, in one folder of their own (hidden from a node)."""
    import importlib

    from taskfolders import mini_material_missing

    root = tmp_path_factory.mktemp("ray_tasks")
    for task in SHAPES:
        if mini_material_missing(task):
            pytest.skip(mini_material_missing(task) or "")
        importlib.import_module(f"hear_mini.{task}").prepare(root, "smoke", progress=False)
    return root


@pytest.fixture(scope="module")
def faulty_image(docker_client, numpy_image: str) -> str:
    """tests/hear_modules/faulty.py served as an image: deliberate faults by option (a crash,
    a hang, a slow call), a correct trivial model without one."""
    import io

    tag = "hear-test/faulty:latest"
    dockerfile = f"FROM {numpy_image}\nENV HEAR_MODULE=faulty\n"
    docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    return tag


def _start(root: Path, hide: list[Path] | None = None, over: Path | None = None) -> LoopbackCluster:
    cluster = LoopbackCluster(root)
    try:
        cluster.start_node("head", {"hear_docker": 1}, cpus=2)
        cluster.start_node("worker", {"hear_docker": 1}, hide=hide, cpus=2, over=over)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, numpy_image: str):
    started = _start(tmp_path_factory.mktemp("ray"))
    yield started
    started.stop()


def _run(
    cluster: LoopbackCluster | None, args: list[str], timeout: float = 600, address: str = ""
) -> tuple[int, str, str]:
    """``hear run ARGS`` (on ``cluster`` when given, at its head's ``address`` unless another
    is given; the driver's peak RSS in stderr)."""
    command = ["/usr/bin/time", "-v", *HEAR, "run", *args]
    if cluster is None:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        return done.returncode, done.stdout, done.stderr
    proc = cluster.run([*command, "--ray", address or cluster.address],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _records(results: Path) -> dict[tuple[str, str], dict]:
    records = {}
    for path in results.glob("*/*.json"):
        if path.parent.name == "manifests":
            continue
        record = json.loads(path.read_text())
        records[(record["model"]["name"], record["task"]["name"])] = record
    return records


def _peak_rss_mib(stderr: str) -> float:
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)[1]) / 1024


def test_ray_run_scores_equal_a_local_run(
    cluster, ray_tasks, crepe_tiny_image, numpy_image, tmp_path, no_leftover_containers
):
    common = ["--model-image", crepe_tiny_image, "--model-image", numpy_image,
              "--tasks-dir", str(ray_tasks), "--probe", "linear", "--batch-size", "8"]  # fmt: skip
    local = tmp_path / "local"
    code, _, err = _run(
        None, [*common, "--results-dir", str(local), "--cache-dir", str(tmp_path / "c1")]
    )
    assert code == 0, err
    on_ray = tmp_path / "ray"
    code, _, err = _run(
        cluster, [*common, "--results-dir", str(on_ray), "--cache-dir", str(tmp_path / "c2")]
    )
    assert code == 0, err
    want, got = _records(local), _records(on_ray)
    assert len(want) == 6 and set(got) == set(want)
    for key, record in want.items():
        assert got[key]["scores"] == record["scores"], key  # identical, not close
        engine = got[key]["model"]["engine"]
        assert engine["engine"] == "ray" and engine["ray"]["ray_version"]
        assert engine["ray"]["store_shared"] is True  # probes mapped the stored rows
        for split, clips in got[key]["task"]["clips"].items():  # every split names its nodes
            placed = engine["splits"][f"{key[1]}/{split}"]
            assert sum(p["clips"] for p in placed) == clips
            assert all(p["ip"] == "127.0.0.1" and p["node_id"] for p in placed)
        assert engine["ray"]["probe"][0]["node_id"]
        assert len(engine["servers"]) == 2  # one container per node, kept for all its units
    nodes_used = {
        p["node_id"]
        for r in got.values()
        for ps in r["model"]["engine"]["splits"].values()
        for p in ps
    }
    assert len(nodes_used) == 2  # both nodes embedded
    assert _peak_rss_mib(err) < 2048
    [manifest] = (on_ray / "manifests").glob("*.json")
    assert len(json.loads(manifest.read_text())["cluster"]["nodes"]) == 2


def test_ray_probe_units_per_seed_equal_a_local_run(cluster, ray_tasks, numpy_image, tmp_path):
    common = ["--model-image", numpy_image, "--tasks-dir", str(ray_tasks), "--task", "mini_spoken_digits",
              "--probe", "fast", "--grid-points", "1", "--seeds", "2"]  # fmt: skip
    code, _, err = _run(None, [*common, "--results-dir", str(tmp_path / "local")])
    assert code == 0, err
    code, _, err = _run(cluster, [*common, "--results-dir", str(tmp_path / "ray")])
    assert code == 0, err
    [want], [got] = _records(tmp_path / "local").values(), _records(tmp_path / "ray").values()
    assert got["seed_scores"] == want["seed_scores"] and got["scores"] == want["scores"]
    assert [p["seed"] for p in got["model"]["engine"]["ray"]["probe"]] == [42, 43]


def test_ray_client_address_gives_the_local_scores(cluster, ray_tasks, numpy_image, tmp_path):
    # Ray Client (the head's client server, port 10001) carries no streaming tasks: each
    # unit's batches come back when it ends, and are committed then.
    common = ["--model-image", numpy_image, "--tasks-dir", str(ray_tasks), "--task", "mini_spoken_digits",
              "--task", "mini_sound_events", "--probe", "linear", "--batch-size", "8"]  # fmt: skip
    code, _, err = _run(None, [*common, "--results-dir", str(tmp_path / "local"),
                               "--cache-dir", str(tmp_path / "c1")])  # fmt: skip
    assert code == 0, err
    code, _, err = _run(cluster, [*common, "--results-dir", str(tmp_path / "ray"),
                                  "--cache-dir", str(tmp_path / "c2")],
                        address="ray://127.0.0.1:10001")  # fmt: skip
    assert code == 0, err
    want, got = _records(tmp_path / "local"), _records(tmp_path / "ray")
    assert set(got) == set(want) and len(want) == 2
    for key, record in want.items():
        assert got[key]["scores"] == record["scores"], key
        engine = got[key]["model"]["engine"]
        assert engine["ray"]["address"] == "ray://127.0.0.1:10001"
        assert sum(p["clips"] for p in engine["splits"][f"{key[1]}/test"]) == 40


def test_ray_run_completes_when_a_node_dies_mid_run(
    ray_tasks, faulty_image, tmp_path, no_leftover_containers
):
    import threading

    cluster = _start(tmp_path / "ray")
    try:
        worker = list(cluster.node_ids())[1]
        proc = cluster.run(
            # 250 ms a call (the "slow" fault), one clip a call: a unit (4 calls) lasts a second
            [*HEAR, "run", "--ray", cluster.address, "--model-image", faulty_image,
             "--model-options", '{"fault": "slow", "delay": 0.25}', "--tasks-dir", str(ray_tasks),
             "--task", "mini_sound_events", "--probe", "linear",
             "--batch-size", "1", "--results-dir", str(tmp_path / "results"),
             "--cache-dir", str(tmp_path / "cache")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        lines: list[str] = []
        first_commit = threading.Event()  # the worker's first batch is in the store

        def read() -> None:
            for line in proc.stderr:
                lines.append(line)
                if f"node {worker[:8]}): started" in line:
                    first_commit.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert first_commit.wait(300), "".join(lines)
        # its unit streams batch by batch: 0.75 s of it are left after its first commit
        time.sleep(0.5)
        assert proc.poll() is None, "the run ended before a node could be stopped"
        cluster.kill_node("worker")
        proc.wait(timeout=600)
        reader.join(timeout=30)
    finally:
        cluster.stop()
    err = "".join(lines)
    assert proc.returncode == 0, err
    assert "was lost" in err  # the unit in flight on the dead node went again
    [record] = _records(tmp_path / "results").values()
    by_node: dict[str, int] = {}
    for split, total in record["task"]["clips"].items():
        placed = record["model"]["engine"]["splits"][f"{record['task']['name']}/{split}"]
        # every clip committed exactly once: what the dead node committed was kept, not
        # recomputed, and the survivor embedded after the kill only what was not committed
        assert sum(p["clips"] for p in placed) == total, split
        for p in placed:
            by_node[p["node_id"]] = by_node.get(p["node_id"], 0) + p["clips"]
    assert len(by_node) == 2 and by_node[worker] > 0


def test_ray_run_ships_audio_to_a_node_that_cannot_see_the_tasks(
    ray_tasks, numpy_image, tmp_path, no_leftover_containers
):
    store = tmp_path / "store"  # hidden too: the probe problem goes whole, not by reference
    store.mkdir()
    cluster = _start(tmp_path / "ray", hide=[ray_tasks, store])
    try:
        code, _, err = _run(cluster, ["--model-image", numpy_image, "--tasks-dir", str(ray_tasks),
                                      "--task", "mini_spoken_digits", "--probe", "linear",
                                      "--batch-size", "8", "--results-dir", str(tmp_path / "results"),
                                      "--cache-dir", str(store)])  # fmt: skip
    finally:
        cluster.stop()
    assert code == 0, err
    assert "not seen by" in err and "object store" in err
    [record] = _records(tmp_path / "results").values()
    assert record["model"]["engine"]["ray"]["store_shared"] is False
    train = record["model"]["engine"]["splits"][f"{record['task']['name']}/train"]
    assert len(train) == 2 and all(p["clips"] > 0 for p in train)  # the blind node embedded too
    code, _, err = _run(None, ["--model-image", numpy_image, "--tasks-dir", str(ray_tasks),
                               "--task", "mini_spoken_digits", "--probe", "linear", "--batch-size", "8",
                               "--results-dir", str(tmp_path / "local")])  # fmt: skip
    assert code == 0, err
    [local] = _records(tmp_path / "local").values()
    assert record["scores"] == local["scores"]
    # the Ray run's manifest repeats here, on one machine (re-scored from the same store)
    [manifest] = (tmp_path / "results" / "manifests").glob("*.json")
    again = subprocess.run(
        [*HEAR, "rerun", str(manifest), "--overwrite", "only-missing",
         "--results-dir", str(tmp_path / "rerun"), "--cache-dir", str(store)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert again.returncode == 0 and "all 1 (model, task) scores match" in again.stdout, (
        again.stderr
    )


def test_ray_node_seeing_another_task_folder_is_named(ray_tasks, numpy_image, tmp_path):
    import shutil

    other = tmp_path / "other"  # the same folder name, another listing: another content hash
    shutil.copytree(ray_tasks, other)
    split = next((other / "mini_spoken_digits-1.0.0-smoke").glob("test.json"))
    split.write_text(split.read_text().replace("}", "} ", 1))
    cluster = _start(tmp_path / "ray", hide=[ray_tasks], over=other)
    try:
        worker = list(cluster.node_ids())[1]
        code, _, err = _run(cluster, ["--model-image", numpy_image, "--tasks-dir", str(ray_tasks),
                                      "--task", "mini_spoken_digits", "--results-dir", str(tmp_path / "r")])  # fmt: skip
    finally:
        cluster.stop()
    assert code == 1
    line = [x for x in err.splitlines() if x.startswith("error:")][-1]
    assert f"node {worker[:8]}" in line and "sees another task folder" in line, err


def test_ray_model_crash_fails_with_the_local_error(
    cluster, ray_tasks, faulty_image, tmp_path, no_leftover_containers
):
    tag = faulty_image
    args = ["--model-image", tag, "--model-options", '{"fault": "exit"}', "--tasks-dir", str(ray_tasks),
            "--task", "mini_spoken_digits", "--probe", "linear"]  # fmt: skip
    code, _, local = _run(None, [*args, "--results-dir", str(tmp_path / "local")])
    assert code == 1
    started = time.monotonic()
    code, _, on_ray = _run(cluster, [*args, "--results-dir", str(tmp_path / "ray")])
    assert code == 1 and time.monotonic() - started < 300

    def error(stderr: str) -> str:
        line = next(x for x in stderr.splitlines() if x.startswith("error:"))
        return re.sub(r"clips \d+-\d+", "clips N-M", re.sub(r"hear-faulty[-\w]*", "C", line))

    assert error(on_ray) == error(local)
    assert "Traceback" not in on_ray and "RayTaskError" not in on_ray


def test_ray_ctrl_c_stops_every_container(
    cluster, ray_tasks, docker_client, faulty_image, tmp_path
):
    tag = faulty_image
    proc = cluster.run(
        [*HEAR, "run", "--ray", cluster.address, "--model-image", tag, "--model-options",
         '{"fault": "hang"}', "--tasks-dir", str(ray_tasks), "--task", "mini_spoken_digits",
         "--batch-size", "4", "--results-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip

    deadline = time.monotonic() + 120
    # a container on each node
    while time.monotonic() < deadline and len(hear_containers(docker_client)) < 2:
        time.sleep(0.2)
    assert len(hear_containers(docker_client)) == 2, "the model never started on both nodes"
    time.sleep(1.0)  # every unit now waits on a hanging model call
    proc.send_signal(2)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and hear_containers(docker_client):
        time.sleep(0.5)
    assert not hear_containers(docker_client), "containers left on a node after Ctrl-C"


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("127.0.0.1:9", "no Ray cluster answers at 127.0.0.1:9"),
        ("ray://127.0.0.1:9", "no Ray cluster answers at ray://127.0.0.1:9"),
    ],
)
def test_ray_address_that_cannot_serve_fails_fast_naming_it(
    digits_task, naive_image, tmp_path, address, message
):
    started = time.monotonic()
    done = subprocess.run(
        [*HEAR, "run", "--ray", address, "--model-image", naive_image, "--tasks-dir",
         str(digits_task.parent), "--results-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert time.monotonic() - started < 30
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith(f"error: {message}"), done.stderr


def test_ray_flag_without_ray_says_how_to_install(digits_task, naive_image, tmp_path):
    # A named fake: this machine has Ray, so its absence is made by hiding the module.
    code = ("import sys; sys.modules['ray'] = None; from hear_runner.cli import main; "
            "sys.argv = ['hear', *sys.argv[1:]]; main()")  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", code, "run", "--ray", "auto", "--model-image", naive_image,
         "--tasks-dir", str(digits_task.parent), "--results-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert "pip install 'hear-runner[ray]'" in done.stderr.strip().splitlines()[-1]


def test_a_node_whose_image_differs_is_named():
    # A named fake: one Docker engine serves both nodes here, so the ids cannot differ.
    from hear_runner.cluster.node import Placement, check_identity
    from hear_runner.errors import ImageError

    node = Placement(node_id="ab" * 28, ip="10.0.0.7", hostname="gpu-7")
    check_identity("sha256:" + "1" * 64, "sha256:" + "1" * 64, "org/m:1", node)
    with pytest.raises(
        ImageError, match=r"node gpu-7 \(10\.0\.0\.7, node abababab\): image org/m:1"
    ):
        check_identity("sha256:" + "2" * 64, "sha256:" + "1" * 64, "org/m:1", node)
