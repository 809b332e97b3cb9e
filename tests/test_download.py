"""Downloading released task archives, against a local HTTP server on 127.0.0.1 only.

The server and the tiny released task it serves are in ``releases.py`` (shared with
test_download_trust.py): tarballs in the released layout (``tasks/<folder>/...`` at
48000 Hz), and a server that can drop a connection half way or ignore Range, as real
mirrors do.
"""

from __future__ import annotations

import hashlib
import io
import re
import socket
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile as sf
from hear_2021 import catalogue as cat
from hear_2021.catalogue import CATALOGUE, Archive, CatalogueTask
from releases import FOLDER, RATE, SECONDS, SPLITS, Server, serving
from releases import entry as _entry
from releases import tarball as _tarball
from releases import task_files as _task_files

from hear_runner.errors import HearError
from hear_runner.tasks import download as dl
from hear_runner.tasks import fetch as dl_fetch
from hear_runner.tasks.folder import Task
from hear_runner.tasks.metadata import TaskMetadata


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setattr(dl_fetch, "BACKOFF_S", 0.01)
    monkeypatch.setattr(dl_fetch, "TIMEOUT_S", 5.0)
    with serving() as state:
        yield state


@pytest.fixture(scope="module")
def payload() -> bytes:
    return _tarball(_task_files())


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_resampled(folder: Path, rate: int) -> None:
    for split in SPLITS:
        for i in range(3):
            info = sf.info(str(folder / str(rate) / split / f"{i}.wav"))
            assert (info.samplerate, info.frames, info.subtype) == (rate, round(SECONDS * rate), "PCM_16")  # fmt: skip


# --- tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("root", ["tasks", "hear-2021.0.6/tasks"])
def test_download_extract_and_resample(
    tmp_path: Path, server: Server, payload: bytes, root: str
) -> None:
    data = payload if root == "tasks" else _tarball(_task_files(), root)
    entry = _entry(server.serve("tiny.tar.gz", data), sha256=_sha256(data), md5=hashlib.md5(data).hexdigest())  # fmt: skip
    path = dl.download_task(entry, tmp_path, sample_rate=16000, progress=False)

    assert path == tmp_path / FOLDER and (path / dl.COMPLETE).is_file()
    task = Task(path)
    assert task.sample_rates == [16000, 48000]
    assert [len(task.clips(s)) for s in task.splits] == [3, 3, 3]
    _check_resampled(path, 16000)
    original, _ = sf.read(str(path / "48000/train/0.wav"))
    assert len(original) == round(SECONDS * RATE)
    assert sorted(p.name for p in tmp_path.iterdir()) == [FOLDER]  # no .downloads left

    # Complete: skipped without a request; another rate is made locally.
    requests = len(server.ranges)
    assert dl.download_task(entry, tmp_path, sample_rate=16000, progress=False) == path
    assert dl.download_task(entry, tmp_path, sample_rate=22050, progress=False) == path
    assert len(server.ranges) == requests
    _check_resampled(path, 22050)


def test_dropped_connection_is_resumed_with_range(
    tmp_path: Path, server: Server, payload: bytes
) -> None:
    entry = _entry(server.serve("tiny.tar.gz", payload), sha256=_sha256(payload))
    server.drops = 1
    path = dl.download_task(entry, tmp_path, progress=False)

    half = len(payload) // 2
    assert server.ranges == [None, f"bytes={half}-"]
    assert Task(path).sample_rates == [48000]


