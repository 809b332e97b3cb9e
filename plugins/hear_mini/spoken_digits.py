"""mini_spoken_digits: "zero" to "nine" spoken by espeak-ng voices, in hear-preprocess layout.

Voices are disjoint between splits, so the test split measures how well an embedding
generalizes to speakers it never saw in training. Generation needs only the espeak-ng
Debian package, is deterministic (same espeak-ng, same bytes) and takes seconds.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from hear_mini import layout
from hear_mini.shapes import SPOKEN_DIGITS

SHAPE = SPOKEN_DIGITS
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SAMPLE_DURATION = SHAPE.sample_duration
PEAK = 0.9
# Bump when the audio processing changes, so complete folders from older code are rebuilt.
_GENERATOR_REVISION = 1
_MISSING_ESPEAK = (
    f"espeak-ng not found: install it with 'apt-get install espeak-ng' to prepare {SHAPE.name}"
)

# (language, variant) per split; each variant (the speaker) is in exactly one split.
# Variants must be listed by `espeak-ng --voices=variant`: an unknown one silently falls
# back to the default voice (prepare checks). `caleb` and `klatt6` are left out because
# they render the same audio as `klatt`; `Marco`, `RicishayMax*` and `AnxiousAndy` speak
# too slowly to fit one second. The first entries of each split form the smoke scale.
_VOICES: dict[str, tuple[tuple[str, str], ...]] = {
    "train": (
        ("en", "m1"), ("en-us", "f1"), ("en-gb-x-rp", "m3"), ("en", "f2"),
        ("en-us", "klatt2"), ("en-gb-scotland", "m4"), ("en-us", "f4"), ("en", "grandpa"),
        ("en-029", "Alex"), ("en-us", "Annie"), ("en", "klatt3"), ("en-gb-x-gbclan", "m2"),
        # full scale only
        ("en-us", "adam"), ("en", "benjamin"), ("en-gb-x-rp", "linda"), ("en-us", "david"),
        ("en", "aunty"), ("en-gb-scotland", "edward"), ("en-us", "iven"), ("en", "steph2"),
        ("en-029", "john"), ("en-us", "Andrea"), ("en", "whisper"), ("en-gb-x-gbcwmd", "max"),
    ),
    "valid": (
        ("en-us", "m5"), ("en", "f3"), ("en-gb-x-rp", "klatt4"), ("en-us", "steph"),
        # full scale only
        ("en", "robert"), ("en-us", "Alicia"), ("en-gb-scotland", "Michael"), ("en", "klatt5"),
    ),
    "test": (
        ("en", "m6"), ("en-us", "f5"), ("en-gb-x-rp", "klatt"), ("en-us", "croak"),
        # full scale only
        ("en", "belinda"), ("en-us", "travis"), ("en-gb-scotland", "whisperf"), ("en", "Mike"),
    ),
}  # fmt: skip
# (words per minute, pitch 0-99): "full" renders every voice with each; "smoke" gives the
# i-th voice of a split the (i mod 3)-th, so it still varies speed and pitch.
_PROSODIES = ((140, 35), (175, 50), (210, 65))
_SMOKE_VOICES = {"train": 12, "valid": 4, "test": 4}


@dataclass(frozen=True)
class Setting:
    """One espeak-ng voice setting: a speaker (language + variant) at a speed and pitch."""

    language: str
    variant: str
    speed: int
    pitch: int

    @property
    def voice(self) -> str:
        return f"{self.language}+{self.variant}"

    def file_name(self, digit: str) -> str:
        return f"{self.language}_{self.variant}_s{self.speed}_p{self.pitch}_{digit}.wav"


folder_name = SHAPE.folder_name


def settings(scale: str) -> dict[str, list[Setting]]:
    """The voice settings of each split at ``scale``."""
    SHAPE.check_scale(scale)
    if scale == "full":
        return {
            split: [Setting(lang, var, s, p) for lang, var in voices for s, p in _PROSODIES]
            for split, voices in _VOICES.items()
        }
    return {
        split: [
            Setting(lang, var, *_PROSODIES[i % len(_PROSODIES)])
            for i, (lang, var) in enumerate(voices[: _SMOKE_VOICES[split]])
        ]
        for split, voices in _VOICES.items()
    }


def _params_hash(plan: dict[str, list[Setting]], sample_rate: int) -> str:
    """What the audio depends on, hashed without running espeak-ng (its version is not in
    it, so a complete folder is reused where espeak-ng is missing or was upgraded)."""
    params = SHAPE.hashed(
        _GENERATOR_REVISION,
        sample_rate,
        plan={split: [asdict(s) for s in items] for split, items in plan.items()},
        digits=DIGITS,
    )
    return layout.params_hash(params)


def _espeak(*args: str) -> bytes:
    try:
        done = subprocess.run(["espeak-ng", *args], capture_output=True, check=False)
    except FileNotFoundError:
        raise RuntimeError(_MISSING_ESPEAK) from None
    if done.returncode != 0:
        error = done.stderr.decode(errors="replace").strip()
        raise RuntimeError(f"espeak-ng {' '.join(args)} failed ({done.returncode}): {error}")
    return done.stdout


def check_espeak(plan: dict[str, list[Setting]], task: str = SHAPE.name) -> str:
    """espeak-ng's version, after checking that it has every variant the plan uses."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError(_MISSING_ESPEAK)
    listed = set(re.findall(r"!v/(\S+)", _espeak("--voices=variant").decode()))
    missing = sorted({s.variant for items in plan.values() for s in items} - listed)
    if missing:
        raise RuntimeError(
            f"espeak-ng lacks the voice variants {', '.join(missing)} (see "
            f"'espeak-ng --voices=variant'); {task} needs espeak-ng >= 1.51"
        )
    # "eSpeak NG text-to-speech: 1.51  Data at: <path>": keep the version, not the path,
    # so the metadata (and the runner's task hash) do not depend on the machine.
    banner = _espeak("--version").decode().strip()
    found = re.search(r"text-to-speech:\s*(\S+)", banner)
    return found.group(1) if found else banner


