"""Read a task folder written by hear-preprocess, as it is.

Layout: ``task_metadata.json``, ``labelvocabulary.csv`` (``idx,label``),
``<split>.json`` (file name -> labels) and ``<sample_rate>/<split>/<file>``.
Every problem is a TaskError naming the file and, where there is one, the field.

Task folders may come from anywhere, so their audio stays inside them: a split's
keys are plain file names, rate and split folders must resolve inside the task
folder, and a clip must be a regular file, never a symlink. hear-preprocess writes
no links and ``hear tasks download`` refuses them, and a clip that is never a link
is opened with O_NOFOLLOW in one call, with no window between resolving and
opening. (The task folder itself may be a link: the user named it.)
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
from pydantic import ValidationError

from hear_runner.errors import TaskError
from hear_runner.tasks.metadata import TaskMetadata

METADATA_FILE = "task_metadata.json"
VOCABULARY_FILE = "labelvocabulary.csv"
TRAINVALTEST = ("train", "valid", "test")

#: How many file names an error or warning lists before giving only the count.
FIRST = 3


@dataclass(frozen=True)
class Fold:
    """One train/valid/test arrangement of a task's splits."""

    name: str
    train: tuple[str, ...]
    valid: str
    test: str


@dataclass(frozen=True)
class Event:
    """A labelled interval of an event task, in milliseconds."""

    label: str
    start: float
    end: float


@dataclass(frozen=True)
class Clip:
    """One audio file of a split: its labels, and for event tasks its events."""

    file: str
    labels: tuple[str, ...]
    events: tuple[Event, ...] = ()


