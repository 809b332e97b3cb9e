"""One reader of results: `hear leaderboard` and `hear report` read a folder the same way
and agree on every cell, on a folder with duplicate, nested and unreadable records."""

from __future__ import annotations

import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from test_stats import record_with_predictions, scene_fold

from hear_runner.errors import HearError
from hear_runner.results.reader import read_results
from hear_runner.results.records import RunRecord

OLD, NEW = "2000-01-01T00:00:00+00:00", "2100-01-01T00:00:00+00:00"
BEEHIVE = ("beehive_states_fold0-v2-full", "beehive_states_fold1-v2-full")


def hear(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hear_runner", *args], capture_output=True, text=True, timeout=600
    )


def record(
    model: str,
    task: str,
    score: float,
    metric: str = "top1_acc",
    created: str = "2026-01-01T00:00:00+00:00",
    ci: tuple[float, float] | None = None,
    fold_std: float | None = None,
) -> RunRecord:
    made = record_with_predictions(model, task, [], metric=metric, score=score, created=created)
    made.test_score_ci, made.test_score_std = ci, fold_std
    return made


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Three models, five task folders (Beehive's two make one column), one metric lower is
    better; a (model, task) twice (the newer one nested deeper), records only in subfolders,
    a missing cell, a file that is not JSON and a record that does not validate."""
    results = tmp_path / "results"
    record("a", "t1", 0.2, created=OLD, ci=(0.1, 0.3)).write(results)  # superseded
    record("a", "t1", 0.9, created=NEW, ci=(0.85, 0.95)).write(results / "rerun" / "deeper")
    record("b", "t1", 0.5, ci=(0.4, 0.6), fold_std=0.05).write(results / "archive")
    record("c", "t1", 0.6).write(results / "archive" / "c-run")
    record("a", "t2", 0.3, ci=(0.25, 0.35)).write(results)
    record("b", "t2", 0.7, ci=(0.6, 0.8)).write(results)
    record("a", "t3", 0.2, metric="segment_1s_er").write(results)  # lower is better
    record("b", "t3", 0.4, metric="segment_1s_er").write(results)
    record("c", "t3", 0.3, metric="segment_1s_er").write(results)
    for task, score in zip(BEEHIVE, (0.8, 0.6), strict=True):
        record("a", task, score, metric="aucroc").write(results)
    record("c", BEEHIVE[0], 0.5, metric="aucroc").write(results)
    (results / "a" / "broken.json").write_text("{not json")
    (results / "b" / "half.json").write_text(json.dumps({"model": {"name": "b"}, "test_score": 1}))
    return results


def test_leaderboard_and_report_agree_on_every_cell(folder: Path, tmp_path: Path) -> None:
    done = hear("leaderboard", "--results-dir", str(folder), "--format", "json")
    assert done.returncode == 0, done.stderr
    board = json.loads(done.stdout)
    out = tmp_path / "report.html"
    written = hear("report", "--results-dir", str(folder), "--output", str(out))
    assert written.returncode == 0, written.stderr
    page = LeaderboardTable.of(out.read_text())

    columns = [c["name"] for c in board["columns"]]
    assert columns == ["Beehive", "t1", "t2", "t3"]
    assert page.columns == columns
    assert page.models == [r["model"] for r in board["rows"]]  # the same order: by aggregate
    for row in board["rows"]:
        shown = page.rows[row["model"]]
        for column in columns:
            cell, td = row["scores"][column], shown["cells"].get(column)
            if cell is None:
                assert td is None, (row["model"], column)
                continue
            assert td is not None, (row["model"], column)
            where = (row["model"], column, td)
            assert float(td["data-score"]) == cell["score"], where
            assert td["text"].startswith(f"{cell['score']:.3f}"), where
            assert json.loads(td["data-records"]) == cell["records"], where
            assert td["data-metric"] == cell["metric"], where
            if cell["ci_low"] is None:
                assert "data-ci-low" not in td and "[" not in td["text"], where
            else:
                assert float(td["data-ci-low"]) == cell["ci_low"], where
                assert float(td["data-ci-high"]) == cell["ci_high"], where
                assert f"[{cell['ci_low']:.3f}, {cell['ci_high']:.3f}]" in td["text"], where
        aggregate = shown["aggregate"]
        assert float(aggregate["data-aggregate"]) == row["aggregate"]
        assert aggregate["text"].startswith(f"{row['aggregate']:+.3f}")
        assert int(aggregate["data-tasks"]) == row["tasks"]
    for note in board["notes"]:  # the report names what the leaderboard left out or passed over
        assert note in page.notes, note

    # And both are right: the newer, nested record; the old one and bad files named.
    rows = {r["model"]: r for r in board["rows"]}
    newer = folder / "rerun" / "deeper" / "a" / "t1.json"
    assert rows["a"]["scores"]["t1"]["score"] == 0.9
    assert rows["a"]["scores"]["t1"]["records"] == [str(newer)]
    assert rows["b"]["scores"]["t1"]["records"] == [str(folder / "archive" / "b" / "t1.json")]
    assert rows["a"]["scores"]["Beehive"]["score"] == pytest.approx(0.7)
    assert len(rows["a"]["scores"]["Beehive"]["records"]) == 2
    assert rows["b"]["scores"]["Beehive"] is None
    # t3 is an error rate: a (0.2) is best there, b (0.4) worst.
    assert rows["a"]["normalized"]["t3"] > 0 > rows["b"]["normalized"]["t3"]
    assert any(str(folder / "a" / "t1.json") in n and "passed over" in n for n in board["notes"])
    assert any(str(folder / "a" / "broken.json") in n and "not JSON" in n for n in board["notes"])
    assert any(str(folder / "b" / "half.json") in n and "field" in n for n in board["notes"])
    assert "a/broken.json" in " ".join(written.stderr.split())  # `hear report` says so too


def test_reader_keeps_the_newest_and_names_what_it_passed_over(folder: Path) -> None:
    results = read_results(folder)
    assert results.latest[("a", "t1")].path == folder / "rerun" / "deeper" / "a" / "t1.json"
    assert [f.path for f in results.superseded] == [folder / "a" / "t1.json"]
    assert results.models() == ["a", "b", "c"]
    assert results.tasks_of("b") == {"t1", "t2", "t3"}
    assert len(results.latest) == 11
    unreadable = [n for n in results.notes if "left out" in n]
    assert len(unreadable) == 2
    with pytest.raises(HearError, match="results folder does not exist"):
        read_results(folder / "absent")


def test_predictions_are_read_on_demand_and_a_missing_one_is_named(tmp_path: Path) -> None:
    with_predictions = record_with_predictions("m", "t", [scene_fold(0.75, 8)])
    with_predictions.write(tmp_path)
    record("n", "t", 0.5).write(tmp_path)
    results = read_results(tmp_path)
    labels, [fold] = results.latest[("m", "t")].predictions()
    assert labels == [str(i) for i in range(5)] and fold.files == [f"{i}.wav" for i in range(8)]
    without = results.latest[("n", "t")]
    with pytest.raises(HearError, match=f"{without.path}: the record keeps no test predictions"):
        without.predictions()
    assert with_predictions.predictions_file
    (tmp_path / "m" / with_predictions.predictions_file).write_bytes(b"broken")
    again = read_results(tmp_path).latest[("m", "t")]
    with pytest.raises(HearError, match="test predictions not readable"):
        again.predictions()


class LeaderboardTable(HTMLParser):
    """The report's #leaderboard table: its column headers, and per model each cell's
    attributes and text (the visible numbers), and the notes listed under it."""

    def __init__(self) -> None:
        super().__init__()
        self.columns: list[str] = []
        self.models: list[str] = []
        self.rows: dict[str, dict[str, Any]] = {}
        self.notes: list[str] = []
        self._in_table = self._in_notes = False
        self._cell: dict[str, str] | None = None
        self._model: str | None = None
        self._note: list[str] | None = None

    @classmethod
    def of(cls, html: str) -> LeaderboardTable:
        parser = cls()
        parser.feed(html)
        assert parser.models, "no leaderboard table in the report"
        return parser

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "table" and a.get("id") == "leaderboard":
            self._in_table = True
        elif tag == "ul" and a.get("id") == "leaderboard-notes":
            self._in_notes = True
        elif self._in_notes and tag == "li":
            self._note = []
        elif self._in_table and tag == "th" and "data-task" in a:
            self.columns.append(a["data-task"])
        elif self._in_table and tag == "th" and "data-model" in a:
            self._model = a["data-model"]
            self.models.append(self._model)
            self.rows[self._model] = {"cells": {}, "aggregate": None}
        elif self._in_table and tag == "td":
            self._cell = {**a, "text": ""}

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_table = False
        elif tag == "ul":
            self._in_notes = False
        elif tag == "li" and self._note is not None:
            self.notes.append("".join(self._note))
            self._note = None
        elif tag == "td" and self._cell is not None:
            assert self._model is not None
            row, cell = self.rows[self._model], self._cell
            if "aggregate" in cell.get("class", ""):
                row["aggregate"] = cell
            elif "data-task" in cell:
                assert cell["data-model"] == self._model
                row["cells"][cell["data-task"]] = cell
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell["text"] += data if self._cell["text"] else data.lstrip()
        if self._note is not None:
            self._note.append(data)


def test_the_table_parser_reads_cells_aggregates_and_notes() -> None:
    """The parser above reads what it is meant to (a table it cannot misread)."""
    html = (
        '<table id="leaderboard"><thead><tr><th>model</th><th data-task="x">x</th>'
        '<th>aggregate</th></tr></thead><tbody><tr><th data-model="m">m</th>'
        '<td class="num" data-model="m" data-task="x" data-score="0.5"><b>0.500</b>'
        '<span class="sub">[0.400, 0.600]</span></td><td class="num aggregate" '
        'data-aggregate="0.0" data-tasks="1"><b>+0.000</b></td></tr></tbody></table>'
        '<ul id="leaderboard-notes"><li>a &amp; b</li></ul>'
    )
    table = LeaderboardTable.of(html)
    assert table.columns == ["x"] and table.models == ["m"]
    cell = table.rows["m"]["cells"]["x"]
    assert cell["data-score"] == "0.5" and cell["text"] == "0.500[0.400, 0.600]"
    assert table.rows["m"]["aggregate"]["data-aggregate"] == "0.0"
    assert table.notes == ["a & b"]
