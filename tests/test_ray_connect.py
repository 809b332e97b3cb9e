"""Joining a Ray cluster through Ray Client retries the one failure that is the head's and
passes: its client server's start of a per-driver server process failing on a loaded head.

That failure cannot be made on demand (the loopback cluster of tests/test_ray.py hit it
about once in three suites), so Ray here is a named fake: an object with ``init``,
``nodes``, ``shutdown`` and ``__version__`` whose ``init`` raises Ray Client's message.
"""

from __future__ import annotations

from typing import Any

import pytest

from hear_runner.cluster import connect as joining
from hear_runner.errors import HearError

SERVER_FAILED = (
    "Initialization failure from server: Traceback (most recent call last): ... "
    "psutil.ZombieProcess: PID still exists but it's a zombie (pid=3305)"
)


class FakeRay:
    """A named fake of the ``ray`` module: ``init`` fails ``failures`` times, then joins."""

    __version__ = "fake"

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures, self.error = failures, error
        self.inits = self.shutdowns = 0

    def init(self, **_: Any) -> None:
        self.inits += 1
        if self.inits <= self.failures:
            raise self.error

    def nodes(self) -> list[dict[str, Any]]:
        return [{"NodeID": "n1", "NodeManagerAddress": "127.0.0.1", "Alive": True,
                 "Resources": {"CPU": 2.0, joining.RESOURCE: 1.0}}]  # fmt: skip

    def shutdown(self) -> None:
        self.shutdowns += 1


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    def install(failures: int, error: Exception | None = None) -> FakeRay:
        ray = FakeRay(failures, error or ConnectionError(SERVER_FAILED))
        monkeypatch.setattr(joining, "import_ray", lambda: ray)
        monkeypatch.setattr(joining, "check_reachable", lambda address: None)
        monkeypatch.setattr(joining.time, "sleep", lambda seconds: None)
        return ray

    return install


def test_a_client_server_start_failure_is_retried(fake) -> None:
    ray = fake(failures=joining.CLIENT_ATTEMPTS - 1)
    info = joining.connect("ray://127.0.0.1:10001", joining.RESOURCE)
    assert ray.inits == joining.CLIENT_ATTEMPTS and ray.shutdowns == joining.CLIENT_ATTEMPTS - 1
    assert [n.node_id for n in info.nodes] == ["n1"]


def test_it_fails_in_one_line_after_the_last_try(fake) -> None:
    ray = fake(failures=joining.CLIENT_ATTEMPTS)
    with pytest.raises(HearError) as error:
        joining.connect("ray://127.0.0.1:10001", joining.RESOURCE)
    message = str(error.value)
    assert ray.inits == joining.CLIENT_ATTEMPTS and "\n" not in message
    assert message.startswith(
        f"cannot join the Ray cluster at ray://127.0.0.1:10001 (after {joining.CLIENT_ATTEMPTS} "
        "tries): Initialization failure from server"
    )


@pytest.mark.parametrize(
    ("address", "error"),
    [
        ("127.0.0.1:6379", ConnectionError(SERVER_FAILED)),  # not Ray Client: not this failure
        ("ray://127.0.0.1:10001", ConnectionError("permission denied: bad token")),
    ],
)
def test_other_failures_are_not_retried(fake, address: str, error: Exception) -> None:
    ray = fake(failures=1, error=error)
    with pytest.raises(HearError, match=f"^cannot join the Ray cluster at {address}: "):
        joining.connect(address, joining.RESOURCE)
    assert ray.inits == 1
