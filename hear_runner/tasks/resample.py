"""Other sample rates made from the released 48 kHz audio (soxr HQ, 16-bit PCM).

The HEAR 2021 archives are published at 48 kHz only (other rates cost money to fetch),
so a task at another rate is resampled here, as hear-preprocess would have.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from hear_runner.errors import HearError, one_line
from hear_runner.progress import file_bars

ALLOWED_RATES = (16000, 22050, 32000, 44100, 48000)  # the rates hear-preprocess writes


def resample_folder(folder: Path, sample_rate: int, progress: bool = True) -> Path:
    """Make ``<folder>/<sample_rate>/`` from the highest rate present (soxr HQ, 16-bit PCM).

    Lengths become round(n * new / old), as hear-preprocess's fixed clip lengths expect.
    The new folder is written beside and renamed into place, so it is whole or absent.
    """
    check_rate(sample_rate)
    target = folder / str(sample_rate)
    if target.is_dir():
        return target
    rates = sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())
    if not rates:
        raise HearError(f"{folder}: no <sample_rate>/ audio folder to resample from")
    source_rate = rates[-1]
    source = folder / str(source_rate)
    files = sorted(p.relative_to(source) for p in source.rglob("*.wav") if p.is_file())
    if not files:
        raise HearError(f"{source}: no .wav files to resample")
    staging = folder / f".{sample_rate}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    for parent in sorted({(staging / rel).parent for rel in files}):
        parent.mkdir(parents=True, exist_ok=True)
    description = f"{folder.name}: {source_rate} -> {sample_rate} Hz"
    try:
        with (
            file_bars(progress, transfer=False) as bar,
            ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool,
        ):
            task_id = bar.add_task(description, total=len(files))
            jobs: list[Future[None]] = [
                pool.submit(_resample_file, source / rel, staging / rel, source_rate, sample_rate)
                for rel in files
            ]
            try:
                for job in as_completed(jobs):
                    job.result()
                    bar.advance(task_id)
            except BaseException:
                for job in jobs:  # before the pool's exit waits for the queue to drain
                    job.cancel()
                raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    staging.rename(target)
    return target


def _resample_file(src: Path, dst: Path, source_rate: int, target_rate: int) -> None:
    try:
        audio, rate = sf.read(str(src), dtype="float32", always_2d=True)
    except (RuntimeError, OSError) as e:  # soundfile.LibsndfileError is a RuntimeError
        raise HearError(f"{src}: cannot decode audio: {one_line(e)}") from None
    if rate != source_rate:
        raise HearError(f"{src}: sample rate is {rate} Hz but its folder is {source_rate}")
    n_out = round(len(audio) * target_rate / source_rate)
    if len(audio):
        out = np.asarray(soxr.resample(audio, source_rate, target_rate, "HQ"), np.float32)
    else:
        out = np.zeros((0, audio.shape[1]), np.float32)
    if len(out) > n_out:
        out = out[:n_out]
    elif len(out) < n_out:
        out = np.pad(out, ((0, n_out - len(out)), (0, 0)))
    np.clip(out, -1.0, 1.0, out=out)  # HQ filtering can overshoot; PCM_16 must not wrap
    try:
        sf.write(str(dst), out, target_rate, subtype="PCM_16")
    except (RuntimeError, OSError) as e:
        raise HearError(f"{dst}: cannot write: {one_line(e)}") from None


def check_rate(sample_rate: int) -> None:
    if sample_rate not in ALLOWED_RATES:
        rates = ", ".join(str(r) for r in ALLOWED_RATES)
        raise HearError(f"sample rate {sample_rate} Hz is not one HEAR uses ({rates})")
