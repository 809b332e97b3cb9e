"""Named models (`hear models list`, `--model NAME`): the built-ins, a third-party model plugin
registered in-process, errors, and building a missing image from a plugin's folder."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from taskfolders import write_task
from typer.testing import CliRunner

from hear_runner import plugins
from hear_runner.cli import app
from hear_runner.errors import HearError, ImageError
from hear_runner.hookspecs import hookimpl
from hear_runner.models import ModelSpec, ensure_image, find_models, model_specs

ROOT = Path(__file__).parent.parent
HEAR_MODULES = Path(__file__).parent / "hear_modules"


def hear(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hear_runner", *args], capture_output=True, text=True, timeout=600
    )


def invoke(*args: str) -> object:
    """`hear ARGS` in this process, where in-process plugins are registered."""
    return CliRunner().invoke(app, list(args), catch_exceptions=True)


class ModelPlugin:
    """A third-party model plugin: registers the specs it is given."""

    def __init__(self, *specs: ModelSpec) -> None:
        self.specs = specs

    @hookimpl
    def hear_register_models(self, register):
        for spec in self.specs:
            register(spec)


@pytest.fixture
def register_plugin() -> Iterator[object]:
    """Register in-process plugins for one test; unregistered afterwards."""
    names: list[str] = []

    def add(name: str, *specs: ModelSpec) -> None:
        plugins.register(ModelPlugin(*specs), name)
        names.append(name)

    yield add
    for name in names:
        plugins.unregister(name)


# -- no Docker needed --------------------------------------------------------------------


def test_built_in_models_are_listed_with_images_and_folders() -> None:
    result = hear("models", "list", "--json")
    assert result.returncode == 0, result.stderr
    listed = {m["name"]: m for m in json.loads(result.stdout)}
    expected = {
        "naive": ("hear/naive:latest", "naive", False),
        "crepe": ("hear/torchcrepe:latest", "torchcrepe", True),
        "crepe-tiny": ("hear/torchcrepe-tiny:latest", "torchcrepe-tiny", False),
        "whisper-tiny-en": ("hear/whisper:latest", "whisper", False),
    }
    assert expected.keys() <= listed.keys()
    for name, (image, folder, gpu) in expected.items():
        assert listed[name]["image"] == image and listed[name]["gpu"] is gpu
        assert listed[name]["plugin"] == "models"
        # From a clone, each built-in names its folder in the repository's images/.
        assert listed[name]["build"] == str(ROOT / "images" / folder)
        assert listed[name]["present"] in (True, False, None)
    assert listed["crepe-tiny"]["sample_rate"] == 16000


def test_models_plugin_and_hook_are_listed() -> None:
    result = hear("plugins", "--json")
    listed = {p["name"]: p for p in json.loads(result.stdout)}
    assert listed["models"]["module"] == "hear_models.plugin"
    assert listed["models"]["hooks"] == ["hear_register_models"]
    assert listed["models"]["distribution"] == "hear-runner"


def test_images_dir_override_moves_the_built_in_folders(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "HEAR_IMAGES_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "hear_runner", "models", "list", "--json"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    listed = {m["name"]: m for m in json.loads(result.stdout)}
    assert listed["crepe"]["build"] == str(tmp_path / "torchcrepe")


def test_third_party_model_is_listed_with_its_plugin(register_plugin) -> None:
    register_plugin("acme", ModelSpec(name="acme-tone", image="acme/tone:2", gpu=True,
                                      description="A tone model", options={"k": 3}))  # fmt: skip
    result = invoke("models", "list", "--json")
    assert result.exit_code == 0, result.output
    listed = {m["name"]: m for m in json.loads(result.stdout)}
    assert listed["acme-tone"]["plugin"] == "acme"
    assert listed["acme-tone"]["image"] == "acme/tone:2"
    assert listed["acme-tone"]["options"] == {"k": 3}
    assert "crepe" in listed  # beside the built-ins
    table = invoke("models", "list")
    assert "acme-tone" in table.stdout and "acme/tone:2" in table.stdout


def test_relative_build_folder_resolves_against_the_plugin_module(register_plugin) -> None:
    register_plugin("rel", ModelSpec(name="rel-model", image="x/y:1", build=Path("hear_modules")))
    [spec] = find_models(["rel-model"])
    assert spec.build == HEAR_MODULES.resolve()  # this test module's folder, not the cwd


def test_duplicate_model_names_name_both_plugins(register_plugin) -> None:
    register_plugin("first", ModelSpec(name="twin", image="a/twin:1"))
    register_plugin("second", ModelSpec(name="twin", image="b/twin:1"))
    with pytest.raises(
        HearError, match=r"'twin' is registered twice: by plugin 'first' and by plugin 'second'"
    ):
        model_specs()
    result = invoke("models", "list")
    assert isinstance(result.exception, HearError) and "'second'" in str(result.exception)


def test_duplicate_of_a_built_in_name_is_an_error(register_plugin) -> None:
    register_plugin("copycat", ModelSpec(name="crepe", image="c/crepe:1"))
    with pytest.raises(HearError, match=r"by plugin 'models' and by plugin 'copycat'"):
        find_models(["crepe"])


def test_unknown_model_is_one_line_listing_the_known(tmp_path: Path) -> None:
    write_task(tmp_path)
    result = hear("run", "--model", "crepe-huge", "--tasks-dir", str(tmp_path))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "no model named 'crepe-huge'" in lines[0]
    for known in ("crepe", "crepe-tiny", "naive", "whisper-tiny-en"):
        assert known in lines[0]


def test_model_with_model_module_is_refused(tmp_path: Path) -> None:
    write_task(tmp_path)
    result = hear("run", "--model", "naive", "--model-module", "numpy_logmel",
                  "--tasks-dir", str(tmp_path))  # fmt: skip
    assert result.returncode == 1
    assert (
        "--model names a Docker image: it cannot be combined with --model-module" in result.stderr
    )
    assert len(result.stderr.strip().splitlines()) == 1
    embed = hear("embed", "--model", "naive", "--model-module", "numpy_logmel",
                 "--tasks-dir", str(tmp_path), "--out", str(tmp_path / "out"))  # fmt: skip
    assert embed.returncode == 1 and "cannot be combined with --model-module" in embed.stderr


def test_embed_takes_one_model(tmp_path: Path) -> None:
    write_task(tmp_path)
    result = hear("embed", "--model", "naive", "--model-image", "hear/naive:latest",
                  "--tasks-dir", str(tmp_path), "--out", str(tmp_path / "out"))  # fmt: skip
    assert result.returncode == 1 and "writes one model" in result.stderr


def test_help_mentions_model_and_models_list() -> None:
    def text(*args: str) -> str:  # rich wraps help in boxes: collapse borders and breaks
        return re.sub(r"[\s│]+", " ", hear(*args).stdout)

    run_help = text("run", "--help")
    assert "--model " in run_help and "(hear models list)" in run_help
    assert "--model " in text("embed", "--help")
    assert "list List the named models" in text("models", "--help")


# -- real Docker engine ------------------------------------------------------------------


@pytest.mark.docker
def test_third_party_model_runs_by_name_end_to_end(
    register_plugin, numpy_image, docker_client, tmp_path: Path
) -> None:
    register_plugin("acme", ModelSpec(name="acme-logmel", image=numpy_image))
    write_task(tmp_path / "tasks")
    listed = {m["name"]: m for m in json.loads(invoke("models", "list", "--json").stdout)}
    assert listed["acme-logmel"]["present"] is True
    result = invoke("run", "--model", "acme-logmel", "--tasks-dir", str(tmp_path / "tasks"),
                    "--results-dir", str(tmp_path / "results"), "--probe", "linear", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    [record] = json.loads(result.stdout)
    assert record["model"]["name"] == numpy_image and record["model"]["kind"] == "image"
    assert record["model"]["engine"]["image_id"] == docker_client.images.get(numpy_image).id
    assert record["model"]["engine"]["hello"]["model"] == "numpy_logmel"
    assert record["test_score"] >= 0.75  # low vs high tones; chance 0.5


@pytest.mark.docker
def test_missing_image_builds_from_the_plugin_folder_with_merged_options(
    register_plugin, naive_image, docker_client, tmp_path: Path
) -> None:
    """Absent image + build folder: built (and stamped) on first use; the spec's options
    reach the model, and --model-options override them."""
    from docker.errors import ImageNotFound

    tag = "hear-test/models-built:latest"
    folder = tmp_path / "image"
    folder.mkdir()
    (folder / "faulty.py").write_text((HEAR_MODULES / "faulty.py").read_text())
    (folder / "Dockerfile").write_text(
        "ARG BASE_IMAGE=hear/base:latest\nFROM ${BASE_IMAGE}\nWORKDIR /opt/model\n"
        "COPY faulty.py /opt/model/\nENV HEAR_MODULE=faulty\n"
    )
    with contextlib.suppress(ImageNotFound):
        docker_client.images.remove(tag, force=True)
    # The spec asks for a fault: its options must reach load_model unless overridden.
    register_plugin("builder", ModelSpec(name="built", image=tag, build=folder,
                                         options={"fault": "wrong_size"}))  # fmt: skip
    write_task(tmp_path / "tasks")
    args = [
        "--model",
        "built",
        "--tasks-dir",
        str(tmp_path / "tasks"),
        "--out",
        str(tmp_path / "out"),
    ]
    try:
        fixed = invoke("embed", *args, "--model-options", '{"fault": "none"}')
        assert fixed.exit_code == 0, fixed.output
        assert "building it from" in fixed.stderr
        labels = docker_client.images.get(tag).labels
        assert (
            labels["org.hear.model"] == "faulty" and labels["org.hear.scene_embedding_size"] == "8"
        )
        written = tmp_path / "out" / "toy-1.0.0-full"
        assert (written / "test.embeddings.npy").is_file()
        faulty = invoke("embed", *args)  # now present: no build, the spec's fault applies
        assert "building" not in faulty.stderr
        assert faulty.exit_code != 0 and "7" in str(faulty.exception)  # 7-d, not the declared 8
    finally:
        docker_client.images.remove(tag, force=True)


@pytest.mark.docker
def test_missing_image_without_a_usable_folder_says_so(docker_client, tmp_path: Path) -> None:
    absent = "hear-test/never-built:0"
    spec = ModelSpec(name="ghost", image=absent).registered_by("acme", None)
    with pytest.raises(
        ImageError,
        match=r"'ghost' \(plugin 'acme'\): image hear-test/never-built:0 is not on this Docker engine and the plugin names no folder",
    ):
        ensure_image(docker_client, spec, say=lambda m: None)
    empty = spec.model_copy(update={"build": tmp_path})
    with pytest.raises(ImageError, match=rf"its build folder {tmp_path} has no Dockerfile"):
        ensure_image(docker_client, empty, say=lambda m: None)
