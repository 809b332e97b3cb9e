"""mini_pitch: notes at their labelled pitch, chroma-ordered vocabulary, folds disjoint by
instrument, the MIDI file (the checks every mini task passes are in test_mini_tasks.py)."""

from __future__ import annotations

import csv
import struct
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hear_mini import pitch as pt
from taskfolders import metadata, needs_mini_material, split_labels, wavs

FOLDS = tuple(f"fold{i:02d}" for i in range(5))
RATE = 16000


needs_material = needs_mini_material("pitch")


@pytest.fixture
def task(mini_task: Callable[[str], Path]) -> Path:
    """The smoke-scale folder (tests/test_mini_tasks.py checks its layout and format)."""
    return mini_task("pitch")


def _yin(audio: np.ndarray, rate: int, fmin: float = 50.0, fmax: float = 1500.0) -> float:
    """The fundamental of 50-500 ms of a clip, as a fractional MIDI pitch (YIN: the first
    dip of the cumulative-mean-normalized difference below 0.15, parabolically refined)."""
    x = np.asarray(audio[int(0.05 * rate) : int(0.5 * rate)], dtype=np.float64)
    max_lag = int(rate / fmin) + 2
    w = len(x) - max_lag
    n = 1 << int(np.ceil(np.log2(len(x) + w)))
    corr = np.fft.irfft(np.conj(np.fft.rfft(x[:w], n)) * np.fft.rfft(x, n), n)[:max_lag]
    energy = np.concatenate([[0.0], np.cumsum(x**2)])
    lags = np.arange(max_lag)
    diff = energy[w] + energy[lags + w] - energy[lags] - 2 * corr
    cmnd = np.ones(max_lag)
    cmnd[1:] = diff[1:] * lags[1:] / np.maximum(np.cumsum(diff[1:]), 1e-20)
    low = int(rate / fmax)
    dips = np.flatnonzero(cmnd[low:] < 0.15)
    lag = int(dips[0]) + low if len(dips) else int(np.argmin(cmnd[low:])) + low
    while lag + 1 < max_lag and cmnd[lag + 1] < cmnd[lag]:
        lag += 1
    a, b, c = cmnd[lag - 1], cmnd[lag], cmnd[lag + 1]
    curve = a - 2 * b + c
    period = lag + 0.5 * (a - c) / curve if curve > 0 else lag
    return 69 + 12 * float(np.log2(rate / period / 440))


def test_generator_names_versions_and_fold_rule(task: Path) -> None:
    generator = metadata(task)["generator"]
    assert generator["fluidsynth_version"][0].isdigit()  # "2.3.1", not a banner or a path
    assert all(v and v[0].isdigit() for v in generator["packages"].values())
    assert generator["folds_by"].startswith("instrument")


def test_vocabulary_indices_are_chromas(task: Path) -> None:
    """heareval's chroma_acc compares vocabulary indices mod 12: index 0 must be a C and
    the labels must run by semitone."""
    rows = list(csv.reader((task / "labelvocabulary.csv").open()))
    assert rows == [["idx", "label"]] + [[str(i), str(48 + i)] for i in range(36)]
    for idx, label in rows[1:]:
        assert int(idx) % 12 == int(label) % 12


def test_runner_reads_one_of_36_notes_per_clip(task: Path) -> None:
    from hear_runner.tasks.folder import Task

    read = Task(task)
    assert read.vocabulary == [str(p) for p in range(48, 84)]
    targets = read.targets("fold00")
    assert targets.shape == (72, 36)
    assert set(targets.sum(axis=1)) == {1.0}


def test_every_pitch_in_every_fold(task: Path) -> None:
    """Each instrument plays each pitch once: every class in every fold, balanced."""
    for fold in FOLDS:
        counts = Counter(label for value in split_labels(task, fold).values() for label in value)
        assert counts == dict.fromkeys(pt.LABELS, 2), fold  # 2 soundfonts x 1 velocity


