"""Fresh virtual environments for tests that install hear-runner (or a plugin) as a user would.

A new venv gets this checkout's third-party packages (torch, numpy, docker, ...) through a
``.pth`` file pointing at a folder of links into the development venv's site-packages, so
nothing is downloaded. The development venv's own hear-runner (its editable install and its
metadata) is left out, so the new venv sees only what a test installs into it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

# Entries of the development venv that belong to this checkout, not to a third party.
_OWN = ("hear_runner", "__editable__", "hear_example")


def _dev_site_packages() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def fresh_venv(dest: Path) -> Path:
    """A venv at ``dest`` (its python is returned) that sees the dev venv's third-party packages."""
    venv.EnvBuilder(with_pip=False, symlinks=True).create(dest)
    python = dest / "bin" / "python"
    shared = dest / "third-party"
    shared.mkdir()
    for entry in _dev_site_packages().iterdir():
        if not entry.name.lower().replace("-", "_").startswith(_OWN):
            (shared / entry.name).symlink_to(entry)
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    Path(purelib, "hear-test-third-party.pth").write_text(f"{shared}\n")
    return python


def pip_install(python: Path, *args: str, cwd: Path | None = None) -> None:
    """``pip install --no-index --no-deps ARGS`` into the venv of ``python`` (nothing downloaded).

    The dev venv's pip drives it (``--python``); a local source folder is built with the
    setuptools the new venv sees, without build isolation.
    """
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-index", "--no-deps", "--no-build-isolation", *args],
        capture_output=True, text=True, cwd=cwd, timeout=600,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


def venv_env(python: Path) -> dict[str, str]:
    """An environment that runs the venv's ``hear`` as a user's shell would (its bin first)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(python.parent.parent)
    return env
