"""The public plugin API: what plugins may import, and one registration rule for every kind."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from hear_runner import api, plugins
from hear_runner.metrics import metrics
from hear_runner.models import model_specs
from hear_runner.tasks.sources import task_sources

ROOT = Path(__file__).parent.parent


def _imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.lineno, node.module


def test_plugins_import_only_the_public_api() -> None:
    """The built-in plugins, the documented examples and the test suite's example plugin."""
    files = sorted(
        [*(ROOT / "plugins").glob("*/*.py"), *(ROOT / "docs" / "examples").glob("*/*/*.py"),
         *(ROOT / "tests" / "plugin_example").glob("*/*.py")]
    )  # fmt: skip
    assert len(files) > 12  # the scan sees the plugins
    internal = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in files
        for line, module in _imported_modules(path)
        if (module == "hear_runner" or module.startswith("hear_runner."))
        and module != "hear_runner.api"
    ]
    assert internal == [], "plugins must import only hear_runner.api:\n" + "\n".join(internal)


def test_every_public_name_exists() -> None:
    assert sorted(api.__all__) == sorted(set(api.__all__))
    for name in api.__all__:
        assert getattr(api, name) is not None, name


class Registers:
    """An in-process plugin whose hook registers the items it is given; an exception is
    raised and a function is called to make the item, both inside the hook."""

    def __init__(self, hook: str, *items: Any) -> None:
        def implementation(register: Callable[[Any], None]) -> None:
            for item in items:
                if isinstance(item, Exception):
                    raise item
                register(item() if callable(item) else item)

        setattr(self, hook, api.hookimpl(implementation))


@pytest.fixture
def register_plugin() -> Iterator[Callable[..., None]]:
    names: list[str] = []

    def add(name: str, hook: str, *items: Any) -> None:
        plugins.register(Registers(hook, *items), name)
        names.append(name)

    yield add
    for name in names:
        plugins.unregister(name)


def _score(targets: np.ndarray, scores: np.ndarray, labels: list[str]) -> float:
    return 0.5


def _task(name: str) -> api.TaskSource:
    return api.TaskSource(
        name=name, suite="acme", description="d", domain="music", embedding_type="scene",
        prediction_type="multiclass", split_mode="trainvaltest",
        prepare=lambda tasks_dir, scale: tasks_dir, folder_name=lambda scale: name,
    )  # fmt: skip


KINDS = [  # hook, a spec of it, the collector, what a spec is called
    ("hear_register_metrics", lambda n: api.Metric(name=n, score=_score), metrics, "metric"),
    ("hear_register_tasks", _task, task_sources, "task"),
    ("hear_register_models", lambda n: api.ModelSpec(name=n, image="a/b:1"), model_specs, "model"),
]


def _by_name(collected: Any) -> dict[str, Any]:
    return dict(collected) if isinstance(collected, dict) else {s.name: s for s in collected}


@pytest.mark.parametrize(("hook", "make", "collect", "noun"), KINDS)
def test_the_runner_fills_in_the_registering_plugin(register_plugin, hook, make, collect, noun):
    register_plugin("acme", hook, make("acme-thing"))
    assert _by_name(collect())["acme-thing"].plugin == "acme"


@pytest.mark.parametrize(("hook", "make", "collect", "noun"), KINDS)
def test_a_duplicate_name_is_an_error_naming_both_plugins(register_plugin, hook, make, collect, noun):  # fmt: skip
    register_plugin("first", hook, make("twin"))
    register_plugin("second", hook, make("twin"))
    with pytest.raises(
        api.HearError,
        match=rf"^{noun} 'twin' is registered twice: by plugin 'first' and by plugin 'second'$",
    ):
        collect()


def test_a_metric_cannot_silently_replace_a_built_in_one(register_plugin) -> None:
    register_plugin("rival", "hear_register_metrics", api.Metric(name="top1_acc", score=_score))
    with pytest.raises(api.HearError, match=r"by plugin 'core_metrics' and by plugin 'rival'"):
        metrics()


def test_a_plugin_may_not_set_its_own_name() -> None:
    with pytest.raises(ValidationError, match="filled in by the runner"):
        api.ModelSpec(name="m", image="a/b:1", plugin="someone-else")


def _impostor() -> api.Metric:
    return api.Metric(name="m", score=_score, plugin="core_metrics")  # not its to set


REFUSED = [  # hook, what the plugin's hook registers (or raises), collector, the one-line error
    ("hear_register_metrics", _impostor, metrics,
     r"^plugin 'bad', hear_register_metrics: invalid Metric .*filled in by the runner"),
    ("hear_register_models", api.Metric(name="m", score=_score), model_specs,
     r"^plugin 'bad' registered .* through hear_register_models, not a ModelSpec$"),
    ("hear_register_tasks", OSError("disk on fire"), task_sources,
     r"^plugin 'bad' failed in hear_register_tasks: OSError: disk on fire$"),
]  # fmt: skip


@pytest.mark.parametrize(("hook", "item", "collect", "error"), REFUSED)
def test_a_refused_registration_is_one_line_naming_the_plugin(register_plugin, hook, item, collect, error):  # fmt: skip
    register_plugin("bad", hook, item)
    with pytest.raises(api.HearError, match=error):
        collect()


def test_specs_are_frozen() -> None:
    spec = api.ModelSpec(name="m", image="a/b:1")
    with pytest.raises(ValidationError, match="frozen"):
        spec.image = "c/d:2"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="extra"):
        api.Metric(name="m", score=_score, better=True)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="callable"):
        api.Metric(name="m", score="top1_acc")
