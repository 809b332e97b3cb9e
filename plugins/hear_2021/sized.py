"""hear2021-sized: synthetic stand-ins for the 19 HEAR 2021 tasks, at their released size.

Each folder has what the released one has for the runner's purposes (split mode, folds,
clips per split, clip durations, vocabulary size, prediction type, event density, and the
released task_metadata fields) from ``hear_2021.catalogue``'s ``SizedFacts``, so time,
memory and disk can be measured at full size without the data. The audio is cheap and
learnable, not realistic: each label is a pair of steady tones (one from a low band, one
from a high band), plus noise; a multilabel clip sums its labels' pairs, an event is its
label's pair sounding from onset to offset. Generation is seeded and deterministic; a
complete folder is reused (its ``.complete`` digest covers every parameter).

``--scale F`` multiplies each split's clip count (rounded half up, at least 2 a split);
durations never change (event clips stay 120 s). The folder is named like the released one
with the version marked synthetic, ``<task_name>-<version>-sized[F]-<mode>``, so it never
collides with a downloaded folder; task_metadata's ``task_name`` stays the released one.
Beehive States is generated as its fold0 folder only (the catalogue's first archive).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hear_2021.catalogue import CatalogueTask, SizedFacts
from hear_runner.api import (
    HearError,
    build_folder,
    params_hash,
    write_metadata,
    write_split,
    write_vocabulary,
    write_wav,
)

SUITE = "hear2021-sized"
SAMPLE_RATE = 16000
MIN_CLIPS = 2  # a split, however small the scale
# Bump when the audio or labels change, so complete folders from older code are rebuilt.
_REVISION = 1
_SEED = 2021
_LOW_BAND = (200.0, 1400.0)  # Hz: a label's first tone
_HIGH_BAND = (1800.0, 6500.0)  # Hz: its second (below 8 kHz, the 16 kHz Nyquist)
_NOISE_SECONDS = 7.0  # the noise table clips take random slices of
_CLIPS_PER_JOB = 256
_WORKERS = 2  # numpy and the WAV encoder release the GIL; two threads keep two cores busy


def parse_scale(scale: str) -> float:
    """``full`` is 1; otherwise a positive number, the factor of every split's clip count."""
    if scale == "full":
        return 1.0
    try:
        value = float(scale)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise HearError(
            f"--scale {scale!r}: {SUITE} takes full or a positive factor of the released "
            "size (e.g. 0.01)"
        )
    return value


def folder_name(task: CatalogueTask, scale: str) -> str:
    """The released ``<task_name>-<version>-<mode>`` with the version marked synthetic."""
    return f"{task.task_name}-{_version(task, parse_scale(scale))}-{task.mode}"


def _version(task: CatalogueTask, value: float) -> str:
    return f"{task.version}-sized" + ("" if value == 1 else f"{value:g}")


def clip_counts(task: CatalogueTask, scale: str) -> dict[str, int]:
    """Clips per split at ``scale``: the released count times the factor, rounded half up,
    at least :data:`MIN_CLIPS`."""
    value = parse_scale(scale)
    return {
        split: max(MIN_CLIPS, math.floor(count * value + 0.5))
        for split, count in _facts(task).split_clips.items()
    }


def _facts(task: CatalogueTask) -> SizedFacts:
    if task.sized is None:
        raise HearError(f"task {task.name} has no sized facts in the catalogue")
    return task.sized


def labels(task: CatalogueTask) -> tuple[str, ...]:
    """The released label names where the catalogue has them, else ``label000``..."""
    facts = _facts(task)
    return facts.labels or tuple(f"label{i:03d}" for i in range(facts.vocab_size))


_RELEASED_FIELDS = ("embedding_type", "prediction_type", "split_mode", "nfolds", "sample_duration")


def metadata(task: CatalogueTask, scale: str, sample_rate: int) -> dict[str, Any]:
    """task_metadata.json: the released fields, the version marked synthetic, and how the
    folder was generated."""
    value = parse_scale(scale)
    head: dict[str, Any] = {"task_name": task.task_name, "version": _version(task, value)}
    for field in _RELEASED_FIELDS:  # in hear-preprocess's key order; nfolds for k-fold only
        if field != "nfolds" or task.nfolds is not None:
            head[field] = getattr(task, field)
    head["evaluation"] = list(task.evaluation)
    return head | dict(task.extra_metadata) | {
        "mode": task.mode,
        "sample_rates": [sample_rate],
        "generator": {
            "suite": SUITE, "released_version": task.version, "scale": value,
            "seed": _SEED, "revision": _REVISION,
        },
    }  # fmt: skip


