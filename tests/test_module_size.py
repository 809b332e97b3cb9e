"""No module of hear_runner over 600 lines: past that, a file holds more than one job."""

from __future__ import annotations

from pathlib import Path

import hear_runner

MAX_LINES = 600
ROOT = Path(hear_runner.__file__).parent
#: The CLI only parses, calls and renders: a command group's module stays about this small.
MAX_CLI_LINES = 270


def test_no_hear_runner_module_is_over_600_lines() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for path in ROOT.rglob("*.py")
    }
    assert len(sizes) > 50  # the whole package was read
    over = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}"


def test_each_cli_module_is_one_small_command_group() -> None:
    sizes = {p.name: len(p.read_text().splitlines()) for p in (ROOT / "cli").glob("*.py")}
    assert len(sizes) >= 8  # the package, not one file
    over = {name: n for name, n in sizes.items() if n > MAX_CLI_LINES}
    assert not over, f"CLI modules over {MAX_CLI_LINES} lines: {over}"
