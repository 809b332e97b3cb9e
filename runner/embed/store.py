"""The embedding store: every finished batch on disk at once, so no run ever redoes one.

Layout under the cache folder (a platform cache directory unless ``--cache-dir``)::

    <model>-<key>/model.json             what the key stands for, and the model's hello
    <model>-<key>/<task>-<hash>/<split>/
        batch-<first clip>.npy/.json     finished batches (the .json, written last, commits)
        embeddings.npy, frames.npz       the assembled split, memory-mappable
        split.json                       written last: the split is complete

The key hashes the model's build (image id, or module and interpreter), the contract
version, the model options and weights path; the task folder carries its name and a
hash of its metadata and labels. Files are written to a temporary name and renamed,
so a run stopped at any point (Ctrl-C, the container or the host killed) leaves only
whole batches behind, and the next run picks up from them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from platformdirs import user_cache_path

from runner.contract.wire import CONTRACT_VERSION
from runner.embed.pipeline import SplitEmbeddings
from runner.tasks.folder import Task

Overwrite = Literal["only-missing", "always", "never"]
OVERWRITE_CHOICES = ("only-missing", "always", "never")
MODEL_FILE = "model.json"
SPLIT_FILE = "split.json"


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
        slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.name).strip("_")
        return f"{slug or 'model'}-{self.digest}"


class SplitStore:
    """One (model, task, split) folder."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def complete(self) -> bool:
        return (self.path / SPLIT_FILE).is_file()

    def batches(self) -> Iterator[dict[str, Any]]:
        """Each committed batch: clip indices, rows per clip, seconds, and its rows' file."""
        for meta in sorted(self.path.glob("batch-*.json")):
            batch = json.loads(meta.read_text())
            batch["rows_file"] = meta.with_suffix(".npy")
            yield batch

    def finished_clips(self) -> set[int]:
        return {clip for batch in self.batches() for clip in batch["clips"]}

    def write_batch(
        self,
        clips: list[int],
        embeddings: np.ndarray,
        rows_per_clip: list[int],
        frame_ms: np.ndarray | None,
        audio_seconds: float,
        seconds: float,
    ) -> None:
        """Commit one batch: its rows first, then the record that names them."""
        self.path.mkdir(parents=True, exist_ok=True)
        stem = self.path / f"batch-{clips[0]:08d}"
        _atomic_save(stem.with_suffix(".npy"), embeddings)
        record = {
            "clips": clips,
            "rows_per_clip": rows_per_clip,
            "frame_ms": None if frame_ms is None else frame_ms.tolist(),
            "audio_seconds": audio_seconds,
            "seconds": seconds,
        }
        _atomic_write(stem.with_suffix(".json"), json.dumps(record))

    def assemble(self, files: list[str], event: bool) -> None:
        """Write the split in clip order, a batch at a time, then mark it complete."""
        batches = sorted(self.batches(), key=lambda b: b["clips"][0])
        where: dict[int, tuple[int, int, int]] = {}  # clip -> (batch, first row, rows)
        for b, batch in enumerate(batches):
            row = 0
            for clip, rows in zip(batch["clips"], batch["rows_per_clip"], strict=True):
                where[clip] = (b, row, rows)
                row += rows
        missing = [i for i in range(len(files)) if i not in where]
        assert not missing, f"clips {missing[:5]} have no batch"
        total = sum(rows for _, _, rows in where.values())
        dim = int(np.load(batches[0]["rows_file"], mmap_mode="r").shape[1])
        tmp = self.path / ".embeddings.npy.tmp"
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(total, dim))
        frame_clip = np.empty(total if event else 0, np.int64)
        frame_ms = np.empty(total if event else 0, np.float64)
        loaded: dict[int, np.ndarray] = {}
        row = 0
        for clip in range(len(files)):
            b, first, rows = where[clip]
            if b not in loaded:
                if len(loaded) >= 16:  # a few batches mapped at a time
                    loaded.pop(next(iter(loaded)))
                loaded[b] = np.load(batches[b]["rows_file"], mmap_mode="r")
            out[row : row + rows] = loaded[b][first : first + rows]
            if event:
                frame_clip[row : row + rows] = clip
                frame_ms[row : row + rows] = batches[b]["frame_ms"][first : first + rows]
            row += rows
        out.flush()
        del out, loaded
        os.replace(tmp, self.path / "embeddings.npy")
        with tempfile.NamedTemporaryFile(dir=self.path, suffix=".npz", delete=False) as handle:
            np.savez(handle, frame_clip=frame_clip, frame_ms=frame_ms)
        os.replace(handle.name, self.path / "frames.npz")
        summary = {
            "files": files,
            "rows": total,
            "dim": dim,
            "audio_seconds": sum(b["audio_seconds"] for b in batches),
            "seconds": sum(b["seconds"] for b in batches),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        _atomic_write(self.path / SPLIT_FILE, json.dumps(summary))
        for batch in batches:
            batch["rows_file"].unlink()
            batch["rows_file"].with_suffix(".json").unlink()

    def load(self) -> SplitEmbeddings:
        """The complete split, its embeddings memory-mapped."""
        summary = json.loads((self.path / SPLIT_FILE).read_text())
        frames = np.load(self.path / "frames.npz")
        return SplitEmbeddings(
            split=self.path.name,
            files=summary["files"],
            embeddings=np.load(self.path / "embeddings.npy", mmap_mode="r"),
            audio_seconds=summary["audio_seconds"],
            seconds=summary["seconds"],
            frame_clip=frames["frame_clip"],
            frame_ms=frames["frame_ms"],
            cached=True,
        )


class EmbeddingStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def task_dir(self, key: ModelKey, task: Task) -> Path:
        return self.root / key.folder / f"{task.name}-{task.content_hash}"

    def split(self, key: ModelKey, task: Task, split: str) -> SplitStore:
        return SplitStore(self.task_dir(key, task) / split)

    def model_info(self, key: ModelKey) -> dict[str, Any] | None:
        """What was recorded about the model when it last ran (hello, engine provenance)."""
        path = self.root / key.folder / MODEL_FILE
        return json.loads(path.read_text()) if path.is_file() else None

    def save_model_info(self, key: ModelKey, info: dict[str, Any]) -> None:
        folder = self.root / key.folder
        folder.mkdir(parents=True, exist_ok=True)
        record = {"name": key.name, "identity": key.identity, "options": dict(key.options),
                  "model_path": key.model_path, "contract": CONTRACT_VERSION, **info}  # fmt: skip
        _atomic_write(folder / MODEL_FILE, json.dumps(record, indent=2, default=str))

    def entries(self) -> list[dict[str, Any]]:
        """Every cached split: model, task, split, rows, bytes, whether complete."""
        found = []
        for model in sorted(p for p in self.root.glob("*") if (p / MODEL_FILE).is_file()):
            name = json.loads((model / MODEL_FILE).read_text()).get("name", model.name)
            for split_dir in sorted(p for p in model.glob("*/*") if p.is_dir()):
                store = SplitStore(split_dir)
                summary = (split_dir / SPLIT_FILE).read_text() if store.complete else None
                found.append(
                    {
                        "model": name,
                        "model_folder": model.name,
                        "task": split_dir.parent.name,
                        "split": split_dir.name,
                        "complete": store.complete,
                        "rows": json.loads(summary)["rows"] if summary else None,
                        "bytes": sum(f.stat().st_size for f in split_dir.iterdir()),
                        "batches": sum(1 for _ in split_dir.glob("batch-*.json")),
                    }
                )
        return found

    def remove(self, model: str | None = None, task: str | None = None) -> list[Path]:
        """Remove cached task folders matching a model name and/or task folder name."""
        removed = []
        for model_dir in sorted(p for p in self.root.glob("*") if p.is_dir()):
            info = model_dir / MODEL_FILE
            name = json.loads(info.read_text()).get("name") if info.is_file() else model_dir.name
            if model and model not in (name, model_dir.name):
                continue
            targets = [model_dir] if not task else [
                p for p in model_dir.glob("*") if p.is_dir() and p.name.rsplit("-", 1)[0] == task
            ]  # fmt: skip
            for target in targets:
                shutil.rmtree(target)
                removed.append(target)
        return removed


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _atomic_save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.npy")
    np.save(tmp, np.ascontiguousarray(array, dtype=np.float32))
    os.replace(tmp, path)
