"""`pip install` is enough: the wheel carries the image folders, and a fresh venv with only the
wheel installed builds hear/base and runs a named model from a folder outside any clone.

The wheel is built from a copy of the checkout's files (what a clone holds), so a stale
``build/`` of the checkout cannot leak into it and nothing is written into the checkout.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT
from venvs import fresh_venv, pip_install, venv_env

PLUGIN_PACKAGES = ("hear_core", "hear_mini", "hear_2021", "hear_models")


def _checkout_files() -> list[str]:
    """The checkout's files as a clone has them: tracked, plus new ones git does not ignore."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [f for f in listed.split("\0") if f and (ROOT / f).is_file()]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("hear-runner-src")
    for name in _checkout_files():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, copy / name)
    return copy


@pytest.fixture(scope="module")
def wheel(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--quiet", "-w", str(dist), str(source)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    [path] = dist.glob("hear_runner-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv outside the repository with the wheel installed; its python."""
    python = fresh_venv(tmp_path_factory.mktemp("wheel-venv") / "venv")
    pip_install(python, str(wheel))
    return python


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A working folder outside the repository (no images/ to stumble on)."""
    assert not tmp_path.resolve().is_relative_to(ROOT.resolve())
    return tmp_path


def hear_in(python: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The venv's `hear` as a user's shell runs it: its bin on PATH, no PYTHONPATH."""
    return subprocess.run(
        ["hear", *args], cwd=cwd, env=venv_env(python), capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip


def python_in(python: Path, cwd: Path, code: str) -> str:
    done = subprocess.run(
        [str(python), "-c", code], cwd=cwd, env=venv_env(python), capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


# -- no Docker needed --------------------------------------------------------------------


def test_wheel_carries_every_image_folder_byte_for_byte(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        images = [f for f in _checkout_files() if f.startswith("images/")]
        for folder in ("base", "naive", "template", "torchcrepe", "torchcrepe-tiny", "whisper"):
            assert f"images/{folder}/Dockerfile" in images
        for name in images:
            packaged = f"hear_runner/{name}"
            assert packaged in names, f"{packaged} is not in the wheel"
            assert whl.read(packaged) == (ROOT / name).read_bytes(), packaged
    # The contract server hear/base copies into every image.
    assert {"hear_runner/contract/server.py", "hear_runner/contract/launch.py"} <= names
    # The published HEAR 2021 leaderboard (hear leaderboard --reference hear2021), as checked in.
    shipped = "hear_2021/reference/hear2021-leaderboard.json"
    with zipfile.ZipFile(wheel) as whl:
        assert whl.read(shipped) == (ROOT / "plugins" / shipped).read_bytes()
    # Inside hear_runner/ only: no top-level images/ (or any other stray name) in site-packages.
    top = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert top == {"hear_runner", *PLUGIN_PACKAGES}
    assert not any("__pycache__" in n or "/wheels/" in n for n in names)


def test_wheel_holds_every_module_of_the_checkout(wheel: Path) -> None:
    """setup.py finds packages by itself: a new subpackage cannot be left out."""
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
    modules = [f for f in _checkout_files() if f.endswith(".py") and f.startswith("hear_runner/")]
    modules += [
        f.removeprefix("plugins/")
        for f in _checkout_files()
        if f.endswith(".py") and f.startswith(tuple(f"plugins/{p}/" for p in PLUGIN_PACKAGES))
    ]
    assert len(modules) > 50
    assert sorted(set(modules) - names) == []
    assert "hear_runner/py.typed" in names


def test_installed_wheel_runs_from_the_venv_with_its_own_image_folders(
    installed: Path, outside: Path
) -> None:
    site = Path(
        python_in(installed, outside, "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    )
    package = Path(python_in(installed, outside, "import hear_runner; print(hear_runner.__file__)"))
    assert package == site / "hear_runner" / "__init__.py"  # the venv's copy, not the checkout
    assert site.is_relative_to(installed.parent.parent)
    listed = hear_in(installed, outside, "models", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    builds = {m["name"]: m["build"] for m in json.loads(listed.stdout)}
    assert builds["naive"] == str(site / "hear_runner" / "images" / "naive")
    assert builds["crepe-tiny"] == str(site / "hear_runner" / "images" / "torchcrepe-tiny")
    unknown = hear_in(installed, outside, "image", "build", "nope")
    assert unknown.returncode == 1
    [line] = unknown.stderr.strip().splitlines()
    assert "nope: no such folder here, and not one of hear-runner's image folders" in line
    shipped = line.split("image folders (", 1)[1].rstrip(")").split(", ")
    assert {"base", "naive", "template", "torchcrepe", "torchcrepe-tiny", "whisper"} <= set(shipped)


def test_editable_install_uses_the_checkouts_images(
    source: Path, tmp_path: Path, outside: Path
) -> None:
    """`pip install -e .` (the dev venv's way): the clone's top-level images/ is used."""
    python = fresh_venv(tmp_path / "venv")
    pip_install(python, "--editable", str(source))
    where = python_in(
        python, outside, "from hear_runner.build.shipped import images_dir; print(images_dir())"
    )
    assert where == str(source / "images")


def test_a_bare_name_is_a_folder_here_first_then_a_shipped_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hear_runner.build.shipped import image_folder

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HEAR_IMAGES_DIR", raising=False)
    assert image_folder(Path("naive")) == ROOT / "images" / "naive"  # the checkout's
    (tmp_path / "naive").mkdir()
    assert image_folder(Path("naive")) == Path("naive")  # a folder here wins
    assert image_folder(Path("sub/base")) == Path("sub/base")  # a path is taken as given


# -- real Docker engine ------------------------------------------------------------------


@pytest.mark.docker
def test_installed_wheel_builds_base_and_runs_naive_without_a_clone(
    installed: Path, docker_client, naive_image: str, digits_task: Path, outside: Path,
    no_leftover_containers,
) -> None:  # fmt: skip
    from hear_runner.build.builder import build_image

    # hear/base as the checkout builds it (reused: the naive_image fixture built it).
    checkout_base = build_image(docker_client, ROOT / "images" / "base", say=lambda m: None)
    # The wheel's hear/base folder is the checkout's, contract server included: up to date.
    again = hear_in(installed, outside, "image", "build", "base")
    assert again.returncode == 0, again.stderr
    assert "hear/base:latest is up to date" in again.stderr
    assert docker_client.images.get("hear/base:latest").id == checkout_base.image_id
    naive = hear_in(installed, outside, "image", "build", "naive")  # likewise hear/naive
    assert naive.returncode == 0, naive.stderr
    assert "hear/naive:latest is up to date" in naive.stderr
    assert naive.stdout.split() == [naive_image, docker_client.images.get(naive_image).id[:19]]
    # A real build from the packaged folder (staged context, wheelhouse, contract server),
    # on the same base: Docker's layer cache gives the very same image.
    tag = "hear-test/wheel-base:latest"
    try:
        built = hear_in(installed, outside, "image", "build", "base", "--tag", tag,
                        "--base-image", checkout_base.base_image, "--force")  # fmt: skip
        assert built.returncode == 0, built.stderr
        assert f"building {tag} FROM {checkout_base.base_image}" in built.stderr
        assert docker_client.images.get(tag).id == checkout_base.image_id
    finally:
        docker_client.images.remove(tag, noprune=True)
    # A named model, by name, from the venv: a real score, and its record on disk.
    results = outside / "results"
    run = hear_in(installed, outside, "run", "--model", "naive", "--tasks-dir",
                  str(digits_task.parent), "--task", digits_task.name, "--results-dir",
                  str(results), "--probe", "linear", "--json")  # fmt: skip
    assert run.returncode == 0, run.stderr
    [record] = json.loads(run.stdout)
    assert record["model"]["engine"]["image_id"] == docker_client.images.get(naive_image).id
    assert record["test_score"] > 0.5  # naive on spoken digits is well above chance (0.1)
    [written] = results.rglob(f"{digits_task.name}.json")
    assert json.loads(written.read_text())["test_score"] == record["test_score"]
