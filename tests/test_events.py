"""Event post-processing: frame targets from intervals, events from frame scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from taskfolders import write_task

from hear_runner.embed.split import SplitEmbeddings
from hear_runner.events import frame_targets, postprocessing_grid, predict_events, reference_events
from hear_runner.tasks.folder import Task


def embedded_frames(files: list[str], n_frames: int, hop_ms: float = 50.0) -> SplitEmbeddings:
    return SplitEmbeddings(
        split="test",
        files=files,
        embeddings=np.zeros((n_frames * len(files), 1), np.float32),
        audio_seconds=0.0,
        seconds=0.0,
        frame_clip=np.repeat(np.arange(len(files)), n_frames),
        frame_ms=np.tile(np.arange(n_frames) * hop_ms, len(files)),
    )


def event_task(tmp_path: Path) -> Task:
    path = write_task(tmp_path)
    metadata = json.loads((path / "task_metadata.json").read_text())
    metadata.update(embedding_type="event", prediction_type="multilabel",
                    evaluation_params={"event_postprocessing_grid": {"median_filter_ms": [0, 150], "min_duration": [0, 100]}})  # fmt: skip
    (path / "task_metadata.json").write_text(json.dumps(metadata))
    for split in ("train", "valid", "test"):
        labels = {f"{i}.wav": [] for i in range(4)}
        labels["0.wav"] = [
            {"label": "high", "start": 100, "end": 200},
            {"label": "low", "start": 150, "end": 150},
        ]
        (path / f"{split}.json").write_text(json.dumps(labels))
    return Task(path)


def test_a_label_is_active_when_start_le_t_le_end(tmp_path: Path) -> None:
    task = event_task(tmp_path)
    frames = embedded_frames([c.file for c in task.clips("test")], 6)
    targets = frame_targets(task, "test", frames)
    high, low = task.vocabulary.index("high"), task.vocabulary.index("low")
    assert targets[:6, high].tolist() == [0, 0, 1, 1, 1, 0]  # 100, 150, 200 ms inclusive
    assert targets[:6, low].tolist() == [0, 0, 0, 1, 0, 0]
    assert targets[6:].sum() == 0


def test_reference_events_list_every_file(tmp_path: Path) -> None:
    events = reference_events(event_task(tmp_path), "test")
    assert sorted(events) == ["0.wav", "1.wav", "2.wav", "3.wav"] and events["1.wav"] == []
    assert events["0.wav"][0] == {"label": "high", "start": 100.0, "end": 200.0}


def test_grid_is_every_combination(tmp_path: Path) -> None:
    grid = postprocessing_grid(event_task(tmp_path).metadata)
    assert len(grid) == 4 and {"median_filter_ms": 150, "min_duration": 100} in grid


def test_events_span_first_to_last_active_frame() -> None:
    frames = embedded_frames(["a.wav", "b.wav"], 10)
    scores = np.zeros((20, 2), np.float32)
    scores[2:6, 0] = 0.9  # a.wav: 100..250 ms
    scores[8, 1] = 0.9  # a.wav: a single frame at 400 ms
    events = predict_events(scores, frames, ["x", "y"], median_filter_ms=0, min_duration=0)
    assert events["a.wav"] == [
        {"label": "x", "start": 100.0, "end": 250.0},
        {"label": "y", "start": 400.0, "end": 400.0},
    ]
    assert events["b.wav"] == []


def test_min_duration_and_median_filter() -> None:
    frames = embedded_frames(["a.wav"], 12)
    scores = np.zeros((12, 1), np.float32)
    scores[[2, 3, 4, 6, 7, 8, 9], 0] = 0.9  # a one-frame gap at 250 ms
    split = predict_events(scores, frames, ["x"], median_filter_ms=0, min_duration=0)["a.wav"]
    assert [(e["start"], e["end"]) for e in split] == [(100.0, 200.0), (300.0, 450.0)]
    long_only = predict_events(scores, frames, ["x"], median_filter_ms=0, min_duration=150)["a.wav"]
    assert [(e["start"], e["end"]) for e in long_only] == [(300.0, 450.0)]
    filled = predict_events(scores, frames, ["x"], median_filter_ms=150, min_duration=0)["a.wav"]
    assert [(e["start"], e["end"]) for e in filled] == [(100.0, 450.0)]  # the gap is filtered away


def test_frame_targets_equal_the_per_frame_rule(tmp_path: Path) -> None:
    """Rows in any order, frames on and around the event edges: start <= t <= end, frame by frame."""
    task = event_task(tmp_path)
    files = [c.file for c in task.clips("test")]
    rng = np.random.default_rng(0)
    times = np.array([0, 99.999, 100, 125, 150, 150.001, 199.999, 200, 200.001, 300])
    clip_of_row = rng.permutation(np.repeat(np.arange(len(files)), len(times)))
    ms = np.tile(times, len(files))[rng.permutation(len(files) * len(times))]
    frames = embedded_frames(files, 1)
    frames.frame_clip, frames.frame_ms = clip_of_row, ms
    targets = frame_targets(task, "test", frames)
    expected = np.zeros_like(targets)
    clips = task.clips("test")
    for row, (clip, t) in enumerate(zip(clip_of_row, ms, strict=True)):
        for event in clips[clip].events:
            if event.start <= t <= event.end:
                expected[row, task.vocabulary.index(event.label)] = 1.0
    assert np.array_equal(targets, expected) and expected.sum() > 0
