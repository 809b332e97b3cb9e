"""`hear validate`: does a model honour the HEAR API and this runner's contract?

Every check hear-validator (HEAR 2021) makes, asked through the contract server
as `hear run` would ask it, plus what a benchmark run depends on: finite
outputs, determinism, batch-size invariance, a long input, cold-start time and
memory, and (for images) labels that agree with the hello.

The validator owns its server: it times ``engine.start`` (cold start), and a
check that leaves the server unusable (the client kills a server whose reply has
the wrong shape, a server that overran its time or died) is followed by a fresh
server for the next check, at most ``MAX_RESTARTS`` times; after that, checks
that need a server are skipped with "skipped: server stopped after <check>".
A model error the server survives (its function raised) keeps the same server.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from hear_runner.embed.pipeline import HOP_TOLERANCE_MS
from hear_runner.engines.base import Engine, ModelSource, RunningModel
from hear_runner.errors import ModelError

#: The sample rates HEAR tasks are released at (hear-validator's list, with 32 kHz).
SAMPLE_RATES = (16000, 22050, 32000, 44100, 48000)
#: hear-validator's timestamp calls: two clips of each length, seconds.
TIMESTAMP_LENGTHS = (1.07, 1.98, 4.0)
#: hear-validator's scene call: four clips of 2.74 s.
SCENE_CLIPS, SCENE_LENGTH = 4, 2.74
#: The same call twice: max |a - b| <= atol + rtol * max |a|.
DETERMINISM_RTOL, DETERMINISM_ATOL = 1e-4, 1e-5
#: One call of four clips against four calls of one (batched arithmetic may reorder sums).
BATCH_RTOL, BATCH_ATOL = 1e-3, 1e-4
#: hear-validator's advice: a hop over 50 ms is too coarse for music transcription.
SUGGESTED_MAX_HOP_MS = 50.0
#: Fresh servers started after checks that left theirs unusable.
MAX_RESTARTS = 3
#: Model errors after which the server keeps serving (its function raised, or out of memory).
SURVIVABLE = ("model_error", "out_of_memory")

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


class _Skip(Exception):
    """The check cannot run: its detail says why."""


class _Fail(Exception):
    """The check ran and the model does not honour it."""


CHECK_NAMES = (
    "load",
    "sample_rate",
    "embedding_sizes",
    "image_labels",
    "timestamp_shapes",
    "timestamps_shared",
    "timestamp_hop",
    "timestamp_range",
    "scene_shape",
    "determinism",
    "batch_invariance",
    "long_input",
    "finite",
    "memory",
)


def validate(
    engine: Engine,
    source: ModelSource,
    long_seconds: float = 1200.0,
    seed: int = 0,
    on_check: Callable[[Check], None] | None = None,
) -> ValidationReport:
    """Start ``source`` on ``engine``, run every check, stop the server; the report says
    what passed. ``long_seconds`` 0 skips the long-input check."""
    validator = _Validator(engine, source, long_seconds, seed, on_check)
    try:
        validator.run()
    except BaseException:  # Ctrl-C: the server may be stuck in a call, kill it
        validator.stop(graceful=False)
        raise
    validator.stop(graceful=True)
    return validator.report()


class _Validator:
    def __init__(
        self,
        engine: Engine,
        source: ModelSource,
        long_seconds: float,
        seed: int,
        on_check: Callable[[Check], None] | None,
    ) -> None:
        self.engine = engine
        self.source = source
        self.long_seconds = long_seconds
        self.rng = np.random.default_rng(seed)
        self.on_check = on_check or (lambda c: None)
        self.checks: list[Check] = []
        self.running: RunningModel | None = None
        self.stopped_after: str | None = None  # the check after which the server was lost
        self.restarts = 0
        self.hello: Any = None
        self.provenance: dict[str, Any] = {}
        self.measurements: dict[str, float | int | None] = {}
        self.peaks: dict[str, int] = {}
        # What the calls returned, for the checks that look at it.
        self.audio: dict[str, np.ndarray] = {}
        self.timestamp_out: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        self.scene_out: np.ndarray | None = None
        self.nonfinite: dict[str, int] = {}  # output -> count of NaN/Inf values
        self.current = ""

    # -- the run ---------------------------------------------------------------------
    def run(self) -> None:
        for name in CHECK_NAMES:
            self._run_check(name, getattr(self, f"check_{name}"))

    def _run_check(self, name: str, body: Callable[[], str]) -> None:
        self.current = name
        started = time.perf_counter()
        result: Result = "pass"
        traceback = ""
        try:
            if self.hello is None and name != "load":
                raise _Skip("skipped: the model did not load")
            detail = body()
        except _Skip as e:
            result, detail = "skip", str(e)
        except _Fail as e:
            result, detail = "fail", str(e)
        except ModelError as e:
            result, detail, traceback = "fail", str(e), e.detail
            if e.kind not in SURVIVABLE:
                self._lose_server(name)
            elif e.kind == "out_of_memory" and name == "long_input":
                detail += " (embed long clips in chunks with hear run --max-clip-seconds)"
        seconds = round(time.perf_counter() - started, 3)
        check = Check(name=name, result=result, detail=detail, seconds=seconds, traceback=traceback)
        self.checks.append(check)
        self.on_check(check)

    def _lose_server(self, name: str) -> None:
        if self.running is not None:
            self._record_usage()
            self.running.close(graceful=False)
            self.running = None
        self.stopped_after = name

    def _client(self) -> Any:
        """The live server's client; a fresh server if the last one was lost."""
        if self.running is not None:
            return self.running.client
        if self.hello is None:
            raise _Skip("skipped: the model did not load")
        if self.restarts >= MAX_RESTARTS:
            raise _Skip(
                f"skipped: server stopped after {self.stopped_after} "
                f"({self.restarts} restarts already)"
            )
        self.restarts += 1
        try:
            self.running = self.engine.start(self.source)
        except ModelError as e:
            self.restarts = MAX_RESTARTS  # no further tries
            raise _Skip(
                f"skipped: server stopped after {self.stopped_after} and did not restart: {e}"
            ) from None
        return self.running.client

    def _record_usage(self) -> None:
        if self.running is None:
            return
        usage = self.running.client.usage
        for name in ("peak_rss_bytes", "peak_gpu_bytes"):
            value = getattr(usage, name)
            if value is not None:
                self.peaks[name] = max(value, self.peaks.get(name, 0))

    def stop(self, graceful: bool) -> None:
        if self.running is not None:
            self._record_usage()
            self.running.close(graceful=graceful)
            self.running = None

    def report(self) -> ValidationReport:
        hello = self.hello.model_dump() if self.hello is not None else None
        module = self.hello.model if self.hello is not None else None
        if module is None and self.source.kind == "module":
            module = self.source.ref
        return ValidationReport(
            model=self.source.ref,
            kind=self.source.kind,
            engine=self.engine.name,
            image_id=self.provenance.get("image_id"),
            module=module,
            hello=hello,
            checks=self.checks,
            measurements=self.measurements,
            restarts=self.restarts,
            passed=all(c.result != "fail" for c in self.checks),
        )

    # -- helpers ---------------------------------------------------------------------
    def _noise(self, key: str, clips: int, seconds: float) -> np.ndarray:
        """Random audio in [-1, 1), as hear-validator sends; the same array for one key."""
        if key not in self.audio:
            self.audio[key] = self._random_audio(clips, seconds)
        return self.audio[key]

    def _random_audio(self, clips: int, seconds: float) -> np.ndarray:
        samples = int(seconds * self.hello.sample_rate)
        audio = self.rng.random((clips, samples), dtype=np.float32)
        return audio * 2.0 - 1.0  # float32 in [-1, 1), as hear-validator's torch.rand * 2 - 1

    def _count_nonfinite(self, output: str, array: np.ndarray) -> None:
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        self.nonfinite[output] = self.nonfinite.get(output, 0) + bad

    def _ms(self, audio: np.ndarray) -> float:
        return audio.shape[1] * 1000.0 / self.hello.sample_rate

    def _need_timestamps(self) -> dict[float, tuple[np.ndarray, np.ndarray]]:
        if len(self.timestamp_out) < len(TIMESTAMP_LENGTHS):
            raise _Skip("skipped: needs the timestamp embeddings (timestamp_shapes did not pass)")
        return self.timestamp_out

    def _failed(self, name: str) -> bool:
        return any(c.name == name and c.result == "fail" for c in self.checks)

    # -- checks ----------------------------------------------------------------------
    def check_load(self) -> str:
        replaced = self._entrypoint_problem()
        started = time.perf_counter()
        try:
            self.running = self.engine.start(self.source)  # a crash in load_model: ModelError
        except ModelError as e:
            if replaced:
                e.args = (f"{e}; {replaced}",)
            raise
        cold = time.perf_counter() - started
        self.provenance = self.running.provenance
        hello = self.running.client.hello
        assert hello is not None  # engine.start returns once the hello is in
        self.hello = hello
        self.measurements.update(
            cold_start_seconds=round(cold, 3),
            load_seconds=hello.load_seconds,
            peak_rss_bytes_after_load=hello.peak_rss_bytes,
        )
        if replaced:  # it served, but not the way hear/base starts every model
            raise _Fail(replaced)
        return (
            f"{self.running.label}: hello after {cold:.2f} s (import and load_model "
            f"{hello.load_seconds:.2f} s), {hello.audio_format} on {hello.device}"
        )

    def _entrypoint_problem(self) -> str:
        """For an image: a line naming it and both entrypoints if it replaced hear/base's."""
        inspect = getattr(self.engine, "inspect_image", None)
        if self.source.kind != "image" or inspect is None:
            return ""
        from hear_runner.engines.docker import entrypoint_problem

        return entrypoint_problem(inspect(self.source.ref), self.source.ref)

    def check_sample_rate(self) -> str:
        rate = self.hello.sample_rate
        if rate not in SAMPLE_RATES:
            raise _Fail(f"{rate} Hz is not one of {', '.join(map(str, SAMPLE_RATES))}")
        return f"{rate} Hz"

    def check_embedding_sizes(self) -> str:
        sizes = (self.hello.scene_embedding_size, self.hello.timestamp_embedding_size)
        if not all(isinstance(s, int) and s > 0 for s in sizes):
            raise _Fail(f"sizes must be positive integers, got scene {sizes[0]!r}, "
                        f"timestamp {sizes[1]!r}")  # fmt: skip
        return f"scene {sizes[0]}, timestamp {sizes[1]}"

    def check_image_labels(self) -> str:
        if self.source.kind != "image":
            raise _Skip("skipped: not an image")
        labels = self.provenance.get("image_labels") or {}
        if "org.hear.model" not in labels:
            raise _Skip("skipped: no org.hear.* labels stamped (not built by hear image build)")
        import json

        hello = self.hello
        expected = {
            "org.hear.model": hello.model,
            "org.hear.sample_rate": str(hello.sample_rate),
            "org.hear.scene_embedding_size": str(hello.scene_embedding_size),
            "org.hear.timestamp_embedding_size": str(hello.timestamp_embedding_size),
        }
        wrong = [f"{k}={labels.get(k)!r} but the hello says {v!r}"
                 for k, v in expected.items() if labels.get(k) != v]  # fmt: skip
        stamped_versions = labels.get("org.hear.versions")
        if stamped_versions is not None:
            try:
                versions = json.loads(stamped_versions)
            except json.JSONDecodeError:
                versions = None
            if versions != hello.versions:
                wrong.append(f"org.hear.versions={stamped_versions} but the hello says "
                             f"{json.dumps(hello.versions, sort_keys=True)}")  # fmt: skip
        if wrong:
            raise _Fail("; ".join(wrong))
        return f"{len(expected) + (stamped_versions is not None)} labels agree with the hello"

    def check_timestamp_shapes(self) -> str:
        client = self._client()
        shapes = []
        for length in TIMESTAMP_LENGTHS:
            audio = self._noise(f"timestamps {length}", 2, length)
            context = f"timestamps of 2 clips of {length} s"
            embeddings, times = client.timestamps(audio, context)  # wrong shape: ModelError
            n, frames, _ = embeddings.shape
            if embeddings.dtype != np.float32:
                raise _Fail(f"{context}: embeddings are {embeddings.dtype}, not float32")
            if times.shape != (n, frames):
                raise _Fail(f"{context}: timestamps of shape {times.shape}, expected {(n, frames)}")
            if frames == 0:
                raise _Fail(f"{context}: no frames")
            self._count_nonfinite(f"timestamp embeddings ({length} s)", embeddings)
            self._count_nonfinite(f"timestamps ({length} s)", times)
            self.timestamp_out[length] = (embeddings, times)
            shapes.append(f"{length} s: {list(embeddings.shape)}")
        return "float32 " + ", ".join(shapes)

    def check_timestamps_shared(self) -> str:
        outputs = self._need_timestamps()
        for length, (_, times) in outputs.items():
            if not np.array_equal(times[0], times[1], equal_nan=True):
                worst = np.nanmax(np.abs(times[0] - times[1]))
                raise _Fail(
                    f"{length} s clips of the same length got different timestamps "
                    f"(up to {worst:.3f} ms apart)"
                )
        return "both clips of each length get the same timestamps"

    def check_timestamp_hop(self) -> str:
        outputs = self._need_timestamps()
        hops_seen = []
        for length, (_, times) in outputs.items():
            problem, hop = _hop_problem(times)
            if problem:
                raise _Fail(f"{length} s clips: {problem}")
            if hop is not None:
                hops_seen.append(hop)
        if not hops_seen:
            return "one frame per clip: no hop to check"
        hop = float(np.mean(hops_seen))
        note = (
            f"; note: over the {SUGGESTED_MAX_HOP_MS:.0f} ms suggested for music transcription"
            if hop > SUGGESTED_MAX_HOP_MS
            else ""
        )
        return f"regular {hop:.2f} ms hop (within {HOP_TOLERANCE_MS:g} ms), increasing{note}"

    def check_timestamp_range(self) -> str:
        outputs = self._need_timestamps()
        notes = []
        for length, (_, times) in outputs.items():
            clip_ms = self._ms(self.audio[f"timestamps {length}"])
            problem, note = _range_problem(times, clip_ms)
            if problem:
                raise _Fail(f"{length} s clips: {problem}")
            if note:
                notes.append(f"{length} s: {note}")
        firsts = ", ".join(f"{t[0, 0]:.1f}" for _, t in outputs.values())
        lasts = ", ".join(f"{t[0, -1]:.1f}" for _, t in outputs.values())
        detail = f"first at {firsts} ms, last at {lasts} ms (clips of {_lengths_ms()} ms)"
        return detail + (f"; notes: {'; '.join(notes)}" if notes else "")

    def check_scene_shape(self) -> str:
        client = self._client()
        audio = self._noise("scene", SCENE_CLIPS, SCENE_LENGTH)
        embeddings = client.scene(audio, f"scene embeddings of {SCENE_CLIPS} clips "
                                         f"of {SCENE_LENGTH} s")  # fmt: skip
        if embeddings.dtype != np.float32:
            raise _Fail(f"embeddings are {embeddings.dtype}, not float32")
        self._count_nonfinite("scene embeddings", embeddings)
        self.scene_out = embeddings
        return f"float32 {list(embeddings.shape)} for {SCENE_CLIPS} clips of {SCENE_LENGTH} s"

    def check_determinism(self) -> str:
        compared = []
        length = TIMESTAMP_LENGTHS[1]
        if length in self.timestamp_out:
            client = self._client()
            embeddings, times = client.timestamps(
                self.audio[f"timestamps {length}"], f"timestamps of 2 clips of {length} s, again"
            )
            first_embeddings, first_times = self.timestamp_out[length]
            for what, a, b in (
                ("timestamp embeddings", first_embeddings, embeddings),
                ("timestamps", first_times, times),
            ):
                compared.append(_compare(what, a, b, DETERMINISM_RTOL, DETERMINISM_ATOL))
        if self.scene_out is not None:
            client = self._client()
            again = client.scene(self.audio["scene"], "scene embeddings, again")
            compared.append(
                _compare("scene embeddings", self.scene_out, again, DETERMINISM_RTOL,
                         DETERMINISM_ATOL)
            )  # fmt: skip
        if not compared:
            raise _Skip("skipped: nothing to repeat (timestamp_shapes, scene_shape did not pass)")
        failed = [text for ok, text in compared if not ok]
        if failed:
            raise _Fail("the same call twice differs: " + "; ".join(failed))
        return "the same call twice: " + "; ".join(text for _, text in compared)

    def check_batch_invariance(self) -> str:
        if self.scene_out is None:
            raise _Skip("skipped: needs the scene embeddings (scene_shape did not pass)")
        if self._failed("determinism"):
            raise _Skip("skipped: outputs are not deterministic (determinism failed)")
        client = self._client()
        audio = self.audio["scene"]
        alone = np.concatenate(
            [client.scene(audio[i : i + 1], f"scene embedding of clip {i + 1} alone")
             for i in range(len(audio))]
        )  # fmt: skip
        ok, text = _compare("scene embeddings", self.scene_out, alone, BATCH_RTOL, BATCH_ATOL)
        if not ok:
            raise _Fail(f"{SCENE_CLIPS} clips in one call against one by one: {text}")
        return f"{SCENE_CLIPS} clips in one call against one by one: {text}"

    def check_long_input(self) -> str:
        if self.long_seconds <= 0:
            raise _Skip("skipped: --long-seconds 0")
        client = self._client()
        audio = self._random_audio(1, self.long_seconds)
        started = time.perf_counter()
        embeddings, times = client.timestamps(audio, f"one clip of {self.long_seconds:g} s")
        seconds = time.perf_counter() - started
        speed = self.long_seconds / seconds if seconds > 0 else float("inf")
        self.measurements.update(
            long_input_seconds=round(seconds, 3), long_input_audio_per_second=round(speed, 1)
        )
        self._count_nonfinite(f"timestamp embeddings ({self.long_seconds:g} s)", embeddings)
        self._count_nonfinite(f"timestamps ({self.long_seconds:g} s)", times)
        taken = f"{self.long_seconds:g} s of audio in {seconds:.1f} s ({speed:.1f} audio s/s)"
        if embeddings.shape[1] == 0:
            raise _Fail(f"{taken}: no frames")
        # Rounding a hop in samples drifts over long audio: the timestamps then run past
        # the clip's end (or stop short of it), which short clips cannot show.
        problem, _ = _hop_problem(times)
        if not problem:
            problem, _ = _range_problem(times, self._ms(audio))
        if problem:
            raise _Fail(f"{taken}: {problem}")
        return f"{taken}, {embeddings.shape[1]} frames, last at {times[0, -1]:.1f} ms"

    def check_finite(self) -> str:
        if not self.nonfinite:
            raise _Skip("skipped: no output to look at")
        bad = {k: v for k, v in self.nonfinite.items() if v}
        if bad:
            raise _Fail("NaN or Inf in " + ", ".join(f"{k} ({v} values)" for k, v in bad.items()))
        return f"no NaN or Inf in {len(self.nonfinite)} outputs"

    def check_memory(self) -> str:
        self._record_usage()
        after_load = self.measurements.get("peak_rss_bytes_after_load")
        self.measurements.update(
            peak_rss_bytes=self.peaks.get("peak_rss_bytes"),
            peak_gpu_bytes=self.peaks.get("peak_gpu_bytes"),
        )
        if after_load is None and not self.peaks:
            raise _Skip("skipped: the server reported no memory use")
        parts = []
        if after_load is not None:
            parts.append(f"peak RSS {_mib(after_load)} after load")
        if "peak_rss_bytes" in self.peaks:
            parts.append(f"{_mib(self.peaks['peak_rss_bytes'])} at the end")
        gpu = self.peaks.get("peak_gpu_bytes")
        parts.append(f"GPU {_mib(gpu)}" if gpu is not None else "no GPU")
        return ", ".join(parts)


