"""Checking and unpacking a downloaded archive: a corrupt or hostile one never lands.

Checksums (the catalogue's, else the ledger's) are checked; members that would escape
the extraction folder, links and devices are refused; the unpacked size is capped
(``max_expansion`` times the archive plus ``EXPANSION_FLOOR``), from each member's
header before anything of it is written and on the decompressed stream itself; and a
tar must end with its end-of-archive block (truncation).
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import io
import lzma
import os
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Protocol

from hear_runner.errors import HearError, one_line
from hear_runner.tasks.folder import METADATA_FILE, Task
from hear_runner.tasks.ledger import Ledger

MAX_EXPANSION_ENV = "HEAR_MAX_EXPANSION"
MAX_EXPANSION = 20.0  # unpacked bytes per archive byte (audio in .tar.gz is ~1-2x)
EXPANSION_FLOOR = 64 << 20  # bytes allowed on top, for small archives of metadata
CHUNK = 1 << 20  # bytes read (and hashed, or decompressed) at a time
_BLOCK = 512  # a tar block
_TAIL = 1 << 16  # decompressed bytes kept to find the end-of-archive block


class ArchiveSpec(Protocol):
    """What the downloader needs of one archive (``hear_2021.catalogue.Archive`` fits)."""

    @property
    def folder(self) -> str: ...
    @property
    def file(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def md5(self) -> str | None: ...
    @property
    def sha256(self) -> str | None: ...


class BadArchive(HearError):
    """The archive's content is wrong (truncated, a bomb, files missing): remove it."""


def resolve_max_expansion(value: float | None) -> float:
    """``value``, else ``$HEAR_MAX_EXPANSION``, else ``MAX_EXPANSION``; must be > 0."""
    source = "max_expansion"
    if value is None and os.environ.get(MAX_EXPANSION_ENV):
        source = f"${MAX_EXPANSION_ENV}"
        try:
            value = float(os.environ[MAX_EXPANSION_ENV])
        except ValueError:
            value = float("nan")
    if value is None:
        return MAX_EXPANSION
    if not value > 0:  # also refuses NaN
        raise HearError(f"{source} must be a number above 0 (unpacked bytes per archive byte)")
    return value


def expansion_limit(archive_size: int, max_expansion: float) -> int:
    """The most bytes an archive of ``archive_size`` bytes may unpack to."""
    return int(archive_size * max_expansion) + EXPANSION_FLOOR


def verify(
    path: Path, archive: ArchiveSpec, url: str, ledger: Ledger | None = None
) -> tuple[int, str]:
    """Check the digests the catalogue knows, and the ledger's size and sha256 where there
    is one; a mismatching file is removed. Returns the file's size and sha256."""
    expected = {
        name: value.lower()
        for name, value in (("sha256", archive.sha256), ("md5", archive.md5))
        if value
    }
    digests = {name: hashlib.new(name) for name in {"sha256", *expected}}
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            size += len(chunk)
            for digest in digests.values():
                digest.update(chunk)
    for name, want in expected.items():
        got = digests[name].hexdigest()
        if got != want:
            path.unlink()
            raise HearError(
                f"{archive.file}: {name} mismatch: expected {want}, got {got} "
                f"(file removed; downloaded from {url})"
            )
    sha256 = digests["sha256"].hexdigest()
    if ledger is not None and (sha256 != ledger.sha256 or size != ledger.size):
        path.unlink()
        raise HearError(
            f"{archive.file}: sha256 mismatch with the first download: expected "
            f"{ledger.sha256}, got {sha256} ({size} bytes, {ledger.size} recorded; file "
            f"removed; downloaded from {url}; if the archive really changed, delete "
            f"{ledger.path} to trust it)"
        )
    return size, sha256


def extract(archive_path: Path, dest: Path, max_bytes: int | None = None) -> None:
    """Unpack a tarball into ``dest``, refusing absolute paths, ``..``, links and devices,
    more than ``max_bytes`` unpacked (default: ``expansion_limit`` of the archive's size),
    and a tar without its end-of-archive block (truncated).

    Members are streamed once (a gzip stream cannot seek back cheaply). A corrupt or
    refused archive is removed, so the next run downloads it again; the gzip stream is read
    to its end, so its CRC and length are checked too.
    """
    if max_bytes is None:
        max_bytes = expansion_limit(archive_path.stat().st_size, resolve_max_expansion(None))
    too_big = (
        f"{archive_path.name}: unpacks to more than {max_bytes} bytes "
        f"({archive_path.stat().st_size} bytes packed; at most {EXPANSION_FLOOR >> 20} MiB "
        f"plus --max-expansion/${MAX_EXPANSION_ENV} times the archive), refused"
    )
    dest.mkdir(parents=True)
    safe_filter = hasattr(tarfile, "data_filter")  # Python >= 3.11.4 and backports
    try:
        with _capped_stream(archive_path, max_bytes, too_big) as stream:
            with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
                unpacked = 0
                for member in tar:
                    problem = _member_problem(member)
                    if problem:
                        raise BadArchive(
                            f"{archive_path}: refusing member {member.name!r}: {problem}"
                        )
                    unpacked += _BLOCK + member.size  # before a byte of it is written
                    if unpacked > max_bytes:
                        raise BadArchive(too_big)
                    if safe_filter:
                        tar.extract(member, dest, filter="data")
                    else:
                        tar.extract(member, dest)  # members checked by _member_problem
                end = tar.offset
            stream.drain()
            if stream.block_at(end) != bytes(_BLOCK):
                raise BadArchive(
                    f"{archive_path.name}: truncated (no end-of-archive block after byte {end})"
                )
    except BadArchive:
        archive_path.unlink(missing_ok=True)
        raise
    except (tarfile.TarError, _Corrupt) as e:
        archive_path.unlink(missing_ok=True)
        raise BadArchive(f"{archive_path}: not a readable tar archive ({one_line(e)})") from None
    except OSError as e:
        raise HearError(f"{dest}: cannot unpack {archive_path.name}: {e.strerror}") from None


