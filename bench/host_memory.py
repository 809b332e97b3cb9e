"""Host memory while embedding a large task, and the time of a fully cached re-run.

Writes a scene task of at least ``--gigabytes`` of audio (float32 WAV at 48 kHz, two
labels: a tone in noise, low or high), embeds it with a real numpy HEAR module
(tests/hear_modules/numpy_logmel.py, log-mel statistics) through the local engine,
and records the peak resident memory of the `hear` process (the model server is a
separate process and not counted), then runs the same command again on the full
store (no model call) and records its time.

    .venv/bin/python bench/host_memory.py --gigabytes 5 --out bench/results/host_memory.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
RATE = 48000
SECONDS = 15.0


def write_task(root: Path, gigabytes: float) -> tuple[Path, int, float]:
    clip_bytes = int(RATE * SECONDS) * 4
    n = int(np.ceil(gigabytes * 2**30 / clip_bytes))
    split_of = {0: "valid", 1: "test"}
    path = root / "big-1.0.0-full"
    labels: dict[str, dict[str, list[str]]] = {"train": {}, "valid": {}, "test": {}}
    rng = np.random.default_rng(0)
    t = np.arange(int(RATE * SECONDS)) / RATE
    for i in range(n):
        split = split_of.get(i % 10, "train")
        label = "high" if i % 2 else "low"
        freq = (1760.0 if label == "high" else 220.0) * (1 + 0.02 * rng.standard_normal())
        audio = 0.3 * np.sin(2 * np.pi * freq * t) + 0.1 * rng.standard_normal(len(t))
        folder = path / str(RATE) / split
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"{i:05d}.wav", audio.astype(np.float32), RATE, subtype="FLOAT")
        labels[split][f"{i:05d}.wav"] = [label]
    for split, data in labels.items():
        (path / f"{split}.json").write_text(json.dumps(data))
    (path / "labelvocabulary.csv").write_text("idx,label\n0,low\n1,high\n")
    metadata = {
        "task_name": "big",
        "version": "1.0.0",
        "embedding_type": "scene",
        "prediction_type": "multiclass",
        "split_mode": "trainvaltest",
        "splits": ["train", "valid", "test"],
        "sample_duration": SECONDS,
        "evaluation": ["top1_acc"],
        "mode": "full",
    }
    (path / "task_metadata.json").write_text(json.dumps(metadata))
    audio_bytes = sum(f.stat().st_size for f in path.rglob("*.wav"))
    return path, n, audio_bytes / 2**30


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) of the command's own process, and its stderr tail."""
    wrapper = (
        "import resource, subprocess, sys, json, time\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "w = time.perf_counter() - t\n"
        "print(json.dumps({'rc': p.returncode, 'wall': w, "
        "'maxrss': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, "
        "'err': p.stderr[-2000:]}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True, env=env, check=True
    )
    result = json.loads(out.stdout)
    if result["rc"]:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{result['err']}")
    return result["wall"], result["maxrss"], result["err"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=5.0)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: temp)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/host_memory.json")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="hear-bench-mem-"))
    try:
        started = time.perf_counter()
        _, clips, gib = write_task(work / "tasks", args.gigabytes)
        print(
            f"wrote {clips} clips, {gib:.2f} GiB of audio in {time.perf_counter() - started:.0f} s"
        )
        env = {
            **os.environ,
            "HEAR_CACHE_DIR": str(work / "cache"),
            "PYTHONPATH": str(ROOT / "tests/hear_modules"),
        }
        hear = str(ROOT / ".venv/bin/hear")
        cmd = [
            hear,
            "run",
            "--model-module",
            "numpy_logmel",
            "--tasks-dir",
            str(work / "tasks"),
            "--results-dir",
            str(work / "results"),
            "--probe",
            "linear",
            "--batch-size",
            "32",
        ]
        first_wall, first_rss, _ = timed(cmd, env)
        record_path = next((work / "results").rglob("big-1.0.0-full.json"))
        record = json.loads(record_path.read_text())
        print(f"first run: {first_wall:.0f} s, hear peak RSS {first_rss:.0f} MiB")
        again_wall, again_rss, err = timed(cmd, env)
        assert "starting" not in err, "the cached re-run started the model"
        print(f"cached re-run: {again_wall:.1f} s, peak RSS {again_rss:.0f} MiB")
        result = {
            "command": "python bench/host_memory.py " + " ".join(sys.argv[1:]),
            "machine": {
                "cpu": platform.processor() or platform.machine(),
                "cores": os.cpu_count(),
                "python": platform.python_version(),
            },
            "task": {
                "clips": clips,
                "audio_gib": round(gib, 2),
                "seconds_per_clip": SECONDS,
                "sample_rate": RATE,
            },
            "first_run": {
                "wall_s": round(first_wall, 1),
                "hear_peak_rss_mib": round(first_rss),
                "audio_per_second": record["timings"].get("audio_per_second"),
            },
            "cached_rerun": {
                "wall_s": round(again_wall, 1),
                "hear_peak_rss_mib": round(again_rss),
                "model_started": False,
            },
            "test_score": record["test_score"],
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
