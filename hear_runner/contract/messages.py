"""Pydantic models of the contract's JSON headers, for the host side.

The server builds these headers from plain dicts (it has no pydantic);
the host validates every header it receives against these models, strictly
(an integer field takes no float, string or boolean) and within bounds, so
that no size a server announces can make the host allocate absurd amounts.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

ErrorKind = Literal["bad_request", "model_error", "out_of_memory", "load_error"]

#: Sample rates a hello may announce: HEAR models use 16-48 kHz; 384 kHz is the
#: highest rate audio interfaces offer.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1_000, 384_000

#: Largest embedding size a hello may announce: 2^16, over 5x the largest of HEAR 2021
#: (about 12,288); one float32 frame of it is 256 KiB.
MAX_EMBEDDING_SIZE = 1 << 16

#: Longest string field (model, device, device_name, audio_format, versions keys and values).
MAX_TEXT = 256

#: Most entries in a hello's ``versions``.
MAX_VERSIONS = 64

Text = Annotated[str, Field(max_length=MAX_TEXT)]
ByteCount = Annotated[int, Field(ge=0, le=1 << 62)]


class Hello(BaseModel):
    """What a server announces once its model is loaded."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True)

    v: Literal[1]
    op: Literal["hello"]
    model: Text
    sample_rate: int = Field(ge=MIN_SAMPLE_RATE, le=MAX_SAMPLE_RATE)
    scene_embedding_size: int = Field(ge=1, le=MAX_EMBEDDING_SIZE)
    timestamp_embedding_size: int = Field(ge=1, le=MAX_EMBEDDING_SIZE)
    device: Text
    audio_format: Text = "unknown"
    load_seconds: float = Field(0.0, ge=0, allow_inf_nan=False)
    versions: dict[Text, Text] = Field({}, max_length=MAX_VERSIONS)
    device_name: Text | None = None  # the GPU's name, or "cpu" (absent from old servers)
    peak_rss_bytes: ByteCount | None = None  # after loading the model
    peak_gpu_bytes: ByteCount | None = None


class Usage(BaseModel):
    """What a server has used so far: updated from the hello and from every reply."""

    calls: int = 0
    model_seconds: float = 0.0  # time inside the model's functions, as the server measured it
    peak_rss_bytes: int | None = None
    peak_gpu_bytes: int | None = None

    def update(self, header: dict[str, object]) -> None:
        """Take a header's figures; values of the wrong type or out of range are ignored."""
        for name in ("peak_rss_bytes", "peak_gpu_bytes"):
            value = header.get(name)
            if type(value) is int and 0 <= value <= 1 << 62:
                setattr(self, name, max(value, getattr(self, name) or 0))
        seconds = header.get("seconds")
        if type(seconds) in (int, float) and 0 <= seconds <= 1e9:  # type: ignore[operator]
            self.calls += 1
            self.model_seconds += float(seconds)  # type: ignore[arg-type]


class ErrorReply(BaseModel):
    """A failed call: the server keeps serving after every kind but load_error."""

    model_config = ConfigDict(extra="allow", strict=True)

    op: Literal["error"]
    id: int | None = None
    kind: ErrorKind
    message: str
    traceback: str = ""
