"""Download released HEAR task archives: resumable, verified, safely unpacked, resampled.

Why each step: the HEAR 2021 archives are up to tens of GB, so a dropped connection
resumes with a ``Range`` request instead of starting over; a corrupt or hostile archive
must never land in the tasks directory, so checksums are checked and members that would
escape the extraction folder are refused; and the archives are published at 48 kHz only
(other rates cost money to fetch), so other rates are made here with soxr.

A task folder appears in ``tasks_dir`` only once it is complete: it is unpacked and
resampled in ``tasks_dir/.downloads``, every audio file its split files list is checked to
be there, it is marked with ``.complete``, then renamed into place.

Trust, where the catalogue has no checksum (no HEAR 2021 archive has one here):

- **Ledger (trust on first use).** After the first complete install of an archive whose
  catalogue entry has no md5/sha256, its size and sha256 are written to
  ``tasks_dir/.downloads/<archive file>.verified.json``::

      {"file": "hear2021-esc50-v2.0.0-full-48000.tar.gz", "size": 123, "sha256": "...",
       "url": "<where it came from>", "recorded": "2026-01-01T00:00:00Z"}

  Every later download or reuse of that archive is checked against it (a server
  announcing another size is refused before the transfer; a different sha256 is one
  line naming the archive and both hashes, and the file is removed). Delete the ledger
  file to trust a new archive. Where the catalogue has a checksum, that is checked instead.
- **Expansion cap.** An archive may unpack to at most ``max_expansion`` (default 20, or
  ``$HEAR_MAX_EXPANSION``) times its own size plus ``EXPANSION_FLOOR`` (64 MiB); checked
  from each member's tar header before anything of it is written, and on the
  decompressed stream itself (a gzip trailer can lie, so it is not trusted).
- **Truncation.** A tar must end with its end-of-archive block; a short read, a gzip
  stream cut short, or a size that disagrees with Content-Length or the ledger removes
  the archive, and the next try downloads it again from the start.
- **Mirror.** ``mirror`` (or ``$HEAR_MIRROR``) is a base URL: an archive is fetched from
  ``<mirror>/<archive file name>``, e.g. ``<mirror>/hear2021-esc50-v2.0.0-full-48000.tar.gz``.
"""

from __future__ import annotations

import bz2
import contextlib
import difflib
import gzip
import hashlib
import http.client
import io
import json
import lzma
import os
import shutil
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import NamedTuple, Protocol

import numpy as np
import soundfile as sf
import soxr
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from hear_runner.errors import HearError
from hear_runner.files import atomic_write
from hear_runner.tasks.folder import METADATA_FILE, Task

ALLOWED_RATES = (16000, 22050, 32000, 44100, 48000)  # the rates hear-preprocess writes
DOWNLOADS = ".downloads"
COMPLETE = ".complete"
CHUNK = 1 << 20
RETRIES = 5  # further tries after the first, with exponential backoff
BACKOFF_S = 1.0
TIMEOUT_S = 60.0  # per socket operation, not per download
USER_AGENT = "hear-runner"
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
LEDGER_SUFFIX = ".verified.json"  # tasks_dir/.downloads/<archive file> + this
MIRROR_ENV = "HEAR_MIRROR"
MAX_EXPANSION_ENV = "HEAR_MAX_EXPANSION"
MAX_EXPANSION = 20.0  # unpacked bytes per archive byte (audio in .tar.gz is ~1-2x)
EXPANSION_FLOOR = 64 << 20  # bytes allowed on top, for small archives of metadata
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


class TaskSpec(Protocol):
    """A downloadable task: a name and its archives (``CatalogueTask`` fits)."""

    @property
    def name(self) -> str: ...
    @property
    def archives(self) -> Sequence[ArchiveSpec]: ...


class _Retry(Exception):
    """A transient failure: try again after a pause."""


