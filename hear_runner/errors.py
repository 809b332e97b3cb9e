"""Errors a user sees as one line: each names the file, field, image or container at fault."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class HearError(Exception):
    """A failure to report as one line (no traceback), then exit non-zero."""

    exit_code = 1


class TaskError(HearError):
    """A task folder is missing something or holds something malformed."""

    def __init__(self, path: object, problem: str, field: str | None = None) -> None:
        where = f"{path}: field '{field}'" if field is not None else f"{path}"
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.problem = problem
        self.field = field

    def __reduce__(self) -> tuple[object, ...]:  # intact across processes (a Ray node's unit)
        return type(self), (self.path, self.problem, self.field)


class ImageError(HearError):
    """An image is missing, cannot be built, or does not honour the contract."""


class ModelError(HearError):
    """The model server answered a call with an error frame, or broke the contract."""

    def __init__(self, message: str, kind: str = "model_error", detail: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.detail = detail  # the server's traceback text, for --verbose and the logs

    def __reduce__(self) -> tuple[object, ...]:  # the kind survives pickling (Ray units)
        return type(self), (str(self), self.kind, self.detail)


class ModelTimeout(ModelError):
    """A call took longer than its budget; the server was killed."""


class ModelDied(ModelError):
    """The server process or container ended while the host was waiting on it."""


def one_line(value: object) -> str:
    """``value`` as text on one line (an OS or library message may hold newlines)."""
    return " ".join(str(value).split())


def first_field_error(error: ValidationError) -> str:
    """``field 'a.b': message`` for the first thing pydantic refused, to end a one-line error."""
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    return f"field {where!r}: {first['msg']}"
