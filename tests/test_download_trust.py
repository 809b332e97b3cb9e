"""Trusting downloads: a mirror, a ledger of first-seen hashes, an expansion cap,
truncated archives and archives missing files (issue 12, finding 15).

Everything is served from loopback HTTP servers started here (``releases.py``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hear_2021 import catalogue as cat
from releases import FOLDER, RATE, Server, entry, serving, tarball, task_files

from hear_runner.errors import HearError
from hear_runner.tasks import archive as dl_archive
from hear_runner.tasks import download as dl
from hear_runner.tasks import fetch as dl_fetch
from hear_runner.tasks.folder import Task

ARCHIVE = f"{FOLDER}.tar.gz"  # the archive's file name in entry()
ESC50 = "esc50-v2.0.0-full"  # a real catalogue task, served from a loopback mirror
ESC50_FILE = f"hear2021-{ESC50}-48000.tar.gz"
# The interface, spelt out (not read from the module, so these tests run against older code):
MIRROR_ENV, MAX_EXPANSION_ENV = "HEAR_MIRROR", "HEAR_MAX_EXPANSION"
LEDGER_SUFFIX = ".verified.json"  # tasks_dir/.downloads/<archive file>.verified.json
RATIO, FLOOR = 20, 64 << 20  # default cap: 20 x the archive + 64 MiB


def _limit(archive_size: int, ratio: float = RATIO, floor: int = FLOOR) -> int:
    return int(archive_size * ratio) + floor


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    monkeypatch.delenv(MAX_EXPANSION_ENV, raising=False)
    monkeypatch.setattr(dl_fetch, "BACKOFF_S", 0.01)
    monkeypatch.setattr(dl_fetch, "TIMEOUT_S", 5.0)


@pytest.fixture
def server(quick: None) -> Iterator[Server]:
    with serving() as state:
        yield state


@pytest.fixture
def mirror(quick: None) -> Iterator[Server]:
    with serving() as state:
        yield state


def _files_left(tasks_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(tasks_dir)) for p in tasks_dir.rglob("*") if p.is_file())


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- a mirror -------------------------------------------------------------------------------


def test_mirror_option_on_the_command_line(tmp_path: Path, server: Server, mirror: Server) -> None:
    """``hear tasks download esc50 --mirror URL`` fetches <URL>/<archive file>, not Zenodo."""
    mirror.serve(ESC50_FILE, tarball(task_files(ESC50)))
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop(MIRROR_ENV, None)
    done = subprocess.run(
        [sys.executable, "-m", "hear_runner", "tasks", "download", "esc50",
         "--tasks-dir", str(tmp_path), "--mirror", f"{mirror.base}/"],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert mirror.ranges == [None]  # one whole GET, to the mirror
    assert (tmp_path / ESC50 / dl.COMPLETE).is_file()
    marker = json.loads((tmp_path / ESC50 / dl.COMPLETE).read_text())
    assert marker["url"] == f"{mirror.base}/{ESC50_FILE}"


def test_mirror_environment_variable(
    tmp_path: Path, mirror: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$HEAR_MIRROR reaches downloads made by plugins (hear tasks prepare), not only the CLI."""
    from hear_runner.tasks.sources import select_sources

    mirror.serve(ESC50_FILE, tarball(task_files(ESC50)))
    monkeypatch.setenv(MIRROR_ENV, mirror.base)
    (source,) = select_sources(["esc50"])
    assert source.prepare(tmp_path, "full") == tmp_path / ESC50
    assert mirror.ranges == [None]
    assert Task(tmp_path / ESC50).sample_rates == [48000]


def test_mirror_must_be_http(tmp_path: Path, quick: None) -> None:
    with pytest.raises(HearError, match=r"^mirror 'ftp://x' is not an http:// or https:// URL$"):
        dl.download_tasks(["esc50"], tmp_path, mirror="ftp://x", progress=False)


# --- the ledger (trust on first use) -------------------------------------------------------


