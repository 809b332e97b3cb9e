"""Engine settings that need no running engine."""

from __future__ import annotations

import pytest

from hear_runner.engines.docker import device_requests
from hear_runner.errors import HearError


def test_gpus_map_to_device_requests_like_docker_run() -> None:
    assert device_requests(None) == []
    [everything] = device_requests("all")
    assert everything["Count"] == -1 and everything["Capabilities"] == [["gpu"]]
    assert device_requests("2")[0]["Count"] == 2
    assert device_requests("device=0,2")[0]["DeviceIDs"] == ["0", "2"]


@pytest.mark.parametrize("value", ["some", "device=", "-1"])
def test_bad_gpus_value_is_an_error(value: str) -> None:
    with pytest.raises(HearError, match="--gpus"):
        device_requests(value)


@pytest.mark.parametrize(
    ("gpus", "workers", "detected", "expected"),
    [
        (None, None, None, [None]),
        (None, 3, None, [None, None, None]),
        ("all", None, None, [None]),  # GPUs not countable here: one server sees them all
        ("all", None, 4, ["0", "1", "2", "3"]),
        ("all", 6, 4, ["0", "1", "2", "3", "0", "1"]),
        ("all", 2, None, ["0", "1"]),
        ("2", None, None, ["0", "1"]),
        ("device=0,2", None, None, ["0", "2"]),
        ("device=3", 2, None, ["3", "3"]),
    ],
)
def test_one_server_per_gpu(
    gpus: str | None, workers: int | None, detected: int | None, expected: list
) -> None:
    from hear_runner.engines.base import worker_gpus

    assert worker_gpus(gpus, workers, lambda: detected) == expected


def test_gpus_are_counted_with_nvidia_smi(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """A stand-in nvidia-smi (this machine has no GPU), printing what the real one prints."""
    from hear_runner.engines.base import count_gpus

    monkeypatch.setenv("PATH", str(tmp_path))
    assert count_gpus() is None
    fake = tmp_path / "nvidia-smi"
    fake.write_text(
        "#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-1)'\necho 'GPU 1: NVIDIA H200 (UUID: GPU-2)'\n"
    )
    fake.chmod(0o755)
    assert count_gpus() == 2


def test_transport_falls_back_to_the_attach_stream_where_files_are_not_shared(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    from hear_runner.engines.docker import pick_transport

    monkeypatch.setenv("DOCKER_HOST", "tcp://gpu-box:2376")
    assert pick_transport("auto", str(tmp_path)) == "stdio"  # a remote engine
    assert pick_transport("socket") == "socket"
    monkeypatch.delenv("DOCKER_HOST")
    assert pick_transport("auto", str(tmp_path)) == "socket"  # its data root is here
    assert pick_transport("auto", str(tmp_path / "elsewhere")) == "stdio"  # hear in a container
    with pytest.raises(HearError, match="--transport 'pipe'"):
        pick_transport("pipe")
