"""Checking a submission pack before anyone trusts it (``hear submit check``, and every
``hear leaderboard add``), without a site.

A pack comes from someone else: its zip may be hostile and its scores hand-edited. So:
the zip's members must be plain files at safe relative paths, within size limits, and
exactly the files ``pack.json`` lists, each with its sha256; ``pack.json`` must be this
schema at a version this hear-runner reads; every record a valid ``RunRecord`` of the
pack's model; a record of a released HEAR task folder must be of the released version;
and each fold's (and seed's) primary test score is recomputed from the packed
predictions with the task's metric and must equal the record's, as must their mean the
record's ``test_score`` (relative tolerance 1e-6; NaN equals NaN). Any failure is one
line naming the pack and the task or file at fault.
"""

from __future__ import annotations

import io
import json
import math
import stat
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import numpy as np
from pydantic import ValidationError

from hear_runner.errors import HearError, first_field_error
from hear_runner.metrics import get_metric
from hear_runner.results.manifest import RunManifest
from hear_runner.results.pack import (
    INDEX,
    PACK_VERSION,
    SCHEMA,
    PackEntry,
    PackIndex,
    image_labels,
    sha256,
)
from hear_runner.results.predictions import FoldPredictions, load_predictions
from hear_runner.results.reader import Predictions
from hear_runner.results.records import FoldResult, RunRecord
from hear_runner.results.stats import FoldScorer

MAX_MEMBERS = 10_000
MAX_FILE_BYTES = 2 << 30  # one unpacked file (FSD50K's predictions are ~10 MiB)
MAX_TOTAL_BYTES = 16 << 30  # all of them
MAX_INDEX_BYTES = 16 << 20
REL_TOLERANCE = 1e-6
ABS_TOLERANCE = 1e-9  # for scores at 0


class PackRefused(HearError):
    """The pack is unsafe, malformed, or its scores disagree with its predictions."""


@dataclass
class CheckedPack:
    """A pack that passed every check: its index and each task's record."""

    name: str  # how messages name it
    index: PackIndex
    records: dict[str, RunRecord]  # by task folder
    predictions: dict[str, Predictions]  # by task folder: the label vocabulary, each fold's


def check_pack(pack: Path | BinaryIO, name: str | None = None) -> CheckedPack:
    """Every check of the module's docstring; the first failure raises :class:`PackRefused`."""
    label = name or (str(pack) if isinstance(pack, Path) else "pack")
    with _open(pack, label) as archive:
        members = safe_members(archive, label)
        index = _read_index(archive, members, label)
        listed = index.files()
        if set(listed) | {INDEX} != set(members):
            extra = sorted(set(members) - set(listed) - {INDEX})
            missing = sorted(set(listed) - set(members))
            what = f"{extra[0]} is not listed in {INDEX}" if extra else f"{missing[0]} is missing"
            raise PackRefused(f"{label}: {what}: refused")
        contents = {path: _read(archive, members[path], packed.sha256, label)
                    for path, packed in listed.items()}  # fmt: skip
    released = released_versions()
    records, predictions = {}, {}
    for entry in index.entries:
        if entry.task in records:
            raise PackRefused(f"{label}: task {entry.task} is packed twice: refused")
        records[entry.task], predictions[entry.task] = _check_entry(
            label, index.model, entry, contents, released
        )
    return CheckedPack(label, index, records, predictions)


def extract_pack(pack: Path, checked: CheckedPack, folder: Path) -> None:
    """Write the checked pack's files into the empty ``folder``: only the members checked
    safe, each again with the sha256 its index lists (the zip may have changed since)."""
    files = checked.index.files()
    with _open(pack, checked.name) as archive:
        members = safe_members(archive, checked.name)
        if (
            set(members) != set(files) | {INDEX}
            or _read_index(archive, members, checked.name) != checked.index
        ):
            raise PackRefused(f"{checked.name}: changed while it was being added: refused")
        for path, info in sorted(members.items()):
            data = (
                archive.read(info)
                if path == INDEX
                else _read(archive, info, files[path].sha256, checked.name)
            )
            target = folder.joinpath(*PurePosixPath(path).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)


def released_versions() -> dict[str, str]:
    """Each released task folder name and its version, as the plugins' reference results
    (``hear_register_reference_results``: HEAR 2021's from the hear2021 plugin) name them."""
    from hear_runner.plugins import collect
    from hear_runner.results.reference import released_folders
    from hear_runner.specs import ReferenceResults

    return {f: r.version for f, r in released_folders(collect(ReferenceResults)).items()}


@contextmanager
def _open(pack: Path | BinaryIO, label: str) -> Iterator[zipfile.ZipFile]:
    try:
        with zipfile.ZipFile(pack) as archive:
            yield archive
    except FileNotFoundError:
        raise PackRefused(f"{label}: no such file") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as e:
        raise PackRefused(f"{label}: not a readable zip ({e}): refused") from None


