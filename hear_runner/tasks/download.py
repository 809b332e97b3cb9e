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

This module is the flow; the steps live beside it: :mod:`~hear_runner.tasks.fetch` (HTTP),
:mod:`~hear_runner.tasks.ledger`, :mod:`~hear_runner.tasks.archive` (checksums, caps,
unpacking) and :mod:`~hear_runner.tasks.resample`.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import shutil
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from hear_runner.errors import HearError
from hear_runner.files import atomic_write
from hear_runner.tasks.archive import (
    ArchiveSpec,
    BadArchive,
    check_complete,
    expansion_limit,
    extract,
    find_task_folder,
    resolve_max_expansion,
    verify,
)
from hear_runner.tasks.fetch import fetch
from hear_runner.tasks.ledger import read_ledger, write_ledger
from hear_runner.tasks.resample import check_rate, resample_folder

DOWNLOADS = ".downloads"
COMPLETE = ".complete"
MIRROR_ENV = "HEAR_MIRROR"


class TaskSpec(Protocol):
    """A downloadable task: a name and its archives (``CatalogueTask`` fits)."""

    @property
    def name(self) -> str: ...
    @property
    def archives(self) -> Sequence[ArchiveSpec]: ...


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

    check_rate(sample_rate)
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
    check_rate(sample_rate)
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
        except BadArchive as e:
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


def _remove_if_empty(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()