class Task:
    """A hear-preprocess task folder; identified by the folder's name, as heareval does."""

    def __init__(self, path: Path, audio: bool = True) -> None:
        """``audio=False`` reads the labels only (as in heareval's embeddings folders)."""
        self.path = path
        self.name = path.name
        self.metadata = read_metadata(path / METADATA_FILE)
        self._splits = split_names(path, self.metadata)
        self.vocabulary = _read_vocabulary(path / VOCABULARY_FILE)
        self.sample_rates = sorted(
            int(p.name) for p in path.iterdir() if p.is_dir() and p.name.isdigit()
        )
        if audio and not self.sample_rates:
            raise TaskError(
                path, "no audio folder: expected <sample_rate>/<split>/ (e.g. 16000/train)"
            )
        self._clips = {split: self._read_split(split) for split in self.splits}
        self._audio_dirs: dict[tuple[int, str], Path] = {}
        #: Problems that do not stop a run; the CLI prints them once, before any model starts.
        self.warnings = [w for w in (self._shared_clips(),) if w]

    @property
    def splits(self) -> tuple[str, ...]:
        """The split files: train/valid/test, or fold00..foldNN for k-fold tasks."""
        return self._splits

    @property
    def folds(self) -> list[Fold]:
        """What to train, select and test on, as heareval does.

        k-fold: fold i is tested, fold i+1 (mod k) validates, the others train.
        """
        if self.metadata.split_mode == "trainvaltest":
            return [Fold("test", ("train",), "valid", "test")]
        k = len(self._splits)
        return [
            Fold(
                self._splits[i],
                tuple(s for j, s in enumerate(self._splits) if j not in (i, (i + 1) % k)),
                self._splits[(i + 1) % k],
                self._splits[i],
            )
            for i in range(k)
        ]

    def clips(self, split: str) -> list[Clip]:
        return self._clips[split]

    def source_rate(self, model_rate: int) -> int:
        """The folder to read for a model: its own rate if present, else the highest."""
        return model_rate if model_rate in self.sample_rates else self.sample_rates[-1]

    def audio_path(self, split: str, file: str, rate: int) -> Path:
        """Where a clip is; its folder is checked (once) to resolve inside the task folder."""
        return self._audio_dir(rate, split) / file

    def _audio_dir(self, rate: int, split: str) -> Path:
        folder = self._audio_dirs.get((rate, split))
        if folder is None:
            folder = self.path / str(rate) / split
            root, real = os.path.realpath(self.path), os.path.realpath(folder)
            if os.path.commonpath([root, real]) != root:
                raise TaskError(folder, f"resolves to {real}, outside the task folder")
            self._audio_dirs[(rate, split)] = folder
        return folder

    def check_audio(self) -> None:
        """Every listed clip is a regular file in its folder, at every rate present.

        Run before any model starts, so a damaged folder fails in seconds rather than
        hours into a run, and a FIFO or a link is never opened. Every rate folder is
        checked: the rate a model reads is known only from its hello, and a run may
        hold models of several rates. One ``os.scandir`` per folder gives names and
        types without a stat per file (about 0.1 s for 100,000 clips).
        """
        for rate in self.sample_rates:
            for split in self.splits:
                self._check_folder(rate, split)

    def _check_folder(self, rate: int, split: str) -> None:
        folder = self._audio_dir(rate, split)
        listed = f"{split}.json"
        try:
            with os.scandir(folder) as entries:
                found = {e.name: e for e in entries}
        except FileNotFoundError:
            raise TaskError(folder, f"folder is missing, but {listed} lists clips") from None
        except NotADirectoryError:
            raise TaskError(folder, "expected a folder of audio files") from None
        missing = []
        for clip in self.clips(split):
            entry = found.get(clip.file)
            if entry is None:
                missing.append(clip.file)
            elif not entry.is_file(follow_symlinks=False):
                _not_regular(folder / clip.file, entry, listed)
        if len(missing) == 1:
            raise TaskError(folder / missing[0], f"audio file is missing (listed in {listed})")
        if missing:
            raise TaskError(
                folder, f"{len(missing)} listed clips are missing (first: {_first(missing)})"
            )

    def _shared_clips(self) -> str | None:
        """A clip listed in two splits (or folds) is probed on what it was trained on."""
        splits_of: dict[str, list[str]] = {}
        for split in self.splits:
            for clip in self.clips(split):
                splits_of.setdefault(clip.file, []).append(split)
        shared = sorted((f, s) for f, s in splits_of.items() if len(s) > 1)
        if not shared:
            return None
        first = "; ".join(f"{f} in {', '.join(s)}" for f, s in shared[:FIRST])
        return (
            f"{self.path}: {len(shared)} clip(s) are listed in more than one split, so the "
            f"probe may be scored on clips it was trained on (first: {first})"
        )

    def targets(self, split: str) -> np.ndarray:
        """Multi-hot targets (n_clips, n_labels), float32, in vocabulary order."""
        index = {label: i for i, label in enumerate(self.vocabulary)}
        clips = self.clips(split)
        targets = np.zeros((len(clips), len(self.vocabulary)), dtype=np.float32)
        for row, clip in enumerate(clips):
            for label in clip.labels:
                targets[row, index[label]] = 1.0
        return targets

    @cached_property
    def content_hash(self) -> str:
        """Hash of the metadata, vocabulary and split files: changes when labels change."""
        return content_hash(self.path, self.splits)

    def _read_split(self, split: str) -> list[Clip]:
        path = self.path / f"{split}.json"
        data = read_json(path)
        if not isinstance(data, dict):
            raise TaskError(path, "expected a JSON object mapping file names to labels")
        known = set(self.vocabulary)
        clips = []
        for file, labels in sorted(data.items()):
            _check_plain_name(path, file)
            if not isinstance(labels, list):
                raise TaskError(path, "expected a list of labels", file)
            if self.metadata.embedding_type == "event":
                events = tuple(_read_event(path, file, i, e) for i, e in enumerate(labels))
                names = tuple(sorted({e.label for e in events}))
            else:
                events = ()
                names = tuple(str(label) for label in labels)
            for name in names:
                if name not in known:
                    raise TaskError(path, f"label {name!r} is not in {VOCABULARY_FILE}", file)
            single = self.metadata.embedding_type == "scene"
            if single and self.metadata.prediction_type == "multiclass" and len(names) != 1:
                raise TaskError(
                    path, f"a multiclass clip needs exactly one label, has {len(names)}", file
                )
            clips.append(Clip(file, names, events))
        if not clips:
            raise TaskError(path, "split has no clips")
        return clips


def split_names(path: Path, metadata: TaskMetadata) -> tuple[str, ...]:
    """The split files of the task folder ``path``: train/valid/test, or fold00..foldNN."""
    if metadata.split_mode == "trainvaltest":
        return TRAINVALTEST
    nfolds = metadata.nfolds
    found = sorted(p.stem for p in path.glob("fold[0-9][0-9].json"))
    if nfolds is None:
        nfolds = len(found)
    if nfolds < 3:
        raise TaskError(
            path / METADATA_FILE,
            f"a k-fold task needs at least 3 folds (fold00.json ...), found {len(found)}",
            "nfolds",
        )
    return tuple(f"fold{i:02d}" for i in range(nfolds))


def content_hash(path: Path, splits: tuple[str, ...]) -> str:
    """Hash of a task folder's metadata, vocabulary and split files (the store's task key)."""
    digest = hashlib.sha256()
    for name in (METADATA_FILE, VOCABULARY_FILE, *(f"{s}.json" for s in splits)):
        digest.update(name.encode() + b"\0" + (path / name).read_bytes())
    return digest.hexdigest()[:16]


