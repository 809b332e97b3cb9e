"""What the checks of one `hear validate` run share: the model's server, the audio sent
and what came back, the measurements, and each check's result so far.

The session owns the server: a check that leaves it unusable (the client kills a
server whose reply has the wrong shape, a server that overran its time or died) is
followed by a fresh server for the next check that asks for one, at most
``MAX_RESTARTS`` times; after that such checks are skipped with "server stopped after
<check>". A model error the server survives (its function raised) keeps the same server.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hear_runner.contract.client import ModelClient
from hear_runner.contract.messages import Hello
from hear_runner.engines.base import Engine, ModelSource, RunningModel
from hear_runner.errors import ModelError
from hear_runner.validate.registry import Skip
from hear_runner.validate.report import Check, Result, ValidationReport

#: Fresh servers started after checks that left theirs unusable.
MAX_RESTARTS = 3


class Session:
    def __init__(self, engine: Engine, source: ModelSource, long_seconds: float, seed: int) -> None:
        self.engine = engine
        self.source = source
        self.long_seconds = long_seconds
        self.rng = np.random.default_rng(seed)
        # The server.
        self.running: RunningModel | None = None
        self.stopped_after: str | None = None  # the check after which the server was lost
        self.restarts = 0
        self.provenance: dict[str, Any] = {}
        self.peaks: dict[str, int] = {}
        self.measurements: dict[str, float | int | None] = {}
        # What the checks found, for the checks that need it.
        self.hello: Hello | None = None  # from load
        self.audio: dict[str, np.ndarray] = {}  # sent, by key (see noise)
        self.timestamps: dict[float, tuple[np.ndarray, np.ndarray]] = {}  # clip length -> output
        self.scene: np.ndarray | None = None  # from scene_shape
        self.nonfinite: dict[str, int] = {}  # output -> count of NaN/Inf values
        self.checks: list[Check] = []
        self.results: dict[str, Result] = {}

    # -- the server ------------------------------------------------------------------
    def client(self) -> ModelClient:
        """The live server's client; a fresh server if the last one was lost."""
        if self.running is not None:
            return self.running.client
        if self.hello is None:
            raise Skip("the model did not load")
        if self.restarts >= MAX_RESTARTS:
            raise Skip(
                f"server stopped after {self.stopped_after} ({self.restarts} restarts already)"
            )
        self.restarts += 1
        try:
            self.running = self.engine.start(self.source)
        except ModelError as e:
            self.restarts = MAX_RESTARTS  # no further tries
            raise Skip(
                f"server stopped after {self.stopped_after} and did not restart: {e}"
            ) from None
        return self.running.client

    def lose_server(self, after: str) -> None:
        """The server is unusable after check ``after``: kill it (the next check restarts one)."""
        if self.running is not None:
            self.record_usage()
            self.running.close(graceful=False)
            self.running = None
        self.stopped_after = after

    def record_usage(self) -> None:
        if self.running is None:
            return
        usage = self.running.client.usage
        for name in ("peak_rss_bytes", "peak_gpu_bytes"):
            value = getattr(usage, name)
            if value is not None:
                self.peaks[name] = max(value, self.peaks.get(name, 0))

    def stop(self, graceful: bool) -> None:
        if self.running is not None:
            self.record_usage()
            self.running.close(graceful=graceful)
            self.running = None

    # -- what the checks share -------------------------------------------------------
    @property
    def loaded(self) -> Hello:
        """The hello: every check but load declares that it needs one."""
        assert self.hello is not None
        return self.hello

    def noise(self, key: str, clips: int, seconds: float) -> np.ndarray:
        """Random audio in [-1, 1), as hear-validator sends; the same array for one key."""
        if key not in self.audio:
            self.audio[key] = self.random_audio(clips, seconds)
        return self.audio[key]

    def random_audio(self, clips: int, seconds: float) -> np.ndarray:
        samples = int(seconds * self.loaded.sample_rate)
        audio = self.rng.random((clips, samples), dtype=np.float32)
        return audio * 2.0 - 1.0  # float32 in [-1, 1), as hear-validator's torch.rand * 2 - 1

    def count_nonfinite(self, output: str, array: np.ndarray) -> None:
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        self.nonfinite[output] = self.nonfinite.get(output, 0) + bad

    def ms(self, audio: np.ndarray) -> float:
        """The length of ``audio``'s clips in ms."""
        return audio.shape[1] * 1000.0 / self.loaded.sample_rate

    def add(self, check: Check) -> None:
        self.checks.append(check)
        self.results[check.name] = check.result

    def report(self) -> ValidationReport:
        module = self.hello.model if self.hello is not None else None
        if module is None and self.source.kind == "module":
            module = self.source.ref
        return ValidationReport(
            model=self.source.ref,
            kind=self.source.kind,
            engine=self.engine.name,
            image_id=self.provenance.get("image_id"),
            module=module,
            hello=self.hello.model_dump() if self.hello is not None else None,
            checks=self.checks,
            measurements=self.measurements,
            restarts=self.restarts,
            passed=all(c.result != "fail" for c in self.checks),
        )
