"""`hear image build DIR`: build an image folder offline and stamp its contract metadata.

The context is staged in a temporary folder: the image folder itself, the
contract server (``hear_contract/``) and a wheelhouse from its
``requirements.txt``. Unchanged inputs are not rebuilt. A model image is then
started once: its hello both proves that it serves and gives the sample rate
and embedding sizes, which are stamped into its labels: readable without
starting the image (``docker inspect``), and recorded with every result.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from hear_runner.build.debian import DEBIAN_BASE, ensure_debian_base
from hear_runner.build.shipped import image_folder
from hear_runner.build.wheelhouse import prepare_wheels
from hear_runner.contract import package
from hear_runner.errors import ImageError

HASH_LABEL = "org.hear.build.inputs"
_ARG_BASE = re.compile(r"^\s*ARG\s+BASE_IMAGE(?:=(\S+))?\s*$", re.MULTILINE)


class BuildResult(BaseModel):
    tag: str
    image_id: str
    base_image: str
    rebuilt: bool
    labels: dict[str, str]


RUNNER_TAG = "hear/runner:latest"


def default_tag(folder: Path) -> str:
    """hear/<folder name>; the repository's root (the runner's own Dockerfile) is hear/runner."""
    if (folder / "pyproject.toml").is_file():
        return RUNNER_TAG
    return f"hear/{folder.resolve().name}:latest"


def build_image(
    docker: Any,
    folder: Path,
    tag: str | None = None,
    base_image: str | None = None,
    say: Callable[[str], None] = print,
    force: bool = False,
) -> BuildResult:
    """Build ``folder`` (or a shipped image folder by name: ``base``) into ``tag``; reuse the
    existing image when no input changed."""
    folder = image_folder(folder).resolve()
    dockerfile = folder / "Dockerfile"
    if not dockerfile.is_file():
        raise ImageError(f"{folder}: no Dockerfile in this image folder")
    tag = tag or default_tag(folder)
    existing = _existing(docker, tag)
    base = _reuse_fallback_base(docker, folder, existing, base_image, force)
    base = base or _resolve_base(docker, dockerfile, base_image, say)
    base_id = docker.images.get(base).id
    inputs = _input_hash(folder, base_id)
    if existing is not None and not force and existing.labels.get(HASH_LABEL) == inputs:
        say(f"{tag} is up to date ({existing.short_id})")
        return BuildResult(
            tag=tag, image_id=existing.id, base_image=base, rebuilt=False, labels=existing.labels
        )
    with tempfile.TemporaryDirectory(prefix="hear-build-") as tmp:
        context = Path(tmp) / "context"
        _stage(folder, context, say)
        say(f"building {tag} FROM {base}")
        image_id = _docker_build(
            docker, context, tag, buildargs={"BASE_IMAGE": base}, labels={HASH_LABEL: inputs}
        )
    image = docker.images.get(image_id)
    if _module_of(image):
        try:
            image = _stamp(docker, image, tag, say)
        except BaseException:
            # An image that cannot serve must not look "up to date" to the next build.
            docker.images.remove(tag, noprune=True)
            raise
    return BuildResult(
        tag=tag, image_id=image.id, base_image=base, rebuilt=True, labels=image.labels or {}
    )


def _reuse_fallback_base(
    docker: Any, folder: Path, existing: Any, wanted: str | None, force: bool
) -> str | None:
    """The local Debian base, when the existing image was built on it from the same inputs.

    Saves a registry round trip on every rebuild of an air-gapped machine; pass
    --base-image or --force to try the public base again.
    """
    if existing is None or wanted or force:
        return None
    debian = _existing(docker, DEBIAN_BASE)
    if debian is None or existing.labels.get(HASH_LABEL) != _input_hash(folder, debian.id):
        return None
    return DEBIAN_BASE


def _resolve_base(
    docker: Any, dockerfile: Path, wanted: str | None, say: Callable[[str], None]
) -> str:
    """The BASE_IMAGE to build on: asked for, else the Dockerfile's default, else local Debian."""
    from docker.errors import DockerException, ImageNotFound

    match = _ARG_BASE.search(dockerfile.read_text())
    base = wanted or (match.group(1) if match else None)
    if not base:
        raise ImageError(
            f"{dockerfile}: declare 'ARG BASE_IMAGE=<default>' before FROM ${{BASE_IMAGE}}"
        )
    try:
        docker.images.get(base)
        return base
    except ImageNotFound:
        pass
    if base.startswith("hear/"):
        folder = _folder_of(base)
        raise ImageError(
            f"base image {base} is missing: build it first (hear image build {folder})"
        )
    say(f"pulling {base}")
    try:
        docker.images.pull(base)
        return base
    except DockerException as e:
        # The innermost cause reads best ("no such host"), the full text is long.
        reason = str(getattr(e, "explanation", None) or e).strip().splitlines()[0].split(": ")[-1]
        if wanted:
            raise ImageError(
                f"base image {base} is not here and cannot be pulled: {reason}"
            ) from None
        say(f"{base} cannot be pulled ({reason}): using a local Debian base instead (CPU only)")
    return ensure_debian_base(docker, say)


def _folder_of(image: str) -> str:
    return image.split("/", 1)[1].split(":")[0]


def _existing(docker: Any, tag: str) -> Any:
    from docker.errors import ImageNotFound

    try:
        return docker.images.get(tag)
    except ImageNotFound:
        return None


