"""The plan: for each (model, task), its size, what the store holds, and the time its
embedding and probe are expected to take, each estimate saying where it came from.

Estimates come, in this order, from:

- ``record``: the model's newest result record in the results folder (of this task if
  there is one, else of the newest task of the same embedding type): its embedding
  throughput (``timings.audio_per_second``), and for the probe the record's own probe
  time scaled by the work this task is against the record's, as the table's cost model
  (:mod:`hear_runner.plan.throughput`) weighs them (the record's task: its own time). Event
  tasks' frames come from the record's rows per audio second (``timings.embedding_rows``).
- ``reference``: the same task (by ``task_name`` and type, the nearest in clips) measured
  end to end by the bench, from the table's ``references``: its probe time (any model's,
  the same model's first) scaled by the cost model's ratio of the two tasks' work, and its
  embedding time (the same model's only) scaled by the model's embedding cost of the
  two. A record of this very task comes first; a record of another task comes after, as
  the reference knows what the cost model cannot: when early stopping ends this task's
  trainings. The reference was measured on the bench's machine: where the model has a
  record of a task that has a reference too, the estimate is multiplied by how that
  record's time compares with its reference's estimate (this machine and model against
  the bench's).
- ``table``: the shipped throughputs (``hear_runner/plan/throughputs.json``), the model's
  entry or ``default``; frames at HEAR's 50 ms hop.
- ``no data``: a task not prepared (its size is unknown).

Embedding time counts only what the store does not hold yet (``--overwrite only-missing``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from hear_runner.plan.identify import PlannedModel
from hear_runner.plan.sizes import TaskSize, spread_size
from hear_runner.plan.stored import Stored, stored
from hear_runner.plan.throughput import ProbeCost, Reference, Throughputs
from hear_runner.results.records import RunRecord

#: HEAR's timestamp hop (hear-validator's advice; most HEAR 2021 models use 50 ms or less).
HEAR_HOP_MS = 50.0

EstimateSource = Literal["record", "reference", "table", "no data"]


class Estimate(BaseModel):
    seconds: float | None = None
    source: EstimateSource = "no data"
    detail: str = ""


class PlanRow(BaseModel):
    model: str
    task: TaskSize
    frames: int | None = None  # event tasks: embedding rows over all splits
    hop_ms: float | None = None
    hop_source: str = ""  # "record" | "HEAR default"
    stored: Stored
    embed: Estimate
    probe: Estimate


class Plan(BaseModel):
    probe_mode: str
    grid_points: int
    seeds: int
    throughputs: str  # the table file used
    rows: list[PlanRow]
    model_start: dict[str, Estimate]  # per model that has something to embed
    total_seconds: float
    unknown: int  # estimates left out of the total (no data)


class Work(BaseModel):
    """What a probe's cost scales with (see hear_runner.plan.throughput)."""

    rows: float  # per training
    size: int  # embedding size
    trainings: int

    @property
    def units(self) -> float:
        return self.rows * self.size * self.trainings


def plan_row(
    model: PlannedModel,
    task: TaskSize,
    records: list[RunRecord],
    table: Throughputs,
    cache_dir: Path,
    probe: tuple[str, int, int],
    recompute: bool = False,
) -> PlanRow:
    """One (model, task); ``records`` are the model's, newest first; ``probe`` is (mode,
    grid points, seeds); ``recompute``: the store's embeddings are not reused."""
    held = stored(cache_dir, model.store_folder, task)
    if not task.prepared:
        return PlanRow(model=model.name, task=task, stored=held, embed=Estimate(),
                       probe=Estimate(detail="task not prepared: size unknown"))  # fmt: skip
    kind = task.embedding_type
    table_key, entry = table.model(model.table_name or model.name)
    same = [r for r in records if r.task.embedding_type == kind]
    hop_ms, hop_source = HEAR_HOP_MS, "HEAR default"
    hop_record = _pick(same, task, lambda r: r.timings.get("embedding_rows", 0) > 0)
    if kind == "event" and hop_record is not None:
        hop_ms, hop_source = _hop_ms(hop_record), "record"
    row = PlanRow(model=model.name, task=task, stored=held, embed=Estimate(), probe=Estimate())
    if kind == "event":
        row.frames = round(task.total_seconds * 1000 / hop_ms)
        row.hop_ms, row.hop_source = round(hop_ms, 3), hop_source
    reused = 0 if recompute else held.clips
    left = task.total_seconds * (1 - reused / task.total_clips) if task.total_clips else 0.0
    embed_record = _pick(same, task, lambda r: r.timings.get("audio_per_second", 0) > 0)
    shipped = embed_estimate(table, table_key, task, task.total_clips - reused, left)
    if embed_record is not None and (_own(embed_record, task) or shipped.source == "table"):
        rate = embed_record.timings["audio_per_second"]
        row.embed = Estimate(seconds=left / rate, source="record",
                             detail=f"{rate:g} audio s/s ({_named(embed_record)})")  # fmt: skip
    else:
        row.embed = _calibrated(shipped, same, lambda r: _embed_factor(r, table, table_key))
    mode, grid_points, seeds = probe
    size = same[0].model if same else None
    dim = (size.timestamp_embedding_size if kind == "event" else size.scene_embedding_size
           ) if size else entry.embedding_size(kind)  # fmt: skip
    tried = 1 if mode == "linear" else grid_points
    work = Work(rows=training_rows(task, 1000 / hop_ms), size=dim,
                trainings=seeds * (tried + len(task.folds) - 1))  # fmt: skip
    cost = table.probes[mode].for_type(kind)
    probe_record = _pick(same, task, lambda r: r.probe.label == mode)
    shipped = probe_estimate(table, table_key, task, mode, work)
    if probe_record is not None and (_own(probe_record, task) or shipped.source == "table"):
        done = record_work(probe_record)
        took = probe_record.timings.get("probe", 0.0)
        row.probe = _scaled(took, cost, work, done, "record", _named(probe_record))
    else:
        row.probe = _calibrated(shipped, same, lambda r: _probe_factor(r, table, table_key, mode))
    return row


