"""The checks of `hear validate`, in report order, each with what it needs declared.

Every check hear-validator (HEAR 2021) makes, asked through the contract server as
`hear run` would ask it, plus what a benchmark run depends on: finite outputs,
determinism, batch-size invariance, a long input, cold-start time and memory, and (for
images) labels that agree with the hello. A check returns the detail of its pass, or
raises Fail (or a ModelError from the server) or Skip.
"""

from __future__ import annotations

import json
import time

import numpy as np

from hear_runner.embed.pipeline import HOP_TOLERANCE_MS
from hear_runner.errors import ModelError
from hear_runner.validate.registry import Fail, Need, Registry, Skip
from hear_runner.validate.rules import compare, hop_problem, range_problem
from hear_runner.validate.session import Session

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

CHECKS = Registry[Session]()

# -- what checks need from earlier ones ------------------------------------------------------
HELLO = Need[Session](("load",), lambda s: s.hello is not None, "the model did not load")
TIMESTAMPS = Need[Session](
    ("timestamp_shapes",),
    lambda s: len(s.timestamps) == len(TIMESTAMP_LENGTHS),
    "needs the timestamp embeddings (timestamp_shapes did not pass)",
)
SCENE = Need[Session](
    ("scene_shape",),
    lambda s: s.scene is not None,
    "needs the scene embeddings (scene_shape did not pass)",
)
#: Determinism repeats whichever of the two calls came back (the 1.98 s timestamps, the scene).
REPEATABLE = Need[Session](
    ("timestamp_shapes", "scene_shape"),
    lambda s: TIMESTAMP_LENGTHS[1] in s.timestamps or s.scene is not None,
    "nothing to repeat (timestamp_shapes, scene_shape did not pass)",
)
DETERMINISTIC = Need[Session](
    ("determinism",),
    lambda s: s.results.get("determinism") != "fail",
    "outputs are not deterministic (determinism failed)",
)
OUTPUTS = Need[Session](
    ("timestamp_shapes", "scene_shape", "long_input"),
    lambda s: bool(s.nonfinite),
    "no output to look at",
)


@CHECKS.check("load")
def check_load(session: Session) -> str:
    replaced = _entrypoint_problem(session)
    started = time.perf_counter()
    try:
        running = session.engine.start(session.source)  # a crash in load_model: ModelError
    except ModelError as e:
        if replaced:
            e.args = (f"{e}; {replaced}",)
        raise
    cold = time.perf_counter() - started
    session.running = running
    session.provenance = running.provenance
    hello = running.client.hello
    assert hello is not None  # engine.start returns once the hello is in
    session.hello = hello
    session.measurements.update(
        cold_start_seconds=round(cold, 3),
        load_seconds=hello.load_seconds,
        peak_rss_bytes_after_load=hello.peak_rss_bytes,
    )
    if replaced:  # it served, but not the way hear/base starts every model
        raise Fail(replaced)
    return (
        f"{running.label}: hello after {cold:.2f} s (import and load_model "
        f"{hello.load_seconds:.2f} s), {hello.audio_format} on {hello.device}"
    )


def _entrypoint_problem(session: Session) -> str:
    """For an image: a line naming it and both entrypoints if it replaced hear/base's."""
    inspect = getattr(session.engine, "inspect_image", None)
    if session.source.kind != "image" or inspect is None:
        return ""
    from hear_runner.engines.docker import entrypoint_problem

    return entrypoint_problem(inspect(session.source.ref), session.source.ref)


@CHECKS.check("sample_rate", HELLO)
def check_sample_rate(session: Session) -> str:
    rate = session.loaded.sample_rate
    if rate not in SAMPLE_RATES:
        raise Fail(f"{rate} Hz is not one of {', '.join(map(str, SAMPLE_RATES))}")
    return f"{rate} Hz"


@CHECKS.check("embedding_sizes", HELLO)
def check_embedding_sizes(session: Session) -> str:
    sizes = (session.loaded.scene_embedding_size, session.loaded.timestamp_embedding_size)
    if not all(isinstance(s, int) and s > 0 for s in sizes):
        raise Fail(f"sizes must be positive integers, got scene {sizes[0]!r}, "
                   f"timestamp {sizes[1]!r}")  # fmt: skip
    return f"scene {sizes[0]}, timestamp {sizes[1]}"


@CHECKS.check("image_labels", HELLO)
def check_image_labels(session: Session) -> str:
    if session.source.kind != "image":
        raise Skip("not an image")
    labels = session.provenance.get("image_labels") or {}
    if "org.hear.model" not in labels:
        raise Skip("no org.hear.* labels stamped (not built by hear image build)")
    hello = session.loaded
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
        raise Fail("; ".join(wrong))
    return f"{len(expected) + (stamped_versions is not None)} labels agree with the hello"


