"""Submission packs: one model's results in one file a leaderboard site can check and add.

A pack (``model.hear.zip``) holds ``pack.json`` (:class:`PackIndex`) and, under
``records/``, the newest record of each task of the model with its test predictions,
heareval's score file and the run manifests that name it, at the paths they had in the
results folder: the extracted ``records/`` is a results folder as ``read_results`` reads
one. ``pack.json`` lists each file with its sha256 and each record's image id and
labels. Its bytes depend only on the records (entries sorted, fixed timestamps, the
pack's ``created`` the newest record's), so packing the same records twice gives the same
file. Checking a pack is ``hear_runner.results.pack_check``'s.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hear_runner import __version__
from hear_runner.errors import HearError
from hear_runner.files import atomic_write
from hear_runner.results.manifest import find_manifests
from hear_runner.results.reader import FoundRecord, read_results

SCHEMA: Literal["hear-submission"] = "hear-submission"
PACK_VERSION = 1
INDEX = "pack.json"
RECORDS = "records"  # the results folder inside the pack
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip header holds: no packing time leaks in


class PackedFile(BaseModel):
    """A file of the pack: its path in the zip and its sha256."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    sha256: str = Field(pattern="^[0-9a-f]{64}$")


class PackEntry(BaseModel):
    """One task of the pack: the model's record of it and the files that go with it."""

    model_config = ConfigDict(extra="forbid")

    task: str  # the task folder name, as the record names it
    record: PackedFile
    predictions: PackedFile
    heareval_scores: PackedFile | None = None
    manifests: list[PackedFile] = []  # the run manifests that name this record
    image_id: str | None = None  # an image model's, from the record's engine provenance
    image_labels: dict[str, str] = {}


class PackIndex(BaseModel):
    """``pack.json``: what the pack holds, for one model."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    pack_schema: Literal["hear-submission"] = Field(default=SCHEMA, alias="schema")
    version: int = PACK_VERSION
    model: str
    runner_version: str  # the hear-runner that packed it
    created: str  # the newest record's time (not the packing time: same records, same bytes)
    entries: list[PackEntry]

    def files(self) -> dict[str, PackedFile]:
        """Every file the index lists, by path (a manifest naming several records, once)."""
        found: dict[str, PackedFile] = {}
        for entry in self.entries:
            listed = [entry.record, entry.predictions, *entry.manifests]
            for packed in listed + ([entry.heareval_scores] if entry.heareval_scores else []):
                found[packed.path] = packed
        return found


def build_pack(results_dir: Path, model: str) -> tuple[PackIndex, bytes]:
    """The pack of ``model``'s newest record of each task under ``results_dir``: its index
    and the zip's bytes. A record without test predictions is refused (they are what a site
    recomputes the scores from)."""
    results = read_results(results_dir)
    found = [f for (name, _), f in results.latest.items() if name == model]
    if not found:
        there = ", ".join(results.models()) or "none"
        raise HearError(f"{results_dir}: no records of model {model!r} (models there: {there})")
    naming = _manifests_naming(results_dir, found)
    files: dict[str, bytes] = {}
    entries = [_entry(results_dir, f, naming.get(f.path.resolve(), []), files) for f in found]
    index = PackIndex(
        model=model,
        runner_version=__version__,
        created=max(f.record.created for f in found),
        entries=sorted(entries, key=lambda e: e.task),
    )
    files[INDEX] = index.model_dump_json(indent=2, by_alias=True).encode()
    return index, zip_bytes(files)


def write_pack(data: bytes, output: Path) -> None:
    """Write a pack's bytes to ``output`` atomically (no half-written pack is ever seen)."""
    atomic_write(output, data)


def zip_bytes(files: dict[str, bytes]) -> bytes:
    """A zip of ``files`` (path in the zip -> content) that depends on nothing else: sorted
    members, fixed times and permissions, the same compression."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, wherever it was packed
            info.external_attr = 0o100644 << 16  # a plain file, rw-r--r--
            archive.writestr(info, files[name], compresslevel=9)
    return buffer.getvalue()


def image_labels(engine: dict[str, Any]) -> dict[str, str]:
    """An image model's labels from a record's engine provenance, as a pack lists them."""
    return {str(k): str(v) for k, v in (engine.get("image_labels") or {}).items()}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _entry(
    results_dir: Path, found: FoundRecord, manifests: list[Path], files: dict[str, bytes]
) -> PackEntry:
    """Add the record's files to ``files`` (by path in the zip); its entry in the index."""
    record = found.record
    if not record.predictions_file:
        raise HearError(
            f"{found.path}: the record keeps no test predictions, which a pack needs: run "
            f"{record.model.name} on {record.task.name} again to pack it"
        )

    def add(path: Path, what: str) -> PackedFile:
        try:
            data = path.read_bytes()
        except OSError as e:
            raise HearError(f"{path}: the record's {what} cannot be read ({e.strerror})") from None
        name = str(PurePosixPath(RECORDS, *path.relative_to(results_dir).parts))
        files[name] = data
        return PackedFile(path=name, sha256=sha256(data))

    folder = found.path.parent
    engine = record.model.engine
    return PackEntry(
        task=record.task.name,
        record=add(found.path, "record"),
        predictions=add(folder / record.predictions_file, "test predictions"),
        heareval_scores=(
            add(folder / record.heareval_scores_file, "heareval scores file")
            if record.heareval_scores_file
            else None
        ),
        manifests=[add(m, "run manifest") for m in manifests],
        image_id=engine.get("image_id"),
        image_labels=image_labels(engine),
    )


def _manifests_naming(results_dir: Path, found: list[FoundRecord]) -> dict[Path, list[Path]]:
    """The run manifests under ``results_dir`` that name each record (by its resolved path),
    found as a site finds them."""

    wanted = {f.path.resolve() for f in found}
    naming: dict[Path, list[Path]] = {}
    for manifest in find_manifests(results_dir):
        for named in dict.fromkeys(manifest.records):
            if named in wanted:
                naming.setdefault(named, []).append(manifest.path)
    return naming