class _Corrupt(Exception):
    """The compressed stream is damaged or cut short."""


class _Capped(io.RawIOBase):
    """A decompressed stream that refuses to yield more than ``limit`` bytes and keeps its
    last bytes, so the end-of-archive block can be checked after tarfile is done."""

    def __init__(self, raw: io.BufferedIOBase, limit: int, too_big: str) -> None:
        self.raw, self.limit, self.too_big = raw, limit, too_big
        self.count = 0
        self.tail = bytearray()
        self.tail_start = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        want = CHUNK if size is None or size < 0 else size
        try:
            data = self.raw.read(want)
        except (EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile) as e:
            raise _Corrupt(one_line(e) or type(e).__name__) from None
        except OSError as e:
            if isinstance(self.raw, bz2.BZ2File):  # bz2 reports damage as OSError
                raise _Corrupt(one_line(e)) from None
            raise
        self.count += len(data)
        if self.count > self.limit:
            raise BadArchive(self.too_big)
        self.tail += data
        if len(self.tail) > _TAIL:
            drop = len(self.tail) - _TAIL
            del self.tail[:drop]
            self.tail_start += drop
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    def block_at(self, offset: int) -> bytes | None:
        """The 512 bytes at ``offset`` of the stream, if still held; None otherwise."""
        start = offset - self.tail_start
        if start < 0:
            return None
        return bytes(self.tail[start : start + _BLOCK])


@contextlib.contextmanager
def _capped_stream(path: Path, limit: int, too_big: str) -> Iterator[_Capped]:
    """``path`` decompressed (gzip, bzip2, xz or none, by magic), capped at ``limit`` bytes."""
    with path.open("rb") as handle:
        magic = handle.read(6)
        handle.seek(0)
        raw: io.BufferedIOBase
        if magic.startswith(b"\x1f\x8b"):
            raw = gzip.GzipFile(fileobj=handle, mode="rb")
        elif magic.startswith(b"BZh"):
            raw = bz2.BZ2File(handle, "rb")
        elif magic.startswith(b"\xfd7zXZ\x00"):
            raw = lzma.LZMAFile(handle, "rb")  # noqa: SIM115 (closed by the with below)
        else:
            raw = handle  # type: ignore[assignment]
        with raw:
            yield _Capped(raw, limit, too_big)


def check_complete(folder: Path, archive_name: str) -> None:
    """Every audio file the split files list is in every ``<sample_rate>/`` folder."""
    try:
        Task(folder).check_audio()
    except HearError as e:
        raise BadArchive(
            f"task {folder.name} from {archive_name}: {e}; not marked complete"
        ) from None


def _member_problem(member: tarfile.TarInfo) -> str | None:
    name = member.name.replace("\\", "/")
    path = PurePosixPath(name)
    if path.is_absolute() or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in path.parts:
        return "path with '..'"
    if not (member.isfile() or member.isdir()):
        return "not a regular file or folder"
    return None


def find_task_folder(root: Path, folder: str, archive_path: Path) -> Path:
    """The task folder inside an unpacked release: ``tasks/<folder>`` or
    ``hear-<version>/tasks/<folder>``."""
    for candidate in (root / "tasks" / folder, *sorted(root.glob(f"hear-*/tasks/{folder}"))):
        if (candidate / METADATA_FILE).is_file():
            return candidate
    found = sorted(
        {
            p.parent.name
            for pattern in (f"tasks/*/{METADATA_FILE}", f"hear-*/tasks/*/{METADATA_FILE}")
            for p in root.glob(pattern)
        }
    )
    raise BadArchive(
        f"{archive_path.name}: no tasks/{folder}/{METADATA_FILE} inside "
        f"(task folders found: {', '.join(found) or 'none'})"
    )
