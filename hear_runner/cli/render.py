"""What the commands print: two consoles, escaping, status lines and a progress bar."""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, cast

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

# Piped output is not squeezed into 80 columns: tables stay readable in logs and CI.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def esc(value: object) -> str:
    """Text a model, task, plugin or file supplied, shown as it is: rich reads ``[...]`` in
    printed strings and table cells as markup (a crash on ``[/bold]``, a restyle, a link)."""
    return escape(str(value))


def say(message: str) -> None:
    """A status line on stderr: ``• message``."""
    err.print(f"[dim]•[/] {esc(message)}", soft_wrap=True)


def wrote(path: object) -> None:
    err.print(f"[green]wrote[/] {esc(path)}", soft_wrap=True)


class TrainingsBar(NamedTuple):
    trained: Callable[[int], None]  # n trainings done
    loaded: Callable[[int], None]  # n loaded from a stopped run's saved trainings
    note: Callable[[str], None]  # where the training in progress stands


@contextlib.contextmanager
def progress_bar(description: str, total: int | None = None) -> Iterator[TrainingsBar]:
    """A bar of trainings: what advances it for n trained, and for n loaded from a saved run,
    and what notes where the training in progress stands."""
    from hear_runner.progress import progress

    with progress(err, unit="trainings") as bars:
        bar = bars.add_task(description, total=total)
        yield TrainingsBar(
            trained=lambda n: bars.advance(bar, n),
            loaded=lambda n: bars.loaded(bar, n),
            note=lambda text: bars.note(bar, text),
        )


@contextlib.contextmanager
def kept(saved: Path) -> Iterator[None]:
    """On a stop (Ctrl-C, an error), where the trainings done so far wait to be resumed."""
    try:
        yield
    except BaseException:
        if saved.exists():
            say(f"the trainings done so far are saved in {saved}: the same command resumes")
        raise


def command_group(help: str) -> typer.Typer:
    """A `hear` subcommand group (`hear tasks ...`): its bare name prints its help."""
    return typer.Typer(cls=HelpGroup, help=help, no_args_is_help=True)


class HelpGroup(TyperGroup):
    """A command group whose help, and its commands' help, reads as the user's words, not
    Python's: no type labels (typer shows every flag as ``<bool>``, its own ``--help``
    included, and arguments as ``<str>``, ``<path>`` or ``<list[Path]>``), and each
    command's description reflowed to the terminal (typer keeps a docstring's line breaks,
    so an 80-column terminal showed every other line a few words long)."""

    def get_help_option(self, ctx: Any) -> Any:
        return _untyped(super().get_help_option(ctx))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _untyped(command.get_help_option(ctx))  # cached: the one its own help shows
            for param in command.params:
                if param.param_type_name == "argument":
                    cast(Any, param).display_type_rich = _no_type
            command.help = _paragraphs(command.help)
        return command


def _paragraphs(text: str | None) -> str | None:
    """A docstring as paragraphs of one line each, for the terminal to wrap."""
    if text is None:
        return None
    return "\n\n".join(
        " ".join(paragraph.split("\n")) for paragraph in inspect.cleandoc(text).split("\n\n")
    )


def _no_type(ctx: Any) -> None:
    return None


def _untyped(option: Any) -> Any:
    if option is not None:
        option.metavar = ""
    return option