@CHECKS.check("timestamp_shapes", HELLO)
def check_timestamp_shapes(session: Session) -> str:
    client = session.client()
    shapes = []
    for length in TIMESTAMP_LENGTHS:
        audio = session.noise(f"timestamps {length}", 2, length)
        context = f"timestamps of 2 clips of {length} s"
        embeddings, times = client.timestamps(audio, context)  # wrong shape: ModelError
        n, frames, _ = embeddings.shape
        if embeddings.dtype != np.float32:
            raise Fail(f"{context}: embeddings are {embeddings.dtype}, not float32")
        if times.shape != (n, frames):
            raise Fail(f"{context}: timestamps of shape {times.shape}, expected {(n, frames)}")
        if frames == 0:
            raise Fail(f"{context}: no frames")
        session.count_nonfinite(f"timestamp embeddings ({length} s)", embeddings)
        session.count_nonfinite(f"timestamps ({length} s)", times)
        session.timestamps[length] = (embeddings, times)
        shapes.append(f"{length} s: {list(embeddings.shape)}")
    return "float32 " + ", ".join(shapes)


@CHECKS.check("timestamps_shared", HELLO, TIMESTAMPS)
def check_timestamps_shared(session: Session) -> str:
    for length, (_, times) in session.timestamps.items():
        if not np.array_equal(times[0], times[1], equal_nan=True):
            worst = np.nanmax(np.abs(times[0] - times[1]))
            raise Fail(
                f"{length} s clips of the same length got different timestamps "
                f"(up to {worst:.3f} ms apart)"
            )
    return "both clips of each length get the same timestamps"


@CHECKS.check("timestamp_hop", HELLO, TIMESTAMPS)
def check_timestamp_hop(session: Session) -> str:
    hops_seen = []
    for length, (_, times) in session.timestamps.items():
        problem, hop = hop_problem(times)
        if problem:
            raise Fail(f"{length} s clips: {problem}")
        if hop is not None:
            hops_seen.append(hop)
    if not hops_seen:
        return "one frame per clip: no hop to check"
    mean = float(np.mean(hops_seen))
    note = (
        f"; note: over the {SUGGESTED_MAX_HOP_MS:.0f} ms suggested for music transcription"
        if mean > SUGGESTED_MAX_HOP_MS
        else ""
    )
    return f"regular {mean:.2f} ms hop (within {HOP_TOLERANCE_MS:g} ms), increasing{note}"


@CHECKS.check("timestamp_range", HELLO, TIMESTAMPS)
def check_timestamp_range(session: Session) -> str:
    outputs = session.timestamps
    notes = []
    for length, (_, times) in outputs.items():
        clip_ms = session.ms(session.audio[f"timestamps {length}"])
        problem, note = range_problem(times, clip_ms)
        if problem:
            raise Fail(f"{length} s clips: {problem}")
        if note:
            notes.append(f"{length} s: {note}")
    firsts = ", ".join(f"{t[0, 0]:.1f}" for _, t in outputs.values())
    lasts = ", ".join(f"{t[0, -1]:.1f}" for _, t in outputs.values())
    lengths = ", ".join(f"{length * 1000:g}" for length in TIMESTAMP_LENGTHS)
    detail = f"first at {firsts} ms, last at {lasts} ms (clips of {lengths} ms)"
    return detail + (f"; notes: {'; '.join(notes)}" if notes else "")


@CHECKS.check("scene_shape", HELLO)
def check_scene_shape(session: Session) -> str:
    client = session.client()
    audio = session.noise("scene", SCENE_CLIPS, SCENE_LENGTH)
    embeddings = client.scene(audio, f"scene embeddings of {SCENE_CLIPS} clips "
                                     f"of {SCENE_LENGTH} s")  # fmt: skip
    if embeddings.dtype != np.float32:
        raise Fail(f"embeddings are {embeddings.dtype}, not float32")
    session.count_nonfinite("scene embeddings", embeddings)
    session.scene = embeddings
    return f"float32 {list(embeddings.shape)} for {SCENE_CLIPS} clips of {SCENE_LENGTH} s"


