"""The embedding store: cached re-runs, resumed runs, out-of-memory retries, `hear cache`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from conftest import ROOT


def hear(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hear_runner", *args], capture_output=True, text=True, timeout=600,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def run_args(digits_task: Path, results: Path, *extra: str) -> list[str]:
    return ["run", "--model-module", "faulty", "--tasks-dir", str(digits_task.parent),
            "--results-dir", str(results), "--probe", "linear", *extra]  # fmt: skip


def calls(log: Path) -> list[int]:
    """The batch size of every model call logged so far."""
    lines = log.read_text().splitlines() if log.exists() else []
    return [int(line.split()[0]) for line in lines]


def servers(log: Path) -> set[str]:
    """The process ids of the servers that made the logged calls."""
    return {line.split()[1] for line in log.read_text().splitlines()}


def clips(digits_task: Path) -> int:
    return sum(
        len(json.loads((digits_task / f"{s}.json").read_text())) for s in ("train", "valid", "test")
    )


def test_fully_cached_rerun_makes_no_model_call(digits_task: Path, tmp_path: Path) -> None:
    log = tmp_path / "calls"
    first = hear(*run_args(digits_task, tmp_path / "r"), env={"HEAR_TEST_CALL_LOG": str(log)})
    assert first.returncode == 0, first.stderr
    assert sum(calls(log)) == clips(digits_task)
    log.unlink()
    again = hear(*run_args(digits_task, tmp_path / "r", "--json"),
                 env={"HEAR_TEST_CALL_LOG": str(log)})  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert not log.exists() and "starting" not in again.stderr and "cached" in again.stderr
    [record] = json.loads(again.stdout)
    assert record["timings"]["embed_cached"] == 1.0
    assert record["model"]["sample_rate"] == 16000  # the hello, kept in the store


def test_killed_run_resumes_without_recomputing_a_finished_batch(
    digits_task: Path, tmp_path: Path, empty_embedding_store: Path
) -> None:
    log = tmp_path / "calls"
    args = run_args(digits_task, tmp_path / "r", "--batch-size", "2",
                    "--model-options", '{"fault": "slow"}')  # fmt: skip
    env = {**os.environ, "HEAR_TEST_CALL_LOG": str(log)}
    proc = subprocess.Popen([sys.executable, "-m", "hear_runner", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while len(calls(log)) < 6 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # the host dies mid-split: nothing gets to clean up
    proc.wait()
    assert len(calls(log)) >= 6, "the run ended before it could be killed"
    finished = 0
    for batch in empty_embedding_store.rglob("batch-*.json"):
        finished += len(json.loads(batch.read_text())["clips"])
    finished += sum(
        len(json.loads(p.read_text())["files"]) for p in empty_embedding_store.rglob("split.json")
    )
    assert finished >= 2
    log.unlink()
    again = subprocess.run([sys.executable, "-m", "hear_runner", *args], env=env,
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert sum(calls(log)) == clips(digits_task) - finished  # every finished batch was kept


def test_out_of_memory_batches_are_halved_and_retried(digits_task: Path, tmp_path: Path) -> None:
    log = tmp_path / "calls"
    result = hear(*run_args(digits_task, tmp_path / "r", "--batch-size", "8",
                            "--model-options", '{"fault": "oom"}'),
                  env={"HEAR_TEST_CALL_LOG": str(log)})  # fmt: skip
    assert result.returncode == 0, result.stderr
    sizes = calls(log)
    assert sizes[:3] == [8, 4, 2]  # halved until the model fits, then kept small
    assert max(sizes[3:]) <= 2
    assert sum(s for s in sizes if s <= 2) == clips(digits_task)


def test_overwrite_never_fails_naming_the_missing_split(digits_task: Path, tmp_path: Path) -> None:
    result = hear(*run_args(digits_task, tmp_path / "r", "--overwrite", "never"))
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert digits_task.name in line and "split 'train'" in line and "--overwrite never" in line


def test_cache_list_and_remove(digits_task: Path, tmp_path: Path) -> None:
    assert hear(*run_args(digits_task, tmp_path / "r")).returncode == 0
    listed = json.loads(hear("cache", "list", "--json").stdout)
    assert {e["split"] for e in listed} == {"train", "valid", "test"}
    assert all(e["complete"] and e["model"] == "faulty" and e["rows"] for e in listed)
    removed = hear("cache", "remove", "--task", digits_task.name)
    assert removed.returncode == 0 and digits_task.name in removed.stdout
    assert json.loads(hear("cache", "list", "--json").stdout) == []


def test_store_is_outside_the_repository_by_default() -> None:
    env = {k: v for k, v in os.environ.items() if k != "HEAR_CACHE_DIR"}
    out = subprocess.run(
        [sys.executable, "-c", "from hear_runner.embed.store import default_cache_dir as d; print(d())"],
        capture_output=True, text=True, env=env, check=True,
    ).stdout.strip()  # fmt: skip
    assert out.endswith("embeddings") and not out.startswith(str(ROOT))


def test_two_servers_share_the_splits_and_agree_with_one(digits_task: Path, tmp_path: Path) -> None:
    log = tmp_path / "calls"
    two = hear(*run_args(digits_task, tmp_path / "r2", "--workers", "2", "--batch-size", "4",
                         "--json", "--cache-dir", str(tmp_path / "c2")),
               env={"HEAR_TEST_CALL_LOG": str(log)})  # fmt: skip
    assert two.returncode == 0, two.stderr
    assert len(servers(log)) == 2 and sum(calls(log)) == clips(digits_task)
    one = hear(
        *run_args(digits_task, tmp_path / "r1", "--json", "--cache-dir", str(tmp_path / "c1"))
    )
    assert one.returncode == 0, one.stderr
    [record2], [record1] = json.loads(two.stdout), json.loads(one.stdout)
    servers2 = record2["model"]["engine"]["servers"]
    assert len(servers2) == 2
    # Each server reports its peak memory (a Python process with numpy: tens of MB) and its
    # share of the calls; together they made every call.
    assert all(s["peak_rss_bytes"] > 10_000_000 for s in servers2)
    # ... and what it ran on: the CPU, so no GPU memory (contract: device_name, peak_gpu_bytes).
    assert all((s["device"], s["device_name"], s["peak_gpu_bytes"]) == ("cpu", "cpu", None)
               for s in servers2)  # fmt: skip
    assert sum(s["calls"] for s in servers2) == len(calls(log))
    assert record2["scores"] == record1["scores"]  # the same embeddings, in the same order
    a = sorted((tmp_path / "c2").rglob("train/embeddings.npy"))[0]
    b = sorted((tmp_path / "c1").rglob("train/embeddings.npy"))[0]
    assert np.array_equal(np.load(a), np.load(b))


def test_max_clip_seconds_chunks_clips_and_keys_the_store(digits_task: Path, tmp_path: Path) -> None:
    duration = json.loads((digits_task / "task_metadata.json").read_text())["sample_duration"]
    log = tmp_path / "calls"
    chunked = hear(*run_args(digits_task, tmp_path / "r", "--json", "--max-clip-seconds",
                             str(duration / 2)), env={"HEAR_TEST_CALL_LOG": str(log)})  # fmt: skip
    assert chunked.returncode == 0, chunked.stderr
    [record] = json.loads(chunked.stdout)
    assert record["model"]["max_clip_seconds"] == duration / 2
    assert set(calls(log)) == {1} and len(calls(log)) == 2 * clips(digits_task)  # two chunks each
    whole = hear(*run_args(digits_task, tmp_path / "r", "--json"))
    assert whole.returncode == 0 and "starting" in whole.stderr  # not served from the chunked key
