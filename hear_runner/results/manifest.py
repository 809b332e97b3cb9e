"""Run manifests: what `hear run` did, precisely enough for `hear rerun` to do it again.

Every run writes ``<results-dir>/manifests/<UTC time>.json``: each model (an image by
its id and digests besides its tag; a module with its interpreter), its options, each
task folder (name, path, content hash), the probe's mode, seeds and grid points, the
batch size, the engine settings, and the scores the run got. `hear rerun` refuses an
image whose id or a task whose content hash changed (unless told to go on), runs the
same work again, and compares the new scores with the kept ones.
"""

from __future__ import annotations

import math
import platform
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, ValidationError

from hear_runner import __version__
from hear_runner.contract.wire import CONTRACT_VERSION
from hear_runner.engines.base import ModelSource
from hear_runner.engines.settings import ServeSettings
from hear_runner.errors import HearError, first_field_error
from hear_runner.files import atomic_write
from hear_runner.results.reader import read_results

if TYPE_CHECKING:
    from hear_runner.results.records import RunRecord
    from hear_runner.tasks.folder import Task

MANIFEST_VERSION = 1
FOLDER = "manifests"


class ManifestModel(ModelSource):
    """The model as the run named it (a ModelSource), and what it turned out to be."""

    identity: str  # the engine's: an image id, or "module @ interpreter"
    image_id: str | None = None
    repo_digests: list[str] = Field(default_factory=list)


class ManifestTask(BaseModel):
    name: str  # the folder name
    path: str
    content_hash: str
    version: str


class ManifestEngine(ServeSettings):
    """How the models were served: the serving settings (their defaults are the engine's, so
    an older manifest missing one reads as it ran) and which engine ran them. The batch size
    a rerun uses is the probe's (``ManifestProbe.batch_size``), as manifests always kept it."""

    engine: Literal["docker", "local"]
    python: str | None = None  # the interpreter of --model-module models


class ManifestProbe(BaseModel):
    mode: str
    seeds: list[int]
    grid_points: int
    batch_size: int
    precision: str = "float32"  # the fast probe's (MLPConfig.precision)
    shuffle_batches: bool = False


class ManifestResult(BaseModel):
    """The scores one (model, task) got: what a rerun is compared with."""

    model: str
    task: str
    primary_metric: str
    # Not-finite values as "nan", "inf" or "-inf" (JSON has no such numbers).
    test_score: float | str
    test: dict[str, float | str]
    record: str  # the record's path, relative to the results folder


class RunManifest(BaseModel):
    manifest_version: int = MANIFEST_VERSION
    created: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    runner_version: str = __version__
    contract_version: int = CONTRACT_VERSION
    command: list[str] = []
    host: dict[str, Any] = Field(
        default_factory=lambda: {"platform": platform.platform(), "python": sys.version.split()[0]}
    )
    results_dir: str
    rerun_of: str | None = None  # the manifest a `hear rerun` repeated
    #: A run on Ray: the address, Ray's version and the nodes (``hear rerun --ray`` goes
    #: back to a cluster; without it a rerun is local).
    cluster: dict[str, Any] | None = None
    engine: ManifestEngine
    models: list[ManifestModel]
    tasks: list[ManifestTask]
    probe: ManifestProbe
    results: list[ManifestResult] = []

    def write(self, results_dir: Path) -> Path:
        """``results_dir/manifests/<UTC time>.json``, written atomically, never overwriting."""
        folder = results_dir / FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path, n = folder / f"{stamp}.json", 2
        while path.exists():
            path, n = folder / f"{stamp}-{n}.json", n + 1
        atomic_write(path, self.model_dump_json(indent=2))
        return path

    @classmethod
    def load(cls, path: Path) -> RunManifest:
        try:
            text = path.read_text()
        except OSError as e:
            raise HearError(f"{path}: cannot read the manifest ({e.strerror})") from None
        try:
            manifest = cls.model_validate_json(text)
        except ValidationError as e:
            raise HearError(f"{path}: not a run manifest: {first_field_error(e)}") from None
        if manifest.manifest_version > MANIFEST_VERSION:
            raise HearError(
                f"{path}: manifest version {manifest.manifest_version} is newer than this "
                f"hear-runner reads ({MANIFEST_VERSION}): upgrade hear-runner"
            )
        return manifest

    def sources(self) -> list[ModelSource]:
        fields = set(ModelSource.model_fields)
        return [ModelSource(**m.model_dump(include=fields)) for m in self.models]


