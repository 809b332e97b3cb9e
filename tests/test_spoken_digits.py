"""mini_spoken_digits: layout, audio format, speaker-disjoint splits, reuse, determinism."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hear_mini import spoken_digits as sd
from taskfolders import (
    assert_reused_untouched,
    assert_stale_folder_rebuilt,
    metadata,
    split_labels,
    wavs,
)

SPLITS = ("train", "valid", "test")
RATE = 16000
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="no espeak-ng")


@pytest.fixture
def task(request: pytest.FixtureRequest) -> Path:
    """The smoke-scale folder conftest generates once per session (skipped without espeak)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("no espeak-ng")
    return request.getfixturevalue("digits_task")


def test_layout_andmetadata(task: Path) -> None:
    assert task.name == "mini_spoken_digits-1.0.0-smoke" == sd.folder_name("smoke")
    assert sorted(p.name for p in task.iterdir()) == sorted(
        [".complete", "16000", "labelvocabulary.csv", "task_metadata.json"]
        + [f"{s}.json" for s in SPLITS]
    )
    assert sorted(p.name for p in (task / "16000").iterdir()) == sorted(SPLITS)
    meta = metadata(task)
    assert {k: v for k, v in meta.items() if k != "generator"} == {
        "task_name": "mini_spoken_digits",
        "version": "1.0.0",
        "embedding_type": "scene",
        "prediction_type": "multiclass",
        "split_mode": "trainvaltest",
        "splits": ["train", "valid", "test"],
        "sample_duration": 1.0,
        "evaluation": ["top1_acc", "mAP"],
        "mode": "smoke",
        "sample_rates": [16000],
    }
    assert meta["generator"]["tool"] == "espeak-ng"
    assert meta["generator"]["espeak_ng_version"][0].isdigit()  # "1.51", not a local path
    rows = list(csv.reader((task / "labelvocabulary.csv").open()))
    assert rows == [["idx", "label"]] + [[str(i), d] for i, d in enumerate(sd.DIGITS)]


def test_runner_reads_the_folder(task: Path) -> None:
    from hear_runner.tasks.folder import Task

    read = Task(task)
    assert read.sample_rates == [RATE]
    assert read.vocabulary == list(sd.DIGITS)
    assert [len(read.clips(s)) for s in SPLITS] == [120, 40, 40]


@pytest.mark.parametrize("split", SPLITS)
def test_split_json_keys_match_thewavs(task: Path, split: str) -> None:
    text = (task / f"{split}.json").read_text()
    labels = json.loads(text)
    assert list(labels) == sorted(labels)
    assert set(labels) == {p.name for p in wavs(task, split)}
    for name, value in labels.items():
        assert isinstance(value, list) and len(value) == 1
        assert name.endswith(f"_{value[0]}.wav")  # the file name says which digit it is
        assert all(c.isalnum() or c in "._-" for c in name)


def test_every_wav_is_mono_16bit_one_second(task: Path) -> None:
    files = [w for s in SPLITS for w in wavs(task, s)]
    assert len(files) == 200
    for wav in files:
        info = sf.info(wav)
        assert (info.format, info.subtype, info.channels) == ("WAV", "PCM_16", 1), wav.name
        assert (info.samplerate, info.frames) == (RATE, RATE), wav.name


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


def test_second_prepare_reuses_the_folder_without_espeak(
    task: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # espeak-ng could not run even if asked to
    assert_reused_untouched(lambda: sd.prepare(task.parent, "smoke", progress=False), task)


@needs_espeak
def test_rebuild_replaces_a_stale_folder_byte_identically(task: Path, tmp_path: Path) -> None:
    assert_stale_folder_rebuilt(sd, task, tmp_path)


def test_missing_espeak_is_an_actionable_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match=r"^espeak-ng not found: install it with 'apt-get"):
        sd.prepare(tmp_path / "tasks", "smoke", progress=False)
    assert not any((tmp_path / "tasks").iterdir())  # nothing half-written


def test_unknown_scale_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="smoke, full"):
        sd.prepare(tmp_path, "huge", progress=False)
