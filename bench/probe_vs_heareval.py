#!/usr/bin/env python3
"""Benchmark the probe stage: heareval 2021.1.3's predictions runner against `hear probe`.

    python bench/probe_vs_heareval.py EMBED_DIR... [--modes fast,faithful,linear,fast:bfloat16]
        [--heareval-venv .bench/heareval-venv] [--out bench/results/probe.json]
        [--md bench/results/probe.md] [--timeout 1800] [--threads N]

EMBED_DIR is an embeddings folder in heareval's layout (task_metadata.json,
labelvocabulary.csv, <split>.embeddings.npy, ...), or a folder of them (as written by
`hear embed --out DIR`). For each folder and each tool, the folder is copied to a fresh
temporary directory (heareval skips folders holding prediction-done.json, and both tools
write into the folder), the tool runs there as a subprocess with its working directory a
fresh temporary directory (heareval writes ./logs), and the harness records:

  * wall time: perf_counter around the subprocess (imports and start-up included);
  * peak memory: max RSS as reported by `/usr/bin/time -v` (the largest single process
    among the child and its waited-for descendants), else ru_maxrss of RUSAGE_CHILDREN;
    and the sampled peak of the summed PSS of the whole process tree (every 50 ms from
    /proc/<pid>/smaps_rollup), which counts DataLoader workers and shared pages fairly;
  * primary test score: from the tool's test.predicted-scores.json, heareval's shape:
    aggregated_scores.test_score_mean for k-fold tasks, else the single test split's
    test_score. The primary metric's name is task_metadata.json's evaluation[0].

Both tools get the same environment: the harness sets no thread variables unless
--threads N is given, which sets OMP/MKL/OPENBLAS_NUM_THREADS=N for both. The machine
(CPU model, cores), load average before each run and package versions go in the JSON.
A tool that runs past --timeout is killed (its whole process group) and recorded as
"timeout" with the time observed.
"""

# ruff: noqa: RUF001  (the tables use the multiplication sign on purpose)
from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from machine import cmd, machine
from machine import git_state as checkout_state
from measure import add_settle_options, cpu_s, measure, primary_score, settle, thread_env

REPO = Path(__file__).resolve().parent.parent
# Files the tools write into an embeddings folder: dropped from the copy so each run
# starts from embeddings only.
OUTPUTS = ("test.predicted-scores.json", "prediction-done.json", "prediction.log")
# .probe-progress: a stopped `hear probe`'s saved trainings (a run would resume from them)
OUTPUT_GLOBS = ("*.predictions.pkl", "lightning_logs", "logs", ".probe-progress")
SCORE_GAP = 0.02
# Runs hear-runner's CLI from a source tree (e.g. a `git archive` export of a commit)
# with the .venv's interpreter, bypassing the venv's editable install of /work/main.
FROM_SRC = (
    "import sys; src = sys.argv.pop(1); "
    "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]; "
    "sys.path[:0] = [src, src + '/plugins']; sys.argv[0] = 'hear'; import hear_runner; "
    "assert hear_runner.__file__.startswith(src), hear_runner.__file__; "
    "from hear_runner.cli import main; main()"
)  # |ours - heareval| above this is flagged
# Runs heareval's runner unchanged but for the seed its task_predictions gives
# seed_everything (42, fixed in heareval): each draw of --draws seeds both tools alike.
# Python's `random` is then re-seeded with heareval's 42, because heareval shuffles its
# grid with it right after: the draw changes the training's randomness, not which 8 grid
# points are tried (hear's grid is heareval's at 42 whatever --seed says).
HEAREVAL_SEEDED = (
    "import sys, random; seed = int(sys.argv.pop(1)); import pytorch_lightning as pl; "
    "import heareval.predictions.task_predictions as tp; "
    "tp.seed_everything = lambda _s, workers=False: "
    "(pl.seed_everything(seed, workers=workers), random.seed(42)); "
    "from heareval.predictions.runner import runner; sys.argv[0] = 'runner'; runner()"
)


# ---------------------------------------------------------------- folders


