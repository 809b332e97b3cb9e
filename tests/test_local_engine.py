"""The contract end to end through the local engine: real servers in real subprocesses."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from hear_runner.engines.base import EngineSettings, ModelSource
from hear_runner.engines.local import LocalEngine
from hear_runner.errors import ModelDied, ModelError, ModelTimeout


def start(module: str, settings: EngineSettings | None = None, **options: object):
    source = ModelSource(kind="module", ref=module, options=options)
    return LocalEngine(settings).start(source)


def noise(n: int, samples: int) -> np.ndarray:
    return np.random.default_rng(n).standard_normal((n, samples)).astype(np.float32) * 0.1


def test_numpy_only_module_serves_declared_shapes() -> None:
    with start("numpy_logmel") as model:
        hello = model.client.hello
        assert (hello.sample_rate, hello.scene_embedding_size) == (16000, 128)
        assert hello.audio_format == "numpy" and "numpy" in hello.versions
        scene = model.client.scene(noise(4, 16000))
        assert scene.shape == (4, 128) and scene.dtype == np.float32
        embeddings, timestamps = model.client.timestamps(noise(2, 20000))
        assert embeddings.shape == (2, 51, 64) and timestamps.shape == (2, 51)
        assert timestamps[0, 1] - timestamps[0, 0] == pytest.approx(25.0)


def test_embeddings_equal_an_in_process_call() -> None:
    import numpy_logmel

    audio = noise(3, 12000)
    expected = numpy_logmel.get_scene_embeddings(audio, numpy_logmel.load_model())
    with start("numpy_logmel") as model:
        np.testing.assert_array_equal(model.client.scene(audio), expected)


def test_torch_module_gets_tensors_and_returns_float32() -> None:
    pytest.importorskip("torch")
    # hearbaseline is not installed on the host (it needs librosa < 0.10): use torch directly.
    with start("torch_mean") as model:
        assert model.client.hello.audio_format == "torch"
        out = model.client.scene(noise(2, 16000))
        assert out.dtype == np.float32 and out.shape == (2, 4)


def test_hello_and_replies_name_the_device_and_leave_gpu_peak_out_on_a_cpu() -> None:
    """device_name says "cpu" off CUDA; peak_gpu_bytes comes only from torch on CUDA."""
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this checks the CPU form; bench/gpu-check checks CUDA")
    with start("torch_mean") as model:
        hello = model.client.hello
        assert (hello.device, hello.device_name, hello.peak_gpu_bytes) == ("cpu", "cpu", None)
        assert hello.peak_rss_bytes is not None and hello.peak_rss_bytes > 0
        model.client.scene(noise(2, 16000))
        model.client.timestamps(noise(2, 16000))
        usage = model.client.usage
        assert usage.calls == 2 and usage.peak_gpu_bytes is None
        assert usage.peak_rss_bytes is not None and usage.peak_rss_bytes >= hello.peak_rss_bytes
    with start("numpy_logmel") as model:
        hello = model.client.hello
        assert (hello.device, hello.device_name, hello.peak_gpu_bytes) == ("cpu", "cpu", None)


def test_load_failure_is_one_line_naming_the_module() -> None:
    with pytest.raises(ModelError) as info:
        start("broken_load")
    message = str(info.value)
    assert "broken_load" in message and "weights file is corrupt" in message
    assert "\n" not in message and info.value.kind == "load_error"
    assert "Traceback" in info.value.detail


def test_import_failure_names_the_missing_module() -> None:
    with pytest.raises(ModelError, match="No module named 'no_such_module_xyz'"):
        start("no_such_module_xyz")


def test_server_keeps_serving_after_a_model_error() -> None:
    with start("faulty", fault="raise_on_3") as model:
        with pytest.raises(ModelError, match=r"\[model_error\].*batch of three") as info:
            model.client.scene(noise(3, 1600), "task t, split s, batch 2/9")
        assert "batch 2/9" in str(info.value)
        assert model.client.scene(noise(2, 1600)).shape == (2, 8)


def test_out_of_memory_is_its_own_kind_and_the_server_survives() -> None:
    with start("faulty", fault="oom") as model:
        with pytest.raises(ModelError) as info:
            model.client.scene(noise(4, 1600))
        assert info.value.kind == "out_of_memory" and "[out_of_memory]" in str(info.value)
        assert model.client.scene(noise(2, 1600)).shape == (2, 8)  # a smaller batch still works


def test_wrong_embedding_size_is_a_contract_error() -> None:
    expected = r"shape \[2, 7\].*expected <f4 and \[2, 8\]"
    with start("faulty", fault="wrong_size") as model, pytest.raises(ModelError, match=expected):
        model.client.scene(noise(2, 1600))


def test_hanging_call_times_out_and_the_server_is_killed() -> None:
    settings = EngineSettings(budget_base_seconds=1.0, budget_per_audio_second=0.0)
    with start("faulty", settings, fault="hang") as model:
        pid = model.provenance["pid"]
        started = time.monotonic()
        with pytest.raises(ModelTimeout, match=r"did not answer within 1 s \(task x, split y"):
            model.client.scene(noise(1, 1600), "task x, split y, batch 1/1")
        assert time.monotonic() - started < 10
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_process_exit_mid_call_is_reported_with_its_exit_code() -> None:
    with start("faulty", fault="exit") as model, pytest.raises(ModelDied, match="code 7"):
        model.client.scene(noise(1, 1600), "task x, split y, batch 1/1")


def test_process_killed_from_outside_is_reported() -> None:
    with start("numpy_logmel") as model:
        pid = model.provenance["pid"]
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(ModelDied, match="killed by SIGKILL"):
            model.client.scene(noise(1, 1600))


def test_a_trickling_reply_cannot_stretch_the_deadline() -> None:
    """A named fake peer: a server that sends its reply one byte at a time (no real model does)."""
    import socket
    import threading

    from hear_runner.contract import wire
    from hear_runner.contract.client import CallBudget, ModelClient

    host_end, peer = socket.socketpair()
    hello = {"op": "hello", "model": "trickle", "sample_rate": 16000, "scene_embedding_size": 4,
             "timestamp_embedding_size": 4, "device": "cpu", "versions": {}}  # fmt: skip

    def trickle() -> None:
        reader = peer.makefile("rb")
        peer.sendall(b"".join(bytes(c) for c in wire.encode(hello)))
        header, _ = wire.read_frame(reader)
        reply = b"".join(bytes(c) for c in wire.encode({"op": "scene", "id": header["id"]},
                                                        {"embeddings": np.zeros((1, 4), np.float32)}))  # fmt: skip
        for byte in reply:
            try:
                peer.sendall(bytes([byte]))
            except OSError:
                return
            time.sleep(0.2)

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    killed: list[bool] = []
    client = ModelClient(
        host_end, "trickle", lambda: "", lambda: killed.append(True), CallBudget(1.0, 0.0)
    )
    client.wait_hello(5)
    started = time.monotonic()
    with pytest.raises(ModelTimeout, match="did not answer within 1 s"):
        client.scene(noise(1, 160))
    assert time.monotonic() - started < 2.5 and killed
    client.close()
    peer.close()
