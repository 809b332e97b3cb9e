"""The arithmetic and the table of bench/full_size.py: results merged by (model, task, scale),
the memory rule, the dominant stage, full-size extrapolation, throughputs for `hear plan`.

No measuring here (bench/measure.py does that), so re-rendering needs nothing but the JSON
(and, for the released sizes it extrapolates to, the hear_2021 catalogue where it imports).
"""

# ruff: noqa: RUF001, RUF002  (the table uses the multiplication sign on purpose)
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

SCHEMA = "hear-full-size/1"
#: The issue's rule: host memory while probing < 2 GB + one float32 copy of the largest
#: training split's embeddings. 2 GB is taken as 2e9 bytes (the stricter reading); the
#: memory is the probe tree's anonymous PSS (what it holds itself), not the pages of the
#: memory-mapped embedding files it reads, which the kernel drops and rereads at will.
MEMORY_ALLOWANCE_BYTES = 2_000_000_000
MIB = 2**20
#: What each stage's time is taken to grow with, for extrapolation.
QUANTITY = {"prepare": "audio_s", "embed": "audio_s", "probe": "training_rows"}


def scale_factor(scale: str | None) -> float | None:
    """The fraction of full size a --scale names: a number, "full" (1); else None (smoke)."""
    if scale is None or scale == "full":
        return None if scale is None else 1.0
    try:
        return float(scale)
    except ValueError:
        return None


def measured_fraction(row: dict, stage: str) -> float | None:
    """The fraction of the released size a row measured, for ``stage``'s quantity: its
    --scale, except where splits were rounded up. hear2021-sized keeps at least 2 clips a
    split, so MAESTRO at 0.02 holds 10 of 185 clips (0.054), and extrapolating its time by
    1/0.02 overstated the full size 2.7x. The probe's rows are the train split's clips where
    there is one (train/valid/test), else every split's (k folds of even size)."""
    factor = scale_factor(row["scale"])
    released = released_clips(row["task"])
    clips = row["task_info"].get("clips_per_split")
    if factor is None or not released or not clips or set(clips) != set(released):
        return factor
    if stage.startswith("probe") and "train" in clips:
        return clips["train"] / released["train"]
    return sum(clips.values()) / sum(released.values())


@functools.cache
def released_clips(task: str) -> dict[str, int] | None:
    """Clips per split of the released task ``task`` (a hear2021-sized name), else None."""
    try:
        from hear_2021.catalogue import by_name
        from hear_2021.sized import clip_counts
    except ImportError:  # rendering outside a checkout: --scale is all there is
        return None
    entry = by_name().get(task)
    return clip_counts(entry, "full") if entry is not None and entry.sized else None


def memory_rule(training_rows: int, dim: int, used_mib: float | None) -> dict[str, Any]:
    """Whether the probe's host memory stayed under 2 GB + rows × dim × 4 bytes."""
    bound = MEMORY_ALLOWANCE_BYTES + training_rows * dim * 4
    return {
        "rule": "host memory < 2e9 bytes + training rows × dim × 4 bytes",
        "bound_mib": round(bound / MIB, 1),
        "used_mib": used_mib,
        "pass": None if used_mib is None else used_mib * MIB < bound,
    }


@dataclass(frozen=True)
class Point:
    """One measurement of a stage: the fraction of the released task it held, its size
    (audio s or rows), seconds."""

    factor: float
    quantity: float
    seconds: float


def extrapolate(points: list[Point]) -> dict[str, Any] | None:
    """Full-size seconds of a stage from its measurements at scales below 1.

    One size measured: linear in the size (audio seconds for embedding, training rows
    for probing). Two or more sizes: t = c · size^k, with k fitted by least squares on
    log t against log size; a k below 1 means a fixed start-up dominates at the sizes
    measured (which weighs less and less at full size), so linear is used instead, an upper
    bound. Either way from the largest measurement, to the full size that measurement
    implies (its size / the fraction of the released size it holds, ``measured_fraction``).
    """
    points = [p for p in points if p.quantity > 0 and p.seconds > 0 and 0 < p.factor <= 1]
    if not points:
        return None
    base = max(points, key=lambda p: p.quantity)
    full = base.quantity / base.factor
    sizes = sorted({p.quantity for p in points})
    exponent, method = 1.0, "extrapolated, linear in size"
    if len(sizes) >= 2:
        xs = [math.log(p.quantity) for p in points]
        ys = [math.log(p.seconds) for p in points]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        exponent = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
            (x - mx) ** 2 for x in xs
        )
        scales = ", ".join(f"{f:g}" for f in sorted({p.factor for p in points}))
        method = f"extrapolated, exponent {exponent:.2f} fitted from scales {scales}"
        if exponent < 1:
            method = (
                f"extrapolated, linear in size (exponent fitted from scales {scales}: "
                f"{exponent:.2f} < 1, start-up dominated; linear is an upper bound)"
            )
            exponent = 1.0
    return {
        "seconds": round(base.seconds * (full / base.quantity) ** exponent, 1),
        "full_size": round(full, 1),
        "exponent": round(exponent, 3),
        "method": method,
    }