def test_ledger_written_at_first_install_then_a_changed_archive_refused(
    tmp_path: Path, server: Server
) -> None:
    payload = tarball(task_files())
    task = entry(server.serve("tiny.tar.gz", payload))  # no checksum in the catalogue
    dl.download_task(task, tmp_path, progress=False)
    ledger = tmp_path / dl.DOWNLOADS / f"{ARCHIVE}{LEDGER_SUFFIX}"
    recorded = json.loads(ledger.read_text())
    assert (recorded["file"], recorded["size"], recorded["sha256"]) == (ARCHIVE, len(payload), _sha256(payload))  # fmt: skip
    assert recorded["url"] == f"{server.base}/tiny.tar.gz"
    assert _files_left(tmp_path / dl.DOWNLOADS) == [ledger.name]  # the archive itself is gone

    # The same size, one byte changed: refused by hash, the file removed.
    changed = bytearray(payload)
    changed[len(changed) // 2] ^= 0xFF
    server.serve("tiny.tar.gz", bytes(changed))
    shutil.rmtree(tmp_path / FOLDER)
    with pytest.raises(HearError) as raised:
        dl.download_task(task, tmp_path, progress=False)
    message = str(raised.value)
    assert message.startswith(f"{ARCHIVE}: sha256 mismatch with the first download: expected {_sha256(payload)}, got {_sha256(bytes(changed))}")  # fmt: skip
    assert "\n" not in message and str(ledger) in message
    assert _files_left(tmp_path) == [f"{dl.DOWNLOADS}/{ledger.name}"]
    assert json.loads(ledger.read_text()) == recorded  # the first download stays trusted

    # Another size: refused from the headers, before the body is read.
    server.serve("tiny.tar.gz", payload + b"\0" * 512)
    with pytest.raises(HearError, match=rf"the server announces {len(payload) + 512} bytes, {len(payload)} were recorded for {ARCHIVE}"):  # fmt: skip
        dl.download_task(task, tmp_path, progress=False)
    assert _files_left(tmp_path) == [f"{dl.DOWNLOADS}/{ledger.name}"]

    # The original again: accepted, and the ledger unchanged.
    server.serve("tiny.tar.gz", payload)
    assert (dl.download_task(task, tmp_path, progress=False) / dl.COMPLETE).is_file()
    assert json.loads(ledger.read_text()) == recorded


def test_a_kept_archive_is_checked_against_the_ledger(tmp_path: Path, server: Server) -> None:
    """An archive left in .downloads by a stopped run is verified again before reuse."""
    payload = tarball(task_files())
    task = entry(server.serve("tiny.tar.gz", payload))
    dl.download_task(task, tmp_path, progress=False)
    shutil.rmtree(tmp_path / FOLDER)
    kept = tmp_path / dl.DOWNLOADS / ARCHIVE
    kept.parent.mkdir(exist_ok=True)
    kept.write_bytes(tarball(task_files() | {f"{FOLDER}/extra.txt": b"x"}))
    with pytest.raises(HearError, match=rf"^{ARCHIVE}: sha256 mismatch with the first download"):
        dl.download_task(task, tmp_path, progress=False)
    assert not kept.exists() and not (tmp_path / FOLDER).exists()


def test_no_ledger_where_the_catalogue_has_a_checksum(tmp_path: Path, server: Server) -> None:
    payload = tarball(task_files())
    task = entry(server.serve("tiny.tar.gz", payload), sha256=_sha256(payload))
    dl.download_task(task, tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [FOLDER]


# --- expansion cap -------------------------------------------------------------------------


class _Zeros(io.RawIOBase):
    """``size`` zero bytes, read in chunks: a bomb written without holding it in memory."""

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int | None = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        self.left -= n
        return bytes(n)


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """A valid task plus one 300 MiB member of zeros: about 300 KB gzipped."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=9) as tar:
        for name, data in task_files().items():
            info = tarfile.TarInfo(f"tasks/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo(f"tasks/{FOLDER}/{RATE}/train/zeros.bin")
        info.size = 300 << 20
        tar.addfile(info, _Zeros(info.size))
    return buffer.getvalue()


@pytest.fixture
def unpacked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the members tarfile extracts, in order."""
    sizes: list[int] = []
    extract = tarfile.TarFile.extract

    def counting(self: tarfile.TarFile, member: tarfile.TarInfo, *args: object, **kwargs: object) -> None:  # fmt: skip
        sizes.append(member.size)
        extract(self, member, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(tarfile.TarFile, "extract", counting)
    return sizes


def test_expansion_bomb_is_refused_before_it_is_written(
    tmp_path: Path, server: Server, bomb: bytes, unpacked: list[int]
) -> None:
    assert len(bomb) < 400_000
    task = entry(server.serve("bomb.tar.gz", bomb))
    start = time.monotonic()
    with pytest.raises(HearError) as raised:
        dl.download_task(task, tmp_path, progress=False)
    message = str(raised.value)
    assert message.startswith(f"{ARCHIVE}: unpacks to more than {_limit(len(bomb))} bytes ({len(bomb)} bytes packed")  # fmt: skip
    assert message.endswith("; archive removed") and "\n" not in message
    assert sum(unpacked) < 1 << 20  # the task's small files; nothing of the 300 MiB member
    assert _files_left(tmp_path) == [] and not (tmp_path / FOLDER).exists()
    assert time.monotonic() - start < 30


def test_expansion_cap_counts_every_member_and_is_configurable(
    tmp_path: Path, server: Server, unpacked: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many modest members add up: refused once their sum passes the cap, wherever it is;
    a larger ``max_expansion`` (option or $HEAR_MAX_EXPANSION) lets the archive in."""
    monkeypatch.setattr(dl_archive, "EXPANSION_FLOOR", 1 << 20)
    zeros = {f"{FOLDER}/extra/{i}.bin": bytes(256 << 10) for i in range(40)}  # 10 MiB
    data = tarball(task_files() | zeros)
    task = entry(server.serve("many.tar.gz", data))
    limit = _limit(len(data), floor=1 << 20)
    with pytest.raises(HearError, match=rf"^{ARCHIVE}: unpacks to more than {limit} bytes"):
        dl.download_task(task, tmp_path, progress=False)
    assert sum(unpacked) <= limit
    assert _files_left(tmp_path) == []

    monkeypatch.setenv(MAX_EXPANSION_ENV, "0")
    with pytest.raises(HearError, match=r"^\$HEAR_MAX_EXPANSION must be a number above 0"):
        dl.download_task(task, tmp_path, progress=False)
    monkeypatch.setenv(MAX_EXPANSION_ENV, "5000")
    assert (dl.download_task(task, tmp_path, progress=False) / dl.COMPLETE).is_file()


# --- truncated archives -----------------------------------------------------------------------


def _metadata_last(files: dict[str, bytes]) -> dict[str, bytes]:
    return dict(sorted(files.items(), key=lambda item: item[0].endswith(".json")))


def test_truncated_plain_tar_is_removed_and_downloaded_whole_next_time(
    tmp_path: Path, server: Server
) -> None:
    """A plain tar cut at a member boundary reads as a shorter archive (no tar error):
    only its missing end-of-archive block shows the cut."""
    whole = tarball(_metadata_last(task_files()), mode="w")
    with tarfile.open(fileobj=io.BytesIO(whole)) as tar:
        cut = tar.getmembers()[-4].offset  # before the metadata and the three split files
    task = entry(server.serve("tiny.tar", whole[:cut]))  # Content-Length agrees: a bad mirror
    with pytest.raises(HearError) as raised:
        dl.download_task(task, tmp_path, progress=False)
    message = str(raised.value)
    assert message == f"{ARCHIVE}: truncated (no end-of-archive block after byte {cut}); the next try downloads it again; archive removed"  # fmt: skip
    assert _files_left(tmp_path) == [] and not (tmp_path / FOLDER).exists()

    server.serve("tiny.tar", whole)
    requests = len(server.ranges)
    assert (dl.download_task(task, tmp_path, progress=False) / dl.COMPLETE).is_file()
    assert server.ranges[requests:] == [None]  # downloaded again, whole, not resumed


def test_a_part_the_server_cannot_resume_is_removed(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = tarball(task_files())
    task = entry(server.serve("tiny.tar.gz", payload))
    part = tmp_path / dl.DOWNLOADS / f"{ARCHIVE}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(payload[:100])
    server.ignore_range, server.drops = True, 1
    monkeypatch.setattr(dl_fetch, "RETRIES", 0)
    with pytest.raises(HearError, match=r"the server ignores Range, so the partial file is removed$"):  # fmt: skip
        dl.download_task(task, tmp_path, progress=False)
    assert not part.exists()


def test_a_part_longer_than_the_ledger_is_not_resumed(tmp_path: Path, server: Server) -> None:
    payload = tarball(task_files())
    task = entry(server.serve("tiny.tar.gz", payload))
    dl.download_task(task, tmp_path, progress=False)
    shutil.rmtree(tmp_path / FOLDER)
    part = tmp_path / dl.DOWNLOADS / f"{ARCHIVE}.part"
    part.parent.mkdir(exist_ok=True)
    part.write_bytes(payload + b"junk")
    requests = len(server.ranges)
    assert (dl.download_task(task, tmp_path, progress=False) / dl.COMPLETE).is_file()
    assert server.ranges[requests:] == [None]


# --- archives missing files ----------------------------------------------------------------------


def test_archive_missing_a_listed_clip_is_not_marked_complete(
    tmp_path: Path, server: Server
) -> None:
    files = task_files()
    del files[f"{FOLDER}/{RATE}/test/2.wav"], files[f"{FOLDER}/{RATE}/valid/0.wav"]
    task = entry(server.serve("tiny.tar.gz", tarball(files)))
    with pytest.raises(HearError) as raised:
        dl.download_task(task, tmp_path, sample_rate=16000, progress=False)
    message = str(raised.value)
    assert message.startswith(f"task {FOLDER} from {ARCHIVE}: ")
    assert "; not marked complete" in message
    assert "2.wav" in message or "0.wav" in message  # a missing clip is named
    assert "\n" not in message
    assert not (tmp_path / FOLDER).exists()
    assert _files_left(tmp_path) == []  # no ledger for an archive never installed


def test_every_catalogue_archive_is_still_without_a_checksum() -> None:
    """Honesty check: the real HEAR 2021 checksums are not known here, so none is made up;
    the ledger is what protects those downloads."""
    assert all(a.md5 is None and a.sha256 is None for t in cat.CATALOGUE for a in t.archives)


def test_archive_without_the_task_folder_is_not_kept_for_reuse(
    tmp_path: Path, server: Server
) -> None:
    """A bad archive is removed, not reused by every later try without a request."""
    data = tarball(task_files("other-1.0-full"))
    task = entry(server.serve("other.tar.gz", data))
    for _ in range(2):
        with pytest.raises(HearError, match=rf"^{ARCHIVE}: no tasks/{FOLDER}/task_metadata.json inside"):  # fmt: skip
            dl.download_task(task, tmp_path, progress=False)
        assert _files_left(tmp_path) == []
    assert server.ranges == [None, None]  # downloaded again, not reused
