"""Task folders may come from anywhere: their audio stays inside them, and problems are said.

Split keys are plain names, clips are regular files (no links, no FIFOs), every listed
clip is checked before any model starts, and damaged or shared clips are named.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from taskfolders import write_task

from hear_runner.embed.pipeline import _frames
from hear_runner.errors import TaskError
from hear_runner.tasks.audio import read_clip
from hear_runner.tasks.folder import Task

RATE = 16000


def hear(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m hear_runner`` in its own process group, killed whole if it outlives ``timeout``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "hear_runner", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the run and any model server it started
        process.communicate()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def run(tasks: Path, tmp_path: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return hear(
        "run", "--model-module", "numpy_logmel", "--tasks-dir", str(tasks),
        "--results-dir", str(tmp_path / "results"), "--grid-points", "2", timeout=timeout,
    )  # fmt: skip


def one_error(result: subprocess.CompletedProcess[str]) -> str:
    """The run failed with one error line, before any model server was started."""
    assert result.returncode == 1, result.stderr
    assert "starting" not in result.stderr, result.stderr
    [line] = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    return line


def outside_wav(tmp_path: Path) -> Path:
    path = tmp_path / "outside.wav"
    sf.write(path, 0.5 * np.sin(np.arange(RATE // 2) / 3), RATE)
    return path


def set_key(task: Path, split: str, old: str, new: str) -> None:
    labels = json.loads((task / f"{split}.json").read_text())
    labels[new] = labels.pop(old)
    (task / f"{split}.json").write_text(json.dumps(labels))


def in_thread(call: Callable[[], object], fifo: Path, seconds: float = 5) -> BaseException | None:
    """What ``call`` raised, or None; a call still blocked on ``fifo`` fails the test."""
    raised: list[BaseException | None] = [None]

    def target() -> None:
        try:
            call()
        except BaseException as e:  # handed to the test
            raised[0] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # let the blocked reader go
        thread.join(5)
        pytest.fail(f"still blocked on the FIFO {fifo} after {seconds} s")
    return raised[0]


# Finding 3: task files stay inside their folder.


@pytest.mark.parametrize(
    "key",
    ["../../../outside.wav", "/abs/outside.wav", "sub/0.wav", "..", "a\\b.wav", "", "a\0.wav"],
)
def test_split_key_with_a_path_is_refused_naming_file_and_key(tmp_path: Path, key: str) -> None:
    task = write_task(tmp_path)
    set_key(task, "test", "0.wav", key)
    with pytest.raises(TaskError, match=r"test.json: field '.*': not a plain file name") as info:
        Task(task)
    assert (key in str(info.value) or repr(key) in str(info.value)) and "\n" not in str(info.value)


def test_split_key_out_of_the_folder_fails_before_any_model_starts(tmp_path: Path) -> None:
    task = write_task(tmp_path / "tasks")
    outside = outside_wav(tmp_path)
    key = "../../../../outside.wav"  # from tasks/toy/16000/test/
    set_key(task, "test", "0.wav", key)
    assert (task / "16000" / "test" / key).resolve() == outside
    line = one_error(run(tmp_path / "tasks", tmp_path))
    assert f"{task / 'test.json'}: field '{key}': not a plain file name" in line


def test_symlinked_clip_is_refused_before_any_model_starts(tmp_path: Path) -> None:
    task = write_task(tmp_path / "tasks")
    clip = task / "16000" / "valid" / "1.wav"
    clip.unlink()
    clip.symlink_to(outside_wav(tmp_path))
    line = one_error(run(tmp_path / "tasks", tmp_path))
    assert f"{clip}: is a symlink to {tmp_path / 'outside.wav'} (listed in valid.json)" in line
    with pytest.raises(TaskError, match=r"valid/1.wav: is a symlink \(listed in valid.json\)"):
        read_clip(clip, RATE, RATE)  # read directly, the link is not followed either


def test_symlink_inside_the_task_folder_is_refused_too(tmp_path: Path) -> None:
    task = write_task(tmp_path)
    clip = task / "16000" / "test" / "0.wav"
    clip.unlink()
    clip.symlink_to(task / "16000" / "train" / "0.wav")
    with pytest.raises(TaskError, match=r"test/0.wav: is a symlink to .*train/0.wav"):
        Task(task).check_audio()


def test_split_folder_linked_out_of_the_task_folder_is_refused(tmp_path: Path) -> None:
    task = write_task(tmp_path / "tasks")
    elsewhere = tmp_path / "elsewhere"
    shutil.move(task / "16000" / "test", elsewhere)
    (task / "16000" / "test").symlink_to(elsewhere)
    with pytest.raises(TaskError, match=r"16000/test: resolves to .*elsewhere, outside the task"):
        Task(task).audio_path("test", "0.wav", RATE)
    assert "outside the task folder" in one_error(run(tmp_path / "tasks", tmp_path))


def test_task_folder_itself_may_be_a_link(tmp_path: Path) -> None:
    task = write_task(tmp_path / "store")
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / task.name).symlink_to(task)
    Task(tmp_path / "tasks" / task.name).check_audio()


def test_fifo_listed_is_an_error_within_seconds_not_a_hang(tmp_path: Path) -> None:
    task = write_task(tmp_path / "tasks")
    fifo = task / "16000" / "valid" / "1.wav"
    fifo.unlink()
    os.mkfifo(fifo)
    started = time.perf_counter()
    line = one_error(run(tmp_path / "tasks", tmp_path, timeout=60))
    assert f"{fifo}: is a FIFO (listed in valid.json); clips must be regular files" in line
    assert time.perf_counter() - started < 30  # the interpreter and imports, no model
    for read in (lambda: read_clip(fifo, RATE, RATE), lambda: _frames(fifo)):
        error = in_thread(read, fifo)
        assert isinstance(error, TaskError) and "is not a regular file" in str(error)


def test_missing_clips_are_one_error_with_count_before_any_model_starts(tmp_path: Path) -> None:
    task = write_task(tmp_path / "tasks")
    assert run(tmp_path / "tasks", tmp_path).returncode == 0  # every split now in the store
    for i in (0, 1, 3):
        (task / "16000" / "test" / f"{i}.wav").unlink()
    line = one_error(run(tmp_path / "tasks", tmp_path))  # the store has it all: checked anyway
    assert (
        f"{task / '16000' / 'test'}: 3 listed clips are missing (first: 0.wav, 1.wav, 3.wav)"
        in line
    )


def test_every_rate_folder_present_is_checked(tmp_path: Path) -> None:
    task = write_task(tmp_path)
    shutil.copytree(task / "16000", task / "48000")
    for i in range(4):
        (task / "48000" / "train" / f"{i}.wav").unlink()
    with pytest.raises(TaskError, match=r"48000/train: 4 listed clips are missing \(first: 0.wav, 1.wav, 2.wav, ...\)"):  # fmt: skip
        Task(task).check_audio()


def test_existence_check_scans_each_folder_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    task = Task(write_task(tmp_path, nfolds=3))
    scans, stats = [], []
    real_scandir, real_stat = os.scandir, os.stat
    monkeypatch.setattr(os, "scandir", lambda p: scans.append(p) or real_scandir(p))
    monkeypatch.setattr(os, "stat", lambda *a, **k: stats.append(a) or real_stat(*a, **k))
    task.check_audio()
    assert len(scans) == 3 and stats == []  # one scandir per (rate, fold), no stat per clip


# Finding 14: damaged clips, duplicate keys and shared clips are said.


def test_empty_wav_is_an_error_naming_clip_and_split(tmp_path: Path) -> None:
    task = write_task(tmp_path)
    clip = task / "16000" / "train" / "2.wav"
    sf.write(clip, np.zeros(0), RATE)
    message = r"train/2.wav: holds no audio \(0 frames\) \(listed in train.json\)"
    with pytest.raises(TaskError, match=message):
        read_clip(clip, RATE, RATE)
    with pytest.raises(TaskError, match=message):
        _frames(clip)  # variable-length tasks read headers first


def test_truncated_wav_is_an_error_not_a_shorter_clip(tmp_path: Path) -> None:
    task = write_task(tmp_path)
    clip = task / "16000" / "test" / "3.wav"
    data = clip.read_bytes()  # 8000 16-bit frames: 16000 bytes of audio
    clip.write_bytes(data[:-1001])
    message = (
        r"test/3.wav: truncated: its header promises 16000 bytes of audio, the file holds 14999 "
        r"\(listed in test.json\)"
    )
    with pytest.raises(TaskError, match=message):
        read_clip(clip, RATE, RATE)
    with pytest.raises(TaskError, match=message):
        _frames(clip)


def test_wav_with_chunks_before_its_data_is_read_whole(tmp_path: Path) -> None:
    clip = tmp_path / "16000" / "test" / "tagged.wav"
    clip.parent.mkdir(parents=True)
    with sf.SoundFile(clip, "w", RATE, 1, "PCM_16", format="WAV") as sound:
        sound.title = "a LIST chunk before the samples"
        sound.write(np.full(8000, 0.25))
    assert len(read_clip(clip, RATE, RATE)) == 8000


def test_duplicate_key_in_a_split_file_is_an_error(tmp_path: Path) -> None:
    task = write_task(tmp_path)
    (task / "valid.json").write_text(
        '{"0.wav": ["low"], "1.wav": ["high"], "2.wav": ["low"], "0.wav": ["high"]}'
    )
    with pytest.raises(
        TaskError,
        match=r"valid.json: field '0.wav': key appears twice \(JSON keeps only the last\)",
    ):
        Task(task)


def unique_names(task: Path) -> None:
    """Each split's clips named ``<split>-<i>.wav``, as hear-preprocess names are per task."""
    for split in ("train", "valid", "test"):
        labels = json.loads((task / f"{split}.json").read_text())
        for name in list(labels):
            (task / "16000" / split / name).rename(task / "16000" / split / f"{split}-{name}")
            labels[f"{split}-{name}"] = labels.pop(name)
        (task / f"{split}.json").write_text(json.dumps(labels))


