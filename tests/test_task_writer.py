"""hear_runner.api.write_task_folder: real clips (the freedesktop sound theme) and a labels
CSV become a task folder the runner reads; bad tables and splits are one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf
from userclips import VOICES, labels_csv

from hear_runner.api import LabelledClip, TaskError, read_labels_csv, write_task_folder
from hear_runner.tasks.folder import Task


def test_clips_and_labels_become_a_task_the_runner_reads(tmp_path: Path) -> None:
    table = labels_csv(tmp_path / "mine")
    folder = write_task_folder(tmp_path / "tasks" / "mine-1.0-full", read_labels_csv(table),
                               task_name="mine", sample_duration=1.5)  # fmt: skip
    task = Task(folder)
    task.check_audio()
    assert task.metadata.task_name == "mine" and task.metadata.split_mode == "trainvaltest"
    assert task.metadata.evaluation == ["top1_acc"] and task.sample_rates == [16000, 48000]
    assert task.vocabulary == ["chime", "voice"]
    assert [len(task.clips(s)) for s in task.splits] == [4, 4, 4]
    first = task.clips("train")[0]
    audio, rate = sf.read(task.audio_path("train", first.file, 48000))
    assert rate == 48000 and audio.ndim == 1 and len(audio) == 72000  # mono, 1.5 s
    assert abs(audio).max() > 0.01  # real sound, not silence
    marker = (folder / ".complete").read_text()
    again = write_task_folder(folder, read_labels_csv(table), task_name="mine", sample_duration=1.5)
    assert again == folder and (folder / ".complete").read_text() == marker


def test_fold_splits_make_a_presplit_kfold_task(tmp_path: Path) -> None:
    table = labels_csv(tmp_path / "mine", ("fold00", "fold01", "fold02"))
    task = Task(write_task_folder(tmp_path / "t" / "k-1.0-full", read_labels_csv(table),
                                  task_name="k", sample_rates=(16000,)))  # fmt: skip
    assert task.metadata.split_mode == "presplit_kfold" and task.metadata.nfolds == 3
    assert json.loads((task.path / "task_metadata.json").read_text())["splits"] == [
        "fold00", "fold01", "fold02"
    ]  # fmt: skip


def test_a_table_row_missing_a_column_names_the_file_and_line(tmp_path: Path) -> None:
    table = tmp_path / "labels.csv"
    table.write_text("file,label,split\na.wav,dog,train\nb.wav,,valid\n")
    with pytest.raises(TaskError, match=r"labels.csv: field 'label': line 3: empty or missing column$"):
        read_labels_csv(table)


def test_splits_that_are_neither_trainvaltest_nor_folds_are_refused(tmp_path: Path) -> None:
    labels_csv(tmp_path / "mine")  # skips without the sound theme
    clips = [LabelledClip(audio=VOICES[0], labels=("v",), split="train"),
             LabelledClip(audio=VOICES[1], labels=("v",), split="holdout")]  # fmt: skip
    with pytest.raises(TaskError, match=r"splits must be train, valid and test.*holdout, train"):
        write_task_folder(tmp_path / "x-1.0-full", clips, task_name="x")
    assert not (tmp_path / "x-1.0-full").exists()


def test_two_sources_of_one_name_are_refused(tmp_path: Path) -> None:
    labels_csv(tmp_path / "mine")  # skips without the sound theme
    other = tmp_path / "other"
    other.mkdir()
    (other / VOICES[0].name).symlink_to(VOICES[1])
    clips = [LabelledClip(audio=VOICES[i], labels=("v",), split=s) for i, s in ((0, "train"), (2, "valid"))]  # fmt: skip
    twin = LabelledClip(audio=other / VOICES[0].name, labels=("v",), split="test")
    with pytest.raises(TaskError, match=rf"clips {VOICES[0]} and {twin.audio} would both be"):
        write_task_folder(tmp_path / "x-1.0-full", [*clips, twin], task_name="x")
    again = clips[0].model_copy(update={"split": "test"})
    with pytest.raises(TaskError, match=rf"clip {VOICES[0]} is listed twice$"):
        write_task_folder(tmp_path / "x-1.0-full", [*clips, again], task_name="x")
