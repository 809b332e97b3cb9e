"""Published reference scores: HEAR 2021's leaderboard as the ``hear2021`` plugin's data,
checked against the task catalogue, and shown beside a user's records by
``hear leaderboard --reference``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hear_2021 import reference
from hear_2021.catalogue import CATALOGUE

from hear_runner.errors import HearError
from hear_runner.plugins import collect
from hear_runner.specs import ReferenceResults

RELEASED = {task.folder: task for task in CATALOGUE}
# Every primary metric of HEAR 2021 is a fraction: accuracy, mAP, AUC-ROC, onset F-measure.
FRACTIONS = {"top1_acc", "pitch_acc", "mAP", "aucroc", "event_onset_200ms_fms",
             "event_onset_50ms_fms"}  # fmt: skip


def test_the_data_file_matches_the_released_tasks() -> None:
    raw = json.loads(reference.FILE.read_text())
    assert (raw["schema"], raw["version"]) == ("hear-reference-results", 1)
    assert raw["source"]["commit"] == "fd18a123bbcbe1a2f7bb4b392482f7407523bce6"
    assert raw["source"]["path"] == "docs/assets/leaderboard.csv"
    assert raw["source"]["commit"] in raw["source"]["url"]
    published = reference.load()
    assert published.name == "hear2021"
    assert sorted(published.tasks) == sorted(RELEASED)  # all 19, each a released folder
    for folder, task in published.tasks.items():
        released = RELEASED[folder]
        assert (task.version, task.metric, task.mode) == (
            released.version, released.evaluation[0], released.mode,
        )  # fmt: skip
        assert task.metric in FRACTIONS
    assert len(published.rows) == 29
    assert sum(len(scores) for scores in published.rows.values()) == 521  # the non-blank cells
    for submission, scores in published.rows.items():
        for folder, score in scores.items():
            assert math.isfinite(score) and 0.0 <= score <= 1.0, (submission, folder, score)
    # Spot checks against the published file, digit for digit.
    assert published.rows["OpenL3"]["esc50-v2.0.0-full"] == 0.7505000114
    assert published.rows["CREPE"]["nsynth_pitch-v2.2.3-50h"] == 0.8999999762
    assert "beehive_states_fold0-v2-full" not in published.rows["wav2vec2"]  # a blank cell
    assert published.tasks["beehive_states_fold0-v2-full"].mean_of_folders == (
        "beehive_states_fold0-v2-full", "beehive_states_fold1-v2-full",
    )  # fmt: skip


def test_the_hear2021_plugin_registers_it() -> None:
    [found] = [r for r in collect(ReferenceResults) if r.name == "hear2021"]
    assert found.plugin == "hear2021"
    assert found.rows == reference.load().rows


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(version=2), "version: Input should be 1"),
        (lambda d: d["submissions"][0]["scores"].update({"nope-1-full": 0.5}),
         "is not one of its tasks"),
        (lambda d: d["submissions"].append(d["submissions"][0]), "listed twice"),
    ],
)  # fmt: skip
def test_a_bad_file_is_one_line_naming_it(tmp_path: Path, change, message: str) -> None:
    raw = json.loads(reference.FILE.read_text())
    change(raw)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(raw))
    with pytest.raises(HearError, match=message) as error:
        reference.load(bad)
    assert str(bad) in str(error.value) and "\n" not in str(error.value)