def build_manifest(
    engine: ManifestEngine,
    sources: list[ModelSource],
    identities: list[str],
    tasks: list[Task],
    probe: ManifestProbe,
    records: list[RunRecord],
    results_dir: Path,
    rerun_of: Path | None = None,
    cluster: dict[str, Any] | None = None,
) -> RunManifest:
    """The manifest of a finished run: its inputs, and the scores each record got."""
    models = []
    for source, identity in zip(sources, identities, strict=True):
        provenance = next(
            (r.model.engine for r in records if r.model.name == source.display_name), {}
        )
        image = source.kind == "image"
        models.append(
            ManifestModel(
                **source.model_dump(),
                identity=identity,
                image_id=identity if image else None,
                repo_digests=list(provenance.get("repo_digests") or []) if image else [],
            )
        )
    return RunManifest(
        command=["hear", *sys.argv[1:]],
        results_dir=str(results_dir.resolve()),
        rerun_of=str(rerun_of.resolve()) if rerun_of else None,
        engine=engine,
        cluster=cluster,
        models=models,
        tasks=[
            ManifestTask(
                name=t.name,
                path=str(t.path.resolve()),
                content_hash=t.content_hash,
                version=t.metadata.version,
            )
            for t in tasks
        ],
        probe=probe,
        results=[
            ManifestResult(
                model=r.model.name,
                task=r.task.name,
                primary_metric=r.primary_metric,
                test_score=_value(r.test_score),
                test={k: _value(v) for k, v in r.scores.get("test", {}).items()},
                record=str(r.path_in(results_dir).relative_to(results_dir)),
            )
            for r in records
        ],
    )


def changes(manifest: RunManifest, identities: list[str], tasks: list[Task]) -> list[str]:
    """What is no longer what the manifest names: an image with another id, a task folder
    with another content hash. Each line names the image or task."""
    found = []
    for model, identity in zip(manifest.models, identities, strict=True):
        if model.kind == "image" and model.identity != identity:
            found.append(
                f"image {model.ref}: id {_short(identity)} here, the manifest ran "
                f"{_short(model.identity)}"
            )
    for kept, task in zip(manifest.tasks, tasks, strict=True):
        if task.content_hash != kept.content_hash:
            found.append(
                f"task {kept.name} ({task.path}): content hash {task.content_hash}, the manifest "
                f"ran {kept.content_hash} (its metadata, labels or splits changed)"
            )
    return found


class Comparison(BaseModel):
    model: str
    task: str
    metric: str
    old: float | str | None
    new: float | str | None
    difference: float | None  # the largest over the test metrics; None where one is not finite
    match: bool


def _agreement(
    kept: dict[str, float | str], scores: dict[str, float], tolerance: float
) -> tuple[float | None, bool]:
    """The largest difference over the test metrics (None where a value is not a number
    on one side), and whether every metric agrees within ``tolerance``."""
    now = {k: _value(v) for k, v in scores.items()}
    worst: float | None = 0.0
    match = set(now) == set(kept)
    for metric, old_value in kept.items():
        value = now.get(metric)
        if isinstance(old_value, float | int) and isinstance(value, float | int):
            gap = abs(value - old_value)
            worst = None if worst is None else max(worst, gap)
            match = match and gap <= tolerance
        else:  # "nan", "inf", missing: the same word, or a change
            match = match and value == old_value
            worst = worst if value == old_value else None
    return worst, match


def compare(manifest: RunManifest, results_dir: Path, tolerance: float = 1e-9) -> list[Comparison]:
    """Each (model, task) of the manifest against the rerun's record in ``results_dir``, read
    as `hear leaderboard` reads it (the newest of each): every test metric must agree within
    ``tolerance`` (absolute); NaN matches NaN."""
    new = read_results(results_dir).latest
    rows = []
    for kept in manifest.results:
        found = new.get((kept.model, kept.task))
        record = found.record if found is not None else None
        worst: float | None = None
        match = False
        if record is not None:
            worst, match = _agreement(kept.test, record.scores.get("test", {}), tolerance)
        rows.append(
            Comparison(
                model=kept.model,
                task=kept.task,
                metric=kept.primary_metric,
                old=kept.test_score,
                new=_value(record.test_score) if record is not None else None,
                difference=worst,
                match=match,
            )
        )
    return rows


def _value(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _short(identity: str) -> str:
    return identity[:19] if identity.startswith("sha256:") else identity


@dataclass
class FoundManifest:
    """A run manifest and the records it names (resolved: a manifest names them relative
    to its own results folder)."""

    path: Path
    manifest: RunManifest
    records: list[Path]


def find_manifests(folder: Path, notes: list[str] | None = None) -> list[FoundManifest]:
    """Every readable run manifest under ``folder`` (in any ``manifests/`` folder)."""
    found = []
    for path in sorted(folder.rglob(f"{FOLDER}/*.json")):
        try:
            manifest = RunManifest.load(path)
        except HearError as e:
            if notes is not None:
                notes.append(f"{e}; left out")
            continue
        results_dir = path.parent.parent
        named = [(results_dir / r.record).resolve() for r in manifest.results]
        found.append(FoundManifest(path, manifest, named))
    return found
