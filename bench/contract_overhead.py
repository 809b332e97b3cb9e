#!/usr/bin/env python3
"""What the model contract costs: one real model called in-process, by the local engine,
and in a Docker container, on the same audio batches.

    bash bench/setup-crepe && hear image build images/torchcrepe
    .venv/bin/python bench/contract_overhead.py [--task hear-data/tasks/mini_pitch-1.0.0-smoke]
        [--clips 64] [--batch 16] [--reps 5] [--op timestamps]
        [--out bench/results/contract_overhead.json] [--md bench/results/contract_overhead.md]

The model is hearbaseline.torchcrepe (HEAR 2021's CREPE baseline: torchcrepe's "full"
network, 2048-d every 50 ms), with the same weights and the same package versions on all
three paths: .bench/crepe-venv (bench/setup-crepe) installs the lock of images/torchcrepe.

  * in-process: a worker process of .bench/crepe-venv imports the module and times
    get_timestamp_embeddings(audio, model) itself, doing what the contract server does
    around the call (numpy -> torch tensor, torch.no_grad(), outputs -> numpy), so the
    difference to the other paths is the contract: framing, socket, checks, process.
  * local: hear_runner.engines.local.LocalEngine(python=.bench/crepe-venv/bin/python) with
    ModelSource(kind="module", ref="hearbaseline.torchcrepe"); running.client.timestamps().
  * docker: hear_runner.engines.docker.DockerEngine() (the default sandbox) with
    ModelSource(kind="image", ref="hear/torchcrepe:latest"); running.client.timestamps().

Audio: --clips 1-second clips of the task (evenly spaced over its sorted wav files),
float32, in batches of --batch. All three models are loaded first and stay loaded; each
gets --warmup batches untimed, then --reps repetitions over all batches, the paths taking
turns (the order rotates each repetition) so that a change in machine load hits all of
them alike. Throughput is audio seconds per wall second of a repetition (perf_counter
around each call, summed); the table reports the median repetition and its ratio to the
in-process median. The server's own "seconds" per call (its time from request read to
reply ready) is recorded too, so that wall time splits into model time and transport.
Before anything starts, the harness waits (up to --settle-max s) until no process matches
--busy-pattern (another benchmark) and the 1-minute load is below --settle-load; during the
rounds the load is the run's own, so only the other benchmark is checked (and recorded).

Threads: the harness sets none; it removes OMP/MKL/OPENBLAS_NUM_THREADS from its
environment so that all three paths run torch's default (one thread per visible core;
the container has no CPU limit). The defaults seen by each interpreter are recorded.
"""

# ruff: noqa: RUF001  (the tables use the multiplication sign on purpose)
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from machine import cmd, git_state
from machine import machine as bench_machine

REPO = Path(__file__).resolve().parent.parent
MODULE = "hearbaseline.torchcrepe"
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
PATHS = ("inprocess", "local", "docker")

# ---------------------------------------------------------------- in-process worker
# Runs in .bench/crepe-venv; commands on stdin, one JSON line per answer on the original
# stdout (fd 1 is pointed at stderr so that nothing the model prints can corrupt them).


