"""`hear image build` on a real engine: offline base fallback, reuse, failures, label stamping."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hear_runner.build.builder import build_image
from hear_runner.errors import ImageError

pytestmark = pytest.mark.docker


def image_folder(root: Path, body: str, default_base: str = "hear/base:latest") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(f"ARG BASE_IMAGE={default_base}\nFROM ${{BASE_IMAGE}}\n{body}")
    return root


def test_unpullable_public_base_falls_back_to_local_debian(docker_client, naive_image, tmp_path):
    folder = image_folder(
        tmp_path / "img", "RUN python3 -c 'print(1)'\n", "registry.invalid/cuda:1"
    )
    said: list[str] = []
    result = build_image(
        docker_client, folder, "hear-test/fallback:latest", say=said.append, force=True
    )
    assert result.base_image == "hear/debian-base:bookworm"
    assert any("cannot be pulled" in m and "local Debian base" in m for m in said)


def test_unchanged_inputs_are_not_rebuilt(docker_client, naive_image, tmp_path):
    folder = image_folder(
        tmp_path / "img",
        "ENV HEAR_MODULE=numpy_logmel\nWORKDIR /opt/m\nCOPY numpy_logmel.py /opt/m/\n",
    )
    (folder / "numpy_logmel.py").write_text(
        (Path(__file__).parent / "hear_modules" / "numpy_logmel.py").read_text()
    )
    first = build_image(
        docker_client, folder, "hear-test/reuse:latest", say=lambda m: None, force=True
    )
    assert first.rebuilt and first.labels["org.hear.sample_rate"] == "16000"
    assert first.labels["org.hear.scene_embedding_size"] == "128"
    second = build_image(docker_client, folder, "hear-test/reuse:latest", say=lambda m: None)
    assert not second.rebuilt and second.image_id == first.image_id
    (folder / "numpy_logmel.py").write_text(
        (folder / "numpy_logmel.py").read_text() + "\n# changed\n"
    )
    third = build_image(docker_client, folder, "hear-test/reuse:latest", say=lambda m: None)
    assert third.rebuilt and third.image_id != first.image_id


def test_failing_step_is_named(docker_client, naive_image, tmp_path):
    folder = image_folder(tmp_path / "img", "RUN echo about to fail && exit 3\n")
    with pytest.raises(
        ImageError,
        match=r"building hear-test/fails:latest failed at Step 3/\d : RUN echo about to fail.*last output: about to fail",
    ):
        build_image(docker_client, folder, "hear-test/fails:latest", say=lambda m: None)


def test_model_that_cannot_load_fails_the_build(docker_client, naive_image, tmp_path):
    folder = image_folder(tmp_path / "img", "ENV HEAR_MODULE=not_installed_anywhere\n")
    with pytest.raises(Exception, match="No module named 'not_installed_anywhere'"):
        build_image(
            docker_client, folder, "hear-test/cannot-load:latest", say=lambda m: None, force=True
        )
    assert not docker_client.images.list(name="hear-test/cannot-load")  # retried next time


def test_cli_build_of_a_missing_folder_is_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "hear_runner", "image", "build", str(tmp_path / "nope")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "nope: no Dockerfile" in line


def test_rebuild_on_the_fallback_base_does_not_ask_the_registry_again(
    docker_client, naive_image, tmp_path
):
    folder = image_folder(tmp_path / "img", "RUN true\n", "registry.invalid/cuda:1")
    build_image(docker_client, folder, "hear-test/fallback2:latest", say=lambda m: None, force=True)
    said: list[str] = []
    again = build_image(docker_client, folder, "hear-test/fallback2:latest", say=said.append)
    assert not again.rebuilt and not any("pull" in m for m in said)


def test_template_wraps_a_pip_installable_hear_package_as_its_readme_says(
    docker_client, naive_image, tmp_path
):
    """images/template/README.md's steps, followed literally, with hearbaseline (from PyPI)."""
    import shutil

    root = Path(__file__).parent.parent / "images"
    folder = tmp_path / "my-model"
    shutil.copytree(root / "template", folder)  # step 1
    shutil.copy(root / "naive" / "requirements.txt", folder / "requirements.txt")  # step 2
    dockerfile = folder / "Dockerfile"  # step 3
    dockerfile.write_text(dockerfile.read_text().replace("your_package.module", "hearbaseline.naive"))
    result = build_image(docker_client, folder, "hear-test/template:1", say=lambda m: None)  # step 5
    assert result.labels["org.hear.model"] == "hearbaseline.naive"
    assert result.labels["org.hear.scene_embedding_size"] == "4096"


def test_dockerignore_patterns_are_anchored_at_the_folder_as_dockers_are(tmp_path):
    from hear_runner.build.builder import _context_files

    for name in ("Dockerfile", "build/lib/x.py", "pkg/build/mod.py", "wheels/old.whl",
                 "pkg/wheels/keep.txt", "pkg/__pycache__/m.pyc", "a.egg-info/PKG-INFO",
                 "notes.log"):  # fmt: skip
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    (tmp_path / ".dockerignore").write_text("# setuptools\n/build\n*.egg-info\n*.log\n")
    files = {str(p.relative_to(tmp_path)) for p in _context_files(tmp_path)}
    assert files == {".dockerignore", "Dockerfile", "pkg/build/mod.py", "pkg/wheels/keep.txt"}