def is_embeddings_dir(path: Path) -> bool:
    return (path / "task_metadata.json").is_file() and any(path.glob("*.embedding-dimensions.json"))


def find_folders(paths: list[Path]) -> list[Path]:
    folders: list[Path] = []
    for path in paths:
        found = (
            [path]
            if is_embeddings_dir(path)
            else sorted(p for p in path.iterdir() if p.is_dir() and is_embeddings_dir(p))
        )
        if not found:
            sys.exit(f"{path}: not an embeddings folder in heareval's layout, nor a folder of them")
        folders += found
    return folders


def describe_folder(folder: Path) -> dict:
    metadata = json.loads((folder / "task_metadata.json").read_text())
    splits = {}
    for dims in sorted(folder.glob("*.embedding-dimensions.json")):
        rows, dim = json.loads(dims.read_text())
        splits[dims.name.removesuffix(".embedding-dimensions.json")] = [rows, dim]
    dims = {d for _, d in splits.values()}
    return {
        "folder": str(folder),
        "task_name": metadata.get("task_name", folder.name),
        "embedding_type": metadata.get("embedding_type"),
        "prediction_type": metadata.get("prediction_type"),
        "split_mode": metadata.get("split_mode"),
        "primary_metric": (metadata.get("evaluation") or [None])[0],
        "metadata_has_splits": "splits" in metadata,
        "splits_added_to_copies": None if "splits" in metadata else split_names(folder),
        "splits": splits,
        "rows": sum(r for r, _ in splits.values()),
        "dim": dims.pop() if len(dims) == 1 else sorted(dims),
        "bytes": sum(p.stat().st_size for p in folder.glob("*.embeddings.npy")),
    }


def split_names(folder: Path) -> list[str]:
    names = [p.name.removesuffix(".embedding-dimensions.json")
             for p in folder.glob("*.embedding-dimensions.json")]  # fmt: skip
    order = {"train": 0, "valid": 1, "test": 2}
    return sorted(names, key=lambda n: (order.get(n, 3), n))


def fresh_copy(folder: Path, parent: Path) -> Path:
    """Copy ``folder`` without earlier outputs. heareval's runner reads
    task_metadata.json's "splits" (hear-preprocess writes it); where a task folder lacks
    it, the copy gets it, derived from the <split>.embedding-dimensions.json files."""
    copy = parent / folder.name
    shutil.copytree(folder, copy, symlinks=False)
    meta_path = copy / "task_metadata.json"
    metadata = json.loads(meta_path.read_text())
    if "splits" not in metadata:
        metadata["splits"] = split_names(copy)
        meta_path.write_text(json.dumps(metadata, indent=4))
    clear_outputs(copy)
    return copy


def clear_outputs(folder: Path) -> None:
    """Remove what a probe tool wrote into an embeddings folder (heareval skips a folder
    holding prediction-done.json)."""
    for name in OUTPUTS:
        (folder / name).unlink(missing_ok=True)
    for pattern in OUTPUT_GLOBS:
        for p in folder.glob(pattern):
            shutil.rmtree(p) if p.is_dir() else p.unlink()


# ---------------------------------------------------------------- scores


def shape_of(scores: dict) -> dict:
    """Key structure of a test.predicted-scores.json, for comparing the two tools."""
    shape = {}
    for k, v in scores.items():
        if isinstance(v, dict) and "test_score" in v:
            shape.setdefault("<fold>", set()).update(v)
        elif isinstance(v, dict):
            shape[k] = set(v) if k == "aggregated_scores" else "dict"
        else:
            shape[k] = type(v).__name__
    return {k: sorted(v) if isinstance(v, set) else v for k, v in shape.items()}