def worker(audio_path: str, batch: int) -> int:
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    import numpy as np

    started = time.perf_counter()
    import importlib

    import torch

    module = importlib.import_module(MODULE)
    model = module.load_model()
    if isinstance(model, torch.nn.Module):
        model.eval()
    load_s = time.perf_counter() - started
    audio = np.load(audio_path)
    batches = [audio[i : i + batch] for i in range(0, len(audio), batch)]

    def call(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # What hear_contract.server does around the model call, minus the socket.
        with torch.no_grad():
            emb, ts = module.get_timestamp_embeddings(torch.from_numpy(np.array(x)), model)
        return (
            np.ascontiguousarray(emb.detach().cpu().numpy(), dtype=np.float32),
            np.ascontiguousarray(ts.detach().cpu().numpy(), dtype=np.float64),
        )

    def say(obj: dict) -> None:
        out.write(json.dumps(obj) + "\n")

    say({
        "op": "hello",
        "load_s": load_s,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
    })  # fmt: skip
    for line in sys.stdin:
        cmd, *args = line.split()
        if cmd == "warmup":
            for x in batches[: int(args[0])]:
                call(x)
            say({"op": "warmup"})
        elif cmd == "rep":
            calls = []
            for i, x in enumerate(batches):
                t0 = time.perf_counter()
                emb, _ = call(x)
                calls.append(time.perf_counter() - t0)
                if i == 0 and args:
                    np.save(args[0], emb)
            say({"op": "rep", "calls": calls})
        elif cmd == "quit":
            break
    return 0


# ---------------------------------------------------------------- paths, host side


class InProcess:
    name = "inprocess"

    def __init__(self, python: str, audio_path: Path, batch: int) -> None:
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [python, "-W", "ignore", __file__, "--worker", str(audio_path), "--batch", str(batch)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )  # fmt: skip
        self.hello = self._read()
        self.start_s = time.perf_counter() - t0

    def _read(self) -> dict:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"in-process worker died (exit {self.proc.wait()})")
        return json.loads(line)

    def _send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")

    def warmup(self, batches: list, n: int) -> None:
        self._send(f"warmup {n}")
        self._read()

    def rep(self, batches: list, save: Path | None) -> dict:
        self._send("rep" + (f" {save}" if save else ""))
        return {"calls": self._read()["calls"], "server": None}

    def close(self) -> None:
        try:
            self._send("quit")
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


class Contract:
    """A model behind the contract: a local process or a container."""

    def __init__(self, name: str, engine: object, source: object) -> None:
        self.name = name
        t0 = time.perf_counter()
        self.running = engine.start(source)  # type: ignore[attr-defined]
        self.start_s = time.perf_counter() - t0
        hello = self.running.client.hello
        self.hello = {"load_s": hello.load_seconds, "versions": hello.versions}
        self.server_seconds = _capture_server_seconds(self.running.client)

    def warmup(self, batches: list, n: int) -> None:
        for x in batches[:n]:
            self.running.client.timestamps(x)

    def rep(self, batches: list, save: Path | None) -> dict:
        import numpy as np

        calls = []
        if self.server_seconds is not None:
            self.server_seconds.clear()
        for i, x in enumerate(batches):
            t0 = time.perf_counter()
            emb, _ = self.running.client.timestamps(x)
            calls.append(time.perf_counter() - t0)
            if i == 0 and save:
                np.save(save, emb)
        server = list(self.server_seconds) if self.server_seconds is not None else None
        return {"calls": calls, "server": server}

    def close(self) -> None:
        self.running.close()


def _capture_server_seconds(client: object) -> list[float] | None:
    """Record the "seconds" field of each reply header (the server's own time per call).

    ModelClient does not expose reply headers, so this wraps its private _read; if that
    ever changes, the breakdown is simply left out.
    """
    original = getattr(client, "_read", None)
    if original is None:
        return None
    seen: list[float] = []

    def read(*args: object, **kwargs: object) -> object:
        header, arrays = original(*args, **kwargs)
        if isinstance(header, dict) and "seconds" in header:
            seen.append(float(header["seconds"]))
        return header, arrays

    client._read = read  # type: ignore[attr-defined]
    return seen


# ---------------------------------------------------------------- audio, machine


def load_audio(task: Path, clips: int) -> tuple[object, list[str], int]:
    import numpy as np
    import soundfile as sf

    meta = json.loads((task / "task_metadata.json").read_text())
    rate = 16000
    n = round(meta.get("sample_duration", 1.0) * rate)
    files = sorted((task / str(rate)).rglob("*.wav"))
    if len(files) < clips:
        raise SystemExit(f"{task}: {len(files)} clips at {rate} Hz, fewer than --clips {clips}")
    picked = [files[round(i * (len(files) - 1) / max(clips - 1, 1))] for i in range(clips)]
    audio = np.zeros((clips, n), dtype=np.float32)
    for i, path in enumerate(picked):
        x, sr = sf.read(path, dtype="float32", always_2d=True)
        if sr != rate:
            raise SystemExit(f"{path}: {sr} Hz, expected {rate}")
        x = x.mean(axis=1)[:n]
        audio[i, : len(x)] = x
    return audio, [str(p.relative_to(task)) for p in picked], rate