# ---------------------------------------------------------------- rows


def row_key(row: dict) -> tuple[str, str, str]:
    return (row["model"], row["task"], str(row["scale"]))


def merge_rows(old: list[dict], new: list[dict]) -> list[dict]:
    """Rows of both, a new row replacing an old one of the same (model, task, scale); the
    old row's probes of modes the new one did not run are kept in it, each saying which run
    measured it (``measured_in``: that row's generated, command and commit)."""
    rows = {row_key(r): r for r in old}
    for row in new:
        before = rows.get(row_key(row))
        rows[row_key(row)] = row
        if before is None or before is row:
            continue
        origin = {"generated": before.get("generated"), "command": before.get("command"),
                  "commit": (before.get("git") or {}).get("commit")}  # fmt: skip
        for mode, run in (before.get("probes") or {}).items():
            if mode not in row["probes"]:
                row["probes"][mode] = {"measured_in": origin, **run}
    return sorted(rows.values(), key=row_key)


def stage_runs(row: dict) -> dict[str, dict]:
    """Every measured stage of a row: prepare, embed, probe <mode>."""
    runs = {name: row[name] for name in ("prepare", "embed") if row.get(name)}
    runs.update({f"probe {mode}": run for mode, run in (row.get("probes") or {}).items()})
    return runs


def dominant_stage(row: dict) -> str | None:
    runs = stage_runs(row)
    return max(runs, key=lambda name: runs[name]["wall_s"]) if runs else None


def _quantity(row: dict, stage: str) -> float | None:
    value = row["task_info"].get(QUANTITY[stage.split()[0]])
    return float(value) if value else None


def annotate(rows: list[dict]) -> None:
    """Frames of event tasks, dominant stage and, for rows below full size, each stage's
    extrapolated full time (fitted across the scales of the model and task in ``rows``)."""
    for row in rows:
        info = row["task_info"]
        info["frames"] = None  # embedding rows of an event task
        if info.get("splits") and info.get("embedding_type") != "scene":
            info["frames"] = sum(rows_dim[0] for rows_dim in info["splits"].values())
        row["dominant_stage"] = dominant_stage(row)
        factor = scale_factor(row["scale"])
        row["extrapolated"] = None
        if factor is None or factor >= 1:
            continue
        row["extrapolated"] = {}
        for stage, run in stage_runs(row).items():
            points = []
            for other in rows:
                other_factor = measured_fraction(other, stage)
                other_run = stage_runs(other).get(stage)
                quantity = _quantity(other, stage)
                if (
                    other["model"] == row["model"] and other["task"] == row["task"]
                    and other_factor is not None and other_run is not None
                    and other_run["status"] == "ok" and quantity
                ):  # fmt: skip
                    points.append(Point(other_factor, quantity, other_run["wall_s"]))
            quantity = _quantity(row, stage)
            if run["status"] != "ok" and quantity:  # a lower bound: this row's own time only
                points = [Point(measured_fraction(row, stage) or factor, quantity, run["wall_s"])]
            result = extrapolate(points)
            if result is not None:
                result["lower_bound"] = run["status"] != "ok"
                row["extrapolated"][stage] = result


# ---------------------------------------------------------------- throughputs