def safe_members(archive: zipfile.ZipFile, label: str) -> dict[str, zipfile.ZipInfo]:
    """The zip's members by name, each a plain file at a safe relative path, within the
    size limits: no absolute path, ``..``, backslash or drive, no link or device, no name
    twice."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise PackRefused(f"{label}: {len(infos)} members, over {MAX_MEMBERS}: refused")
    members: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        name = info.filename
        unsafe = (
            name.startswith("/")
            or "\\" in name
            or ":" in name
            or any(part in ("..", ".", "") for part in name.split("/"))
        )
        if unsafe:
            raise PackRefused(f"{label}: member {name!r} is not a safe relative path: refused")
        mode = info.external_attr >> 16
        if info.is_dir() or (mode and not stat.S_ISREG(mode)):
            raise PackRefused(f"{label}: member {name!r} is not a plain file: refused")
        if name in members:
            raise PackRefused(f"{label}: member {name!r} appears twice: refused")
        if info.file_size > MAX_FILE_BYTES:
            raise PackRefused(f"{label}: {name}: {info.file_size} bytes, over the limit: refused")
        total += info.file_size
        members[name] = info
    if total > MAX_TOTAL_BYTES:
        raise PackRefused(f"{label}: {total} bytes unpacked, over {MAX_TOTAL_BYTES}: refused")
    return members


def _read_index(
    archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], label: str
) -> PackIndex:
    if INDEX not in members:
        raise PackRefused(f"{label}: no {INDEX}: not a submission pack")
    if members[INDEX].file_size > MAX_INDEX_BYTES:
        raise PackRefused(f"{label}: {INDEX} is over {MAX_INDEX_BYTES} bytes: refused")
    try:
        raw = json.loads(archive.read(members[INDEX]))
    except (ValueError, zipfile.BadZipFile) as e:
        raise PackRefused(f"{label}: {INDEX}: not readable JSON ({e})") from None
    if not isinstance(raw, dict) or raw.get("schema") != SCHEMA:
        raise PackRefused(f"{label}: {INDEX}: field 'schema' is not {SCHEMA!r}: not a pack")
    version = raw.get("version")
    if not isinstance(version, int) or version > PACK_VERSION:
        raise PackRefused(
            f"{label}: {INDEX}: pack version {version!r}; this hear-runner reads version "
            f"{PACK_VERSION}: upgrade hear-runner"
        )
    try:
        return PackIndex.model_validate(raw)
    except ValidationError as e:
        raise PackRefused(f"{label}: {INDEX}: {first_field_error(e)}") from None


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, expected: str, label: str) -> bytes:
    """The member's bytes (at most its header's size; zipfile checks its CRC), which must
    have the sha256 ``pack.json`` lists."""
    try:
        with archive.open(info) as handle:
            data = handle.read(info.file_size + 1)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise PackRefused(f"{label}: {info.filename}: not readable ({e}): refused") from None
    if len(data) != info.file_size:
        raise PackRefused(f"{label}: {info.filename}: not the size its header says: refused")
    if sha256(data) != expected:
        raise PackRefused(
            f"{label}: {info.filename}: its sha256 is not the one {INDEX} lists (the file "
            "changed after packing): refused"
        )
    return data


def _check_entry(
    label: str, model: str, entry: PackEntry, contents: dict[str, bytes], released: dict[str, str]
) -> tuple[RunRecord, Predictions]:
    path = entry.record.path
    try:
        record = RunRecord.model_validate_json(contents[path])
    except ValidationError as e:
        raise PackRefused(f"{label}: {path}: not a result record: {first_field_error(e)}") from None
    task = record.task.name
    if record.model.name != model or task != entry.task:
        raise PackRefused(
            f"{label}: {path}: a record of {record.model.name} on {task}, where {INDEX} "
            f"lists {model} on {entry.task}: refused"
        )
    _check_layout(label, path, record, entry, contents)
    if task in released and record.task.version != released[task]:
        raise PackRefused(
            f"{label}: {task}: task version {record.task.version} in the record, but "
            f"{task} is released as version {released[task]}: refused"
        )
    engine = record.model.engine
    if entry.image_labels != image_labels(engine) or entry.image_id != engine.get("image_id"):
        raise PackRefused(f"{label}: {task}: image id or labels differ from the record's: refused")
    try:
        vocabulary, folds = load_predictions(io.BytesIO(contents[entry.predictions.path]))
    except (OSError, ValueError, KeyError) as e:
        raise PackRefused(
            f"{label}: {entry.predictions.path}: not readable ({e}): refused"
        ) from None
    computed = check_scores(label, record, vocabulary, folds)
    if entry.heareval_scores:
        _check_heareval(label, record, contents[entry.heareval_scores.path], computed)
    return record, (vocabulary, folds)


def _check_layout(
    label: str, path: str, record: RunRecord, entry: PackEntry, contents: dict[str, bytes]
) -> None:
    """The sidecars lie where the record names them (so the extracted folder reads as one),
    and each manifest is a run manifest that names the record."""
    folder = PurePosixPath(path).parent
    expected = {
        "predictions": (entry.predictions.path, record.predictions_file),
        "heareval scores": (
            entry.heareval_scores.path if entry.heareval_scores else None,
            record.heareval_scores_file,
        ),
    }
    for what, (packed, named) in expected.items():
        if packed != (str(folder / named) if named else None):
            raise PackRefused(f"{label}: {path}: its {what} file is not where the record names it")
    for manifest in entry.manifests:
        try:
            results = RunManifest.model_validate_json(contents[manifest.path]).results
        except ValidationError as e:
            raise PackRefused(f"{label}: {manifest.path}: {first_field_error(e)}") from None
        base = PurePosixPath(manifest.path).parent.parent
        if not any(str(base / r.record) == path for r in results):
            raise PackRefused(f"{label}: {manifest.path}: does not name {path}: refused")


def check_scores(
    label: str, record: RunRecord, labels: list[str], folds: list[FoldPredictions]
) -> list[float]:
    """Each fold's primary test score, recomputed from its predictions, and their mean
    must be the record's (its ``test_score``, ``scores.test`` and ``seed_scores``). The
    recomputed scores, in the order of the record's folds."""
    task, metric = record.task.name, get_metric(record.primary_metric)
    by_key = {(f.fold, f.seed): f for f in folds}
    keys = [(r.fold, r.seed) for r in record.folds]
    if not keys or set(by_key) != set(keys) or len(by_key) != len(folds):
        raise PackRefused(
            f"{label}: {task}: the predictions' folds ({_keys(by_key)}) are not the record's "
            f"({_keys(keys)}): refused"
        )
    with warnings.catch_warnings():  # sklearn's warnings on a label absent from a fold
        warnings.simplefilter("ignore")
        computed = [FoldScorer(by_key[k], labels, metric).score() for k in keys]
    mean = float(np.mean(computed))
    kept_mean = record.scores.get("test", {}).get(metric.name, record.test_score)
    for what, kept in (
        ("test_score", record.test_score),
        (f"scores.test.{metric.name}", kept_mean),
    ):
        if not same_score(kept, mean):
            raise _disagrees(label, task, what, kept, mean, metric.name)
    for result, value in zip(record.folds, computed, strict=True):
        kept = _fold_score(result, metric.name)
        if not same_score(kept, value):
            what = f"fold {result.fold} (seed {result.seed}) test score"
            raise _disagrees(label, task, what, kept, value, metric.name)
    for seed, kept in zip(record.probe.seeds, record.seed_scores, strict=False):
        value = float(np.mean([v for k, v in zip(keys, computed, strict=True) if k[1] == seed]))
        if not same_score(kept, value):
            raise _disagrees(label, task, f"seed {seed} score", kept, value, metric.name)
    return computed


