"""The in-image server as a standalone package (``hear_contract``), for images and venvs.

Image builds copy it into their context; the local engine puts it on the
PYTHONPATH of any interpreter (a model's own virtual environment included),
so the server never imports anything of the host's.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from functools import cache
from pathlib import Path

PACKAGE = "hear_contract"
FILES = ("__init__.py", "wire.py", "server.py", "launch.py")
SERVER_MODULE = f"{PACKAGE}.server"


def sources() -> Path:
    return Path(__file__).parent


def copy_package(into: Path) -> Path:
    """Write ``into/hear_contract/`` and return it."""
    target = into / PACKAGE
    target.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copy2(sources() / name, target / name)
    return target


@cache
def package_root() -> Path:
    """A folder holding ``hear_contract/``, made once per process, for PYTHONPATH."""
    # The pid in the name lets a later run remove it if this process is killed (leftovers.py).
    root = Path(tempfile.mkdtemp(prefix=f"hear-contract-{os.getpid()}-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    copy_package(root)
    return root
