"""What every mini task folder must be, checked for all six: hear-preprocess layout and
metadata, split files matching the audio, the audio format, the runner reading it, reuse
of a complete folder without the material, byte-identical rebuilds, and one actionable
line where the material or the scale is wrong. Each task's own checks stay in its file."""

from __future__ import annotations

import csv
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
from hear_mini import sound_themes as st
from taskfolders import (
    assert_reused_untouched,
    assert_stale_folder_rebuilt,
    metadata,
    split_labels,
    wavs,
)

from hear_runner.tasks.folder import Task

RATE = 16000
FOLDS = tuple(f"fold{i:02d}" for i in range(5))
TRAINVALTEST = ("train", "valid", "test")


def _no_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no tool could run even if asked to


def _no_themes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(st, "SOUNDS_DIR", tmp_path)  # no recording could be read


def _no_kits(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(importlib.import_module("hear_mini.drums"), "KITS_DIR", tmp_path)


def _no_fluidsynth(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _no_path(monkeypatch, tmp_path)
    monkeypatch.setattr(importlib.import_module("hear_mini.pitch"), "SOUNDFONTS_DIR", tmp_path)


@dataclass(frozen=True)
class Case:
    """One mini task as its smoke-scale folder must look (stated here, not read from the code)."""

    task: str
    vocabulary: str  # the module's constant listing the labels in vocabulary order
    splits: tuple[str, ...]
    seconds: int
    clips: tuple[int, ...] | None  # per split; None where it depends on the installed kits
    metadata: dict[str, Any]  # task_metadata.json but its generator
    without_material: Callable[[pytest.MonkeyPatch, Path], None] = field(repr=False)
    label_in_file_name: bool = True  # multiclass: a clip's name ends with _<its label>.wav

    @property
    def module(self) -> Any:
        return importlib.import_module(f"hear_mini.{self.task}")


def _meta(name: str, embedding: str, prediction: str, split_mode: str, splits: tuple[str, ...],
          seconds: float, evaluation: list[str], **rest: Any) -> dict[str, Any]:  # fmt: skip
    kfold = {"nfolds": 5} if split_mode != "trainvaltest" else {}
    return {
        "task_name": name, "version": "1.0.0", "embedding_type": embedding,
        "prediction_type": prediction, "split_mode": split_mode, "splits": list(splits),
        **kfold, "sample_duration": seconds, "evaluation": evaluation, **rest,
        "mode": "smoke", "sample_rates": [16000],
    }  # fmt: skip


CASES = [
    Case("spoken_digits", "DIGITS", TRAINVALTEST, 1, (120, 40, 40),
         _meta("mini_spoken_digits", "scene", "multiclass", "trainvaltest", TRAINVALTEST, 1.0,
               ["top1_acc", "mAP"]), _no_path),
    Case("spoken_language", "LANGUAGES", TRAINVALTEST, 2, (120, 40, 40),
         _meta("mini_spoken_language", "scene", "multiclass", "trainvaltest", TRAINVALTEST, 2.0,
               ["top1_acc", "mAP"]), _no_path, label_in_file_name=False),
    Case("sound_events", "CLASSES", TRAINVALTEST, 4, (120, 40, 40),
         _meta("mini_sound_events", "event", "multilabel", "trainvaltest", TRAINVALTEST, 4.0,
               ["event_onset_200ms_fms", "segment_1s_er"], evaluation_params={
                   "event_postprocessing_grid": {
                       "median_filter_ms": [150, 250], "min_duration": [60, 125]}}),
         _no_themes),
    Case("sound_mix", "CLASSES", FOLDS, 2, (40,) * 5,
         _meta("mini_sound_mix", "scene", "multilabel", "new_split_kfold", FOLDS, 2.0,
               ["mAP", "d_prime", "aucroc"]), _no_themes),
    Case("pitch", "LABELS", FOLDS, 1, (72,) * 5,
         _meta("mini_pitch", "scene", "multiclass", "presplit_kfold", FOLDS, 1.0,
               ["pitch_acc", "chroma_acc"]), _no_fluidsynth),
    Case("drums", "CLASSES", FOLDS, 1, None,
         _meta("mini_drums", "scene", "multiclass", "presplit_kfold", FOLDS, 1.0,
               ["top1_acc", "mAP"]), _no_kits),
]  # fmt: skip


@pytest.fixture(params=CASES, ids=[c.task for c in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def task(case: Case, mini_task: Callable[[str], Path]) -> Path:
    return mini_task(case.task)


def test_layout_and_metadata(case: Case, task: Path) -> None:
    assert task.name == f"mini_{case.task}-1.0.0-smoke" == case.module.folder_name("smoke")
    assert sorted(p.name for p in task.iterdir()) == sorted(
        [".complete", "16000", "labelvocabulary.csv", "task_metadata.json"]
        + [f"{s}.json" for s in case.splits]
    )
    assert sorted(p.name for p in (task / "16000").iterdir()) == sorted(case.splits)
    meta = metadata(task)
    assert {k: v for k, v in meta.items() if k != "generator"} == case.metadata
    assert "/tmp" not in json.dumps(meta)  # no machine-specific paths
    rows = list(csv.reader((task / "labelvocabulary.csv").open()))
    labels = getattr(case.module, case.vocabulary)
    assert rows == [["idx", "label"]] + [[str(i), c] for i, c in enumerate(labels)]


def test_split_json_keys_match_the_wavs(case: Case, task: Path) -> None:
    for split in case.splits:
        labels = split_labels(task, split)
        assert list(labels) == sorted(labels), split
        assert set(labels) == {p.name for p in wavs(task, split)}, split
        assert all(c.isalnum() or c in "._-" for name in labels for c in name), split


MULTICLASS = [c for c in CASES if c.metadata["prediction_type"] == "multiclass"]


@pytest.mark.parametrize("case", MULTICLASS, ids=[c.task for c in MULTICLASS])
def test_each_multiclass_clip_has_one_label_from_the_vocabulary(case: Case, task: Path) -> None:
    vocabulary = getattr(case.module, case.vocabulary)
    for split in case.splits:
        for name, value in split_labels(task, split).items():
            assert isinstance(value, list) and len(value) == 1 and value[0] in vocabulary, name
            if case.label_in_file_name:
                assert name.endswith(f"_{value[0]}.wav"), name  # the name says which class


def test_every_wav_is_mono_16bit_and_as_long_as_the_metadata_says(case: Case, task: Path) -> None:
    files = [w for s in case.splits for w in wavs(task, s)]
    if case.clips is not None:
        assert len(files) == sum(case.clips)
    for wav in files:
        info = sf.info(wav)
        assert (info.format, info.subtype, info.channels) == ("WAV", "PCM_16", 1), wav.name
        assert (info.samplerate, info.frames) == (RATE, case.seconds * RATE), wav.name


def test_runner_reads_the_folder(case: Case, task: Path) -> None:
    read = Task(task)
    assert read.sample_rates == [RATE]
    assert read.vocabulary == list(getattr(case.module, case.vocabulary))
    assert read.splits == case.splits
    if case.splits == FOLDS:
        assert [f.test for f in read.folds] == list(FOLDS)
    if case.clips is not None:
        assert tuple(len(read.clips(s)) for s in case.splits) == case.clips


def test_second_prepare_reuses_the_folder_without_the_material(
    case: Case, task: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    case.without_material(monkeypatch, tmp_path)
    assert_reused_untouched(lambda: case.module.prepare(task.parent, "smoke", progress=False), task)


def test_rebuild_replaces_a_stale_folder_byte_identically(
    case: Case, task: Path, tmp_path: Path
) -> None:
    assert_stale_folder_rebuilt(case.module, task, tmp_path)


def test_unknown_scale_is_rejected(case: Case, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="smoke, full"):
        case.module.prepare(tmp_path, "huge", progress=False)


def _soundfonts_installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pitch = importlib.import_module("hear_mini.pitch")
    _no_path(monkeypatch, tmp_path)
    for _, path in pitch.SOUNDFONTS.values():
        (tmp_path / "sounds" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "sounds" / path).write_bytes(b"")
    monkeypatch.setattr(pitch, "SOUNDFONTS_DIR", tmp_path / "sounds")  # soundfonts "installed"


def _fluidsynth_without_soundfonts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(
        importlib.import_module("hear_mini.pitch"), "SOUNDFONTS_DIR", tmp_path / "sounds"
    )
    fake = tmp_path / "bin" / "fluidsynth"  # found on PATH, never run
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake.parent))


def _no_sounds_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(st, "SOUNDS_DIR", tmp_path / "sounds")


def _no_kits_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(
        importlib.import_module("hear_mini.drums"), "KITS_DIR", tmp_path / "drumkits"
    )


_THEME_PACKAGES = " ".join(sorted(package for package, _ in st.THEMES.values()))


@pytest.mark.parametrize(
    ("task", "scale", "setup", "error"),
    [
        ("spoken_digits", "smoke", _no_path, r"^espeak-ng not found: install it with 'apt-get"),
        ("sound_events", "smoke", _no_sounds_dir,
         rf"^sound themes not found in .*'apt-get install {_THEME_PACKAGES}' to prepare "
         r"mini_sound_events$"),
        ("sound_mix", "smoke", _no_sounds_dir,
         r"^sound themes not found in .*'apt-get install .*lomiri-sounds.*' to prepare "
         r"mini_sound_mix$"),
        ("pitch", "smoke", _soundfonts_installed,
         r"^fluidsynth not found: install it with 'apt-get install "
         r"--no-install-recommends fluidsynth' to prepare mini_pitch$"),
        ("pitch", "full", _fluidsynth_without_soundfonts,
         r"^timgm6mb-soundfont and musescore-general-soundfont-small not found: install "
         r"them with 'apt-get install --no-install-recommends timgm6mb-soundfont "
         r"musescore-general-soundfont-small' to prepare mini_pitch$"),
        ("drums", "smoke", _no_kits_dir,
         r"^Hydrogen drum kits not found in .*drumkits: install them with "
         r"'apt-get install hydrogen-drumkits' to prepare mini_drums$"),
    ],
    ids=["espeak-ng", "sound_events-themes", "sound_mix-themes", "fluidsynth", "soundfonts",
         "drum-kits"],
)  # fmt: skip
def test_missing_material_is_an_actionable_error_and_writes_nothing(
    task: str,
    scale: str,
    setup: Callable[[pytest.MonkeyPatch, Path], None],
    error: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup(monkeypatch, tmp_path)
    with pytest.raises(RuntimeError, match=error):
        importlib.import_module(f"hear_mini.{task}").prepare(
            tmp_path / "tasks", scale, progress=False
        )
    assert not any((tmp_path / "tasks").iterdir())  # nothing half-written
