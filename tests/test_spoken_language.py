"""mini_spoken_language: layout, speaker-disjoint splits, every language everywhere, reuse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf
from hear_mini import spoken_language as sl

from hear_runner.tasks.folder import Task


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sl.prepare(tmp_path_factory.mktemp("tasks"), "smoke", progress=False)


def test_the_runner_reads_it_with_every_language_in_every_split(folder: Path) -> None:
    task = Task(folder)
    assert task.vocabulary == list(sl.LANGUAGES)
    for split in task.splits:
        assert {c.labels[0] for c in task.clips(split)} == set(sl.LANGUAGES)


def test_clips_are_two_seconds_and_audible(folder: Path) -> None:
    for path in sorted((folder / "16000" / "test").glob("*.wav"))[:10]:
        audio, rate = sf.read(path)
        assert rate == 16000 and len(audio) == 32000 and abs(audio).max() > 0.5


def test_speakers_are_disjoint_between_splits(folder: Path) -> None:
    speakers = {
        s: {f.split("_")[1] for f in json.loads((folder / f"{s}.json").read_text())}
        for s in ("train", "valid", "test")
    }
    assert not (speakers["train"] & speakers["test"]) and not (speakers["valid"] & speakers["test"])
    assert not (speakers["train"] & speakers["valid"])


def test_a_complete_folder_is_reused(folder: Path) -> None:
    stamp = (folder / "task_metadata.json").stat().st_mtime_ns
    assert sl.prepare(folder.parent, "smoke", progress=False) == folder
    assert (folder / "task_metadata.json").stat().st_mtime_ns == stamp


def test_phrases_are_deterministic() -> None:
    assert sl.plan("smoke") == sl.plan("smoke")
    assert len(sl.plan("full")["train"]) == 4 * len(sl.plan("smoke")["train"])