def _check_heareval(label: str, record: RunRecord, data: bytes, computed: list[float]) -> None:
    """heareval's score file holds each fold's ``test_score`` (the first seed's, by test
    split): each must be the score recomputed from the predictions."""
    try:
        scores = json.loads(data)
    except ValueError as e:
        raise PackRefused(f"{label}: {record.task.name}: heareval scores not JSON ({e})") from None
    first_seed = record.probe.seeds[0] if record.probe.seeds else None
    for result, value in zip(record.folds, computed, strict=True):
        if result.seed != first_seed:
            continue
        entry = scores.get(result.test) if isinstance(scores, dict) else None
        kept = entry.get("test_score") if isinstance(entry, dict) else None
        if not isinstance(kept, int | float):
            raise PackRefused(
                f"{label}: {record.task.name}: heareval scores hold no test_score of split "
                f"{result.test}: refused"
            )
        if not same_score(float(kept), value):
            what = f"heareval test_score of {result.test}"
            raise _disagrees(
                label, record.task.name, what, float(kept), value, record.primary_metric
            )


def same_score(a: float, b: float) -> bool:
    """Equal within the tolerance; NaN equals NaN (a score of an absent label, say)."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=REL_TOLERANCE, abs_tol=ABS_TOLERANCE)


def _fold_score(result: FoldResult, metric: str) -> float:
    return result.scores.get("test", {}).get(metric, float("nan"))


def _disagrees(label: str, task: str, what: str, kept: float, computed: float,
               metric: str) -> PackRefused:  # fmt: skip
    digits = 4
    while digits < 12 and f"{kept:.{digits}f}" == f"{computed:.{digits}f}":
        digits += 1  # enough digits to show the two apart
    return PackRefused(
        f"{label}: {task}: {what} {kept:.{digits}f} in the record, {computed:.{digits}f} from "
        f"its predictions ({metric}): refused"
    )


def _keys(keys: Iterable[tuple[str, int]]) -> str:
    return ", ".join(f"{fold}/seed {seed}" for fold, seed in sorted(keys)) or "none"
