"""Put a plan together from what a `hear run` command line names, starting nothing:
no task is prepared, no model started, no container created."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from hear_runner.engines.settings import ModelChoice
from hear_runner.errors import HearError
from hear_runner.plan.estimate import Estimate, Plan, PlanRow, newest_first, plan_row
from hear_runner.plan.identify import PlannedModel, planned_models
from hear_runner.plan.sizes import TaskSize, folder_size, source_size
from hear_runner.plan.throughput import Throughputs, load_throughputs
from hear_runner.results.records import RunRecord


class PlanRequest(BaseModel):
    """The options of `hear run` that the plan depends on."""

    model_config = ConfigDict(frozen=True)

    models: ModelChoice
    max_clip_seconds: float | None = None
    tasks_dir: Path
    task_names: list[str] | None = None
    results_dir: Path
    cache_dir: Path
    probe_mode: str = "fast"
    grid_points: int = 8
    seeds: int = 1
    recompute: bool = False  # --overwrite always: the store's embeddings are not reused


def build_plan(request: PlanRequest) -> Plan:
    table = load_throughputs()
    if request.probe_mode not in table.probes:  # the table has a cost for every probe mode
        known = ", ".join(table.probes)
        raise HearError(f"probe mode {request.probe_mode!r}: expected one of {known}")
    models = planned_models(request.models, request.max_clip_seconds)
    tasks = planned_tasks(request.tasks_dir, request.task_names)
    records = model_records(request.results_dir)
    probe = (request.probe_mode, request.grid_points, request.seeds)
    rows = [plan_row(model, task, records.get(model.name, []), table, request.cache_dir, probe,
                     request.recompute)
            for model in models for task in tasks]  # fmt: skip
    starts = {m.name: _start(m, records.get(m.name, []), table) for m in models
              if any(r.model == m.name and (r.embed.seconds or 0) > 0 for r in rows)}  # fmt: skip
    estimates = [e for r in rows for e in (r.embed, r.probe)] + list(starts.values())
    return Plan(
        probe_mode=request.probe_mode, grid_points=request.grid_points, seeds=request.seeds,
        throughputs=table.path, rows=rows, model_start=starts,
        total_seconds=sum(e.seconds or 0.0 for e in estimates),
        unknown=sum(1 for e in estimates if e.seconds is None),
    )  # fmt: skip


def planned_tasks(tasks_dir: Path, names: list[str] | None) -> list[TaskSize]:
    """The tasks as `hear run` chooses them, sized; a plugin task not prepared is listed
    with what its source says (a dry run prepares nothing)."""
    from hear_runner.tasks.choose import resolve_tasks
    from hear_runner.tasks.folder import find_task_folders

    resolved = resolve_tasks(tasks_dir, names)
    folder_names = [item for item in resolved if isinstance(item, str)]
    folders = iter(find_task_folders(tasks_dir, folder_names) if folder_names or not names
                   else [])  # fmt: skip
    if not names:
        return [folder_size(folder) for folder in folders]
    return [folder_size(next(folders)) if isinstance(item, str) else source_size(item)
            for item in resolved]  # fmt: skip


def model_records(results_dir: Path) -> dict[str, list[RunRecord]]:
    """Each model's newest record per task, newest first (none where the folder is absent)."""
    from hear_runner.results.reader import read_results

    if not results_dir.is_dir():
        return {}
    found: dict[str, list[RunRecord]] = {}
    for one in read_results(results_dir).records():
        found.setdefault(one.record.model.name, []).append(one.record)
    return {name: newest_first(records) for name, records in found.items()}


def _start(model: PlannedModel, records: list[RunRecord], table: Throughputs) -> Estimate:
    started = next((r for r in records if r.timings.get("model_start", 0) > 0), None)
    if started is not None:
        return Estimate(seconds=started.timings["model_start"], source="record",
                        detail=f"record of {started.task.name}, {started.created}")  # fmt: skip
    key, entry = table.model(model.table_name or model.name)
    return Estimate(seconds=entry.start_seconds, source="table", detail=key)


__all__ = ["Plan", "PlanRequest", "PlanRow", "build_plan"]
