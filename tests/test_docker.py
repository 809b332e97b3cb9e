"""Real containers on a real Docker engine: the naive HEAR 2021 baseline and a numpy module."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import hear_containers

from hear_runner.engines.base import ModelSource
from hear_runner.engines.docker import DockerEngine
from hear_runner.errors import ImageError, ModelDied, ModelError

pytestmark = pytest.mark.docker


def _faulty_image(docker_client, numpy_image: str) -> str:
    """The deliberate-fault module (tests/hear_modules/faulty.py) as the image's module."""
    import io

    dockerfile = f"FROM {numpy_image}\nENV HEAR_MODULE=faulty\n"
    tag = "hear-test/faulty:latest"
    docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    return tag


def hear(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hear_runner", *args], capture_output=True, text=True, timeout=900
    )


def test_naive_baseline_container_returns_declared_shapes(naive_image, no_leftover_containers):
    engine = DockerEngine()
    with engine.start(ModelSource(kind="image", ref=naive_image)) as model:
        hello = model.client.hello
        assert (hello.model, hello.sample_rate, hello.scene_embedding_size) == (
            "hearbaseline.naive",
            44100,
            4096,
        )
        audio = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 44100)).astype(np.float32)
        scene = model.client.scene(audio)
        assert scene.shape == (2, 4096) and np.isfinite(scene).all()
        embeddings, timestamps = model.client.timestamps(audio)
        assert embeddings.shape[0::2] == (2, 4096) and timestamps.shape == embeddings.shape[:2]
        np.testing.assert_allclose(np.diff(timestamps[0]), 50.0, atol=1e-3)


def test_container_is_sandboxed(naive_image, docker_client, no_leftover_containers):
    with DockerEngine().start(ModelSource(kind="image", ref=naive_image)) as model:
        container = docker_client.containers.get(model.provenance["container"])
        host = container.attrs["HostConfig"]
        assert host["NetworkMode"] == "none"
        assert host["ReadonlyRootfs"] is True
        assert host["CapDrop"] == ["ALL"]
        assert "no-new-privileges" in host["SecurityOpt"]
        assert host["Init"] is True
        assert host["Memory"] == 8 * 1024**3 and host["PidsLimit"] == 1024
        assert "/tmp" in host["Tmpfs"]
        user = container.attrs["Config"]["User"]
        assert user and not user.startswith(("0", "root"))


