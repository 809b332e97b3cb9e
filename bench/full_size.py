#!/usr/bin/env python3
"""End-to-end cost of HEAR tasks: prepare, embed and probe, measured per (model, task).

    python bench/full_size.py --model-image hear/naive:latest --tasks-dir DIR \\
        --tasks mini_spoken_digits,mini_sound_events [--prepare mini --scale smoke] \\
        [--modes fast,faithful,linear] [--timeout 1800] [--out bench/results/full-size.json]
    python bench/full_size.py --render bench/results/full-size.json [--throughputs T.json]

For each task, as subprocesses of this checkout's `hear` (or --hear), each measured by
bench/measure.py (wall s, CPU s of the process tree, max RSS and sampled tree PSS, the load
average before it; the model container's cgroup peak memory and CPU s while embedding):

  1. prepare (with --prepare SUITE): `hear tasks prepare SUITE --tasks TASK --scale F
     --tasks-dir DIR` (the task by name where this `hear` has no --tasks option);
  2. embed: `hear embed --model-image IMG --tasks-dir DIR --task FOLDER --out OUT
     --cache-dir STORE`, into fresh folders under --work; audio seconds embedded (every
     clip's header), audio s per wall s, frames (event tasks), `du` of OUT/FOLDER and
     of STORE;
  3. probe, per mode: `hear probe OUT/FOLDER --mode M`, stopped after --timeout seconds
     (recorded as "timeout" with the time seen); primary test score, training rows × dim,
     and the memory rule (host peak < 2e9 bytes + training rows × dim × 4 bytes).

Results merge into --out by (model, task, scale), so several invocations build one file;
the markdown table (--md) is rewritten from the whole file after every task. Rows below
full size (--scale F < 1) get extrapolated full-size times per stage (see
bench/full_size_report.py). --throughputs writes what `hear plan` estimates from.
"""

# ruff: noqa: RUF002  (the multiplication sign on purpose)
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import full_size_report as report
import soundfile as sf
from machine import REPO, cmd, git_state, machine
from measure import add_settle_options, measure, primary_score, settle, thread_env
from probe_vs_heareval import clear_outputs, describe_folder

sys.path[:0] = [str(REPO), str(REPO / "plugins")]  # this checkout's hear_runner

from hear_runner.probes.grid import GRID_POINTS  # noqa: E402
from hear_runner.tasks.folder import Task  # noqa: E402

MODES = ("fast", "faithful", "linear")


def hear_command(args: argparse.Namespace) -> list[str]:
    """The `hear` measured: --hear, else this checkout's source with this interpreter."""
    return shlex.split(args.hear) if args.hear else [sys.executable, "-P", "-m", "hear_runner"]


