"""The steps of bench/gpu-check, its sizes, its JSON and its table (see that script's help).

Sizes. CPU: small enough that every CPU step together takes under a minute on 2 shared
cores. CUDA: a scene task the size of Speech Commands full (100,503 clips: 85,000 train,
10,000 valid, 5,503 test; 35 labels) and an event task the size of DCASE 2016 task 2
(72 clips of 120 s: 48/12/12, 11 labels, a frame every 50 ms: 172,800 frames), both
1024-d, HEAR 2021's common embedding width. Nothing here was timed on an H100 yet: with
heareval's grid (8 points, at least 63 epochs each: checks every 3 epochs, patience 20)
an epoch of 85,000 rows is 84 Adam steps of a 1024-1024-35 MLP, a few ms each on an H100,
so the fast mode (all points at once) should take well under a minute and the faithful
mode (point by point) one to three; each step's deadline keeps the whole check under
8 minutes even if that guess is wrong, and the JSON then says which step ran out.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from machine import cmd, git_state, machine
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from synthetic_embeddings import write_embeddings, write_task

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SCHEMA = "hear-gpu-check/1"
NVIDIA_SMI_FIELDS = "name,memory.total,driver_version"
#: Seconds kept back from every deadline for writing the JSON and the table.
RESERVE_SECONDS = 10.0

SCENE_METADATA = {
    "task_name": "gpucheck_scene", "version": "1.0.0", "mode": "full",
    "embedding_type": "scene", "prediction_type": "multiclass", "split_mode": "trainvaltest",
    "sample_duration": 1.0, "evaluation": ["top1_acc"],
}  # fmt: skip
EVENT_METADATA = {
    "task_name": "gpucheck_event", "version": "1.0.0", "mode": "full",
    "embedding_type": "event", "prediction_type": "multilabel", "split_mode": "trainvaltest",
    "sample_duration": 120.0, "evaluation": ["event_onset_200ms_fms", "segment_1s_er"],
    # hear-preprocess's grid for DCASE 2016 task 2
    "evaluation_params": {
        "event_postprocessing_grid": {"median_filter_ms": [250], "min_duration": [125, 250]}
    },
}  # fmt: skip


@dataclass(frozen=True)
class Sizes:
    """One form's problem sizes and probe settings."""

    scene_clips: dict[str, int]
    scene_labels: int
    event_clips: dict[str, int]
    event_seconds: float
    event_labels: int
    dim: int
    grid_points: int
    max_epochs: int | None  # None: heareval's own (500, patience 20)
    patience: int | None
    embed_clips: int  # per batch
    embed_seconds: float  # per clip
    embed_batches: int
    probe_cap: float  # most seconds for one probe run
    heareval_cap: float


CPU = Sizes({"train": 400, "valid": 100, "test": 100}, 8, {"train": 6, "valid": 3, "test": 3},
            10.0, 6, 64, 2, 3, 1, 4, 2.0, 2, 120.0, 60.0)  # fmt: skip
CUDA = Sizes({"train": 85000, "valid": 10000, "test": 5503}, 35,
             {"train": 48, "valid": 12, "test": 12}, 120.0, 11, 1024, 8, None, None,
             64, 10.0, 8, 150.0, 180.0)  # fmt: skip


@dataclass
class Step:
    name: str
    device: str  # cpu | cuda
    status: str = "skipped"  # ok | failed | timeout | skipped
    reason: str = ""
    seconds: float = 0.0
    numbers: dict[str, Any] = field(default_factory=dict)


class Deadline:
    """The whole check's time: each step gets at most what is left."""

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self.end = time.monotonic() + budget

    def left(self) -> float:
        return self.end - time.monotonic() - RESERVE_SECONDS