def task_folders(tasks_dir: Path) -> list[Path]:
    """``tasks_dir`` when it is a task folder, else the task folders in it (none if missing)."""
    if (tasks_dir / METADATA_FILE).exists():
        return [tasks_dir]
    # Task folders directly here, or inside an extracted release tarball's root.
    patterns = ("*", "tasks/*", "hear-*/tasks/*")
    return sorted({p.parent for pat in patterns for p in tasks_dir.glob(f"{pat}/{METADATA_FILE}")})


def find_tasks(tasks_dir: Path, names: list[str] | None = None) -> list[Task]:
    """Task folders under ``tasks_dir`` (or ``tasks_dir`` itself), optionally by name."""
    return [Task(folder) for folder in find_task_folders(tasks_dir, names)]


def find_task_folders(tasks_dir: Path, names: list[str] | None = None) -> list[Path]:
    """The folders :func:`find_tasks` reads (an unknown name is an error listing the known)."""
    if not tasks_dir.is_dir():
        raise TaskError(tasks_dir, "tasks directory does not exist")
    folders = task_folders(tasks_dir)
    if not folders:
        raise TaskError(tasks_dir, f"no task folders (no */{METADATA_FILE}) here")
    if names:
        by_name = {f.name: f for f in folders}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise TaskError(
                tasks_dir,
                f"no task named {', '.join(missing)}; found: {', '.join(sorted(by_name))}",
            )
        folders = [by_name[n] for n in names]
    return folders


def _read_event(path: Path, file: str, index: int, event: Any) -> Event:
    """An event label, ``{"label", "start", "end"}`` in milliseconds, with start <= end."""
    field = f"{file}[{index}]"
    if not isinstance(event, dict) or not {"label", "start", "end"} <= set(event):
        raise TaskError(path, "an event needs 'label', 'start' and 'end' (milliseconds)", field)
    try:
        start, end = float(event["start"]), float(event["end"])
    except (TypeError, ValueError):
        raise TaskError(path, "event 'start' and 'end' must be numbers", field) from None
    if not 0 <= start <= end:
        raise TaskError(path, f"event times out of order: start {start} ms, end {end} ms", field)
    return Event(str(event["label"]), start, end)


def _check_plain_name(path: Path, file: str) -> None:
    """A split's key names a file in its own folder: no path, so nothing outside is read."""
    if not file or file in (".", "..") or any(c in file for c in "/\\\0"):
        raise TaskError(
            path,
            "not a plain file name (no '/', '\\', '..' or NUL): clips live in <rate>/<split>/",
            file if file.isprintable() else repr(file),
        )


def _not_regular(path: Path, entry: os.DirEntry[str], listed: str) -> NoReturn:
    """A listed clip that is a link, folder, FIFO or device: named, and never opened."""
    if entry.is_symlink():
        kind = f"a symlink to {os.readlink(path)}"
    else:
        mode = entry.stat(follow_symlinks=False).st_mode
        kind = (
            "a folder" if stat.S_ISDIR(mode)
            else "a FIFO" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "not a regular file"
        )  # fmt: skip
    raise TaskError(path, f"is {kind} (listed in {listed}); clips must be regular files")


def _first(names: list[str]) -> str:
    return ", ".join(names[:FIRST]) + (", ..." if len(names) > FIRST else "")


def read_json(path: Path) -> Any:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise TaskError(path, "file is missing") from None

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        """json keeps the last of two equal keys; here that is an error, not a lost label."""
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise TaskError(path, "key appears twice (JSON keeps only the last)", key)
            seen[key] = value
        return seen

    try:
        return json.loads(text, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as e:
        raise TaskError(
            path, f"not valid JSON (line {e.lineno}, column {e.colno}): {e.msg}"
        ) from None


def read_metadata(path: Path) -> TaskMetadata:
    data = read_json(path)
    if not isinstance(data, dict):
        raise TaskError(path, "expected a JSON object")
    try:
        return TaskMetadata.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise TaskError(path, first["msg"], field) from None


def _read_vocabulary(path: Path) -> list[str]:
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        raise TaskError(path, "file is missing") from None
    labels: dict[int, str] = {}
    for line, row in enumerate(rows, start=2):
        try:
            idx = int(row["idx"])
            label = str(row["label"])
        except (KeyError, TypeError, ValueError):
            raise TaskError(
                path, f"line {line}: expected columns idx,label with an integer idx"
            ) from None
        if idx in labels:
            raise TaskError(path, f"line {line}: idx {idx} appears twice")
        labels[idx] = label
    if sorted(labels) != list(range(len(labels))) or not labels:
        raise TaskError(path, "idx must run 0..n-1 over at least one label")
    return [labels[i] for i in range(len(labels))]
