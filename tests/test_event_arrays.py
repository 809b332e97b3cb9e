"""The fast event path equals the reference: post-processing and scoring, on random cases.

The references are ``hear_runner.events.predict_events`` (per clip, per label) and
``hear_core.event_metrics`` (sed_eval's counts, proven equal to heareval in
test_metrics_reference.py). Equality is exact: the same floats, the same counts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hear_core import event_metrics, event_metrics_fast

from hear_runner.event_arrays import ClipFrames, EventArrays, long_enough
from hear_runner.events import EventScoring, predict_events
from hear_runner.metrics import get_metric
from hear_runner.tasks.metadata import TaskMetadata

CASES = 300
LABELS = ["a", "b", "c"]


@dataclass
class Frames:
    files: list[str]
    frame_clip: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    frame_ms: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))


def random_frames(rng: np.random.Generator) -> Frames:
    """Clips of varied lengths and hops, some without frames, rows of clips interleaved."""
    n_clips = int(rng.integers(1, 7))
    clips, times = [], []
    for clip in range(n_clips):
        n = int(rng.choice([0, 1, 2, 5, 20, 20, 40]))
        hop = float(rng.choice([10.0, 25.0, 50.0, 46.4399]))
        start = float(rng.choice([0.0, 12.5]))
        t = start + hop * np.arange(n)
        if rng.random() < 0.1:
            t = t + rng.normal(0, hop / 10, n)  # jittered timestamps: an uneven mean hop
        clips.append(np.full(n, clip))
        times.append(t)
    clip_of_row = np.concatenate(clips)
    ms = np.concatenate(times)
    if rng.random() < 0.3:  # clips' rows interleaved, each clip's in time order
        clip_of_row = rng.permutation(clip_of_row)
        ms = np.zeros(len(clip_of_row))
        for clip, t in enumerate(times):
            ms[clip_of_row == clip] = t
    return Frames([f"dir/{i}.wav" for i in range(n_clips)], clip_of_row, ms)


def random_scores(rng: np.random.Generator, n: int) -> np.ndarray:
    """Scores on either side of the threshold, some exactly on it."""
    scores = rng.choice([0.1, 0.4, 0.5, 0.6, 0.9], size=(n, len(LABELS)))
    if rng.random() < 0.5:
        scores = np.where(rng.random((n, len(LABELS))) < 0.3, scores, rng.random((n, 1)))
    return scores.astype(np.float32)


@pytest.mark.parametrize("case", range(CASES))
def test_post_processing_equals_the_reference(case: int) -> None:
    rng = np.random.default_rng(case)
    frames = random_frames(rng)
    scores = random_scores(rng, len(frames.frame_ms))
    clips = ClipFrames(frames.files, frames.frame_clip, frames.frame_ms)
    for median_filter_ms in (0, 50, 150, 250):
        if not defined(clips, median_filter_ms):
            continue
        runs = clips.runs(scores, LABELS, median_filter_ms)
        for min_duration in (0, 25, 60, 125, 250.0):
            fast = long_enough(runs, min_duration).to_events()
            reference = predict_events(scores, frames, LABELS, median_filter_ms, min_duration)
            assert fast == reference, (median_filter_ms, min_duration)


def defined(clips: ClipFrames, median_filter_ms: float) -> bool:
    """Whether scipy's filter (the reference's) is defined: no window longer than its clip."""
    widths = clips.widths(median_filter_ms)
    return all(w <= len(r) for w, r in zip(widths, clips.rows, strict=True))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("width", [2, 5, 16, 25, 32, 40])
def test_windows_longer_than_the_clip_reflect_the_edges(n: int, width: int) -> None:
    """Each frame's median over its window of the clip reflected (d c b a | a b c d | d c b a)."""
    rng = np.random.default_rng(n * 100 + width)
    frames = Frames(["x.wav"], np.zeros(n, np.int64), 10.0 * np.arange(n))
    scores = rng.choice([0.2, 0.5, 0.7], size=(n, len(LABELS))).astype(np.float32)
    clips = ClipFrames(frames.files, frames.frame_clip, frames.frame_ms)
    half = width // 2
    reflected = np.concatenate([scores, scores[::-1]] * (width // n + 2))  # period 2n
    expected = []
    for i in range(n):
        window = [reflected[(j % (2 * n))] for j in range(i - half, i - half + width)]
        expected.append(np.sort(np.stack(window), axis=0)[width // 2])
    active = np.stack(expected) > 0.5
    events = clips.runs(scores, LABELS, 10.0 * width).to_events()["x.wav"]
    got = np.zeros_like(active)
    for event in events:
        got[
            int(event["start"] // 10) : int(event["end"] // 10) + 1, LABELS.index(event["label"])
        ] = True
    assert np.array_equal(got, active)


def test_post_processing_of_a_split_without_frames() -> None:
    frames = Frames(["x.wav", "y.wav"])
    scores = np.zeros((0, len(LABELS)), np.float32)
    runs = ClipFrames(frames.files, frames.frame_clip, frames.frame_ms).runs(scores, LABELS, 250)
    assert runs.to_events() == {"x.wav": [], "y.wav": []}
    assert runs.to_events() == predict_events(scores, frames, LABELS, 250, 0)


def random_events(rng: random.Random, files: list[str], labels: list[str]) -> dict[str, Any]:
    """Events on a coarse grid (so that onsets often differ by exactly a collar) or anywhere."""
    events: dict[str, Any] = {}
    for name in files:
        listed = []
        for _ in range(rng.choice([0, 0, 1, 3, 8])):
            if rng.random() < 0.6:
                start = rng.choice([0, 50, 100, 150, 200, 250, 1000, 1050, 1200, 1250])
                start += rng.choice([0, 0, 0, 1e-9, -1e-9, 0.5])
            else:
                start = rng.uniform(0, 3000)
            length = rng.choice([0, 10, 50, 62.5, 250, 260, 1000, rng.uniform(0, 2000)])
            listed.append({"label": rng.choice(labels), "start": start, "end": start + length})
        events[name] = listed
    return events


def case_events(seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A reference and a prediction, with the reference's quirks exercised.

    Reference-only and predicted-only files, names dcase_util normalizes ('a/./x.wav'),
    labels outside the vocabulary or cleaned to the same label (' a', 'none', '').
    """
    rng = random.Random(seed)
    files = ["x.wav", "y.wav", "d/z.wav", "d/./z.wav", "w.wav"]
    odd = [*LABELS, " a", "none", "", "zz"]
    ref_labels = LABELS if rng.random() < 0.5 else odd
    est_labels = LABELS if rng.random() < 0.5 else odd
    reference = random_events(rng, rng.sample(files, rng.randint(0, len(files))), ref_labels)
    predicted = random_events(rng, rng.sample(files, rng.randint(0, len(files))), est_labels)
    return reference, predicted


@pytest.mark.parametrize("name", sorted(event_metrics_fast.EVENT_ARRAY_METRICS))
def test_event_scores_equal_the_reference(name: str) -> None:
    fast = event_metrics_fast.EVENT_ARRAY_METRICS[name]
    slow = event_metrics.EVENT_METRICS[name]
    for seed in range(1500):
        reference, predicted = case_events(seed)
        expected = slow(reference, predicted, LABELS)
        got = fast(
            EventArrays.from_events(reference, LABELS),
            EventArrays.from_events(predicted, LABELS),
            LABELS,
        )
        np.testing.assert_equal(got, expected, err_msg=f"seed {seed}")


def test_many_overlapping_candidates_still_match_optimally() -> None:
    """Greedy matching would find 1 here; the optimal one-to-one matching finds 2."""
    reference = {"x.wav": [
        {"label": "a", "start": 0.0, "end": 10.0}, {"label": "a", "start": 150.0, "end": 160.0},
    ]}  # fmt: skip
    predicted = {"x.wav": [
        {"label": "a", "start": 100.0, "end": 110.0}, {"label": "a", "start": -150.0, "end": 0.0},
    ]}  # fmt: skip
    expected = event_metrics.event_onset_200ms_fms(reference, predicted, LABELS)
    got = event_metrics_fast.EVENT_ARRAY_METRICS["event_onset_200ms_fms"](
        EventArrays.from_events(reference, LABELS),
        EventArrays.from_events(predicted, LABELS),
        LABELS,
    )
    assert got == expected == {"f_measure": 1.0, "precision": 1.0, "recall": 1.0}


def metadata(grid: dict[str, list[float]]) -> TaskMetadata:
    return TaskMetadata.model_validate(
        {
            "task_name": "t", "version": "1", "embedding_type": "event",
            "prediction_type": "multilabel", "split_mode": "trainvaltest",
            "sample_duration": 4.0, "evaluation": ["event_onset_200ms_fms", "segment_1s_er"],
            "evaluation_params": {"event_postprocessing_grid": grid},
        }
    )  # fmt: skip


@pytest.mark.parametrize("case", range(40))
def test_grid_selection_equals_the_reference(case: int) -> None:
    """best() and score() as predict_events and the dict metrics give them, metric by metric."""
    rng = np.random.default_rng(1000 + case)
    frames = random_frames(rng)
    scores = random_scores(rng, len(frames.frame_ms))
    reference = random_events(random.Random(case), frames.files, LABELS)
    clips = ClipFrames(frames.files, frames.frame_clip, frames.frame_ms)
    widths = [m for m in (0, 150, 250) if defined(clips, m)]
    grid = {"median_filter_ms": widths, "min_duration": [0, 60, 125]}
    scoring = EventScoring(reference, frames, LABELS, metadata(grid))
    for name in ("event_onset_200ms_fms", "event_onset_offset_50ms_20perc_fms", "segment_1s_er"):
        metric = get_metric(name)
        ranked = []
        for params in scoring.grid:
            events = predict_events(scores, frames, LABELS, **params)
            full = dict(metric.score(reference, events, LABELS))
            np.testing.assert_equal(scoring.score(metric, scores, params), full)
            assert scoring.events(scores, params) == events
            value = 0.0 if np.isnan(full_value := next(iter(full.values()))) else full_value
            ranked.append((value if metric.higher_is_better else -value, sorted(params.items())))
        signed, params = max(ranked)
        assert scoring.best(metric, scores) == (dict(params), signed)
