"""Download released HEAR task archives: resumable, verified, safely unpacked, resampled.

Why each step: the HEAR 2021 archives are up to tens of GB, so a dropped connection
resumes with a ``Range`` request instead of starting over; a corrupt or hostile archive
must never land in the tasks directory, so checksums are checked and members that would
escape the extraction folder are refused; and the archives are published at 48 kHz only
(other rates cost money to fetch), so other rates are made here with soxr.

A task folder appears in ``tasks_dir`` only once it is complete: it is unpacked and
resampled in ``tasks_dir/.downloads``, marked with ``.complete``, then renamed into place.
"""

from __future__ import annotations

import contextlib
import difflib
import gzip
import hashlib
import http.client
import json
import os
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path, PurePosixPath
from typing import Protocol

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

from runner.errors import HearError
from runner.tasks.folder import METADATA_FILE

ALLOWED_RATES = (16000, 22050, 32000, 44100, 48000)  # the rates hear-preprocess writes
DOWNLOADS = ".downloads"
COMPLETE = ".complete"
CHUNK = 1 << 20
RETRIES = 5  # further tries after the first, with exponential backoff
BACKOFF_S = 1.0
TIMEOUT_S = 60.0  # per socket operation, not per download
USER_AGENT = "hear-runner"
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


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
    names: list[str], tasks_dir: Path, sample_rate: int = 48000, progress: bool = True
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
    return [download_task(e, tasks_dir, sample_rate, progress=progress) for e in chosen]


def download_task(
    entry: TaskSpec,
    tasks_dir: Path,
    sample_rate: int = 48000,
    url: str | None = None,
    progress: bool = True,
) -> Path:
    """Install every archive of ``entry`` into ``tasks_dir``; returns the first task folder.

    ``url`` replaces the catalogue's URL (a mirror); it is refused for a task of several
    archives, where it could only name one of them.
    """
    _check_rate(sample_rate)
    archives = list(entry.archives)
    if not archives:
        raise HearError(f"task {entry.name} has no archive to download")
    if url is not None and len(archives) != 1:
        raise HearError(f"task {entry.name} has {len(archives)} archives; url= can replace one")
    tasks_dir.mkdir(parents=True, exist_ok=True)
    folders = [install_archive(a, tasks_dir, sample_rate, url or a.url, progress) for a in archives]
    return folders[0]


def install_archive(
    archive: ArchiveSpec, tasks_dir: Path, sample_rate: int, url: str, progress: bool = True
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
    downloads = tasks_dir / DOWNLOADS
    path = downloads / archive.file
    if path.is_file():  # downloaded and verified by an earlier run that stopped later
        verify(path, archive, url)
    else:
        part = downloads / f"{archive.file}.part"
        fetch(url, part, progress=progress)
        verify(part, archive, url)
        part.replace(path)
    staging = downloads / f"{archive.file}.extract"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        extract(path, staging)
        folder = find_task_folder(staging, archive.folder, path)
        resample_folder(folder, sample_rate, progress)
        marker = {"url": url, "file": archive.file, "md5": archive.md5, "sha256": archive.sha256}
        (folder / COMPLETE).write_text(json.dumps(marker, indent=1) + "\n")
        folder.rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    path.unlink()
    _remove_if_empty(downloads)
    return dest


# --- HTTP ---------------------------------------------------------------------------


def fetch(
    url: str,
    part: Path,
    progress: bool = True,
    retries: int | None = None,
    backoff_s: float | None = None,
    timeout_s: float | None = None,
) -> Path:
    """Download ``url`` to ``part``, continuing what is already there with a Range request.

    A dropped connection or a 5xx is retried with exponential backoff; a server that
    answers a Range request with the whole file (200) is followed from the start.
    """
    retries = RETRIES if retries is None else retries
    backoff_s = BACKOFF_S if backoff_s is None else backoff_s
    timeout_s = TIMEOUT_S if timeout_s is None else timeout_s
    part.parent.mkdir(parents=True, exist_ok=True)
    failures = 0
    with _progress(progress, transfer=True) as bar:
        task_id = bar.add_task(part.name.removesuffix(".part"), total=None)

        def show(done: int, total: int | None) -> None:
            bar.update(task_id, completed=done, total=total)

        while True:
            try:
                if _fetch_once(url, part, timeout_s, show):
                    return part
                problem = "the connection closed before the end"
            except _Retry as e:
                problem = str(e)
            failures += 1
            if failures > retries:
                raise HearError(f"{url}: download failed after {failures} tries: {problem}")
            time.sleep(backoff_s * 2 ** (failures - 1))


def _fetch_once(url: str, part: Path, timeout_s: float, show: _Show) -> bool:
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
            have, mode = 0, "wb"  # no Range, or the server ignored it: start clean
            length = response.headers.get("Content-Length", "")
            total = int(length) if length.isdigit() else None
        else:
            raise HearError(f"{url}: unexpected HTTP {response.status}")
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


def verify(path: Path, archive: ArchiveSpec, url: str) -> None:
    """Check the digests the catalogue knows; a mismatching file is removed."""
    expected = {
        name: value.lower()
        for name, value in (("sha256", archive.sha256), ("md5", archive.md5))
        if value
    }
    if not expected:
        return
    digests = {name: hashlib.new(name) for name in expected}
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
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


def extract(archive_path: Path, dest: Path) -> None:
    """Unpack a tarball into ``dest``, refusing absolute paths, ``..``, links and devices.

    Members are streamed once (a gzip stream cannot seek back cheaply). A corrupt or
    refused archive is removed, so the next run downloads it again.
    """
    dest.mkdir(parents=True)
    safe_filter = hasattr(tarfile, "data_filter")  # Python >= 3.11.4 and backports
    try:
        with tarfile.open(archive_path, "r|*") as tar:
            for member in tar:
                problem = _member_problem(member)
                if problem:
                    raise HearError(
                        f"{archive_path}: refusing member {member.name!r}: {problem} "
                        "(archive removed)"
                    )
                if safe_filter:
                    tar.extract(member, dest, filter="data")
                else:
                    tar.extract(member, dest)  # members checked by _member_problem
    except HearError:
        archive_path.unlink(missing_ok=True)
        raise
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        archive_path.unlink(missing_ok=True)
        raise HearError(
            f"{archive_path}: not a readable tar archive ({_one_line(e)}); archive removed"
        ) from None
    except OSError as e:
        raise HearError(f"{dest}: cannot unpack {archive_path.name}: {e.strerror}") from None


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
    raise HearError(
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