def test_clip_in_train_and_test_is_a_warning_printed_once(tmp_path: Path) -> None:
    task = write_task(tmp_path / "tasks")
    unique_names(task)
    shutil.copy(task / "16000" / "test" / "test-1.wav", task / "16000" / "train")
    train = json.loads((task / "train.json").read_text())
    (task / "train.json").write_text(json.dumps({**train, "test-1.wav": ["high"]}))
    result = run(tmp_path / "tasks", tmp_path)
    assert result.returncode == 0, result.stderr
    warnings = [ln for ln in result.stderr.splitlines() if ln.startswith("warning:")]
    assert warnings == [
        f"warning: {task}: 1 clip(s) are listed in more than one split, so the probe may be "
        "scored on clips it was trained on (first: test-1.wav in train, test)"
    ]
    assert result.stderr.index("warning:") < result.stderr.index("starting")
    (task / "train.json").write_text(json.dumps(train))
    assert Task(task).warnings == []  # no clip shared, no warning


def test_clips_shared_across_folds_are_counted(tmp_path: Path) -> None:
    [warning] = Task(write_task(tmp_path, nfolds=3)).warnings
    assert "4 clip(s) are listed in more than one split" in warning
    assert (
        "(first: 0.wav in fold00, fold01, fold02; 1.wav in fold00, fold01, fold02; 2.wav" in warning
    )
