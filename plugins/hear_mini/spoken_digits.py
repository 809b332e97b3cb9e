"""mini_spoken_digits: "zero" to "nine" spoken by espeak-ng voices, in hear-preprocess layout.

Voices are disjoint between splits, so the test split measures how well an
embedding generalizes to speakers it was never trained on. Generation is
deterministic (same espeak-ng, same bytes) and takes seconds.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

TASK_NAME = "mini_spoken_digits"
VERSION = "1.0.0"
SCALES = ("smoke", "full")
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SAMPLE_DURATION = 1.0
ESPEAK_RATE = 22050

# (language voice, variant): variants are listed by `espeak-ng --voices=variant`;
# an unknown one silently falls back to the default voice, so only listed ones are used.
_VOICES = {
    "train": [
        ("en", "m1"), ("en", "m2"), ("en", "m3"), ("en", "m4"), ("en", "f1"), ("en", "f2"),
        ("en-us", "m5"), ("en-us", "m6"), ("en-us", "f3"), ("en-gb-x-rp", "m7"),
        ("en-gb-scotland", "f4"), ("en-029", "Alex"),
    ],
    "valid": [("en-us", "m8"), ("en", "f5"), ("en-gb-x-rp", "Andy"), ("en", "Annie")],
    "test": [("en-us", "klatt"), ("en", "croak"), ("en-gb-x-gbclan", "Mike"), ("en-us", "belinda")],
}  # fmt: skip
# Speaking rates (words per minute) and pitches (0-99) per scale.
_PROSODY = {"smoke": [(160, 50)], "full": [(130, 35), (160, 50), (195, 65)]}


def folder_name(scale: str) -> str:
    return f"{TASK_NAME}-{VERSION}-{scale}"


def _plan(scale: str) -> dict[str, list[tuple[str, str, int, int, str]]]:
    """Per split: (voice, variant, speed, pitch, digit) for every clip."""
    return {
        split: [
            (voice, variant, speed, pitch, digit)
            for voice, variant in voices
            for speed, pitch in _PROSODY[scale]
            for digit in DIGITS
        ]
        for split, voices in _VOICES.items()
    }


def _espeak_version() -> str:
    if shutil.which("espeak-ng") is None:
        raise RuntimeError(
            "espeak-ng not found: install it with 'apt-get install espeak-ng' "
            f"to prepare {TASK_NAME}"
        )
    return subprocess.run(
        ["espeak-ng", "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()


def _speak(voice: str, variant: str, speed: int, pitch: int, word: str, rate: int) -> np.ndarray:
    wav = subprocess.run(
        ["espeak-ng", "-v", f"{voice}+{variant}", "-s", str(speed), "-p", str(pitch),
         "--stdout", word],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    audio, source_rate = sf.read(io.BytesIO(wav), dtype="float32")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    loud = np.flatnonzero(np.abs(audio) > 0.02 * max(float(np.abs(audio).max()), 1e-9))
    if len(loud):
        audio = audio[max(loud[0] - int(0.01 * source_rate), 0) :]  # keep a 10 ms lead-in
    audio = soxr.resample(audio, source_rate, rate, "HQ")
    n = int(SAMPLE_DURATION * rate)
    audio = np.pad(audio[:n], (0, max(0, n - len(audio))))
    peak = float(np.abs(audio).max())
    return (audio * (0.9 / peak) if peak > 0 else audio).astype(np.float32)


def _file_name(voice: str, variant: str, speed: int, pitch: int, digit: str) -> str:
    return f"{voice}_{variant}_s{speed}_p{pitch}_{digit}.wav"


def prepare(
    out_dir: Path, scale: str = "smoke", sample_rate: int = 16000, progress: bool = True
) -> Path:
    """Write the task folder under ``out_dir`` and return it; reuse it if already complete."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, not {scale!r}")
    version = _espeak_version()
    plan = _plan(scale)
    params = json.dumps(
        {"plan": plan, "espeak": version, "rate": sample_rate, "v": VERSION}, sort_keys=True
    )
    digest = hashlib.sha256(params.encode()).hexdigest()
    target = out_dir / folder_name(scale)
    marker = target / ".complete"
    if marker.exists() and marker.read_text().strip() == digest:
        return target
    tmp = out_dir / f".{folder_name(scale)}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    jobs = [(split, clip) for split, clips in plan.items() for clip in clips]
    for split in plan:
        (tmp / str(sample_rate) / split).mkdir(parents=True)

    def render(job: tuple[str, tuple[str, str, int, int, str]]) -> None:
        split, (voice, variant, speed, pitch, digit) = job
        audio = _speak(voice, variant, speed, pitch, digit, sample_rate)
        path = tmp / str(sample_rate) / split / _file_name(voice, variant, speed, pitch, digit)
        sf.write(path, audio, sample_rate, subtype="PCM_16")

    from rich.progress import track

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = pool.map(render, jobs)
        label = f"Preparing {TASK_NAME} ({scale})"
        for _ in track(results, total=len(jobs), description=label, disable=not progress):
            pass
    for split, clips in plan.items():
        labels = {_file_name(*clip): [clip[-1]] for clip in clips}
        (tmp / f"{split}.json").write_text(json.dumps(dict(sorted(labels.items())), indent=1))
    (tmp / "labelvocabulary.csv").write_text(
        "idx,label\n" + "".join(f"{i},{d}\n" for i, d in enumerate(DIGITS))
    )
    metadata = {
        "task_name": TASK_NAME,
        "version": VERSION,
        "embedding_type": "scene",
        "prediction_type": "multiclass",
        "split_mode": "trainvaltest",
        "sample_duration": SAMPLE_DURATION,
        "evaluation": ["top1_acc", "mAP"],
        "mode": scale,
        "sample_rates": [sample_rate],
        "generator": {
            "espeak_ng": version,
            "voices": {s: [f"{v}+{var}" for v, var in vs] for s, vs in _VOICES.items()},
            "prosody": _PROSODY[scale],
        },
    }
    (tmp / "task_metadata.json").write_text(json.dumps(metadata, indent=2))
    (tmp / ".complete").write_text(digest + "\n")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target