def torch_state() -> dict[str, Any]:
    """torch's version and whether (and which) CUDA device it sees; torch may be missing."""
    try:
        import torch
    except ImportError:
        why = f"torch is not installed for {sys.executable}"
        return {"torch": None, "cuda": False, "why": why}
    cuda = torch.cuda.is_available()
    state: dict[str, Any] = {"torch": torch.__version__, "cuda": cuda,
                             "cuda_version": torch.version.cuda}  # fmt: skip
    if cuda:
        props = torch.cuda.get_device_properties(0)
        state.update(device_name=props.name, gpu_memory_bytes=int(props.total_memory),
                     device_count=torch.cuda.device_count())  # fmt: skip
    else:
        state["why"] = f"no CUDA: torch {torch.__version__} sees no GPU"
    return state


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def embed(step: Step, module: str, device: str, sizes: Sizes, python: str) -> None:
    """Serve ``module`` on ``device`` through the local engine; check the hello, time calls."""
    from hear_runner.engines.base import ModelSource
    from hear_runner.engines.local import LocalEngine

    paths = [str(BENCH), str(REPO / "tests" / "hear_modules"), os.environ.get("PYTHONPATH", "")]
    with environment(HEAR_DEVICE=device, PYTHONPATH=os.pathsep.join(p for p in paths if p)):
        running = LocalEngine(python=python).start(ModelSource(kind="module", ref=module))
    with running as model:
        hello = model.client.hello
        assert hello is not None
        n = int(sizes.embed_seconds * hello.sample_rate)
        audio = np.random.default_rng(0).standard_normal((sizes.embed_clips, n), np.float32)
        model.client.scene(audio[:1] * 0.1)  # warm-up: CUDA kernels, allocator
        started = time.perf_counter()
        for _ in range(sizes.embed_batches):
            frames, _times = model.client.timestamps(audio * 0.1)
        wall = time.perf_counter() - started
        usage = model.client.usage
    audio_seconds = sizes.embed_batches * sizes.embed_clips * sizes.embed_seconds
    step.numbers = {
        "module": module, "hello_device": hello.device, "device_name": hello.device_name,
        "hello_peak_gpu_bytes": hello.peak_gpu_bytes, "peak_gpu_bytes": usage.peak_gpu_bytes,
        "peak_rss_bytes": usage.peak_rss_bytes, "load_seconds": hello.load_seconds,
        "audio_seconds": audio_seconds, "frames_shape": list(frames.shape),
        "wall_seconds": round(wall, 3), "model_seconds": round(usage.model_seconds, 3),
        "audio_seconds_per_second": round(audio_seconds / wall, 1),
    }  # fmt: skip
    if device == "cpu":
        checks = {
            "hello.device is cpu": hello.device == "cpu",
            "hello.device_name is cpu": hello.device_name == "cpu",
            "no peak_gpu_bytes off CUDA": hello.peak_gpu_bytes is None
            and usage.peak_gpu_bytes is None,
        }
    else:
        checks = {
            "hello.device is cuda": hello.device.startswith("cuda"),
            "hello.device_name names a GPU": hello.device_name not in (None, "cpu"),
            "hello.peak_gpu_bytes > 0": (hello.peak_gpu_bytes or 0) > 0,
            "replies' peak_gpu_bytes >= the hello's": (usage.peak_gpu_bytes or 0)
            >= (hello.peak_gpu_bytes or 1),
        }
    step.numbers["checks"] = checks
    failed = [claim for claim, ok in checks.items() if not ok]
    step.status, step.reason = ("failed", "; ".join(failed)) if failed else ("ok", "")


def make_tasks(work: Path, sizes: Sizes, tag: str) -> dict[str, Path]:
    """Synthetic scene and event embeddings folders of ``sizes``, in heareval's layout."""
    tasks = work / f"tasks-{tag}"
    words = [f"word{i}" for i in range(sizes.scene_labels)]
    scene = write_task(tasks, f"gpucheck_scene-{tag}", SCENE_METADATA, words, sizes.scene_clips)
    event_metadata = {**EVENT_METADATA, "sample_duration": sizes.event_seconds}
    sounds = [f"sound{i}" for i in range(sizes.event_labels)]
    event = write_task(tasks, f"gpucheck_event-{tag}", event_metadata, sounds, sizes.event_clips)
    out = work / f"embeddings-{tag}"
    # Label means about 3 (scene) and 6 (event) noise deviations apart whatever the width:
    # learnable, not trivial.
    separation = 2.0 / np.sqrt(sizes.dim)
    return {
        "scene": write_embeddings(scene, out, sizes.dim, separation=separation, say=False),
        "event": write_embeddings(event, out, sizes.dim, 50.0, 2 * separation, say=False),
    }


