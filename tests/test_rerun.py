"""`hear run` writes a manifest; `hear rerun MANIFEST` repeats the run and compares scores,
and refuses inputs that are not the manifest's."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hear_runner.errors import HearError
from hear_runner.results.manifest import RunManifest, changes


def hear(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hear_runner", *args], capture_output=True, text=True, timeout=900
    )


def run_once(tasks: Path, results: Path, cache: Path, *options: str) -> Path:
    """`hear run` of numpy_logmel on the task folders in ``tasks``; its manifest."""
    done = hear(
        "run",
        "--model-module",
        "numpy_logmel",
        "--tasks-dir",
        str(tasks),
        "--results-dir",
        str(results),
        "--cache-dir",
        str(cache),
        *options,
    )
    assert done.returncode == 0, done.stderr
    [manifest] = (results / "manifests").glob("*.json")
    assert f"hear rerun {manifest}" in " ".join(done.stderr.split())
    return manifest


@pytest.fixture(scope="module")
def linear_run(tmp_path_factory: pytest.TempPathFactory, digits_task: Path) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("rerun")
    tasks = root / "tasks"
    shutil.copytree(digits_task, tasks / digits_task.name)
    results = root / "results"
    manifest = run_once(tasks, results, root / "cache", "--probe", "linear", "--seed", "7")
    return {
        "root": root,
        "tasks": tasks,
        "results": results,
        "manifest": manifest,
        "task": digits_task.name,
    }


def test_manifest_names_models_tasks_and_options(linear_run: dict[str, Any]) -> None:
    m = RunManifest.load(linear_run["manifest"])
    [model] = m.models
    assert (model.kind, model.ref) == ("module", "numpy_logmel")
    assert model.identity == f"numpy_logmel @ {Path(sys.executable).absolute()}"
    assert m.engine.engine == "local" and m.engine.python
    [task] = m.tasks
    assert task.name == linear_run["task"] and len(task.content_hash) == 16
    assert Path(task.path) == (linear_run["tasks"] / linear_run["task"]).resolve()
    assert (m.probe.mode, m.probe.seeds, m.probe.batch_size) == ("linear", [7], 32)
    record = json.loads((linear_run["results"] / m.results[0].record).read_text())
    assert m.results[0].test_score == record["test_score"]
    assert m.results[0].test == record["scores"]["test"]
    assert m.command[:2] == ["hear", "run"] and "--seed" in m.command


def test_rerun_gives_the_same_scores(linear_run: dict[str, Any], tmp_path: Path) -> None:
    done = hear(
        "rerun", str(linear_run["manifest"]), "--allow-local",
        "--results-dir", str(tmp_path / "again"),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all 1 (model, task) scores match" in done.stdout
    old = json.loads(
        (linear_run["results"] / "numpy_logmel" / f"{linear_run['task']}.json").read_text()
    )
    new = json.loads(
        (tmp_path / "again" / "numpy_logmel" / f"{linear_run['task']}.json").read_text()
    )
    assert new["scores"] == old["scores"] and new["timings"]["clips_embedded"] > 0  # embedded anew
    [again] = (tmp_path / "again" / "manifests").glob("*.json")
    assert RunManifest.load(again).rerun_of == str(linear_run["manifest"].resolve())


def test_rerun_refuses_a_changed_task_naming_it(linear_run: dict[str, Any], tmp_path: Path) -> None:
    name = linear_run["task"]
    edited = tmp_path / "edited"
    shutil.copytree(linear_run["tasks"] / name, edited / name)
    labels = json.loads((edited / name / "test.json").read_text())
    first = sorted(labels)[0]
    vocabulary = [
        line.split(",")[-1]
        for line in (edited / name / "labelvocabulary.csv").read_text().split()[1:]
    ]
    labels[first] = [next(v for v in vocabulary if v not in labels[first])]
    (edited / name / "test.json").write_text(json.dumps(labels))

    done = hear(
        "rerun",
        str(linear_run["manifest"]),
        "--allow-local",
        "--tasks-dir",
        str(edited),
        "--results-dir",
        str(tmp_path / "r"),
    )
    assert done.returncode == 1
    message = " ".join(done.stderr.split())
    assert f"task {name}" in message and "content hash" in message, message
    assert not (tmp_path / "r").exists()  # nothing ran

    done = hear(
        "rerun",
        str(linear_run["manifest"]),
        "--allow-local",
        "--tasks-dir",
        str(edited),
        "--results-dir",
        str(tmp_path / "r"),
        "--allow-changes",
    )
    assert "changed" in done.stderr and "content hash" in done.stderr
    assert done.returncode == 1 and "scores differ" in done.stdout, done.stdout + done.stderr


def test_rerun_of_fast_mlp_probe_matches_on_cpu(digits_task: Path, tmp_path: Path) -> None:
    """The batched MLP (--probe fast) is deterministic on the CPU with a fixed seed."""
    tasks = tmp_path / "tasks"
    shutil.copytree(digits_task, tasks / digits_task.name)
    manifest = run_once(
        tasks, tmp_path / "results", tmp_path / "cache", "--probe", "fast", "--grid-points", "1"
    )
    done = hear("rerun", str(manifest), "--allow-local")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all 1 (model, task) scores match" in done.stdout
    assert (tmp_path / f"results-rerun-{manifest.stem}" / "numpy_logmel").is_dir()


def test_changes_name_an_image_with_another_id(linear_run: dict[str, Any]) -> None:
    from hear_runner.tasks.folder import Task

    m = RunManifest.load(linear_run["manifest"])
    image = m.models[0].model_copy(
        update={"kind": "image", "ref": "org/model:1", "identity": "sha256:" + "a" * 64}
    )
    m = m.model_copy(update={"models": [image]})
    task = Task(Path(m.tasks[0].path))
    assert changes(m, ["sha256:" + "a" * 64], [task]) == []
    [line] = changes(m, ["sha256:" + "b" * 64], [task])
    assert "image org/model:1" in line and "sha256:bbbb" in line and "sha256:aaaa" in line


def test_a_file_that_is_not_a_manifest_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"models": []}')
    with pytest.raises(HearError, match="not a run manifest"):
        RunManifest.load(path)
    done = hear("rerun", str(path))
    assert done.returncode == 1 and "not a run manifest" in done.stderr