def wait_quiet(max_load: float, max_wait: float, busy_pattern: str) -> dict:
    """Wait (up to max_wait s) until nothing matches busy_pattern and the load is low."""
    waited = 0.0
    while waited < max_wait:
        busy = _busy(busy_pattern)
        if not busy and os.getloadavg()[0] < max_load:
            break
        time.sleep(5)
        waited += 5
    busy = _busy(busy_pattern)
    load = os.getloadavg()
    return {
        "waited_s": waited,
        "loadavg": [round(x, 2) for x in load],
        "other_benchmark_running": busy,
        "quiet": not busy and load[0] < max_load,
    }


def _busy(pattern: str) -> bool:
    if not pattern:
        return False
    result = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return bool(result.stdout.strip())


def machine() -> dict:
    docker = cmd(["docker", "version", "--format", "{{.Server.Version}}"])
    return {**bench_machine(), "docker_server": docker}


THREADS_PY = "import torch; print(torch.get_num_threads(), torch.get_num_interop_threads())"


def default_threads(python: str, image: str | None) -> dict:
    """torch's default thread counts as each path's interpreter sees them."""
    out = {"local": cmd([python, "-W", "ignore", "-c", THREADS_PY])}
    if image:
        out["docker"] = cmd([
            "docker", "run", "--rm", "--network", "none", "--entrypoint", "python3",
            image, "-W", "ignore", "-c", THREADS_PY,
        ])  # fmt: skip
    return out


def _relative(path: str) -> str:
    try:
        return str(Path(path).relative_to(REPO))
    except ValueError:
        return path


# ---------------------------------------------------------------- report


def summarize(path: str, reps: list[dict], audio_s: float) -> dict:
    walls = [sum(r["calls"]) for r in reps]
    rates = [audio_s / w for w in walls]
    out = {
        "reps_wall_s": [round(w, 3) for w in walls],
        "reps_audio_s_per_s": [round(r, 3) for r in rates],
        "median_audio_s_per_s": round(statistics.median(rates), 3),
        "min_audio_s_per_s": round(min(rates), 3),
        "max_audio_s_per_s": round(max(rates), 3),
        "median_call_s": round(statistics.median(c for r in reps for c in r["calls"]), 4),
    }
    servers = [r["server"] for r in reps if r["server"]]
    if servers and len(servers) == len(reps):
        server_walls = [sum(s) for s in servers]
        out["median_server_s_per_rep"] = round(statistics.median(server_walls), 3)
        overheads = [
            (w - s) / len(r["calls"]) for w, s, r in zip(walls, server_walls, reps, strict=True)
        ]
        out["median_transport_s_per_call"] = round(statistics.median(overheads), 4)
    return out