def _fit_line(points: list[tuple[float, float]]) -> tuple[float | None, float, str]:
    """Start-up (intercept) and seconds per unit (slope) of wall against units."""
    if len({u for u, _ in points}) < 2:
        per_unit = sum(s for _, s in points) / sum(u for u, _ in points)
        return None, per_unit, "one size: start-up unknown; s per unit = wall / units (upper bound)"
    n = len(points)
    mu, ms = sum(u for u, _ in points) / n, sum(s for _, s in points) / n
    slope = sum((u - mu) * (s - ms) for u, s in points) / sum((u - mu) ** 2 for u, _ in points)
    intercept = ms - slope * mu
    if intercept < 0 or slope <= 0:
        slope = sum(s for _, s in points) / sum(u for u, _ in points)
        return 0.0, slope, f"least squares through the origin over {n} rows"
    return intercept, slope, f"least squares over {n} rows"


def _probe_fit(points: list[tuple[float, float]]) -> dict[str, Any]:
    startup, per_unit, method = _fit_line(points)
    return {
        "startup_s": None if startup is None else round(startup, 3),
        "s_per_unit": per_unit,
        "method": method,
        "points": len(points),
    }


def throughputs(rows: list[dict], measured: dict[str, str]) -> dict[str, Any]:
    """The table `hear plan` estimates from (``hear_runner/plan/throughput.py``'s schema),
    fitted to the rows: per model (the image's name without repository and tag), embedding
    speed per embedding type (audio seconds over embedding wall seconds, the model's start
    included) and sizes; per probe mode, the plan's cost model fitted to every finished run
    (trainings = grid points + folds - 1, units = trainings x training rows x dim)."""
    from hear_runner.plan.fit import fit_probe_cost
    from hear_runner.plan.throughput import (
        DEFAULT_MODEL,
        Measured,
        ModelThroughput,
        Throughputs,
    )

    source = Measured(**measured)
    embed: dict[str, dict[str, list[tuple[float, float, float]]]] = {}
    sizes: dict[str, dict[str, int]] = {}
    probe_runs: dict[str, dict[str, list[tuple[int, float, float]]]] = {}
    for row in rows:
        info = row["task_info"]
        model = _model_key(row)
        kind = info["embedding_type"]
        run = row.get("embed")
        if run and run["status"] == "ok" and info.get("audio_s"):
            embed.setdefault(model, {}).setdefault(kind, []).append(
                (info["clips"], info["audio_s"], run["wall_s"])
            )
            sizes.setdefault(model, {})[kind] = info["dim"]
        for mode, run in (row.get("probes") or {}).items():
            if run["status"] == "ok" and run.get("training_rows"):
                runs = probe_runs.setdefault(mode, {}).setdefault(kind, [])
                runs.append((*probe_work(info, run), run["wall_s"]))
    models = {}
    for model, kinds in sorted(embed.items()):
        fits = {kind: _embed_fit(runs) for kind, runs in kinds.items()}
        scene, event = fits.get("scene", fits.get("event")), fits.get("event", fits.get("scene"))
        assert scene is not None and event is not None
        size = sizes[model]
        models[model] = ModelThroughput(
            scene_audio_per_second=scene[2],
            timestamp_audio_per_second=event[2],
            scene_seconds_per_clip=scene[1],
            timestamp_seconds_per_clip=event[1],
            start_seconds=scene[0],
            scene_embedding_size=size.get("scene", size.get("event", 1)),
            timestamp_embedding_size=size.get("event", size.get("scene", 1)),
            measured=source,
        )
    if models:
        slowest = min(models.values(), key=lambda m: m.scene_audio_per_second)
        note = f"the slowest model measured; {source.note}".strip("; ")
        models[DEFAULT_MODEL] = slowest.model_copy(
            update={"measured": source.model_copy(update={"note": note})}
        )
    probes = {}
    for mode, kinds in sorted(probe_runs.items()):
        event = fit_probe_cost(kinds["event"], source) if "event" in kinds else None
        base = fit_probe_cost(kinds["scene"], source) if "scene" in kinds else event
        assert base is not None
        probes[mode] = base.model_copy(update={"event": event})
    table = Throughputs(models=models, probes=probes, references=references(rows))
    return table.model_dump(exclude={"path"})


