"""mini_pitch: which note (MIDI pitch 48-83) an instrument plays, in hear-preprocess layout.

Notes are rendered by fluidsynth from two General MIDI soundfonts in Debian main. The
five folds are disjoint by instrument: every soundfont's rendering of a GM program sits in
one fold, so cross-validation tests each fold on timbres never heard in training, while
every fold still holds every pitch. The vocabulary starts at a C (48) and runs by
semitone, so a label's index mod 12 is its pitch class, which heareval's chroma_acc
assumes. Each (soundfont, program) is one MIDI file of all its notes in sequence, rendered
by one fluidsynth process and sliced into one clip per note (a process per note is 60x
slower). Generation is deterministic (same packages, same bytes) and takes seconds.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from hear_mini import layout
from hear_mini.shapes import PITCH
from hear_mini.sound_themes import package_versions

SHAPE = PITCH
PITCHES = tuple(range(48, 84))  # C3..B5: three octaves, starting on a C
LABELS = tuple(str(p) for p in PITCHES)
FOLDS = SHAPE.folds
NFOLDS = len(FOLDS)
SAMPLE_DURATION = SHAPE.sample_duration
PEAK = 0.9
# Where the packages install their soundfonts; tests point it elsewhere.
SOUNDFONTS_DIR = Path("/usr/share/sounds")
# soundfont -> (Debian package, file under SOUNDFONTS_DIR). Not fluid-soundfont-gm: 120 MB.
SOUNDFONTS: dict[str, tuple[str, str]] = {
    "timgm6mb": ("timgm6mb-soundfont", "sf2/TimGM6mb.sf2"),
    "musescore": ("musescore-general-soundfont-small", "sf3/MuseScore_General_Lite.sf3"),
}
# fold -> GM programs (0-based), mixing families; the first of each fold is the smoke
# scale. All were checked to sound at the written pitch (YIN, within half a semitone)
# over the range in both soundfonts. Left out: organs (16-19), whose 16' stop sounds an
# octave below the written note; programs detuned or an octave off in one soundfont (5,
# 12, 43, 66, 68, 70); bright piano (1) and piccolo (72), which TimGM6mb renders from the
# samples of piano (0) and recorder (74); bells, percussion and effects.
PROGRAMS: dict[str, tuple[tuple[int, str], ...]] = {
    "fold00": ((0, "Acoustic Grand Piano"), (42, "Cello"), (71, "Clarinet"), (80, "Square Lead")),
    "fold01": ((24, "Nylon Guitar"), (48, "Strings"), (65, "Alto Sax"), (11, "Vibraphone")),
    "fold02": ((40, "Violin"), (4, "Electric Piano 1"), (57, "Trombone"), (22, "Harmonica")),
    "fold03": ((73, "Flute"), (25, "Steel Guitar"), (60, "French Horn"), (52, "Choir Aahs")),
    "fold04": ((56, "Trumpet"), (6, "Harpsichord"), (33, "Electric Bass (finger)"), (105, "Banjo")),
}  # fmt: skip
VELOCITIES = {"smoke": (100,), "full": (70, 110)}
# The MIDI timeline, in milliseconds: each note has a slot; an All Sound Off at the slot's
# start silences what the previous note left ringing, the note starts LEAD later and is
# released after HOLD, and its clip is the SAMPLE_DURATION from its start.
SLOT_MS, LEAD_MS, HOLD_MS = 1250, 100, 750
GAIN = 0.5
FADE_S = 0.01  # raised-cosine fade-out, so a release cut at the clip's end does not click
# Bump when the audio processing changes, so complete folders from older code are rebuilt.
_GENERATOR_REVISION = 1


@dataclass(frozen=True)
class Instrument:
    """One GM program as one soundfont renders it."""

    soundfont: str
    program: int

    def file_name(self, velocity: int, pitch: int) -> str:
        return f"{self.soundfont}_p{self.program:03d}_v{velocity:03d}_{pitch}.wav"


folder_name = SHAPE.folder_name


def plan(scale: str) -> dict[str, list[Instrument]]:
    """fold -> the instruments whose notes it holds at ``scale``."""
    SHAPE.check_scale(scale)
    count = 1 if scale == "smoke" else None
    return {
        fold: [Instrument(sf2, p) for p, _ in programs[:count] for sf2 in SOUNDFONTS]
        for fold, programs in PROGRAMS.items()
    }


def _params_hash(scale: str, sample_rate: int) -> str:
    """What the audio depends on, hashed without running fluidsynth (so a complete folder
    is reused where fluidsynth or the soundfonts are not installed)."""
    return layout.params_hash(
        SHAPE.hashed(
            _GENERATOR_REVISION,
            sample_rate,
            plan={f: [[i.soundfont, i.program] for i in p] for f, p in plan(scale).items()},
            soundfonts=SOUNDFONTS,
            pitches=PITCHES,
            velocities=VELOCITIES[scale],
            timeline_ms=[SLOT_MS, LEAD_MS, HOLD_MS],
            gain=GAIN,
            fade_s=FADE_S,
            peak=PEAK,
        )
    )


def _check_installed() -> str:
    """fluidsynth's version, after checking that it and the soundfonts are installed."""
    missing = [] if shutil.which("fluidsynth") else ["fluidsynth"]
    missing += [pkg for pkg, path in SOUNDFONTS.values() if not (SOUNDFONTS_DIR / path).is_file()]
    if missing:
        raise RuntimeError(
            f"{' and '.join(missing)} not found: install {'it' if len(missing) == 1 else 'them'} "
            f"with 'apt-get install --no-install-recommends {' '.join(missing)}' to prepare "
            f"{SHAPE.name}"
        )
    # "FluidSynth runtime version 2.3.1 ...": the version, not the banner's other lines.
    banner = subprocess.run(["fluidsynth", "--version"], capture_output=True, text=True).stdout
    found = re.search(r"version\s+(\S+)", banner)
    return found.group(1) if found else banner.strip()


