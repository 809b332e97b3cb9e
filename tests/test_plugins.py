"""Plugins through real entry points: an example third-party package installed with pip."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hear_runner import plugins
from hear_runner.errors import HearError
from hear_runner.hookspecs import hookimpl

EXAMPLE = Path(__file__).parent / "plugin_example"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/plugin_example installed by pip into its own folder (put on PYTHONPATH)."""
    target = tmp_path_factory.mktemp("site")
    source = tmp_path_factory.mktemp("src") / "plugin_example"
    shutil.copytree(EXAMPLE, source)  # building writes build/ and *.egg-info beside the source
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(source)],
        check=True, capture_output=True,
    )  # fmt: skip
    return target


def hear(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "hear_runner", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_example_plugin_is_small() -> None:
    assert len((EXAMPLE / "hear_tones" / "__init__.py").read_text().splitlines()) < 40


def test_installed_plugin_is_listed_with_its_distribution(site: Path) -> None:
    listed = {p["name"]: p for p in json.loads(hear(site, "plugins", "--json").stdout)}
    assert listed["tones"]["distribution"] == "hear-tones"
    assert listed["tones"]["version"] == "0.1.0"
    assert listed["tones"]["hooks"] == ["hear_register_tasks"]


def test_plugin_task_is_listed_prepared_and_scored(site: Path, tmp_path: Path) -> None:
    tasks = str(tmp_path / "tasks")
    before = {
        t["name"]: t
        for t in json.loads(hear(site, "tasks", "list", "--json", "--tasks-dir", tasks).stdout)
    }
    assert before["tones"]["plugin"] == "tones" and before["tones"]["present"] is False
    assert (
        hear(site, "tasks", "prepare", "tones", "--scale", "full", "--tasks-dir", tasks).returncode
        == 0
    )
    after = {
        t["name"]: t
        for t in json.loads(hear(site, "tasks", "list", "--json", "--tasks-dir", tasks).stdout)
    }
    assert after["tones"]["present"] is True and after["tones"]["clips"] == 18
    result = hear(site, "run", "--model-module", "numpy_logmel", "--tasks-dir", tasks, "--task", "tones-1.0-full",
                  "--results-dir", str(tmp_path / "results"), "--json", "--probe", "linear")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["test_score"] >= 0.8


def test_allow_list_loads_only_the_named_plugins(site: Path) -> None:
    env_run = subprocess.run(
        [sys.executable, "-m", "hear_runner", "plugins", "--json"], capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(site), "HEAR_PLUGINS": "tones,core_metrics"},
    )  # fmt: skip
    assert sorted(p["name"] for p in json.loads(env_run.stdout)) == ["core_metrics", "tones"]


class MisspelledHook:
    @hookimpl
    def hear_register_taks(self, register):  # a typo must not pass silently
        pass


def test_unknown_hook_is_an_error() -> None:
    with pytest.raises(HearError, match="hear_register_taks"):
        plugins.register(MisspelledHook(), "misspelled")
