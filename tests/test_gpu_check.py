"""bench/gpu-check's CPU form, as CI runs it: real servers, real probes, CUDA steps skipped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
SCRIPT = ROOT / "bench" / "gpu-check"

CPU_STEPS = [
    ("embed numpy_logmel", "cpu"),
    ("embed gpu_check_model", "cpu"),
    ("synthetic embeddings", "cpu"),
    ("probe scene fast", "cpu"),
    ("probe scene faithful", "cpu"),
    ("probe event fast", "cpu"),
    ("probe event faithful", "cpu"),
]
CUDA_STEPS = [
    ("embed gpu_check_model", "cuda"),
    ("synthetic embeddings", "cuda"),
    ("probe scene fast", "cuda"),
    ("probe scene faithful", "cuda"),
    ("probe event fast", "cuda"),
    ("probe event faithful", "cuda"),
    ("heareval scene", "cuda"),
    ("heareval event", "cuda"),
]


@pytest.fixture(scope="module")
def cpu_form(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, dict]:
    torch = pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("gpu-check") / "gpu-check.json"
    # On a machine with CUDA, --cpu-smoke keeps this the CPU form CI runs.
    smoke = ["--cpu-smoke"] if torch.cuda.is_available() else []
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), *smoke],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done, json.loads(out.read_text())


def test_help_names_the_forms() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert "--cpu-smoke" in done.stdout and "--out" in done.stdout and "heareval" in done.stdout


def test_cpu_form_runs_every_cpu_step_and_skips_cuda_saying_why(cpu_form) -> None:
    import torch

    done, report = cpu_form
    assert report["schema"] == "hear-gpu-check/1" and report["form"] == "cpu"
    steps = {(s["name"], s["device"]): s for s in report["steps"]}
    assert list(steps) == [*CPU_STEPS[:2], CUDA_STEPS[0], CPU_STEPS[2], CUDA_STEPS[1],
                           *CPU_STEPS[3:], *CUDA_STEPS[2:]]  # fmt: skip
    why = "--cpu-smoke" if torch.cuda.is_available() else "no CUDA: torch"
    for key in CUDA_STEPS:
        step = steps[key]
        assert step["status"] == "skipped" and step["numbers"] == {}, key
        assert step["reason"].startswith(why) and step["reason"].endswith("skipped"), key
    for key in CPU_STEPS:
        assert steps[key]["status"] == "ok", (key, steps[key]["reason"])
    assert report["seconds"] < report["budget_seconds"]
    # The table is printed: every step, its status.
    for name, _ in CPU_STEPS + CUDA_STEPS:
        assert name in done.stdout
    assert done.stdout.count("skipped") >= len(CUDA_STEPS)


def test_cpu_servers_say_cpu_and_report_no_gpu_memory(cpu_form) -> None:
    _, report = cpu_form
    steps = {(s["name"], s["device"]): s for s in report["steps"]}
    for module in ("numpy_logmel", "gpu_check_model"):
        numbers = steps[(f"embed {module}", "cpu")]["numbers"]
        assert numbers["module"] == module
        assert (numbers["hello_device"], numbers["device_name"]) == ("cpu", "cpu")
        assert numbers["hello_peak_gpu_bytes"] is None and numbers["peak_gpu_bytes"] is None
        assert numbers["peak_rss_bytes"] > 0 and all(numbers["checks"].values())
        assert numbers["audio_seconds"] == 16.0  # 2 batches of 4 clips of 2 s
        assert numbers["audio_seconds_per_second"] > 0 and numbers["model_seconds"] > 0
    model = steps[("embed gpu_check_model", "cpu")]["numbers"]
    assert model["frames_shape"] == [4, 101, 1024]  # 2 s every 20 ms, 1024-d


def test_cpu_probes_give_real_scores_on_the_synthetic_tasks(cpu_form) -> None:
    _, report = cpu_form
    steps = {(s["name"], s["device"]): s for s in report["steps"]}
    sizes = report["sizes"]["cpu"]
    dims = steps[("synthetic embeddings", "cpu")]["numbers"]
    assert dims["scene"] == {split: [n, 64] for split, n in sizes["scene_clips"].items()}
    frames = int(sizes["event_seconds"] * 1000 / 50)  # a frame every 50 ms
    assert dims["event"] == {s: [n * frames, 64] for s, n in sizes["event_clips"].items()}
    for kind, primary in (("scene", "top1_acc"), ("event", "event_onset_200ms_fms")):
        for mode in ("fast", "faithful"):
            numbers = steps[(f"probe {kind} {mode}", "cpu")]["numbers"]
            assert (numbers["device"], numbers["device_name"]) == ("cpu", "cpu")
            assert numbers["primary"] == primary and 0.0 <= numbers["test_score"] <= 1.0
            assert numbers["rows"] == {s: r for s, (r, _) in dims[kind].items()}
            assert numbers["grid_points"] == sizes["grid_points"]
            assert 0 < numbers["epochs_trained"] <= sizes["max_epochs"]
            assert numbers["probe_seconds"] > 0 and numbers["peak_gpu_bytes"] is None


def test_a_python_without_the_needed_packages_is_told_what_to_carry(tmp_path: Path) -> None:
    # -S: no site-packages, so numpy, pydantic... are missing; no wheels to install from.
    bare = [sys.executable, "-S", str(SCRIPT), "--wheels", str(tmp_path)]
    done = subprocess.run(
        [*bare, "--out", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    message = done.stderr.strip()
    assert len(message.splitlines()) == 1 and "lacks numpy, pydantic" in message
    assert "--fetch-wheels" in message
    assert not (tmp_path / "x").exists()
