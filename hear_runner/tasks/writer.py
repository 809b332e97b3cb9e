"""Writing a task folder in hear-preprocess layout, all or nothing (public: hear_runner.api).

:func:`write_task_folder` turns clips in any format soundfile reads, with their labels and
splits, into a folder ``hear run`` reads; :func:`read_labels_csv` reads those from a
``file,label,split`` table. Plugins that generate their own audio use the pieces:
:func:`build_folder` builds under a temporary name and renames into place, so an
interrupted run never leaves a folder that looks complete, and its ``.complete`` marker
holds a hash of the generation parameters, so a complete folder is reused as it is.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import soundfile as sf
from pydantic import BaseModel, ConfigDict, Field

from hear_runner.errors import TaskError
from hear_runner.files import atomic_directory
from hear_runner.tasks.audio import fit_length, read_clip, stat_clip
from hear_runner.tasks.folder import METADATA_FILE, TRAINVALTEST, VOCABULARY_FILE

COMPLETE = ".complete"
_FOLD = re.compile(r"^fold\d\d$")


def params_hash(params: Any) -> str:
    """A stable hash of JSON-able generation parameters."""
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()


def is_complete(folder: Path, digest: str) -> bool:
    marker = folder / COMPLETE
    return marker.is_file() and marker.read_text().strip() == digest


def build_folder(out_dir: Path, name: str, digest: str, write: Callable[[Path], None]) -> Path:
    """``out_dir/name``, reused if complete for ``digest``, else written by ``write(tmp)``.

    ``write`` fills a fresh temporary folder; it is swapped in only once ``write`` returns.
    A concurrent build of the same parameters that wins the rename is accepted.
    """
    target = Path(out_dir) / name
    if is_complete(target, digest):
        return target
    try:
        with atomic_directory(target) as staging:
            write(staging)
            (staging / COMPLETE).write_text(digest + "\n")
    except OSError:
        if not is_complete(target, digest):  # not a concurrent build that won the rename
            raise
    return target


def write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """16-bit mono WAV, as hear-preprocess writes.

    Encoded in memory and written at once: libsndfile's many small writes to a file cost
    milliseconds a clip, which dominates generating 100,000 short clips.
    """
    buffer = io.BytesIO()
    sf.write(buffer, audio, sample_rate, subtype="PCM_16", format="WAV")
    path.write_bytes(buffer.getvalue())


def write_split(folder: Path, split: str, labels: Mapping[str, Any]) -> None:
    """``<split>.json``: file name -> labels (label strings, or event dicts)."""
    (folder / f"{split}.json").write_text(json.dumps(labels, indent=1, sort_keys=True) + "\n")


def write_vocabulary(folder: Path, labels: Sequence[str]) -> None:
    """``labelvocabulary.csv``: the labels in column order."""
    (folder / VOCABULARY_FILE).write_text(
        "idx,label\n" + "".join(f"{i},{label}\n" for i, label in enumerate(labels))
    )


def write_metadata(folder: Path, metadata: Mapping[str, Any]) -> None:
    """``task_metadata.json``, with the ``splits`` list hear-preprocess writes (heareval reads)."""
    metadata = dict(metadata)
    if "splits" not in metadata:
        kfold = metadata["split_mode"] != "trainvaltest"
        names = [f"fold{i:02d}" for i in range(metadata["nfolds"])] if kfold else TRAINVALTEST
        metadata["splits"] = list(names)
    (folder / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")


class LabelledClip(BaseModel):
    """One source clip: its audio file (any format soundfile reads), labels and split."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    audio: Path
    labels: tuple[str, ...] = Field(min_length=1)
    split: str  # train | valid | test, or fold00, fold01, ... (at least three folds)


def read_labels_csv(path: Path) -> list[LabelledClip]:
    """Clips from a ``file,label,split`` CSV; ``file`` is relative to the CSV's folder and
    ``label`` may hold several labels separated by ``;`` (a multilabel task)."""
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        raise TaskError(path, "labels file is missing (columns: file,label,split)") from None
    clips = []
    for line, row in enumerate(rows, start=2):
        values = {column: (row.get(column) or "").strip() for column in ("file", "label", "split")}
        for column, value in values.items():
            if not value:
                raise TaskError(path, f"line {line}: empty or missing column", column)
        labels = tuple(label.strip() for label in values["label"].split(";") if label.strip())
        clips.append(LabelledClip(audio=path.parent / values["file"], labels=labels,
                                  split=values["split"]))  # fmt: skip
    if not clips:
        raise TaskError(path, "no clips listed (columns: file,label,split)")
    return clips


