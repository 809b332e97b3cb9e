"""Decoding and resampling, so every clip reaches a model at its own sample rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from runner.errors import TaskError


def read_clip(path: Path, target_rate: int, expected_rate: int | None = None) -> np.ndarray:
    """Mono float32 audio at ``target_rate``, resampled with soxr (HQ) when needed.

    ``expected_rate`` is the rate the file's folder promises; a file at
    another rate is an error naming the file, not a silent resample.
    """
    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        if not path.exists():
            raise TaskError(path, "audio file is missing") from None
        raise TaskError(path, f"cannot decode audio: {e}") from None
    if expected_rate is not None and rate != expected_rate:
        raise TaskError(path, f"sample rate is {rate} Hz but its folder is {expected_rate}")
    mono = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    if rate != target_rate:
        mono = soxr.resample(mono, rate, target_rate, "HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def fit_length(audio: np.ndarray, n_samples: int) -> np.ndarray:
    """Pad with zeros or trim to ``n_samples`` (as hear-preprocess does to sample_duration)."""
    if len(audio) >= n_samples:
        return audio[:n_samples]
    return np.pad(audio, (0, n_samples - len(audio)))