def shape_diff(ours: dict, theirs: dict) -> dict:
    a, b = shape_of(ours), shape_of(theirs)
    diff = {}
    for key in sorted(set(a) | set(b)):
        if key not in a:
            diff[key] = "missing in hear probe"
        elif key not in b:
            diff[key] = "only in hear probe"
        elif isinstance(a[key], list) and isinstance(b[key], list):
            missing, extra = sorted(set(b[key]) - set(a[key])), sorted(set(a[key]) - set(b[key]))
            if missing or extra:
                diff[key] = {"missing in hear probe": missing, "only in hear probe": extra}
        elif a[key] != b[key]:
            diff[key] = {"hear probe": a[key], "heareval": b[key]}
    ours_folds = sorted(k for k, v in ours.items() if isinstance(v, dict) and "test_score" in v)
    their_folds = sorted(k for k, v in theirs.items() if isinstance(v, dict) and "test_score" in v)
    if ours_folds != their_folds:
        diff["fold names"] = {"hear probe": ours_folds, "heareval": their_folds}
    return diff


# ---------------------------------------------------------------- tools


def hearcmd(args) -> list[str]:
    if args.hear_src is None:
        return [str(args.hear)]
    return [str(args.hear.parent / "python"), "-c", FROM_SRC, str(args.hear_src)]


def mode_args(mode: str) -> list[str]:
    """`hear probe`'s options for a mode, written MODE or MODE:PRECISION (fast:bfloat16)."""
    base, _, precision = mode.partition(":")
    return ["--mode", base] + (["--precision", precision] if precision else [])


def tool_label(mode: str | None) -> str:
    return "heareval" if mode is None else " ".join(["hear probe", *mode_args(mode)])


def run_tool(
    tool: str, mode: str | None, folder: Path, args, env: dict, logs: Path, seed: int | None = None
) -> dict:
    """One tool's run on a fresh copy of ``folder``; ``seed``: the draw's seed (None: each
    tool's default, 42 in both)."""
    label = tool if mode is None else tool_label(mode)
    label += "" if seed is None else f" (seed {seed})"
    print(f"[bench] {folder.name}: {label} ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-probe-") as tmp:
        tmp = Path(tmp)
        cwd = tmp / "cwd"
        cwd.mkdir()
        copy = fresh_copy(folder, tmp)
        if tool == "heareval":
            python = str(args.heareval_venv / "bin" / "python")
            extra = args.heareval_args.split()
            start = ["-m", "heareval.predictions.runner"]
            start = start if seed is None else ["-c", HEAREVAL_SEEDED, str(seed)]
            cmd = [python, *start, *extra, str(copy)]
        else:
            cmd = [*hearcmd(args), "probe", str(copy), *mode_args(mode)]
            cmd += [] if seed is None else ["--seed", str(seed)]
        name = f"{folder.name}.{tool}{'' if mode is None else '-' + mode.replace(':', '-')}"
        log = logs / f"{name}{'' if seed is None else f'.seed{seed}'}.log"
        result = {"tool": tool, "mode": mode, "seed": seed, "command": cmd, "log": str(log)}
        result["settle_wait_s"] = settle(args.settle_load, args.settle_max)
        result.update(measure(cmd, cwd, env, log, args.timeout))
        scores_file = copy / "test.predicted-scores.json"
        if scores_file.exists():
            scores = json.loads(scores_file.read_text())
            result.update(primary_score(scores))
            result["predicted_scores"] = scores
        elif result["status"] == "ok":
            result["status"] = "no scores"
        done = copy / "prediction-done.json"
        if done.exists():
            result["heareval_prediction_done"] = json.loads(done.read_text())
        result["grid_epochs"] = grid_epochs(result, log)
        result["grid_results"] = grid_results(result, log)
    shown = f"{result['score']:.4f}" if result.get("score") is not None else "-"
    print(f"[bench]   {result['status']} in {result['wall_s']:.1f}s, max RSS "
          f"{result['max_rss_mib']} MiB, tree PSS {result['tree_pss_peak_mib']} MiB, "
          f"score {shown}", flush=True)  # fmt: skip
    if result["status"] != "ok":
        tail = log.read_text(errors="replace").splitlines()[-15:]
        print("\n".join("[bench]   | " + line for line in tail), flush=True)
    return result


