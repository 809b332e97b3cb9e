"""mini_spoken_language: speaker-disjoint splits, every language everywhere (the checks every
mini task passes are in test_mini_tasks.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import soundfile as sf
from hear_mini import spoken_language as sl

from hear_runner.tasks.folder import Task


@pytest.fixture
def folder(mini_task: Callable[[str], Path]) -> Path:
    return mini_task("spoken_language")


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


def test_phrases_are_deterministic() -> None:
    assert sl.plan("smoke") == sl.plan("smoke")
    assert len(sl.plan("full")["train"]) == 4 * len(sl.plan("smoke")["train"])
