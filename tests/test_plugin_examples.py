"""docs/examples' plugins, pip-installed (not editable) into a fresh venv beside hear-runner,
work as docs/plugins.md says: my_task from real clips, my_model built from its package data."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from docker.errors import ImageNotFound
from userclips import labels_csv
from venvs import fresh_venv, pip_install, venv_env

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "docs" / "examples"
FOLDER = "my_task-1.0-full"


def _not_for_the_wheel(folder: str, names: list[str]) -> set[str]:
    """The checkout's own clutter (top level only: hear_runner/build/ is code)."""
    if Path(folder) != ROOT:
        return {n for n in names if n == "__pycache__"}
    top = {"build", "dist", "tests", "bench", "docs", "hear-data", "hear-results"}
    return {n for n in names if n in top or n.startswith(".") or n.endswith(".egg-info")}


@pytest.fixture(scope="module")
def python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with hear-runner and both examples installed from copies of their sources."""
    work = tmp_path_factory.mktemp("examples")
    python = fresh_venv(work / "venv")
    # Building writes build/ and *.egg-info beside the source: build copies.
    runner = work / "hear-runner"
    shutil.copytree(ROOT, runner, ignore=_not_for_the_wheel)
    pip_install(python, str(runner))
    for name in ("hear-example-task", "hear-example-model"):
        shutil.copytree(EXAMPLES / name, work / name)
        pip_install(python, str(work / name))
    return python


def hear(python: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python.parent / "hear"), *args], capture_output=True, text=True, timeout=1200,
        env={**venv_env(python), **env}, cwd=python.parent,
    )  # fmt: skip


def json_out(python: Path, *args: str, **env: str) -> list[dict]:
    done = hear(python, *args, "--json", **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def clips(tmp_path: Path) -> Path:
    """A user's folder: links to real clips and labels.csv (voice or chime, two per split)."""
    return labels_csv(tmp_path / "my-clips").parent


@pytest.mark.parametrize("name", ["hear-example-task", "hear-example-model"])
def test_example_plugins_are_under_40_lines(name: str) -> None:
    module = EXAMPLES / name / name.replace("-", "_") / "__init__.py"
    assert len(module.read_text().splitlines()) < 40


def test_installed_examples_are_listed_with_their_distributions(python: Path) -> None:
    listed = {p["name"]: p for p in json_out(python, "plugins")}
    assert listed["example_task"]["distribution"] == "hear-example-task"
    assert listed["example_task"]["hooks"] == ["hear_register_tasks"]
    assert listed["example_model"]["distribution"] == "hear-example-model"
    assert listed["example_model"]["hooks"] == ["hear_register_models"]


def test_example_model_names_its_image_and_the_folder_shipped_in_its_package(python: Path) -> None:
    models = {m["name"]: m for m in json_out(python, "models", "list")}
    my_model = models["my_model"]
    assert my_model["plugin"] == "example_model"
    assert my_model["image"] == "hear-example/my-model:latest"
    build = Path(my_model["build"])
    assert "site-packages" in build.parts and not build.is_relative_to(EXAMPLES)
    assert (build / "Dockerfile").read_text().count("FROM ${BASE_IMAGE}") == 1
    assert (build / "my_model.py").is_file()


def test_example_task_is_prepared_from_the_users_clips(python: Path, clips: Path, tmp_path: Path) -> None:  # fmt: skip
    tasks = tmp_path / "tasks"
    listed = {t["name"]: t for t in json_out(python, "tasks", "list", "--tasks-dir", str(tasks))}
    assert listed["my_task"]["plugin"] == "example_task" and listed["my_task"]["present"] is False
    unset = hear(python, "tasks", "prepare", "my_task", "--tasks-dir", str(tasks))
    assert unset.returncode != 0 and "HEAR_MY_TASK_DIR" in unset.stderr
    assert "Traceback" not in unset.stderr
    prepared = hear(python, "tasks", "prepare", "my_task", "--tasks-dir", str(tasks),
                    HEAR_MY_TASK_DIR=str(clips))  # fmt: skip  (its only scale, full, by default)
    assert prepared.returncode == 0, prepared.stderr
    listed = {t["name"]: t for t in json_out(python, "tasks", "list", "--tasks-dir", str(tasks))}
    assert listed["my_task"]["folders"] == [FOLDER] and listed["my_task"]["clips"] == 12


@pytest.mark.docker
def test_example_model_is_built_and_run_on_the_example_task(python: Path, clips: Path, tmp_path: Path, docker_client) -> None:  # fmt: skip
    tasks, results = tmp_path / "tasks", tmp_path / "results"
    with contextlib.suppress(ImageNotFound):  # so the run builds it from the package's folder
        docker_client.images.remove("hear-example/my-model:latest", force=True)
    # As the tutorial says: the task is prepared from the user's clips on first use.
    run = hear(python, "run", "--model", "my_model", "--tasks-dir", str(tasks), "--task", "my_task",
               "--results-dir", str(results), "--probe", "linear", "--json",
               HEAR_MY_TASK_DIR=str(clips))  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "preparing it" in run.stderr and (tasks / FOLDER / "task_metadata.json").is_file()
    [record] = json.loads(run.stdout)
    assert 0.0 <= record["test_score"] <= 1.0
    image = docker_client.images.get("hear-example/my-model:latest")
    assert image.labels["org.hear.contract"] == "1"
