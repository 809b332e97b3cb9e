"""What the embedding store already holds for a (model, task): read from its records
(split.json, batch records), never from the embeddings, and never checked: a run checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from hear_runner.embed.store import SPLIT_FILE
from hear_runner.plan.sizes import TaskSize

StoreState = Literal["unknown", "nothing", "partial", "complete"]


class Stored(BaseModel):
    state: StoreState
    complete_splits: list[str] = []
    clips: int = 0  # clips stored, in complete splits and committed batches
    note: str = ""  # why it is unknown

    def label(self) -> str:
        if self.state == "unknown":
            return f"unknown ({self.note})"
        if self.state == "partial":
            done = f"; complete: {', '.join(self.complete_splits)}" if self.complete_splits else ""
            return f"{self.clips} clips{done}"
        return self.state


def stored(cache_dir: Path, store_folder: str | None, task: TaskSize) -> Stored:
    """What the store under ``cache_dir`` holds of ``task`` for the model in ``store_folder``."""
    if not task.prepared:
        return Stored(state="unknown", note="task not prepared")
    if store_folder is None:
        return Stored(state="unknown", note="model not identified")
    folder = cache_dir / store_folder / f"{task.name}-{task.content_hash}"
    complete, clips = [], 0
    for split, count in task.clips.items():
        if (folder / split / SPLIT_FILE).is_file():
            complete.append(split)
            clips += count
        else:
            clips += sum(_batch_clips(record) for record in (folder / split).glob("batch-*.json"))
    if len(complete) == len(task.clips):
        return Stored(state="complete", complete_splits=complete, clips=clips)
    return Stored(state="partial" if clips else "nothing", complete_splits=complete, clips=clips)


def _batch_clips(record: Path) -> int:
    try:
        return len(json.loads(record.read_text())["clips"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0  # a damaged batch is embedded again
