"""`hear plan` and `hear run --dry-run`: sizes, store holdings and estimates, starting nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf

from hear_runner.plan.sizes import WAV_HEADER_BYTES, folder_size
from hear_runner.plan.throughput import SHIPPED, load_throughputs

MODULE = ["--model-module", "numpy_logmel"]


def hear(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "hear_runner", *args], capture_output=True, text=True,
        timeout=600, env={**os.environ, **(env or {})},
    )  # fmt: skip


def plan_json(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = hear("plan", *args, "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def table(path: Path, probe_fixed: float) -> dict[str, str]:
    """A throughputs file like the shipped one, every probe costing ``probe_fixed`` seconds."""
    data = json.loads(SHIPPED.read_text())
    for cost in data["probes"].values():
        cost.update(fixed_seconds=probe_fixed, seconds_per_training=0.0, seconds_per_unit=0.0,
                    event=None)  # fmt: skip
    path.write_text(json.dumps(data))
    return {"HEAR_THROUGHPUTS": str(path)}


@pytest.fixture(scope="module")
def tasks(mini_task: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Mini spoken digits (train/valid/test) and sound events (an event task), smoke scale."""
    root = tmp_path_factory.mktemp("plan_tasks")
    for name in ("spoken_digits", "sound_events"):
        folder = mini_task(name)
        shutil.copytree(folder, root / folder.name)
    return root