def markdown(result: dict) -> str:
    s = result["summary"]
    cfg = result["config"]
    base = s["inprocess"]["median_audio_s_per_s"]
    lines = [
        "# Contract overhead: hearbaseline.torchcrepe in-process, local engine, Docker",
        "",
        f"{cfg['clips']} clips × {cfg['clip_seconds']:g} s of `{cfg['task']}` at "
        f"{cfg['sample_rate']} Hz, batches of {cfg['batch']}, `{cfg['op']}`; "
        f"{cfg['warmup_batches']} warm-up batch(es), then {cfg['reps']} repetitions, "
        "paths taking turns. Median repetition; ratio = path / in-process.",
        "",
        "| path | audio s/s (median) | min–max | ratio | paired ratio | median call s | "
        "server s/rep | transport ms/call | start s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def num(value: float | None, scale: float = 1.0, digits: int = 2) -> str:
        return "–" if value is None else f"{value * scale:.{digits}f}"

    for path in result["paths"]:
        p = s[path]
        lines.append(
            f"| {path} | {p['median_audio_s_per_s']:.3f} | {p['min_audio_s_per_s']:.3f}–"
            f"{p['max_audio_s_per_s']:.3f} | {p['median_audio_s_per_s'] / base:.3f} | "
            f"{p['paired_ratio_median']:.3f} | {p['median_call_s']:.3f} | "
            f"{num(p.get('median_server_s_per_rep'))} | "
            f"{num(p.get('median_transport_s_per_call'), 1000, 1)} | "
            f"{result['start'][path]['start_s']:.1f} |"
        )
    lines += [
        "",
        "*ratio*: median of the path over median of in-process; *paired ratio*: median over "
        "repetitions of (in-process wall / path wall) in the same round; *server s/rep*: the "
        "server's own time for the calls (reply headers' `seconds`); *transport*: wall minus "
        "server time, per call (framing, socket, checks); *start*: start to hello (process or "
        "container, imports, load_model).",
    ]
    m = result["machine"]
    b = result["before_start"]
    q = result["rounds"]
    shared = not b["quiet"] or any(x["other_benchmark_running"] for x in q)
    lines += [
        "",
        "- Outputs: max |difference| to in-process on batch 0: "
        + ", ".join(f"{k} {v:.3g}" for k, v in result["max_abs_diff_vs_inprocess"].items()),
        f"- Threads: none set (OMP/MKL/OPENBLAS_NUM_THREADS removed); torch defaults "
        f"(intra, inter): in-process {result['threads']['inprocess']}, local "
        f"{result['threads']['local']}, docker {result['threads']['docker']}.",
        f"- Machine: {m['cpu_model']}, {m['nproc']} CPUs, {m['memory_gib']} GiB, "
        f"{m['platform']}, Docker {m['docker_server']}.",
        f"- Versions: {json.dumps(result['versions'], sort_keys=True)}.",
        f"- Image: `{cfg['image']}` {result['image_id']}; runner commit {result['git']['commit']}"
        + (" (hear_runner/ had uncommitted edits)" if result["git"]["runner_dirty"] else "")
        + ".",
        f"- Load before the models started: 1-min {b['loadavg'][0]} (wanted < "
        f"{cfg['settle_load']}, waited {b['waited_s']:.0f} s), other benchmark running: "
        f"{b['other_benchmark_running']}; other benchmark during the rounds: "
        f"{sum(x['other_benchmark_running'] for x in q)} of {len(q)} rounds (1-min load "
        "during rounds is the run's own: " + ", ".join(f"{x['loadavg']:.2f}" for x in q) + ").",
        f"- Date: {result['date']}. Command: `{result['command']}`",
        "",
    ]
    if shared:
        lines.insert(4, "**The machine was shared during part of this run (see Load below).**\n")
    return "\n".join(lines)


# ---------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--task", type=Path, default=REPO / "hear-data/tasks/mini_pitch-1.0.0-smoke")
    ap.add_argument("--clips", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1, help="untimed batches per path first")
    ap.add_argument("--op", choices=["timestamps"], default="timestamps")
    ap.add_argument("--paths", default=",".join(PATHS))
    ap.add_argument("--crepe-python", default=str(REPO / ".bench/crepe-venv/bin/python"))
    ap.add_argument("--image", default="hear/torchcrepe:latest")
    ap.add_argument("--settle-load", type=float, default=1.0)
    ap.add_argument("--settle-max", type=float, default=0, help="s to wait for quiet first")
    ap.add_argument("--busy-pattern", default="probe_vs_heareval",
                    help="pgrep -f pattern of another benchmark to wait for")  # fmt: skip
    ap.add_argument("--out", type=Path, default=REPO / "bench/results/contract_overhead.json")
    ap.add_argument("--md", type=Path, default=None)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.batch)

    import numpy as np

    paths = [p for p in args.paths.split(",") if p]
    if "inprocess" not in paths:
        raise SystemExit("--paths must include inprocess (the baseline)")
    dropped = {v: os.environ.pop(v) for v in THREAD_VARS if v in os.environ}

    sys.path.insert(0, str(REPO))
    from hear_runner.engines.base import ModelSource

    audio, files, rate = load_audio(args.task, args.clips)
    batches = [audio[i : i + args.batch] for i in range(0, len(audio), args.batch)]
    audio_s = audio.shape[0] * audio.shape[1] / rate
    tmp = Path(tempfile.mkdtemp(prefix="hear-overhead-"))
    np.save(tmp / "audio.npy", audio)

    # Load average only means something before the models start: the run itself keeps
    # every core busy. Later rounds check only that no other benchmark is running.
    print("[overhead] waiting for a quiet machine", flush=True)
    before = wait_quiet(args.settle_load, args.settle_max, args.busy_pattern)
    print(f"[overhead] {before}", flush=True)
    started: dict[str, object] = {}
    start_info: dict[str, dict] = {}
    try:
        for path in paths:
            print(f"[overhead] starting {path}", flush=True)
            if path == "inprocess":
                model = InProcess(args.crepe_python, tmp / "audio.npy", args.batch)
            elif path == "local":
                from hear_runner.engines.local import LocalEngine

                model = Contract(
                    path,
                    LocalEngine(python=args.crepe_python),
                    ModelSource(kind="module", ref=MODULE),
                )
            elif path == "docker":
                from hear_runner.engines.docker import DockerEngine

                model = Contract(path, DockerEngine(), ModelSource(kind="image", ref=args.image))
            else:
                raise SystemExit(f"unknown path {path!r}")
            started[path] = model
            start_info[path] = {"start_s": round(model.start_s, 3), "hello": model.hello}
            model.warmup(batches, args.warmup)
            print(f"[overhead] {path}: started in {model.start_s:.1f} s, warmed up", flush=True)

        reps: dict[str, list[dict]] = {p: [] for p in paths}
        quiet = []
        for r in range(args.reps):
            busy = _busy(args.busy_pattern)
            quiet.append({"other_benchmark_running": busy, "loadavg": os.getloadavg()[0]})
            order = paths[r % len(paths) :] + paths[: r % len(paths)]
            for path in order:
                save = tmp / f"{path}.npy" if r == 0 else None
                rep = started[path].rep(batches, save)  # type: ignore[attr-defined]
                reps[path].append(rep)
                print(
                    f"[overhead] rep {r + 1}/{args.reps} {path}: "
                    f"{audio_s / sum(rep['calls']):.3f} audio s/s "
                    f"(load {os.getloadavg()[0]:.2f})",
                    flush=True,
                )
    finally:
        for model in started.values():
            model.close()  # type: ignore[attr-defined]

    base = np.load(tmp / "inprocess.npy")
    diffs = {
        p: float(np.max(np.abs(np.load(tmp / f"{p}.npy") - base)))
        for p in paths
        if p != "inprocess"
    }
    summary = {p: summarize(p, reps[p], audio_s) for p in paths}
    base_walls = [sum(r["calls"]) for r in reps["inprocess"]]
    for p in paths:
        summary[p]["ratio_to_inprocess"] = round(
            summary[p]["median_audio_s_per_s"] / summary["inprocess"]["median_audio_s_per_s"], 4
        )
        # Same repetition, path against in-process: robust to load that drifts across rounds.
        paired = [b / sum(r["calls"]) for b, r in zip(base_walls, reps[p], strict=True)]
        summary[p]["paired_ratio_median"] = round(statistics.median(paired), 4)
    image_id = None
    versions = {}
    if "docker" in started:
        image_id = started["docker"].running.provenance.get("image_id")  # type: ignore[attr-defined]
        versions["docker"] = start_info["docker"]["hello"]["versions"]
    if "local" in started:
        versions["local"] = start_info["local"]["hello"]["versions"]
    threads = default_threads(args.crepe_python, args.image if "docker" in paths else None)
    ip = start_info["inprocess"]["hello"]
    threads["inprocess"] = f"{ip['threads']} {ip['interop_threads']}"
    versions["inprocess"] = {"torch": ip["torch"]}
    result = {
        "benchmark": "contract_overhead",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([_relative(sys.executable), *sys.argv]),
        "config": {
            "module": MODULE,
            "image": args.image,
            "crepe_python": args.crepe_python,
            "task": args.task.name,
            "clips": args.clips,
            "clip_seconds": audio.shape[1] / rate,
            "sample_rate": rate,
            "batch": args.batch,
            "batches": len(batches),
            "audio_seconds_per_rep": audio_s,
            "op": args.op,
            "warmup_batches": args.warmup,
            "reps": args.reps,
            "settle_load": args.settle_load,
            "thread_vars_removed": dropped,
            "files": files,
        },
        "paths": paths,
        "summary": summary,
        "start": start_info,
        "threads": threads,
        "max_abs_diff_vs_inprocess": diffs,
        "before_start": before,
        "rounds": quiet,
        "reps": reps,
        "machine": machine(),
        "versions": versions,
        "image_id": image_id,
        "git": git_state("hear_runner"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    md = args.md or args.out.with_suffix(".md")
    md.write_text(markdown(result))
    print(md.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