def test_download_resumes_across_runs(
    tmp_path: Path, server: Server, payload: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = server.serve("tiny.tar.gz", payload)
    entry = _entry(url, sha256=_sha256(payload))
    server.drops = 1
    monkeypatch.setattr(dl_fetch, "RETRIES", 0)
    with pytest.raises(HearError, match=rf"^{url}: download failed after 1 tries: "):
        dl.download_task(entry, tmp_path, progress=False)
    part = tmp_path / dl.DOWNLOADS / f"{FOLDER}.tar.gz.part"
    assert part.stat().st_size == len(payload) // 2
    assert not (tmp_path / FOLDER).exists()

    path = dl.download_task(entry, tmp_path, progress=False)
    assert server.ranges[-1] == f"bytes={len(payload) // 2}-"
    assert (path / dl.COMPLETE).is_file() and not part.exists()


def test_server_ignoring_range_restarts_cleanly(
    tmp_path: Path, server: Server, payload: bytes
) -> None:
    entry = _entry(server.serve("tiny.tar.gz", payload), sha256=_sha256(payload))
    part = tmp_path / dl.DOWNLOADS / f"{FOLDER}.tar.gz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"not the start of the archive" * 4)
    server.ignore_range = True
    path = dl.download_task(entry, tmp_path, progress=False)

    assert server.ranges == [f"bytes={len(b'not the start of the archive') * 4}-"]
    assert Task(path).sample_rates == [48000]


def test_complete_part_is_accepted_after_416(
    tmp_path: Path, server: Server, payload: bytes
) -> None:
    entry = _entry(server.serve("tiny.tar.gz", payload), sha256=_sha256(payload))
    part = tmp_path / dl.DOWNLOADS / f"{FOLDER}.tar.gz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(payload)
    assert dl.download_task(entry, tmp_path, progress=False).is_dir()
    assert server.ranges == [f"bytes={len(payload)}-"]


def test_checksum_mismatch_names_file_and_digests(
    tmp_path: Path, server: Server, payload: bytes
) -> None:
    wrong = "0" * 64
    entry = _entry(server.serve("tiny.tar.gz", payload), sha256=wrong)
    with pytest.raises(HearError) as raised:
        dl.download_task(entry, tmp_path, progress=False)
    message = str(raised.value)
    assert message.startswith(f"{FOLDER}.tar.gz: sha256 mismatch: expected {wrong}, got {_sha256(payload)}")  # fmt: skip
    assert "\n" not in message
    assert not any((tmp_path / dl.DOWNLOADS).iterdir())  # the bad file is removed
    assert not (tmp_path / FOLDER).exists()


def test_md5_mismatch(tmp_path: Path, server: Server, payload: bytes) -> None:
    entry = _entry(server.serve("tiny.tar.gz", payload), md5="f" * 32)
    with pytest.raises(HearError, match=rf"md5 mismatch: expected f{{32}}, got {hashlib.md5(payload).hexdigest()}"):  # fmt: skip
        dl.download_task(entry, tmp_path, progress=False)


@pytest.mark.parametrize("name", ["../evil", "tasks/../../evil", "/tmp/hear-evil"])
def test_member_escaping_the_folder_is_refused(tmp_path: Path, server: Server, name: str) -> None:
    data = _tarball({f"tasks/{k}": v for k, v in _task_files().items()} | {name: b"evil"}, root="")
    entry = _entry(server.serve("evil.tar.gz", data), sha256=_sha256(data))
    tasks_dir = tmp_path / "tasks"
    with pytest.raises(HearError, match=rf"refusing member '{re.escape(name)}': (absolute path|path with '\.\.')"):  # fmt: skip
        dl.download_task(entry, tasks_dir, progress=False)
    assert not (tmp_path / "evil").exists() and not Path("/tmp/hear-evil").exists()
    assert not (tasks_dir / FOLDER).exists()
    assert not any((tasks_dir / dl.DOWNLOADS).iterdir())  # archive and staging removed


def test_symlink_member_is_refused(tmp_path: Path, server: Server) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        link = tarfile.TarInfo(f"tasks/{FOLDER}/task_metadata.json")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    entry = _entry(server.serve("link.tar.gz", buffer.getvalue()))
    with pytest.raises(HearError, match="not a regular file or folder"):
        dl.download_task(entry, tmp_path, progress=False)


def test_archive_without_the_task_folder(tmp_path: Path, server: Server) -> None:
    data = _tarball(_task_files("other-1.0-full"))
    entry = _entry(server.serve("other.tar.gz", data))
    with pytest.raises(HearError, match=rf"no tasks/{FOLDER}/task_metadata.json inside \(task folders found: other-1.0-full\)"):  # fmt: skip
        dl.download_task(entry, tmp_path, progress=False)


def test_truncated_archive_is_removed(tmp_path: Path, server: Server, payload: bytes) -> None:
    entry = _entry(server.serve("cut.tar.gz", payload[: len(payload) // 2]))  # no checksum known
    with pytest.raises(HearError, match=rf"{FOLDER}\.tar\.gz: not a readable tar archive .*; archive removed$"):  # fmt: skip
        dl.download_task(entry, tmp_path, progress=False)
    assert not any((tmp_path / dl.DOWNLOADS).iterdir()) and not (tmp_path / FOLDER).exists()


def test_undecodable_audio_is_named_and_nothing_installed(tmp_path: Path, server: Server) -> None:
    files = _task_files() | {f"{FOLDER}/{RATE}/valid/1.wav": b"not audio"}
    entry = _entry(server.serve("bad.tar.gz", _tarball(files)))
    with pytest.raises(HearError, match=rf"{RATE}/valid/1\.wav: cannot decode audio"):
        dl.download_task(entry, tmp_path, sample_rate=44100, progress=False)
    assert not (tmp_path / FOLDER).exists()
    assert not any((tmp_path / dl.DOWNLOADS).glob("*.extract"))


def test_http_errors_name_the_url(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = f"{server.base}/missing.tar.gz"
    with pytest.raises(HearError, match=rf"^{missing}: HTTP 404"):
        dl.download_task(_entry(missing), tmp_path, progress=False)
    assert server.ranges == [None]  # a 404 is not retried

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/x.tar.gz"
    monkeypatch.setattr(dl_fetch, "RETRIES", 2)
    with pytest.raises(HearError, match=rf"^{closed}: download failed after 3 tries: "):
        dl.download_task(_entry(closed), tmp_path, progress=False)


def test_folder_not_made_by_a_download_is_left_alone(
    tmp_path: Path, server: Server, payload: bytes
) -> None:
    (tmp_path / FOLDER).mkdir()
    entry = _entry(server.serve("tiny.tar.gz", payload))
    with pytest.raises(HearError, match=rf"{FOLDER} exists but has no \.complete marker"):
        dl.download_task(entry, tmp_path, progress=False)
    assert server.ranges == []


def test_url_overrides_the_catalogue(tmp_path: Path, server: Server, payload: bytes) -> None:
    entry = _entry("http://127.0.0.1:9/not-used.tar.gz", sha256=_sha256(payload))
    mirror = server.serve("mirror.tar.gz", payload)
    assert dl.download_task(entry, tmp_path, url=mirror, progress=False).is_dir()
    beehive = next(t for t in CATALOGUE if t.name == "beehive_states")
    with pytest.raises(HearError, match="beehive_states has 2 archives"):
        dl.download_task(beehive, tmp_path, url=mirror, progress=False)


def test_download_tasks_by_name(
    tmp_path: Path, server: Server, payload: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = _entry(server.serve("tiny.tar.gz", payload), sha256=_sha256(payload))
    monkeypatch.setattr(cat, "CATALOGUE", (entry,))
    paths = dl.download_tasks(["tiny", FOLDER], tmp_path, sample_rate=32000, progress=False)
    assert paths == [tmp_path / FOLDER]  # one task named twice is downloaded once
    _check_resampled(paths[0], 32000)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("esc5", r"^no HEAR 2021 task named 'esc5'; did you mean esc50"),
        ("speech_commands", r"did you mean .*speech_commands_5h"),
        ("zzzz", r"^no HEAR 2021 task named 'zzzz'; known: dcase2016_task2, .*\(or hear2021 for all\)$"),
    ],
)  # fmt: skip
def test_unknown_task_name(tmp_path: Path, name: str, message: str) -> None:
    with pytest.raises(HearError, match=message):
        dl.download_tasks(["esc50", name], tmp_path, sample_rate=48000, progress=False)
    assert not tmp_path.joinpath(dl.DOWNLOADS).exists()  # nothing fetched before the error


def test_sample_rate_must_be_a_hear_rate(tmp_path: Path) -> None:
    with pytest.raises(HearError, match=r"sample rate 8000 Hz is not one HEAR uses"):
        dl.download_tasks(["esc50"], tmp_path, sample_rate=8000, progress=False)


# --- the catalogue ----------------------------------------------------------------------------


def test_catalogue_has_the_19_tasks_with_every_field_set() -> None:
    assert len(CATALOGUE) == 19
    assert len({t.name for t in CATALOGUE}) == 19
    folders = [a.folder for t in CATALOGUE for a in t.archives]
    assert len(folders) == len(set(folders)) == 20  # Beehive is released as two folds
    assert len({t.folder for t in CATALOGUE}) == 19
    for task in CATALOGUE:
        # Every field given explicitly, None included: an unknown fact is marked, not omitted.
        assert task.model_fields_set == set(CatalogueTask.model_fields), task.name
        assert task.folder == f"{task.task_name}-{task.version}-{task.mode}" == task.archives[0].folder  # fmt: skip
        assert (task.nfolds is None) == (task.split_mode == "trainvaltest"), task.name
        assert task.evaluation and task.clips
        TaskMetadata(
            task_name=task.task_name, version=task.version, embedding_type=task.embedding_type,
            prediction_type=task.prediction_type, split_mode=task.split_mode,
            sample_duration=task.sample_duration, evaluation=list(task.evaluation),
            nfolds=task.nfolds,
        )  # fmt: skip
        for archive in task.archives:
            assert archive.model_fields_set == set(Archive.model_fields)
            assert archive.file == f"hear2021-{archive.folder}-48000.tar.gz"
            assert archive.url.startswith(f"https://zenodo.org/records/{cat.ZENODO_RECORD}/files/{archive.file}")  # fmt: skip
    expected = {
        "beehive_states_fold0-v2-full", "beehive_states_fold1-v2-full",
        "beijing_opera-v1.0-hear2021-full", "dcase2016_task2-hear2021-full", "esc50-v2.0.0-full",
        "fsd50k-v1.0-full", "gunshot_triangulation-v1.0-full", "libricount-v1.0.0-hear2021-full",
        "maestro-v3.0.0-5h", "mridangam_stroke-v1.5-full", "mridangam_tonic-v1.5-full",
        "nsynth_pitch-v2.2.3-5h", "nsynth_pitch-v2.2.3-50h", "speech_commands-v0.0.2-5h",
        "speech_commands-v0.0.2-full", "tfds_crema_d-1.0.0-full", "tfds_gtzan-1.0.0-full",
        "tfds_gtzan_music_speech-1.0.0-full", "vocal_imitation-v1.1.3-full",
        "vox_lingua_top10-hear2021-full",
    }  # fmt: skip
    assert set(folders) == expected


def test_hear2021_plugin_registers_every_catalogued_task() -> None:
    from hear_runner.tasks.sources import task_sources

    sources = {s.name: s for s in task_sources() if s.suite == "hear2021"}
    assert set(sources) == {t.name for t in CATALOGUE}
    for task in CATALOGUE:
        source = sources[task.name]
        assert source.plugin == "hear2021" and source.scales == ("full",)
        assert source.folder_name("full") == task.folder
        assert (source.embedding_type, source.split_mode) == (task.embedding_type, task.split_mode)