def _calibrated(
    estimate: Estimate, records: list[RunRecord], factor: Callable[[RunRecord], float | None]
) -> Estimate:
    """A reference's estimate times how this machine and model compare with the bench's: the
    newest record of a task the table holds a reference of, its time over the reference's
    estimate of it (none: the reference as measured on the bench's machine)."""
    if estimate.source != "reference" or estimate.seconds is None:
        return estimate
    for record in records:  # newest first
        found = factor(record)
        if found:
            return estimate.model_copy(update={
                "seconds": estimate.seconds * found,
                "detail": f"{estimate.detail}; x {found:.3g} on this machine "
                          f"({_named(record)} against its reference)",
            })  # fmt: skip
    return estimate


def _probe_factor(record: RunRecord, table: Throughputs, model_key: str, mode: str) -> float | None:
    took = record.timings.get("probe", 0.0)
    if record.probe.label != mode or took <= 0:
        return None
    guess = probe_estimate(table, model_key, record_size(record), mode, record_work(record))
    return took / guess.seconds if guess.source == "reference" and guess.seconds else None


def _embed_factor(record: RunRecord, table: Throughputs, model_key: str) -> float | None:
    took, size = record.timings.get("embed_wall", 0.0), record_size(record)
    rate = record.timings.get("audio_per_second", 0.0)
    if took <= 0 or not rate or not size.total_seconds:  # nothing embedded: all stored
        return None
    audio = took * rate  # what this run embedded (a split already stored is not counted)
    clips = round(size.total_clips * min(audio / size.total_seconds, 1.0))
    guess = embed_estimate(table, model_key, size, clips, audio)
    return took / guess.seconds if guess.source == "reference" and guess.seconds else None


def embed_estimate(
    table: Throughputs, model_key: str, task: TaskSize, clips: int, audio_seconds: float
) -> Estimate:
    """Embedding ``clips`` clips (``audio_seconds``) of ``task`` by the table's model
    ``model_key``: from the model's reference of the task if it has one, else its rates."""
    kind, entry = task.embedding_type, table.models[model_key]
    # the model's own only: another model's embedding speed says nothing of this one's
    own = _reference(table, task, model_key, lambda r: r.embed_seconds is not None)
    measured = own if own is not None and own.model == model_key else None
    if measured is not None and measured.embed_seconds is not None:
        # its wall time held one start of the model, which the plan counts once per run
        took = max(measured.embed_seconds - entry.start_seconds, 0.1 * measured.embed_seconds)
        before = entry.embed_seconds(kind, measured.clips, measured.audio_seconds)
        ratio = entry.embed_seconds(kind, clips, audio_seconds) / before
        return Estimate(seconds=took * ratio, source="reference",
                        detail=f"{took:.3g} s x {ratio:.3g} ({_referenced(measured)})")  # fmt: skip
    rate = entry.audio_per_second(kind)
    return Estimate(seconds=entry.embed_seconds(kind, clips, audio_seconds), source="table",
                    detail=f"{rate:g} audio s/s ({model_key})")  # fmt: skip