def grid_epochs(result: dict, log: Path) -> list[int] | None:
    """Epochs each grid point trained on the first fold, in the tool's grid order.

    hear: the grid in its test.predicted-scores.json. heareval: from its log, the last
    progress line ``Epoch N:`` (counted from 0) between one "Grid point k of n" and the next.
    """
    grid = (result.get("predicted_scores") or {}).get("grid")
    if grid:
        return [int(point["epochs_trained"]) for point in grid]
    if result["tool"] != "heareval" or not log.exists():
        return None
    sections = re.split(r"Grid point \d+ of \d+:", log.read_text(errors="replace"))[1:]
    epochs = []
    for section in sections:
        seen = re.findall(r"Epoch (\d+):", section.split("Best Grid Point")[0])
        epochs.append(max(map(int, seen)) + 1 if seen else 0)
    return epochs or None


def grid_results(result: dict, log: Path) -> list[list[float]] | None:
    """Each grid point's [best validation score, its epoch counted from 0] on the first fold,
    in grid order (for heareval the other folds' results follow: compare the first ones).

    hear: its test.predicted-scores.json grid (best_epoch counts from 1). heareval: the
    ``result: [score, epoch, {...}]`` lines of its log.
    """
    grid = (result.get("predicted_scores") or {}).get("grid")
    if grid:
        return [[float(p["valid_selection_score"]), int(p["best_epoch"]) - 1] for p in grid]
    if result["tool"] != "heareval" or not log.exists():
        return None
    found = re.findall(r" result: \[([^,\]]+), (\d+),", log.read_text(errors="replace"))
    return [[float(score), int(epoch)] for score, epoch in found] or None


def points_equal(run: dict, base: dict | None) -> tuple[int, int] | None:
    """How many of ``run``'s grid points ended as heareval's did in ``base`` (the same best
    validation score and epoch, or neither a finite score), of how many: a paired run, draw
    for draw, gives all."""
    ours, theirs = run.get("grid_results"), (base or {}).get("grid_results")
    if not ours or not theirs:
        return None
    same = sum(
        (a[1] == b[1] and abs(a[0] - b[0]) < 1e-6)
        or not (math.isfinite(a[0]) or math.isfinite(b[0]))  # heareval logs -inf, hear NaN
        for a, b in zip(ours, theirs, strict=False)
    )
    return same, len(ours)


# ---------------------------------------------------------------- environment


VERSIONS_PY = (
    "import json, importlib.metadata as m\n"
    "out = {}\n"
    "for p in {pkgs!r}:\n"
    "    try: out[p] = m.version(p)\n"
    "    except m.PackageNotFoundError: pass\n"
    "import torch; out['torch.get_num_threads'] = torch.get_num_threads()\n"
    "print(json.dumps(out))\n"
)


def versions(python: Path, pkgs: list[str], env: dict) -> dict:
    try:
        text = subprocess.run(
            [str(python), "-W", "ignore", "-c", VERSIONS_PY.replace("{pkgs!r}", repr(pkgs))],
            capture_output=True, text=True, env=env, timeout=300,
        ).stdout  # fmt: skip
        return json.loads(text)
    except (OSError, subprocess.SubprocessError, json.JSONDecodeError):
        return {}


def git_state(hear_src: Path | None) -> dict:
    """The hear-runner code measured: this checkout (and whether hear_runner/ is edited), or
    a source export whose .commit file names its commit."""
    if hear_src is not None:
        commit = hear_src / ".commit"
        return {
            "commit": commit.read_text().strip() if commit.exists() else None,
            "runner_dirty": False,
            "source": str(hear_src),
        }
    return checkout_state("hear_runner", "pyproject.toml")


# ---------------------------------------------------------------- report


