"""mini_drums: which drum (kick, snare, hi-hat, tom, cymbal, clap) one stroke is.

The strokes are the samples of the Hydrogen drum kits in Debian main. The five folds are
disjoint by kit, so cross-validation tests each fold on drums recorded (or synthesized)
differently from all it was trained on; the kits are placed by hand so that every fold
has every class. Each clip is the first second of one sample from its onset.

Classes come from the kits' instrument names (``drumkit.xml``) by the ordered rules in
CLASS_RULES, first match wins, after SKIP_RULE leaves out the strokes between two classes
(semi-open, pedal and choked hi-hats, bells, crash-rides, rolls). Instruments that match
no rule are left out: rim clicks, side sticks, cowbells, splashes, chinas, hand
percussion and effects, and the whole circAfrique kit (djembes and dununs). Every layer of
an instrument (a velocity, or a take) is a clip at full scale; smoke keeps the loudest.
Generation is deterministic (same package, same bytes) and takes seconds.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from hear_mini import layout
from hear_mini.shapes import DRUMS
from hear_mini.sound_themes import package_versions

SHAPE = DRUMS
PACKAGE = "hydrogen-drumkits"
# Where the package installs its kits; tests point it elsewhere.
KITS_DIR = Path("/usr/share/hydrogen/data/drumkits")
CLASSES = ("kick", "snare", "closed_hihat", "open_hihat", "tom", "crash", "ride", "clap")
_HAT = r"\b(hh|hat|hi-?hat)\b"
# (class, pattern) on the lower-cased instrument name, in order: the first match wins.
CLASS_RULES: tuple[tuple[str, str], ...] = (
    ("open_hihat", rf"\b(open|opened|op)\b.*{_HAT}|{_HAT}.*\b(open|opened|op)\b|\bohh\b"),
    ("closed_hihat", rf"\b(closed|cl)\b.*{_HAT}|{_HAT}.*\b(closed|cl)\b|\bchh\b"),
    ("kick", r"kick|bass ?drum"),
    ("snare", r"snare"),
    ("tom", r"\btom"),
    ("crash", r"crash"),
    ("ride", r"\bride"),
    ("clap", r"clap"),
)
SKIP_RULE = r"semi|pedal|foot|roll|swish|choke|hat free|side hh|bell|cup|crash.?ride|ride.?crash"
FOLDS = SHAPE.folds
NFOLDS = len(FOLDS)
# fold -> kits. Every fold needs a kit with a ride and one with a clap; "Gimme A Hand"'s
# clap is the recording in "The Black Pearl", so the two kits share a fold.
KIT_FOLDS: dict[str, tuple[str, ...]] = {
    "fold00": ("BJA_Pacific", "HardElectro1"),
    "fold01": ("The Black Pearl 1.0", "Gimme A Hand 1.0", "VariBreaks"),
    "fold02": ("ForzeeStereo", "ElectricEmpireKit"),
    "fold03": ("Millo_MultiLayered2", "ColomboAcousticDrumkit", "Audiophob"),
    "fold04": ("Millo_MultiLayered3", "Millo-Drums_v.1", "rumpf_kit_z01_h2"),
}
SAMPLE_DURATION = SHAPE.sample_duration
PEAK = 0.9
ONSET_DB = 40.0  # a sample starts at its first value within this many dB of its peak
PRE_ONSET_S = 0.002  # kept before the onset, so the attack is whole
LEADING_S = 0.25  # leading silence allowed for: more than 1 s of a sample is never read
FADE_S = 0.01  # raised-cosine fade-out, so a cymbal cut at the clip's end does not click
PROCESSING = {
    "onset_db": ONSET_DB,
    "pre_onset_s": PRE_ONSET_S,
    "leading_s": LEADING_S,
    "fade_s": FADE_S,
    "peak": PEAK,
    "mono": "mean of channels",
}
# Bump when the audio processing changes, so complete folders from older code are rebuilt.
_GENERATOR_REVISION = 1


@dataclass(frozen=True, order=True)
class Stroke:
    """One sample of a kit, and the class of the instrument(s) that play it."""

    kit: str
    file: str
    label: str
    instrument: str

    @property
    def path(self) -> str:
        """Relative to KITS_DIR, so metadata does not depend on the machine."""
        return f"{self.kit}/{self.file}"

    @property
    def clip_name(self) -> str:
        stem = Path(self.file).stem
        return f"{_slug(self.kit)}_{_slug(stem)}_{self.label}.wav"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


folder_name = SHAPE.folder_name


def classify(instrument: str) -> str | None:
    """The class of an instrument name, or None where it is left out."""
    name = instrument.lower()
    if re.search(SKIP_RULE, name):
        return None
    return next((label for label, rule in CLASS_RULES if re.search(rule, name)), None)


def _children(element: ET.Element, tag: str) -> list[ET.Element]:
    """Direct children named ``tag``, whether or not the file uses the drumkit namespace."""
    return [child for child in element if child.tag.rsplit("}", 1)[-1] == tag]


def kit_strokes(kit: str, scale: str) -> list[Stroke]:
    """The kit's samples of mapped instruments: every layer, or at smoke scale only each
    instrument's loudest. A sample used by two instruments of one class is kept once,
    one used by two classes not at all."""
    root = ET.parse(KITS_DIR / kit / "drumkit.xml").getroot()
    found: dict[str, list[tuple[str, str]]] = {}
    for instruments in _children(root, "instrumentList"):
        for instrument in _children(instruments, "instrument"):
            name = " ".join(t.text or "" for t in _children(instrument, "name")).strip()
            label = classify(name)
            if label is None:
                continue
            # Old kits name one file on the instrument, newer ones a file per layer, with
            # the velocity range it plays; the loudest layer has the highest <max>.
            layers = [
                (float(layer.findtext("{*}max") or 1.0), layer.findtext("{*}filename") or "")
                for layer in instrument.iter()
                if layer.tag.rsplit("}", 1)[-1] == "layer"
            ] or [(1.0, f.text or "") for f in _children(instrument, "filename")]
            layers = [layer for layer in layers if layer[1]]
            if scale == "smoke":
                layers = sorted(layers, key=lambda layer: -layer[0])[:1]
            for _, file in layers:
                found.setdefault(file, []).append((label, name))
    return sorted(
        Stroke(kit, file, uses[0][0], min(name for _, name in uses))
        for file, uses in found.items()
        if len({label for label, _ in uses}) == 1
    )


def plan(scale: str) -> dict[str, list[Stroke]]:
    """fold -> its kits' strokes (reads the kits' drumkit.xml)."""
    SHAPE.check_scale(scale)
    return {
        fold: sorted(s for kit in kits for s in kit_strokes(kit, scale))
        for fold, kits in KIT_FOLDS.items()
    }


def _params_hash(scale: str, sample_rate: int) -> str:
    """What the audio depends on, hashed without reading the kits (so a complete folder
    is reused where hydrogen-drumkits is not installed)."""
    return layout.params_hash(
        SHAPE.hashed(
            _GENERATOR_REVISION,
            sample_rate,
            scale=scale,
            classes=CLASSES,
            rules=[CLASS_RULES, SKIP_RULE],
            kit_folds=KIT_FOLDS,
            processing=PROCESSING,
        )
    )


def check_installed() -> None:
    missing = [kit for kits in KIT_FOLDS.values() for kit in kits]
    missing = [kit for kit in missing if not (KITS_DIR / kit / "drumkit.xml").is_file()]
    if missing:
        raise RuntimeError(
            f"Hydrogen drum kits not found in {KITS_DIR}: install them with "
            f"'apt-get install {PACKAGE}' to prepare {SHAPE.name}"
        )


def load(stroke: Stroke, sample_rate: int) -> np.ndarray:
    """The first SAMPLE_DURATION of a sample from its onset, mono at ``sample_rate``,
    faded out at the end, peak at PEAK. Reads at most LEADING_S more than that."""
    with sf.SoundFile(KITS_DIR / stroke.path) as f:
        rate = f.samplerate
        frames = min(f.frames, round((SAMPLE_DURATION + LEADING_S) * rate))
        audio: np.ndarray = f.read(frames, dtype="float32", always_2d=True).mean(axis=1)
    peak = float(np.abs(audio).max(initial=0.0))
    if peak == 0:
        raise RuntimeError(f"{KITS_DIR / stroke.path} is silent")
    onset = int(np.argmax(np.abs(audio) >= peak * 10 ** (-ONSET_DB / 20)))
    audio = audio[max(0, onset - round(PRE_ONSET_S * rate)) :][: round(SAMPLE_DURATION * rate)]
    if rate != sample_rate:
        audio = soxr.resample(audio, rate, sample_rate, "HQ")
    n = round(SAMPLE_DURATION * sample_rate)
    clip = np.pad(audio[:n].astype(np.float64), (0, max(0, n - len(audio))))
    fade = round(FADE_S * sample_rate)
    clip[n - fade :] *= 0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, fade))
    return (clip * (PEAK / float(np.abs(clip).max()))).astype(np.float32)


def _write_folder(folder: Path, scale: str, sample_rate: int, progress: bool) -> None:
    from rich.progress import Progress

    check_installed()
    strokes = plan(scale)
    names = [s.clip_name for items in strokes.values() for s in items]
    if len(set(names)) != len(names):
        raise RuntimeError(f"two samples of {PACKAGE} would have the same clip name")
    for fold in strokes:
        (folder / str(sample_rate) / fold).mkdir(parents=True)

    def write(fold: str, stroke: Stroke) -> None:
        clip = load(stroke, sample_rate)
        layout.write_wav(folder / str(sample_rate) / fold / stroke.clip_name, clip, sample_rate)

    # libsndfile and soxr release the GIL, so threads help.
    jobs = [(fold, s) for fold, items in strokes.items() for s in items]
    with Progress(disable=not progress) as bar, ThreadPoolExecutor(max_workers=8) as pool:
        task = bar.add_task(SHAPE.progress_label(scale), total=len(jobs))
        for future in [pool.submit(write, *job) for job in jobs]:
            future.result()
            bar.advance(task)

    for fold, items in strokes.items():
        layout.write_split(folder, fold, {s.clip_name: [s.label] for s in items})
    layout.write_vocabulary(folder, CLASSES)
    layout.write_metadata(folder, _metadata(strokes, scale, sample_rate))


def _metadata(strokes: dict[str, list[Stroke]], scale: str, sample_rate: int) -> dict[str, Any]:
    instruments: dict[str, dict[str, str]] = {}
    for stroke in sorted(s for items in strokes.values() for s in items):
        instruments.setdefault(stroke.kit, {})[stroke.instrument] = stroke.label
    return SHAPE.metadata(
        scale,
        sample_rate,
        generator={
            "tool": "Hydrogen drum kits",
            "packages": package_versions([PACKAGE]),
            "kits_dir": "/usr/share/hydrogen/data/drumkits",
            "folds_by": "kit: no kit is in two folds, and every fold has every class",
            "kit_folds": {fold: list(kits) for fold, kits in KIT_FOLDS.items()},
            "class_rules": [list(rule) for rule in CLASS_RULES],
            "skip_rule": SKIP_RULE,
            "layers": "loudest" if scale == "smoke" else "all",
            "instruments": instruments,
            "clip_sources": {
                fold: {s.clip_name: s.path for s in items} for fold, items in strokes.items()
            },
            "processing": PROCESSING,
            "revision": _GENERATOR_REVISION,
        },
    )


def prepare(
    out_dir: Path, scale: str = "smoke", sample_rate: int = 16000, progress: bool = True
) -> Path:
    """The task folder under ``out_dir`` (see TaskShape.prepare); a complete one is reused
    without reading the kits."""
    SHAPE.check_scale(scale)
    return SHAPE.prepare(
        out_dir,
        scale,
        _params_hash(scale, sample_rate),
        lambda folder: _write_folder(folder, scale, sample_rate, progress),
    )
