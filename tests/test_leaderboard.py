"""`hear leaderboard`: real runs of two models, every format; the aggregate by hand."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from taskfolders import write_task
from test_stats import record_with_predictions, scene_fold

from hear_runner.errors import HearError
from hear_runner.results.leaderboard import build_leaderboard, column_name, normalized_scores
from hear_runner.results.records import HEAREVAL_SCORES

TOY = "toy-1.0.0-full"
INTERVAL = re.compile(r"\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]")


def hear(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hear_runner", *args], capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def results(tasks_dir: Path, digits_task: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """numpy_logmel on the spoken digits and a 3-fold toy task; torch_mean on the digits only."""
    root = tmp_path_factory.mktemp("leaderboard")
    write_task(root / "tasks", nfolds=3)
    runs = [
        ("numpy_logmel", tasks_dir, digits_task.name),
        ("numpy_logmel", root / "tasks", TOY),
        ("torch_mean", tasks_dir, digits_task.name),
    ]
    for module, folder, task in runs:
        done = hear(
            "run", "--model-module", module, "--tasks-dir", str(folder), "--task", task,
            "--results-dir", str(root / "results"), "--probe", "linear",
            "--cache-dir", str(root / "cache"),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    return root / "results"


def records(results: Path) -> dict[tuple[str, str], dict]:
    found = {}
    for path in results.glob("*/*.json"):
        raw = json.loads(path.read_text())
        if "test_score" in raw:  # not a run manifest
            found[(raw["model"]["name"], raw["task"]["name"])] = raw
    return found


def test_table_shows_both_models_with_intervals_and_the_missing_cell(
    results: Path, digits_task: Path
) -> None:
    done = hear("leaderboard", "--results-dir", str(results))
    assert done.returncode == 0, done.stderr
    rows = {line.split("│")[1].strip(): line for line in done.stdout.splitlines() if "│" in line}
    assert set(rows) == {"numpy_logmel", "torch_mean"}
    assert len(INTERVAL.findall(rows["numpy_logmel"])) == 2
    assert len(INTERVAL.findall(rows["torch_mean"])) == 1 and "—" in rows["torch_mean"]
    assert "0.000" not in rows["torch_mean"]  # missing is not zero
    assert digits_task.name in done.stdout and TOY in done.stdout


def test_every_format_agrees_with_the_records(results: Path, digits_task: Path) -> None:
    kept = records(results)
    digits = digits_task.name
    # JSON: scores and intervals as recorded, the missing cell null.
    done = hear("leaderboard", "--results-dir", str(results), "--format", "json")
    assert done.returncode == 0, done.stderr
    board = json.loads(done.stdout)
    assert [c["name"] for c in board["columns"]] == sorted([digits, TOY])
    rows = {r["model"]: r for r in board["rows"]}
    assert rows["torch_mean"]["scores"][TOY] is None
    for (model, task), raw in kept.items():
        cell = rows[model]["scores"][task]
        assert cell["score"] == raw["test_score"]
        assert [cell["ci_low"], cell["ci_high"]] == raw["test_score_ci"]
        assert cell["ci_low"] <= cell["score"] <= cell["ci_high"]
    # Two models on the digits: z = +-1 exactly; the toy task has one model: z = 0.
    a, b = kept[("numpy_logmel", digits)]["test_score"], kept[("torch_mean", digits)]["test_score"]
    assert a != b
    first = "numpy_logmel" if a > b else "torch_mean"
    assert board["rows"][0]["model"] == first  # sorted by the aggregate
    sign = 1 if a > b else -1
    assert rows["numpy_logmel"]["aggregate"] == pytest.approx((sign + 0) / 2)
    assert rows["numpy_logmel"]["tasks"] == 2
    assert rows["torch_mean"]["aggregate"] == pytest.approx(-sign)
    assert rows["torch_mean"]["tasks"] == 1
    # CSV: the missing cell empty, never 0.
    done = hear("leaderboard", "--results-dir", str(results), "--format", "csv")
    assert done.returncode == 0, done.stderr
    table = {row["model"]: row for row in csv.DictReader(io.StringIO(done.stdout))}
    assert table["torch_mean"][TOY] == "" and table["torch_mean"][f"{TOY} ci_low"] == ""
    assert float(table["numpy_logmel"][TOY]) == kept[("numpy_logmel", TOY)]["test_score"]
    assert table["numpy_logmel"][f"{digits} metric"] == "top1_acc"
    low, high = kept[("torch_mean", digits)]["test_score_ci"]
    assert float(table["torch_mean"][f"{digits} ci_low"]) == low
    assert float(table["torch_mean"][f"{digits} ci_high"]) == high
    # Markdown: a pipe table, the missing cell a dash.
    done = hear("leaderboard", "--results-dir", str(results), "--format", "markdown")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("|")]
    assert lines[0].split("|")[1:4] == [" model ", " aggregate ", " tasks "]
    assert lines[1].startswith("|---|")
    torch_row = next(line for line in lines if line.startswith("| torch_mean "))
    assert torch_row.count("—") == 1 and len(INTERVAL.findall(torch_row)) == 1


def test_sidecars_manifests_and_older_duplicates_are_handled(
    results: Path, tmp_path: Path, digits_task: Path
) -> None:
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    assert (copy / "numpy_logmel" / digits_task.name / HEAREVAL_SCORES).is_file()
    (copy / "manifests").mkdir(exist_ok=True)
    (copy / "manifests" / "run.json").write_text(json.dumps({"manifest_version": 1}))
    # An older run of torch_mean on the toy task, in a folder of its own: the newest is used.
    older = record_with_predictions(
        "torch_mean", TOY, [scene_fold(0.5, 4)], created="2000-01-01T00:00:00+00:00"
    )
    newer = record_with_predictions(
        "torch_mean", TOY, [scene_fold(1.0, 4)], created="2100-01-01T00:00:00+00:00"
    )
    older.write(copy / "old")
    newer.write(copy / "new")
    board = build_leaderboard(copy)
    torch_row = next(r for r in board.rows if r.model == "torch_mean")
    assert torch_row.cells[TOY].score == 1.0
    assert torch_row.cells[TOY].records == [copy / "new" / "torch_mean" / f"{TOY}.json"]
    assert any("torch_mean · toy-1.0.0-full: 2 records, the newest" in n for n in board.notes)
    assert {c.name for c in board.columns} == {digits_task.name, TOY}


def test_aggregate_is_hears_normalization_by_hand(tmp_path: Path) -> None:
    """Three models, four tasks, one cell missing, one lower-is-better metric."""
    scores = {
        ("a", "t1"): 0.9, ("b", "t1"): 0.5, ("c", "t1"): 0.1,
        ("a", "t2"): 0.2, ("b", "t2"): 0.4,
        ("a", "t3"): 0.3, ("b", "t3"): 0.3, ("c", "t3"): 0.6,
        ("a", "t4"): 0.2, ("b", "t4"): 0.6,  # segment error rate: lower is better
    }  # fmt: skip
    for (model, task), score in scores.items():
        metric = "segment_1s_er" if task == "t4" else "top1_acc"
        record_with_predictions(model, task, [], metric=metric, score=score).write(tmp_path)
    board = build_leaderboard(tmp_path)
    # t1: mean 0.5, population std sqrt(0.32/3) = 0.3266: z = 1.2247, 0, -1.2247 -> 1, 0, -1
    # t2: z = -1, +1.  t3: mean 0.4, std sqrt(0.06/3) = 0.1414: z = -0.7071, -0.7071, 1.414 -> 1
    # t4: z = -1, +1, negated (lower is better): +1, -1.
    expected = {
        "a": (1 - 1 - 0.70711 + 1) / 4,
        "b": (0 + 1 - 0.70711 - 1) / 4,
        "c": (-1 + 1) / 2,
    }
    got = {r.model: r.aggregate for r in board.rows}
    assert got == pytest.approx(expected, abs=1e-5)
    assert [r.model for r in board.rows] == ["a", "c", "b"]
    assert {r.model: len(r.normalized) for r in board.rows} == {"a": 4, "b": 4, "c": 2}
    assert "t2" not in next(r for r in board.rows if r.model == "c").cells
    assert normalized_scores({"x": 0.5, "y": 0.5}) == {"x": 0.0, "y": 0.0}  # no spread: 0


def test_hear_2021_tasks_get_their_published_names(tmp_path: Path) -> None:
    assert column_name("esc50-v2.0.0-full") == "ESC-50"
    assert column_name("nsynth_pitch-v2.2.3-5h") == "NSynth Pitch 5h"
    assert column_name("mini_pitch-1.0.0-smoke") == "mini_pitch-1.0.0-smoke"
    for folder, score in (
        ("beehive_states_fold0-v2-full", 0.8),
        ("beehive_states_fold1-v2-full", 0.6),
    ):
        record_with_predictions("m", folder, [], metric="aucroc", score=score).write(tmp_path)
    record_with_predictions("m", "esc50-v2.0.0-full", [], score=0.7).write(tmp_path)
    board = build_leaderboard(tmp_path)
    assert [c.name for c in board.columns] == ["Beehive", "ESC-50"]  # published order
    [row] = board.rows
    assert row.cells["Beehive"].score == pytest.approx(0.7)  # the mean of both folds' folders
    assert row.cells["Beehive"].ci is None


def test_no_records_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(HearError, match="no result records"):
        build_leaderboard(tmp_path)
    done = hear("leaderboard", "--results-dir", str(tmp_path / "absent"))
    assert done.returncode != 0 and "does not exist" in done.stderr
    done = hear("leaderboard", "--results-dir", str(tmp_path), "--format", "xml")
    assert done.returncode != 0 and "--format 'xml'" in done.stderr


def test_compare_on_real_runs(results: Path, digits_task: Path) -> None:
    kept = records(results)
    done = hear("compare", "numpy_logmel", "torch_mean", "--results-dir", str(results), "--json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    [row] = answer["tasks"]  # the toy task is numpy_logmel's only
    assert row["task"] == digits_task.name
    assert row["score_a"] == pytest.approx(kept[("numpy_logmel", digits_task.name)]["test_score"])
    assert row["score_b"] == pytest.approx(kept[("torch_mean", digits_task.name)]["test_score"])
    assert any("only numpy_logmel has toy-1.0.0-full" in n for n in answer["notes"])
    same = hear("compare", "numpy_logmel", "numpy_logmel", "--results-dir", str(results), "--json")
    assert same.returncode == 0, same.stderr
    for row in json.loads(same.stdout)["tasks"]:
        assert row["difference"] == 0 and row["p_value"] == 1 and row["verdict"].startswith("tie")