def _hop_problem(times: np.ndarray) -> tuple[str, float | None]:
    """hear-validator's rule: every hop within 1 ms of the mean hop; and increasing."""
    if times.shape[1] < 2:
        return "", None
    hops = np.diff(times, axis=1)
    mean = float(np.mean(hops))
    if not (hops > 0).all():
        row, col = np.argwhere(~(hops > 0))[0]
        return (
            f"timestamps do not increase: {times[row, col]:.3f} ms then "
            f"{times[row, col + 1]:.3f} ms (frames {col + 1} and {col + 2})",
            mean,
        )
    deviation = float(np.max(np.abs(hops - mean)))
    if deviation > HOP_TOLERANCE_MS:
        return (
            f"irregular hop: from {hops.min():.3f} to {hops.max():.3f} ms around a mean of "
            f"{mean:.3f} ms (must stay within {HOP_TOLERANCE_MS:g} ms of it)",
            mean,
        )
    return "", mean


def _range_problem(times: np.ndarray, clip_ms: float) -> tuple[str, str]:
    """hear-validator's rules on where timestamps lie; returns (problem, note)."""
    first, last = float(np.min(times)), float(np.max(times))
    if first < 0:
        return f"a negative timestamp ({first:.3f} ms)", ""
    if last > clip_ms + HOP_TOLERANCE_MS:
        return (
            f"last timestamp {last:.3f} ms is past the end of the {clip_ms:.3f} ms clip "
            f"(tolerance {HOP_TOLERANCE_MS:g} ms)",
            "",
        )
    if times.shape[1] < 2:
        return "", ""
    hop = float(np.mean(np.diff(times, axis=1)))
    if last < clip_ms - 2 * hop:
        return (
            f"timestamps end at {last:.3f} ms, more than two hops ({hop:.3f} ms) before the "
            f"end of the {clip_ms:.3f} ms clip: no embeddings for its end",
            "",
        )
    notes = []
    if first > hop:
        notes.append(f"first timestamp {first:.1f} ms is later than one hop")
    if last < clip_ms - hop or last < clip_ms - 50:
        notes.append(f"ends at {last:.1f} ms of {clip_ms:.1f} ms")
    return "", ", ".join(notes)


def _compare(what: str, a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> tuple[bool, str]:
    """Close when max |a - b| <= atol + rtol * max |a| (NaN and Inf must be in the same places)."""
    if a.shape != b.shape:
        return False, f"{what}: shapes {list(a.shape)} and {list(b.shape)}"
    finite_a, finite_b = np.isfinite(a), np.isfinite(b)
    if not np.array_equal(finite_a, finite_b):
        return False, f"{what}: NaN or Inf in different places"
    both = finite_a & finite_b
    if not both.any():
        return True, f"{what}: nothing finite to compare"
    diff = float(np.max(np.abs(a[both].astype(np.float64) - b[both])))
    scale = float(np.max(np.abs(a[both])))
    limit = atol + rtol * scale
    text = (
        f"{what}: max |diff| {diff:.3g} (limit {limit:.3g} = {atol:g} + {rtol:g} x max |x| "
        f"{scale:.3g})"
    )
    return diff <= limit, text


def _lengths_ms() -> str:
    return ", ".join(f"{length * 1000:g}" for length in TIMESTAMP_LENGTHS)


def _mib(value: int | float | None) -> str:
    return "unknown" if value is None else f"{value / 2**20:.0f} MiB"
