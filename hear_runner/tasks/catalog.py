"""What tasks exist: those plugins provide and those found on disk, and whether data is here."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from hear_runner.errors import HearError, TaskError
from hear_runner.tasks.folder import Task, find_tasks
from hear_runner.tasks.sources import task_sources


class TaskListing(BaseModel):
    name: str
    plugin: str  # "" for a folder no plugin provides
    suite: str
    domain: str
    embedding_type: str
    prediction_type: str
    split_mode: str
    description: str = ""
    folders: list[str]  # present task folders (one per scale or mode)
    clips: int | None = None  # in the first present folder
    hours: float | None = None

    @property
    def present(self) -> bool:
        return bool(self.folders)


def list_tasks(tasks_dir: Path) -> list[TaskListing]:
    """Plugin tasks (present or not) and every other task folder under ``tasks_dir``."""
    on_disk: dict[str, Task] = {}
    if tasks_dir.is_dir():
        try:
            on_disk = {t.name: t for t in find_tasks(tasks_dir)}
        except TaskError:
            on_disk = {}
    listings = []
    claimed: set[str] = set()
    for source in task_sources():
        folders = [source.folder_name(s) for s in source.scales if source.folder_name(s) in on_disk]
        claimed.update(folders)
        listing = TaskListing(
            name=source.name,
            plugin=source.plugin,
            suite=source.suite,
            domain=source.domain,
            embedding_type=source.embedding_type,
            prediction_type=source.prediction_type,
            split_mode=source.split_mode,
            description=source.description,
            folders=folders,
        )
        listings.append(_with_size(listing, on_disk.get(folders[0]) if folders else None))
    for name, task in sorted(on_disk.items()):
        if name in claimed:
            continue
        m = task.metadata
        listing = TaskListing(
            name=name,
            plugin="",
            suite="",
            domain="",
            embedding_type=m.embedding_type,
            prediction_type=m.prediction_type,
            split_mode=m.split_mode,
            folders=[name],
        )
        listings.append(_with_size(listing, task))
    return listings


def find_listing(tasks_dir: Path, name: str) -> TaskListing:
    listings = list_tasks(tasks_dir)
    for listing in listings:
        if name == listing.name or name in listing.folders:
            return listing
    known = ", ".join(sorted(lst.name for lst in listings)) or "none"
    raise HearError(f"no task named {name!r}; known: {known}")


def _with_size(listing: TaskListing, task: Task | None) -> TaskListing:
    if task is None:
        return listing
    clips = sum(len(task.clips(s)) for s in task.splits)
    duration = task.metadata.sample_duration
    hours = clips * duration / 3600 if duration else None
    return listing.model_copy(update={"clips": clips, "hours": hours})
