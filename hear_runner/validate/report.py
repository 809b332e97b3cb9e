"""What `hear validate` reports: each check's result, and the model's measurements."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

Result = Literal["pass", "fail", "skip"]


class Check(BaseModel):
    name: str
    result: Result
    detail: str
    seconds: float
    traceback: str = ""  # the model's, when the server sent one with its error


class ValidationReport(BaseModel):
    model: str  # the image or module as named on the command line
    kind: Literal["image", "module"]
    engine: str
    image_id: str | None = None
    module: str | None = None  # the HEAR module served (from the hello, else as named)
    hello: dict[str, Any] | None = None
    checks: list[Check]
    #: cold_start_seconds, load_seconds, peak_rss_bytes_after_load, peak_rss_bytes,
    #: peak_gpu_bytes, long_input_seconds, long_input_audio_per_second (when measured)
    measurements: dict[str, float | int | None] = {}
    restarts: int = 0
    passed: bool

    @property
    def counts(self) -> dict[str, int]:
        return {r: sum(c.result == r for c in self.checks) for r in ("pass", "fail", "skip")}
