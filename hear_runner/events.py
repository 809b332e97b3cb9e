"""Event tasks: frame targets from labelled intervals, and events back from frame scores.

As heareval: a label is active at frame time t when start <= t <= end; frame
scores are median-filtered over time and thresholded at 0.5; an event runs
from the first to the last active frame's timestamp; events shorter than a
minimum duration are dropped. The filter and minimum duration are chosen on
the validation split from the task's post-processing grid and reused on test.
"""

from __future__ import annotations

import itertools
from typing import Any, Protocol

import numpy as np
from scipy.ndimage import median_filter

from hear_runner.event_arrays import THRESHOLD, ClipFrames, EventArrays, long_enough
from hear_runner.metrics import Metric
from hear_runner.tasks.folder import Task
from hear_runner.tasks.metadata import TaskMetadata

DEFAULT_GRID: dict[str, list[float]] = {"median_filter_ms": [250], "min_duration": [125, 250]}

Events = dict[str, list[dict[str, Any]]]


class Frames(Protocol):
    """Rows of frame embeddings: each row's clip (an index into ``files``) and time in ms."""

    files: list[str]
    frame_clip: np.ndarray
    frame_ms: np.ndarray


def frame_targets(task: Task, split: str, embedded: Frames) -> np.ndarray:
    """Multi-hot targets (n_frames, n_labels) for the frames of an embedded event split."""
    index = {label: i for i, label in enumerate(task.vocabulary)}
    clips = task.clips(split)
    targets = np.zeros((len(embedded.frame_ms), len(task.vocabulary)), dtype=np.float32)
    frames = ClipFrames(embedded.files, embedded.frame_clip, embedded.frame_ms)
    for clip_index, rows in enumerate(frames.rows):
        times = frames.times[rows]
        for event in clips[clip_index].events if len(rows) else []:
            inside = rows[(event.start <= times) & (times <= event.end)]
            targets[inside, index[event.label]] = 1.0
    return targets


def reference_events(task: Task, split: str) -> Events:
    """The split's labels in heareval's event shape, every file present."""
    return {
        clip.file: [{"label": e.label, "start": e.start, "end": e.end} for e in clip.events]
        for clip in task.clips(split)
    }


def postprocessing_grid(metadata: TaskMetadata) -> list[dict[str, float]]:
    """Every combination of the task's ``event_postprocessing_grid`` (heareval's default else)."""
    grid = metadata.evaluation_params.get("event_postprocessing_grid") or DEFAULT_GRID
    keys = sorted(grid)
    return [
        dict(zip(keys, values, strict=True))
        for values in itertools.product(*(grid[k] for k in keys))
    ]


def predict_events(
    scores: np.ndarray,
    embedded: Frames,
    labels: list[str],
    median_filter_ms: float,
    min_duration: float,
) -> Events:
    """Events per file from frame scores (n_frames, n_labels), clip by clip and label by label.

    The reference that ``event_arrays`` (what the probe runs) is tested equal to.
    """
    events: Events = {file: [] for file in embedded.files}
    for clip_index, file in enumerate(embedded.files):
        rows = np.flatnonzero(embedded.frame_clip == clip_index)
        if not len(rows):
            continue
        times = embedded.frame_ms[rows]
        clip_scores = scores[rows]
        # heareval: the mean hop, a filter width rounded from it, scipy's default (reflect) edges.
        hop = float(np.mean(np.diff(times))) if len(times) > 1 else 0.0
        width = round(median_filter_ms / hop) if median_filter_ms and hop else 0
        if width:
            clip_scores = median_filter(clip_scores, size=(width, 1))
        active = clip_scores > THRESHOLD
        for label_index, label in enumerate(labels):
            for start, end in _runs(active[:, label_index]):
                onset, offset = float(times[start]), float(times[end])
                if offset - onset >= min_duration:
                    events[file].append({"label": label, "start": onset, "end": offset})
        events[file].sort(key=lambda event: event["start"])  # stable: label order within a start
    return events


def _runs(active: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) indices of each run of True."""
    padded = np.concatenate([[False], active, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


class EventScoring:
    """Frame predictions of one split scored as events, over a post-processing grid.

    The fast path (``event_arrays``): each median filter width is applied once for all
    minimum durations, and metrics with ``score_arrays`` score the arrays directly; the
    others get the events as dicts, as ``predict_events`` makes them.
    """

    def __init__(
        self, reference: Events, frames: Frames, labels: list[str], metadata: TaskMetadata
    ) -> None:
        self.labels = labels
        self.frames = frames
        self.reference = reference
        self.grid = postprocessing_grid(metadata)
        self.clips = ClipFrames(frames.files, frames.frame_clip, frames.frame_ms)
        self.reference_arrays = EventArrays.from_events(reference, labels)

    def event_arrays(self, scores: np.ndarray, params: dict[str, float]) -> EventArrays:
        runs = self.clips.runs(scores, self.labels, params["median_filter_ms"])
        return long_enough(runs, params["min_duration"])

    def events(self, scores: np.ndarray, params: dict[str, float]) -> Events:
        return self.event_arrays(scores, params).to_events()

    def score(
        self, metric: Metric, scores: np.ndarray, params: dict[str, float]
    ) -> dict[str, float]:
        return self._score(metric, self.event_arrays(scores, params))

    def _score(self, metric: Metric, predicted: EventArrays) -> dict[str, float]:
        if metric.score_arrays is not None:
            return dict(metric.score_arrays(self.reference_arrays, predicted, self.labels))
        return dict(metric.score(self.reference, predicted.to_events(), self.labels))

    def best(self, metric: Metric, scores: np.ndarray) -> tuple[dict[str, float], float]:
        """The grid point with the best ``metric`` and its signed value.

        As heareval: a NaN score counts as 0, and among equal scores the greatest
        grid point (compared as its sorted (name, value) pairs) wins.
        """
        runs: dict[float, EventArrays] = {}
        ranked = []
        for params in self.grid:
            width = params["median_filter_ms"]
            if width not in runs:
                runs[width] = self.clips.runs(scores, self.labels, width)
            predicted = long_enough(runs[width], params["min_duration"])
            value = next(iter(self._score(metric, predicted).values()))
            value = 0.0 if np.isnan(value) else value
            signed = value if metric.higher_is_better else -value
            ranked.append((signed, tuple(sorted(params.items())), params))
        signed, _, params = max(ranked, key=lambda r: r[:2])
        return params, float(signed)
