"""`hear validate`: does a model honour the HEAR API and this runner's contract?

The checks are in :mod:`hear_runner.validate.checks`, each declaring what it needs from
the ones before it (:mod:`hear_runner.validate.registry`); they share a
:class:`~hear_runner.validate.session.Session`, which owns the model's server. The
validator times ``engine.start`` (cold start); a check that leaves the server unusable is
followed by a fresh one, at most ``MAX_RESTARTS`` times (see the session).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from hear_runner.engines.base import Engine, ModelSource
from hear_runner.errors import ModelError
from hear_runner.validate.checks import CHECKS
from hear_runner.validate.registry import CheckSpec, Fail, Skip
from hear_runner.validate.report import Check, Result, ValidationReport
from hear_runner.validate.session import Session

__all__ = ["CHECK_NAMES", "Check", "ValidationReport", "validate"]

#: Model errors after which the server keeps serving (its function raised, or out of memory).
SURVIVABLE = ("model_error", "out_of_memory")

#: Every check, in the order they run and are reported.
CHECK_NAMES = tuple(spec.name for spec in CHECKS.ordered())


def validate(
    engine: Engine,
    source: ModelSource,
    long_seconds: float = 1200.0,
    seed: int = 0,
    on_check: Callable[[Check], None] | None = None,
) -> ValidationReport:
    """Start ``source`` on ``engine``, run every check, stop the server; the report says
    what passed. ``long_seconds`` 0 skips the long-input check."""
    session = Session(engine, source, long_seconds, seed)
    try:
        for spec in CHECKS.ordered():
            check = run_check(spec, session)
            session.add(check)
            if on_check is not None:
                on_check(check)
    except BaseException:  # Ctrl-C: the server may be stuck in a call, kill it
        session.stop(graceful=False)
        raise
    session.stop(graceful=True)
    return session.report()


def run_check(spec: CheckSpec[Session], session: Session) -> Check:
    """One check's result: skipped when a need is unmet, failed on Fail or a model error
    (the server is dropped when the error left it unusable)."""
    started = time.perf_counter()
    result: Result = "pass"
    traceback = ""
    try:
        unmet = spec.unmet(session)
        if unmet is not None:
            raise Skip(unmet)
        detail = spec.body(session)
    except Skip as e:
        result, detail = "skip", f"skipped: {e}"
    except Fail as e:
        result, detail = "fail", str(e)
    except ModelError as e:
        result, detail, traceback = "fail", str(e), e.detail
        if e.kind not in SURVIVABLE:
            session.lose_server(spec.name)
        elif e.kind == "out_of_memory":
            detail += spec.out_of_memory_hint
    seconds = round(time.perf_counter() - started, 3)
    return Check(name=spec.name, result=result, detail=detail, seconds=seconds, traceback=traceback)
