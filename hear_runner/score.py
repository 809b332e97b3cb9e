"""`hear score`: score predictions made elsewhere against a task's labels, with its metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hear_runner.errors import TaskError
from hear_runner.metrics import get_metric
from hear_runner.tasks.folder import Task


def score_predictions(task: Task, split: str, predictions_path: Path) -> dict[str, Any]:
    """``{metric: value}`` for scene tasks, ``{metric: {sub-score: value}}`` for event tasks.

    Scene predictions: ``{"<file>": {"<label>": score, ...}, ...}``; event predictions:
    ``{"<file>": [{"label", "start", "end"}, ...], ...}`` (milliseconds), as heareval writes them.
    """
    if split not in task.splits:
        raise TaskError(task.path, f"no split {split!r}; splits: {', '.join(task.splits)}")
    try:
        predictions = json.loads(predictions_path.read_text())
    except FileNotFoundError:
        raise TaskError(predictions_path, "file is missing") from None
    except json.JSONDecodeError as e:
        raise TaskError(predictions_path, f"not valid JSON (line {e.lineno}): {e.msg}") from None
    if not isinstance(predictions, dict):
        raise TaskError(predictions_path, "expected a JSON object keyed by file name")
    files = [clip.file for clip in task.clips(split)]
    missing = [f for f in files if f not in predictions]
    if missing:
        raise TaskError(
            predictions_path, f"no prediction for {len(missing)} file(s), first {missing[0]}"
        )
    labels = task.vocabulary
    metrics = [get_metric(name) for name in task.metadata.evaluation]
    if task.metadata.embedding_type == "event":
        from hear_runner.events import reference_events

        reference = reference_events(task, split)
        predicted = {f: _events(predictions_path, f, predictions[f], labels) for f in files}
        return {m.name: dict(m.score(reference, predicted, labels)) for m in metrics}
    scores = np.stack([_scene_row(predictions_path, f, predictions[f], labels) for f in files])
    targets = task.targets(split)
    return {m.name: float(m.score(targets, scores, labels)) for m in metrics}


def _scene_row(path: Path, file: str, value: Any, labels: list[str]) -> np.ndarray:
    if not isinstance(value, dict):
        raise TaskError(path, "expected an object of label scores", file)
    unknown = sorted(set(map(str, value)) - set(labels))
    if unknown:
        raise TaskError(path, f"label {unknown[0]!r} is not in the task's vocabulary", file)
    try:
        return np.array([float(value.get(label, 0.0)) for label in labels], dtype=np.float64)
    except (TypeError, ValueError):
        raise TaskError(path, "label scores must be numbers", file) from None


def _events(path: Path, file: str, value: Any, labels: list[str]) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise TaskError(path, "expected a list of events", file)
    events = []
    for i, event in enumerate(value):
        if not isinstance(event, dict) or not {"label", "start", "end"} <= set(event):
            raise TaskError(path, "an event needs 'label', 'start' and 'end'", f"{file}[{i}]")
        if str(event["label"]) not in labels:
            raise TaskError(
                path, f"label {event['label']!r} is not in the task's vocabulary", f"{file}[{i}]"
            )
        events.append(
            {
                "label": str(event["label"]),
                "start": float(event["start"]),
                "end": float(event["end"]),
            }
        )
    return events
