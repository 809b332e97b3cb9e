"""What a probe learns from: each split's embeddings and targets, and the task's folds.

The same problem comes from a run (a task folder and the embeddings just computed)
or from an embeddings folder heareval wrote; the probe stage does not know which.
Splits are held once: training gathers batches from the split arrays themselves
rather than concatenating them, and predictions are made in chunks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hear_runner.embed.split import SplitEmbeddings
from hear_runner.errors import HearError
from hear_runner.events import Events, frame_targets, reference_events
from hear_runner.tasks.folder import Fold, Task
from hear_runner.tasks.metadata import TaskMetadata

#: Bytes of embeddings checked or predicted at a time: bounds the working memory beside a split.
CHUNK_BYTES = 8 * 2**20


@dataclass
class ProbeSplit:
    """One split: embeddings (n_rows, D) and multi-hot targets (n_rows, n_labels).

    Event splits also carry each row's clip and time, and the labelled events.
    """

    name: str
    embeddings: np.ndarray
    targets: np.ndarray
    files: list[str] = field(default_factory=list)
    frame_clip: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    frame_ms: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    reference: Events = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.embeddings)

    @property
    def chunk_rows(self) -> int:
        return max(64, CHUNK_BYTES // (4 * max(1, self.embeddings.shape[1])))

    def chunks(self) -> Iterator[np.ndarray]:
        """The rows a chunk at a time, each chunk a (writable) copy in memory."""
        step = self.chunk_rows
        for start in range(0, len(self.embeddings), step):
            yield np.array(self.embeddings[start : start + step], dtype=np.float32)


@dataclass
class ProbeProblem:
    """A task's labels, folds and embedded splits; ``source`` names it in messages."""

    source: Path
    metadata: TaskMetadata
    labels: list[str]
    folds: list[Fold]
    splits: dict[str, ProbeSplit]

    @property
    def event(self) -> bool:
        return self.metadata.embedding_type == "event"

    @property
    def dim(self) -> int:
        return int(next(iter(self.splits.values())).embeddings.shape[1])

    @classmethod
    def from_task(cls, task: Task, embedded: dict[str, SplitEmbeddings]) -> ProbeProblem:
        splits = {}
        for name, e in embedded.items():
            if task.metadata.embedding_type == "event":
                splits[name] = ProbeSplit(
                    name,
                    e.embeddings,
                    frame_targets(task, name, e),
                    e.files,
                    e.frame_clip,
                    e.frame_ms,
                    reference_events(task, name),
                )
            else:
                splits[name] = ProbeSplit(name, e.embeddings, task.targets(name), e.files)
        problem = cls(task.path, task.metadata, task.vocabulary, task.folds, splits)
        problem.check()
        return problem

    def check(self) -> None:
        """Every split finite and of one width; errors name the split and the row."""
        widths = {s.embeddings.shape[1] for s in self.splits.values()}
        if len(widths) > 1:
            raise HearError(
                f"{self.source}: splits have different embedding sizes: "
                + ", ".join(f"{s.name} {s.embeddings.shape[1]}" for s in self.splits.values())
            )
        for split in self.splits.values():
            if len(split.targets) != len(split):
                raise HearError(
                    f"{self.source}: split {split.name!r} has {len(split)} embedding rows "
                    f"but {len(split.targets)} target rows"
                )
            row = first_nonfinite_row(split)
            if row is not None:
                where = ""
                if split.files and len(split.frame_clip):
                    where = f" (file {split.files[split.frame_clip[row]]}, "
                    where += f"{split.frame_ms[row]:g} ms)"
                elif split.files:
                    where = f" (file {split.files[row]})"
                raise HearError(
                    f"{self.source}: split {split.name!r}, row {row}{where}: "
                    "embedding has NaN or Inf values"
                )


def first_nonfinite_row(split: ProbeSplit) -> int | None:
    offsets = range(0, len(split), split.chunk_rows)
    for offset, chunk in zip(offsets, split.chunks(), strict=False):
        bad = np.flatnonzero(~np.isfinite(chunk).all(axis=1))
        if len(bad):
            return offset + int(bad[0])
    return None


class Rows:
    """Several splits read as one, without concatenating them."""

    def __init__(self, parts: Sequence[ProbeSplit]) -> None:
        self.parts = list(parts)
        self.offsets = np.cumsum([0] + [len(p) for p in self.parts])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def take(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings, targets) of the rows in ``index``, in the order given."""
        if len(self.parts) == 1:
            part = self.parts[0]
            return np.asarray(part.embeddings[index], np.float32), part.targets[index]
        which = np.searchsorted(self.offsets, index, side="right") - 1
        x = np.empty((len(index), self.parts[0].embeddings.shape[1]), np.float32)
        y = np.empty((len(index), self.parts[0].targets.shape[1]), np.float32)
        for i, part in enumerate(self.parts):
            mask = which == i
            if mask.any():
                local = index[mask] - self.offsets[i]
                x[mask] = part.embeddings[local]
                y[mask] = part.targets[local]
        return x, y

    def targets(self) -> np.ndarray:
        return np.concatenate([p.targets for p in self.parts])
