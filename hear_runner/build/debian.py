"""A Debian base image made locally, for engines that cannot reach any registry.

Air-gapped clusters and this project's CI cannot pull the public CUDA/PyTorch
base: debootstrap builds a minimal Debian with python3 and pip from Debian's
package mirror (or a local one), and ``docker import`` turns it into an image.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hear_runner.errors import ImageError

DEBIAN_BASE = "hear/debian-base:bookworm"
SUITE = "bookworm"
PACKAGES = ("python3", "python3-pip", "ca-certificates")


def ensure_debian_base(docker: Any, say: Callable[[str], None]) -> str:
    """Return the local Debian base image's name, making it first if it is missing."""
    from docker.errors import ImageNotFound

    try:
        docker.images.get(DEBIAN_BASE)
        return DEBIAN_BASE
    except ImageNotFound:
        pass
    if shutil.which("debootstrap") is None:
        raise ImageError(
            "no registry reachable and debootstrap is missing: install it "
            "(apt-get install debootstrap) so a local Debian base can be made"
        )
    if os.geteuid() != 0:
        raise ImageError("making the local Debian base needs root (debootstrap); run as root once")
    mirror = os.environ.get("HEAR_DEBIAN_MIRROR", "http://deb.debian.org/debian")
    say(f"making {DEBIAN_BASE} with debootstrap from {mirror} (about a minute)")
    with tempfile.TemporaryDirectory(prefix="hear-debootstrap-") as tmp:
        root = Path(tmp) / "root"
        tarball = Path(tmp) / "root.tar"
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                SUITE,
                str(root),
                mirror,
            ],
            "debootstrap",
        )
        # Caches and apt lists are not needed at run time.
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            shutil.rmtree(root / junk, ignore_errors=True)
        _run(["tar", "-C", str(root), "-cf", str(tarball), "."], "tar")
        repository, tag = DEBIAN_BASE.split(":")
        docker.api.import_image_from_file(
            str(tarball),
            repository=repository,
            tag=tag,
            changes=[
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                'LABEL org.hear.base="debian-bookworm-debootstrap"',
            ],
        )
    return DEBIAN_BASE


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ImageError(f"{what} failed with code {result.returncode}: {tail[0]}")