def hear_env(args: argparse.Namespace) -> dict[str, str]:
    env = thread_env(args.threads)
    env["COLUMNS"] = "10000"  # rich must not wrap the paths `hear tasks prepare` prints
    if not args.hear:
        path = [str(REPO), str(REPO / "plugins"), env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
    return env


# ---------------------------------------------------------------- task folders


def find_folder(tasks_dir: Path, name: str, scale: str | None) -> Path:
    """A task folder by its folder name, or by task name (``NAME-<version>-<scale>``)."""
    if (tasks_dir / name / "task_metadata.json").is_file():
        return tasks_dir / name
    found = sorted(p for p in tasks_dir.glob(f"{name}-*") if (p / "task_metadata.json").is_file())
    if scale is not None and len(found) > 1:
        found = [p for p in found if p.name.endswith(f"-{scale}")]
    if len(found) != 1:
        sys.exit(
            f"{tasks_dir}: {len(found)} task folders match {name!r} "
            f"({', '.join(p.name for p in found) or 'none'}); name the folder"
        )
    return found[0]


def describe_task(folder: Path) -> dict[str, Any]:
    """Clips per split and the seconds of audio a model is given (every clip's header)."""
    task = Task(folder)
    rate_dir = folder / str(task.sample_rates[-1])
    clips = {split: len(task.clips(split)) for split in task.splits}
    seconds = 0.0
    for split in task.splits:
        for clip in task.clips(split):
            seconds += sf.info(str(rate_dir / split / clip.file)).duration
    return {
        "folder": folder.name,
        "task_name": task.metadata.task_name,
        "embedding_type": task.metadata.embedding_type,
        "prediction_type": task.metadata.prediction_type,
        "split_mode": task.metadata.split_mode,
        "clips_per_split": clips,
        "clips": sum(clips.values()),
        "audio_s": round(seconds, 2),
    }


def training_rows(embeddings: Path, splits: dict[str, list[int]]) -> int:
    """Rows of the largest training set a probe assembles (k-fold: k - 2 folds)."""
    folds = Task(embeddings, audio=False).folds
    return max(sum(splits[s][0] for s in fold.train) for fold in folds)


def du_mib(path: Path) -> float | None:
    out = cmd(["du", "-sk", str(path)])
    return round(int(out.split()[0]) / 1024, 2) if out else None


def has_tasks_option(hear: list[str], env: dict[str, str]) -> bool:
    text = subprocess.run(
        [*hear, "tasks", "prepare", "--help"], capture_output=True, text=True, env=env
    ).stdout
    return "--tasks " in text or "--tasks\n" in text or "--tasks," in text


# ---------------------------------------------------------------- stages


def stage(
    name: str, command: list[str], args: argparse.Namespace, env: dict, log: Path,
    timeout: float | None, containers: bool = False,
) -> dict[str, Any]:  # fmt: skip
    print(f"[bench] {name}: {shlex.join(command)}", flush=True)
    cwd = log.parent / f"{log.stem}.cwd"
    cwd.mkdir(parents=True, exist_ok=True)
    run: dict[str, Any] = {"command": command, "log": str(log)}
    run["settle_wait_s"] = settle(args.settle_load, args.settle_max)
    run.update(measure(command, cwd, env, log, timeout, containers=containers))
    print(
        f"[bench]   {run['status']} in {run['wall_s']:.1f} s, max RSS {run['max_rss_mib']} "
        f"MiB, tree PSS {run['tree_pss_peak_mib']} MiB",
        flush=True,
    )
    if run["status"] != "ok":
        tail = log.read_text(errors="replace").splitlines()[-15:]
        print("\n".join("[bench]   | " + line for line in tail), flush=True)
    return run


def prepare(task: str, args: argparse.Namespace, env: dict, logs: Path) -> tuple[Path, dict]:
    hear = hear_command(args)
    scale = ["--scale", args.scale] if args.scale else []
    if has_tasks_option(hear, env):
        command = [*hear, "tasks", "prepare", args.prepare, "--tasks", task]
    else:  # this hear's prepare has no --tasks: the task by its name
        command = [*hear, "tasks", "prepare", task]
    command += [*scale, "--tasks-dir", str(args.tasks_dir)]
    before = {p.name for p in args.tasks_dir.iterdir()} if args.tasks_dir.is_dir() else set()
    log = logs / f"{task}.prepare.log"
    run = stage("prepare", command, args, env, log, args.prepare_timeout)
    printed = re.findall(r"^\S+: (/.+)$", log.read_text(errors="replace"), re.MULTILINE)
    folder = Path(printed[-1].strip()) if printed else find_folder(args.tasks_dir, task, None)
    run["folder_existed_before"] = folder.name in before
    return folder, run


def embed(folder: Path, info: dict, args: argparse.Namespace, env: dict, logs: Path) -> dict:
    out, store = args.work / "out", args.work / "store" / folder.name
    shutil.rmtree(out / folder.name, ignore_errors=True)
    shutil.rmtree(store, ignore_errors=True)
    command = [
        *hear_command(args), "embed", "--model-image", args.model_image,
        "--tasks-dir", str(folder.parent), "--task", folder.name,
        "--out", str(out), "--cache-dir", str(store),
    ]  # fmt: skip
    run = stage("embed", command, args, env, logs / f"{folder.name}.embed.log",
                args.embed_timeout, containers=True)  # fmt: skip
    run["out_mib"] = du_mib(out / folder.name) if (out / folder.name).exists() else None
    run["store_mib"] = du_mib(store) if store.exists() else None
    if run["status"] == "ok" and info["audio_s"]:
        run["audio_s_per_s"] = round(info["audio_s"] / run["wall_s"], 2)
    return run


def probe(
    mode: str, embeddings: Path, info: dict, args: argparse.Namespace, env: dict, logs: Path,
    before: dict | None = None,
) -> dict:  # fmt: skip
    """One probe mode, from scratch; or, given the run ``before`` it (stopped at its
    timeout), resumed from the trainings that run saved: its segments' times add up."""
    if before is None:
        clear_outputs(embeddings)  # .probe-progress included: nothing is resumed
    else:
        (embeddings / "test.predicted-scores.json").unlink(missing_ok=True)
    grid = ["--grid-points", str(args.grid_points)] if args.grid_points else []
    command = [*hear_command(args), "probe", str(embeddings), "--mode", mode, *grid]
    log = logs / f"{embeddings.name}.probe-{mode}.log"
    if before is not None:
        log = log.with_name(f"{log.stem}.segment{len(segments(before)) + 1}.log")
    run = stage(f"probe {mode}", command, args, env, log, args.timeout)
    run["git"] = git_state(*RUNNER_PATHS)
    if before is not None:
        run = joined(before, run)
    scores = embeddings / "test.predicted-scores.json"
    if scores.exists() and run["status"] == "ok":
        run.update(primary_score(json.loads(scores.read_text())))
    elif run["status"] == "ok":
        run["status"] = "no scores"
    run["grid_points"] = 1 if mode == "linear" else (args.grid_points or GRID_POINTS)
    run["training_rows"], run["dim"] = info["training_rows"], info["dim"]
    run["units"] = info["training_rows"] * info["dim"] * run["grid_points"]
    run["memory_rule"] = report.memory_rule(
        info["training_rows"], info["dim"], run.get("tree_anon_peak_mib")
    )
    return run


SEGMENT_KEYS = ("status", "wall_s", "user_s", "sys_s", "max_rss_mib", "tree_pss_peak_mib",
                "tree_anon_peak_mib", "loadavg_before", "log", "git")  # fmt: skip
#: What a probe's saved trainings depend on (their key holds hear-runner's and the metric
#: plugins' source).
RUNNER_PATHS = ("hear_runner", "plugins", "pyproject.toml")


def segments(run: dict) -> list[dict]:
    """The runs a probe's time was measured in (one, unless it was resumed)."""
    return run.get("segments") or [{k: run.get(k) for k in SEGMENT_KEYS}]


def joined(before: dict, run: dict) -> dict:
    """A resumed probe: the last segment's outcome, the segments' seconds summed, the peaks
    the largest of any segment."""
    parts = [*segments(before), {k: run.get(k) for k in SEGMENT_KEYS}]
    run = {**run, "segments": parts}
    if before.get("superseded"):  # runs of other code this one replaced stay on record
        run["superseded"] = before["superseded"]
    for key in ("wall_s", "user_s", "sys_s"):
        values = [p.get(key) for p in parts]
        run[key] = None if None in values else round(sum(values), 3)
    for key in ("max_rss_mib", "tree_pss_peak_mib", "tree_anon_peak_mib"):
        run[key] = max((p[key] for p in parts if p.get(key) is not None), default=None)
    return run


def resumable(task: str, args: argparse.Namespace) -> dict | None:
    """With --resume: this task's row in --out (same model, and scale where given) whose
    embeddings are still under --work (--keep-stores kept them)."""
    if not args.resume:
        return None
    for row in load_rows(args.out):
        if row["model"] != args.model_image or row["task"] != task:
            continue
        if args.scale and row["scale"] != args.scale:
            continue
        if (args.work / "out" / row["task_info"]["folder"]).is_dir():
            return row
    return None


# ---------------------------------------------------------------- one task


def remake_command(task: str, args: argparse.Namespace) -> str:
    """The invocation that measures this one row again."""
    parts = ["python", "bench/full_size.py", "--model-image", args.model_image,
             "--tasks-dir", str(args.tasks_dir), "--tasks", task]  # fmt: skip
    for flag, value in (
        ("--prepare", args.prepare), ("--scale", args.scale), ("--modes", args.modes),
        ("--timeout", args.timeout), ("--embed-timeout", args.embed_timeout),
        ("--grid-points", args.grid_points), ("--threads", args.threads),
        ("--hear", args.hear), ("--out", args.out),
    ):  # fmt: skip
        if value is not None:
            parts += [flag, str(value)]
    return shlex.join(parts)


def measure_task(task: str, args: argparse.Namespace, env: dict, logs: Path) -> dict:
    row = resumable(task, args)
    if row is not None:
        return resume_task(row, args, env, logs)
    prepared = None
    if args.prepare:
        folder, prepared = prepare(task, args, env, logs)
    else:
        folder = find_folder(args.tasks_dir, task, args.scale)
    info = describe_task(folder)
    metadata = json.loads((folder / "task_metadata.json").read_text())
    row: dict[str, Any] = {
        "model": args.model_image,
        # as given: hear2021-sized's speech_commands_5h and _full share a task_name
        "task": task,
        "scale": args.scale or metadata.get("mode") or "-",
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": remake_command(task, args),
        "machine": machine(),
        "git": git_state(*RUNNER_PATHS),
        "hear": shlex.join(hear_command(args)),
        "threads": {v: env.get(v) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")},
        "task_info": info,
        "prepare": prepared,
        "embed": embed(folder, info, args, env, logs),
        "probes": {},
    }
    embeddings = args.work / "out" / folder.name
    if row["embed"]["status"] != "ok" or not embeddings.is_dir():
        return row
    layout = describe_folder(embeddings)
    info["splits"] = layout["splits"]
    info["dim"] = layout["dim"]
    info["training_rows"] = training_rows(embeddings, layout["splits"])
    for mode in args.modes.split(","):
        row["probes"][mode] = probe(mode, embeddings, info, args, env, logs)
    if not args.keep_stores:
        shutil.rmtree(embeddings, ignore_errors=True)
        shutil.rmtree(args.work / "store" / folder.name, ignore_errors=True)
    return row


def resume_task(row: dict, args: argparse.Namespace, env: dict, logs: Path) -> dict:
    """A row measured before: its prepare and embed kept, each probe that was stopped at
    its timeout resumed from its saved trainings (the same hear-runner code must run it:
    saved trainings serve only the code that made them), a mode not yet run started."""
    info = row["task_info"]
    embeddings = args.work / "out" / info["folder"]
    print(f"[bench] resuming {row['task']} ({embeddings})", flush=True)
    row = {**row, "probes": dict(row["probes"]), "resumed": [*row.get("resumed", []),
           datetime.now(UTC).isoformat(timespec="seconds")]}  # fmt: skip
    for mode in args.modes.split(","):
        before = row["probes"].get(mode)
        if before is not None and before["status"] == "ok":
            continue
        stopped = before is not None and before["status"] == "timeout"
        saved = (embeddings / ".probe-progress").is_dir()  # else it starts from scratch
        resumed = before if stopped and saved else None
        other_code = resumed is not None and not same_runner(
            segments(resumed)[-1].get("git") or row["git"]
        )
        if other_code:
            print(f"[bench] {mode}: the saved trainings were made by other hear-runner code "
                  "(they would not be read): the probe starts over", flush=True)  # fmt: skip
        row["probes"][mode] = probe(
            mode, embeddings, info, args, env, logs, None if other_code else resumed
        )
        if other_code:  # the stopped run stays on record, beside the one that replaced it
            earlier = {k: v for k, v in before.items() if k != "superseded"}
            row["probes"][mode]["superseded"] = [*before.get("superseded", []), earlier]
    return row


def same_runner(made: dict) -> bool:
    """Whether this checkout's hear-runner and plugins are those of the run whose git state
    is ``made`` (both committed, the same trees), so that its saved trainings serve."""
    now = git_state(*RUNNER_PATHS)
    if made.get("runner_dirty") or now["runner_dirty"] or not made.get("commit"):
        return False
    before = runner_trees(made["commit"])
    return None not in before and before == runner_trees(now["commit"])


def runner_trees(commit: str, repo: Path = REPO) -> list[str | None]:
    """The git objects of RUNNER_PATHS at ``commit`` (None where git cannot say)."""
    return [cmd(["git", "-C", str(repo), "rev-parse", f"{commit}:{p}"]) for p in RUNNER_PATHS]


def load_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    if data.get("schema") != report.SCHEMA:
        sys.exit(f"{path}: not a {report.SCHEMA} results file (schema {data.get('schema')!r})")
    return data["rows"]


# ---------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Details: bench/README.md, section 'Full size'.",
    )
    ap.add_argument("--model-image", help="Docker image serving the model (hear embed's)")
    ap.add_argument("--tasks-dir", type=Path, help="folder of task folders (prepared into)")
    ap.add_argument(
        "--tasks",
        default=None,
        help="comma-separated tasks: folder names in --tasks-dir or task names (with "
        "--prepare: the names given to `hear tasks prepare`)",
    )
    ap.add_argument("--prepare", metavar="SUITE", help="time `hear tasks prepare SUITE` first")
    ap.add_argument("--scale", help="--scale for prepare (smoke, full, or a fraction F)")
    ap.add_argument("--modes", default=",".join(MODES), help="probe modes, comma-separated")
    ap.add_argument("--timeout", type=float, default=1800.0,
                    help="seconds per probe before it is stopped (default 1800)")  # fmt: skip
    ap.add_argument("--embed-timeout", type=float, default=None, help="default: none")
    ap.add_argument("--prepare-timeout", type=float, default=None, help="default: none")
    ap.add_argument("--grid-points", type=int, default=None,
                    help="hear probe --grid-points (default: the probe's, 8)")  # fmt: skip
    ap.add_argument("--threads", type=int, default=None,
                    help="set OMP/MKL/OPENBLAS_NUM_THREADS=N (default: unset)")  # fmt: skip
    ap.add_argument("--hear", default=None,
                    help="the hear command to measure, e.g. '.venv/bin/hear' (default: this "
                    "checkout's source with this interpreter)")  # fmt: skip
    ap.add_argument("--work", type=Path, default=REPO / ".bench" / "full-size",
                    help="scratch: embeddings, stores, logs (.bench/full-size)")  # fmt: skip
    ap.add_argument("--keep-stores", action="store_true",
                    help="keep each task's embeddings and store (else removed)")  # fmt: skip
    ap.add_argument("--resume", action="store_true",
                    help="go on with a task's row in --out whose embeddings --keep-stores "
                    "kept: its probes stopped at --timeout resume from their saved "
                    "trainings (times summed over segments); run by the same code")  # fmt: skip
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "full-size.json")
    ap.add_argument("--md", type=Path, default=None, help="default: --out with .md")
    ap.add_argument("--render", type=Path, metavar="JSON",
                    help="only rewrite the markdown (and --throughputs) from it")  # fmt: skip
    ap.add_argument("--throughputs", type=Path, metavar="OUT.json",
                    help="also write the throughput summary `hear plan` reads")  # fmt: skip
    ap.add_argument("--fit-cpu", metavar="TEXT",
                    help="fit --throughputs only to rows measured on a CPU whose model "
                    "contains TEXT (default: every row)")  # fmt: skip
    add_settle_options(ap)
    args = ap.parse_args()
    if args.render is None:
        missing = [f for f in ("model_image", "tasks_dir", "tasks") if not getattr(args, f)]
        if missing:
            ap.error("give " + ", ".join("--" + f.replace("_", "-") for f in missing))
        unknown = set(args.modes.split(",")) - set(MODES)
        if unknown:
            ap.error(f"--modes: unknown {', '.join(sorted(unknown))} (known: {', '.join(MODES)})")
    return args


