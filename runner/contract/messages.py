"""Pydantic models of the contract's JSON headers, for the host side.

The server builds these headers from plain dicts (it has no pydantic);
the host validates every header it receives against these models.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ErrorKind = Literal["bad_request", "model_error", "out_of_memory", "load_error"]


class Hello(BaseModel):
    """What a server announces once its model is loaded."""

    model_config = ConfigDict(extra="allow", frozen=True)

    v: Literal[1]
    op: Literal["hello"]
    model: str
    sample_rate: int = Field(gt=0)
    scene_embedding_size: int = Field(gt=0)
    timestamp_embedding_size: int = Field(gt=0)
    device: str
    audio_format: str = "unknown"
    load_seconds: float = 0.0
    versions: dict[str, str] = {}
    device_name: str | None = None  # the GPU's name, when the model runs on one
    peak_rss_bytes: int | None = None  # after loading the model
    peak_gpu_bytes: int | None = None


class Usage(BaseModel):
    """What a server has used so far: updated from the hello and from every reply."""

    calls: int = 0
    model_seconds: float = 0.0  # time inside the model's functions, as the server measured it
    peak_rss_bytes: int | None = None
    peak_gpu_bytes: int | None = None

    def update(self, header: dict[str, object]) -> None:
        for name in ("peak_rss_bytes", "peak_gpu_bytes"):
            value = header.get(name)
            if isinstance(value, int):
                setattr(self, name, max(value, getattr(self, name) or 0))
        seconds = header.get("seconds")
        if isinstance(seconds, (int, float)):
            self.calls += 1
            self.model_seconds += float(seconds)


class ErrorReply(BaseModel):
    """A failed call: the server keeps serving after every kind but load_error."""

    model_config = ConfigDict(extra="allow")

    op: Literal["error"]
    id: int | None = None
    kind: ErrorKind
    message: str
    traceback: str = ""
