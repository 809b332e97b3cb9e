"""Decoding and resampling, so every clip reaches a model at its own sample rate.

Each clip is read once: its bytes are hashed and decoded from memory, so the store can
record exactly which audio an embedding came from (see runner.embed.store).
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from runner.errors import TaskError

#: Hex digits kept of a clip's sha256: 128 bits tell two versions of a file apart.
DIGEST_CHARS = 32


@dataclass(frozen=True)
class Stamp:
    """Which bytes a clip file held: size and mtime_ns (a stat, checked on every run) and
    the sha256 of its bytes (taken when it was read to be embedded; empty from a stat)."""

    size: int
    mtime_ns: int
    sha256: str = ""

    def same_file(self, other: Stamp) -> bool:
        """Unchanged as far as a stat can tell (a rewrite keeping size and mtime is not seen)."""
        return self.size == other.size and self.mtime_ns == other.mtime_ns

    def to_json(self) -> list[int | str]:
        return [self.size, self.mtime_ns, self.sha256]

    @classmethod
    def from_json(cls, value: list[int | str]) -> Stamp:
        size, mtime_ns, sha256 = value
        return cls(int(size), int(mtime_ns), str(sha256))


def stat_clip(path: Path) -> Stamp:
    """The clip's size and mtime, without reading it; a missing file is named."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise TaskError(path, "audio file is missing") from None
    except OSError as e:
        raise TaskError(path, f"cannot read audio: {e.strerror or e}") from None
    return Stamp(info.st_size, info.st_mtime_ns)


def read_clip(path: Path, target_rate: int, expected_rate: int | None = None) -> np.ndarray:
    """Mono float32 audio at ``target_rate`` (see :func:`read_clip_stamped`)."""
    return read_clip_stamped(path, target_rate, expected_rate)[0]


def read_clip_stamped(
    path: Path, target_rate: int, expected_rate: int | None = None
) -> tuple[np.ndarray, Stamp]:
    """Mono float32 audio at ``target_rate``, resampled with soxr (HQ) when needed, and the
    stamp of the bytes it was decoded from (the file is read once).

    ``expected_rate`` is the rate the file's folder promises; a file at
    another rate is an error naming the file, not a silent resample.
    """
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())  # before reading: a later write shows as stale
            data = handle.read()
    except FileNotFoundError:
        raise TaskError(path, "audio file is missing") from None
    except OSError as e:
        raise TaskError(path, f"cannot read audio: {e.strerror or e}") from None
    stamp = Stamp(info.st_size, info.st_mtime_ns, hashlib.sha256(data).hexdigest()[:DIGEST_CHARS])
    try:
        audio, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        reason = getattr(e, "error_string", None) or str(e)
        raise TaskError(path, f"cannot decode audio: {reason}") from None
    if expected_rate is not None and rate != expected_rate:
        raise TaskError(path, f"sample rate is {rate} Hz but its folder is {expected_rate}")
    mono = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    if rate != target_rate:
        mono = soxr.resample(mono, rate, target_rate, "HQ")
    return np.ascontiguousarray(mono, dtype=np.float32), stamp


def fit_length(audio: np.ndarray, n_samples: int) -> np.ndarray:
    """Pad with zeros or trim to ``n_samples`` (as hear-preprocess does to sample_duration)."""
    if len(audio) >= n_samples:
        return audio[:n_samples]
    return np.pad(audio, (0, n_samples - len(audio)))