def _fmt(x, nd=1):
    return "-" if x is None else f"{x:.{nd}f}"


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# Probe stage: heareval 2021.1.3 vs `hear probe`",
        "",
        f"Machine: {m['cpu_model']}, {m['nproc']} cores (nproc), {m['memory_gib']} GiB; "
        f"threads: {report['threads']}. Generated {report['generated']} by "
        f"`{report['command']}`.",
        "",
        f"Versions: heareval venv {json.dumps(report['versions']['heareval_venv'])}; "
        f"hear venv {json.dumps(report['versions']['hear_venv'])}; "
        f"hear-runner commit {report['git']['commit']}"
        f"{' (hear_runner/ had uncommitted changes)' if report['git']['runner_dirty'] else ''}.",
        "",
        "Wall: the whole subprocess (start-up included). CPU: user + system seconds of "
        "the process tree (less sensitive than wall time to other load on the machine; "
        "the 1-minute load average before each run is in the JSON). Max RSS: `/usr/bin/time -v` "
        "(largest single process). Tree PSS: sampled peak of the summed PSS of the process "
        "tree (DataLoader workers included). Score: the primary metric on test "
        "(mean over folds for k-fold tasks, ± std over folds).",
        "",
        "| task | rows × dim | tool | status | wall s | CPU s | max RSS MiB | tree PSS MiB "
        "| metric | test score | Δ vs heareval | speedup vs heareval |",
        "|---|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for src in report.get("merged_from", []):
        lines.insert(-3, f"Merged from `{src['file']}` ({src['generated']}: `{src['command']}`).\n")
    for task in report["tasks"]:
        info = task["folder_info"]
        for r in task["runs"]:
            base = heareval_run(task, r)
            tool = tool_label(r["mode"])
            tool += "" if r.get("seed") is None else f" (seed {r['seed']})"
            score = "-"
            if r.get("score") is not None:
                score = f"{r['score']:.4f}"
                if r.get("score_std") is not None:
                    score += f" ± {r['score_std']:.4f}"
            delta = speed = "-"
            if base is not None and r is not base:
                if r.get("score") is not None and base.get("score") is not None:
                    d = r["score"] - base["score"]
                    delta = signed(d) + (" ⚠" if abs(d) > SCORE_GAP else "")
                if base["status"] == "ok" and r["status"] == "ok":
                    speed = f"{base['wall_s'] / r['wall_s']:.1f}×"
                elif base["status"] == "timeout" and r["status"] == "ok":
                    speed = f"> {base['wall_s'] / r['wall_s']:.1f}×"
            status = r["status"] if r["status"] != "timeout" else f"timeout ({r['wall_s']:.0f} s)"
            lines.append(
                f"| {info['task_name']} | {info['rows']} × {info['dim']} | {tool} | {status} "
                f"| {_fmt(r['wall_s'])} | {_fmt(cpu_s(r))} | {_fmt(r['max_rss_mib'], 0)} "
                f"| {_fmt(r['tree_pss_peak_mib'], 0)} | {info['primary_metric']} | {score} "
                f"| {delta} | {speed} |"
            )
    lines += draws_table(report)
    notes = [n for t in report["tasks"] for n in t.get("notes", [])]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def annotate(task: dict, timeout: float | None) -> None:
    """Notes, score deltas, speedups and shape differences against the heareval run."""
    info = task["folder_info"]
    task["notes"] = []
    if not info["metadata_has_splits"]:
        task["notes"].append(
            f'{info["task_name"]}: task_metadata.json has no "splits" (heareval\'s '
            f"runner reads it); the copies given to both tools got "
            f'"splits": {json.dumps(info["splits_added_to_copies"])}.'
        )
    for r in task["runs"]:
        base = heareval_run(task, r)
        if base is None or r is base:
            continue
        if "predicted_scores" in r and "predicted_scores" in base:
            r["shape_diff_vs_heareval"] = shape_diff(
                r["predicted_scores"], base["predicted_scores"]
            )
            # Keys only hear probe writes are additions; anything else is a mismatch.
            mismatch = {
                k: v for k, v in r["shape_diff_vs_heareval"].items()
                if v != "only in hear probe"
                and not (isinstance(v, dict) and not v.get("missing in hear probe")
                         and set(v) == {"missing in hear probe", "only in hear probe"})
            }  # fmt: skip
            if mismatch:
                task["notes"].append(
                    f"{info['task_name']}, {tool_label(r['mode'])}: "
                    f"test.predicted-scores.json differs in shape from heareval's: "
                    f"{json.dumps(mismatch)}"
                )
        if r.get("score") is not None and base.get("score") is not None:
            r["delta_vs_heareval"] = r["score"] - base["score"]
        if base["status"] == "ok" and r["status"] == "ok":
            r["speedup_vs_heareval"] = base["wall_s"] / r["wall_s"]
    for base in (r for r in task["runs"] if r["tool"] == "heareval" and r["status"] == "timeout"):
        task["notes"].append(
            f"{info['task_name']}: heareval was stopped after {base['wall_s']:.0f} s "
            f"(--timeout {timeout or 0:.0f}) without finishing."
        )


