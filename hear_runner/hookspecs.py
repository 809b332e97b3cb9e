"""The hooks a hear plugin may implement; docs/plugins.md is their reference.

A plugin is a module (or object) with :data:`hookimpl` functions, declared under the
``hear`` entry-point group (built-in plugins are registered the same way). Every hook
receives one argument, ``register``, and calls it once per item it provides. Implementing a
hook this module does not define is an error, as in pytest.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from hear_runner.specs import Metric, ModelSpec, ReferenceResults, TaskSource

hookspec = pluggy.HookspecMarker("hear")
hookimpl = pluggy.HookimplMarker("hear")


@hookspec
def hear_register_tasks(register: Callable[[TaskSource], None]) -> None:
    """Register the tasks this plugin can prepare: ``register(TaskSource(...))`` for each.

    **When called:** once per process, the first time tasks are listed, prepared or
    looked up by name (``hear tasks list``, ``hear tasks prepare``, ``hear run --task``).
    Keep it cheap: import heavy code inside ``prepare``, not at registration.

    :param register: takes one :class:`~hear_runner.api.TaskSource`; anything else is an error
        naming the plugin.

    **Duplicates:** a task name registered twice, by this plugin or by two, is an error that
    names both plugins. ``plugin`` is filled in by the runner (the entry-point name).

    **Stable fields:** ``name``, ``suite``, ``description``, ``domain``, ``embedding_type``,
    ``prediction_type``, ``split_mode``, ``prepare(tasks_dir, scale) -> Path``,
    ``folder_name(scale) -> str``, ``scales``, ``scale_factor``; read-only ``plugin``.
    """


@hookspec
def hear_register_metrics(register: Callable[[Metric], None]) -> None:
    """Register scoring functions: ``register(Metric(...))`` for each metric name.

    **When called:** once per process, the first time a metric is looked up: when a run
    checks a task's ``evaluation`` list (before any model starts), when probes are scored,
    and when results are compared or reported.

    :param register: takes one :class:`~hear_runner.api.Metric`; anything else is an error
        naming the plugin.

    **Duplicates:** a metric name registered twice is an error that names both plugins (a
    second plugin cannot silently replace a score). ``plugin`` is filled in by the runner.

    **Stable fields:** ``name``, ``score``, ``higher_is_better``, ``kind`` (``"scene"`` or
    ``"event"``), ``score_arrays`` (event metrics, optional: ``score`` on event arrays,
    exactly equal); read-only ``plugin``.
    """


@hookspec
def hear_register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register named models: ``register(ModelSpec(...))`` for each ``--model NAME``.

    **When called:** once per process, the first time models are listed
    (``hear models list``) or a run names one (``hear run --model NAME``).

    :param register: takes one :class:`~hear_runner.api.ModelSpec`; anything else is an error
        naming the plugin. A relative ``build`` folder is resolved against the folder of the
        plugin's module, so an image folder shipped as package data is found after ``pip
        install``.

    **Duplicates:** a model name registered twice is an error that names both plugins.
    ``plugin`` is filled in by the runner.

    **Stable fields:** ``name``, ``image``, ``build``, ``options``, ``sample_rate``,
    ``gpu``, ``description``; read-only ``plugin``.
    """


@hookspec
def hear_register_reference_results(register: Callable[[ReferenceResults], None]) -> None:
    """Register published scores of tasks: ``register(ReferenceResults(...))`` for each table.

    **When called:** once per process, the first time reference results are looked up
    (``hear leaderboard --reference NAME``). Keep it cheap: read a small data file shipped
    with the plugin.

    :param register: takes one :class:`~hear_runner.api.ReferenceResults`; anything else is
        an error naming the plugin.

    **Duplicates:** a reference name registered twice is an error that names both plugins.
    ``plugin`` is filled in by the runner.

    **Stable fields:** ``name`` (what ``--reference`` takes), ``title``, ``source`` (where
    the scores were published: repository, path, commit, URL), ``tasks`` (released folder
    name -> ``version``, ``metric``), ``rows`` (submission -> {folder: score}); read-only
    ``plugin``.
    """
