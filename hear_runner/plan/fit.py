"""A throughputs table fitted from result records: how the shipped figures are made.

    python -m hear_runner.plan.fit RESULTS_DIR... --command CMD --machine TEXT [--note TEXT]

prints a ``throughputs.json`` (see :mod:`hear_runner.plan.throughput`) fitted from every
record under the folders: per model (the named model whose image the record names, else
the record's model name), its embedding throughput (audio seconds over embedding wall
seconds, records that embedded something), model start and embedding sizes; per probe
mode, the cost model's terms by non-negative least squares over its records. The
``default`` model is the slowest model measured (a plan for an unknown model errs long).
"""

from __future__ import annotations

import argparse
import json
import statistics
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from hear_runner.plan.build import model_records
from hear_runner.plan.estimate import record_work
from hear_runner.plan.throughput import (
    DEFAULT_MODEL,
    Measured,
    ModelThroughput,
    ProbeCost,
    Throughputs,
)
from hear_runner.results.records import RunRecord


def fit_throughputs(folders: list[Path], measured: Measured) -> Throughputs:
    records = [r for folder in folders for rs in model_records(folder).values() for r in rs]
    if not records:
        raise SystemExit(f"no result records under {', '.join(map(str, folders))}")
    by_model: dict[str, list[RunRecord]] = {}
    names = _model_names()
    for record in records:
        by_model.setdefault(names.get(record.model.name, record.model.name), []).append(record)
    models = {name: _model(rs, measured) for name, rs in sorted(by_model.items())}
    slowest = min(models.values(), key=lambda m: m.scene_audio_per_second)
    models[DEFAULT_MODEL] = slowest.model_copy(update={"measured": measured.model_copy(
        update={"note": f"the slowest model measured; {measured.note}".strip("; ")})})  # fmt: skip
    modes = sorted({r.probe.label for r in records})
    probes = {mode: _probe([r for r in records if r.probe.label == mode], measured)
              for mode in modes}  # fmt: skip
    return Throughputs(models=models, probes=probes)


def _model(records: list[RunRecord], measured: Measured) -> ModelThroughput:
    def rate(kind: str) -> float | None:
        done = [r.timings for r in records
                if r.task.embedding_type == kind and r.timings.get("embed_wall")]  # fmt: skip
        if not done:
            return None
        return sum(t["audio_seconds"] for t in done) / sum(t["embed_wall"] for t in done)

    scene, event = rate("scene"), rate("event")
    if scene is None and event is None:
        raise SystemExit(f"{records[0].model.name}: no record embedded anything (all stored)")
    starts = [r.timings["model_start"] for r in records if r.timings.get("model_start")]
    return ModelThroughput(
        scene_audio_per_second=round(scene or event or 0.0, 2),  # one kind measured: for both
        timestamp_audio_per_second=round(event or scene or 0.0, 2),
        start_seconds=round(statistics.median(starts), 2) if starts else 0.0,
        scene_embedding_size=records[0].model.scene_embedding_size,
        timestamp_embedding_size=records[0].model.timestamp_embedding_size,
        measured=measured,
    )


def _probe(records: list[RunRecord], measured: Measured) -> ProbeCost:
    work = [record_work(r) for r in records]
    return fit_probe_cost(
        [(w.trainings, w.units, r.timings["probe"]) for w, r in zip(work, records, strict=True)],
        measured,
    )


def fit_probe_cost(runs: list[tuple[int, float, float]], measured: Measured) -> ProbeCost:
    """The cost model's terms fitted to (trainings, units, seconds) of measured probe runs,
    by non-negative least squares; with fewer runs than terms, the last terms only (units,
    then trainings): what grows with the task is kept, so a plan extrapolated from small
    tasks errs long rather than short."""
    from scipy.optimize import nnls

    terms = np.array([[1.0, t, u] for t, u, _ in runs])[:, -min(len(runs), 3) :]
    seconds = np.array([s for _, _, s in runs])
    scale = terms.max(axis=0)  # the units are ~1e9 times the trainings: fit on equal footing
    fitted, _ = nnls(terms / scale, seconds)
    fixed, per_training, per_unit = [0.0] * (3 - len(fitted)) + list(fitted / scale)
    note = f"fitted to {len(runs)} run(s); {measured.note}".strip("; ")
    return ProbeCost(fixed_seconds=round(float(fixed), 3),
                     seconds_per_training=round(float(per_training), 4),
                     seconds_per_unit=float(f"{per_unit:.4g}"),
                     measured=measured.model_copy(update={"note": note}))  # fmt: skip


def _model_names() -> dict[str, str]:
    from hear_runner.models import model_specs

    return {spec.image: spec.name for spec in model_specs()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--command", required=True, help="the command that made the records")
    parser.add_argument("--machine", required=True, help="where it ran (CPU, cores, GPU)")
    parser.add_argument("--note", default="")
    args = parser.parse_args(argv)
    measured = Measured(command=args.command, machine=args.machine, note=args.note,
                        date=datetime.now(UTC).date().isoformat())  # fmt: skip
    table = fit_throughputs(args.results, measured)
    print(json.dumps(table.model_dump(exclude={"path"}), indent=2))


if __name__ == "__main__":
    main()
