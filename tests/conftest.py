"""Shared fixtures: real HEAR modules on the path, a real generated task, a Docker engine."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hear_runner.engines.leftovers import RUNNER_LABEL

TESTS = Path(__file__).parent
ROOT = TESTS.parent
HEAR_MODULES = TESTS / "hear_modules"

# Model servers are subprocesses: they find the test modules through PYTHONPATH.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(HEAR_MODULES), os.environ.get("PYTHONPATH", "")) if p
)
sys.path.insert(0, str(HEAR_MODULES))


@pytest.fixture(autouse=True)
def empty_embedding_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Each test starts with its own empty embedding store (runs in subprocesses too)."""
    path = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("HEAR_CACHE_DIR", str(path))
    return path


@pytest.fixture(scope="session")
def tasks_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mini spoken-digits task at smoke scale, generated once per session."""
    from hear_mini import spoken_digits

    root = tmp_path_factory.mktemp("tasks")
    spoken_digits.prepare(root, "smoke", progress=False)
    return root


@pytest.fixture(scope="session")
def digits_task(tasks_dir: Path) -> Path:
    from hear_mini import spoken_digits

    return tasks_dir / spoken_digits.folder_name("smoke")


def _docker_or_skip():
    """A Docker client, or skip; with HEAR_REQUIRE_DOCKER=1 (CI) a missing engine fails."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
        return client
    except Exception as e:
        if os.environ.get("HEAR_REQUIRE_DOCKER") == "1":
            pytest.fail(f"HEAR_REQUIRE_DOCKER=1 but no Docker engine: {e}")
        pytest.skip(f"no Docker engine: {e}")


@pytest.fixture(scope="session")
def docker_client():
    return _docker_or_skip()


@pytest.fixture(scope="session")
def naive_image(docker_client) -> str:
    """hear/base and hear/naive, built with `hear image build` (reused when unchanged)."""
    from hear_runner.build.builder import build_image

    build_image(docker_client, ROOT / "images" / "base", say=lambda m: None)
    return build_image(docker_client, ROOT / "images" / "naive", say=lambda m: None).tag


@pytest.fixture(scope="session")
def crepe_image(docker_client, naive_image: str) -> str:
    """hear/torchcrepe: HEAR 2021's CREPE baseline (reused when unchanged)."""
    from hear_runner.build.builder import build_image

    return build_image(docker_client, ROOT / "images" / "torchcrepe", say=lambda m: None).tag


@pytest.fixture(scope="session")
def crepe_tiny_image(docker_client, crepe_image: str) -> str:
    """hear/torchcrepe-tiny, built FROM hear/torchcrepe."""
    from hear_runner.build.builder import build_image

    return build_image(docker_client, ROOT / "images" / "torchcrepe-tiny", say=lambda m: None).tag


@pytest.fixture(scope="session")
def whisper_image(docker_client, naive_image: str) -> str:
    """hear/whisper: Whisper tiny.en's encoder through CTranslate2 (numpy 2, no torch)."""
    from hear_runner.build.builder import build_image

    return build_image(docker_client, ROOT / "images" / "whisper", say=lambda m: None).tag


@pytest.fixture(scope="session")
def numpy_image(docker_client, naive_image: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A numpy-only HEAR module wrapped the plain way: FROM hear/base + ENV HEAR_MODULE."""
    import shutil

    context = tmp_path_factory.mktemp("numpy-image")
    shutil.copy(HEAR_MODULES / "numpy_logmel.py", context)
    shutil.copy(HEAR_MODULES / "faulty.py", context)
    (context / "Dockerfile").write_text(
        "FROM hear/base:latest\n"
        "WORKDIR /opt/model\n"
        "COPY numpy_logmel.py faulty.py /opt/model/\n"
        "ENV HEAR_MODULE=numpy_logmel\n"
    )
    tag = "hear-test/numpy-logmel:latest"
    docker_client.images.build(path=str(context), tag=tag, rm=True)
    return tag


def hear_containers(docker_client, *, running_only: bool = False, name: str = "") -> list:
    """The containers hear-runner started, running or not.

    One removed between docker's listing and its inspection is skipped, not an error: the
    tests poll while runs stop their containers.
    """
    filters = {"label": f"{RUNNER_LABEL}=1"} | ({"name": name} if name else {})
    return docker_client.containers.list(all=not running_only, filters=filters, ignore_removed=True)


@pytest.fixture
def no_leftover_containers(docker_client):
    """Fails the test if any container started by hear-runner is still there afterwards."""

    def ours() -> set[str]:
        return {c.id for c in hear_containers(docker_client)}

    before = ours()
    yield
    left = ours() - before
    assert not left, f"containers left behind: {left}"


@pytest.fixture(scope="session")
def mini_task(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Callable[[str], Path]:
    """``mini_task("drums")``: that mini task's smoke-scale folder, generated once per
    session for every test that reads it (skipped where its material is not installed)."""
    from taskfolders import mini_material_missing

    root = tmp_path_factory.mktemp("mini_tasks")
    folders: dict[str, Path] = {}

    def get(task: str) -> Path:
        reason = mini_material_missing(task)
        if reason:
            pytest.skip(reason)
        if task == "spoken_digits":
            return Path(request.getfixturevalue("digits_task"))
        if task not in folders:
            module = importlib.import_module(f"hear_mini.{task}")
            folders[task] = module.prepare(root, "smoke", progress=False)
        return folders[task]

    return get