def download_tasks(
    names: list[str],
    tasks_dir: Path,
    sample_rate: int = 48000,
    progress: bool = True,
    mirror: str | None = None,
    max_expansion: float | None = None,
) -> list[Path]:
    """Download HEAR 2021 tasks by catalogue name, folder name, or ``hear2021`` for all.

    Every name is resolved before anything is downloaded, so a typo costs nothing.
    """
    from hear_2021.catalogue import CATALOGUE, SUITE, by_name

    _check_rate(sample_rate)
    index = by_name()
    chosen: list[TaskSpec] = []
    for name in names:
        if name in (SUITE, "all"):
            entries: list[TaskSpec] = list(CATALOGUE)
        elif name in index:
            entries = [index[name]]
        else:
            close = difflib.get_close_matches(name, sorted(index), n=5, cutoff=0.5)
            hint = (
                f"did you mean {', '.join(close)}?"
                if close
                else f"known: {', '.join(t.name for t in CATALOGUE)} (or {SUITE} for all)"
            )
            raise HearError(f"no HEAR 2021 task named {name!r}; {hint}")
        chosen += [e for e in entries if e not in chosen]
    return [
        download_task(
            e, tasks_dir, sample_rate, progress=progress, mirror=mirror, max_expansion=max_expansion
        )
        for e in chosen
    ]


def download_task(
    entry: TaskSpec,
    tasks_dir: Path,
    sample_rate: int = 48000,
    url: str | None = None,
    progress: bool = True,
    mirror: str | None = None,
    max_expansion: float | None = None,
) -> Path:
    """Install every archive of ``entry`` into ``tasks_dir``; returns the first task folder.

    ``url`` replaces the catalogue's URL (a mirror); it is refused for a task of several
    archives, where it could only name one of them. ``mirror`` (default ``$HEAR_MIRROR``)
    is a base URL each archive's file name is fetched from; ``url`` wins over it.
    ``max_expansion`` (default ``$HEAR_MAX_EXPANSION``, else 20) caps unpacked bytes per
    archive byte.
    """
    _check_rate(sample_rate)
    mirror = resolve_mirror(mirror)
    ratio = resolve_max_expansion(max_expansion)
    archives = list(entry.archives)
    if not archives:
        raise HearError(f"task {entry.name} has no archive to download")
    if url is not None and len(archives) != 1:
        raise HearError(f"task {entry.name} has {len(archives)} archives; url= can replace one")
    tasks_dir.mkdir(parents=True, exist_ok=True)
    folders = [
        install_archive(
            a,
            tasks_dir,
            sample_rate,
            url or (mirror_url(mirror, a.file) if mirror else a.url),
            progress,
            max_expansion=ratio,
        )
        for a in archives
    ]
    return folders[0]


def resolve_mirror(mirror: str | None) -> str | None:
    """``mirror``, else ``$HEAR_MIRROR``; None when neither is set. Must be http(s)."""
    if mirror is None:
        mirror = os.environ.get(MIRROR_ENV) or None
    if mirror is not None and not mirror.startswith(("http://", "https://")):
        raise HearError(f"mirror {mirror!r} is not an http:// or https:// URL")
    return mirror


def mirror_url(mirror: str, file: str) -> str:
    """Where ``mirror`` holds the archive named ``file``: ``<mirror>/<file>``."""
    return f"{mirror.rstrip('/')}/{urllib.parse.quote(file)}"


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


class _BadArchive(HearError):
    """The archive's content is wrong (truncated, a bomb, files missing): remove it."""


def install_archive(
    archive: ArchiveSpec,
    tasks_dir: Path,
    sample_rate: int,
    url: str,
    progress: bool = True,
    max_expansion: float | None = None,
) -> Path:
    """Download, verify, unpack and resample one archive; a complete folder is reused."""
    dest = tasks_dir / archive.folder
    if (dest / COMPLETE).is_file():
        resample_folder(dest, sample_rate, progress)  # nothing to do if the rate is there
        return dest
    if dest.exists():
        raise HearError(
            f"{dest} exists but has no {COMPLETE} marker from a finished download; "
            "remove it to download again"
        )
    ratio = resolve_max_expansion(max_expansion)
    downloads = tasks_dir / DOWNLOADS
    path = downloads / archive.file
    ledger = read_ledger(downloads, archive.file)
    known_size = ledger.size if ledger else getattr(archive, "size", None)
    if path.is_file():  # downloaded by an earlier run that stopped later: checked again
        size, sha256 = verify(path, archive, url, ledger)
    else:
        part = downloads / f"{archive.file}.part"
        fetch(url, part, progress=progress, expected_size=known_size)
        size, sha256 = verify(part, archive, url, ledger)
        part.replace(path)
    staging = downloads / f"{archive.file}.extract"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        try:
            extract(path, staging, expansion_limit(size, ratio))
            folder = find_task_folder(staging, archive.folder, path)
            check_complete(folder, archive.file)
        except _BadArchive as e:
            path.unlink(missing_ok=True)
            raise HearError(f"{e}; the next try downloads it again; archive removed") from None
        resample_folder(folder, sample_rate, progress)
        marker = {"url": url, "file": archive.file, "md5": archive.md5, "sha256": archive.sha256,
                  "downloaded": {"size": size, "sha256": sha256}}  # fmt: skip
        atomic_write(folder / COMPLETE, json.dumps(marker, indent=1) + "\n")
        if ledger is None and not (archive.md5 or archive.sha256):
            write_ledger(downloads, archive.file, size, sha256, url)
        folder.rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    path.unlink()
    _remove_if_empty(downloads)
    return dest


