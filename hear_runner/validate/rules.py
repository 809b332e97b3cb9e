"""The numeric rules the checks apply to what a model returned (hear-validator's, where it
has one)."""

from __future__ import annotations

import numpy as np

from hear_runner.embed.pipeline import HOP_TOLERANCE_MS


def hop_problem(times: np.ndarray) -> tuple[str, float | None]:
    """hear-validator's rule: every hop within 1 ms of the mean hop; and increasing."""
    if times.shape[1] < 2:
        return "", None
    hops = np.diff(times, axis=1)
    mean = float(np.mean(hops))
    if not (hops > 0).all():
        row, col = np.argwhere(~(hops > 0))[0]
        return (
            f"timestamps do not increase: {times[row, col]:.3f} ms then "
            f"{times[row, col + 1]:.3f} ms (frames {col + 1} and {col + 2})",
            mean,
        )
    deviation = float(np.max(np.abs(hops - mean)))
    if deviation > HOP_TOLERANCE_MS:
        return (
            f"irregular hop: from {hops.min():.3f} to {hops.max():.3f} ms around a mean of "
            f"{mean:.3f} ms (must stay within {HOP_TOLERANCE_MS:g} ms of it)",
            mean,
        )
    return "", mean


def range_problem(times: np.ndarray, clip_ms: float) -> tuple[str, str]:
    """hear-validator's rules on where timestamps lie; returns (problem, note)."""
    first, last = float(np.min(times)), float(np.max(times))
    if first < 0:
        return f"a negative timestamp ({first:.3f} ms)", ""
    if last > clip_ms + HOP_TOLERANCE_MS:
        return (
            f"last timestamp {last:.3f} ms is past the end of the {clip_ms:.3f} ms clip "
            f"(tolerance {HOP_TOLERANCE_MS:g} ms)",
            "",
        )
    if times.shape[1] < 2:
        return "", ""
    hop = float(np.mean(np.diff(times, axis=1)))
    if last < clip_ms - 2 * hop:
        return (
            f"timestamps end at {last:.3f} ms, more than two hops ({hop:.3f} ms) before the "
            f"end of the {clip_ms:.3f} ms clip: no embeddings for its end",
            "",
        )
    notes = []
    if first > hop:
        notes.append(f"first timestamp {first:.1f} ms is later than one hop")
    if last < clip_ms - hop or last < clip_ms - 50:
        notes.append(f"ends at {last:.1f} ms of {clip_ms:.1f} ms")
    return "", ", ".join(notes)


def compare(what: str, a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> tuple[bool, str]:
    """Close when max |a - b| <= atol + rtol * max |a| (NaN and Inf must be in the same places)."""
    if a.shape != b.shape:
        return False, f"{what}: shapes {list(a.shape)} and {list(b.shape)}"
    finite_a, finite_b = np.isfinite(a), np.isfinite(b)
    if not np.array_equal(finite_a, finite_b):
        return False, f"{what}: NaN or Inf in different places"
    both = finite_a & finite_b
    if not both.any():
        return True, f"{what}: nothing finite to compare"
    diff = float(np.max(np.abs(a[both].astype(np.float64) - b[both])))
    scale = float(np.max(np.abs(a[both])))
    limit = atol + rtol * scale
    text = (
        f"{what}: max |diff| {diff:.3g} (limit {limit:.3g} = {atol:g} + {rtol:g} x max |x| "
        f"{scale:.3g})"
    )
    return diff <= limit, text
