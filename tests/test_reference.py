"""Published reference scores: HEAR 2021's leaderboard as the ``hear2021`` plugin's data,
checked against the task catalogue, and shown beside a user's records by
``hear leaderboard --reference``."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest
from hear_2021 import reference
from hear_2021.catalogue import CATALOGUE
from test_leaderboard import hear
from test_stats import record_with_predictions

from hear_runner.errors import HearError
from hear_runner.plugins import collect
from hear_runner.results.leaderboard import build_leaderboard
from hear_runner.specs import ReferenceResults

RELEASED = {task.folder: task for task in CATALOGUE}
# Every primary metric of HEAR 2021 is a fraction: accuracy, mAP, AUC-ROC, onset F-measure.
FRACTIONS = {"top1_acc", "pitch_acc", "mAP", "aucroc", "event_onset_200ms_fms",
             "event_onset_50ms_fms"}  # fmt: skip


def test_the_data_file_matches_the_released_tasks() -> None:
    raw = json.loads(reference.FILE.read_text())
    assert (raw["schema"], raw["version"]) == ("hear-reference-results", 1)
    assert raw["source"]["commit"] == "9d9e55b26a8e4e708db840442e8b4e4e1acff168"
    assert raw["source"]["path"] == "docs/leaderboard.csv"
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
    assert len(published.rows) == 34  # 29 HEAR 2021 submissions and 5 of 2023
    assert sum(len(scores) for scores in published.rows.values()) == 616  # the non-blank cells
    for submission, scores in published.rows.items():
        for folder, score in scores.items():
            assert math.isfinite(score) and 0.0 <= score <= 1.0, (submission, folder, score)
    # Spot checks against the published file, digit for digit.
    assert published.rows["OpenL3"]["esc50-v2.0.0-full"] == 0.750500011
    assert published.rows["CREPE"]["nsynth_pitch-v2.2.3-50h"] == 0.899999976
    # FSD50K as corrected on 2022-07-12 (e8f997f), not the 0.1164 published before.
    assert published.rows["wav2vec2"]["fsd50k-v1.0-full"] == 0.341744781
    assert "Sony UDONS ViT" in published.rows and "Audioshake UDONS ViT" not in published.rows
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


# -- hear leaderboard --reference -------------------------------------------------------------

ESC50, GTZAN = "esc50-v2.0.0-full", "tfds_gtzan-1.0.0-full"
SPEECH = "speech_commands-v0.0.2-full"


def _record(results: Path, model: str, folder: str, score: float, version: str | None = None):
    """A record as `hear run` writes one, on a released folder name at ``version`` (the
    released one by default): synthetic scores, the real names."""
    metric = RELEASED[folder].evaluation[0] if folder in RELEASED else "top1_acc"
    record = record_with_predictions(model, folder, [], metric=metric, score=score)
    task = record.task.model_copy(update={"version": version or RELEASED[folder].version})
    record.task = task
    record.write(results)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    _record(folder, "mine", ESC50, 0.99)
    _record(folder, "mine", GTZAN, 0.10)
    _record(folder, "yours", ESC50, 0.50)
    _record(folder, "mine", SPEECH, 0.95, version="v0.0.1")  # released name, another version
    _record(folder, "yours", "esc50-v3.0.0-full", 0.7, version="v3.0.0")  # a later esc50
    return folder


def test_leaderboard_json_lists_the_published_rows_beside_yours(results: Path) -> None:
    done = hear("leaderboard", "--results-dir", str(results), "--reference", "hear2021",
                "--format", "json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    board = json.loads(done.stdout)
    published = reference.load()
    rows = board["rows"]
    assert len(rows) == 34 + 2
    later = "esc50-v3.0.0-full"
    mine = [r for r in rows if not r["published"]]
    assert {r["model"] for r in mine} == {"mine", "yours"}
    theirs = {r["model"]: r for r in rows if r["published"]}
    assert set(theirs) == set(published.rows)
    assert {r["reference"] for r in theirs.values()} == {"hear2021"}
    apart = f"{SPEECH} (version v0.0.1)"
    assert [c["name"] for c in board["columns"]] == ["ESC-50", "GTZAN Genre", later, apart]
    # Published cells only on the compared columns, as published; never on the apart one.
    openl3 = theirs["OpenL3"]
    assert openl3["scores"]["ESC-50"]["score"] == published.rows["OpenL3"][ESC50]
    assert openl3["scores"][apart] is None
    assert openl3["scores"]["GTZAN Genre"]["score"] == published.rows["OpenL3"][GTZAN]
    assert all(r["scores"][apart] is None and r["scores"][later] is None for r in theirs.values())
    # HEAR's normalization over the union: ESC-50 by hand over 34 published + 2 of yours.
    esc = [s[ESC50] for s in published.rows.values() if ESC50 in s] + [0.99, 0.50]
    assert len(esc) == 36  # 34 publish an ESC-50 score
    mean = sum(esc) / len(esc)
    std = math.sqrt(sum((v - mean) ** 2 for v in esc) / len(esc))
    z_yours = max(-1.0, min(1.0, (0.50 - mean) / std))
    [yours] = [r for r in mine if r["model"] == "yours"]
    assert -1 < z_yours < 0  # inside the clip: the union (not 2 rows' +-1) is what it is over
    # Alone on the later esc50 (z = 0): the aggregate is the mean of both.
    assert yours["normalized"] == {"ESC-50": pytest.approx(z_yours), later: 0.0}
    assert yours["aggregate"] == pytest.approx(z_yours / 2)
    # A model alone on the apart column: z = 0 there, in its aggregate over 3 tasks.
    [row] = [r for r in mine if r["model"] == "mine"]
    assert row["normalized"][apart] == 0.0 and row["tasks"] == 3
    assert any("version v0.0.1, not the released v0.0.2" in n for n in board["notes"])
    assert any(f"{later}: the records are of task version v3.0.0, not the released v2.0.0" in n
               for n in board["notes"])  # fmt: skip
    assert board["references"][0]["source"]["commit"] == published.source["commit"]


def test_without_reference_nothing_is_published(results: Path) -> None:
    board = build_leaderboard(results)
    assert {r.model for r in board.rows} == {"mine", "yours"}
    # Without a reference nothing is compared: a folder's column is as before.
    columns = ["ESC-50", "GTZAN Genre", "Speech commands full", "esc50-v3.0.0-full"]
    assert [c.name for c in board.columns] == columns
    assert not any(r.published for r in board.rows)
    # Both ESC-50 rows alone: +-1 (two rows), not the union's value.
    assert {r.model: r.normalized["ESC-50"] for r in board.rows} == {"mine": 1.0, "yours": -1.0}


@pytest.mark.parametrize("fmt", ["csv", "markdown", "table"])
def test_every_format_marks_the_published_rows(results: Path, fmt: str) -> None:
    done = hear("leaderboard", "--results-dir", str(results), "--reference", "hear2021",
                "--format", fmt)  # fmt: skip
    assert done.returncode == 0, done.stderr
    if fmt == "csv":
        table = list(csv.DictReader(io.StringIO(done.stdout)))
        assert len(table) == 36  # 34 published rows and 2 of yours
        assert {r["model"]: r["published"] for r in table}["OpenL3"] == "hear2021"
        assert {r["model"]: r["published"] for r in table}["mine"] == ""
    else:
        line = next(x for x in done.stdout.splitlines() if "OpenL3" in x)
        assert "hear2021" in line
        assert "0.751" in line  # OpenL3's published ESC-50 score, 0.7505...


def test_an_unknown_reference_is_one_line(results: Path) -> None:
    done = hear("leaderboard", "--results-dir", str(results), "--reference", "hear2099")
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert "--reference 'hear2099': no such reference results (known: hear2021" in line
