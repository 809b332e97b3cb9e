"""Writing files so that no reader ever sees half of one, and no failure leaves debris.

Every file the runner writes (store batches, records, predictions, manifests, reports)
goes through :func:`atomic_output`: the bytes go to a temporary name unique to this
process and call, beside the target, and are renamed over the target only once
complete. Two runs writing the same file never share a temporary name; a failure
(a full disk, Ctrl-C) removes the temporary file; a full or read-only disk is one
:class:`OutputError` line naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from hear_runner.errors import HearError

#: Suffix of every temporary file; anything ending so is debris of a stopped writer.
TEMP_SUFFIX = ".tmp"

_DISK_ERRORS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


class OutputError(HearError):
    """A file could not be written (disk full, read-only, no permission)."""

    def __init__(self, path: Path, error: OSError) -> None:
        reason = _DISK_ERRORS.get(error.errno or 0, error.strerror or str(error))
        super().__init__(f"{path}: cannot write: {reason}; nothing already written was lost")
        self.path = path
        self.errno = error.errno


def temp_path(path: Path) -> Path:
    """A temporary name beside ``path``, unique to this process and call."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


@contextlib.contextmanager
def atomic_output(path: Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file for writing; on success it replaces ``path``, else it is removed."""
    tmp = temp_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, mode) as handle:
            yield handle
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if e.errno in _DISK_ERRORS:
            raise OutputError(path, e) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write text (UTF-8) or bytes to ``path`` atomically."""
    with atomic_output(path, "w" if isinstance(data, str) else "wb") as handle:
        handle.write(data)


def atomic_save(path: Path, save: Callable[[IO[bytes]], None]) -> None:
    """Write a binary file through ``save(handle)`` (``np.save``, ``np.savez``...) atomically."""
    with atomic_output(path) as handle:
        save(handle)


def atomic_save_array(path: Path, array: np.ndarray) -> None:
    """``np.save`` of ``array`` to ``path``, atomically."""
    atomic_save(path, lambda handle: np.save(handle, array))


def check_writable(folder: Path, what: str = "output folder") -> None:
    """Fail now, naming ``folder``, if files cannot be created in it (before hours of work)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = temp_path(folder / ".hear-write-check")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        reason = _DISK_ERRORS.get(e.errno or 0, e.strerror or str(e))
        raise HearError(f"{folder}: the {what} is not writable: {reason}") from None
