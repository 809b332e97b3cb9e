"""mini_spoken_digits: speaker-disjoint splits, balanced digits, distinct voices (the checks
every mini task passes are in test_mini_tasks.py)."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hear_mini import spoken_digits as sd
from taskfolders import metadata, split_labels, wavs

SPLITS = ("train", "valid", "test")
RATE = 16000
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="no espeak-ng")


@pytest.fixture
def task(mini_task: Callable[[str], Path]) -> Path:
    """The smoke-scale folder conftest generates once per session (skipped without espeak)."""
    return mini_task("spoken_digits")


def test_generator_names_espeak_and_its_version(task: Path) -> None:
    generator = metadata(task)["generator"]
    assert generator["tool"] == "espeak-ng"
    assert generator["espeak_ng_version"][0].isdigit()  # "1.51", not a local path


def test_voices_are_disjoint_across_splits(task: Path) -> None:
    voices = metadata(task)["generator"]["voices"]
    assert [len(voices[s]) for s in SPLITS] == [12, 4, 4]
    # The speaker is the variant: "en+m1" and "en-us+m1" would be the same person.
    speakers = {s: {v.split("+")[1] for v in voices[s]} for s in SPLITS}
    assert [len(speakers[s]) for s in SPLITS] == [12, 4, 4]
    assert not speakers["train"] & speakers["valid"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["valid"] & speakers["test"]
    for split in SPLITS:  # and the files really are by that split's voices
        used = {"{}+{}".format(*w.name.split("_")[:2]) for w in wavs(task, split)}
        assert used == set(voices[split])


def test_full_scale_plan_is_larger_and_still_disjoint() -> None:
    full, smoke = sd.settings("full"), sd.settings("smoke")
    assert sum(map(len, full.values())) >= 3 * sum(map(len, smoke.values()))
    speakers = {s: {x.variant for x in full[s]} for s in SPLITS}
    assert sum(map(len, speakers.values())) == len(set().union(*speakers.values()))
    for split in SPLITS:  # the smoke scale is a subset of the full one
        assert set(smoke[split]) <= set(full[split])


def test_labels_cover_all_digits_in_every_split(task: Path) -> None:
    for split in SPLITS:
        labels = [label for value in split_labels(task, split).values() for label in value]
        assert set(labels) <= set(sd.DIGITS)
        assert sorted(set(labels)) == sorted(sd.DIGITS), split
        assert len(set(Counter(labels).values())) == 1  # balanced: every voice says each digit


def test_clips_are_speech_starting_near_zero(task: Path) -> None:
    for split in SPLITS:
        for wav in wavs(task, split):
            audio, _ = sf.read(wav, dtype="float32")
            assert np.sqrt(np.mean(audio**2)) > 0.02, wav.name
            assert abs(float(np.abs(audio).max()) - 0.9) < 1e-3, wav.name
            onset = int(np.argmax(np.abs(audio) > 0.01)) / RATE  # leading silence trimmed
            assert onset < 0.03, wav.name
            assert float(np.abs(audio[-160:]).max()) < 0.05, wav.name  # not cut mid-word


def test_digits_and_voices_sound_different(task: Path) -> None:
    folder = task / str(RATE) / "test"
    first = wavs(task, "test")[0].name.rsplit("_", 1)[0]
    zero, one = (sf.read(folder / f"{first}_{d}.wav")[0] for d in ("zero", "one"))
    assert np.abs(zero - one).mean() > 0.01
    for digit in sd.DIGITS:  # 20 voice settings, 20 different recordings
        clips = [w.read_bytes() for s in SPLITS for w in wavs(task, s) if f"_{digit}." in w.name]
        assert len(set(clips)) == len(clips) == 20, digit


@needs_espeak
def test_every_variant_is_a_distinct_speaker() -> None:
    """An unknown variant silently falls back to the default voice: catch that, and
    variants that render identically (as caleb, klatt and klatt6 do)."""
    voices = {s.voice for split in sd.settings("full").values() for s in split}
    voices.add("en")  # the fallback itself

    def speak(voice: str) -> bytes:
        command = ["espeak-ng", "-v", voice, "-s", "175", "-p", "50", "--stdout", "seven"]
        return subprocess.run(command, capture_output=True, check=True).stdout

    with ThreadPoolExecutor(4) as pool:
        audio = dict(zip(voices, pool.map(speak, sorted(voices)), strict=True))
    assert len(set(audio.values())) == len(voices) == 41