def references(rows: list[dict]) -> list[Any]:
    """Every row with a finished stage, as the table's ``references``: what a plan of the same
    task scales from (each names its own command, machine and date)."""
    from hear_runner.plan.throughput import Measured, ProbeRun, Reference

    out = []
    for row in rows:
        info = row["task_info"]
        embed = row.get("embed") or {}
        probes = {mode: ProbeRun(trainings=work[0], units=work[1], seconds=run["wall_s"])
                  for mode, run in (row.get("probes") or {}).items()
                  if run["status"] == "ok" and run.get("training_rows")
                  for work in [probe_work(info, run)]}  # fmt: skip
        embed_seconds = embed["wall_s"] if embed.get("status") == "ok" else None
        if not info.get("audio_s") or (embed_seconds is None and not probes):
            continue
        where = Measured(command=row.get("command", ""), date=row.get("generated", "")[:10],
                         machine=machine_text(row.get("machine") or {}),
                         note=f"scale {row['scale']}")  # fmt: skip
        out.append(Reference(
            model=_model_key(row), task_name=info.get("task_name") or row["task"],
            embedding_type=info["embedding_type"], clips=info["clips"],
            audio_seconds=info["audio_s"], embed_seconds=embed_seconds, probes=probes,
            measured=where,
        ))  # fmt: skip
    return out


def _model_key(row: dict) -> str:
    """The table's name for a row's model: its image's name without repository and tag."""
    return str(row["model"]).rsplit("/", 1)[-1].split(":")[0]


def probe_work(info: dict, run: dict) -> tuple[int, float]:
    """(trainings, units) of a probe run in `hear plan`'s cost model: heareval trains the
    grid on the first fold, then the chosen point on every other fold."""
    folds = len(info["clips_per_split"]) if info["split_mode"] != "trainvaltest" else 1
    trainings = run["grid_points"] + folds - 1
    return trainings, float(trainings * run["training_rows"] * run["dim"])


