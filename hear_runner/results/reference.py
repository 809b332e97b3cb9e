"""Published reference results (``hear leaderboard --reference NAME``): which ones the
plugins provide, and which task folders (at which version) a record must match to be
compared with them.

A record's task is compared with a published table only where its folder name and its
version both equal a released task's: the folder name alone could be reused by a
different preparation, and a score of another version of a task is another measurement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hear_runner.errors import HearError
from hear_runner.specs import ReferenceResults


@dataclass(frozen=True)
class Released:
    """A released task folder as one reference publishes it."""

    reference: str
    folder: str  # the key its scores are published under (Beehive: its first fold's folder)
    version: str
    metric: str
    task_name: str


def lookup(names: Sequence[str]) -> list[ReferenceResults]:
    """The reference results the plugins register under ``names``, in that order."""
    if not names:
        return []  # the plugins' hooks are not called for nothing
    from hear_runner.plugins import collect

    known = {r.name: r for r in collect(ReferenceResults)}
    for name in names:
        if name not in known:
            listed = ", ".join(sorted(known)) or "none: no plugin registers reference results"
            raise HearError(f"--reference {name!r}: no such reference results (known: {listed})")
    return [known[name] for name in dict.fromkeys(names)]


def released_folders(references: Sequence[ReferenceResults]) -> dict[str, Released]:
    """Every task folder a record may hold to be compared, by folder name (a score averaged
    over several folders, as Beehive's, is reached from each of them)."""
    found: dict[str, Released] = {}
    for ref in references:
        for folder, task in ref.tasks.items():
            released = Released(ref.name, folder, task.version, task.metric, task.task_name)
            for each in task.mean_of_folders or (folder,):
                found.setdefault(each, released)
    return found


def released_names(released: dict[str, Released]) -> dict[str, Released]:
    """The same released tasks by task name: a folder of another version is recognized."""
    return {r.task_name: r for r in released.values()}


def version_note(folder: str, version: str, released: Released) -> str:
    """Why a record of a released folder name is shown apart."""
    return (
        f"{folder}: the records are of task version {version}, not the released "
        f"{released.version}: shown apart, not compared with {released.reference}"
    )
