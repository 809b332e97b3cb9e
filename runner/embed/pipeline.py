"""Embed a task split: decode ahead of the model, send batches, check what comes back.

Scene tasks get one embedding per clip. Event tasks get the model's timestamp
embeddings, one row per frame, with the frame's clip and time kept beside it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from runner.contract.client import ModelClient
from runner.errors import ModelError
from runner.tasks.audio import fit_length, read_clip
from runner.tasks.folder import Clip, Task

#: Timestamps must advance by a regular hop, to within this many milliseconds.
HOP_TOLERANCE_MS = 1.0


@dataclass
class SplitEmbeddings:
    split: str
    files: list[str]
    embeddings: np.ndarray  # scene: (n_clips, D); event: (n_frames, D)
    audio_seconds: float
    seconds: float
    # Event tasks: the clip index and time (ms) of every frame row.
    frame_clip: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    frame_ms: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))


def _batches(clips: list[Clip], size: int) -> Iterator[list[Clip]]:
    for start in range(0, len(clips), size):
        yield clips[start : start + size]


def embed_split(
    client: ModelClient,
    task: Task,
    split: str,
    batch_size: int = 32,
    on_batch: Callable[[int, float], None] | None = None,
) -> SplitEmbeddings:
    """Embeddings for every clip of ``split``, in the split's (sorted) file order.

    The next batch is decoded and resampled on worker threads while the model
    works on the current one. ``on_batch(n_clips, audio_seconds)`` reports progress.
    """
    assert client.hello is not None
    rate = client.hello.sample_rate
    source_rate = task.source_rate(rate)
    duration = task.metadata.sample_duration
    n_samples = round(duration * rate) if duration else None
    event = task.metadata.embedding_type == "event"
    clips = task.clips(split)
    batches = list(_batches(clips, batch_size))

    def load(batch: list[Clip]) -> tuple[np.ndarray, list[int]]:
        audio = [
            read_clip(task.audio_path(split, c.file, source_rate), rate, source_rate) for c in batch
        ]
        lengths = [n_samples or len(a) for a in audio]
        return np.stack([fit_length(a, max(lengths)) for a in audio]), lengths

    started = time.perf_counter()
    parts: list[np.ndarray] = []
    frame_clip: list[np.ndarray] = []
    frame_ms: list[np.ndarray] = []
    audio_seconds = 0.0
    first = 0
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending: Future[tuple[np.ndarray, list[int]]] | None = (
            pool.submit(load, batches[0]) if batches else None
        )
        for k, batch in enumerate(batches):
            assert pending is not None
            audio, lengths = pending.result()
            pending = pool.submit(load, batches[k + 1]) if k + 1 < len(batches) else None
            context = f"task {task.name}, split {split}, batch {k + 1}/{len(batches)}"
            if event:
                embeddings, timestamps = client.timestamps(audio, context)
                for row, clip in enumerate(batch):
                    clip_ms = lengths[row] * 1000.0 / rate
                    keep = _check_timestamps(timestamps[row], clip_ms, clip.file, client.label)
                    parts.append(embeddings[row, keep])
                    frame_ms.append(timestamps[row, keep])
                    frame_clip.append(np.full(int(keep.sum()), first + row, np.int64))
                _check_finite(parts[-len(batch) :], batch, client.label, context)
            else:
                embeddings = client.scene(audio, context)
                _check_finite(list(embeddings[:, None, :]), batch, client.label, context)
                parts.append(embeddings)
            first += len(batch)
            seconds = sum(lengths) / rate
            audio_seconds += seconds
            if on_batch is not None:
                on_batch(len(batch), seconds)
    return SplitEmbeddings(
        split=split,
        files=[c.file for c in clips],
        embeddings=np.concatenate(parts),
        audio_seconds=audio_seconds,
        seconds=time.perf_counter() - started,
        frame_clip=np.concatenate(frame_clip) if event else np.zeros(0, np.int64),
        frame_ms=np.concatenate(frame_ms) if event else np.zeros(0, np.float64),
    )


def _check_timestamps(times: np.ndarray, clip_ms: float, file: str, label: str) -> np.ndarray:
    """Frames to keep: those inside the clip (a padded batch adds frames past its end).

    Timestamps must increase by a regular hop (within 1 ms), as hear-validator asks.
    """
    if len(times) > 1:
        hops = np.diff(times)
        if (hops <= 0).any() or np.ptp(hops) > HOP_TOLERANCE_MS:
            raise ModelError(
                f"{label} returned irregular timestamps for {file}: hops from "
                f"{hops.min():.3f} to {hops.max():.3f} ms (they must be regular within 1 ms)"
            )
    if len(times) and times[0] < 0:
        raise ModelError(f"{label} returned a negative timestamp ({times[0]} ms) for {file}")
    keep = times <= clip_ms + HOP_TOLERANCE_MS
    if not keep.any():
        raise ModelError(f"{label} returned no timestamp inside {file} ({clip_ms:.0f} ms long)")
    return keep


def _check_finite(parts: list[np.ndarray], batch: list[Clip], label: str, context: str) -> None:
    bad = [
        clip.file for clip, part in zip(batch, parts, strict=True) if not np.isfinite(part).all()
    ]
    if bad:
        raise ModelError(
            f"{label} returned NaN or Inf embeddings for {len(bad)} clip(s) ({context}), "
            f"first {bad[0]}"
        )
