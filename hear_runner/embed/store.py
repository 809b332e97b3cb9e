"""The embedding store: every finished batch on disk at once, so no run ever redoes one.

Layout under the cache folder (a platform cache directory unless ``--cache-dir``)::

    <model>-<key>/model.json             what the key stands for, and the model's hello
    <model>-<key>/<task>-<hash>/<split>/
        .lock                            held by the run using the split (flock)
        batch-<first clip>.npy/.json     finished batches (the .json, written last, commits)
        embeddings.npy, frames.npz       the assembled split, memory-mappable
        split.json                       written last: the split is complete

The key hashes the model's build (image id, or module and interpreter), the contract
version, the model options and weights path; the task folder carries its name and a
hash of its metadata and labels.

Nothing is served that does not match what it claims to be:

- Audio. Each clip is read once to be embedded; its size, mtime_ns and the sha256 of
  the bytes decoded are recorded beside its rows (batch record, then split.json). Every
  run stats every clip (no reading) before using the store: a clip whose size or mtime
  changed is stale, and only the batches holding stale clips are embedded again (a
  complete split keeps its unchanged clips' rows as one committed batch); a clip that
  vanished is an error naming it, before any model starts. A rewrite that keeps both
  size and mtime_ns is not seen (the recorded hashes allow a full check; none is made).
- Stored files. The record that commits a file holds the sha256 of its bytes (a batch's
  .json for its .npy; split.json for embeddings.npy and frames.npz). A file that is
  missing, truncated, reordered or unreadable, or a record that does not parse, is named
  in a one-line warning, dropped and embedded again: never scored. split.json's checks
  read embeddings.npy whole, once per run that uses the split (about 1 s per GB from the
  page cache; the probe then reads it all anyway).

Concurrency: a run holds an exclusive ``flock`` on the split's ``.lock`` while it checks,
embeds, assembles or loads that split (one split at a time, never the whole model run),
so a second run on the same store waits (and says so), then finds the split complete.
Every file is written under a temporary name unique to its writer and renamed into
place (hear_runner.files), so a run stopped at any point (Ctrl-C, a full disk, the host
killed) leaves only whole committed batches behind, and the next run picks up from
them. ``hear cache remove`` does not take the locks: not while a run uses the store.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
from platformdirs import user_cache_path
from pydantic import ValidationError

from hear_runner.contract.messages import Hello
from hear_runner.contract.wire import CONTRACT_VERSION
from hear_runner.embed.split import SplitEmbeddings
from hear_runner.files import TEMP_SUFFIX, atomic_output, atomic_save, atomic_write
from hear_runner.locks import file_lock
from hear_runner.names import slug
from hear_runner.tasks.audio import Stamp
from hear_runner.tasks.folder import Task

Overwrite = Literal["only-missing", "always", "never"]
OVERWRITE_CHOICES = ("only-missing", "always", "never")
MODEL_FILE = "model.json"
SPLIT_FILE = "split.json"
EMBEDDINGS_FILE = "embeddings.npy"
FRAMES_FILE = "frames.npz"
LOCK_FILE = ".lock"

Say = Callable[[str], None]


def default_cache_dir() -> Path:
    return Path(os.environ.get("HEAR_CACHE_DIR") or user_cache_path("hear-runner") / "embeddings")


@dataclass(frozen=True)
class ModelKey:
    """What makes two runs' embeddings interchangeable."""

    name: str  # as the user named the model
    identity: str  # image id, or module @ interpreter
    options: tuple[tuple[str, Any], ...] = ()
    model_path: str | None = None
    max_clip_seconds: float | None = None  # chunking changes embeddings

    @property
    def digest(self) -> str:
        fields = {
            "identity": self.identity,
            "contract": CONTRACT_VERSION,
            "options": dict(self.options),
            "model_path": self.model_path,
        }
        if self.max_clip_seconds:
            fields["max_clip_seconds"] = self.max_clip_seconds
        blob = json.dumps(fields, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def folder(self) -> str:
        return f"{slug(self.name, default='model')}-{self.digest}"


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


class StoreProblem(Exception):
    """A stored file or record is not what the record committing it says (it gets dropped)."""


@dataclass(frozen=True)
class Batch:
    """A committed batch: its clips (indices in the split), their rows, what they came from."""

    record: Path  # batch-<first clip>.json; the rows are beside it in .npy
    clips: list[int]
    rows_per_clip: list[int]
    frame_ms: list[float] | None  # event tasks: the time of every row
    clip_seconds: list[float]  # audio seconds of each clip, as embedded
    seconds: float  # model time
    stamps: list[Stamp]  # each clip's file, as read
    sha256: str  # of the rows file's bytes

    @property
    def rows_file(self) -> Path:
        return self.record.with_suffix(".npy")

    @classmethod
    def read(cls, record: Path) -> Batch:
        try:
            data = json.loads(record.read_text())
            batch = cls(
                record, [int(c) for c in data["clips"]], [int(r) for r in data["rows_per_clip"]],
                data["frame_ms"], [float(s) for s in data["clip_seconds"]], float(data["seconds"]),
                [Stamp.from_json(v) for v in data["audio"]], str(data["rows_sha256"]),
            )  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise StoreProblem(f"{record}: unreadable batch record ({_reason(e)})") from None
        lengths = {len(batch.rows_per_clip), len(batch.clip_seconds), len(batch.stamps)}
        if lengths != {len(batch.clips)}:
            raise StoreProblem(f"{record}: the batch record's lists differ in length")
        return batch

    def to_json(self) -> str:
        return json.dumps(
            {
                "clips": self.clips,
                "rows_per_clip": self.rows_per_clip,
                "frame_ms": self.frame_ms,
                "clip_seconds": self.clip_seconds,
                "audio_seconds": sum(self.clip_seconds),
                "seconds": self.seconds,
                "audio": [s.to_json() for s in self.stamps],
                "rows_sha256": self.sha256,
            }
        )


@dataclass(frozen=True)
class Summary:
    """split.json: the assembled split's clips, where their audio came from, its files' sums."""

    files: list[str]
    rows: int
    dim: int
    seconds: float  # model time
    stamps: list[Stamp]
    clip_seconds: list[float]
    sha256: dict[str, str]  # embeddings.npy and frames.npz

    @classmethod
    def read(cls, path: Path) -> Summary:
        try:
            data = json.loads(path.read_text())
            summary = cls(
                [str(f) for f in data["files"]], int(data["rows"]), int(data["dim"]),
                float(data["seconds"]), [Stamp.from_json(v) for v in data["audio"]],
                [float(s) for s in data["clip_seconds"]], dict(data["sha256"]),
            )  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise StoreProblem(f"{path}: unreadable split record ({_reason(e)})") from None
        if not len(summary.files) == len(summary.stamps) == len(summary.clip_seconds):
            raise StoreProblem(f"{path}: the split record's lists differ in length")
        return summary


class SplitStore:
    """One (model, task, split) folder. Use it under :meth:`locked`, after :meth:`reconcile`."""

    def __init__(self, path: Path, say: Say | None = None) -> None:
        self.path = path
        self.say = say or _warn  # one-line notices: a dropped file, waiting for another run
        self.changed: set[int] = set()  # clips found changed on disk by this object's checks
        self._checked: Summary | None = None  # split.json as reconcile last checked it

    @property
    def complete(self) -> bool:
        return (self.path / SPLIT_FILE).is_file()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """This run alone uses the split meanwhile (another run waits, and says so)."""
        notice = f"{self.path}: another run is using this split; waiting for it"
        with file_lock(self.path / LOCK_FILE, lambda: self.say(notice)):
            yield

    def reconcile(self, files: list[str], stamps: list[Stamp]) -> list[int]:
        """Keep only what matches the clips' files now (``stamps``, a stat each) and the
        checksums of its records; return the clips dropped because their audio changed.

        A complete split with changed clips turns back into one committed batch of its
        unchanged clips, so only the changed ones are embedded again.
        """
        _remove(self.path.glob(f".*{TEMP_SUFFIX}"))  # under the lock: writers that died
        summary = self._checked = self._summary(files)
        if summary is not None:
            _remove(self.path.glob("batch-*"))  # an assembly cut short: split.json supersedes
            changed = [i for i, (old, new) in enumerate(zip(summary.stamps, stamps, strict=True))
                       if not old.same_file(new)]  # fmt: skip
            if changed:
                self._unassemble(summary, changed)
                self._checked = None
        else:
            self._remove_assembled()
            changed, seen = [], set[int]()
            for batch in self._verified_batches(len(files)):
                moved = [c for c, s in zip(batch.clips, batch.stamps, strict=True)
                         if not s.same_file(stamps[c])]  # fmt: skip
                if moved or seen & set(batch.clips):
                    _remove([batch.record, batch.rows_file])
                changed += moved
                seen |= set(batch.clips)
        self.changed.update(changed)
        if changed:
            self.say(
                f"{self.path}: {len(changed)} clip(s) changed on disk since they were embedded "
                f"(first {files[changed[0]]}): embedding them again"
            )
        return changed

    def batches(self) -> list[Batch]:
        """The committed batches (as :meth:`reconcile` left them, or this run wrote them)."""
        return [Batch.read(record) for record in sorted(self.path.glob("batch-*.json"))]

    def finished_clips(self) -> set[int]:
        return {clip for batch in self.batches() for clip in batch.clips}

    def write_batch(
        self,
        clips: list[int],
        embeddings: np.ndarray | list[np.ndarray],
        rows_per_clip: list[int],
        frame_ms: np.ndarray | None,
        clip_seconds: list[float],
        seconds: float,
        stamps: list[Stamp],
    ) -> None:
        """Commit one batch: its rows first, then the record that names them and their sum.

        ``embeddings`` is the batch's rows, or a list of consecutive parts of them (written
        one after another, never joined in memory).
        """
        stem = self.path / f"batch-{clips[0]:08d}"
        rows_file = stem.with_suffix(".npy")
        parts = embeddings if isinstance(embeddings, list) else [embeddings]
        shape = (sum(len(p) for p in parts), parts[0].shape[1])
        sha256 = _save_rows(rows_file, shape, parts)
        batch = Batch(
            stem.with_suffix(".json"), clips, rows_per_clip,
            None if frame_ms is None else frame_ms.tolist(), clip_seconds, seconds, stamps, sha256,
        )  # fmt: skip
        try:
            atomic_write(batch.record, batch.to_json())
        except BaseException:
            rows_file.unlink(missing_ok=True)  # never committed: no orphan left
            raise

    def assemble(self, files: list[str], event: bool) -> None:
        """Write the split in clip order, a batch at a time, then mark it complete."""
        batches = sorted(self.batches(), key=lambda b: b.clips[0])
        where: dict[int, tuple[int, int, int]] = {}  # clip -> (batch, first row, rows)
        for b, batch in enumerate(batches):
            row = 0
            for clip, rows in zip(batch.clips, batch.rows_per_clip, strict=True):
                where[clip] = (b, row, rows)
                row += rows
        missing = [i for i in range(len(files)) if i not in where]
        assert not missing, f"clips {missing[:5]} have no batch"
        dim = int(np.load(batches[0].rows_file, mmap_mode="r").shape[1])
        runs = _runs(where[clip] for clip in range(len(files)))
        loaded: dict[int, np.ndarray] = {}

        def rows_of(b: int) -> np.ndarray:
            if b not in loaded:
                if len(loaded) >= 16:  # a few batches mapped at a time
                    loaded.pop(next(iter(loaded)))
                loaded[b] = np.load(batches[b].rows_file, mmap_mode="r")
            return loaded[b]

        counts = [where[clip][2] for clip in range(len(files))]
        sha256 = _save_rows(
            self.path / EMBEDDINGS_FILE, (sum(counts), dim), (rows_of(b)[a:z] for b, a, z in runs)
        )
        loaded.clear()
        frame_clip = np.repeat(np.arange(len(files)), counts) if event else np.empty(0, np.int64)
        frame_ms = np.empty(0, np.float64)
        if event:
            times = [np.asarray(batch.frame_ms, np.float64) for batch in batches]
            frame_ms = np.concatenate([times[b][a:z] for b, a, z in runs])
        frames = self.path / FRAMES_FILE
        atomic_save(frames, lambda h: np.savez(h, frame_clip=frame_clip, frame_ms=frame_ms))
        stamps = {c: s for batch in batches for c, s in zip(batch.clips, batch.stamps, strict=True)}
        lengths = {c: s for b in batches for c, s in zip(b.clips, b.clip_seconds, strict=True)}
        summary = {
            "files": files,
            "rows": sum(counts),
            "dim": dim,
            "audio_seconds": sum(lengths.values()),
            "seconds": sum(b.seconds for b in batches),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "audio": [stamps[i].to_json() for i in range(len(files))],
            "clip_seconds": [lengths[i] for i in range(len(files))],
            "sha256": {EMBEDDINGS_FILE: sha256, FRAMES_FILE: _sha256(frames)},
        }
        atomic_write(self.path / SPLIT_FILE, json.dumps(summary))
        self._checked = None
        for batch in batches:  # the record first: a batch is never half there
            _remove([batch.record, batch.rows_file])

    def load(self) -> SplitEmbeddings:
        """The complete split (as :meth:`reconcile` checked it), its embeddings memory-mapped."""
        summary = self._checked or Summary.read(self.path / SPLIT_FILE)
        with np.load(self.path / FRAMES_FILE) as frames:
            frame_clip, frame_ms = frames["frame_clip"], frames["frame_ms"]
        return SplitEmbeddings(
            split=self.path.name,
            files=summary.files,
            embeddings=np.load(self.path / EMBEDDINGS_FILE, mmap_mode="r"),
            audio_seconds=sum(summary.clip_seconds),
            seconds=summary.seconds,
            frame_clip=frame_clip,
            frame_ms=frame_ms,
            cached=True,
            clips_from_store=len(summary.files),
        )

    def clear(self) -> None:
        """Remove everything stored for the split (the lock stays: it may be held)."""
        self._checked = None
        _remove(p for p in self.path.glob("*") if p.name != LOCK_FILE)
        _remove(p for p in self.path.glob(".*") if p.name != LOCK_FILE)

    def _summary(self, files: list[str]) -> Summary | None:
        """split.json, if present and every file it commits is there with its checksum."""
        path = self.path / SPLIT_FILE
        if not path.is_file():
            return None
        try:
            summary = Summary.read(path)
            if summary.files != files:
                raise StoreProblem(f"{path}: lists other clips than the task's split file")
            for name in (EMBEDDINGS_FILE, FRAMES_FILE):
                _verify(self.path / name, summary.sha256.get(name))
        except StoreProblem as e:
            self.say(f"{e}; the split is dropped and embedded again")
            self._remove_assembled()
            return None
        return summary

    def _verified_batches(self, n_clips: int) -> Iterator[Batch]:
        """Committed batches whose record parses and whose rows match its checksum; the
        others are named and removed, as are rows no record committed."""
        for stray in self.path.glob("batch-*.npy"):
            if not stray.with_suffix(".json").is_file():
                stray.unlink()
        for record in sorted(self.path.glob("batch-*.json")):
            try:
                batch = Batch.read(record)
                if not all(0 <= c < n_clips for c in batch.clips):
                    raise StoreProblem(f"{record}: names clips the split does not have")
                _verify(batch.rows_file, batch.sha256)
            except StoreProblem as e:
                self.say(f"{e}; the batch is dropped and embedded again")
                _remove([record, record.with_suffix(".npy")])
                continue
            yield batch

    def _unassemble(self, summary: Summary, changed: list[int]) -> None:
        """Turn the split back into one committed batch of its unchanged clips' rows."""
        dropped = set(changed)
        keep = [i for i in range(len(summary.files)) if i not in dropped]
        if keep:
            embeddings = np.load(self.path / EMBEDDINGS_FILE, mmap_mode="r")
            with np.load(self.path / FRAMES_FILE) as frames:
                frame_clip, frame_ms = frames["frame_clip"], frames["frame_ms"]
            event = len(frame_clip) > 0
            counts = np.bincount(frame_clip, minlength=len(summary.files)) if event else None
            rows = [1] * len(summary.files) if counts is None else counts.tolist()
            starts = np.concatenate([[0], np.cumsum(rows)]).tolist()
            runs = _runs((0, starts[i], rows[i]) for i in keep)
            stem = self.path / f"batch-{keep[0]:08d}"
            shape = (sum(rows[i] for i in keep), summary.dim)
            sha256 = _save_rows(
                stem.with_suffix(".npy"), shape, (embeddings[a:z] for _, a, z in runs)
            )
            del embeddings
            times = np.concatenate([frame_ms[a:z] for _, a, z in runs]).tolist() if event else None
            batch = Batch(
                stem.with_suffix(".json"), keep, [rows[i] for i in keep], times,
                [summary.clip_seconds[i] for i in keep],
                summary.seconds * len(keep) / len(summary.files),  # model time, pro rata
                [summary.stamps[i] for i in keep], sha256,
            )  # fmt: skip
            atomic_write(batch.record, batch.to_json())
        self._remove_assembled()

    def _remove_assembled(self) -> None:
        """The assembled split, split.json first (so it is never complete without its files)."""
        _remove(self.path / name for name in (SPLIT_FILE, EMBEDDINGS_FILE, FRAMES_FILE))


class EmbeddingStore:
    def __init__(self, root: Path, say: Say | None = None) -> None:
        self.root = root
        self.say = say or _warn

    def task_dir(self, key: ModelKey, task: Task) -> Path:
        return self.root / key.folder / f"{task.name}-{task.content_hash}"

    def split(self, key: ModelKey, task: Task, split: str, say: Say | None = None) -> SplitStore:
        return SplitStore(self.task_dir(key, task) / split, say or self.say)

    def model_info(self, key: ModelKey) -> dict[str, Any] | None:
        """What was recorded about the model when it last ran (hello, engine provenance);
        None when absent or unreadable (then the model starts, and it is written again)."""
        path = self.root / key.folder / MODEL_FILE
        if not path.is_file():
            return None
        info = _read_json(path)
        if info is None or not _valid_hello(info):
            self.say(f"{path}: unreadable; the model will be started to write it again")
            return None
        return info

    def save_model_info(self, key: ModelKey, info: dict[str, Any]) -> None:
        folder = self.root / key.folder
        folder.mkdir(parents=True, exist_ok=True)
        record = {"name": key.name, "identity": key.identity, "options": dict(key.options),
                  "model_path": key.model_path, "contract": CONTRACT_VERSION, **info}  # fmt: skip
        atomic_write(folder / MODEL_FILE, json.dumps(record, indent=2, default=str))

    def entries(self) -> list[dict[str, Any]]:
        """Every cached split: model, task, split, rows, bytes, whether complete."""
        found = []
        for model in sorted(p for p in self.root.glob("*") if (p / MODEL_FILE).is_file()):
            name = (_read_json(model / MODEL_FILE) or {}).get("name", model.name)
            for split_dir in sorted(p for p in model.glob("*/*") if p.is_dir()):
                summary = _read_json(split_dir / SPLIT_FILE)
                found.append(
                    {
                        "model": name,
                        "model_folder": model.name,
                        "task": split_dir.parent.name,
                        "split": split_dir.name,
                        "complete": summary is not None,
                        "rows": summary.get("rows") if summary else None,
                        "bytes": sum(f.stat().st_size for f in split_dir.iterdir() if f.is_file()),
                        "batches": sum(1 for _ in split_dir.glob("batch-*.json")),
                    }
                )
        return found

    def remove(self, model: str | None = None, task: str | None = None) -> list[Path]:
        """Remove cached task folders matching a model name and/or task folder name."""
        removed = []
        for model_dir in sorted(p for p in self.root.glob("*") if p.is_dir()):
            info = model_dir / MODEL_FILE
            name = (_read_json(info) or {}).get("name", model_dir.name)
            if model and model not in (name, model_dir.name):
                continue
            targets = [model_dir] if not task else [
                p for p in model_dir.glob("*") if p.is_dir() and p.name.rsplit("-", 1)[0] == task
            ]  # fmt: skip
            for target in targets:
                shutil.rmtree(target)
                removed.append(target)
        return removed


def _runs(places: Iterable[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """(batch, first row, rows) of consecutive clips, merged into (batch, start, stop)
    where they follow each other in one batch: a few large copies, not one per clip."""
    runs: list[tuple[int, int, int]] = []
    for b, first, rows in places:
        if runs and runs[-1][0] == b and runs[-1][2] == first:
            runs[-1] = (b, runs[-1][1], first + rows)
        else:
            runs.append((b, first, first + rows))
    return runs


class _Hashing:
    """A binary file that hashes what is written through it."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle, self.digest = handle, hashlib.sha256()

    def write(self, data: Any) -> int:
        self.digest.update(data)
        return self.handle.write(data)


def _save_rows(path: Path, shape: tuple[int, int], pieces: Iterable[np.ndarray]) -> str:
    """A float32 .npy of ``shape`` written atomically from ``pieces`` in order and hashed as
    it is written (no second read); its sha256. A full disk is an OutputError naming ``path``."""
    with atomic_output(path) as handle:
        out = _Hashing(handle)
        header = {"descr": "<f4", "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(out, header)  # type: ignore[arg-type]
        rows = 0
        for piece in pieces:
            block = np.ascontiguousarray(piece, dtype="<f4")
            out.write(block.data)
            rows += len(block)
        if rows != shape[0]:
            raise AssertionError(f"{path}: {rows} rows written, {shape[0]} expected")
    return out.digest.hexdigest()


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _verify(path: Path, sha256: str | None) -> None:
    if not path.is_file():
        raise StoreProblem(f"{path}: missing")
    if _sha256(path) != sha256:
        raise StoreProblem(f"{path}: contents differ from the checksum its record holds")


def _valid_hello(info: dict[str, Any]) -> bool:
    try:
        Hello.model_validate(info["hello"])
    except (KeyError, ValidationError):
        return False
    return "provenance" in info


def _read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``; None if it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _remove(paths: Iterable[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _reason(error: Exception) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