def write_task_folder(
    folder: Path,
    clips: Sequence[LabelledClip],
    *,
    task_name: str,
    version: str = "1.0",
    prediction_type: Literal["multiclass", "multilabel"] = "multiclass",
    evaluation: Sequence[str] | None = None,
    sample_rates: Sequence[int] = (16000, 48000),
    sample_duration: float | None = None,
) -> Path:
    """A scene task folder at ``folder`` from ``clips``; returns ``folder``.

    Clips are decoded, mixed to mono, resampled to each of ``sample_rates`` and written as
    16-bit WAV named after their source file (names must be unique in the task); with
    ``sample_duration`` (seconds) each is padded or trimmed to it, as hear-preprocess does.
    Splits train/valid/test make a ``trainvaltest`` task, fold00..foldNN a
    ``presplit_kfold`` one. ``evaluation`` defaults to ``top1_acc`` (multiclass) or
    ``mAP`` (multilabel). A folder already written from the same clips (same files, sizes
    and modification times) and settings is reused.
    """
    splits = sorted({clip.split for clip in clips})
    split_mode, nfolds = _split_mode(folder, splits)
    names = _output_names(folder, clips)
    metadata: dict[str, Any] = {
        "task_name": task_name, "version": version, "embedding_type": "scene",
        "prediction_type": prediction_type, "split_mode": split_mode,
        "sample_duration": sample_duration,
        "evaluation": list(evaluation or (["top1_acc"] if prediction_type == "multiclass"
                                          else ["mAP"])),
        **({"nfolds": nfolds} if nfolds else {}),
    }  # fmt: skip
    if prediction_type == "multiclass" and any(len(clip.labels) != 1 for clip in clips):
        raise TaskError(folder, "a multiclass task needs exactly one label per clip")
    sources = [
        [str(clip.audio), stat_clip(clip.audio.resolve()).to_json(), clip.labels, clip.split]
        for clip in clips
    ]
    digest = params_hash([metadata, sorted(sample_rates), sources])

    def write(tmp: Path) -> None:
        write_metadata(tmp, metadata)
        write_vocabulary(tmp, sorted({label for clip in clips for label in clip.labels}))
        for split in splits:
            write_split(tmp, split, {names[c.audio]: list(c.labels) for c in clips
                                     if c.split == split})  # fmt: skip
        for rate in sample_rates:
            for split in splits:
                (tmp / str(rate) / split).mkdir(parents=True)
            for clip in clips:
                # resolve(): the user named the file, so a link to it is fine.
                audio = read_clip(clip.audio.resolve(), rate)
                if sample_duration:
                    audio = fit_length(audio, round(sample_duration * rate))
                path = tmp / str(rate) / clip.split / names[clip.audio]
                write_wav(path, np.clip(audio, -1, 1), rate)

    return build_folder(folder.parent, folder.name, digest, write)


def _split_mode(folder: Path, splits: list[str]) -> tuple[str, int | None]:
    if splits == sorted(TRAINVALTEST):
        return "trainvaltest", None
    expected = [f"fold{i:02d}" for i in range(len(splits))]
    if len(splits) >= 3 and all(_FOLD.match(s) for s in splits) and splits == expected:
        return "presplit_kfold", len(splits)
    raise TaskError(
        folder,
        f"splits must be train, valid and test, or fold00..foldNN (three or more); got "
        f"{', '.join(splits) or 'none'}",
    )


def _output_names(folder: Path, clips: Sequence[LabelledClip]) -> dict[Path, str]:
    """Each source file's WAV name; two sources of one name would share a clip's labels."""
    names: dict[Path, str] = {}
    owner: dict[str, Path] = {}
    for clip in clips:
        name = f"{clip.audio.stem}.wav"
        if clip.audio in names:
            raise TaskError(folder, f"clip {clip.audio} is listed twice")
        if name in owner:
            raise TaskError(folder, f"clips {owner[name]} and {clip.audio} would both be {name}")
        names[clip.audio], owner[name] = name, clip.audio
    return names
