"""Option values checked against their choices, for every command that takes them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hear_runner.errors import HearError

if TYPE_CHECKING:
    from hear_runner.embed.store import Overwrite
    from hear_runner.probes.mlp import TrainingOptions
    from hear_runner.probes.stage import ProbeMode


def probe_mode(value: str) -> ProbeMode:
    from hear_runner.probes.stage import PROBE_MODES

    if value not in PROBE_MODES:
        raise HearError(f"probe mode {value!r}: expected one of {', '.join(PROBE_MODES)}")
    return value  # type: ignore[return-value]


def training_options(mode: str, precision: str, shuffle_batches: bool) -> TrainingOptions:
    """The MLP grid's user settings, checked against the probe mode before any data is read."""
    from hear_runner.probes.mlp import PRECISIONS, TrainingOptions

    if precision not in PRECISIONS:
        raise HearError(f"--precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    options = TrainingOptions(precision=precision, shuffle_batches=shuffle_batches)  # type: ignore[arg-type]
    return options.check(mode)


def overwrite_policy(value: str) -> Overwrite:
    from hear_runner.embed.store import OVERWRITE_CHOICES

    if value not in OVERWRITE_CHOICES:
        raise HearError(f"--overwrite {value!r}: expected one of {', '.join(OVERWRITE_CHOICES)}")
    return value  # type: ignore[return-value]
