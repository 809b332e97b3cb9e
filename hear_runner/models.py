"""Named models: what plugins register with ``hear_register_models``, and how to get the image.

A :class:`~hear_runner.specs.ModelSpec` names a model image (``--model crepe`` instead of
``--model-image hear/torchcrepe:latest``) and, optionally, the image folder to build it from
when the Docker engine does not have it. A relative ``build`` path is resolved against the
folder of the registering plugin's module (a third-party plugin ships its image folder as
package data); an absolute one is used as is. The built-in models' folders ship with
hear-runner (its wheel or clone): ``hear_runner.build.shipped.images_dir`` finds them, or
``$HEAR_IMAGES_DIR``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hear_runner import plugins
from hear_runner.errors import HearError, ImageError
from hear_runner.specs import ModelSpec

__all__ = ["ModelSpec", "ensure_image", "find_models", "is_present", "model_specs"]

_ARG_BASE = re.compile(r"^\s*ARG\s+BASE_IMAGE=(\S+)\s*$", re.MULTILINE)


def model_specs() -> list[ModelSpec]:
    """Every registered model, by name; a name registered twice is an error naming both."""
    return sorted(plugins.collect(ModelSpec), key=lambda spec: spec.name)


def find_models(names: list[str]) -> list[ModelSpec]:
    """The specs of ``names``, in order; an unknown name is an error listing the known ones."""
    specs = {s.name: s for s in model_specs()}
    for name in names:
        if name not in specs:
            known = ", ".join(specs) or "none (no plugin registers models)"
            raise HearError(f"no model named {name!r}; known: {known}")
    return [specs[n] for n in names]


def is_present(docker: Any, image: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        docker.images.get(image)
        return True
    except ImageNotFound:
        return False


def ensure_image(docker: Any, spec: ModelSpec, say: Callable[[str], None]) -> str:
    """The spec's image tag, built first from its folder when the engine does not have it."""
    if is_present(docker, spec.image):
        return spec.image
    if spec.build is None:
        raise ImageError(
            f"model {spec.name!r} (plugin {spec.plugin!r}): image {spec.image} is not on this "
            "Docker engine and the plugin names no folder to build it from: build or load it "
            f"(hear image build DIR --tag {spec.image}); for hear-runner's own models, set "
            "HEAR_IMAGES_DIR to the images/ folder of a hear-runner clone"
        )
    if not (spec.build / "Dockerfile").is_file():
        raise ImageError(
            f"model {spec.name!r} (plugin {spec.plugin!r}): image {spec.image} is not on this "
            f"Docker engine and its build folder {spec.build} has no Dockerfile"
        )
    say(f"model {spec.name}: {spec.image} is not here; building it from {spec.build}")
    _build_with_bases(docker, spec.build, spec.image, say)
    return spec.image


def _build_with_bases(docker: Any, folder: Path, tag: str, say: Callable[[str], None]) -> None:
    """Build ``folder``, after the hear/* images it is FROM when they are missing and their
    folders sit beside it (hear/torchcrepe-tiny FROM hear/torchcrepe FROM hear/base)."""
    from hear_runner.build.builder import build_image

    chain = [(folder, tag)]
    while len(chain) < 8:
        match = _ARG_BASE.search((chain[-1][0] / "Dockerfile").read_text())
        base = match.group(1) if match else ""
        if not base.startswith("hear/") or is_present(docker, base):
            break
        sibling = chain[-1][0].parent / base.split("/", 1)[1].split(":")[0]
        if not (sibling / "Dockerfile").is_file():
            break  # the builder says which base is missing
        chain.append((sibling, base))
    for path, name in reversed(chain):
        say(f"building {name} from {path}")
        build_image(docker, path, name, say=say)
