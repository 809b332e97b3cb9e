"""The one reader of a results folder: what `hear leaderboard`, `report`, `compare` and
`rerun` all see, so that no two of them can disagree on which records a folder holds.

Records are found at any depth (results folders copied into one another included) and
validated as :class:`RunRecord`; a file that cannot be read as one is left out with a
note naming it and why. Of several records of one (model, task) the newest (by its
``created`` time, then the file's) is used, and a note names the ones passed over. Test
predictions are read only when asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from hear_runner.errors import HearError
from hear_runner.results.predictions import FoldPredictions, load_predictions
from hear_runner.results.records import RunRecord, find_records

Predictions = tuple[list[str], list[FoldPredictions]]  # label vocabulary, each fold's


@dataclass
class FoundRecord:
    """One record and the file it was read from (its sidecars lie beside it)."""

    path: Path
    record: RunRecord
    _predictions: Predictions | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        """(model name, task folder): what one leaderboard cell is the newest record of."""
        return self.record.model.name, self.record.task.name

    def predictions(self) -> Predictions:
        """The record's test predictions (the ``.predictions.npz`` beside it), read once."""
        if self._predictions is None:
            name = self.record.predictions_file
            if not name:
                raise HearError(f"{self.path}: the record keeps no test predictions (run it again)")
            sidecar = self.path.parent / name
            try:
                self._predictions = load_predictions(sidecar)
            except (OSError, ValueError, KeyError) as e:
                raise HearError(f"{sidecar}: test predictions not readable ({e})") from None
        return self._predictions


@dataclass
class Results:
    """A results folder as read: the newest record of each (model, task), and notes on the
    files left out and the records passed over."""

    folder: Path
    latest: dict[tuple[str, str], FoundRecord]  # by (model, task), in that order
    superseded: list[FoundRecord]
    notes: list[str]

    def records(self) -> list[FoundRecord]:
        return list(self.latest.values())

    def models(self) -> list[str]:
        return sorted({model for model, _ in self.latest})

    def tasks_of(self, model: str) -> set[str]:
        return {task for m, task in self.latest if m == model}


def read_results(results_dir: Path) -> Results:
    """Read every record under ``results_dir`` once. An absent folder is an error; an empty
    one is not (the caller says what it needed)."""
    if not results_dir.is_dir():
        raise HearError(f"{results_dir}: results folder does not exist")
    found: dict[tuple[str, str], list[FoundRecord]] = {}
    notes = []
    for path, record in find_records(results_dir):
        if isinstance(record, str):
            notes.append(f"{path}: {record}; left out")
            continue
        one = FoundRecord(path, record)
        found.setdefault(one.key, []).append(one)
    latest, superseded = {}, []
    for key, candidates in sorted(found.items()):
        candidates.sort(key=_newest_first)
        newest, *older = candidates
        latest[key] = newest
        superseded += older
        if older:
            notes.append(
                f"{key[0]} · {key[1]}: {len(candidates)} records, the newest "
                f"({newest.record.created}, {newest.path}) is used; passed over: "
                + ", ".join(f"{o.path} ({o.record.created})" for o in older)
            )
    return Results(results_dir, latest, superseded, notes)


def _newest_first(found: FoundRecord) -> tuple[float, float]:
    try:
        created = datetime.fromisoformat(found.record.created).timestamp()
    except ValueError:
        created = 0.0
    return -created, -found.path.stat().st_mtime
