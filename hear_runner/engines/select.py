"""The engine a model choice asks for, and a source per model (building named images)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from hear_runner.engines.base import ModelSource
from hear_runner.engines.settings import ModelChoice, ServeSettings
from hear_runner.errors import HearError


def select_engine(
    choice: ModelChoice, settings: ServeSettings, say: Callable[[str], None] = lambda _: None
) -> tuple[Any, list[ModelSource]]:
    """The Docker engine for named models and images, else the local one for modules.

    Named models resolve before Docker is asked (an unknown name fails first); a named
    model whose image is missing is built from its plugin's image folder, saying so.
    """
    check_choice(choice)
    engine: Any
    if choice.modules:
        from hear_runner.engines.local import LocalEngine

        engine = LocalEngine(settings.limits(), choice.python or sys.executable)
        sources = [_source("module", ref, choice, {}) for ref in choice.modules]
    else:
        from hear_runner.engines.docker import DockerEngine
        from hear_runner.models import ensure_image, find_models

        specs = find_models(choice.names) if choice.names else []
        engine = DockerEngine(settings.limits(), settings.sandbox())
        sources = []
        for spec in specs:
            if spec.gpu and not settings.gpus:
                say(f"model {spec.name} wants a GPU: without --gpus it runs on CPU")
            tag = ensure_image(engine.docker, spec, say=say)
            sources.append(_source("image", tag, choice, dict(spec.options)))
        sources += [_source("image", ref, choice, {}) for ref in choice.images]
    return engine, _chunked(sources, settings.max_clip_seconds)


def check_choice(choice: ModelChoice) -> None:
    """One engine's models: Docker (names, images) or local (modules), not both."""
    if choice.names and choice.modules:
        raise HearError(
            "--model names a Docker image: it cannot be combined with --model-module (local)"
        )
    if bool(choice.images or choice.names) == bool(choice.modules):
        raise HearError(
            "name the model with --model or --model-image (Docker) or --model-module (local), "
            "not both"
        )


def planned_sources(
    choice: ModelChoice, max_clip_seconds: float | None
) -> list[tuple[ModelSource, str | None]]:
    """Each model's source as :func:`select_engine` makes it, with its model name where it
    is a named model's image, known without Docker (no image is built or inspected)."""
    from hear_runner.models import find_models, model_specs

    check_choice(choice)
    named = [(_source("image", s.image, choice, dict(s.options)), s.name)
             for s in (find_models(choice.names) if choice.names else [])]  # fmt: skip
    by_image = {s.image: s.name for s in model_specs()} if choice.images else {}
    images = [(_source("image", ref, choice, {}), by_image.get(ref)) for ref in choice.images]
    modules = [(_source("module", ref, choice, {}), None) for ref in choice.modules]
    pairs = named + images + modules
    sources = _chunked([source for source, _ in pairs], max_clip_seconds)
    return [(source, name) for source, (_, name) in zip(sources, pairs, strict=True)]


def _chunked(sources: list[ModelSource], max_clip_seconds: float | None) -> list[ModelSource]:
    if not max_clip_seconds:
        return sources
    return [s.model_copy(update={"max_clip_seconds": max_clip_seconds}) for s in sources]


def _source(kind: Any, ref: str, choice: ModelChoice, defaults: dict[str, Any]) -> ModelSource:
    """A model's source: its spec's options, overridden by the user's."""
    return ModelSource(
        kind=kind, ref=ref, options={**defaults, **choice.options}, model_path=choice.path
    )
