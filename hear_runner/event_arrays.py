"""Event post-processing on arrays: what ``events.predict_events`` computes, without its loops.

The selection of an event probe scores every grid point's validation predictions at
every check, under every post-processing setting. ``predict_events`` (kept as the
reference) filters and thresholds clip by clip and label by label and builds a dict
per event; here clips of equal length and filter width are filtered as one stack, runs
are found for all clips and labels at once, each median filter width is applied once
for all minimum durations, and events stay parallel arrays until a dict is asked for.
tests/test_event_arrays.py draws random cases and asserts equality with the reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.ndimage import median_filter

Events = dict[str, list[dict[str, Any]]]

#: heareval's frame threshold (``events.THRESHOLD`` is the same value, for the reference).
THRESHOLD = 0.5


@dataclass(frozen=True)
class EventArrays:
    """Events as parallel arrays: file (index into ``files``), label (index into ``labels``),
    start and end (ms), in the order ``predict_events`` lists them file by file."""

    files: list[str]
    labels: list[str]
    file: np.ndarray
    label: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def __len__(self) -> int:
        return len(self.file)

    def where(self, keep: np.ndarray) -> EventArrays:
        """The events where ``keep`` is true, order kept."""
        return EventArrays(
            self.files, self.labels, self.file[keep], self.label[keep], self.start[keep],
            self.end[keep],
        )  # fmt: skip

    def to_events(self) -> Events:
        """heareval's shape: every file present, its events in order."""
        events: Events = {file: [] for file in self.files}
        for f, lab, start, end in zip(
            self.file.tolist(),
            self.label.tolist(),
            self.start.tolist(),
            self.end.tolist(),
            strict=True,
        ):
            events[self.files[f]].append({"label": self.labels[lab], "start": start, "end": end})
        return events

    @classmethod
    def from_events(cls, events: Events, labels: list[str]) -> EventArrays:
        """Arrays of labelled events; labels outside ``labels`` are appended to the list."""
        names = list(labels)
        index = {name: i for i, name in enumerate(names)}
        rows = [(f, e) for f, file_events in enumerate(events.values()) for e in file_events]
        for _, e in rows:
            if e["label"] not in index:
                index[e["label"]] = len(names)
                names.append(e["label"])
        return cls(
            list(events),
            names,
            np.array([f for f, _ in rows], dtype=np.int64),
            np.array([index[e["label"]] for _, e in rows], dtype=np.int64),
            np.array([e["start"] for _, e in rows], dtype=np.float64),
            np.array([e["end"] for _, e in rows], dtype=np.float64),
        )


class ClipFrames:
    """A split's frames grouped by clip once: each clip's rows (in row order) and times."""

    def __init__(self, files: list[str], frame_clip: np.ndarray, frame_ms: np.ndarray) -> None:
        self.files = files
        order = np.argsort(frame_clip, kind="stable")
        counts = np.bincount(np.asarray(frame_clip, np.int64), minlength=len(files))
        bounds = np.concatenate([[0], np.cumsum(counts)])
        self.rows = [order[bounds[c] : bounds[c + 1]] for c in range(len(files))]
        times = np.asarray(frame_ms)
        # heareval's hop: the mean difference of the clip's timestamps, as the reference takes it.
        self.hops = [float(np.mean(np.diff(times[r]))) if len(r) > 1 else 0.0 for r in self.rows]
        self.times = times
        self._widths: dict[float, list[int]] = {}

    def widths(self, median_filter_ms: float) -> list[int]:
        """Each clip's median filter width (0: none), rounded from its hop as heareval does."""
        if median_filter_ms not in self._widths:
            self._widths[median_filter_ms] = [
                round(median_filter_ms / hop) if median_filter_ms and hop else 0
                for hop in self.hops
            ]
        return self._widths[median_filter_ms]

    def runs(self, scores: np.ndarray, labels: list[str], median_filter_ms: float) -> EventArrays:
        """Every run of frames above the threshold after median filtering, of any duration."""
        groups: dict[tuple[int, int], list[int]] = {}
        for clip, (rows, width) in enumerate(
            zip(self.rows, self.widths(median_filter_ms), strict=True)
        ):
            if len(rows):
                groups.setdefault((len(rows), width), []).append(clip)
        parts = [self._group_runs(scores, clips, width) for (_, width), clips in groups.items()]
        if not parts:
            empty = np.zeros(0, np.int64)
            return EventArrays(self.files, labels, empty, empty, empty + 0.0, empty + 0.0)
        file, label, position, start, end = (np.concatenate(p) for p in zip(*parts, strict=True))
        # predict_events: label by label, run by run, then a stable sort on start, file by file.
        order = np.lexsort((position, label, start, file))
        return EventArrays(self.files, labels, file[order], label[order], start[order], end[order])

    def _group_runs(
        self, scores: np.ndarray, clips: list[int], width: int
    ) -> tuple[np.ndarray, ...]:
        """(file, label, first row, start ms, end ms) of the runs in clips of one length."""
        rows = np.stack([self.rows[c] for c in clips])  # (k, n)
        stack = scores[rows]  # (k, n, L)
        if width:
            stack = _median(stack, width)
        active = stack > THRESHOLD
        k, _, n_labels = active.shape
        pad = np.zeros((k, 1, n_labels), dtype=bool)
        edges = np.diff(np.concatenate([pad, active, pad], axis=1).astype(np.int8), axis=1)
        # Runs begin at +1 and end after -1; sorting both by (clip, label, row) pairs them.
        c0, p0, l0 = np.nonzero(edges == 1)
        c1, p1, l1 = np.nonzero(edges == -1)
        first = np.lexsort((p0, l0, c0))
        last = np.lexsort((p1, l1, c1))
        clip, label, begin = c0[first], l0[first], p0[first]
        stop = p1[last] - 1
        times = self.times[rows]  # (k, n)
        return (
            np.asarray(clips, np.int64)[clip],
            label.astype(np.int64),
            begin.astype(np.int64),
            times[clip, begin].astype(np.float64),
            times[clip, stop].astype(np.float64),
        )


def _median(stack: np.ndarray, width: int) -> np.ndarray:
    """scipy's median filter along axis 1 with its default ("reflect") edges, clip by clip.

    Where the window is longer than the clip, the reflected edges are padded explicitly:
    scipy's filter then reads past its buffer (seen for clips of 2 and 4 frames and windows
    of 8 times their length, with values that are in no input), so the reference is
    undefined there and this path gives the edges scipy documents.
    """
    n = stack.shape[1]
    if width <= n:
        return median_filter(stack, size=(1, width, 1))
    half = width // 2
    padded = np.pad(stack, ((0, 0), (half, width - 1 - half), (0, 0)), mode="symmetric")
    return median_filter(padded, size=(1, width, 1))[:, half : half + n]


def long_enough(events: EventArrays, min_duration: float) -> EventArrays:
    """The events lasting at least ``min_duration`` ms (end minus start, as the reference)."""
    return events.where(events.end - events.start >= min_duration)