def render(
    setting: Setting, word: str, sample_rate: int, duration: float = SAMPLE_DURATION
) -> np.ndarray:
    """``word`` spoken, starting near 0 s, exactly ``duration`` seconds long, peak at PEAK."""
    wav = _espeak(
        "-v", setting.voice, "-s", str(setting.speed), "-p", str(setting.pitch), "--stdout", word
    )
    audio, rate = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    # Trim the leading silence: the first 5 ms frame within 40 dB of the loudest, less 10 ms.
    hop = max(1, rate // 200)
    frames = audio[: len(audio) // hop * hop].reshape(-1, hop)
    energy = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    if len(energy) and energy.max() > 0:
        onset = int(np.argmax(energy >= 0.01 * energy.max())) * hop
        audio = audio[max(0, onset - rate // 100) :]
    if rate != sample_rate:
        audio = soxr.resample(audio, rate, sample_rate, "HQ")
    n = round(duration * sample_rate)
    audio = np.pad(audio[:n], (0, max(0, n - len(audio))))
    peak = float(np.abs(audio).max())
    return (audio * (PEAK / peak) if peak > 0 else audio).astype(np.float32)


def _write_folder(
    folder: Path, plan: dict[str, list[Setting]], sample_rate: int, scale: str, progress: bool
) -> None:
    """Render every clip into ``folder`` and write the hear-preprocess metadata files."""

    version = check_espeak(plan)
    jobs = [(split, s, digit) for split, items in plan.items() for s in items for digit in DIGITS]
    for split in plan:
        (folder / str(sample_rate) / split).mkdir(parents=True)

    def render_clip(split: str, setting: Setting, digit: str) -> None:
        audio = render(setting, digit, sample_rate)
        path = folder / str(sample_rate) / split / setting.file_name(digit)
        layout.write_wav(path, audio, sample_rate)

    layout.run_jobs(render_clip, jobs, SHAPE.progress_label(scale), progress)

    for split, items in plan.items():
        layout.write_split(folder, split, {s.file_name(d): [d] for s in items for d in DIGITS})
    layout.write_vocabulary(folder, DIGITS)
    metadata = SHAPE.metadata(
        scale,
        sample_rate,
        generator={
            "tool": "espeak-ng",
            "espeak_ng_version": version,
            "revision": _GENERATOR_REVISION,
            "voices": {split: sorted({s.voice for s in items}) for split, items in plan.items()},
            "settings": {split: [asdict(s) for s in items] for split, items in plan.items()},
            "words": list(DIGITS),
            "peak": PEAK,
        },
    )
    layout.write_metadata(folder, metadata)


def prepare(
    out_dir: Path, scale: str = "smoke", sample_rate: int = 16000, progress: bool = True
) -> Path:
    """The task folder under ``out_dir`` (see TaskShape.prepare); a complete one is reused
    without running espeak-ng."""
    plan = settings(scale)
    return SHAPE.prepare(
        out_dir,
        scale,
        _params_hash(plan, sample_rate),
        lambda tmp: _write_folder(tmp, plan, sample_rate, scale, progress),
    )
