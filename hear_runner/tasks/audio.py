"""Decoding and resampling, so every clip reaches a model at its own sample rate.

A clip is opened without following a link and without waiting (O_NOFOLLOW,
O_NONBLOCK), then must be a regular file: a FIFO or device named in a task can
neither block a run nor be read. A clip that is empty, or shorter than its header
promises, is an error naming it, not a silently shorter clip.

A clip to embed is read once: its bytes are hashed and decoded from memory, so the store
records exactly which audio an embedding came from (see hear_runner.embed.store).
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from hear_runner.errors import TaskError

#: No link followed, no wait on a FIFO, no descriptor leaked into model servers.
OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC

#: A WAV data chunk of this length is being streamed: its length is unknown, not wrong.
STREAMING_LENGTH = 0xFFFFFFFF

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
        raise TaskError(path, "audio file is missing" + _listed(path)) from None
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
    data, stamp = _read_bytes(path)
    with _sound_file(path, data) as sound:
        rate = sound.samplerate
        if expected_rate is not None and rate != expected_rate:
            raise TaskError(path, f"sample rate is {rate} Hz but its folder is {expected_rate}")
        audio = sound.read(dtype="float32", always_2d=True)
        if len(audio) < sound.frames:
            raise TaskError(
                path, f"decoded {len(audio)} of the {sound.frames} frames its header promises"
                + _listed(path),
            )  # fmt: skip
    mono = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    if rate != target_rate:
        mono = soxr.resample(mono, rate, target_rate, "HQ")
    return np.ascontiguousarray(mono, dtype=np.float32), stamp


def clip_frames(path: Path) -> int:
    """A clip's length in samples, from its header (checked as :func:`read_clip` does)."""
    with _sound_file(path) as sound:
        return int(sound.frames)


def open_clip(path: Path) -> int:
    """A read-only descriptor of ``path``, which must be a regular file (the caller closes it)."""
    try:
        fd = os.open(path, OPEN_FLAGS)
    except FileNotFoundError:
        raise TaskError(path, "audio file is missing" + _listed(path)) from None
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.EMLINK):  # O_NOFOLLOW met a link (EMLINK on BSD)
            raise TaskError(
                path, f"is a symlink{_listed(path)}; clips must be regular files"
            ) from None
        raise TaskError(path, f"cannot open audio: {e.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise TaskError(path, f"is not a regular file{_listed(path)}")
    return fd


def _read_bytes(path: Path) -> tuple[bytes, Stamp]:
    """The clip's bytes (checked as for decoding) and their stamp."""
    fd = open_clip(path)
    try:
        info = os.fstat(fd)  # before reading: a write after it shows as a change next run
        _check_wav_length(path, fd)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read()
    except OSError as e:
        raise TaskError(path, f"cannot read audio: {e.strerror or e}") from None
    finally:
        os.close(fd)
    digest = hashlib.sha256(data).hexdigest()[:DIGEST_CHARS]
    return data, Stamp(info.st_size, info.st_mtime_ns, digest)


@contextmanager
def _sound_file(path: Path, data: bytes | None = None) -> Iterator[sf.SoundFile]:
    """The clip opened for decoding: from ``data`` (its bytes, already read and checked), or
    else from its descriptor (libsndfile reads it without the GIL)."""
    fd = open_clip(path) if data is None else -1
    try:
        if data is None:
            _check_wav_length(path, fd)
        try:
            source = fd if data is None else io.BytesIO(data)
            with sf.SoundFile(source, closefd=False) as sound:
                if not sound.frames:
                    raise TaskError(path, "holds no audio (0 frames)" + _listed(path))
                yield sound
        except (sf.LibsndfileError, RuntimeError, OSError) as e:
            reason = getattr(e, "error_string", None) or str(e)
            raise TaskError(path, f"cannot decode audio: {reason}{_listed(path)}") from None
    finally:
        if data is None:
            os.close(fd)


def _check_wav_length(path: Path, fd: int) -> None:
    """A WAV whose data chunk promises more bytes than the file holds was cut short.

    libsndfile quietly reads what is there, which would embed a shorter clip.
    """
    size = os.fstat(fd).st_size
    head = os.pread(fd, 12, 0)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"WAVE":
        return
    offset = 12
    while offset + 8 <= size:
        chunk = os.pread(fd, 8, offset)
        length = int.from_bytes(chunk[4:], "little")
        if chunk[:4] == b"data":
            held = size - offset - 8
            if length > held and length != STREAMING_LENGTH:
                raise TaskError(
                    path, f"truncated: its header promises {length} bytes of audio, the file "
                    f"holds {held}" + _listed(path),
                )  # fmt: skip
            return
        offset += 8 + length + (length & 1)  # chunks are padded to even lengths


def _listed(path: Path) -> str:
    """The split file naming a clip at ``<rate>/<split>/<file>``, for error messages."""
    return f" (listed in {path.parent.name}.json)" if path.parent.parent.name.isdigit() else ""


def fit_length(audio: np.ndarray, n_samples: int) -> np.ndarray:
    """Pad with zeros or trim to ``n_samples`` (as hear-preprocess does to sample_duration)."""
    if len(audio) >= n_samples:
        return audio[:n_samples]
    return np.pad(audio, (0, n_samples - len(audio)))