# --- the ledger (trust on first use) ------------------------------------------------------


def ledger_path(downloads: Path, file: str) -> Path:
    return downloads / f"{file}{LEDGER_SUFFIX}"


class Ledger(NamedTuple):
    """What the first install of an archive recorded."""

    path: Path
    size: int
    sha256: str


def read_ledger(downloads: Path, file: str) -> Ledger | None:
    """The size and sha256 recorded at the first install of ``file``, or None."""
    path = ledger_path(downloads, file)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise HearError(f"{path}: unreadable ledger ({_one_line(e)}); delete it to trust the "
                        "next download") from None  # fmt: skip
    ok = isinstance(data, dict) and isinstance(data.get("size"), int)
    if not ok or not isinstance(data.get("sha256"), str) or len(data["sha256"]) != 64:
        raise HearError(f"{path}: a ledger needs an integer size and a 64-hex sha256; "
                        "delete it to trust the next download")  # fmt: skip
    return Ledger(path, data["size"], data["sha256"].lower())


def write_ledger(downloads: Path, file: str, size: int, sha256: str, url: str) -> Path:
    path = ledger_path(downloads, file)
    recorded = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    entry = {"file": file, "size": size, "sha256": sha256, "url": url, "recorded": recorded}
    atomic_write(path, json.dumps(entry, indent=1) + "\n")
    return path


# --- HTTP ---------------------------------------------------------------------------


def fetch(
    url: str,
    part: Path,
    progress: bool = True,
    retries: int | None = None,
    backoff_s: float | None = None,
    timeout_s: float | None = None,
    expected_size: int | None = None,
) -> Path:
    """Download ``url`` to ``part``, continuing what is already there with a Range request.

    A dropped connection or a 5xx is retried with exponential backoff; a server that
    answers a Range request with the whole file (200) is followed from the start.
    ``expected_size`` (from the ledger or the catalogue) refuses a server announcing
    another size before the transfer, and a part growing past it. When the tries run
    out, the part is kept for the next run only if the server honours Range.
    """
    retries = RETRIES if retries is None else retries
    backoff_s = BACKOFF_S if backoff_s is None else backoff_s
    timeout_s = TIMEOUT_S if timeout_s is None else timeout_s
    part.parent.mkdir(parents=True, exist_ok=True)
    if expected_size is not None and part.exists() and part.stat().st_size > expected_size:
        part.unlink()  # cannot be the start of the expected archive
    failures = 0
    state = _Attempts()
    with _progress(progress, transfer=True) as bar:
        task_id = bar.add_task(part.name.removesuffix(".part"), total=None)

        def show(done: int, total: int | None) -> None:
            bar.update(task_id, completed=done, total=total)

        while True:
            try:
                if _fetch_once(url, part, timeout_s, show, expected_size, state):
                    return part
                problem = "the connection closed before the end"
            except _Retry as e:
                problem = str(e)
            failures += 1
            if failures > retries:
                kept = "; the partial file is kept and resumed next time"
                if state.range_ignored:  # the next run would start over anyway
                    part.unlink(missing_ok=True)
                    kept = "; the server ignores Range, so the partial file is removed"
                elif not part.exists():
                    kept = ""
                raise HearError(f"{url}: download failed after {failures} tries: {problem}{kept}")
            time.sleep(backoff_s * 2 ** (failures - 1))


