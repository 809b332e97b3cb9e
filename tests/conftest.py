"""Shared fixtures: real HEAR modules on the path, a real generated task, a Docker engine."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
ROOT = TESTS.parent
HEAR_MODULES = TESTS / "hear_modules"

# Model servers are subprocesses: they find the test modules through PYTHONPATH.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(HEAR_MODULES), os.environ.get("PYTHONPATH", "")) if p
)
sys.path.insert(0, str(HEAR_MODULES))


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