def heareval_run(task: dict, run: dict) -> dict | None:
    """The heareval run ``run`` is compared with: the one of the same seed (draw), else the
    first."""
    runs = [r for r in task["runs"] if r["tool"] == "heareval"]
    same = [r for r in runs if r.get("seed") == run.get("seed")]
    return (same or runs or [None])[0]


def draws_summary(task: dict) -> list[dict]:
    """Per tool over the task's draws (runs with a seed): total and mean times, mean score
    and its spread over draws, and against heareval: the ratio of total wall times and the
    difference of mean scores. Only tools that finished every draw are summed."""
    tools: dict[tuple[str, str | None], list[dict]] = {}
    for r in task["runs"]:
        if r.get("seed") is not None:
            tools.setdefault((r["tool"], r["mode"]), []).append(r)
    out = []
    for (tool, mode), runs in tools.items():
        ok = all(r["status"] == "ok" for r in runs)
        scores = [r["score"] for r in runs if r.get("score") is not None]
        cpus = [cpu_s(r) for r in runs]
        out.append({
            "tool": tool, "mode": mode, "draws": len(runs), "all_ok": ok,
            "seeds": [r["seed"] for r in runs],
            "wall_total_s": sum(r["wall_s"] for r in runs),
            "cpu_total_s": sum(c for c in cpus if c is not None),
            "score_mean": sum(scores) / len(scores) if scores else None,
            "score_sd": statistics.stdev(scores) if len(scores) > 1 else None,
            "scores": scores,
            "epochs_total": epochs_total(runs),
            "points_equal": [points_equal(r, heareval_run(task, r)) for r in runs]
            if tool != "heareval" else None,
        })  # fmt: skip
    base = next((d for d in out if d["tool"] == "heareval" and d["all_ok"]), None)
    for d in out:
        if base is not None and d is not base and d["all_ok"]:
            d["speedup_vs_heareval"] = base["wall_total_s"] / d["wall_total_s"]
            d["cpu_ratio_vs_heareval"] = base["cpu_total_s"] / d["cpu_total_s"]
            if d["score_mean"] is not None and base["score_mean"] is not None:
                d["score_mean_delta_vs_heareval"] = d["score_mean"] - base["score_mean"]
    return out


def epochs_total(runs: list[dict]) -> int | None:
    """Grid-point epochs over every run, if every run's epochs are known."""
    epochs = [r.get("grid_epochs") for r in runs]
    return sum(sum(e) for e in epochs) if all(epochs) else None  # type: ignore[arg-type]


def per_epoch(wall_s: float, epochs: int | None) -> str:
    return "-" if not epochs else f"{epochs} ({wall_s / epochs:.2f})"


