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
import shutil
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


@contextlib.contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield an empty staging folder beside ``target``; on success it replaces ``target`` whole.

    A reader sees the old folder or the new one, never a mix: an existing ``target`` is moved
    aside, the staging folder renamed in, then the old one removed. On failure the staging
    folder is removed and ``target`` is left as it was.
    """
    staging, old = temp_path(target), temp_path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging.mkdir()
        yield staging
        if target.exists():
            os.replace(target, old)
        os.replace(staging, target)
    except OSError as e:
        if e.errno in _DISK_ERRORS:
            raise OutputError(target, e) from None
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


class AtomicGroup:
    """Files written together: each is staged whole under a temporary name, then all are
    renamed into place in staging order, or none is (see :func:`atomic_group`)."""

    def __init__(self) -> None:
        self.staged: list[tuple[Path, Path]] = []  # (temporary, final), in renaming order

    def stage(self, final: Path, write: Callable[[Path], object]) -> None:
        """``write(temporary)`` writes ``final``'s bytes to a temporary name beside it (whole
        or absent, e.g. through :func:`atomic_write`); a full disk is named by ``final``."""
        temporary = temp_path(final)
        try:
            write(temporary)
        except OutputError as e:
            temporary.unlink(missing_ok=True)
            raise OutputError(final, OSError(e.errno, "")) from None
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        self.staged.append((temporary, final))

    def commit(self) -> None:
        """Rename every staged file into place (a rename needs no space); if one fails,
        the ones already renamed are removed, so no file stands without the others."""
        renamed: list[Path] = []
        try:
            for temporary, final in self.staged:
                os.replace(temporary, final)
                renamed.append(final)
        except BaseException:
            for final in renamed:
                final.unlink(missing_ok=True)
            raise

    def discard(self) -> None:
        for temporary, _ in self.staged:
            temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_group() -> Iterator[AtomicGroup]:
    """Stage files in the block; they are renamed into place when it ends without error.

    A failure while staging (full disk, Ctrl-C) leaves nothing new and earlier files at the
    same places as they were; a failure while renaming removes the files already renamed.
    """
    group = AtomicGroup()
    try:
        yield group
        group.commit()
    finally:
        group.discard()


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
