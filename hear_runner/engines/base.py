"""What every engine gives the pipeline: a started model server behind a ModelClient."""

from __future__ import annotations

import atexit
import contextlib
from collections.abc import Callable
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from hear_runner.contract.client import CallBudget, ModelClient
from hear_runner.errors import HearError


class ModelSource(BaseModel):
    """Which model to serve: a Docker image, or a module importable on the host."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["image", "module"]
    ref: str
    options: dict[str, Any] = {}
    model_path: str | None = None
    #: Clips longer than this are embedded in chunks (see hear_runner.embed.pipeline.Chunker).
    max_clip_seconds: float | None = None

    @property
    def display_name(self) -> str:
        return self.ref

    def environment(self) -> dict[str, str]:
        """The server's HEAR_* variables for this source."""
        import json

        env = {}
        if self.kind == "module":
            env["HEAR_MODULE"] = self.ref
        if self.options:
            env["HEAR_MODEL_OPTIONS"] = json.dumps(self.options)
        if self.model_path:
            env["HEAR_MODEL_PATH"] = self.model_path
        return env


class EngineSettings(BaseModel):
    """Limits shared by every engine."""

    load_timeout: float = 600.0
    budget_base_seconds: float = 60.0
    budget_per_audio_second: float = 10.0

    def budget(self) -> CallBudget:
        return CallBudget(self.budget_base_seconds, self.budget_per_audio_second)


class RunningModel:
    """A live server: its client, what to record about it, and how to stop it for good."""

    def __init__(
        self,
        client: ModelClient,
        provenance: dict[str, Any],
        stop: Callable[[], None],
    ) -> None:
        self.client = client
        self.provenance = provenance
        self._stop = stop
        self._closed = False
        _LIVE.add(self)

    @property
    def label(self) -> str:
        return self.client.label

    def close(self, graceful: bool = True) -> None:
        """Stop the server and remove what it ran in; safe to call twice.

        ``graceful`` asks the server to exit first; after an error or an
        interrupt the server may be stuck in a call, so it is killed at once.
        """
        if self._closed:
            return
        self._closed = True
        _LIVE.discard(self)
        try:
            if graceful:
                self.client.shutdown()
            else:
                self.client.kill()
        finally:
            self.client.close()
            self._stop()

    def __enter__(self) -> RunningModel:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.close(graceful=exc_type is None)


class Engine(Protocol):
    """Starts model servers. Implementations: docker, local."""

    name: str

    def check(self, source: ModelSource) -> str:
        """Refuse a source that cannot run here, before anything starts; else say what
        identifies its build (an image id; a module and its interpreter), for the cache."""
        ...

    def start(self, source: ModelSource, gpu: str | None = None) -> RunningModel:
        """Start a server; ``gpu``, a device id, gives it that one GPU."""
        ...


def worker_gpus(
    gpus: str | None, workers: int | None, detect: Callable[[], int | None] | None = None
) -> list[str | None]:
    """The GPU of each model server: one server per listed GPU (or ``workers`` of them).

    ``--gpus device=0,2``, ``--gpus 2`` and ``--gpus all`` start a server per GPU (``all``
    counts this host's GPUs with nvidia-smi; where it cannot, one server sees them all);
    ``--workers N`` asks for N servers spread over them. Without GPUs, ``workers``
    servers share the CPU.
    """
    if gpus is None:
        return [None] * (workers or 1)
    if gpus == "all":
        found = (detect or count_gpus)()
        if not found and not workers:
            return [None]  # the engine's "all": one server with every GPU
        ids = [str(i) for i in range(found or workers or 1)]
    elif gpus.isdigit():
        ids = [str(i) for i in range(int(gpus))]
    elif gpus.startswith("device="):
        ids = [d for d in gpus.removeprefix("device=").split(",") if d]
    else:
        raise HearError(f"--gpus {gpus!r}: expected all, a count, or device=ID[,ID...]")
    if not ids:
        raise HearError(f"--gpus {gpus!r}: names no GPU")
    count = workers or len(ids)
    return [ids[i % len(ids)] for i in range(count)]


def count_gpus() -> int | None:
    """This host's NVIDIA GPUs, from ``nvidia-smi -L``; None where it cannot say."""
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return None
    try:
        listing = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return sum(line.startswith("GPU ") for line in listing.splitlines()) or None


_LIVE: set[RunningModel] = set()


@atexit.register
def close_all() -> None:
    """Last line of defence: no server or container outlives the process."""
    for running in list(_LIVE):
        with contextlib.suppress(Exception):
            running.close(graceful=False)