def draws_table(report: dict) -> list[str]:
    """The draws' summary (--draws): each tool's totals over the same seeds."""
    rows = [(t, d) for t in report["tasks"] for d in t.get("draws", [])]
    if not rows:
        return []
    lines = [
        "",
        "Over the draws (each tool run once per seed, the same seeds for every tool; "
        "heareval's own seed replaced by the draw's): total wall and CPU seconds, the mean "
        "test score ± its standard deviation over draws; speed-up: heareval's total wall "
        "time over the tool's (CPU: the same of CPU seconds); Δ: the difference of mean scores; "
        "epochs: the grid points' training epochs on the first fold, summed over points and "
        "draws (the total wall seconds per such epoch, start-up and test included); paired: "
        "grid points that ended with heareval's best validation score at heareval's epoch, in "
        "the run of the same seed, summed over draws.",
        "",
        "| task | tool | seeds | wall s (total) | CPU s (total) | epochs (wall s each) "
        "| mean score ± sd | Δ vs heareval | speed-up (wall) | speed-up (CPU) | paired |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for task, d in rows:
        tool = tool_label(d["mode"])
        score = _fmt(d["score_mean"], 4) + (
            "" if d["score_sd"] is None else f" ± {d['score_sd']:.4f}"
        )
        delta = d.get("score_mean_delta_vs_heareval")
        delta_text = (
            "-" if delta is None else signed(delta) + (" ⚠" if abs(delta) > SCORE_GAP else "")
        )
        speed, cpu = (_times(d.get(k)) for k in ("speedup_vs_heareval", "cpu_ratio_vs_heareval"))
        lines.append(
            f"| {task['folder_info']['task_name']} | {tool} | {', '.join(map(str, d['seeds']))} "
            f"| {d['wall_total_s']:.1f}{'' if d['all_ok'] else ' (not all finished)'} "
            f"| {d['cpu_total_s']:.1f} | {per_epoch(d['wall_total_s'], d.get('epochs_total'))} "
            f"| {score} | {delta_text} "
            f"| {speed} | {cpu} | {paired(d.get('points_equal'))} |"
        )
    return lines


def signed(delta: float) -> str:
    """A score difference to 4 places; float32's last bits (heareval's) show as +0.0000."""
    return f"{0.0 if abs(delta) < 5e-5 else delta:+.4f}"


def paired(counts: list[tuple[int, int] | None] | None) -> str:
    if not counts or any(c is None for c in counts):
        return "-"
    return f"{sum(c[0] for c in counts)}/{sum(c[1] for c in counts)}"  # type: ignore[index]


def _times(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}×"


def merge(reports: list[dict], sources: list[Path]) -> dict:
    """One report from several: runs of the same task folder are put together (heareval's
    first) and annotated again; the first report's machine and versions head the table."""
    out = dict(reports[0])
    out["merged_from"] = [
        {"file": str(p), "generated": r["generated"], "command": r["command"], "git": r["git"]}
        for p, r in zip(sources, reports, strict=True)
    ]
    by_task: dict[str, dict] = {}
    for report in reports:
        for task in report["tasks"]:
            key = task["folder_info"]["task_name"]
            merged = by_task.setdefault(key, {"folder_info": task["folder_info"], "runs": []})
            merged["runs"] += task["runs"]
    for task in by_task.values():
        task["runs"].sort(key=lambda r: r["tool"] != "heareval")
        annotate(task, None)
        task["draws"] = draws_summary(task)
    out["tasks"] = list(by_task.values())
    return out


# ---------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("embed_dirs", nargs="*", type=Path)
    ap.add_argument(
        "--render",
        type=Path,
        nargs="+",
        default=None,
        help="only rewrite the markdown table from these results JSONs (merged by task; "
        "to --md, default: the first JSON's path with .md)",
    )
    ap.add_argument(
        "--modes",
        default="fast,faithful,linear",
        help="hear probe modes, comma-separated, each MODE or MODE:PRECISION such as "
        "fast:bfloat16 (empty: heareval only)",
    )
    ap.add_argument("--no-heareval", action="store_true", help="run hear probe only")
    ap.add_argument("--heareval-venv", type=Path, default=REPO / ".bench" / "heareval-venv")
    ap.add_argument("--hear", type=Path, default=REPO / ".venv" / "bin" / "hear")
    ap.add_argument(
        "--hear-src",
        type=Path,
        default=None,
        help="run hear-runner from this source tree (e.g. `git archive HEAD` extracted) "
        "with --hear's interpreter, instead of the installed command",
    )
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "probe.json")
    ap.add_argument(
        "--md", type=Path, default=None, help="markdown table (default: --out with .md)"
    )
    ap.add_argument("--logs", type=Path, default=REPO / ".bench" / "logs")
    ap.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        help="seconds per tool run before it is killed (default 1800)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="set OMP/MKL/OPENBLAS_NUM_THREADS=N for both tools (default: unset)",
    )
    ap.add_argument(
        "--heareval-args",
        default="",
        help="extra arguments for heareval's runner, e.g. '--grid-points 1' (for quick "
        "checks only: published numbers use its defaults)",
    )
    ap.add_argument(
        "--draws",
        type=int,
        default=0,
        help="run every tool this many times, with seeds --first-seed, --first-seed+1, ... "
        "(heareval's runner with its fixed seed 42 replaced by the draw's), and summarize "
        "totals and mean scores over the draws (default: one run each, the tools' defaults)",
    )
    ap.add_argument("--first-seed", type=int, default=42)
    add_settle_options(ap)
    args = ap.parse_args()
    if args.render is not None:
        md = args.md or args.render[0].with_suffix(".md")
        reports = [json.loads(p.read_text()) for p in args.render]
        md.write_text(markdown(reports[0] if len(reports) == 1 else merge(reports, args.render)))
        print(f"[bench] wrote {md}")
        return
    if not args.embed_dirs:
        ap.error("give at least one EMBED_DIR")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.md = args.md or args.out.with_suffix(".md")
    args.heareval_venv = args.heareval_venv.absolute()
    args.hear = args.hear.absolute()
    args.hear_src = args.hear_src.absolute() if args.hear_src else None
    modes = [m for m in args.modes.split(",") if m]

    env = thread_env(args.threads)
    if not args.no_heareval and not (args.heareval_venv / "bin" / "python").exists():
        sys.exit(f"{args.heareval_venv}: no heareval venv; run bench/setup-heareval first")
    folders = find_folders(args.embed_dirs)
    args.logs.mkdir(parents=True, exist_ok=True)

    report = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "machine": machine(),
        "threads": {
            v: env.get(v) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
        },
        "versions": {
            "heareval_venv": {}
            if args.no_heareval
            else versions(
                args.heareval_venv / "bin" / "python",
                [
                    "heareval",
                    "torch",
                    "pytorch-lightning",
                    "torchmetrics",
                    "numpy",
                    "scikit-learn",
                    "scipy",
                    "pandas",
                    "sed_eval",
                    "dcase_util",
                ],
                env,
            ),
            "hear_venv": {
                "hear": cmd([*hearcmd(args), "--version"]),
                "hear_src": None if args.hear_src is None else str(args.hear_src),
                **versions(
                    args.hear.parent / "python",
                    ["hear-runner", "torch", "numpy", "scikit-learn", "scipy"],
                    env,
                ),
            },
        },
        "git": git_state(args.hear_src),
        "tasks": [],
    }
    for folder in folders:
        info = describe_folder(folder)
        task = {"folder_info": info, "runs": [], "notes": []}
        seeds = [args.first_seed + i for i in range(args.draws)] if args.draws else [None]
        partial = args.out.with_suffix(".partial.json")  # every run kept, should the bench stop
        for seed in seeds:  # draw by draw, so load on the machine falls on every tool alike
            for tool, mode in [("heareval", None)] * (not args.no_heareval) + [
                ("hear", m) for m in modes
            ]:
                task["runs"].append(run_tool(tool, mode, folder, args, env, args.logs, seed))
                partial.parent.mkdir(parents=True, exist_ok=True)
                partial.write_text(json.dumps({**report, "tasks": [*report["tasks"], task]}))
        annotate(task, args.timeout)
        if args.draws:
            task["draws"] = draws_summary(task)
        report["tasks"].append(task)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")  # after every task
        table = markdown(report)
        args.md.write_text(table)
    args.out.with_suffix(".partial.json").unlink(missing_ok=True)
    print(table)
    print(f"[bench] wrote {args.out} and {args.md}")


if __name__ == "__main__":
    main()
