"""Which store folder a model's embeddings are in, found as `hear run` finds it, but
without starting the model: an image's id from ``docker image inspect`` (no container),
a module's from its name and interpreter."""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import BaseModel

from hear_runner.engines.base import ModelSource
from hear_runner.engines.settings import ModelChoice
from hear_runner.errors import HearError


class PlannedModel(BaseModel):
    name: str  # as its records and the store name it: the image or module
    table_name: str | None  # the named model (its throughputs entry), if it is one
    store_folder: str | None  # None: not known without starting something
    identity: str  # the image id, the module @ interpreter, or why it is unknown


def planned_models(choice: ModelChoice, max_clip_seconds: float | None) -> list[PlannedModel]:
    from hear_runner.embed.store import ModelKey
    from hear_runner.engines.select import planned_sources

    docker = _docker() if (choice.names or choice.images) else None
    models = []
    for source, named in planned_sources(choice, max_clip_seconds):
        identity, known = _identity(source, choice.python, docker)
        key = ModelKey(
            source.display_name, identity, tuple(sorted(source.options.items())),
            source.model_path, source.max_clip_seconds,
        )  # fmt: skip
        models.append(PlannedModel(
            name=source.display_name, table_name=named, identity=identity,
            store_folder=key.folder if known else None,
        ))  # fmt: skip
    return models


def _identity(source: ModelSource, python: str | None, docker: object) -> tuple[str, bool]:
    """What the engine's ``check`` would say, and whether it is known."""
    if source.kind == "module":
        return f"{source.ref} @ {Path(python or sys.executable).absolute()}", True
    if docker is None:
        return "unknown (no Docker engine reachable)", False
    from docker.errors import DockerException

    try:
        return str(docker.images.get(source.ref).id), True  # type: ignore[attr-defined]
    except DockerException:
        return "unknown (image not on this Docker engine)", False


def _docker() -> object | None:
    from hear_runner.engines.docker import connect

    try:
        return connect()
    except HearError:
        return None
