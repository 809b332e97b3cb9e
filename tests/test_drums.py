"""mini_drums: class mapping, kit-disjoint folds with every class in every fold, the kits'
formats (the checks every mini task passes are in test_mini_tasks.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hear_mini import drums as dr
from taskfolders import metadata, needs_mini_material, split_labels, wavs

FOLDS = tuple(f"fold{i:02d}" for i in range(5))
RATE = 16000


needs_kits = needs_mini_material("drums")


@pytest.fixture
def task(mini_task: Callable[[str], Path]) -> Path:
    """The smoke-scale folder (tests/test_mini_tasks.py checks its layout and format)."""
    return mini_task("drums")


def test_generator_names_the_package_and_layers(task: Path) -> None:
    generator = metadata(task)["generator"]
    assert generator["packages"]["hydrogen-drumkits"][0].isdigit()
    assert generator["layers"] == "loudest"


def test_runner_reads_every_clip_with_one_label(task: Path) -> None:
    from hear_runner.tasks.folder import Task

    read = Task(task)
    assert sum(len(read.clips(f)) for f in FOLDS) >= 120
    assert set(read.targets("fold00").sum(axis=1)) == {1.0}


def test_every_class_in_every_fold(task: Path) -> None:
    for fold in FOLDS:
        counts = Counter(label for value in split_labels(task, fold).values() for label in value)
        assert sorted(counts) == sorted(dr.CLASSES), fold


@needs_kits
def test_full_scale_has_every_layer_and_every_class_in_every_fold() -> None:
    full, smoke = dr.plan("full"), dr.plan("smoke")
    assert sum(map(len, full.values())) >= 2 * sum(map(len, smoke.values()))
    for fold in FOLDS:
        assert {s.label for s in full[fold]} == set(dr.CLASSES), fold
        assert set(smoke[fold]) <= set(full[fold])


def test_folds_are_disjoint_by_kit(task: Path) -> None:
    generator = metadata(task)["generator"]
    assert generator["kit_folds"] == {f: list(k) for f, k in dr.KIT_FOLDS.items()}
    kits = [k for ks in dr.KIT_FOLDS.values() for k in ks]
    assert len(kits) == len(set(kits)) == 13
    for fold in FOLDS:  # and each clip really comes from its fold's kits
        sources = generator["clip_sources"][fold]
        assert set(sources) == {w.name for w in wavs(task, fold)}
        assert {path.split("/")[0] for path in sources.values()} == set(dr.KIT_FOLDS[fold])


def test_no_recording_is_in_two_folds(task: Path) -> None:
    """Onset-aligned clips of one recording correlate near 1 (Gimme A Hand's clap and
    The Black Pearl's do, so they share a fold); different drums stay well below."""
    clips, folds = [], []
    for fold in FOLDS:
        for wav in wavs(task, fold):
            clips.append(sf.read(wav)[0][: RATE // 2])
            folds.append(fold)
    x = np.array(clips)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    similarity = np.abs(x @ x.T)
    same = np.array(folds)[:, None] == np.array(folds)[None, :]
    assert similarity[~same].max() < 0.9


def test_clips_start_at_the_stroke_and_are_normalized(task: Path) -> None:
    for fold in FOLDS:
        for wav in wavs(task, fold):
            audio, _ = sf.read(wav, dtype="float32")
            assert abs(float(np.abs(audio).max()) - 0.9) < 1e-3, wav.name
            onset = int(np.argmax(np.abs(audio) > 0.01 * 0.9)) / RATE
            assert onset < 0.005, wav.name
            assert abs(float(audio[-1])) < 1e-3, wav.name  # faded out


def test_labels_sound_like_their_class(task: Path) -> None:
    """Kicks are low, hi-hats and cymbals bright: the spectral centroid of the first
    quarter second, fold by fold."""
    centroids: dict[tuple[str, str], list[float]] = {}
    freqs = np.fft.rfftfreq(RATE // 4, 1 / RATE)
    for fold in FOLDS:
        for name, (label,) in split_labels(task, fold).items():
            audio, _ = sf.read(task / str(RATE) / fold / name)
            power = np.abs(np.fft.rfft(audio[: RATE // 4])) ** 2
            centroids.setdefault((fold, label), []).append(
                float((power * freqs).sum() / power.sum())
            )
    for fold in FOLDS:
        assert np.median(centroids[fold, "kick"]) < 250, fold
        metal = [
            c
            for label in ("closed_hihat", "open_hihat", "crash", "ride")
            for c in centroids[fold, label]
        ]
        assert np.median(metal) > 1000, fold


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ('Kick (Tama Superstar 22")', "kick"),
        ("BassDrum", "kick"),
        ("c3 - bass drum 1", "kick"),
        ("Snare1", "snare"),
        ("Pearl Snare Rimshot", "snare"),
        ("Snare (Pearl Free Floating Maple 14x3.5)", "snare"),
        ("Closed HH 2", "closed_hihat"),
        ("Hi Hat Closed", "closed_hihat"),
        ("VariBreaks Hat 1 Cl", "closed_hihat"),
        ("Hi Hat Opened", "open_hihat"),
        ("Hat Op Phaser", "open_hihat"),
        ("Side OHH", "open_hihat"),
        ("Pearl Tom Floor", "tom"),
        ("tomhi2", "tom"),
        ("Crash Left", "crash"),
        ("crash20inch--2", "crash"),
        ('Ride Bow (Custom, Zagrebin 22")', "ride"),
        ("Paiste Ride Flink", "ride"),
        ("d#3 - clap", "clap"),
        ("Hand Clap", "clap"),
        ("Pedal HH", None),
        ("Sabian Hat Semi-Open", None),
        ("Hi Hat Free", None),
        ("Snare Roll", None),
        ("Ride Bell", None),
        ("ride-crash20inch", None),
        ('Crash/Ride (Paiste Rude Crash/Ride 18")', None),
        ("Pearl Side Stick", None),
        ("Cowbell", None),
        ("Djembe1 Bass", None),
        ("Zildjian Splash", None),
        ("Sample: beats_01-10.flac", None),
    ],
)
def test_instrument_names_map_to_classes(name: str, label: str | None) -> None:
    assert dr.classify(name) == label


def _write_kit(root: Path, kit: str, xml: str, files: list[str]) -> None:
    (root / kit).mkdir(parents=True)
    (root / kit / "drumkit.xml").write_text(xml)
    for file in files:
        sf.write(root / kit / file, np.zeros(100), 44100)


def test_kits_old_and_new_formats_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Layers (namespaced kits, the loudest first at smoke) and one file per instrument
    (old kits); a file shared by two classes is left out, by one class kept once."""
    layered = """<drumkit_info xmlns="http://www.hydrogen-music.org/drumkit"><instrumentList>
      <instrument><name>Kick</name>
        <layer><filename>k-soft.wav</filename><min>0</min><max>0.5</max></layer>
        <layer><filename>k-hard.wav</filename><min>0.5</min><max>1</max></layer>
      </instrument>
      <instrument><name>Tom Hi</name><layer><filename>t.wav</filename><max>1</max></layer></instrument>
      <instrument><name>Tom Mid</name><layer><filename>t.wav</filename><max>1</max></layer></instrument>
      <instrument><name>Cowbell</name><layer><filename>c.wav</filename></layer></instrument>
    </instrumentList></drumkit_info>"""
    old = """<drumkit_info><instrumentList>
      <instrument><name>Snare</name><filename>s.flac</filename></instrument>
      <instrument><name>Clap</name><filename>s.flac</filename></instrument>
      <instrument><name>Open HH</name><filename>o.flac</filename></instrument>
    </instrumentList></drumkit_info>"""
    _write_kit(tmp_path, "new", layered, ["k-soft.wav", "k-hard.wav", "t.wav", "c.wav"])
    _write_kit(tmp_path, "old", old, [])
    monkeypatch.setattr(dr, "KITS_DIR", tmp_path)
    assert [(s.file, s.label, s.instrument) for s in dr.kit_strokes("new", "full")] == [
        ("k-hard.wav", "kick", "Kick"),
        ("k-soft.wav", "kick", "Kick"),
        ("t.wav", "tom", "Tom Hi"),
    ]
    assert [s.file for s in dr.kit_strokes("new", "smoke")] == ["k-hard.wav", "t.wav"]
    assert [(s.file, s.label) for s in dr.kit_strokes("old", "full")] == [("o.flac", "open_hihat")]