@dataclass(frozen=True)
class _Tones:
    """Every label's two tones, precomputed long enough that a clip is a slice of each."""

    low: np.ndarray  # (bands, samples) float32
    high: np.ndarray
    pair: np.ndarray  # (labels, 2): label -> (low row, high row)
    noise: np.ndarray  # (samples,) uniform in [-1, 1)

    @classmethod
    def build(cls, vocab_size: int, longest: int, sample_rate: int) -> _Tones:
        bands = max(2, math.ceil(math.sqrt(vocab_size)))
        # One extra second of each tone: a clip starts at a random offset (a random phase).
        t = np.arange(longest + sample_rate, dtype=np.float64) / sample_rate

        def table(band: tuple[float, float]) -> np.ndarray:
            freqs = np.geomspace(*band, bands)
            return np.sin(2 * np.pi * freqs[:, None] * t).astype(np.float32)

        pair = np.stack(np.divmod(np.arange(vocab_size), bands), axis=1)
        noise_rng = np.random.default_rng([_SEED, vocab_size])
        noise = noise_rng.random(round(_NOISE_SECONDS * sample_rate), dtype=np.float32) * 2 - 1
        return cls(table(_LOW_BAND), table(_HIGH_BAND), pair, noise)

    def sound(self, label: int, length: int, rng: np.random.Generator) -> np.ndarray:
        """``label``'s tone pair, ``length`` samples from a random phase."""
        low_row, high_row = self.pair[label]
        offsets = rng.integers(0, self.low.shape[1] - length + 1, size=2)
        return (self.low[low_row, offsets[0] : offsets[0] + length]
                + self.high[high_row, offsets[1] : offsets[1] + length])  # fmt: skip

    def background(self, length: int, level: float, rng: np.random.Generator) -> np.ndarray:
        """Noise at ``level``: slices of the noise table, tiled to ``length``."""
        start = int(rng.integers(0, len(self.noise)))
        if start + length <= len(self.noise):
            return self.noise[start : start + length] * np.float32(level)
        return np.resize(np.roll(self.noise, -start), length) * np.float32(level)


def _durations(task: CatalogueTask, n: int, rng: np.random.Generator) -> np.ndarray:
    """Each clip's duration in seconds: the task's fixed one, or drawn from its range."""
    if task.sample_duration is not None:
        return np.full(n, task.sample_duration)
    facts = _facts(task)
    if facts.duration_range is None or facts.mean_duration is None:
        raise HearError(f"task {task.name}: clips of their own length need a duration range")
    low, high = facts.duration_range
    # Log-normal around the published mean, cut to the published range.
    sigma = 1.0
    mu = math.log(facts.mean_duration) - sigma**2 / 2
    return np.clip(rng.lognormal(mu, sigma, n), low, high).round(3)


def _clip_labels(task: CatalogueTask, n: int, rng: np.random.Generator) -> list[list[int]]:
    """Label indices per clip: balanced classes (multiclass), or 1-3 distinct labels."""
    vocab = _facts(task).vocab_size
    if task.prediction_type == "multiclass":
        return [[int(label)] for label in rng.permutation(np.arange(n) % vocab)]
    counts = rng.integers(1, min(3, vocab) + 1, size=n)
    order = rng.random((n, vocab)).argsort(axis=1)
    return [sorted(int(label) for label in row[:k]) for row, k in zip(order, counts, strict=True)]


@dataclass(frozen=True)
class _Job:
    split: str
    names: list[str]
    durations: np.ndarray
    labels: list[list[int]]
    seed: list[int]


def _scene_jobs(task: CatalogueTask, counts: dict[str, int]) -> Iterator[_Job]:
    for split_index, (split, n) in enumerate(counts.items()):
        rng = np.random.default_rng([_SEED, split_index])
        durations = _durations(task, n, rng)
        clip_labels = _clip_labels(task, n, rng)
        names = [f"{split}-{i:06d}.wav" for i in range(n)]
        for job, start in enumerate(range(0, n, _CLIPS_PER_JOB)):
            part = slice(start, start + _CLIPS_PER_JOB)
            yield _Job(split, names[part], durations[part], clip_labels[part],
                       [_SEED, split_index, job])  # fmt: skip


def _render_scene(tones: _Tones, job: _Job, folder: Path, sample_rate: int) -> None:
    rng = np.random.default_rng(job.seed)
    for name, seconds, clip in zip(job.names, job.durations, job.labels, strict=True):
        length = round(float(seconds) * sample_rate)
        audio = tones.background(length, float(rng.uniform(0.02, 0.1)), rng)
        gain = np.float32(rng.uniform(0.15, 0.4) / len(clip))
        for label in clip:
            audio += gain * tones.sound(label, length, rng)
        write_wav(folder / str(sample_rate) / job.split / name, audio, sample_rate)


