"""The hooks a hear plugin may implement. Each receives a ``register`` callable.

A plugin is a module (or object) with ``@hookimpl`` functions, declared under
the ``hear`` entry-point group. Built-in plugins are registered the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("hear")
hookimpl = pluggy.HookimplMarker("hear")


@hookspec
def hear_register_tasks(register: Callable[[Any], None]) -> None:
    """Register task sources: ``register(TaskSource(...))`` for each task a plugin provides."""


@hookspec
def hear_register_metrics(register: Callable[[Any], None]) -> None:
    """Register scoring functions: ``register(Metric(...))`` for each metric name."""


@hookspec
def hear_register_models(register: Callable[[Any], None]) -> None:
    """Register named models: ``register(ModelSpec(...))`` for each model (its image and how
    to build it); the runner fills in the registering plugin."""