def test_notes_are_at_their_labelled_pitch(task: Path) -> None:
    """Every clip's fundamental is within half a semitone of its label: no octave errors
    and no detuned programs (checked on all clips of all instruments)."""
    errors = {}
    for fold in FOLDS:
        for name, (label,) in split_labels(task, fold).items():
            audio, _ = sf.read(task / str(RATE) / fold / name)
            error = _yin(audio, RATE) - int(label)
            if abs(error) > 0.5:
                errors[name] = round(error, 2)
    assert not errors


def test_clips_start_at_the_note_and_are_normalized(task: Path) -> None:
    for fold in FOLDS:
        for wav in wavs(task, fold):
            audio, _ = sf.read(wav, dtype="float32")
            assert abs(float(np.abs(audio).max()) - 0.9) < 1e-3, wav.name
            onset = int(np.argmax(np.abs(audio) > 0.02)) / RATE
            assert onset < 0.05, wav.name
            # Nothing left of the previous note before this one starts, and faded out.
            assert float(np.abs(audio[:16]).max()) < 0.01, wav.name
            assert abs(float(audio[-1])) < 1e-3, wav.name
            assert np.sqrt(np.mean(audio[: RATE // 2] ** 2)) > 0.02, wav.name


def test_folds_are_disjoint_by_instrument(task: Path) -> None:
    folds = metadata(task)["generator"]["folds"]
    programs = {f: {i["program"] for i in folds[f]} for f in FOLDS}
    assert all(len(p) == 1 for p in programs.values())
    assert len(set().union(*programs.values())) == 5  # no program in two folds
    for fold in FOLDS:
        assert {i["soundfont"] for i in folds[fold]} == set(pt.SOUNDFONTS)
        used = {tuple(w.name.split("_")[:2]) for w in wavs(task, fold)}
        assert used == {(i["soundfont"], f"p{i['program']:03d}") for i in folds[fold]}


def test_full_scale_plan_is_larger_and_still_disjoint() -> None:
    full, smoke = pt.plan("full"), pt.plan("smoke")
    programs = {f: {i.program for i in full[f]} for f in FOLDS}
    assert [len(p) for p in programs.values()] == [4] * 5
    assert len(set().union(*programs.values())) == 20
    for fold in FOLDS:  # the smoke scale is a subset of the full one
        assert set(smoke[fold]) <= set(full[fold])
    clips = sum(map(len, full.values())) * len(pt.VELOCITIES["full"]) * len(pt.PITCHES)
    assert clips == 2880


def test_midi_file_is_format_0_with_the_notes_in_sequence() -> None:
    notes = [(48, 100), (83, 70)]
    data = pt.midi_file(24, notes)
    assert data[:4] == b"MThd"
    assert struct.unpack(">IHHH", data[4:14]) == (6, 0, 1, 1000)  # format 0, 1 track, ms
    assert data[14:18] == b"MTrk"
    assert struct.unpack(">I", data[18:22])[0] == len(data) - 22
    events, now, i, track = [], 0, 0, data[22:]
    while i < len(track):
        delta = 0
        while True:
            delta = (delta << 7) | (track[i] & 0x7F)
            i += 1
            if track[i - 1] < 0x80:
                break
        now += delta
        size = 3 + track[i + 2] if track[i] == 0xFF else 2 if track[i] >> 4 == 0xC else 3
        events.append((now, track[i : i + size]))
        i += size
    note_ons = [(t, e[1], e[2]) for t, e in events if e[0] == 0x90]
    assert note_ons == [(100, 48, 100), (1350, 83, 70)]
    assert (0, bytes([0xC0, 24])) in events
    assert events[-1] == (2500, b"\xff\x2f\x00")  # ends after the last note's slot


@needs_material
def test_an_unreadable_soundfont_is_an_error_not_another_soundfont(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fluidsynth exits 0 where it cannot read a soundfont, playing its default one."""
    for _, path in pt.SOUNDFONTS.values():
        (tmp_path / "sounds" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "sounds" / path).write_bytes(b"not a soundfont")
    monkeypatch.setattr(pt, "SOUNDFONTS_DIR", tmp_path / "sounds")
    with pytest.raises(RuntimeError, match=r"^fluidsynth failed on .*not a SoundFont"):
        pt.prepare(tmp_path / "tasks", "smoke", progress=False)
    assert not any((tmp_path / "tasks").iterdir())
