"""How big a task is: clips per split and audio seconds, read without decoding any audio.

Only ``task_metadata.json`` and the ``<split>.json`` files are read (plain JSON, counted,
not validated: the run checks them). Audio seconds come from the metadata's
``sample_duration`` when clips have one fixed length (hear-preprocess pads and trims to
it); otherwise (FSD50K's variable clips) from the files' sizes by one ``os.stat`` each,
as 16-bit mono PCM WAV: (bytes - 44-byte header) / (2 x rate). No wav is opened.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, computed_field

from hear_runner.errors import TaskError
from hear_runner.tasks.folder import METADATA_FILE, content_hash, read_metadata, split_names
from hear_runner.tasks.sources import TaskSource

WAV_HEADER_BYTES = 44
PCM16_BYTES = 2

DurationSource = Literal["sample_duration", "file sizes (16-bit PCM)", "not prepared"]


class TaskSize(BaseModel):
    """A task as the plan sees it: prepared (a folder) or only known from its plugin."""

    name: str  # the folder name; the plugin task's name when not prepared
    prepared: bool
    embedding_type: str
    prediction_type: str
    split_mode: str
    task_name: str = ""
    path: str = ""
    content_hash: str = ""  # the store's task key
    clips: dict[str, int] = {}  # per split, in split order
    audio_seconds: dict[str, float] = {}  # per split
    duration_source: DurationSource = "not prepared"

    @property
    def folds(self) -> list[tuple[list[str], str]]:
        """Each training's (train splits, test split), as heareval arranges the folds."""
        splits = list(self.clips)
        if self.split_mode == "trainvaltest" or not splits:
            return [(["train"], "test")]
        k = len(splits)
        return [([s for j, s in enumerate(splits) if j not in (i, (i + 1) % k)], splits[i])
                for i in range(k)]  # fmt: skip

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_clips(self) -> int:
        return sum(self.clips.values())

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_seconds(self) -> float:
        return sum(self.audio_seconds.values())


def folder_size(path: Path) -> TaskSize:
    """Clips and audio seconds of the task folder ``path``."""
    metadata = read_metadata(path / METADATA_FILE)
    splits = split_names(path, metadata)
    clips = {split: _split_files(path / f"{split}.json") for split in splits}
    if metadata.sample_duration:
        seconds = {s: len(files) * metadata.sample_duration for s, files in clips.items()}
        source: DurationSource = "sample_duration"
    else:
        seconds = {s: _wav_seconds(path, s, files) for s, files in clips.items()}
        source = "file sizes (16-bit PCM)"
    return TaskSize(
        name=path.name, prepared=True, embedding_type=metadata.embedding_type,
        prediction_type=metadata.prediction_type, split_mode=metadata.split_mode,
        task_name=metadata.task_name, path=str(path), content_hash=content_hash(path, splits),
        clips={s: len(files) for s, files in clips.items()}, audio_seconds=seconds,
        duration_source=source,
    )  # fmt: skip


def spread_size(
    *, name: str, task_name: str, embedding_type: str, prediction_type: str, split_mode: str,
    clips: dict[str, int], audio_seconds: float,
) -> TaskSize:  # fmt: skip
    """A prepared task known only by its clips per split and its total audio seconds (a
    result record's, a bench row's): the seconds spread over the splits by clips."""
    total = sum(clips.values()) or 1
    return TaskSize(
        name=name, prepared=True, embedding_type=embedding_type, task_name=task_name,
        prediction_type=prediction_type, split_mode=split_mode, clips=clips,
        audio_seconds={split: audio_seconds * n / total for split, n in clips.items()},
    )  # fmt: skip


def source_size(source: TaskSource) -> TaskSize:
    """A plugin task not prepared yet: what its TaskSource says (no clips known)."""
    return TaskSize(
        name=source.name, prepared=False, embedding_type=source.embedding_type,
        prediction_type=source.prediction_type, split_mode=source.split_mode,
        task_name=source.name,
    )  # fmt: skip


def _split_files(path: Path) -> list[str]:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise TaskError(path, "file is missing") from None
    except ValueError as e:
        raise TaskError(path, f"not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise TaskError(path, "expected a JSON object mapping file names to labels")
    return list(data)


def _wav_seconds(path: Path, split: str, files: list[str]) -> float:
    """Audio seconds of a split's clips from their sizes (one scandir, a stat per clip)."""
    rates = sorted(int(p.name) for p in path.iterdir() if p.is_dir() and p.name.isdigit())
    if not rates:
        raise TaskError(path, "no audio folder: expected <sample_rate>/<split>/ (e.g. 16000/train)")
    folder, listed = path / str(rates[0]) / split, set(files)
    try:
        with os.scandir(folder) as entries:
            sizes = {e.name: e.stat().st_size for e in entries if e.name in listed}
    except FileNotFoundError:
        raise TaskError(folder, f"folder is missing, but {split}.json lists clips") from None
    missing = len(files) - len(sizes)
    if missing:
        raise TaskError(folder, f"{missing} listed clips are missing")
    data_bytes = sum(max(size - WAV_HEADER_BYTES, 0) for size in sizes.values())
    return data_bytes / (PCM16_BYTES * rates[0])
