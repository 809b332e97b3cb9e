"""The plugin docs keep up with the code (as datasette's test_docs does): every hook, spec
field and public name is documented, the examples are shown as they are, and every
``Task*``/``Model*``/``*Record`` class is in the architecture glossary."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from hear_runner import api, hookspecs
from hear_runner.plugins import HOOKS

ROOT = Path(__file__).parent.parent
PLUGINS_MD = (ROOT / "docs" / "plugins.md").read_text()
ARCHITECTURE_MD = (ROOT / "docs" / "architecture.md").read_text()
HOOK_NAMES = sorted(name for name in vars(hookspecs) if name.startswith("hear_"))


def section(markdown: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level."""
    level = heading.split(" ", 1)[0]
    match = re.search(rf"^{re.escape(heading)}\n(.*?)(?=^#{{1,{len(level)}}} |\Z)", markdown,
                      re.MULTILINE | re.DOTALL)  # fmt: skip
    assert match, f"docs have no heading {heading!r}"
    return match.group(1)


def test_every_hook_is_a_spec_hook() -> None:
    assert len(HOOK_NAMES) >= 3
    assert sorted(HOOKS.values()) == HOOK_NAMES


@pytest.mark.parametrize("hook", HOOK_NAMES)
def test_hook_is_documented(hook: str) -> None:
    text = section(PLUGINS_MD, f"### {hook}")
    for part in ("**When called:**", "**Duplicates:**", "fields** (all stable)"):
        assert part in text, f"{hook}: docs/plugins.md lacks {part!r}"
    docstring = getattr(hookspecs, hook).__doc__ or ""
    for part in ("**When called:**", ":param register:", "**Duplicates:**", "**Stable fields:**"):
        assert part in docstring, f"{hook}: its docstring lacks {part!r}"


@pytest.mark.parametrize(("kind", "hook"), [(k.__name__, h) for k, h in HOOKS.items()])
def test_every_spec_field_is_documented_under_its_hook(kind: str, hook: str) -> None:
    text = section(PLUGINS_MD, f"### {hook}")
    docstring = getattr(hookspecs, hook).__doc__ or ""
    fields = getattr(api, kind).model_fields
    for field in fields:
        assert f"| `{field}` |" in text, f"{kind}.{field} is not in the table under {hook}"
        assert re.search(rf"``{field}[`(]", docstring), f"{kind}.{field} is not in {hook}'s docstring"


def test_every_public_name_is_documented() -> None:
    text = section(PLUGINS_MD, "## The public API (hear_runner.api)")
    missing = [name for name in api.__all__ if f"`{name}`" not in text]
    assert missing == [], f"docs/plugins.md's API table lacks {missing}"


@pytest.mark.parametrize(
    "path",
    [
        "hear-example-task/hear_example_task/__init__.py",
        "hear-example-task/pyproject.toml",
        "hear-example-model/hear_example_model/__init__.py",
        "hear-example-model/pyproject.toml",
        "hear-example-model/hear_example_model/image/Dockerfile",
    ],
)
def test_the_tutorial_shows_the_example_files_as_they_are(path: str) -> None:
    assert (ROOT / "docs" / "examples" / path).read_text() in PLUGINS_MD


def _glossary_classes() -> list[str]:
    names = set()
    for path in (ROOT / "hear_runner").rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and re.fullmatch(
                r"Task\w*|Model\w*|\w*Record", node.name
            ):
                names.add(node.name)
    return sorted(names)


def test_every_task_model_and_record_class_is_in_the_glossary() -> None:
    names = _glossary_classes()
    assert {"Task", "TaskSource", "ModelSpec", "RunRecord"} <= set(names)
    glossary = section(ARCHITECTURE_MD, "## Glossary")
    missing = [name for name in names if f"`{name}`" not in glossary]
    assert missing == [], f"docs/architecture.md's glossary lacks {missing}"
