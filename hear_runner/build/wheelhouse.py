"""Wheels for an image, prepared on the host: containers may have no network at all.

An image folder's ``requirements.txt`` is a complete lock (every package
pinned with ``==``); the wheels are fetched or built here with the host's pip
and installed in the image with ``--no-index --no-deps``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hear_runner.errors import ImageError


def prepare_wheels(requirements: Path, into: Path) -> list[Path]:
    """Fetch (or build) a wheel for every line of ``requirements`` into ``into``."""
    into.mkdir(parents=True, exist_ok=True)
    if not requirements.exists() or not _has_requirements(requirements):
        return []
    command = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--quiet",
        "--requirement",
        str(requirements),
        "--wheel-dir",
        str(into),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        errors = [
            ln for ln in result.stderr.splitlines() if "ERROR" in ln
        ] or result.stderr.splitlines()
        raise ImageError(
            f"{requirements}: pip could not prepare the wheels: "
            f"{errors[-1].strip() if errors else 'unknown error'}"
        )
    return sorted(into.glob("*.whl"))


def _has_requirements(path: Path) -> bool:
    return any(
        ln.strip() and not ln.lstrip().startswith("#") for ln in path.read_text().splitlines()
    )
