"""mini_sound_events: event labels, recording-disjoint splits; and the sound-theme catalogue
both sound tasks draw from (the checks every mini task passes are in test_mini_tasks.py)."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hear_mini import sound_events as se
from hear_mini import sound_themes as st
from taskfolders import metadata, split_labels

SPLITS = ("train", "valid", "test")
RATE = 16000
THEME = {s.path: s.theme for c in st.CATALOGUE for s in st.sources(c)}
needs_themes = pytest.mark.skipif(
    bool(st.missing_packages(list(st.CATALOGUE))), reason="sound themes not installed"
)


@pytest.fixture
def task(mini_task: Callable[[str], Path]) -> Path:
    """The smoke-scale folder (tests/test_mini_tasks.py checks its layout and format)."""
    return mini_task("sound_events")


def _rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))


def test_generator_names_every_theme_package_and_recording(task: Path) -> None:
    generator = metadata(task)["generator"]
    assert set(generator["packages"]) == {package for package, _ in st.THEMES.values()}
    assert all(v and v[0].isdigit() for v in generator["packages"].values())  # "0.8-2"
    assert generator["classes"] == {c: [s.path for s in st.sources(c)] for c in se.CLASSES}


def test_runner_reads_the_events(task: Path) -> None:
    from hear_runner.events import postprocessing_grid, reference_events
    from hear_runner.tasks.folder import Task

    read = Task(task)
    assert all(clip.events for s in SPLITS for clip in read.clips(s))
    assert len(postprocessing_grid(read.metadata)) == 4
    assert reference_events(read, "test") == split_labels(task, "test")


@pytest.mark.parametrize("split", SPLITS)
def test_each_clip_has_one_to_three_events_inside_it(task: Path, split: str) -> None:
    for name, events in split_labels(task, split).items():
        assert name.startswith(f"{split}_")
        assert 1 <= len(events) <= 3, name
        assert len({e["label"] for e in events}) == len(events), name  # distinct classes
        assert [e["start"] for e in events] == sorted(e["start"] for e in events)
        for event in events:
            assert set(event) == {"label", "start", "end"}
            assert 0 <= event["start"] < event["end"] <= 4000, name  # inside the clip
            assert event["end"] - event["start"] <= 1000 * se.MAX_EVENT_SECONDS


def test_every_class_in_every_split(task: Path) -> None:
    for split in SPLITS:
        counts = Counter(e["label"] for v in split_labels(task, split).values() for e in v)
        assert sorted(counts) == sorted(se.CLASSES), split
        assert min(counts.values()) >= max(counts.values()) - 2, split  # dealt evenly
    overlapping = 0
    for events in split_labels(task, "train").values():
        spans = sorted((e["start"], e["end"]) for e in events)
        overlapping += any(b[0] < a[1] for a, b in itertools.pairwise(spans))
    assert 10 < overlapping < 110  # some events overlap, most clips do not


def test_events_are_labelled_where_the_audio_is_loud(task: Path) -> None:
    """Outside the events there is only the quiet background; inside, the sound."""
    checked = 0
    for split in SPLITS:
        for name, events in split_labels(task, split).items():
            audio, _ = sf.read(task / str(RATE) / split / name)
            inside = np.zeros(len(audio), dtype=bool)
            for e in events:
                inside[int(e["start"] * RATE / 1000) : int(np.ceil(e["end"] * RATE / 1000))] = True
            assert 3e-4 < _rms(audio[~inside]) < 10 ** (-45 / 20), name  # quiet, not silent
            for e in events:
                span = audio[int(e["start"] * RATE / 1000) : int(e["end"] * RATE / 1000)]
                assert _rms(span) > 4 * _rms(audio[~inside]), (name, e)  # 12 dB above
                checked += 1
    assert checked > 300


def test_recordings_are_disjoint_across_splits(task: Path) -> None:
    generator = metadata(task)["generator"]
    plan = generator["sources"]
    assert plan == st.plan_params(se.plan())
    for label in se.CLASSES:
        used = {split: set(plan[split][label]) for split in SPLITS}
        assert all(used.values()), label
        assert sum(map(len, used.values())) == len(set().union(*used.values())), label
        # Every class here has at least three themes, so whole themes are split apart.
        themes = {split: {THEME[p] for p in paths} for split, paths in used.items()}
        assert not themes["train"] & (themes["valid"] | themes["test"]), label
        assert not themes["valid"] & themes["test"], label
    for split in SPLITS:  # and each clip really uses its own split's recordings
        clips = generator["clip_sources"][split]
        assert set(clips) == set(split_labels(task, split))
        for name, events in split_labels(task, split).items():
            assert set(clips[name]) == {e["label"] for e in events}
            for label, path in clips[name].items():
                assert path in plan[split][label], (name, label)


@needs_themes
def test_no_catalogued_recording_is_a_copy_of_another() -> None:
    """The themes ship one recording under several names (links and copies): a copy on both
    sides of a split would leak. Normalized cross-correlation finds them, re-encoded too."""
    items = sorted({s for c in st.CATALOGUE for s in st.sources(c)})
    assert len(items) == sum(len(st.sources(c)) for c in st.CATALOGUE)  # one class each

    def spectrum(source: st.Source) -> np.ndarray:
        audio = st.load(source, 8000, 1.5).astype(np.float64)
        return np.fft.rfft(audio / np.linalg.norm(audio), 2 * 12000)

    def similarity(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.abs(np.fft.irfft(a * np.conj(b))).max())

    known_copy = [
        spectrum(st.Source("freedesktop", "message-new-instant.oga")),
        spectrum(st.Source("oxygen", "Oxygen-Im-Message-In.ogg")),
    ]
    assert similarity(*known_copy) > 0.99  # the measure does find a copy
    spectra = [spectrum(s) for s in items]
    for i, a in enumerate(spectra):
        for j in range(i + 1, len(spectra)):
            assert similarity(a, spectra[j]) < 0.95, (items[i], items[j])


def test_splits_are_dealt_by_theme() -> None:
    """Whole themes go to one split, the theme with most recordings to train."""
    items = [st.Source("a", "1.oga"), st.Source("a", "2.oga")] + [
        st.Source(t, "x.oga") for t in ("b", "c", "d")
    ]
    split = st.assign(items, {"train": 3, "valid": 1, "test": 1})
    assert split == {
        "train": [*items[:2], st.Source("d", "x.oga")],
        "valid": [st.Source("b", "x.oga")],
        "test": [st.Source("c", "x.oga")],
    }
    with pytest.raises(ValueError, match="cannot fill 3 groups"):
        st.assign(items[2:4], {"train": 3, "valid": 1, "test": 1})


def test_full_scale_is_five_times_smoke() -> None:
    full, smoke = se.clip_counts("full"), se.clip_counts("smoke")
    assert smoke == {"train": 120, "valid": 40, "test": 40}
    assert full == {split: 5 * n for split, n in smoke.items()}


@needs_themes
def test_only_the_missing_theme_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sounds = tmp_path / "sounds"
    sounds.mkdir()
    for entry in st.SOUNDS_DIR.iterdir():  # every theme but lomiri
        if entry.name != "lomiri":
            (sounds / entry.name).symlink_to(entry)
    monkeypatch.setattr(st, "SOUNDS_DIR", sounds)
    with pytest.raises(RuntimeError, match=r"'apt-get install lomiri-sounds' to prepare"):
        se.prepare(tmp_path / "tasks", "smoke", progress=False)