def _vlq(value: int) -> bytes:
    """A MIDI variable-length quantity."""
    out = [value & 0x7F]
    while value := value >> 7:
        out.append(0x80 | (value & 0x7F))
    return bytes(reversed(out))


def midi_file(program: int, notes: list[tuple[int, int]]) -> bytes:
    """A format-0 MIDI file: ``program`` on channel 0 playing (pitch, velocity) ``notes``
    in sequence, one per SLOT_MS. A tick is one millisecond (1000 ticks per quarter note,
    one quarter note per second)."""
    events = [(0, bytes([0xC0, program]))]
    for i, (pitch, velocity) in enumerate(notes):
        start = i * SLOT_MS
        events += [
            (start, bytes([0xB0, 120, 0])),  # All Sound Off
            (start + LEAD_MS, bytes([0x90, pitch, velocity])),
            (start + LEAD_MS + HOLD_MS, bytes([0x80, pitch, 0])),
        ]
    end = len(notes) * SLOT_MS
    events += [(end, bytes([0xB0, 120, 0])), (end, b"\xff\x2f\x00")]  # silence, end of track
    track = bytearray(b"\x00\xff\x51\x03" + (1_000_000).to_bytes(3, "big"))  # tempo
    now = 0
    for time, event in events:  # already in time order
        track += _vlq(time - now) + event
        now = time
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, 1000)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


def _render(instrument: Instrument, notes: list[tuple[int, int]], sample_rate: int) -> np.ndarray:
    """The instrument's notes as one mono float recording, from one fluidsynth run."""
    soundfont = SOUNDFONTS_DIR / SOUNDFONTS[instrument.soundfont][1]
    with tempfile.TemporaryDirectory(prefix="mini_pitch-") as tmp:
        mid, wav = Path(tmp) / "notes.mid", Path(tmp) / "notes.wav"
        mid.write_bytes(midi_file(instrument.program, notes))
        # Reverb and chorus off, for clean onsets and no tail across slots; float output,
        # so that fluidsynth does not dither; only the samples of the program are loaded;
        # no default soundfont, which fluidsynth would silently play from instead of one
        # it cannot read.
        command = [
            "fluidsynth", "-ni", "-q", "-F", str(wav), "-T", "wav", "-O", "float",
            "-r", str(sample_rate), "-g", str(GAIN), "-R", "0", "-C", "0",
            "-o", "synth.dynamic-sample-loading=1", "-o", "synth.default-soundfont=",
            str(soundfont), str(mid),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0 or "error" in done.stderr or not wav.is_file():
            error = "; ".join(line.strip() for line in done.stderr.splitlines() if line.strip())
            raise RuntimeError(
                f"fluidsynth failed on {soundfont.name} program {instrument.program} "
                f"({done.returncode}): {error}"
            )
        audio, rate = sf.read(wav, dtype="float32", always_2d=True)
    if rate != sample_rate:
        raise RuntimeError(f"fluidsynth rendered at {rate} Hz, not {sample_rate} Hz")
    mono: np.ndarray = audio.mean(axis=1)
    return mono


def _slice(recording: np.ndarray, index: int, sample_rate: int) -> np.ndarray | None:
    """The ``index``-th note's clip: from its note-on, SAMPLE_DURATION long, faded out
    at the end, peak at PEAK; None where it is silent."""
    start = round((index * SLOT_MS + LEAD_MS) * sample_rate / 1000)
    n = round(SAMPLE_DURATION * sample_rate)
    clip = recording[start : start + n].astype(np.float64)
    clip = np.pad(clip, (0, n - len(clip)))
    fade = round(FADE_S * sample_rate)
    clip[n - fade :] *= 0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, fade))
    peak = float(np.abs(clip).max())
    if peak < 1e-4:
        return None
    return (clip * (PEAK / peak)).astype(np.float32)


