"""Reading hear-preprocess task folders, and the one-line errors for broken ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from taskfolders import write_task

from hear_runner.errors import TaskError
from hear_runner.tasks.audio import read_clip
from hear_runner.tasks.folder import Task, find_tasks


def test_reads_a_task_folder(tmp_path: Path) -> None:
    task = Task(write_task(tmp_path))
    assert task.name == "toy-1.0.0-full" and task.vocabulary == ["low", "high"]
    assert task.metadata.primary_metric == "top1_acc"
    assert [c.file for c in task.clips("train")] == ["0.wav", "1.wav", "2.wav", "3.wav"]
    np.testing.assert_array_equal(task.targets("test")[:2], [[1, 0], [0, 1]])
    assert task.sample_rates == [16000] and task.source_rate(44100) == 16000


def test_numeric_labels_are_read_as_strings(tmp_path: Path) -> None:
    path = write_task(tmp_path)
    (path / "labelvocabulary.csv").write_text("idx,label\n0,60\n1,61\n")
    for split in ("train", "valid", "test"):
        (path / f"{split}.json").write_text(
            json.dumps({f"{i}.wav": [60 + i % 2] for i in range(4)})
        )
    assert Task(path).clips("train")[1].labels == ("61",)


def test_audio_is_resampled_to_the_model_rate(tmp_path: Path) -> None:
    task = Task(write_task(tmp_path))
    audio = read_clip(task.audio_path("train", "0.wav", 16000), 44100, 16000)
    assert audio.dtype == np.float32 and len(audio) == 22050
    spectrum = np.abs(np.fft.rfft(audio))
    assert np.argmax(spectrum) * 44100 / len(audio) == pytest.approx(220, abs=3)


def test_finds_tasks_by_folder_name(tmp_path: Path) -> None:
    write_task(tmp_path, "a-1-full")
    write_task(tmp_path, "b-1-full")
    assert [t.name for t in find_tasks(tmp_path)] == ["a-1-full", "b-1-full"]
    assert [t.name for t in find_tasks(tmp_path, ["b-1-full"])] == ["b-1-full"]
    with pytest.raises(TaskError, match="no task named c; found: a-1-full, b-1-full"):
        find_tasks(tmp_path, ["c"])


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda p: (p / "task_metadata.json").write_text("{not json"), r"task_metadata.json: not valid JSON \(line 1"),
        (lambda p: _edit_metadata(p, embedding_type="frames"), r"task_metadata.json: field 'embedding_type': Input should be 'scene' or 'event'"),
        (lambda p: _edit_metadata(p, task_name=None), r"task_metadata.json: field 'task_name'"),
        (lambda p: _edit_metadata(p, evaluation=[]), r"task_metadata.json: field 'evaluation'"),
        (lambda p: (p / "task_metadata.json").unlink(), r"no task folders"),
        (lambda p: (p / "valid.json").unlink(), r"valid.json: file is missing"),
        (lambda p: (p / "labelvocabulary.csv").write_text("idx,label\n0,low\n2,high\n"), r"labelvocabulary.csv: idx must run 0..n-1"),
        (lambda p: (p / "test.json").write_text('{"0.wav": ["middle"]}'), r"test.json: field '0.wav': label 'middle' is not in labelvocabulary.csv"),
        (lambda p: (p / "test.json").write_text('{"0.wav": "low"}'), r"test.json: field '0.wav': expected a list of labels"),
    ],
)  # fmt: skip
def test_broken_task_folder_errors_name_file_and_field(tmp_path: Path, breakage, message) -> None:
    path = write_task(tmp_path)
    breakage(path)
    with pytest.raises(TaskError, match=message) as info:
        find_tasks(tmp_path)
    assert "\n" not in str(info.value)


def test_missing_audio_and_wrong_rate_name_the_file(tmp_path: Path) -> None:
    task = Task(write_task(tmp_path))
    missing = task.audio_path("train", "9.wav", 16000)
    with pytest.raises(TaskError, match=r"train/9.wav: audio file is missing"):
        read_clip(missing, 16000, 16000)
    wrong = task.audio_path("train", "0.wav", 16000)
    sf.write(wrong, np.zeros(8000), 8000)
    with pytest.raises(
        TaskError, match=r"train/0.wav: sample rate is 8000 Hz but its folder is 16000"
    ):
        read_clip(wrong, 16000, 16000)


def _edit_metadata(path: Path, **changes: object) -> None:
    metadata = json.loads((path / "task_metadata.json").read_text())
    metadata.update(changes)
    (path / "task_metadata.json").write_text(json.dumps(metadata))


@pytest.mark.parametrize("root", ["tasks", "hear-2021.0.6/tasks"])
def test_finds_tasks_under_release_tarball_roots(tmp_path: Path, root: str) -> None:
    write_task(tmp_path / root, "a-1-full")
    assert [t.name for t in find_tasks(tmp_path)] == ["a-1-full"]


def test_kfold_arrangement_follows_heareval(tmp_path: Path) -> None:
    task = Task(write_task(tmp_path, nfolds=4))
    assert task.splits == ("fold00", "fold01", "fold02", "fold03")
    arrangement = [(f.train, f.valid, f.test) for f in task.folds]
    assert arrangement[0] == (("fold02", "fold03"), "fold01", "fold00")
    assert arrangement[3] == (("fold01", "fold02"), "fold00", "fold03")


def test_kfold_with_too_few_folds_names_the_field(tmp_path: Path) -> None:
    path = write_task(tmp_path, nfolds=4)
    _edit_metadata(path, nfolds=None)
    for i in (2, 3):
        (path / f"fold{i:02d}.json").unlink()
    with pytest.raises(TaskError, match=r"field 'nfolds': a k-fold task needs at least 3 folds"):
        Task(path)


def _make_event_task(path: Path, events: dict) -> None:
    _edit_metadata(path, embedding_type="event", prediction_type="multilabel")
    for split in ("train", "valid", "test"):
        (path / f"{split}.json").write_text(json.dumps(events))


def test_event_labels_are_read_in_milliseconds(tmp_path: Path) -> None:
    path = write_task(tmp_path)
    _make_event_task(
        path,
        {
            "0.wav": [
                {"label": "low", "start": 10, "end": 250.5},
                {"label": "high", "start": 300, "end": 400},
            ],
            "1.wav": [],
        },
    )
    task = Task(path)
    clip = task.clips("test")[0]
    assert clip.labels == ("high", "low") and clip.events[0].end == 250.5
    assert task.clips("test")[1].events == ()


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (
            {"label": "low", "start": 300, "end": 100},
            r"train.json: field '0.wav\[0\]': event times out of order",
        ),
        (
            {"label": "low", "start": 0},
            r"field '0.wav\[0\]': an event needs 'label', 'start' and 'end'",
        ),
        (
            {"label": "mid", "start": 0, "end": 1},
            r"field '0.wav': label 'mid' is not in labelvocabulary.csv",
        ),
        ({"label": "low", "start": "x", "end": 1}, r"must be numbers"),
    ],
)
def test_malformed_events_name_file_and_field(tmp_path: Path, event: dict, message: str) -> None:
    path = write_task(tmp_path)
    _make_event_task(path, {"0.wav": [event]})
    with pytest.raises(TaskError, match=message):
        Task(path)


def test_multilabel_clips_may_have_no_label(tmp_path: Path) -> None:
    path = write_task(tmp_path)
    _edit_metadata(path, prediction_type="multilabel")
    (path / "test.json").write_text(json.dumps({"0.wav": [], "1.wav": ["low", "high"]}))
    targets = Task(path).targets("test")
    assert targets.tolist() == [[0, 0], [1, 1]]