@CHECKS.check("determinism", HELLO, REPEATABLE)
def check_determinism(session: Session) -> str:
    compared = []
    length = TIMESTAMP_LENGTHS[1]
    if length in session.timestamps:
        embeddings, times = session.client().timestamps(
            session.audio[f"timestamps {length}"], f"timestamps of 2 clips of {length} s, again"
        )
        first_embeddings, first_times = session.timestamps[length]
        for what, a, b in (
            ("timestamp embeddings", first_embeddings, embeddings),
            ("timestamps", first_times, times),
        ):
            compared.append(compare(what, a, b, DETERMINISM_RTOL, DETERMINISM_ATOL))
    if session.scene is not None:
        again = session.client().scene(session.audio["scene"], "scene embeddings, again")
        compared.append(
            compare("scene embeddings", session.scene, again, DETERMINISM_RTOL, DETERMINISM_ATOL)
        )
    failed = [text for ok, text in compared if not ok]
    if failed:
        raise Fail("the same call twice differs: " + "; ".join(failed))
    return "the same call twice: " + "; ".join(text for _, text in compared)


@CHECKS.check("batch_invariance", HELLO, SCENE, DETERMINISTIC)
def check_batch_invariance(session: Session) -> str:
    assert session.scene is not None  # SCENE
    client = session.client()
    audio = session.audio["scene"]
    alone = np.concatenate(
        [client.scene(audio[i : i + 1], f"scene embedding of clip {i + 1} alone")
         for i in range(len(audio))]
    )  # fmt: skip
    ok, text = compare("scene embeddings", session.scene, alone, BATCH_RTOL, BATCH_ATOL)
    if not ok:
        raise Fail(f"{SCENE_CLIPS} clips in one call against one by one: {text}")
    return f"{SCENE_CLIPS} clips in one call against one by one: {text}"


@CHECKS.check(
    "long_input",
    HELLO,
    out_of_memory_hint=" (embed long clips in chunks with hear run --max-clip-seconds)",
)
def check_long_input(session: Session) -> str:
    seconds_of_audio = session.long_seconds
    if seconds_of_audio <= 0:
        raise Skip("--long-seconds 0")
    client = session.client()
    audio = session.random_audio(1, seconds_of_audio)
    started = time.perf_counter()
    embeddings, times = client.timestamps(audio, f"one clip of {seconds_of_audio:g} s")
    seconds = time.perf_counter() - started
    speed = seconds_of_audio / seconds if seconds > 0 else float("inf")
    session.measurements.update(
        long_input_seconds=round(seconds, 3), long_input_audio_per_second=round(speed, 1)
    )
    session.count_nonfinite(f"timestamp embeddings ({seconds_of_audio:g} s)", embeddings)
    session.count_nonfinite(f"timestamps ({seconds_of_audio:g} s)", times)
    taken = f"{seconds_of_audio:g} s of audio in {seconds:.1f} s ({speed:.1f} audio s/s)"
    if embeddings.shape[1] == 0:
        raise Fail(f"{taken}: no frames")
    # Rounding a hop in samples drifts over long audio: the timestamps then run past
    # the clip's end (or stop short of it), which short clips cannot show.
    problem, _ = hop_problem(times)
    if not problem:
        problem, _ = range_problem(times, session.ms(audio))
    if problem:
        raise Fail(f"{taken}: {problem}")
    return f"{taken}, {embeddings.shape[1]} frames, last at {times[0, -1]:.1f} ms"


@CHECKS.check("finite", HELLO, OUTPUTS)
def check_finite(session: Session) -> str:
    bad = {k: v for k, v in session.nonfinite.items() if v}
    if bad:
        raise Fail("NaN or Inf in " + ", ".join(f"{k} ({v} values)" for k, v in bad.items()))
    return f"no NaN or Inf in {len(session.nonfinite)} outputs"


@CHECKS.check("memory", HELLO)
def check_memory(session: Session) -> str:
    session.record_usage()
    after_load = session.measurements.get("peak_rss_bytes_after_load")
    peaks = session.peaks
    session.measurements.update(
        peak_rss_bytes=peaks.get("peak_rss_bytes"), peak_gpu_bytes=peaks.get("peak_gpu_bytes")
    )
    if after_load is None and not peaks:
        raise Skip("the server reported no memory use")
    parts = []
    if after_load is not None:
        parts.append(f"peak RSS {_mib(after_load)} after load")
    if "peak_rss_bytes" in peaks:
        parts.append(f"{_mib(peaks['peak_rss_bytes'])} at the end")
    gpu = peaks.get("peak_gpu_bytes")
    parts.append(f"GPU {_mib(gpu)}" if gpu is not None else "no GPU")
    return ", ".join(parts)


def _mib(value: int | float | None) -> str:
    return "unknown" if value is None else f"{value / 2**20:.0f} MiB"
