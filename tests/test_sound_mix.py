"""mini_sound_mix: labels matching the mixed sounds, recording-disjoint folds (the checks
every mini task passes are in test_mini_tasks.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hear_mini import sound_mix as sm
from hear_mini import sound_themes as st
from taskfolders import metadata, split_labels

FOLDS = tuple(f"fold{i:02d}" for i in range(5))
RATE = 16000
THEME = {s.path: s.theme for c in st.CATALOGUE for s in st.sources(c)}


@pytest.fixture
def task(mini_task: Callable[[str], Path]) -> Path:
    """The smoke-scale folder (tests/test_mini_tasks.py checks its layout and format)."""
    return mini_task("sound_mix")


def test_generator_names_versions_and_recordings(task: Path) -> None:
    generator = metadata(task)["generator"]
    assert all(v and v[0].isdigit() for v in generator["packages"].values())
    assert generator["classes"] == {c: [s.path for s in st.sources(c)] for c in sm.CLASSES}


def test_runner_reads_zero_to_three_labels_per_clip(task: Path) -> None:
    from hear_runner.tasks.folder import Task

    targets = Task(task).targets("fold00")
    assert targets.shape == (40, 5)
    assert set(targets.sum(axis=1)) <= {0.0, 1.0, 2.0, 3.0}


@pytest.mark.parametrize("fold", FOLDS)
def test_each_clip_has_up_to_three_distinct_classes(task: Path, fold: str) -> None:
    for name, value in split_labels(task, fold).items():
        assert name.startswith(f"{fold}_")
        assert value == sorted(set(value)) and len(value) <= 3, name
        assert set(value) <= set(sm.CLASSES), name


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
