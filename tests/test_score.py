"""`hear score`: external predictions scored with the task's metrics; bad files named."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from taskfolders import write_task


def hear(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hear_runner", *args], capture_output=True, text=True)


def test_perfect_and_inverted_scene_predictions(tmp_path: Path) -> None:
    task = write_task(tmp_path)
    truth = json.loads((task / "test.json").read_text())
    perfect = {
        f: {lab: float(lab == labels[0]) for lab in ("low", "high")} for f, labels in truth.items()
    }
    inverted = {
        f: {lab: float(lab != labels[0]) for lab in ("low", "high")} for f, labels in truth.items()
    }
    (tmp_path / "perfect.json").write_text(json.dumps(perfect))
    (tmp_path / "inverted.json").write_text(json.dumps(inverted))
    good = json.loads(
        hear("score", str(task), "test", str(tmp_path / "perfect.json"), "--json").stdout
    )
    bad = json.loads(
        hear("score", str(task), "test", str(tmp_path / "inverted.json"), "--json").stdout
    )
    assert good == {"top1_acc": 1.0, "mAP": 1.0}
    assert bad["top1_acc"] == 0.0 and bad["mAP"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("predictions", "message"),
    [
        ({"0.wav": {"low": 1}}, r"no prediction for 3 file\(s\), first 1.wav"),
        (
            {f"{i}.wav": {"mid": 1} for i in range(4)},
            r"field '0.wav': label 'mid' is not in the task's vocabulary",
        ),
        ({f"{i}.wav": [1] for i in range(4)}, r"field '0.wav': expected an object of label scores"),
    ],
)
def test_bad_predictions_are_one_line(tmp_path: Path, predictions: dict, message: str) -> None:
    task = write_task(tmp_path)
    (tmp_path / "p.json").write_text(json.dumps(predictions))
    result = hear("score", str(task), "test", str(tmp_path / "p.json"))
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "p.json" in line
    assert re.search(message, line), line
