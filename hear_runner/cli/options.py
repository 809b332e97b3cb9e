"""Options that several commands take, each declared once.

The serving options (--memory, --gpus, ...) arrive in a command as one ``ServeSettings``
and the model options (--model, --model-image, ...) as one ``ModelChoice``: the
decorators add them to the command's signature (typer reads it) and pack them.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_type_hints

import typer
from platformdirs import user_data_path
from pydantic import BaseModel, ValidationError

from hear_runner.engines.settings import ModelChoice, ServeSettings
from hear_runner.errors import HearError

Command = TypeVar("Command", bound=Callable[..., Any])


def default_tasks_dir() -> Path:
    return Path(os.environ.get("HEAR_TASKS_DIR") or user_data_path("hear-runner") / "tasks")


def _default_cache_dir() -> Path:
    from hear_runner.embed.store import default_cache_dir

    return default_cache_dir()


def flag(name: str, help: str) -> Any:
    """A yes/no option: shown without a type (typer would print ``<bool>``)."""
    return typer.Option(name, help=help, metavar="")


JsonOutput = Annotated[bool, flag("--json", "Print JSON instead of a table.")]
TasksDir = Annotated[
    Path,
    typer.Option(
        "--tasks-dir",
        metavar="DIR",
        help="Folder of hear-preprocess task folders (or one task folder). "
        "Default: $HEAR_TASKS_DIR, else the platform data folder.",
        default_factory=default_tasks_dir,
        show_default=False,
    ),
]
CacheDir = Annotated[
    Path,
    typer.Option(
        "--cache-dir",
        metavar="DIR",
        help="Embedding store. Default: $HEAR_CACHE_DIR, else the platform cache folder.",
        default_factory=_default_cache_dir,
        show_default=False,
    ),
]
TaskNames = Annotated[
    list[str] | None,
    typer.Option(
        "--task",
        metavar="NAME",
        help="Task to run (repeatable): a folder in --tasks-dir, or a task a plugin provides "
        "(prepared into --tasks-dir first). Default: every task found.",
    ),
]
OverwriteOption = Annotated[
    str,
    typer.Option(
        "--overwrite",
        metavar="POLICY",
        help="only-missing: reuse stored embeddings, compute the rest (a stopped run resumes). "
        "always: recompute. never: use the store only, fail if something is missing.",
    ),
]
RayAddress = Annotated[str | None, typer.Option(
    "--ray", metavar="ADDRESS", envvar="HEAR_RAY_ADDRESS",
    help="Run on a Ray cluster: auto or HOST:PORT of its head from one of its machines, or "
    "ray://HOST:PORT from anywhere (pip install 'hear-runner\\[ray]'). Units go to nodes "
    "declaring the hear_docker resource; store, records and results stay here.")]  # fmt: skip
ResultsDir = Annotated[
    Path,
    typer.Option(
        "--results-dir",
        metavar="DIR",
        help="The folder `hear run` wrote its records into (searched at any depth).",
    ),
]

#: Each serving option: its type and typer declaration; its default is ServeSettings'.
SERVE_OPTIONS: dict[str, tuple[Any, Any]] = {
    "gpus": (str | None, typer.Option(
        "--gpus", metavar="GPUS", help="GPUs for model containers: all, a count, or device=0,2.")),
    "workers": (int | None, typer.Option(
        "--workers", min=1, metavar="N",
        help="Model servers sharing the work (default: one per GPU in --gpus, else one).")),
    "transport": (str, typer.Option(
        "--transport", metavar="auto|socket|stdio",
        help="How the host talks to model containers: socket (a Unix socket in a shared "
        "folder; fast), stdio (the attach stream; for a remote engine or hear in a "
        "container), or auto.")),
    "memory": (str, typer.Option(
        "--memory", metavar="SIZE", help="Memory limit of each model container.")),
    "batch_size": (int, typer.Option(
        "--batch-size", min=1, metavar="N", help="Clips per model call.")),
    "max_clip_seconds": (float | None, typer.Option(
        "--max-clip-seconds", min=0.5, metavar="SECONDS",
        help="Embed clips longer than this in chunks (timestamps kept exact). Clips a model "
        "runs out of memory on alone are chunked without it.")),
    "load_timeout": (float, typer.Option(
        "--load-timeout", metavar="SECONDS", help="Seconds a model may take to load.")),
    "call_timeout": (float, typer.Option(
        "--call-timeout", metavar="SECONDS",
        help="Seconds a model call may take, plus --call-timeout-per-second per audio second.")),
    "call_timeout_per_second": (float, typer.Option(
        "--call-timeout-per-second", metavar="SECONDS",
        help="Extra call budget per audio second.")),
}  # fmt: skip


def serve_options(*fields: str, exit_code: int = 1) -> Callable[[Command], Command]:
    """Add the serving options named (default: all) as one ``serve: ServeSettings``; a bad
    value exits with ``exit_code``."""
    names = fields or tuple(SERVE_OPTIONS)
    options = {
        name: (Annotated[SERVE_OPTIONS[name][0], SERVE_OPTIONS[name][1]],
               ServeSettings.model_fields[name].default)
        for name in names
    }  # fmt: skip
    return _packed("serve", options, lambda values: _build(ServeSettings, values), False, exit_code)


def model_options(many: bool, exit_code: int = 1) -> Callable[[Command], Command]:
    """Add --model, --model-image, --model-module (repeatable when ``many``), --model-python,
    --model-options and --model-path as one ``models: ModelChoice``."""
    some = list[str] | None if many else str | None
    again = " Repeatable." if many else ""
    options = {
        "names": (Annotated[some, typer.Option(
            "--model", metavar="NAME",
            help="A named model (hear models list): its image, built from its plugin's image "
            "folder if not here, with its options under --model-options." + again)], None),
        "images": (Annotated[some, typer.Option(
            "--model-image", metavar="IMAGE",
            help="Docker image serving a HEAR module (FROM hear/base)." + again)], None),
        "modules": (Annotated[some, typer.Option(
            "--model-module", metavar="MODULE",
            help="HEAR-API module importable here, run by a local engine (no Docker)."
            + again)], None),
        "python": (Annotated[str | None, typer.Option(
            "--model-python", metavar="PYTHON",
            help="Interpreter for --model-module (e.g. the model's own venv). "
            "Default: this one.")], None),
        "options": (Annotated[str | None, typer.Option(
            "--model-options", metavar="JSON",
            help="JSON object of keyword options for load_model().")], None),
        "path": (Annotated[str | None, typer.Option(
            "--model-path", metavar="PATH",
            help="Weights path passed to load_model() (inside the image).")], None),
    }  # fmt: skip

    def choice(values: dict[str, Any]) -> ModelChoice:
        listed = {k: [v] if isinstance(v, str) else v or [] for k, v in values.items()
                  if k in ("names", "images", "modules")}  # fmt: skip
        options = json_object(values["options"], "--model-options")
        return _build(ModelChoice, {**values, **listed, "options": options})

    return _packed("models", options, choice, True, exit_code)


def _packed(
    target: str,
    options: dict[str, tuple[Any, Any]],
    build: Callable[[dict[str, Any]], Any],
    first: bool,
    exit_code: int,
) -> Callable[[Command], Command]:
    """A decorator: ``options`` become keyword parameters of the command's signature
    (``first`` or after its own: the order of its help), and reach it packed by ``build``
    as its parameter ``target`` (a bad value: a HearError exiting with ``exit_code``)."""

    def decorate(command: Command) -> Command:
        hints = get_type_hints(command, include_extras=True)
        own = [
            p.replace(annotation=hints[p.name], kind=inspect.Parameter.KEYWORD_ONLY)
            for p in inspect.signature(command).parameters.values()
            if p.name != target
        ]
        added = [inspect.Parameter(f"{target}_{name}", inspect.Parameter.KEYWORD_ONLY,
                                   annotation=annotation, default=default)
                 for name, (annotation, default) in options.items()]  # fmt: skip

        @functools.wraps(command)
        def packed(**kwargs: Any) -> Any:
            values = {name: kwargs.pop(f"{target}_{name}") for name in options}
            try:
                built = build(values)
            except HearError as e:
                e.exit_code = exit_code
                raise
            return command(**kwargs, **{target: built})

        parameters = added + own if first else own + added
        packed.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        packed.__annotations__ = {p.name: p.annotation for p in parameters}
        return packed  # type: ignore[return-value]

    return decorate


def _build(model: type[BaseModel], values: dict[str, Any]) -> Any:
    """The settings object; a bad value is one line naming its option."""
    try:
        return model(**values)
    except ValidationError as e:
        first = e.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        option = "--" + field.replace("_", "-")
        raise HearError(f"{option} {first.get('input')!r}: {first['msg']}") from None


def json_object(text: str | None, option: str) -> dict[str, Any]:
    """``text`` as a JSON object (nothing: an empty one)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise HearError(f"{option}: not valid JSON: {e.msg}") from None
    if not isinstance(value, dict):
        raise HearError(f"{option}: expected a JSON object")
    return value
