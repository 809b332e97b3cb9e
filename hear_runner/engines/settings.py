"""How models are served: one object for every command that starts model servers.

Its defaults are the engine's own (``EngineSettings`` and the container ``Sandbox``), so
the CLI, a manifest's rerun and library callers cannot drift apart.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hear_runner.engines.base import EngineSettings
from hear_runner.engines.docker import Sandbox

_LIMITS = EngineSettings.model_fields
_SANDBOX = Sandbox.model_fields


class ServeSettings(BaseModel):
    """The engine's limits, the container sandbox, the servers and their batches."""

    model_config = ConfigDict(frozen=True)

    memory: str = str(_SANDBOX["memory"].default)
    gpus: str | None = _SANDBOX["gpus"].default
    workers: int | None = Field(default=None, ge=1)
    transport: Literal["auto", "socket", "stdio"] = _SANDBOX["transport"].default
    batch_size: int = Field(default=32, ge=1)
    max_clip_seconds: float | None = Field(default=None, ge=0.5)
    load_timeout: float = _LIMITS["load_timeout"].default
    call_timeout: float = _LIMITS["budget_base_seconds"].default
    call_timeout_per_second: float = _LIMITS["budget_per_audio_second"].default

    def limits(self) -> EngineSettings:
        return EngineSettings(
            load_timeout=self.load_timeout,
            budget_base_seconds=self.call_timeout,
            budget_per_audio_second=self.call_timeout_per_second,
        )

    def sandbox(self) -> Sandbox:
        return Sandbox(memory=self.memory, gpus=self.gpus, transport=self.transport)

    def worker_gpus(self) -> list[str | None]:
        """The GPU of each model server (see ``hear_runner.engines.base.worker_gpus``)."""
        from hear_runner.engines.base import worker_gpus

        return worker_gpus(self.gpus, self.workers)


class ModelChoice(BaseModel):
    """Which models to serve: named models, images, or modules run on this host."""

    model_config = ConfigDict(frozen=True)

    names: list[str] = []  # named models that plugins register (images)
    images: list[str] = []
    modules: list[str] = []
    python: str | None = None  # the interpreter of modules; default: this one
    options: dict[str, object] = {}  # keyword options for load_model()
    path: str | None = None  # weights path passed to load_model()
