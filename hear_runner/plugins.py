"""The plugin manager: entry points in the ``hear`` group, an allow list and a block list.

``HEAR_PLUGINS=a,b`` loads only the named entry points; ``HEAR_DISABLE_PLUGINS=c``
skips some. A plugin that implements a hook this runner does not define is an
error, as in pytest: a typo must not pass silently.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import Any

import pluggy

from hear_runner import hookspecs
from hear_runner.errors import HearError

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
    _collected_by_plugin.cache_clear()


def unregister(name: str) -> None:
    """Remove an in-process plugin registered with :func:`register`."""
    manager().unregister(name=name)
    _collected.cache_clear()
    _collected_by_plugin.cache_clear()


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


@cache
def _collected(hook: str) -> tuple[Any, ...]:
    items: list[Any] = []
    getattr(manager().hook, hook)(register=items.append)
    return tuple(items)


def collect(hook: str) -> list[Any]:
    """Everything registered through ``hook`` (e.g. ``hear_register_metrics``)."""
    return list(_collected(hook))


@cache
def _collected_by_plugin(hook: str) -> tuple[tuple[str, Any, Any], ...]:
    pm = manager()
    items: list[tuple[str, Any, Any]] = []
    # Called plugin by plugin, in registration order, so each item is known by its plugin.
    for impl in getattr(pm.hook, hook).get_hookimpls():
        found: list[Any] = []
        impl.function(**{arg: found.append for arg in impl.argnames})
        items += [(impl.plugin_name, impl.plugin, item) for item in found]
    return tuple(items)


def collect_by_plugin(hook: str) -> list[tuple[str, Any, Any]]:
    """``(plugin name, plugin object, item)`` for everything registered through ``hook``."""
    return list(_collected_by_plugin(hook))
