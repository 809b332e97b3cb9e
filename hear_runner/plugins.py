"""The plugin manager: entry points in the ``hear`` group, an allow list and a block list.

``HEAR_PLUGINS=a,b`` loads only the named entry points; ``HEAR_DISABLE_PLUGINS=c``
skips some. A plugin that implements a hook this runner does not define is an
error, as in pytest: a typo must not pass silently.

:func:`collect` is the one collector of what plugins register (tasks, metrics, models,
reference results), under one rule: see :mod:`hear_runner.specs`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, TypeVar, cast

import pluggy
from pydantic import ValidationError

from hear_runner import hookspecs
from hear_runner.errors import HearError
from hear_runner.specs import Metric, ModelSpec, PluginSpec, ReferenceResults, TaskSource

GROUP = "hear"


@dataclass
class PluginInfo:
    name: str
    module: str
    distribution: str | None
    version: str | None
    hooks: list[str] = field(default_factory=list)


def _names(variable: str) -> set[str] | None:
    value = os.environ.get(variable, "").strip()
    return {n.strip() for n in value.split(",") if n.strip()} if value else None


@cache
def manager() -> pluggy.PluginManager:
    """Load every allowed entry-point plugin once per process."""
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    allow, block = _names("HEAR_PLUGINS"), _names("HEAR_DISABLE_PLUGINS") or set()
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        if (allow is not None and ep.name not in allow) or ep.name in block:
            continue
        try:
            plugin = ep.load()
        except Exception as e:
            raise HearError(f"plugin {ep.name!r} ({ep.value}) failed to import: {e}") from None
        pm.register(plugin, name=ep.name)
        _DISTRIBUTIONS[ep.name] = (ep.dist.name, ep.dist.version) if ep.dist else (None, None)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as e:
        raise HearError(f"a plugin implements a hook this runner does not define: {e}") from None
    return pm


_DISTRIBUTIONS: dict[str, tuple[str | None, str | None]] = {}


def register(plugin: Any, name: str) -> None:
    """Register an in-process plugin (tests, notebooks) beside the entry-point ones."""
    pm = manager()
    pm.register(plugin, name=name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as e:
        pm.unregister(plugin)
        raise HearError(
            f"plugin {name!r} implements a hook this runner does not define: {e}"
        ) from None
    _collected.cache_clear()


def unregister(name: str) -> None:
    """Remove an in-process plugin registered with :func:`register`."""
    manager().unregister(name=name)
    _collected.cache_clear()


def plugins() -> list[PluginInfo]:
    """What is loaded, with versions and the hooks each plugin implements."""
    pm = manager()
    infos = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: str(item[0])):
        dist, version = _DISTRIBUTIONS.get(str(name), (None, None))
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        module = getattr(plugin, "__name__", type(plugin).__name__)
        infos.append(PluginInfo(str(name), module, dist, version, hooks))
    return infos


#: The hook each kind of spec is registered through.
HOOKS: dict[type[PluginSpec], str] = {
    TaskSource: "hear_register_tasks",
    Metric: "hear_register_metrics",
    ModelSpec: "hear_register_models",
    ReferenceResults: "hear_register_reference_results",
}

Spec = TypeVar("Spec", bound=PluginSpec)


def collect(kind: type[Spec]) -> list[Spec]:
    """Every ``kind`` spec the loaded plugins register, in plugin order, each with its plugin.

    The one registration rule: an item that is not a ``kind`` is an error naming the plugin;
    ``plugin`` is filled in from the entry-point name; a name registered twice (by one plugin
    or two) is an error naming both plugins.
    """
    return cast(list[Spec], list(_collected(kind)))


@cache
def _collected(kind: type[PluginSpec]) -> tuple[PluginSpec, ...]:
    hook = HOOKS[kind]
    by_name: dict[str, PluginSpec] = {}
    # Called plugin by plugin, in registration order, so each item is known by its plugin.
    for impl in getattr(manager().hook, hook).get_hookimpls():
        for spec in _registered(impl, hook, kind):
            if spec.name in by_name:
                raise HearError(
                    f"{kind.noun} {spec.name!r} is registered twice: by plugin "
                    f"{by_name[spec.name].plugin!r} and by plugin {spec.plugin!r}"
                )
            by_name[spec.name] = spec
    return tuple(by_name.values())


def _registered(impl: Any, hook: str, kind: type[PluginSpec]) -> list[PluginSpec]:
    """What one plugin's implementation of ``hook`` registers; its failures name it."""
    plugin_name, folder = str(impl.plugin_name), _module_folder(impl.plugin)
    found: list[PluginSpec] = []

    def register(item: object) -> None:
        if not isinstance(item, kind):
            raise HearError(
                f"plugin {plugin_name!r} registered {item!r:.80} through {hook}, "
                f"not a {kind.__name__}"
            )
        found.append(item.registered_by(plugin_name, folder))

    try:
        impl.function(**{arg: register for arg in impl.argnames})
    except HearError:
        raise
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or e.title
        raise HearError(
            f"plugin {plugin_name!r}, {hook}: invalid {e.title} ({where}): {first['msg']}"
        ) from None
    except Exception as e:
        raise HearError(f"plugin {plugin_name!r} failed in {hook}: {type(e).__name__}: {e}") from e
    return found


def _module_folder(plugin: Any) -> Path | None:
    """The folder of a plugin's module (a module, or an object whose class has one)."""
    module = plugin if hasattr(plugin, "__file__") else sys.modules.get(type(plugin).__module__)
    file = getattr(module, "__file__", None)
    return Path(file).resolve().parent if file else None
