"""The `hear` command: parse, call, render. Each command group has its own module; the
work is done by the library (engines, tasks, results), which the commands only call."""

from __future__ import annotations

import errno
import os
import signal
import sys
from typing import Annotated

import typer

from hear_runner import __version__
from hear_runner.cli.cache import cache_app
from hear_runner.cli.models import image_app, list_plugins, models_app
from hear_runner.cli.plan import plan
from hear_runner.cli.probe import probe, score
from hear_runner.cli.render import HelpGroup, err, esc, out
from hear_runner.cli.rerun import rerun
from hear_runner.cli.results import compare, leaderboard_app, report
from hear_runner.cli.run import embed, run
from hear_runner.cli.submit import add, submit_app
from hear_runner.cli.tasks import tasks_app
from hear_runner.cli.validate import validate_model
from hear_runner.errors import HearError, ModelError

app = typer.Typer(
    name="hear",
    cls=HelpGroup,
    help=(
        "Evaluate audio embedding models on HEAR tasks.\n\n"
        "Each model runs in its own Docker image (named with --model, see `hear models list`, "
        "or --model-image; or, with --model-module, in a local process) behind a small "
        "versioned contract; the host embeds the audio, trains probes and scores them."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for command in (run, plan, report, rerun, embed, probe, score):
    app.command()(command)
app.command("validate")(validate_model)
app.command("plugins")(list_plugins)
leaderboard_app.command("add")(add)
app.add_typer(leaderboard_app, name="leaderboard")
app.command()(compare)
app.add_typer(image_app, name="image")
app.add_typer(tasks_app, name="tasks")
app.add_typer(models_app, name="models")
app.add_typer(cache_app, name="cache")
app.add_typer(submit_app, name="submit")


def version_callback(value: bool) -> None:
    if value:
        out.print(f"hear-runner {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=version_callback,
            is_eager=True,
            help="Show the version.",
            metavar="",
        ),
    ] = False,
) -> None:
    """Evaluate audio embeddings on HEAR tasks."""


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM: unwinds every `with` so model servers are stopped and removed."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


#: OSErrors that main() shows as one line naming the file (disk full, read-only, no access).
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES}


def _interrupt(signum: int, _frame: object) -> None:
    raise Interrupted(signum)


def main() -> None:
    """Entry point: one-line errors, containers removed on Ctrl-C and SIGTERM."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        app()
    except ModelError as e:
        err.print(f"[red]error:[/] {esc(e)}", highlight=False, soft_wrap=True)
        if e.detail and os.environ.get("HEAR_DEBUG"):
            err.print(e.detail, highlight=False, markup=False)
        sys.exit(e.exit_code)
    except HearError as e:
        err.print(f"[red]error:[/] {esc(e)}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except OSError as e:
        # A full or read-only disk met outside the atomic writers: one line naming the path.
        if e.errno not in _DISK_ERRNOS or not e.filename:
            raise
        reason = e.strerror or os.strerror(e.errno)
        err.print(f"[red]error:[/] {esc(e.filename)}: {esc(reason)}", highlight=False,
                  soft_wrap=True)  # fmt: skip
        sys.exit(1)
    except Interrupted as e:
        err.print(f"[yellow]interrupted[/] ({e}): model servers stopped; finished results are kept")
        sys.exit(128 + e.signum)


__all__ = ["app", "main"]