def _input_hash(folder: Path, base_id: str) -> str:
    """Everything a build depends on: the folder's files, the base, and for an image that
    copies the contract server (hear/base) the server's sources; images built on hear/base
    see a changed server through the base's id."""
    digest = hashlib.sha256(base_id.encode())
    for path in _context_files(folder):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    if "hear_contract" in (folder / "Dockerfile").read_text():  # images/base copies the server
        for name in package.FILES:
            digest.update(name.encode() + b"\0" + (package.sources() / name).read_bytes())
    return digest.hexdigest()[:32]


def _context_files(folder: Path) -> list[Path]:
    """The folder's files that go into the build, less those its ``.dockerignore`` names.

    As with ``docker build``, ``.dockerignore`` lines are glob patterns anchored at the
    folder (here ``*`` may cross a ``/``), matched against each path and every folder above
    it: ``.venv`` leaves out all of ``.venv/``, ``build`` the top-level ``build/`` and not
    ``hear_runner/build/``. ``__pycache__`` at any depth and a stale top-level ``wheels/``
    are always left out.
    """
    ignore = folder / ".dockerignore"
    patterns = ["wheels"]
    if ignore.is_file():
        for line in ignore.read_text().splitlines():
            line = line.strip().strip("/")
            if line and not line.startswith("#"):
                patterns.append(line)

    def ignored(relative: Path) -> bool:
        if "__pycache__" in relative.parts:
            return True
        above = ("/".join(relative.parts[:i]) for i in range(1, len(relative.parts) + 1))
        return any(fnmatch.fnmatch(path, p) for path in above for p in patterns)

    found = []
    for root, dirs, files in os.walk(folder):
        here = Path(root).relative_to(folder)
        dirs[:] = sorted(d for d in dirs if not ignored(here / d))
        found += [Path(root) / f for f in sorted(files) if not ignored(here / f)]
    return found


def _stage(folder: Path, context: Path, say: Callable[[str], None]) -> None:
    for path in _context_files(folder):
        target = context / path.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    package.copy_package(context)
    requirements = context / "requirements.txt"
    if not requirements.exists():
        requirements.write_text("")
    say(f"preparing wheels from {folder / 'requirements.txt'}")
    wheels = prepare_wheels(requirements, context / "wheels")
    (context / "wheels" / ".keep").touch()
    size = sum(p.stat().st_size for p in wheels) / 1e6
    say(f"{len(wheels)} wheels ({size:.0f} MB)")


def _docker_build(
    docker: Any,
    context: Path | None,
    tag: str,
    buildargs: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    dockerfile_text: str | None = None,
) -> str:
    """Run the classic builder; a failed step becomes an ImageError naming the step."""
    from docker.errors import APIError

    kwargs: dict[str, Any] = {"tag": tag, "rm": True, "forcerm": True, "decode": True}
    if dockerfile_text is not None:
        kwargs["fileobj"] = io.BytesIO(dockerfile_text.encode())
    else:
        kwargs["path"] = str(context)
    if buildargs:
        kwargs["buildargs"] = buildargs
    if labels:
        kwargs["labels"] = labels
    log: list[str] = []
    step = ""
    image_id = None
    try:
        for chunk in docker.api.build(**kwargs):
            if "stream" in chunk:
                text = chunk["stream"].rstrip()
                if text.startswith("Step "):
                    step = text
                if text:
                    log.append(text)
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
            if "error" in chunk:
                last = [ln for ln in log[-8:] if _is_output(ln)]
                raise ImageError(
                    f"building {tag} failed at {step or 'start'}: {chunk['error'].strip()}"
                    + (f" (last output: {last[-1].strip()[:200]})" if last else "")
                )
    except APIError as e:
        raise ImageError(f"building {tag} failed: {e.explanation or e}") from None
    if image_id is None:
        image_id = docker.images.get(tag).id
    return image_id


def _is_output(line: str) -> bool:
    """A line the build's own commands printed, not the builder's bookkeeping."""
    noise = ("Step ", " ---> ", "Removing intermediate container", "Successfully ")
    return bool(line.strip()) and not line.startswith(noise)


def _module_of(image: Any) -> str | None:
    for entry in image.attrs.get("Config", {}).get("Env") or []:
        if entry.startswith("HEAR_MODULE="):
            return entry.split("=", 1)[1]
    return None


def _stamp(docker: Any, image: Any, tag: str, say: Callable[[str], None]) -> Any:
    """Start the new image once and record what its hello says in its labels."""
    from hear_runner.engines.base import ModelSource
    from hear_runner.engines.docker import DockerEngine

    say(f"starting {tag} once to read its hello")
    engine = DockerEngine(client=docker)
    with engine.start(ModelSource(kind="image", ref=image.id)) as running:
        hello = running.client.hello
    assert hello is not None
    labels = {
        "org.hear.model": hello.model,
        "org.hear.sample_rate": str(hello.sample_rate),
        "org.hear.scene_embedding_size": str(hello.scene_embedding_size),
        "org.hear.timestamp_embedding_size": str(hello.timestamp_embedding_size),
        "org.hear.versions": json.dumps(hello.versions, sort_keys=True),
    }
    body = "".join(f"LABEL {key}={json.dumps(value)}\n" for key, value in labels.items())
    _docker_build(docker, None, tag, dockerfile_text=f"FROM {image.id}\n{body}")
    say(
        f"{tag}: {hello.model}, {hello.sample_rate} Hz, scene {hello.scene_embedding_size}-d, "
        f"timestamp {hello.timestamp_embedding_size}-d (loaded in {hello.load_seconds:.1f} s)"
    )
    return docker.images.get(tag)
