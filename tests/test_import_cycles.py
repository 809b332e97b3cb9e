"""No import cycle among hear_runner's modules: dependencies run one way.

The check is static, over every ``import``/``from`` statement of hear_runner/**/*.py,
wherever it stands: module level, inside a function, and under ``if TYPE_CHECKING:``.
A deferred or typing-only import still ties the two modules' designs together (each
needs the other to be understood or type-checked), so it counts. Importing a
package's submodule is an edge to that submodule only: its ``__init__`` running first
is how Python works, not a dependency the importer chose.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import hear_runner

ROOT = Path(hear_runner.__file__).parent
PACKAGE = "hear_runner"


def module_names() -> dict[str, Path]:
    """Every hear_runner module's dotted name and file (packages by their __init__.py)."""
    modules = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The hear_runner modules that ``name``'s source imports, anywhere in the file."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package, then up
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imported(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_check_sees_a_cycle_through_a_type_checking_import(tmp_path: Path) -> None:
    """The detector itself: two modules that import each other, one only for typing."""
    (tmp_path / "a.py").write_text("from pkg.b import B\n")
    (tmp_path / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import A\n"
    )
    modules = {"pkg.a": tmp_path / "a.py", "pkg.b": tmp_path / "b.py"}
    graph = {name: imported(name, path, modules) for name, path in modules.items()}
    assert graph == {"pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}}
    assert cycles(graph) == [["pkg.a", "pkg.b"]]


def test_the_check_resolves_relative_and_submodule_imports() -> None:
    modules = module_names()
    assert "hear_runner.contract.wire" in imported(
        "hear_runner.contract.server", modules["hear_runner.contract.server"], modules
    )
    assert imported("hear_runner.embed.store", modules["hear_runner.embed.store"], modules) >= {
        "hear_runner.files",
        "hear_runner.tasks.audio",
    }


def test_hear_runner_has_no_import_cycle() -> None:
    found = cycles(import_graph())
    assert not found, "modules that import each other (directly or around a loop): " + "; ".join(
        " <-> ".join(component) for component in found
    )


def test_every_hear_runner_module_imports() -> None:
    """The static graph names the modules Python finds, and each of them imports
    (``__main__`` aside: importing it runs the CLI)."""
    names = [m.name for m in pkgutil.walk_packages(hear_runner.__path__, f"{PACKAGE}.")]
    assert set(names) | {PACKAGE} == set(module_names())
    for name in names:
        if name != f"{PACKAGE}.__main__":
            importlib.import_module(name)
