"""Adding a submission pack to a leaderboard site (``hear leaderboard add``).

A site keeps its records as a results folder (``SITE/records``); a pack is added under
``SITE/records/submissions/<model>/``. The pack is checked first (``pack_check``), then
against the site: a task folder's records on the site pin its content hash (another
preparation of the task is another measurement, never ranked beside them) and its test
labels (the pack's predictions carry their own, which its scores were checked against),
and a model already on the site is replaced only when asked. The pack is extracted beside its place
and renamed into it, so a reader of the site sees the whole submission or none; then
every page is rendered again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hear_runner.files import atomic_directory
from hear_runner.names import slug
from hear_runner.results.pack_check import CheckedPack, PackRefused, check_pack, extract_pack
from hear_runner.results.predictions import FoldPredictions
from hear_runner.results.reader import FoundRecord, read_results
from hear_runner.results.reference import lookup
from hear_runner.site.folder import RECORDS, SUBMISSIONS, SiteInfo, open_site
from hear_runner.site.write import SiteWritten, write_site


@dataclass
class Added:
    """What ``add_pack`` did: the model, where its records went, and its tasks."""

    model: str
    folder: Path
    tasks: list[str]
    replaced: bool
    site: SiteWritten


def submission_folder(site_dir: Path, model: str) -> Path:
    return site_dir / RECORDS / SUBMISSIONS / slug(model, default="model")


def add_pack(
    pack: Path, site_dir: Path, replace: bool = False, references: Sequence[str] | None = None
) -> Added:
    """Check ``pack``, check it against the site, add it, and render the site again. A new
    (or empty) folder becomes a site of submissions; ``references`` (None: the site's) are
    the published scores it shows."""
    checked = check_pack(pack)
    lookup(references or [])  # an unknown name fails before anything is written
    if open_site(site_dir) is None:
        site_dir.mkdir(parents=True, exist_ok=True)
        SiteInfo(references=list(references or [])).write(site_dir)
    target = submission_folder(site_dir, checked.index.model)
    on_site = _site_records(site_dir)
    replaced = _check_model(checked, site_dir, target, on_site, replace)
    pins = [f for f in on_site if not _under(f.path, target)]
    _check_content_hashes(checked, site_dir, pins)
    _check_test_labels(checked, site_dir, pins)
    with atomic_directory(target) as staging:
        extract_pack(pack, checked, staging)
    written = write_site(site_dir, references=references)
    return Added(checked.index.model, target, sorted(checked.records), replaced, written)


def _site_records(site_dir: Path) -> list[FoundRecord]:
    """Every record on the site, the newest of each (model, task) and the older ones."""
    folder = site_dir / RECORDS
    if not folder.is_dir():
        return []
    results = read_results(folder)
    return results.records() + results.superseded


def _check_model(
    checked: CheckedPack, site_dir: Path, target: Path, on_site: list[FoundRecord], replace: bool
) -> bool:
    """Whether the pack replaces a submission; refused where the model is on the site and
    --replace was not given, where its records there are not a submission (they are not
    this command's to remove), or where its folder holds another model."""
    model = checked.index.model
    mine = [f for f in on_site if f.record.model.name == model]
    if mine and not replace:
        raise PackRefused(
            f"{checked.name}: model {model} is already on the site {site_dir} "
            f"({mine[0].path.parent}): add it with --replace to replace it"
        )
    elsewhere = [f for f in mine if not _under(f.path, target)]
    if elsewhere:
        raise PackRefused(
            f"{checked.name}: model {model}'s records on the site at {elsewhere[0].path} are "
            f"not a submission: remove them there to replace them"
        )
    others = [f for f in on_site if _under(f.path, target) and f.record.model.name != model]
    if others:
        raise PackRefused(
            f"{checked.name}: {target} holds model {others[0].record.model.name}, not {model}: "
            "rename the model to add it"
        )
    return bool(mine)


def _check_content_hashes(checked: CheckedPack, site_dir: Path, pins: list[FoundRecord]) -> None:
    """Each packed record's task content hash must be the one the site's records of that
    task folder have."""
    pinned: dict[str, set[str]] = {}
    for found in pins:
        pinned.setdefault(found.record.task.name, set()).add(found.record.task.content_hash)
    for task, record in sorted(checked.records.items()):
        other = sorted(pinned.get(task, set()) - {record.task.content_hash})
        if other:
            raise PackRefused(
                f"{checked.name}: {task}: content hash {record.task.content_hash} in the pack, "
                f"{other[0]} on the site {site_dir} (another preparation of the task): refused"
            )


def _check_test_labels(checked: CheckedPack, site_dir: Path, pins: list[FoundRecord]) -> None:
    """The test labels inside the packed predictions (they come with the pack, so its
    scores could be recomputed against labels of its own making) must be the ones the
    site's records of the task hold: the same test files, each with the same labels
    (scene tasks) or true events (event tasks), fold by fold."""
    for task, (vocabulary, folds) in sorted(checked.predictions.items()):
        theirs = next(
            (f for f in pins if f.record.task.name == task and f.record.predictions_file), None
        )
        if theirs is None:
            continue  # the first of this task on the site: nothing to hold it to
        site_vocabulary, site_folds = theirs.predictions()
        truth = {fold.fold: _labels_by_file(site_vocabulary, fold) for fold in site_folds}
        for fold in folds:
            if fold.fold in truth and _labels_by_file(vocabulary, fold) != truth[fold.fold]:
                raise PackRefused(
                    f"{checked.name}: {task}: the test labels in its predictions of fold "
                    f"{fold.fold} are not the task's (as the site's record {theirs.path} has "
                    "them): refused"
                )


def _labels_by_file(vocabulary: list[str], fold: FoldPredictions) -> dict[str, object]:
    """Each test file's true labels by name (scene) or true events (event tasks)."""
    if fold.reference or fold.events:
        return {
            name: sorted(tuple(sorted(event.items())) for event in events)
            for name, events in fold.reference.items()
        }
    return {
        name: frozenset(vocabulary[i] for i in np.flatnonzero(row))
        for name, row in zip(fold.files, fold.targets, strict=True)
    }


def _under(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())
