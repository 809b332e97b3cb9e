"""Named models: what plugins register with ``hear_register_models``, and how to get the image.

A :class:`ModelSpec` names a model image (``--model crepe`` instead of ``--model-image
hear/torchcrepe:latest``) and, optionally, the image folder to build it from when the Docker
engine does not have it. A relative ``build`` path is resolved against the folder of the
registering plugin's module (a third-party plugin ships its image folder as package data);
an absolute one is used as is. The built-in models' folders ship with hear-runner (its
wheel or clone): :func:`images_dir` finds them, or ``$HEAR_IMAGES_DIR``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hear_runner import plugins
from hear_runner.build.shipped import images_dir as images_dir  # for model plugins
from hear_runner.errors import HearError, ImageError

HOOK = "hear_register_models"
_ARG_BASE = re.compile(r"^\s*ARG\s+BASE_IMAGE=(\S+)\s*$", re.MULTILINE)


class ModelSpec(BaseModel):
    """A named model: its image, and where to build it from when it is not here."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    image: str  # a tag, e.g. hear/torchcrepe:latest
    build: Path | None = None  # an image folder with a Dockerfile (relative: to the plugin)
    options: dict[str, Any] = Field(default_factory=dict)  # HEAR_MODEL_OPTIONS
    sample_rate: int | None = None  # informative; the image's hello is what counts
    gpu: bool = False  # whether it wants a GPU
    description: str = ""
    plugin: str = ""  # filled in: the plugin that registered it


def model_specs() -> list[ModelSpec]:
    """Every registered model, by name; a name registered twice is an error naming both."""
    by_name: dict[str, ModelSpec] = {}
    for plugin_name, plugin, item in plugins.collect_by_plugin(HOOK):
        if not isinstance(item, ModelSpec):
            raise HearError(
                f"plugin {plugin_name!r} registered {item!r} through {HOOK}, not a ModelSpec"
            )
        spec = item.model_copy(
            update={"plugin": plugin_name, "build": _resolve_build(item.build, plugin)}
        )
        if spec.name in by_name:
            raise HearError(
                f"model {spec.name!r} is registered twice: by plugin "
                f"{by_name[spec.name].plugin!r} and by plugin {plugin_name!r}"
            )
        by_name[spec.name] = spec
    return [by_name[n] for n in sorted(by_name)]


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


def _resolve_build(build: Path | None, plugin: Any) -> Path | None:
    if build is None or build.is_absolute():
        return build
    module = plugin if hasattr(plugin, "__file__") else sys.modules.get(type(plugin).__module__)
    file = getattr(module, "__file__", None)
    if not file:
        raise HearError(
            f"model build folder {build} is relative, but its plugin has no file to resolve "
            "it against: give an absolute path"
        )
    return (Path(file).resolve().parent / build).resolve()