@pytest.fixture(scope="module")
def ran(tasks: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real `hear run` (local engine, linear probe) of the digits task; a table whose probe
    costs a minute makes it long enough to show its plan first."""
    base = tmp_path_factory.mktemp("ran")
    folders = {"results": base / "results", "cache": base / "cache"}
    env = table(base / "slow.json", probe_fixed=120.0)
    digits = next(tasks.glob("mini_spoken_digits*")).name
    result = hear("run", *MODULE, "--tasks-dir", str(tasks), "--task", digits, "--probe",
                  "linear", "--results-dir", str(folders["results"]), "--cache-dir",
                  str(folders["cache"]), env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return {**folders, "digits": digits, "stdout": result.stdout, "base": base}


def rows_by_task(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["task"]["name"]: row for row in plan["rows"]}


def test_clips_and_hours_are_exact_and_frames_use_the_50_ms_hop(tasks: Path, tmp_path: Path):
    plan = plan_json(*MODULE, "--tasks-dir", str(tasks), "--results-dir", str(tmp_path / "none"),
                     "--cache-dir", str(tmp_path / "cache"))  # fmt: skip
    rows = rows_by_task(plan)
    assert len(rows) == 2
    for folder in tasks.iterdir():
        row = rows[folder.name]
        metadata = json.loads((folder / "task_metadata.json").read_text())
        rate = min(int(p.name) for p in folder.iterdir() if p.name.isdigit())
        for split, count in row["task"]["clips"].items():
            files = json.loads((folder / f"{split}.json").read_text())
            assert count == len(files)
            seconds = sum(sf.info(folder / str(rate) / split / f).duration for f in files)
            assert row["task"]["audio_seconds"][split] == pytest.approx(seconds, rel=1e-6)
        assert row["task"]["duration_source"] == "sample_duration"
        assert row["stored"]["state"] == "nothing"
        assert row["embed"]["source"] == row["probe"]["source"] == "table"
        if metadata["embedding_type"] == "event":
            assert row["hop_ms"] == 50 and row["hop_source"] == "HEAR default"
            assert row["frames"] == round(sum(row["task"]["audio_seconds"].values()) * 20)
        else:
            assert row["frames"] is None
    assert plan["total_seconds"] > 0 and plan["unknown"] == 0


def test_without_sample_duration_hours_come_from_file_sizes(tasks: Path, tmp_path: Path):
    digits = next(tasks.glob("mini_spoken_digits*"))
    copy = shutil.copytree(digits, tmp_path / digits.name)
    metadata = json.loads((copy / "task_metadata.json").read_text())
    metadata.pop("sample_duration", None)
    (copy / "task_metadata.json").write_text(json.dumps(metadata))
    size = folder_size(copy)
    assert size.duration_source == "file sizes (16-bit PCM)"
    for split in size.clips:
        folder = next(p for p in copy.iterdir() if p.name.isdigit()) / split
        seconds = sum(sf.info(f).duration for f in folder.iterdir())
        assert size.audio_seconds[split] == pytest.approx(seconds, abs=1e-6)


def test_a_large_folder_is_sized_from_its_listings_and_file_sizes(tmp_path: Path):
    """20,000 clips of varying length (sparse wav files): exact hours, no audio read."""
    task = tmp_path / "big-1.0.0-full"
    rate, per_split = 16000, {"train": 16000, "valid": 2000, "test": 2000}
    metadata = {"task_name": "big", "version": "1.0.0", "embedding_type": "scene",
                "prediction_type": "multilabel", "split_mode": "trainvaltest",
                "evaluation": ["mAP"]}  # fmt: skip
    task.mkdir()
    (task / "task_metadata.json").write_text(json.dumps(metadata))
    (task / "labelvocabulary.csv").write_text("idx,label\n0,a\n")
    expected = {}
    for split, count in per_split.items():
        folder = task / str(rate) / split
        folder.mkdir(parents=True)
        samples = [(i % 50) * 160 for i in range(count)]  # 0 to 0.49 s, 10 ms steps
        for i, n in enumerate(samples):
            with open(folder / f"{i}.wav", "wb") as handle:  # sparse: its size, no data
                handle.truncate(WAV_HEADER_BYTES + 2 * n)
        (task / f"{split}.json").write_text(json.dumps({f"{i}.wav": ["a"] for i in range(count)}))
        expected[split] = sum(samples) / rate
    size = folder_size(task)
    assert size.clips == per_split and size.total_clips == 20000
    assert size.audio_seconds == pytest.approx(expected, abs=1e-9)


def test_estimates_come_from_the_record_after_a_real_run(ran: dict[str, Any], tasks: Path):
    assert "hear plan" in ran["stdout"] and "total" in ran["stdout"]  # a long run: shown first
    assert ran["stdout"].index("hear plan") < ran["stdout"].index("HEAR results")  # before scores
    plan = plan_json(*MODULE, "--tasks-dir", str(tasks), "--results-dir", str(ran["results"]),
                     "--cache-dir", str(ran["cache"]), "--probe", "linear")  # fmt: skip
    rows = rows_by_task(plan)
    digits = rows[ran["digits"]]
    assert digits["stored"] == {"state": "complete", "complete_splits": ["train", "valid", "test"],
                                "clips": digits["task"]["total_clips"], "note": ""}  # fmt: skip
    assert digits["embed"]["source"] == "record" and digits["embed"]["seconds"] == 0
    assert digits["probe"]["source"] == "record" and ran["digits"] in digits["probe"]["detail"]
    [record] = (ran["results"] / "numpy_logmel").glob("*.json")
    timings = json.loads(record.read_text())["timings"]
    # The record's own task is predicted as its probe took; others scaled by their work.
    assert digits["probe"]["seconds"] == pytest.approx(timings["probe"])
    events = rows[next(n for n in rows if n.startswith("mini_sound_events"))]
    assert events["stored"]["state"] == "nothing" and events["embed"]["source"] == "table"
    assert plan["model_start"]["numpy_logmel"]["source"] == "record"
    fast = plan_json(*MODULE, "--tasks-dir", str(tasks), "--results-dir", str(ran["results"]),
                     "--cache-dir", str(ran["cache"]), "--probe", "fast")  # fmt: skip
    assert rows_by_task(fast)[ran["digits"]]["probe"]["source"] == "table"  # no fast record


def test_a_partial_store_is_shown_split_by_split(ran: dict[str, Any], tasks: Path, tmp_path: Path):
    cache = shutil.copytree(ran["cache"], tmp_path / "cache")
    [test_split] = cache.glob(f"numpy_logmel-*/{ran['digits']}-*/test")
    shutil.rmtree(test_split)
    plan = plan_json(*MODULE, "--tasks-dir", str(tasks), "--task", ran["digits"],
                     "--results-dir", str(ran["results"]), "--cache-dir", str(cache))  # fmt: skip
    [row] = plan["rows"]
    test_clips = row["task"]["clips"]["test"]
    assert row["stored"]["state"] == "partial"
    assert row["stored"]["complete_splits"] == ["train", "valid"]
    assert row["stored"]["clips"] == row["task"]["total_clips"] - test_clips
    rate = float(row["embed"]["detail"].split()[0])
    left = row["task"]["audio_seconds"]["test"]
    assert row["embed"]["seconds"] == pytest.approx(left / rate, rel=1e-4)


def test_a_short_run_does_not_print_its_plan(ran: dict[str, Any], tasks: Path, tmp_path: Path):
    env = table(tmp_path / "quick.json", probe_fixed=0.0)
    result = hear("run", *MODULE, "--tasks-dir", str(tasks), "--task", ran["digits"],
                  "--probe", "linear", "--results-dir", str(tmp_path / "results"),
                  "--cache-dir", str(ran["cache"]), env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "hear plan" not in result.stdout and "hear plan" not in result.stderr


def test_a_plugin_task_not_prepared_is_listed_and_not_prepared(tmp_path: Path):
    tasks = tmp_path / "tasks"
    plan = plan_json(*MODULE, "--tasks-dir", str(tasks), "--task", "mini_drums",
                     "--results-dir", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"))  # fmt: skip
    [row] = plan["rows"]
    assert row["task"]["prepared"] is False and row["task"]["name"] == "mini_drums"
    assert row["task"]["split_mode"] == "presplit_kfold" and row["task"]["clips"] == {}
    assert row["stored"]["state"] == "unknown" and row["embed"]["source"] == "no data"
    assert plan["unknown"] == 2
    assert not tasks.exists() and not (tmp_path / "c").exists()
    shown = hear("plan", *MODULE, "--tasks-dir", str(tasks), "--task", "mini_drums")
    assert shown.returncode == 0 and "not prepared" in shown.stdout


def test_a_malformed_throughputs_file_is_one_line_naming_it(tasks: Path, tmp_path: Path):
    data = json.loads(SHIPPED.read_text())
    data["models"]["default"]["scene_audio_per_second"] = "fast"
    bad = tmp_path / "throughputs.json"
    bad.write_text(json.dumps(data))
    result = hear("plan", *MODULE, "--tasks-dir", str(tasks), env={"HEAR_THROUGHPUTS": str(bad)})
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert str(bad) in line and "models.default.scene_audio_per_second" in line


def test_the_shipped_throughputs_name_where_each_figure_was_measured():
    from hear_runner.probes.stage import PROBE_MODES

    shipped = load_throughputs(SHIPPED)
    assert {"default", "naive"} <= set(shipped.models)
    assert set(shipped.probes) == set(PROBE_MODES)  # a plan checks --probe against it
    for entry in [*shipped.models.values(), *shipped.probes.values()]:
        assert entry.measured.command and entry.measured.date and entry.measured.machine


def created_containers(docker_client: Any, args: list[str]) -> tuple[int, str, int]:
    """Run `hear ARGS`: its exit status, stdout and how many containers it created (Docker's
    events, by the owner label hear puts on each: other runs on this engine do not count)."""
    import os
    import time

    from hear_runner.engines.leftovers import OWNER_PID

    since = int(time.time()) - 1
    proc = subprocess.Popen([sys.executable, "-m", "hear_runner", *args], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ)  # fmt: skip
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    events = docker_client.events(since=since, until=int(time.time()) + 1, decode=True,
                                  filters={"type": "container", "event": "create",
                                           "label": f"{OWNER_PID}={proc.pid}"})  # fmt: skip
    return proc.returncode, stdout, len(list(events))


@pytest.mark.docker
def test_dry_run_prints_the_plan_and_starts_no_container(
    naive_image: str, docker_client: Any, tasks: Path, tmp_path: Path
):
    """The image is identified by `docker image inspect`: its stored embeddings are found."""
    digits = next(tasks.glob("mini_spoken_digits*")).name
    cache = tmp_path / "cache"
    embed = ["embed", "--model-image", naive_image, "--tasks-dir", str(tasks), "--task", digits,
             "--out", str(tmp_path / "embeddings"), "--cache-dir", str(cache)]  # fmt: skip
    assert created_containers(docker_client, embed)[2] == 1  # the count sees a real start
    stored = sorted(p.relative_to(cache) for p in cache.rglob("*"))
    results = tmp_path / "results"
    args = ["--model-image", naive_image, "--tasks-dir", str(tasks), "--task", digits,
            "--results-dir", str(results), "--cache-dir", str(cache), "--json"]  # fmt: skip
    _, dry, created = created_containers(docker_client, ["run", "--dry-run", *args])
    assert created == 0 and not results.exists()
    assert sorted(p.relative_to(cache) for p in cache.rglob("*")) == stored
    [row] = json.loads(dry)["rows"]
    assert row["stored"]["state"] == "complete" and row["model"] == naive_image
    assert plan_json(*args[:-1]) == json.loads(dry)
    named = plan_json("--model", "naive", *args[2:-1])
    assert named["rows"][0]["stored"]["state"] == "complete"  # the same image, the same store
    assert named["rows"][0]["embed"]["detail"].endswith("(naive)")  # the table's naive entry


def test_a_table_fitted_from_records_is_one_a_plan_reads(ran: dict[str, Any], tasks: Path,
                                                         tmp_path: Path):  # fmt: skip
    fitted = subprocess.run(
        [sys.executable, "-m", "hear_runner.plan.fit", str(ran["results"]), "--command",
         "hear run ...", "--machine", "this one"], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert fitted.returncode == 0, fitted.stderr
    path = tmp_path / "fitted.json"
    path.write_text(fitted.stdout)
    table = load_throughputs(path)
    assert set(table.models) == {"numpy_logmel", "default"} and set(table.probes) == {"linear"}
    [record] = (ran["results"] / "numpy_logmel").glob("*.json")
    timings = json.loads(record.read_text())["timings"]
    assert table.models["numpy_logmel"].scene_audio_per_second == pytest.approx(
        timings["audio_seconds"] / timings["embed_wall"], abs=0.01
    )
    plan = plan_json(*MODULE, "--tasks-dir", str(tasks), "--probe", "linear", "--results-dir",
                     str(tmp_path / "none"), env={"HEAR_THROUGHPUTS": str(path)})  # fmt: skip
    assert plan["throughputs"] == str(path) and plan["unknown"] == 0


def referenced(path: Path, tasks: Path) -> dict[str, str]:
    """A table with a bench measurement (a reference) of each mini task, for numpy_logmel:
    embedding in 50 s, a linear probe in 30 s, each of exactly the work a plan of the task
    counts (no record: the table's embedding size)."""
    data = json.loads(SHIPPED.read_text())
    for cost in data["probes"].values():  # work counted in trainings only
        cost.update(fixed_seconds=0.0, seconds_per_training=1.0, seconds_per_unit=0.0,
                    event=None)  # fmt: skip
    entry = {**data["models"]["default"], "start_seconds": 2.0}
    data["models"]["numpy_logmel"] = entry
    data["references"] = []
    for folder in tasks.iterdir():
        size = folder_size(folder)
        event = size.embedding_type == "event"
        rows = sum(size.audio_seconds[s] * 20 if event else size.clips[s] for s in ["train"])
        dim = entry["timestamp_embedding_size" if event else "scene_embedding_size"]
        data["references"].append({
            "model": "numpy_logmel", "task_name": size.task_name,
            "embedding_type": size.embedding_type, "clips": size.total_clips,
            "audio_seconds": size.total_seconds, "embed_seconds": 50.0,
            "probes": {"linear": {"trainings": 1, "units": rows * dim, "seconds": 30.0}},
            "measured": {"command": "bench/full_size.py ...", "date": "2026-12-08",
                         "machine": "the bench's"},
        })  # fmt: skip
    path.write_text(json.dumps(data))
    return {"HEAR_THROUGHPUTS": str(path)}


def test_a_measured_task_is_planned_from_its_reference(ran: dict[str, Any], tasks: Path,
                                                       tmp_path: Path):  # fmt: skip
    """A task the bench measured is planned as measured (the cost model cannot know when its
    trainings stop early); a record of that very task comes first, one of another after."""
    env = referenced(tmp_path / "referenced.json", tasks)
    args = [*MODULE, "--tasks-dir", str(tasks), "--probe", "linear"]
    fresh = rows_by_task(plan_json(*args, "--results-dir", str(tmp_path / "none"),
                                   "--cache-dir", str(tmp_path / "cache"), env=env))  # fmt: skip
    for row in fresh.values():
        assert row["embed"]["source"] == row["probe"]["source"] == "reference"
        assert row["probe"]["seconds"] == pytest.approx(30.0)  # the same work: as measured
        assert row["embed"]["seconds"] == pytest.approx(48.0)  # its model start counted apart
        assert "bench: numpy_logmel on" in row["probe"]["detail"]
    # Another scene task (the digits under another name): the digits' record is not its own.
    both = shutil.copytree(tasks / ran["digits"], tmp_path / "tasks" / ran["digits"])
    other = shutil.copytree(both, both.parent / "mini_other_digits-1.0.0-smoke")
    metadata = json.loads((other / "task_metadata.json").read_text())
    (other / "task_metadata.json").write_text(json.dumps({**metadata, "task_name": "other"}))
    args = [*MODULE, "--tasks-dir", str(both.parent), "--probe", "linear", "--results-dir",
            str(ran["results"]), "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    shipped = rows_by_task(plan_json(*args))
    assert shipped[other.name]["probe"]["source"] == "record"  # the digits' record, scaled
    env = referenced(tmp_path / "both.json", both.parent)
    after = rows_by_task(plan_json(*args, env=env))
    assert after[ran["digits"]]["probe"]["source"] == "record"  # its own record comes first
    assert after[other.name]["probe"]["source"] == "reference"  # before another task's
    # ... which says how this machine compares with the bench's: the digits took P seconds
    # where their reference said 30, so the other task's 30 become P.
    [record] = (ran["results"] / "numpy_logmel").glob("*.json")
    timings = json.loads(record.read_text())["timings"]
    assert after[other.name]["probe"]["seconds"] == pytest.approx(timings["probe"], rel=1e-3)
    assert "on this machine" in after[other.name]["probe"]["detail"]
    # The same for embedding: the digits embedded in W seconds where their reference said 48.
    assert after[other.name]["embed"]["source"] == "reference"
    assert after[other.name]["embed"]["seconds"] == pytest.approx(timings["embed_wall"], rel=0.01)


def test_a_reference_is_taken_as_measured_where_the_cost_model_is_all_zeros(tasks: Path,
                                                                           tmp_path: Path):  # fmt: skip
    """A table whose probe costs nothing cannot scale: the reference's time stands."""
    path = tmp_path / "zeros.json"
    referenced(path, tasks)
    data = json.loads(path.read_text())
    for cost in data["probes"].values():
        cost.update(seconds_per_training=0.0)
    path.write_text(json.dumps(data))
    plan = plan_json(*MODULE, "--tasks-dir", str(tasks), "--probe", "linear", "--results-dir",
                     str(tmp_path / "none"), env={"HEAR_THROUGHPUTS": str(path)})  # fmt: skip
    assert [row["probe"]["seconds"] for row in plan["rows"]] == [30.0, 30.0]
