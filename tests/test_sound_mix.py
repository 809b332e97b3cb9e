"""mini_sound_mix: k-fold layout, audio format, labels matching the mixed sounds,
recording-disjoint folds, reuse, determinism."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hear_mini import sound_mix as sm
from hear_mini import sound_themes as st
from taskfolders import (
    assert_reused_untouched,
    assert_stale_folder_rebuilt,
    metadata,
    split_labels,
    wavs,
)

FOLDS = tuple(f"fold{i:02d}" for i in range(5))
RATE = 16000
THEME = {s.path: s.theme for c in st.CATALOGUE for s in st.sources(c)}


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke-scale folder, generated once for this module (skipped without the themes)."""
    if st.missing_packages(sm.CLASSES):
        pytest.skip("sound themes not installed")
    return sm.prepare(tmp_path_factory.mktemp("tasks"), "smoke", progress=False)


def test_layout_andmetadata(task: Path) -> None:
    assert task.name == "mini_sound_mix-1.0.0-smoke" == sm.folder_name("smoke")
    assert sorted(p.name for p in task.iterdir()) == sorted(
        [".complete", "16000", "labelvocabulary.csv", "task_metadata.json"]
        + [f"{f}.json" for f in FOLDS]
    )
    assert sorted(p.name for p in (task / "16000").iterdir()) == list(FOLDS)
    meta = metadata(task)
    assert {k: v for k, v in meta.items() if k != "generator"} == {
        "task_name": "mini_sound_mix",
        "version": "1.0.0",
        "embedding_type": "scene",
        "prediction_type": "multilabel",
        "split_mode": "new_split_kfold",
        "splits": [f"fold{i:02d}" for i in range(5)],
        "nfolds": 5,
        "sample_duration": 2.0,
        "evaluation": ["mAP", "d_prime", "aucroc"],
        "mode": "smoke",
        "sample_rates": [16000],
    }
    generator = meta["generator"]
    assert all(v and v[0].isdigit() for v in generator["packages"].values())
    assert "/tmp" not in json.dumps(meta)  # no machine-specific paths
    assert generator["classes"] == {c: [s.path for s in st.sources(c)] for c in sm.CLASSES}
    rows = list(csv.reader((task / "labelvocabulary.csv").open()))
    assert rows == [["idx", "label"]] + [[str(i), c] for i, c in enumerate(sm.CLASSES)]


def test_runner_reads_the_folder(task: Path) -> None:
    from hear_runner.tasks.folder import Task

    read = Task(task)
    assert read.sample_rates == [RATE]
    assert read.vocabulary == list(sm.CLASSES)
    assert read.splits == FOLDS
    assert [f.test for f in read.folds] == list(FOLDS)
    assert [len(read.clips(f)) for f in FOLDS] == [40] * 5
    targets = read.targets("fold00")
    assert targets.shape == (40, 5)
    assert set(targets.sum(axis=1)) <= {0.0, 1.0, 2.0, 3.0}


@pytest.mark.parametrize("fold", FOLDS)
def test_split_json_keys_match_thewavs(task: Path, fold: str) -> None:
    labels = split_labels(task, fold)
    assert list(labels) == sorted(labels)
    assert set(labels) == {p.name for p in wavs(task, fold)}
    for name, value in labels.items():
        assert name.startswith(f"{fold}_")
        assert value == sorted(set(value)) and len(value) <= 3, name
        assert set(value) <= set(sm.CLASSES), name


def test_every_wav_is_mono_16bit_two_seconds(task: Path) -> None:
    files = [w for f in FOLDS for w in wavs(task, f)]
    assert len(files) == 200
    for wav in files:
        info = sf.info(wav)
        assert (info.format, info.subtype, info.channels) == ("WAV", "PCM_16", 1), wav.name
        assert (info.samplerate, info.frames) == (RATE, 2 * RATE), wav.name


def test_every_class_in_every_fold(task: Path) -> None:
    sizes: Counter[int] = Counter()
    for fold in FOLDS:
        labels = split_labels(task, fold).values()
        counts = Counter(label for value in labels for label in value)
        assert sorted(counts) == sorted(sm.CLASSES), fold
        assert min(counts.values()) >= max(counts.values()) - 2, fold  # dealt evenly
        sizes.update(len(value) for value in labels)
    assert sorted(sizes) == [0, 1, 2, 3] and sizes[0] >= 5  # empty clips too


def test_labels_are_the_sounds_in_the_mix(task: Path) -> None:
    """A clip without labels is only the quiet background; one with labels is loud."""
    clip_sources = metadata(task)["generator"]["clip_sources"]
    for fold in FOLDS:
        for name, labels in split_labels(task, fold).items():
            assert sorted(clip_sources[fold][name]) == labels, name
            audio, _ = sf.read(task / str(RATE) / fold / name)
            level = 20 * np.log10(np.sqrt(np.mean(audio**2)))
            if labels:
                assert level > -40, name
            else:
                assert -70 < level < -45, name


def test_recordings_are_disjoint_across_folds(task: Path) -> None:
    generator = metadata(task)["generator"]
    plan = generator["sources"]
    assert plan == st.plan_params(sm.plan())
    for label in sm.CLASSES:
        used = {fold: set(plan[fold][label]) for fold in FOLDS}
        assert all(used.values()), label
        assert sum(map(len, used.values())) == len(set().union(*used.values())), label
        themes = {fold: {THEME[p] for p in paths} for fold, paths in used.items()}
        if len(set().union(*themes.values())) >= len(FOLDS):  # a theme per fold
            assert sum(map(len, themes.values())) == len(FOLDS), label
    for fold in FOLDS:  # and each clip really uses its own fold's recordings
        for name, sources in generator["clip_sources"][fold].items():
            for label, path in sources.items():
                assert path in plan[fold][label], (name, label)


def test_themes_are_halved_when_too_few_for_the_folds() -> None:
    items = [st.Source("a", f"{i}.oga") for i in range(5)] + [st.Source("b", "x.oga")]
    folds = st.assign(items, dict.fromkeys(("f0", "f1", "f2"), 1.0))
    assert folds == {"f0": items[:3], "f1": items[3:5], "f2": items[5:]}
    assert sorted(s for fold in folds.values() for s in fold) == sorted(items)


def test_every_class_has_a_recording_per_fold() -> None:
    assert all(len(st.sources(c)) >= len(FOLDS) for c in sm.CLASSES)
    assert sm.clip_counts("full") == {f: 5 * n for f, n in sm.clip_counts("smoke").items()}


def test_second_prepare_reuses_the_folder_without_the_themes(
    task: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(st, "SOUNDS_DIR", tmp_path)  # no recording could be read
    assert_reused_untouched(lambda: sm.prepare(task.parent, "smoke", progress=False), task)


def test_rebuild_replaces_a_stale_folder_byte_identically(task: Path, tmp_path: Path) -> None:
    assert_stale_folder_rebuilt(sm, task, tmp_path)


def test_missing_themes_are_an_actionable_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(st, "SOUNDS_DIR", tmp_path / "sounds")
    with pytest.raises(
        RuntimeError,
        match=r"^sound themes not found in .*'apt-get install .*lomiri-sounds.*' to prepare mini_sound_mix$",
    ):
        sm.prepare(tmp_path / "tasks", "smoke", progress=False)
    assert not any((tmp_path / "tasks").iterdir())  # nothing half-written


def test_unknown_scale_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="smoke, full"):
        sm.prepare(tmp_path, "huge", progress=False)