class _Attempts:
    """What the tries so far learnt about the server."""

    range_ignored = False


def _fetch_once(
    url: str,
    part: Path,
    timeout_s: float,
    show: _Show,
    expected_size: int | None = None,
    state: _Attempts | None = None,
) -> bool:
    """One request, appending to ``part``; True when ``part`` then holds the whole file."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=timeout_s
        )
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:
            _, total = _content_range(e.headers.get("Content-Range"))
            if total == have:
                return True  # the part already holds the whole file
            part.unlink()
            raise _Retry(f"HTTP 416 for a range from byte {have}; restarting") from None
        if e.code in _RETRY_STATUSES:
            raise _Retry(f"HTTP {e.code} {e.reason}") from None
        raise HearError(f"{url}: HTTP {e.code} {_one_line(e.reason)}") from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, OSError):  # refused, reset, unreachable, DNS, timeout
            raise _Retry(_one_line(e.reason)) from None
        raise HearError(f"{url}: {_one_line(e.reason)}") from None
    except ValueError as e:
        raise HearError(f"{url}: {_one_line(e)}") from None
    except (http.client.HTTPException, OSError) as e:
        raise _Retry(f"{type(e).__name__}: {_one_line(e)}") from None

    with response:
        if response.status == 206:
            start, total = _content_range(response.headers.get("Content-Range"))
            if start != have:
                part.unlink(missing_ok=True)
                raise _Retry(f"the server resumed at byte {start}, not {have}; restarting")
            mode = "ab"
        elif response.status == 200:
            if have and state is not None:
                state.range_ignored = True
            have, mode = 0, "wb"  # no Range, or the server ignored it: start clean
            length = response.headers.get("Content-Length", "")
            total = int(length) if length.isdigit() else None
        else:
            raise HearError(f"{url}: unexpected HTTP {response.status}")
        if expected_size is not None and total is not None and total != expected_size:
            part.unlink(missing_ok=True)
            raise HearError(
                f"{url}: the server announces {total} bytes, {expected_size} were recorded "
                f"for {part.name.removesuffix('.part')} (nothing downloaded; partial file removed)"
            )
        if total is None:
            total = expected_size
        show(have, total)
        try:
            handle = part.open(mode)
        except OSError as e:
            raise HearError(f"{part}: cannot write: {e.strerror}") from None
        with handle:
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (http.client.HTTPException, OSError) as e:
                    raise _Retry(f"connection lost at byte {have}: {type(e).__name__}") from None
                if not chunk:
                    break
                try:
                    handle.write(chunk)
                except OSError as e:
                    raise HearError(f"{part}: cannot write: {e.strerror}") from None
                have += len(chunk)
                show(have, total)
                if total is not None and have > total:
                    break
    if total is not None and have > total:
        part.unlink()
        raise _Retry(f"received {have} bytes, {total} announced; restarting")
    return total is None or have == total


class _Show(Protocol):
    def __call__(self, done: int, total: int | None) -> None: ...


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """``bytes 10-99/100`` -> (10, 100); ``bytes */100`` -> (None, 100); unknowns None."""
    if not value or not value.startswith("bytes "):
        return None, None
    span, _, size = value[len("bytes ") :].partition("/")
    start_text = span.split("-", 1)[0].strip()
    start = int(start_text) if start_text.isdigit() else None
    total = int(size) if size.strip().isdigit() else None
    return start, total


# --- checks and unpacking -------------------------------------------------------------


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
                        raise _BadArchive(
                            f"{archive_path}: refusing member {member.name!r}: {problem}"
                        )
                    unpacked += _BLOCK + member.size  # before a byte of it is written
                    if unpacked > max_bytes:
                        raise _BadArchive(too_big)
                    if safe_filter:
                        tar.extract(member, dest, filter="data")
                    else:
                        tar.extract(member, dest)  # members checked by _member_problem
                end = tar.offset
            stream.drain()
            if stream.block_at(end) != bytes(_BLOCK):
                raise _BadArchive(
                    f"{archive_path.name}: truncated (no end-of-archive block after byte {end})"
                )
    except _BadArchive:
        archive_path.unlink(missing_ok=True)
        raise
    except (tarfile.TarError, _Corrupt) as e:
        archive_path.unlink(missing_ok=True)
        raise _BadArchive(f"{archive_path}: not a readable tar archive ({_one_line(e)})") from None
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
            raise _Corrupt(_one_line(e) or type(e).__name__) from None
        except OSError as e:
            if isinstance(self.raw, bz2.BZ2File):  # bz2 reports damage as OSError
                raise _Corrupt(_one_line(e)) from None
            raise
        self.count += len(data)
        if self.count > self.limit:
            raise _BadArchive(self.too_big)
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
        raise _BadArchive(
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
    raise _BadArchive(
        f"{archive_path.name}: no tasks/{folder}/{METADATA_FILE} inside "
        f"(task folders found: {', '.join(found) or 'none'})"
    )


# --- resampling -------------------------------------------------------------------------


def resample_folder(folder: Path, sample_rate: int, progress: bool = True) -> Path:
    """Make ``<folder>/<sample_rate>/`` from the highest rate present (soxr HQ, 16-bit PCM).

    Lengths become round(n * new / old), as hear-preprocess's fixed clip lengths expect.
    The new folder is written beside and renamed into place, so it is whole or absent.
    """
    _check_rate(sample_rate)
    target = folder / str(sample_rate)
    if target.is_dir():
        return target
    rates = sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())
    if not rates:
        raise HearError(f"{folder}: no <sample_rate>/ audio folder to resample from")
    source_rate = rates[-1]
    source = folder / str(source_rate)
    files = sorted(p.relative_to(source) for p in source.rglob("*.wav") if p.is_file())
    if not files:
        raise HearError(f"{source}: no .wav files to resample")
    staging = folder / f".{sample_rate}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    for parent in sorted({(staging / rel).parent for rel in files}):
        parent.mkdir(parents=True, exist_ok=True)
    description = f"{folder.name}: {source_rate} -> {sample_rate} Hz"
    try:
        with (
            _progress(progress, transfer=False) as bar,
            ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool,
        ):
            task_id = bar.add_task(description, total=len(files))
            jobs: list[Future[None]] = [
                pool.submit(_resample_file, source / rel, staging / rel, source_rate, sample_rate)
                for rel in files
            ]
            try:
                for job in as_completed(jobs):
                    job.result()
                    bar.advance(task_id)
            except BaseException:
                for job in jobs:  # before the pool's exit waits for the queue to drain
                    job.cancel()
                raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    staging.rename(target)
    return target


def _resample_file(src: Path, dst: Path, source_rate: int, target_rate: int) -> None:
    try:
        audio, rate = sf.read(str(src), dtype="float32", always_2d=True)
    except (RuntimeError, OSError) as e:  # soundfile.LibsndfileError is a RuntimeError
        raise HearError(f"{src}: cannot decode audio: {_one_line(e)}") from None
    if rate != source_rate:
        raise HearError(f"{src}: sample rate is {rate} Hz but its folder is {source_rate}")
    n_out = round(len(audio) * target_rate / source_rate)
    if len(audio):
        out = np.asarray(soxr.resample(audio, source_rate, target_rate, "HQ"), np.float32)
    else:
        out = np.zeros((0, audio.shape[1]), np.float32)
    if len(out) > n_out:
        out = out[:n_out]
    elif len(out) < n_out:
        out = np.pad(out, ((0, n_out - len(out)), (0, 0)))
    np.clip(out, -1.0, 1.0, out=out)  # HQ filtering can overshoot; PCM_16 must not wrap
    try:
        sf.write(str(dst), out, target_rate, subtype="PCM_16")
    except (RuntimeError, OSError) as e:
        raise HearError(f"{dst}: cannot write: {_one_line(e)}") from None


# --- helpers ------------------------------------------------------------------------------


def _check_rate(sample_rate: int) -> None:
    if sample_rate not in ALLOWED_RATES:
        rates = ", ".join(str(r) for r in ALLOWED_RATES)
        raise HearError(f"sample rate {sample_rate} Hz is not one HEAR uses ({rates})")


def _progress(enabled: bool, transfer: bool) -> Progress:
    counts: tuple[ProgressColumn, ...] = (
        (DownloadColumn(), TransferSpeedColumn()) if transfer else (MofNCompleteColumn(),)
    )
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        *counts,
        TimeRemainingColumn(),
        disable=not enabled,
    )


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


def _remove_if_empty(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()