def _render_events(
    task: CatalogueTask, tones: _Tones, job: _Job, folder: Path, sample_rate: int
) -> dict[str, list[dict[str, Any]]]:
    """Each clip's events: labels at the catalogue's density, lengths in its range."""
    facts = _facts(task)
    if facts.events_per_minute is None or facts.event_seconds is None:
        raise HearError(f"event task {task.name} needs an event density and event lengths")
    rng = np.random.default_rng(job.seed)
    short, long = facts.event_seconds
    events: dict[str, list[dict[str, Any]]] = {}
    for name, seconds in zip(job.names, job.durations, strict=True):
        length = round(float(seconds) * sample_rate)
        audio = tones.background(length, float(rng.uniform(0.02, 0.05)), rng)
        n = int(rng.poisson(facts.events_per_minute * float(seconds) / 60))
        spans = rng.uniform(short, long, n)
        starts = rng.uniform(0, float(seconds) - spans)
        event_labels = rng.integers(0, facts.vocab_size, n)
        gains = rng.uniform(0.1, 0.3, n).astype(np.float32)
        names = labels(task)
        clip_events = []
        for label, start, span, gain in zip(event_labels, starts, spans, gains, strict=True):
            first = round(start * sample_rate)
            count = min(round(span * sample_rate), length - first)
            audio[first : first + count] += gain * tones.sound(int(label), count, rng)
            clip_events.append({
                "label": names[label],
                "start": round(first / sample_rate * 1000, 3),
                "end": round((first + count) / sample_rate * 1000, 3),
            })  # fmt: skip
        np.clip(audio, -1, 1, out=audio)
        write_wav(folder / str(sample_rate) / job.split / name, audio, sample_rate)
        events[name] = sorted(clip_events, key=lambda e: (e["start"], e["label"]))
    return events


def _event_jobs(task: CatalogueTask, counts: dict[str, int]) -> Iterator[_Job]:
    """One job a clip: an event clip is long (120 s)."""
    for split_index, (split, n) in enumerate(counts.items()):
        for i in range(n):
            yield _Job(split, [f"{split}-{i:06d}.wav"], np.array([task.sample_duration]), [],
                       [_SEED, split_index, i])  # fmt: skip


def _write_folder(
    task: CatalogueTask, scale: str, sample_rate: int, progress: bool, folder: Path
) -> None:
    from rich.progress import Progress

    counts = clip_counts(task, scale)
    names = labels(task)
    event = task.embedding_type == "event"
    jobs = list(_event_jobs(task, counts) if event else _scene_jobs(task, counts))
    longest = max(float(job.durations.max()) for job in jobs)
    facts = _facts(task)
    tone_seconds = max(facts.event_seconds or (0,)) if event else longest
    tones = _Tones.build(facts.vocab_size, round(tone_seconds * sample_rate), sample_rate)
    for split in counts:
        (folder / str(sample_rate) / split).mkdir(parents=True)
    split_labels: dict[str, dict[str, Any]] = {split: {} for split in counts}

    def run(job: _Job) -> tuple[_Job, dict[str, Any]]:
        if event:
            return job, _render_events(task, tones, job, folder, sample_rate)
        _render_scene(tones, job, folder, sample_rate)
        return job, {n: [names[i] for i in c] for n, c in zip(job.names, job.labels, strict=True)}

    total = sum(counts.values())
    label = f"Preparing sized_{task.name} (scale {parse_scale(scale):g})"
    with Progress(disable=not progress) as bar, ThreadPoolExecutor(_WORKERS) as pool:
        bar_task = bar.add_task(label, total=total)
        for job, clip_labels in pool.map(run, jobs):
            split_labels[job.split].update(clip_labels)
            bar.advance(bar_task, len(job.names))
    for split, clip_labels in split_labels.items():
        write_split(folder, split, clip_labels)
    write_vocabulary(folder, names)
    write_metadata(folder, metadata(task, scale, sample_rate))


def prepare(
    task: CatalogueTask,
    tasks_dir: Path,
    scale: str = "full",
    sample_rate: int = SAMPLE_RATE,
    progress: bool = True,
) -> Path:
    """``task``'s synthetic folder at ``scale`` under ``tasks_dir``; a complete one with the
    same parameters is reused without generating anything."""
    digest = params_hash({
        "task": task.name, "revision": _REVISION, "seed": _SEED, "sample_rate": sample_rate,
        "counts": clip_counts(task, scale), "facts": _facts(task).model_dump(mode="json"),
        "metadata": metadata(task, scale, sample_rate),
    })  # fmt: skip
    return build_folder(
        Path(tasks_dir),
        folder_name(task, scale),
        digest,
        lambda folder: _write_folder(task, scale, sample_rate, progress, folder),
    )