def probe_estimate(
    table: Throughputs, model_key: str, task: TaskSize, mode: str, work: Work
) -> Estimate:
    """Probing ``task`` in ``mode`` (``work`` in the cost model's units): from a reference of
    the task if there is one, else the cost model alone."""
    cost = table.probes[mode].for_type(task.embedding_type)
    measured = _reference(table, task, model_key, lambda r: mode in r.probes)
    if measured is not None:
        run = measured.probes[mode]
        done = Work(rows=run.units / run.trainings, size=1, trainings=run.trainings)
        return _scaled(run.seconds, cost, work, done, "reference", _referenced(measured))
    return Estimate(seconds=cost.seconds(work.trainings, work.units), source="table",
                    detail=f"cost model of {mode} ({table.path})")  # fmt: skip


def training_rows(task: TaskSize, frames_per_second: float) -> float:
    """Rows one training learns from, averaged over folds: train clips, or their frames."""
    event = task.embedding_type == "event"
    per_split = {s: task.audio_seconds.get(s, 0.0) * frames_per_second if event else n
                 for s, n in task.clips.items()}  # fmt: skip
    folds = task.folds
    return sum(sum(per_split.get(s, 0) for s in train) for train, _ in folds) / len(folds)


def record_size(record: RunRecord) -> TaskSize:
    """The record's task as the plan sizes one (audio seconds spread over splits by clips)."""
    task = record.task
    return spread_size(
        name=task.name, task_name=task.task_name, embedding_type=task.embedding_type,
        prediction_type=task.prediction_type, split_mode=task.split_mode, clips=task.clips,
        audio_seconds=record.timings.get("audio_seconds", 0.0),
    )  # fmt: skip


def record_work(record: RunRecord) -> Work:
    """The work the record's probe did, in the cost model's units."""
    size = record_size(record)
    event = record.task.embedding_type == "event"
    dim = record.model.timestamp_embedding_size if event else record.model.scene_embedding_size
    fps = 1000 / _hop_ms(record) if event and record.timings.get("embedding_rows") else 20.0
    trainings = len(record.probe.seeds) * (max(len(record.probe.grid), 1) + len(size.folds) - 1)
    return Work(rows=training_rows(size, fps), size=dim, trainings=trainings)


def newest_first(records: list[RunRecord]) -> list[RunRecord]:
    return sorted(records, key=_created, reverse=True)


def _pick(records: list[RunRecord], task: TaskSize, usable: object) -> RunRecord | None:
    """The record of this task if usable, else the newest usable one (``records`` newest first)."""
    fits = [r for r in records if usable(r)]  # type: ignore[operator]
    return next((r for r in fits if r.task.name == task.name), fits[0] if fits else None)


def _own(record: RunRecord, task: TaskSize) -> bool:
    return record.task.name == task.name


def _reference(
    table: Throughputs, task: TaskSize, model_key: str, usable: Callable[[Reference], bool]
) -> Reference | None:
    """The table's usable reference of ``task`` (its task_name and embedding type): the
    model's own first, then the nearest in clips (a 5 h and a 50 h task share a name)."""
    name = task.task_name or task.name
    kind = task.embedding_type
    fits = [r for r in table.references
            if r.task_name == name and r.embedding_type == kind and usable(r)]  # fmt: skip
    clips = max(task.total_clips, 1)
    return min(fits, key=lambda r: (r.model != model_key, abs(math.log(r.clips / clips))),
               default=None)  # fmt: skip


def _scaled(
    seconds: float, cost: ProbeCost, work: Work, done: Work, source: EstimateSource, named: str
) -> Estimate:
    """``seconds`` measured for ``done`` work, scaled to ``work`` by the cost model (as
    measured where the model costs nothing: a table of zeros says nothing of the ratio)."""
    before = cost.seconds(done.trainings, done.units)
    ratio = cost.seconds(work.trainings, work.units) / before if before > 0 else 1.0
    return Estimate(seconds=seconds * ratio, source=source,
                    detail=f"{seconds:g} s x {ratio:.3g} ({named})")  # fmt: skip


def _referenced(reference: Reference) -> str:
    where = reference.measured
    return f"bench: {reference.model} on {reference.task_name}, {where.machine}, {where.date}"


def _hop_ms(record: RunRecord) -> float:
    return 1000 * record.timings["audio_seconds"] / record.timings["embedding_rows"]


def _named(record: RunRecord) -> str:
    return f"record of {record.task.name}, {record.created}"


def _created(record: RunRecord) -> float:
    try:
        return datetime.fromisoformat(record.created).timestamp()
    except ValueError:
        return 0.0
