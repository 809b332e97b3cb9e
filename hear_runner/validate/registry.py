"""A registry of named checks, each declaring what it needs from the checks before it.

The checks of `hear validate` build on each other (the timestamp checks look at what
timestamp_shapes got back; batch_invariance means nothing once determinism failed).
Each dependency is declared beside its check as a :class:`Need`, so the order is
derived (and verified) rather than implied by shared fields, and a check whose need is
unmet is skipped with a line saying what it waits for. Nothing here knows about models:
the state the checks share is a type parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

State = TypeVar("State")


class Skip(Exception):
    """The check cannot run: its detail says why (reported as "skipped: <detail>")."""


class Fail(Exception):
    """The check ran and the model does not honour it."""


@dataclass(frozen=True)
class Need(Generic[State]):
    """What a check needs from earlier checks: ``met`` tells from the shared state whether
    ``after`` delivered it; when not, the check is skipped because of ``reason``."""

    after: tuple[str, ...]  # the checks that deliver it: they run first
    met: Callable[[State], bool]
    reason: str


@dataclass(frozen=True)
class CheckSpec(Generic[State]):
    name: str
    body: Callable[[State], str]  # the detail of a pass; raises Skip or Fail otherwise
    needs: tuple[Need[State], ...] = ()
    out_of_memory_hint: str = ""  # added to the detail when the model ran out of memory

    def unmet(self, state: State) -> str | None:
        """The reason of the first need ``state`` does not meet; None when all are met."""
        return next((need.reason for need in self.needs if not need.met(state)), None)


class Registry(Generic[State]):
    """Checks in the order they were registered, run in an order their needs allow."""

    def __init__(self) -> None:
        self._specs: dict[str, CheckSpec[State]] = {}

    def check(
        self, name: str, *needs: Need[State], out_of_memory_hint: str = ""
    ) -> Callable[[Callable[[State], str]], Callable[[State], str]]:
        """Register the decorated function as the check ``name``."""

        def register(body: Callable[[State], str]) -> Callable[[State], str]:
            if name in self._specs:
                raise ValueError(f"check {name!r} is registered twice")
            self._specs[name] = CheckSpec(name, body, needs, out_of_memory_hint)
            return body

        return register

    def ordered(self) -> list[CheckSpec[State]]:
        """Every check after the checks it needs; otherwise in registration order."""
        waiting = list(self._specs.values())
        for spec in waiting:
            unknown = [a for need in spec.needs for a in need.after if a not in self._specs]
            if unknown:
                raise ValueError(f"check {spec.name!r} needs unknown check {unknown[0]!r}")
        placed: list[CheckSpec[State]] = []
        done: set[str] = set()
        while waiting:
            ready = next(
                (s for s in waiting if all(a in done for n in s.needs for a in n.after)), None
            )
            if ready is None:
                names = ", ".join(s.name for s in waiting)
                raise ValueError(f"checks {names} need each other (a dependency cycle)")
            waiting.remove(ready)
            placed.append(ready)
            done.add(ready.name)
        return placed