def test_hear_run_scores_the_naive_baseline_above_chance(naive_image, digits_task, tmp_path):
    result = hear(
        "run", "--model-image", naive_image, "--tasks-dir", str(digits_task.parent),
        "--results-dir", str(tmp_path), "--json", "--probe", "linear",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [record] = json.loads(result.stdout)
    assert record["task"]["name"] == digits_task.name
    assert record["model"]["engine"]["image_id"].startswith("sha256:")
    assert record["primary_metric"] == "top1_acc"
    assert record["test_score"] > 0.3  # ten classes: chance is 0.1
    assert set(record["scores"]["test"]) == {"top1_acc", "mAP"}
    written = tmp_path / "hear_naive_latest" / f"{digits_task.name}.json"
    assert json.loads(written.read_text())["test_score"] == record["test_score"]


def test_plain_numpy_module_image_runs_unchanged(numpy_image, digits_task, tmp_path):
    result = hear(
        "run", "--model-image", numpy_image, "--tasks-dir", str(digits_task.parent),
        "--results-dir", str(tmp_path), "--json", "--probe", "linear",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [record] = json.loads(result.stdout)
    assert record["model"]["engine"]["hello"]["audio_format"] == "numpy"
    assert record["test_score"] > 0.3


def test_unknown_image_is_one_line_error(docker_client, digits_task, tmp_path):
    result = hear(
        "run", "--model-image", "hear-test/does-not-exist:1", "--tasks-dir",
        str(digits_task.parent), "--results-dir", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # refused before anything starts
    assert "hear-test/does-not-exist:1" in lines[0] and "not on this Docker engine" in lines[0]


def test_image_without_contract_label_is_refused_before_start(docker_client, naive_image):
    with pytest.raises(ImageError, match=r"has no org\.hear\.contract label"):
        DockerEngine().start(ModelSource(kind="image", ref="hear/debian-base:bookworm"))


def test_module_that_fails_to_import_is_one_line_error(
    docker_client, naive_image, digits_task, tmp_path, no_leftover_containers
):
    import io

    dockerfile = "FROM hear/base:latest\nENV HEAR_MODULE=module_that_is_not_installed\n"
    tag = "hear-test/bad-module:latest"
    docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    result = hear(
        "run", "--model-image", tag, "--tasks-dir", str(digits_task.parent),
        "--results-dir", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 1
    lines = [ln for ln in result.stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert tag in lines[0] and "No module named 'module_that_is_not_installed'" in lines[0]


def test_container_killed_mid_run_names_the_container(
    numpy_image, docker_client, no_leftover_containers
):
    with DockerEngine().start(ModelSource(kind="image", ref=numpy_image)) as model:
        name = model.provenance["container"]
        docker_client.containers.get(name).kill()
        with pytest.raises(ModelDied) as info:
            model.client.scene(np.zeros((1, 16000), np.float32), "task t, split test, batch 3/4")
    message = str(info.value)
    assert name in message and "exited with code 137" in message and "batch 3/4" in message
    assert "\n" not in message


def test_container_killed_during_hear_run_ends_with_one_line_and_resumes(
    numpy_image, docker_client, digits_task, tmp_path, empty_embedding_store,
    no_leftover_containers,
):  # fmt: skip
    """Kill the container while `hear run` is using it: the CLI names it and cleans up, and
    the same command run again embeds only the clips no finished batch holds."""
    import time

    tag = _faulty_image(docker_client, numpy_image)
    args = [sys.executable, "-m", "hear_runner", "run", "--model-image", tag,
            "--batch-size", "1", "--model-options", '{"fault": "slow"}', "--probe", "linear",
            "--tasks-dir", str(digits_task.parent), "--results-dir", str(tmp_path)]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed: list[str] = []

    def killer() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            if len(list(empty_embedding_store.rglob("batch-*.json"))) >= 3:
                for c in hear_containers(docker_client, running_only=True):
                    if c.name.startswith("hear-faulty"):
                        c.kill()
                        killed.append(c.name)
                        return
            time.sleep(0.02)

    thread = threading.Thread(target=killer)
    thread.start()
    _, stderr = proc.communicate(timeout=300)
    thread.join()
    assert killed, "the container was never killed"
    assert proc.returncode == 1
    error_lines = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert len(error_lines) == 1, stderr
    assert killed[0] in error_lines[0] and "code 137" in error_lines[0]

    finished = sum(
        len(json.loads(p.read_text())["clips"]) for p in empty_embedding_store.rglob("batch-*.json")
    )
    assert finished >= 3
    again = subprocess.run([*args, "--json"], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    [record] = json.loads(again.stdout)
    total = sum(record["task"]["clips"].values())
    assert record["timings"]["clips_embedded"] == total - finished


def test_run_record_survives_for_finished_tasks(numpy_image, digits_task, tmp_path):
    """A finished task's record is on disk as soon as it is scored."""
    result = hear(
        "run", "--model-image", numpy_image, "--tasks-dir", str(digits_task.parent),
        "--results-dir", str(tmp_path), "--probe", "linear",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    from hear_runner.results.records import find_records

    records = [path for path, _ in find_records(Path(tmp_path))]
    assert len(records) == 1 and "top1_acc" in records[0].read_text()
    assert "HEAR results" in result.stdout and digits_task.name in result.stdout


def test_model_error_inside_container_keeps_server_alive(docker_client, numpy_image):
    tag = _faulty_image(docker_client, numpy_image)
    source = ModelSource(kind="image", ref=tag, options={"fault": "raise_on_3"})
    with DockerEngine().start(source) as model:
        with pytest.raises(ModelError, match="batch of three"):
            model.client.scene(np.zeros((3, 1600), np.float32))
        assert model.client.scene(np.zeros((2, 1600), np.float32)).shape == (2, 8)


@pytest.mark.parametrize("signum", [2, 15])  # SIGINT (Ctrl-C), SIGTERM
def test_interrupted_run_removes_its_container(
    docker_client, numpy_image, digits_task, tmp_path, signum, no_leftover_containers
):
    import time

    tag = _faulty_image(docker_client, numpy_image)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hear_runner", "run", "--model-image", tag,
         "--model-options", '{"fault": "hang"}',
         "--tasks-dir", str(digits_task.parent), "--results-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if hear_containers(docker_client, running_only=True, name="hear-faulty"):
            break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("the model container never started")
    time.sleep(1.0)  # the run is now waiting on the hanging model call
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, stderr
    assert "interrupted" in stderr


def test_attach_stream_transport_carries_the_same_frames(
    docker_client, numpy_image, no_leftover_containers
):
    """The fallback for a remote engine or a runner in a container: stdin and stdout."""
    from hear_runner.engines.docker import Sandbox

    audio = np.random.default_rng(0).standard_normal((4, 16000)).astype(np.float32)
    source = ModelSource(kind="image", ref=numpy_image)
    with DockerEngine(sandbox=Sandbox(transport="socket")).start(source) as model:
        over_socket = model.client.scene(audio)
        frames, times = model.client.timestamps(audio)
    with DockerEngine(sandbox=Sandbox(transport="stdio")).start(source) as model:
        assert np.array_equal(model.client.scene(audio), over_socket)
        stdio_frames, stdio_times = model.client.timestamps(audio)
    assert np.array_equal(stdio_frames, frames) and np.array_equal(stdio_times, times)


def test_attach_stream_reports_a_dead_server_with_its_last_words(docker_client, numpy_image):
    from hear_runner.engines.docker import Sandbox

    tag = _faulty_image(docker_client, numpy_image)
    source = ModelSource(kind="image", ref=tag, options={"fault": "exit"})
    engine = DockerEngine(sandbox=Sandbox(transport="stdio"))
    with engine.start(source) as model, pytest.raises(ModelDied, match="exited with code 7"):
        model.client.scene(np.zeros((2, 1600), np.float32))