def _subprocess(step: Step, command: list[str], timeout: float, env: dict[str, str]) -> str:
    """Run ``command``; its stdout, or "" with the step marked timeout or failed."""
    if timeout < 5:
        step.reason = "the check's --budget is spent: skipped"
        return ""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              env=env, cwd=REPO)  # fmt: skip
    except subprocess.TimeoutExpired:
        step.status, step.reason = "timeout", f"stopped at its deadline, {timeout:.0f} s"
        return ""
    if done.returncode != 0:
        last = [line for line in done.stderr.splitlines() if line.strip()][-1:] or ["no output"]
        step.status, step.reason = "failed", f"exit {done.returncode}: {last[0][:300]}"
        return ""
    step.status = "ok"
    return done.stdout


def probe(step: Step, folder: Path, mode: str, sizes: Sizes, timeout: float) -> None:
    command = [sys.executable, str(BENCH / "gpu_check_worker.py"), str(folder), "--mode", mode,
               "--grid-points", str(sizes.grid_points)]  # fmt: skip
    for flag, value in (("--max-epochs", sizes.max_epochs), ("--patience", sizes.patience)):
        if value is not None:
            command += [flag, str(value)]
    env = dict(os.environ)
    if step.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # the probes use CUDA whenever torch sees it
    out = _subprocess(step, command, timeout, env)
    if out:
        step.numbers = json.loads(out.strip().splitlines()[-1])
        if step.numbers["device"] != step.device:
            step.status = "failed"
            step.reason = f"ran on {step.numbers['device']}, not {step.device}"


def heareval(step: Step, folder: Path, python: Path, timeout: float) -> None:
    """heareval's predictions runner on a fresh copy of ``folder``: wall time and score."""
    from probe_vs_heareval import fresh_copy, primary_score

    with tempfile.TemporaryDirectory(prefix="gpu-check-heareval-") as tmp:
        copy = fresh_copy(folder, Path(tmp))
        started = time.perf_counter()
        _subprocess(step, [str(python), "-m", "heareval.predictions.runner", str(copy)],
                    timeout, dict(os.environ))  # fmt: skip
        wall = time.perf_counter() - started
        scores = copy / "test.predicted-scores.json"
        if step.status == "ok":
            step.numbers = {"wall_seconds": round(wall, 3),
                            **primary_score(json.loads(scores.read_text()))}  # fmt: skip
            step.numbers["torch_sees_cuda"] = cmd(
                [str(python), "-c", "import torch; print(torch.cuda.is_available())"]
            )


def timed(step: Step, work: Callable[[], None], say: Callable[[str], None]) -> Step:
    """Run one step, recording its time; an exception fails the step with its first line."""
    say(f"{step.name} ({step.device}) ...")
    started = time.perf_counter()
    try:
        work()
    except Exception as e:
        step.status = "failed"
        step.reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
    step.seconds = round(time.perf_counter() - started, 3)
    say(f"{step.name} ({step.device}): {step.status} in {step.seconds:.1f} s {step.reason}")
    return step


