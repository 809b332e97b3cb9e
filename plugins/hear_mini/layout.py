"""Writing a generated task folder in hear-preprocess layout, all or nothing.

Shared by the mini task generators so that each states only what its clips are: the
folder is built under a temporary name and renamed into place, so an interrupted run
never leaves a folder that looks complete, and ``.complete`` holds a hash of the
generation parameters, so a complete folder is reused without its source material.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from hear_runner.tasks.folder import TRAINVALTEST

COMPLETE = ".complete"


def params_hash(params: Any) -> str:
    """A stable hash of JSON-able generation parameters."""
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()


def is_complete(folder: Path, digest: str) -> bool:
    marker = folder / COMPLETE
    return marker.is_file() and marker.read_text().strip() == digest


def build(out_dir: Path, name: str, digest: str, write: Callable[[Path], None]) -> Path:
    """``out_dir/name``, reused if complete for ``digest``, else written by ``write(tmp)``.

    ``write`` fills a fresh temporary folder; it is swapped in only once ``write`` returns.
    A concurrent build of the same parameters that wins the rename is accepted.
    """
    out_dir = Path(out_dir)
    target = out_dir / name
    if is_complete(target, digest):
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{name}.tmp-{os.getpid()}"
    old = out_dir / f".{name}.old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        write(tmp)
        (tmp / COMPLETE).write_text(digest + "\n")
        if target.exists():  # stale or incomplete: move aside, then swap in
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
        try:
            os.replace(tmp, target)
        except OSError:
            if not is_complete(target, digest):  # not a concurrent build that won
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return target


def write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """16-bit mono WAV, as hear-preprocess writes."""
    sf.write(path, audio, sample_rate, subtype="PCM_16", format="WAV")


def write_split(folder: Path, split: str, labels: Mapping[str, Any]) -> None:
    """``<split>.json``: file name -> labels (label strings, or event dicts)."""
    (folder / f"{split}.json").write_text(json.dumps(labels, indent=1, sort_keys=True) + "\n")


def write_vocabulary(folder: Path, labels: Sequence[str]) -> None:
    (folder / "labelvocabulary.csv").write_text(
        "idx,label\n" + "".join(f"{i},{label}\n" for i, label in enumerate(labels))
    )


def write_metadata(folder: Path, metadata: Mapping[str, Any]) -> None:
    """``task_metadata.json``, with the ``splits`` list hear-preprocess writes (heareval reads)."""
    metadata = dict(metadata)
    if "splits" not in metadata:
        kfold = metadata["split_mode"] != "trainvaltest"
        names = [f"fold{i:02d}" for i in range(metadata["nfolds"])] if kfold else TRAINVALTEST
        metadata["splits"] = list(names)
    (folder / "task_metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")


def run_jobs(
    fn: Callable[..., None], jobs: Sequence[tuple[Any, ...]], description: str, progress: bool
) -> None:
    """``fn(*job)`` for every job on threads (the work is in subprocesses or numpy), with a bar.

    The first failure cancels the jobs not yet started and is raised.
    """
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from rich.progress import Progress

    workers = min(32, (os.cpu_count() or 2) + 2)
    with Progress(disable=not progress) as bar, ThreadPoolExecutor(max_workers=workers) as pool:
        task = bar.add_task(description, total=len(jobs))
        futures = [pool.submit(fn, *job) for job in jobs]
        try:
            for future in as_completed(futures):
                future.result()
                bar.advance(task)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