def _write_folder(folder: Path, scale: str, sample_rate: int, progress: bool) -> None:

    version = _check_installed()
    folds = plan(scale)
    notes = [(p, v) for v in VELOCITIES[scale] for p in PITCHES]
    jobs = [(fold, instrument) for fold, items in folds.items() for instrument in items]
    labels: dict[str, dict[str, list[str]]] = {fold: {} for fold in folds}
    for fold in folds:
        (folder / str(sample_rate) / fold).mkdir(parents=True)

    def render(fold: str, instrument: Instrument) -> None:
        recording = _render(instrument, notes, sample_rate)
        for i, (pitch, velocity) in enumerate(notes):
            name = instrument.file_name(velocity, pitch)
            clip = _slice(recording, i, sample_rate)
            if clip is None:  # as a soundfont that fails to load renders, without an error
                raise RuntimeError(
                    f"fluidsynth rendered silence for note {pitch} of program "
                    f"{instrument.program} from {SOUNDFONTS[instrument.soundfont][1]}"
                )
            layout.write_wav(folder / str(sample_rate) / fold / name, clip, sample_rate)
            labels[fold][name] = [str(pitch)]

    # fluidsynth runs as subprocesses, and libsndfile releases the GIL: threads help.
    layout.run_jobs(render, jobs, SHAPE.progress_label(scale), progress)

    for fold, clips in labels.items():
        layout.write_split(folder, fold, clips)
    layout.write_vocabulary(folder, LABELS)
    layout.write_metadata(folder, _metadata(scale, sample_rate, version))


def _metadata(scale: str, sample_rate: int, version: str) -> dict[str, Any]:
    names = {p: name for programs in PROGRAMS.values() for p, name in programs}
    return SHAPE.metadata(
        scale,
        sample_rate,
        generator={
            "tool": "fluidsynth",
            "fluidsynth_version": version,
            "packages": package_versions(["fluidsynth", *(pkg for pkg, _ in SOUNDFONTS.values())]),
            "soundfonts_dir": "/usr/share/sounds",
            "soundfonts": {name: path for name, (_, path) in SOUNDFONTS.items()},
            "folds_by": "instrument: every soundfont's rendering of a GM program is in one "
            "fold, so each fold is tested on instruments unseen in training",
            "folds": {
                fold: [
                    {"soundfont": i.soundfont, "program": i.program, "name": names[i.program]}
                    for i in items
                ]
                for fold, items in plan(scale).items()
            },
            "pitches": [PITCHES[0], PITCHES[-1]],
            "velocities": list(VELOCITIES[scale]),
            "timeline_ms": {"slot": SLOT_MS, "note_on": LEAD_MS, "hold": HOLD_MS},
            "render": {"gain": GAIN, "reverb": False, "chorus": False, "format": "float"},
            "fade_out_s": FADE_S,
            "peak": PEAK,
            "revision": _GENERATOR_REVISION,
        },
    )


def prepare(
    out_dir: Path, scale: str = "smoke", sample_rate: int = 16000, progress: bool = True
) -> Path:
    """The task folder under ``out_dir`` (see TaskShape.prepare); a complete one is reused
    without running fluidsynth."""
    digest = _params_hash(scale, sample_rate)
    return SHAPE.prepare(
        out_dir, scale, digest, lambda folder: _write_folder(folder, scale, sample_rate, progress)
    )
