"""hear-runner's own image folders (hear/base, the built-in models, the template): where they are.

The repository keeps them at its top (``images/``); a wheel carries the same folders as
package data (``hear_runner/images``, see setup.py), so an installed hear-runner builds
hear/base and the named models without a clone. ``$HEAR_IMAGES_DIR`` overrides both.
"""

from __future__ import annotations

import os
from pathlib import Path

from hear_runner.errors import ImageError

_PACKAGE = Path(__file__).resolve().parent.parent  # hear_runner/
# A wheel's package data first; a clone's (or an editable install's) images/ beside the package.
_CANDIDATES = (_PACKAGE / "images", _PACKAGE.parent / "images")


def images_dir() -> Path | None:
    """The folder that holds hear/base's image folder and the built-in models' (None: none)."""
    configured = os.environ.get("HEAR_IMAGES_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    for candidate in _CANDIDATES:
        if (candidate / "base" / "Dockerfile").is_file():
            return candidate
    return None


def image_folder(folder: Path) -> Path:
    """``folder`` when it is a folder here; a bare name that is not (``base``, ``naive``) is
    the shipped image folder of that name, so `hear image build base` needs no clone."""
    if folder.is_dir() or len(folder.parts) != 1:
        return folder
    shipped = images_dir()
    if shipped is not None and (shipped / folder.name / "Dockerfile").is_file():
        return shipped / folder.name
    names = ", ".join(shipped_names()) or f"none found ({shipped or 'no images folder'})"
    raise ImageError(
        f"{folder}: no such folder here, and not one of hear-runner's image folders ({names})"
    )


def shipped_names() -> list[str]:
    """The image folders hear-runner ships, by name."""
    shipped = images_dir()
    if shipped is None or not shipped.is_dir():
        return []
    return sorted(p.name for p in shipped.iterdir() if (p / "Dockerfile").is_file())