def main() -> None:
    args = parse_args()
    if args.render is not None:
        rows = load_rows(args.render)
        write_outputs(rows, None, args.md or args.render.with_suffix(".md"), args)
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.tasks_dir, args.work = args.tasks_dir.absolute(), args.work.absolute()
    md = args.md or args.out.with_suffix(".md")
    env = hear_env(args)
    logs = args.work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for task in [t for t in args.tasks.split(",") if t]:
        row = measure_task(task, args, env, logs)
        rows = report.merge_rows(load_rows(args.out), [row])  # re-read: another run may write
        write_outputs(rows, args.out, md, args)
    print(md.read_text())


def write_outputs(rows: list[dict], out: Path | None, md: Path, args: argparse.Namespace) -> None:
    """The table (and the results file, unless re-rendering; and --throughputs)."""
    report.annotate(rows)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        data = {"schema": report.SCHEMA, "updated": stamp, "rows": rows}
        out.write_text(json.dumps(data, indent=2) + "\n")
        print(f"[bench] wrote {out}", flush=True)
    md.write_text(report.markdown(rows))
    print(f"[bench] wrote {md}", flush=True)
    if args.throughputs:
        fitted = report.rows_on(rows, args.fit_cpu)
        machines = report.machines_text(fitted)
        runs = [run for row in fitted for run in report.stage_runs(row).values()]
        loads = [run["loadavg_before"][0] for run in runs if run.get("loadavg_before")]
        measured = {
            "command": f"python bench/full_size.py --render {out or args.render} "
                       f"--throughputs {args.throughputs}"
                       + (f" --fit-cpu '{args.fit_cpu}'" if args.fit_cpu else "")
                       + f" (rows: {out or args.render})",
            "date": datetime.now(UTC).date().isoformat(),
            "machine": machines,
            "note": f"{len(fitted)} bench rows; 1-minute load average before the stages "
                    f"{min(loads, default=0):.1f} to {max(loads, default=0):.1f}",
        }  # fmt: skip
        summary = report.throughputs(fitted, measured)
        args.throughputs.write_text(json.dumps(summary, indent=2) + "\n")
        md.write_text(md.read_text() + report.plan_check(fitted, measured))
        print(f"[bench] wrote {args.throughputs}", flush=True)


if __name__ == "__main__":
    main()
