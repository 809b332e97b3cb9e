"""Each fold's test predictions are kept beside the record, and agree with its scores."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hear_runner.results.predictions import load_predictions


def run(tasks_dir: Path, task: str, results: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "hear_runner", "run", "--model-module", "numpy_logmel",
         "--tasks-dir", str(tasks_dir), "--task", task, "--results-dir", str(results),
         "--probe", "linear"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [path] = (results / "numpy_logmel").glob("*.json")
    return {"path": path, **json.loads(path.read_text())}


def test_scene_predictions_reproduce_the_recorded_accuracy(
    digits_task: Path, tmp_path: Path
) -> None:
    record = run(digits_task.parent, digits_task.name, tmp_path)
    labels, [fold] = load_predictions(record["path"].parent / record["predictions_file"])
    assert labels and fold.files == sorted(json.loads((digits_task / "test.json").read_text()))
    assert fold.scores.shape == fold.targets.shape == (len(fold.files), len(labels))
    accuracy = np.mean(fold.scores.argmax(1) == fold.targets.argmax(1))
    assert accuracy == pytest.approx(record["scores"]["test"]["top1_acc"])


def test_event_predictions_keep_predicted_and_true_events(tmp_path: Path) -> None:
    from hear_mini import sound_events as se
    from hear_mini import sound_themes as st

    if st.missing_packages(se.CLASSES):
        pytest.skip("sound themes not installed")
    task = se.prepare(tmp_path / "tasks", "smoke", progress=False)
    record = run(task.parent, task.name, tmp_path / "results")
    _, [fold] = load_predictions(record["path"].parent / record["predictions_file"])
    truth = json.loads((task / "test.json").read_text())
    assert set(fold.reference) == set(fold.events) == set(truth)
    assert fold.reference == {f: truth[f] for f in fold.reference}
    predicted = [e for events in fold.events.values() for e in events]
    assert predicted and all(e["end"] >= e["start"] for e in predicted)
