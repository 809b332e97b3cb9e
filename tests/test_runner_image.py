"""The runner's own image (top-level Dockerfile) drives sibling model containers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def runner_image(docker_client) -> str:
    """hear/runner, built offline by `hear image build .` (reused when unchanged)."""
    from hear_runner.build.builder import build_image

    return build_image(docker_client, ROOT, say=lambda m: None).tag


def test_runner_image_context_leaves_out_the_virtualenv_and_tests() -> None:
    from hear_runner.build.builder import _context_files

    files = {str(p.relative_to(ROOT)) for p in _context_files(ROOT)}
    assert {"Dockerfile", "requirements.txt", "hear_runner/cli/__init__.py", "images/naive/Dockerfile"} <= files
    # .dockerignore's `build` is setuptools' top-level build/, not the hear_runner.build package;
    # setup.py ships images/ inside the installed package.
    assert {"setup.py", "hear_runner/build/builder.py", "hear_runner/build/shipped.py"} <= files
    assert not any(f.startswith((".venv/", "tests/", ".git/", "bench/")) for f in files)


def test_runner_in_a_container_scores_a_model_in_a_sibling_container(
    docker_client, runner_image: str, naive_image: str, digits_task: Path, tmp_path: Path,
    no_leftover_containers,
) -> None:  # fmt: skip
    """No filesystem shared with the engine: the model is reached over stdin/stdout."""
    results = tmp_path / "results"
    results.mkdir()
    stdout = docker_client.containers.run(
        runner_image,
        ["run", "--model-image", naive_image, "--tasks-dir", "/tasks", "--task",
         digits_task.name, "--results-dir", "/results", "--probe", "linear", "--json"],
        volumes={
            "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
            str(digits_task.parent): {"bind": "/tasks", "mode": "ro"},
            str(results): {"bind": "/results", "mode": "rw"},
        },
        remove=True, stdout=True, stderr=False,
    )  # fmt: skip
    [record] = json.loads(stdout)
    assert record["model"]["engine"]["sandbox"]["transport"] == "stdio"
    assert record["model"]["engine"]["image_id"] == docker_client.images.get(naive_image).id
    assert record["test_score"] > 0.5  # naive on spoken digits is well above chance (0.1)
    from hear_runner.results.records import find_records

    [(written, _)] = find_records(results)
    assert json.loads(written.read_text())["test_score"] == record["test_score"]


def test_runner_image_builds_named_models_from_its_installed_image_folders(
    docker_client, runner_image: str
) -> None:
    """`--model NAME` inside the runner image: the folders come with its installed package."""
    stdout = docker_client.containers.run(
        runner_image, ["models", "list", "--json"], remove=True, stdout=True, stderr=False
    )
    builds = {m["name"]: m["build"] for m in json.loads(stdout)}
    assert builds["naive"].endswith("-packages/hear_runner/images/naive")
    assert not builds["naive"].startswith("/opt/hear-runner/")  # not the build's source copy