def plan_check(rows: list[dict], measured: dict[str, str]) -> str:
    """A markdown section: each measured stage against what `hear plan` estimates for it
    from the throughputs fitted to all rows (in sample) and to the other rows only (left
    out: the estimate a plan would have made before this row was measured)."""
    lines = [
        "",
        "## `hear plan`'s estimates against the measurements",
        "",
        "`hear plan`'s own estimates (`hear_runner/plan/estimate.py`) from the throughput "
        "table made from every row above (`--throughputs`: in sample; each row is then its "
        "own reference, and an embedding's model start is counted once, as fitted), and "
        "from every row but the one estimated (left out: what a plan would have said before "
        "that row was measured, from another scale of the same task or the cost model; - "
        "where no other row measured that model, type and mode); ratio = estimate / measured.",
        "",
        "| model | task | scale | stage | measured s | in sample s | ratio | left out s | ratio |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    everything = _estimates(rows, rows, measured)
    for i, row in enumerate(rows):
        others = _estimates([row], rows[:i] + rows[i + 1 :], measured)
        for stage, (seconds, fitted) in everything[i].items():
            left = others[0].get(stage, (seconds, None))[1]
            lines.append(
                f"| {row['model']} | {row['task']} | {row['scale']} | {stage} "
                f"| {_num(seconds)} | {_num(fitted)} | {fitted / seconds:.2f} "
                f"| {_num(left)} | {'-' if left is None else f'{left / seconds:.2f}'} |"
            )
    return "\n".join(lines) + "\n"


def _estimates(
    rows: list[dict], fit_to: list[dict], measured: dict[str, str]
) -> list[dict[str, tuple[float, float | None]]]:
    """Per row, per finished stage: (measured s, `hear plan`'s estimate (its own functions)
    from a table fitted to ``fit_to``, None where it holds nothing for that model, type and
    mode)."""
    from hear_runner.plan.estimate import Work, embed_estimate, probe_estimate
    from hear_runner.plan.throughput import Throughputs

    try:
        table: Throughputs | None = Throughputs.model_validate(throughputs(fit_to, measured))
    except (AssertionError, ValueError, KeyError):
        table = None
    out = []
    for row in rows:
        info, stages = row["task_info"], {}
        kind, name = info["embedding_type"], _model_key(row)
        typed = [r for r in fit_to if r["task_info"]["embedding_type"] == kind]
        embed, size = row.get("embed"), _task_size(row)
        if embed and embed["status"] == "ok" and info.get("audio_s"):
            known = table is not None and name in table.models and any(
                (r.get("embed") or {}).get("status") == "ok" for r in typed)  # fmt: skip
            planned = (embed_estimate(table, name, size, info["clips"], info["audio_s"]).seconds
                       if known and table else None)  # fmt: skip
            # the row's wall time holds a start of the model, which a plan adds once per run
            guess = planned + table.models[name].start_seconds if planned and table else None
            stages["embed"] = (embed["wall_s"], guess)
        for mode, run in (row.get("probes") or {}).items():
            if run["status"] != "ok" or not run.get("training_rows"):
                continue
            done = [((r.get("probes") or {}).get(mode) or {}).get("status") for r in typed]
            known = table is not None and mode in table.probes and "ok" in done
            trainings, units = probe_work(info, run)
            work = Work(rows=units / trainings / run["dim"], size=run["dim"], trainings=trainings)
            guess = (probe_estimate(table, name, size, mode, work).seconds
                     if known and table else None)  # fmt: skip
            stages[f"probe {mode}"] = (run["wall_s"], guess)
        out.append(stages)
    return out


def _task_size(row: dict) -> Any:
    """The plan's TaskSize of a row's task."""
    from hear_runner.plan.sizes import spread_size

    info = row["task_info"]
    return spread_size(
        name=info.get("folder", row["task"]), task_name=info.get("task_name") or row["task"],
        embedding_type=info["embedding_type"], prediction_type=info.get("prediction_type", ""),
        split_mode=info["split_mode"], clips=info["clips_per_split"],
        audio_seconds=info.get("audio_s") or 0.0,
    )  # fmt: skip


def _embed_fit(runs: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    """(start seconds, seconds per clip, audio seconds per second) fitted to (clips, audio s,
    wall s) runs by non-negative least squares: each run's wall time holds one start of the
    model's server, which a plan counts once per run, not per task. From two runs, no
    start; from one, or when the fit gives no audio term, audio seconds alone."""
    from scipy.optimize import nnls

    clips, audio, wall = (np.array(column, dtype=float) for column in zip(*runs, strict=True))
    if len(runs) > 1:  # with two runs, no start term
        terms = np.stack([np.ones_like(clips), clips, audio], axis=1)[:, -min(len(runs), 3) :]
        scale = terms.max(axis=0)
        fitted, _ = nnls(terms / scale, wall)
        start, per_clip, per_audio = [0.0] * (3 - len(fitted)) + list(fitted / scale)
        if per_audio > 0:
            return round(float(start), 2), float(f"{per_clip:.4g}"), round(1 / per_audio, 2)
    return 0.0, 0.0, round(float(audio.sum() / wall.sum()), 2)


def rows_on(rows: list[dict], cpu: str | None) -> list[dict]:
    """The rows measured on a CPU whose model contains ``cpu`` (all rows where None): a
    throughput table fitted across machines of different speeds fits none of them."""
    if cpu is None:
        return rows
    chosen = [row for row in rows if cpu in str((row.get("machine") or {}).get("cpu_model"))]
    if not chosen:
        seen = ", ".join(sorted({str((r.get("machine") or {}).get("cpu_model")) for r in rows}))
        raise SystemExit(f"--fit-cpu {cpu!r}: no row was measured on such a CPU (seen: {seen})")
    return chosen


def machine_text(machine: dict) -> str:
    return (f"{machine.get('cpu_model')}, {machine.get('nproc')} cores (nproc), "
            f"{machine.get('memory_gib')} GiB")  # fmt: skip


def machines_text(rows: list[dict]) -> str:
    """Each machine once (rows of one machine may differ in its kernel or Python)."""
    return "; ".join(_unique(machine_text(row["machine"]) for row in rows if row.get("machine")))


def _unique(items: Any) -> list:
    out: list = []
    for item in items:
        if item is not None and item not in out:
            out.append(item)
    return out


# ---------------------------------------------------------------- markdown


def _num(x: float | None, nd: int = 1) -> str:
    return "-" if x is None else f"{x:,.{nd}f}"


def _timed(run: dict | None) -> str:
    if not run:
        return "-"
    if run["status"] == "ok":
        return _num(run["wall_s"])
    return f"{run['status']} ({run['wall_s']:.0f} s)"


def _peak(run: dict) -> float | None:
    values = [v for v in (run.get("max_rss_mib"), run.get("tree_pss_peak_mib")) if v is not None]
    return max(values) if values else None


def _probe_peak_cell(run: dict) -> str:
    return f"{_num(run.get('tree_anon_peak_mib'), 0)} / {_num(_peak(run), 0)}"


def _per_mode(probes: dict, cell: Any) -> str:
    return " / ".join(cell(run) for run in probes.values()) if probes else "-"


def _rule_cell(run: dict) -> str:
    rule = run.get("memory_rule") or {}
    mark = {True: "pass", False: "FAIL", None: "-"}[rule.get("pass")]
    return f"{mark} (< {_num(rule.get('bound_mib'), 0)})"


def _score_cell(run: dict) -> str:
    return "-" if run.get("score") is None else f"{run['score']:.4f}"


def _extrapolated_cell(row: dict) -> str:
    ext = row.get("extrapolated")
    if not ext:
        return "-"
    parts = []
    for stage, e in ext.items():
        bound = "≥ " if e["lower_bound"] else ""
        fitted = "" if e["exponent"] == 1.0 else f", k={e['exponent']:.2f}"
        parts.append(f"{stage} {bound}{_num(e['seconds'], 0)} s{fitted}")
    return "extrapolated: " + "; ".join(parts)


def markdown(rows: list[dict]) -> str:
    machines = _unique(row.get("machine") for row in rows)
    lines = [
        "# HEAR at full size: end-to-end measurements",
        "",
        "Made by `bench/full_size.py` (one row per model and task; each row's command "
        "remakes it). Wall s: the whole subprocess, start-up included. Embed peak: the host "
        "process tree's peak (max of `/usr/bin/time -v`'s max RSS and the sampled tree PSS) / "
        "the model container's cgroup peak. Store: `du` of the task's embeddings folder "
        "(`--out`) + the embedding store (`--cache-dir`). Probe columns list the modes in "
        "the order of the mode column; probe peak: the tree's anonymous PSS / the larger of max "
        "RSS and PSS (which also count the memory-mapped embeddings' page cache). Memory "
        "rule: probe anonymous peak < 2e9 bytes + training rows × dim × 4 bytes (bound in "
        "MiB). Extrapolated: full-size seconds per stage for "
        "rows below full size, linear in audio seconds (prepare, embed) or training rows "
        "(probe), or with exponent k fitted across scales, to the released size (from the "
        "fraction of the released clips a row holds: small scales keep 2 clips a split); ≥ "
        "marks a stage that timed out.",
        "",
    ]
    lines += [f"Machine: {text}." for text in _unique(machine_text(m) for m in machines)]
    lines += [
        "",
        "| model | task | scale | clips | audio h | frames | prepare s | embed s | audio s/s "
        "| embed peak MiB host / container | store MiB | modes | probe s "
        "| probe peak MiB anon / all "
        "| memory rule | score | dominant stage | full size | command |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|---:|---|---|---|",
    ]
    for row in rows:
        info, embed, probes = row["task_info"], row.get("embed") or {}, row.get("probes") or {}
        store = None
        if embed.get("out_mib") is not None:
            store = embed["out_mib"] + (embed.get("store_mib") or 0)
        dirty = " (tree dirty)" if (row.get("git") or {}).get("runner_dirty") else ""
        lines.append(
            f"| {row['model']} | {row['task']} | {row['scale']} | {info.get('clips')} "
            f"| {_num(info['audio_s'] / 3600 if info.get('audio_s') else None, 2)} "
            f"| {info.get('frames') or '-'} | {_timed(row.get('prepare'))} | {_timed(embed)} "
            f"| {_num(embed.get('audio_s_per_s'))} "
            f"| {_num(_peak(embed) if embed else None, 0)} / "
            f"{_num(embed.get('container_peak_mib'), 0)} | {_num(store)} "
            f"| {' / '.join(probes) or '-'} | {_per_mode(probes, _timed)} "
            f"| {_per_mode(probes, _probe_peak_cell)} "
            f"| {_per_mode(probes, _rule_cell)} | {_per_mode(probes, _score_cell)} "
            f"| {row.get('dominant_stage') or '-'} | {_extrapolated_cell(row)} "
            f"| `{row['command']}`{dirty} |"
        )
    return "\n".join(lines) + "\n"