def run_check(args: Any) -> int:
    console = Console(stderr=True)
    started, began = time.perf_counter(), datetime.now(UTC)
    state = torch_state()
    cuda = bool(state["cuda"]) and not args.cpu_smoke
    why_no_cuda = "--cpu-smoke: skipped" if state["cuda"] else f"{state['why']}: skipped"
    deadline = Deadline(args.budget or (420.0 if cuda else 240.0))

    def say(message: str) -> None:
        console.print(f"[bold]\\[gpu-check][/] {escape(message)}", highlight=False)

    steps: list[Step] = []

    def add(step: Step, work: Callable[[], None], skip: str | None = None) -> None:
        if skip:
            step.reason = skip
            say(f"{step.name} ({step.device}): {skip}")
            steps.append(step)
        else:
            steps.append(timed(step, work, say))

    no_torch = None if state["torch"] else f"{state['why']}: skipped"
    cuda_skip = None if cuda else why_no_cuda
    work_root = Path(args.work or tempfile.mkdtemp(prefix="gpu-check-"))
    data: dict[str, dict[str, Path]] = {}

    def prepare(step: Step, sizes: Sizes) -> Callable[[], None]:
        def build() -> None:
            data[step.device] = folders = make_tasks(work_root, sizes, step.device)
            step.status = "ok"
            step.numbers = {
                kind: {split: json.loads((folder / f"{split}.embedding-dimensions.json")
                                         .read_text()) for split in sizes.scene_clips}
                for kind, folder in folders.items()
            }  # fmt: skip

        return build

    for module in ("numpy_logmel", "gpu_check_model"):
        step = Step(f"embed {module}", "cpu")
        skip = no_torch if module == "gpu_check_model" else None
        add(step, lambda s=step, m=module: embed(s, m, "cpu", CPU, args.python), skip)
    step = Step("embed gpu_check_model", "cuda")
    add(step, lambda s=step: embed(s, "gpu_check_model", "cuda", CUDA, args.python),
        cuda_skip)  # fmt: skip
    for device, sizes, skip in (("cpu", CPU, no_torch), ("cuda", CUDA, no_torch or cuda_skip)):
        step = Step("synthetic embeddings", device)
        add(step, prepare(step, sizes), skip)
    for device, sizes, skip in (("cpu", CPU, no_torch), ("cuda", CUDA, no_torch or cuda_skip)):
        for kind in ("scene", "event"):
            for mode in ("fast", "faithful"):
                step = Step(f"probe {kind} {mode}", device)
                missing = skip or (None if device in data else "no embeddings: skipped")
                add(step, lambda s=step, d=device, k=kind, m=mode, z=sizes: probe(
                    s, data[d][k], m, z, min(z.probe_cap, deadline.left())), missing)  # fmt: skip
    have_heareval = args.heareval_python.is_file()
    for kind in ("scene", "event"):
        step = Step(f"heareval {kind}", "cuda")
        skip = cuda_skip or (None if have_heareval else
                             f"no heareval Python at {args.heareval_python} "
                             "(bench/setup-heareval; --heareval-python): skipped")  # fmt: skip
        skip = skip or (None if "cuda" in data else "no embeddings: skipped")
        add(step, lambda s=step, k=kind: heareval(
            s, data["cuda"][k], args.heareval_python,
            min(CUDA.heareval_cap, deadline.left())), skip)  # fmt: skip
    if not args.work:
        import shutil

        shutil.rmtree(work_root, ignore_errors=True)

    report = {
        "schema": SCHEMA,
        "started": began.isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 3),
        "form": "cuda" if cuda else "cpu",
        "budget_seconds": deadline.budget,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": machine(),
        "torch": state,
        "nvidia_smi": cmd(["nvidia-smi", f"--query-gpu={NVIDIA_SMI_FIELDS}", "--format=csv"]),
        "git": git_state("hear_runner", "bench"),
        "sizes": {"cpu": asdict(CPU), "cuda": asdict(CUDA)},
        "steps": [asdict(s) for s in steps],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    # A log (the device machine's output, CI) gets a table wide enough to read.
    Console(width=None if sys.stdout.isatty() else 140).print(table(report))
    say(f"wrote {args.out} ({report['seconds']:.0f} s)")
    return 1 if any(s.status == "failed" for s in steps) else 0


def _figures(step: dict[str, Any]) -> str:
    n = step["numbers"]
    if "audio_seconds_per_second" in n:
        gpu = n["peak_gpu_bytes"]
        gpu_text = f", peak GPU {gpu / 2**20:.0f} MiB" if gpu else ""
        return f"{n['audio_seconds_per_second']} audio s/s on {n['device_name']}{gpu_text}"
    if "test_score" in n:
        rows = sum(n["rows"].values())
        gpu = n.get("peak_gpu_bytes")
        gpu_text = f", peak GPU {gpu / 2**20:.0f} MiB" if gpu else ""
        return (f"{rows:,} rows x {n['dim']}: {n['primary']} {n['test_score']:.4f}, "
                f"{n['epochs_trained']} epochs{gpu_text}")  # fmt: skip
    if "score" in n:
        return f"test score {n['score']}, {n['wall_seconds']} s"
    return ", ".join(
        f"{kind} " + " / ".join(f"{rows:,}" for rows, _ in dims.values()) + f" x {dim}"
        for kind, dims in n.items()
        for dim in {d for _, d in dims.values()}
    )


def table(report: dict[str, Any]) -> Table:
    form = report["form"]
    device = report["torch"].get("device_name") or "no GPU"
    out = Table(title=f"gpu-check ({form} form, {device}, {report['seconds']:.0f} s)")
    for column in ("step", "device", "status", "seconds", "figures / reason"):
        out.add_column(column, justify="right" if column == "seconds" else "left")
    colours = {"ok": "green", "failed": "red", "timeout": "yellow", "skipped": "dim"}
    for s in report["steps"]:
        status = f"[{colours[s['status']]}]{s['status']}[/]"
        figures = _figures(s) if s["status"] == "ok" else s["reason"]
        out.add_row(s["name"], s["device"], status, f"{s['seconds']:.1f}", figures)
    return out
