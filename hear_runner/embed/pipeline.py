"""Embed a task split: decode ahead of the model, send batches, check what comes back.

Scene tasks get one embedding per clip. Event tasks get the model's timestamp
embeddings, one row per frame, with the frame's clip and time kept beside it.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from hear_runner.contract.client import ModelClient
from hear_runner.embed.split import SplitEmbeddings
from hear_runner.embed.store import SplitStore
from hear_runner.errors import ModelError
from hear_runner.tasks.audio import Stamp, clip_frames, fit_length, read_clip_stamped, stat_clip
from hear_runner.tasks.folder import Clip, Task

#: Threads decoding and resampling the next batch while the model embeds the current one.
DECODE_THREADS = min(4, os.cpu_count() or 1)

#: Timestamps must advance by a regular hop, to within this many milliseconds.
HOP_TOLERANCE_MS = 1.0

#: The most timestamp embeddings one batch may bring back, in bytes. Event clips are long
#: (DCASE 2016's two minutes at 4,096 floats a frame: 39 MB a clip), so an event batch holds
#: as many clips as fit in this, at most the batch size.
EVENT_BATCH_BYTES = 256 * 2**20

#: The most audio one batch may send, in bytes of float32 samples at the model's rate.
#: Beehive's ten-minute clips at 44.1 kHz are 106 MB each: 32 of them killed the naive
#: model's container (8 GiB limit) and held 10 GB on the host, so such batches are smaller.
BATCH_AUDIO_BYTES = 256 * 2**20

#: Frames per second assumed before a model's first batch shows its own (a 10 ms hop).
ASSUMED_FRAMES_PER_SECOND = 100.0


class SplitPlan:
    """The clips of a split still to embed, handed out batch by batch (to one or more workers).

    Clips already in the store are left out. For tasks whose clips have any length a
    batch holds clips of one length only, so nothing is padded and each embedding is
    what the model gives that clip alone (heareval embeds such tasks one clip at a time);
    sorting by length groups them.
    """

    def __init__(
        self,
        task: Task,
        split: str,
        store: SplitStore | None,
        source_rate: int,
        todo: list[int] | None = None,
    ) -> None:
        """``todo``: exactly these clips (a cluster unit's shard); else what ``store`` lacks."""
        clips = task.clips(split)
        finished = store.finished_clips() if store is not None else set()
        self.finished = len(finished)
        self.todo = (
            list(todo) if todo is not None else [i for i in range(len(clips)) if i not in finished]
        )
        self.frames: dict[int, int] = {}
        if not task.metadata.sample_duration:
            self.frames = {
                i: _frames(task.audio_path(split, clips[i].file, source_rate)) for i in self.todo
            }
            self.todo.sort(key=lambda i: (self.frames[i], i))
        self.source_rate = source_rate
        self._next = 0
        self._lock = threading.Lock()
        self._stopped = False

    def next_clip_seconds(self) -> float | None:
        """The length of the next clip to hand out, for tasks whose clips have any length."""
        with self._lock:
            if not self.frames or self._next >= len(self.todo):
                return None
            return self.frames[self.todo[self._next]] / self.source_rate

    def take(self, size: int) -> list[int]:
        """The next batch of at most ``size`` clips; empty when none is left (or stopped)."""
        with self._lock:
            if self._stopped:
                return []
            batch = self.todo[self._next : self._next + size]
            if self.frames and batch:
                batch = [i for i in batch if self.frames[i] == self.frames[batch[0]]]
            self._next += len(batch)
            return batch

    def stop(self) -> None:
        with self._lock:
            self._stopped = True


def embed_split(
    clients: ModelClient | Sequence[ModelClient],
    task: Task,
    split: str,
    store: SplitStore,
    batch_size: int = 32,
    on_batch: Callable[[int, float], None] | None = None,
    max_clip_seconds: float | None = None,
) -> SplitEmbeddings:
    """Embeddings for every clip of ``split``, in the split's (sorted) file order.

    Batches already in ``store`` are kept (unless their clips' files changed, or their
    files fail their checksums); the others are embedded and committed one by one, so a
    stopped run resumes where it stopped. The split is locked meanwhile (another run
    using the same store waits for it). With several model servers
    (one per GPU), each takes the next batch as soon as it is free. The split is
    assembled on disk and comes back memory-mapped. ``on_batch(n_clips, audio_seconds)``
    reports progress (finished batches included). Clips longer than
    ``max_clip_seconds`` are embedded in chunks (see :class:`Chunker`).
    """
    workers = [clients] if isinstance(clients, ModelClient) else list(clients)
    assert workers and workers[0].hello is not None
    source_rate = task.source_rate(workers[0].hello.sample_rate)

    def compute(plan: SplitPlan) -> list[int]:
        work = functools.partial(
            embed_batches, task=task, split=split, store=store, plan=plan,
            batch_size=batch_size, on_batch=on_batch, max_clip_seconds=max_clip_seconds,
        )  # fmt: skip
        if len(workers) == 1:
            return [work(workers[0])]
        with ThreadPoolExecutor(max_workers=len(workers)) as pool:
            futures = [pool.submit(work, w) for w in workers]
            try:
                return [f.result() for f in futures]
            except BaseException:
                plan.stop()  # the other workers finish their batch and stop
                raise

    return fill_split(task, split, store, source_rate, compute, batch_size, on_batch)


def fill_split(
    task: Task,
    split: str,
    store: SplitStore,
    source_rate: int,
    compute: Callable[[SplitPlan], list[int]],
    batch_size: int,
    on_batch: Callable[[int, float], None] | None = None,
) -> SplitEmbeddings:
    """The store's side of embedding a split, whoever computes it: lock, reconcile, plan what
    is missing, let ``compute(plan)`` commit its batches (it returns each worker's final
    batch size), assemble, and load. A Ray run's driver computes through cluster units."""
    sizes = [batch_size]
    started = time.perf_counter()
    files = [c.file for c in task.clips(split)]
    with store.locked():
        store.reconcile(files, split_stamps(task, split, source_rate))
        computed = not store.complete
        if computed:
            plan = SplitPlan(task, split, store, source_rate)
            if plan.finished and on_batch is not None:
                on_batch(plan.finished, 0.0)
            sizes = compute(plan)
            store.assemble(files, task.metadata.embedding_type == "event")
        embedded = store.load()
    embedded.split = split
    embedded.batch_size = min(sizes)
    embedded.wall_seconds = time.perf_counter() - started if computed else 0.0
    embedded.clips_embedded = len(plan.todo) if computed else 0
    embedded.clips_from_store = len(files) - embedded.clips_embedded
    embedded.clips_changed = len(store.changed)
    return embedded


def split_stamps(task: Task, split: str, source_rate: int) -> list[Stamp]:
    """Every clip file's size and mtime (a stat each, nothing read); a missing one is named."""
    return [stat_clip(task.audio_path(split, c.file, source_rate)) for c in task.clips(split)]


def embed_batches(
    client: ModelClient,
    task: Task,
    split: str,
    store: SplitStore,
    plan: SplitPlan,
    batch_size: int,
    on_batch: Callable[[int, float], None] | None = None,
    max_clip_seconds: float | None = None,
) -> int:
    """One worker: take batches from ``plan`` until none is left; return the final batch size.

    The next batch is decoded and resampled by a few threads while the model works on the
    current one; a batch the model cannot fit in memory is halved and retried, and
    later batches stay at the smaller size. A single clip the model cannot fit is
    embedded in chunks (halved until they fit), as is any clip longer than
    ``max_clip_seconds``.
    """
    worker = BatchEmbedder(client, task, split, store, batch_size, on_batch, max_clip_seconds)
    return worker.run(plan)


#: A decoded batch: its clips' audio stacked (padded to the longest) and each clip's length.
Decoded = tuple[np.ndarray, list[int]]


class BatchEmbedder:
    """One model server's share of a split: decode, embed, check and commit batch by batch.

    The batch size it holds shrinks after out-of-memory and stays small for later
    batches; its :class:`Chunker` likewise keeps a halved chunk length.
    """

    def __init__(
        self,
        client: ModelClient,
        task: Task,
        split: str,
        store: SplitStore,
        batch_size: int,
        on_batch: Callable[[int, float], None] | None = None,
        max_clip_seconds: float | None = None,
    ) -> None:
        assert client.hello is not None
        self.client, self.task, self.split, self.store = client, task, split, store
        self.batch_size = batch_size
        self.on_batch = on_batch
        self.rate = client.hello.sample_rate
        self.source_rate = task.source_rate(self.rate)
        duration = task.metadata.sample_duration
        self.n_samples = round(duration * self.rate) if duration else None  # fixed-length task
        self.event = task.metadata.embedding_type == "event"
        self.clips = task.clips(split)
        self.chunker = Chunker(client, self.rate, self.event, max_clip_seconds)
        self.stamps: dict[int, Stamp] = {}  # the bytes each clip was decoded from, for its record
        self.frames_per_second = ASSUMED_FRAMES_PER_SECOND  # event tasks: learned from each batch

    def run(self, plan: SplitPlan) -> int:
        """Embed ``plan``'s batches, decoding the next while the model embeds the current."""
        with (
            ThreadPoolExecutor(max_workers=1) as loader,
            ThreadPoolExecutor(max_workers=DECODE_THREADS, thread_name_prefix="decode") as decoders,
        ):
            # Each pending load carries its clips; the batch size may shrink meanwhile.
            pending = self._decode_next(plan, loader, decoders)
            while pending is not None:
                indices, future = pending
                audio, lengths = future.result()
                pending = self._decode_next(plan, loader, decoders)
                self.embed_in_pieces(indices, audio, lengths)
        return self.batch_size

    def _decode_next(
        self, plan: SplitPlan, loader: ThreadPoolExecutor, decoders: ThreadPoolExecutor
    ) -> tuple[list[int], Future[Decoded]] | None:
        """Take the next batch from ``plan`` and start decoding it; None when none is left."""
        indices = plan.take(min(self.batch_size, self.clips_within_budget(plan)))
        return (indices, loader.submit(self.load, indices, decoders)) if indices else None

    def clips_within_budget(self, plan: SplitPlan) -> int:
        """How many of the next clips fit in BATCH_AUDIO_BYTES of audio, and (event tasks)
        their frames in EVENT_BATCH_BYTES; at least one."""
        seconds = self.n_samples / self.rate if self.n_samples else plan.next_clip_seconds()
        if not seconds:
            return self.batch_size
        fit = BATCH_AUDIO_BYTES // (seconds * self.rate * 4)
        if self.event:
            assert self.client.hello is not None
            frame_bytes = self.client.hello.timestamp_embedding_size * 4
            fit = min(fit, EVENT_BATCH_BYTES // (seconds * self.frames_per_second * frame_bytes))
        return max(1, int(fit))

    def read(self, i: int) -> np.ndarray:
        """Clip ``i``'s audio at the model's rate (its stamp kept for the batch record)."""
        path = self.task.audio_path(self.split, self.clips[i].file, self.source_rate)
        audio, self.stamps[i] = read_clip_stamped(path, self.rate, self.source_rate)
        return audio

    def load(self, indices: list[int], decoders: ThreadPoolExecutor) -> Decoded:
        audio = list(decoders.map(self.read, indices))  # libsndfile and soxr release the GIL
        lengths = [self.n_samples or len(a) for a in audio]
        return np.stack([fit_length(a, max(lengths)) for a in audio]), lengths

    def embed_in_pieces(self, indices: list[int], audio: np.ndarray, lengths: list[int]) -> None:
        """Batches of at most the current batch size (it shrinks after out-of-memory)."""
        i = 0
        while i < len(indices):
            part = slice(i, i + self.batch_size)
            first, last = indices[part][0] + 1, indices[part][-1] + 1
            context = f"task {self.task.name}, split {self.split}, clips {first}-{last}"
            self.embed(indices[part], audio[part], lengths[part], context)
            i = part.stop

    def embed(
        self, indices: list[int], audio: np.ndarray, lengths: list[int], context: str
    ) -> None:
        """One batch through the model, then checked and committed; out-of-memory retried
        smaller (a batch halved, a lone clip in shorter chunks)."""
        started = time.perf_counter()
        try:
            if self.chunker.needed(max(lengths)) and len(indices) > 1:
                self.batch_size = 1  # clips that long go one by one
                self.embed_in_pieces(indices, audio, lengths)
                return
            embeddings, timestamps = self._model_output(audio, lengths, context)
        except ModelError as e:
            if e.kind != "out_of_memory":
                raise
            if len(indices) == 1:
                self.chunker.shrink(lengths[0], context)  # raises when chunks cannot get smaller
                self.embed(indices, audio, lengths, context)
                return
            self.batch_size = max(1, min(self.batch_size, len(indices) // 2))
            self.embed_in_pieces(indices, audio, lengths)
            return
        seconds = time.perf_counter() - started
        self.commit(indices, embeddings, timestamps, lengths, seconds, context)

    def _model_output(
        self, audio: np.ndarray, lengths: list[int], context: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """The model's embeddings for a batch, and their timestamps (empty for scene tasks).
        A clip longer than the chunk length comes alone, and goes in chunks."""
        if self.chunker.needed(max(lengths)):
            return self.chunker.embed(audio[0, : lengths[0]], context)
        if self.event:
            return self.client.timestamps(audio, context)
        return self.client.scene(audio, context), np.zeros((0, 0))

    def commit(
        self,
        indices: list[int],
        embeddings: np.ndarray,
        timestamps: np.ndarray,
        lengths: list[int],
        seconds: float,
        context: str,
    ) -> None:
        """Check what the model returned for a batch, write it to the store, report progress."""
        batch = [self.clips[i] for i in indices]
        clip_seconds = [n / self.rate for n in lengths]
        stamps = [self.stamps[i] for i in indices]
        label = self.client.label
        if self.event:
            rows, times, counts = [], [], []
            for row, clip in enumerate(batch):
                clip_ms = lengths[row] * 1000.0 / self.rate
                kept = _check_timestamps(timestamps[row], clip_ms, clip.file, label)
                rows.append(embeddings[row, :kept])  # views: the batch is never copied whole
                times.append(timestamps[row, :kept])
                counts.append(kept)
            _check_finite(rows, batch, label, context)
            self.store.write_batch(
                indices, rows, counts, np.concatenate(times), clip_seconds, seconds, stamps
            )
            self.frames_per_second = sum(counts) / max(sum(clip_seconds), 1e-3)
        else:
            _check_finite(list(embeddings[:, None, :]), batch, label, context)
            self.store.write_batch(
                indices, embeddings, [1] * len(batch), None, clip_seconds, seconds, stamps
            )
        if self.on_batch is not None:
            self.on_batch(len(batch), sum(lengths) / self.rate)


class Chunker:
    """Embeds one clip that is too long for the model in a single call, chunk by chunk.

    Timestamp embeddings: chunks start at multiples of the model's hop (learned from
    the first chunk), each chunk's timestamps are shifted by its exact start, and a
    chunk keeps only the frames before the next chunk's start, so the clip's
    timestamps stay regular across the seams. Scene embeddings: the mean of the
    chunks' scene embeddings, weighted by their length (the HEAR API has no way to
    pool a clip it cannot take whole). Frames next to a seam see less context than
    they would unchunked. One per model server: a halved chunk length stays with it.
    """

    #: Chunks are never made shorter than this when halving after out-of-memory.
    MIN_SECONDS = 1.0

    def __init__(
        self, client: ModelClient, rate: int, event: bool, max_seconds: float | None
    ) -> None:
        self.client, self.rate, self.event = client, rate, event
        self.max_samples = round(max_seconds * rate) if max_seconds else None

    def needed(self, n_samples: int) -> bool:
        return self.max_samples is not None and n_samples > self.max_samples

    def shrink(self, n_samples: int, context: str) -> None:
        """After out-of-memory on one clip (or chunk): halve the chunk length."""
        current = min(self.max_samples or n_samples, n_samples)
        smaller = current // 2
        if smaller < self.MIN_SECONDS * self.rate:
            raise ModelError(
                f"{self.client.label} ran out of memory on {current / self.rate:.1f} s of "
                f"audio ({context}), even split into chunks",
                "out_of_memory",
            )
        self.max_samples = smaller

    def embed(self, audio: np.ndarray, context: str) -> tuple[np.ndarray, np.ndarray]:
        """(1, D) scene, or (1, T, D) frames and (1, T) times in ms, for a 1-d clip."""
        assert self.max_samples is not None
        chunk = self.max_samples
        if not self.event:
            parts, weights = [], []
            for start in range(0, len(audio), chunk):
                piece = audio[start : start + chunk]
                parts.append(self.client.scene(piece[None], self._where(context, start))[0])
                weights.append(len(piece))
            return np.average(parts, axis=0, weights=weights)[None].astype(np.float32), np.zeros(0)
        rows, times = [], []
        start, step, hop = 0, 0, 0.0
        while True:
            piece = audio[start : start + chunk]
            frames, stamps = self.client.timestamps(piece[None], self._where(context, start))
            frames, stamps = frames[0], stamps[0]
            if not step:  # later chunks start on the model's frame grid
                hop = float(np.median(np.diff(stamps))) if len(stamps) > 1 else 0.0
                hop_samples = hop * self.rate / 1000
                step = round(chunk // hop_samples * hop_samples) if hop_samples else 0
                step = step or chunk
            last = start + len(piece) >= len(audio)
            if not last:  # the frames before the next chunk's first one
                keep = stamps < step * 1000 / self.rate - hop / 2
                frames, stamps = frames[keep], stamps[keep]
            rows.append(frames)
            times.append(stamps + start * 1000 / self.rate)
            if last:
                return np.concatenate(rows)[None], np.concatenate(times)[None]
            start += step

    def _where(self, context: str, start: int) -> str:
        return f"{context}, chunk at {start / self.rate:.1f} s"


def _frames(path: Path) -> int:
    """A file's length in samples, from its header (a FIFO or link is refused, not opened)."""
    return clip_frames(path)


def _check_timestamps(times: np.ndarray, clip_ms: float, file: str, label: str) -> int:
    """How many frames to keep: those inside the clip (a padded batch adds frames past its end).

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
    kept = int(np.searchsorted(times, clip_ms + HOP_TOLERANCE_MS, side="right"))  # times rise
    if not kept:
        raise ModelError(f"{label} returned no timestamp inside {file} ({clip_ms:.0f} ms long)")
    return kept


def _check_finite(parts: list[np.ndarray], batch: list[Clip], label: str, context: str) -> None:
    bad = [
        clip.file for clip, part in zip(batch, parts, strict=True) if not np.isfinite(part).all()
    ]
    if bad:
        raise ModelError(
            f"{label} returned NaN or Inf embeddings for {len(bad)} clip(s) ({context}), "
            f"first {bad[0]}"
        )
