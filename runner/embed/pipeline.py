"""Embed a task split: decode ahead of the model, send batches, check what comes back."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from runner.contract.client import ModelClient
from runner.errors import ModelError
from runner.tasks.audio import fit_length, read_clip
from runner.tasks.folder import Clip, Task


@dataclass
class SplitEmbeddings:
    split: str
    files: list[str]
    embeddings: np.ndarray  # (n_clips, D) float32
    audio_seconds: float
    seconds: float


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
    """Scene embeddings for every clip of ``split``, in the split's (sorted) file order.

    The next batch is decoded and resampled on worker threads while the model
    works on the current one. ``on_batch(n_clips, audio_seconds)`` reports progress.
    """
    assert client.hello is not None
    rate = client.hello.sample_rate
    source_rate = task.source_rate(rate)
    duration = task.metadata.sample_duration
    n_samples = round(duration * rate) if duration else None
    clips = task.clips(split)
    batches = list(_batches(clips, batch_size))

    def load(batch: list[Clip]) -> np.ndarray:
        audio = [
            read_clip(task.audio_path(split, c.file, source_rate), rate, source_rate) for c in batch
        ]
        length = n_samples or max(len(a) for a in audio)
        return np.stack([fit_length(a, length) for a in audio])

    started = time.perf_counter()
    parts: list[np.ndarray] = []
    audio_seconds = 0.0
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending: Future[np.ndarray] | None = pool.submit(load, batches[0]) if batches else None
        for k, batch in enumerate(batches):
            assert pending is not None
            audio = pending.result()
            pending = pool.submit(load, batches[k + 1]) if k + 1 < len(batches) else None
            context = f"task {task.name}, split {split}, batch {k + 1}/{len(batches)}"
            embeddings = client.scene(audio, context)
            _check_finite(embeddings, batch, client.label, context)
            parts.append(embeddings)
            audio_seconds += audio.shape[0] * audio.shape[1] / rate
            if on_batch is not None:
                on_batch(len(batch), audio.shape[0] * audio.shape[1] / rate)
    return SplitEmbeddings(
        split=split,
        files=[c.file for c in clips],
        embeddings=np.concatenate(parts)
        if parts
        else np.zeros((0, client.hello.scene_embedding_size), np.float32),
        audio_seconds=audio_seconds,
        seconds=time.perf_counter() - started,
    )


def _check_finite(embeddings: np.ndarray, batch: list[Clip], label: str, context: str) -> None:
    bad = ~np.isfinite(embeddings).all(axis=1)
    if bad.any():
        first = batch[int(np.argmax(bad))].file
        raise ModelError(
            f"{label} returned NaN or Inf embeddings for {int(bad.sum())} clip(s) ({context}), "
            f"first {first}"
        )
