"""Issue 16's acceptance for ``--reference`` (and the report's published rows): real runs of two shipped model images (the naive
baseline and CREPE tiny) on synthetic task folders that carry released HEAR 2021 names and
versions, listed by ``hear leaderboard --reference hear2021 --format json`` beside every
published submission, with HEAR's normalized aggregate recomputed over all of them."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from hear_2021 import reference
from test_leaderboard import hear

# Released folder -> (the sized plugin's name for it, the published column).
RELEASED = {
    "gunshot_triangulation-v1.0-full": ("gunshot_triangulation", "Gunshot"),
    "beijing_opera-v1.0-hear2021-full": ("beijing_opera", "Beijing Opera"),
}
RELEASED_BY_COLUMN = {column: folder for folder, (_, column) in RELEASED.items()}


def _released_folder(sized: Path, tasks: Path, folder: str) -> None:
    """The sized stand-in under the released folder name, its metadata at the released
    version (the audio and labels stay synthetic)."""
    target = tasks / folder
    shutil.copytree(sized, target)
    meta_file = target / "task_metadata.json"
    meta = json.loads(meta_file.read_text())
    meta["version"] = meta["generator"]["released_version"]
    meta_file.write_text(json.dumps(meta, indent=2))


@pytest.fixture(scope="module")
def results(
    naive_image: str, crepe_tiny_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    root = tmp_path_factory.mktemp("reference-runs")
    sized, tasks = root / "sized", root / "tasks"
    done = hear("tasks", "prepare", "hear2021-sized", "--scale", "1", "--tasks-dir", str(sized),
                "--tasks", ",".join(name for name, _ in RELEASED.values()))  # fmt: skip
    assert done.returncode == 0, done.stderr
    for folder, (name, _) in RELEASED.items():
        [made] = sized.glob(f"{name}-*")
        _released_folder(made, tasks, folder)
    out = root / "results"
    done = hear("run", "--model-image", naive_image, "--model-image", crepe_tiny_image,
                "--tasks-dir", str(tasks), "--results-dir", str(out), "--probe", "linear",
                "--cache-dir", str(root / "cache"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


def test_published_rows_and_yours_normalized_together(
    results: Path, naive_image: str, crepe_tiny_image: str
) -> None:
    done = hear("leaderboard", "--results-dir", str(results), "--reference", "hear2021",
                "--format", "json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    board = json.loads(done.stdout)
    published = reference.load()
    columns = [c["name"] for c in board["columns"]]
    assert sorted(columns) == sorted(column for _, column in RELEASED.values())
    mine = {r["model"]: r for r in board["rows"] if not r["published"]}
    theirs = {r["model"]: r for r in board["rows"] if r["published"]}
    assert set(mine) == {naive_image, crepe_tiny_image}
    assert set(theirs) == set(published.rows)  # every submission, even one without these tasks
    for row in mine.values():
        assert row["tasks"] == 2 and row["reference"] is None
        for column in columns:  # the scores are the records', far from nothing
            assert 0.0 < row["scores"][column]["score"] <= 1.0
    # Each published cell is the published score, digit for digit.
    for folder, (_, column) in RELEASED.items():
        for name, row in theirs.items():
            cell = row["scores"][column]
            expected = published.rows[name].get(folder)
            assert (cell is None) if expected is None else cell["score"] == expected
    # HEAR's normalization recomputed by hand over the union (population std, clip to +-1),
    # then each row's aggregate is the mean over the tasks it has.
    everyone = {**{("mine", m): r for m, r in mine.items()},
                **{("theirs", m): r for m, r in theirs.items()}}  # fmt: skip
    expected_z: dict[tuple[str, str], dict[str, float]] = {key: {} for key in everyone}
    for column in columns:
        scored = {key: r["scores"][column]["score"] for key, r in everyone.items()
                  if r["scores"][column] is not None}  # fmt: skip
        values = np.array(list(scored.values()))
        assert len(values) > 20  # the published rows are in it, not just yours
        mean, std = values.mean(), values.std()
        for key, value in scored.items():
            expected_z[key][column] = float(np.clip((value - mean) / std, -1, 1))
    for key, row in everyone.items():
        assert row["normalized"] == pytest.approx(expected_z[key]), key
        want = np.mean(list(expected_z[key].values())) if expected_z[key] else None
        if want is None:
            assert row["aggregate"] is None
        else:
            assert math.isclose(row["aggregate"], want, abs_tol=1e-12), key
    order = [r["aggregate"] for r in board["rows"] if r["aggregate"] is not None]
    assert order == sorted(order, reverse=True)


REPORT = """(() => {
  const rows = [...document.querySelectorAll('#leaderboard tbody tr')];
  const ink = el => getComputedStyle(el).color;
  return {
    published: rows.filter(r => r.classList.contains('published')).map(r => ink(r.cells[0])),
    yours: rows.filter(r => r.hasAttribute('data-yours')).map(r => ({
      model: r.cells[0].dataset.model, ink: ink(r.cells[0]),
      ranks: Object.fromEntries([...r.querySelectorAll('td[data-task]')].map(td =>
        [td.dataset.task, td.querySelector('.rank').textContent]))})),
    charts: [...document.querySelectorAll('figure.task-scores')].map(f => ({
      task: f.dataset.task, caption: f.querySelector('figcaption').textContent,
      grey: f.querySelectorAll('circle.score-point.published').length,
      points: f.querySelectorAll('circle.score-point').length}))};
})()"""


def test_report_shows_published_rows_grey_and_your_rank_per_task(
    results: Path, naive_image: str, crepe_tiny_image: str, tmp_path: Path
) -> None:
    from chromium import CHROMIUM, Browser

    if CHROMIUM is None:
        pytest.fail("no chromium binary: scripts/setup installs Debian's chromium package")
    out = tmp_path / "report.html"
    done = hear("report", "--results-dir", str(results), "--reference", "hear2021", "-o", str(out))
    assert done.returncode == 0, done.stderr
    board = json.loads(hear("leaderboard", "--results-dir", str(results), "--reference",
                            "hear2021", "--format", "json").stdout)  # fmt: skip
    with Browser(CHROMIUM, tmp_path / "profile") as browser:
        page = browser.open(out.as_uri())
        found = page.evaluate(REPORT)
        assert page.errors() == []
    published = reference.load()
    assert len(found["published"]) == len(published.rows)
    assert set(found["published"]) == {"rgb(89, 89, 89)"}  # grey: #595959
    assert {y["model"] for y in found["yours"]} == {naive_image, crepe_tiny_image}
    assert all(y["ink"] != "rgb(89, 89, 89)" for y in found["yours"])  # yours in colour
    # Your rank per task: 1 + the rows (published included) with a strictly better score.
    for y in found["yours"]:
        mine = next(r for r in board["rows"] if r["model"] == y["model"])
        for column, text in y["ranks"].items():
            score = mine["scores"][column]["score"]
            others = [r["scores"][column]["score"] for r in board["rows"] if r["scores"][column]]
            rank = 1 + sum(1 for s in others if s > score)
            assert text == f"rank {rank} of {len(others)}", (y["model"], column)
            assert f"{y['model']}: rank {rank} of {len(others)}" in next(
                c["caption"] for c in found["charts"] if c["task"] == column
            )
    # A chart per compared task: every published score in grey beside your two.
    assert sorted(c["task"] for c in found["charts"]) == sorted(c for _, c in RELEASED.values())
    for chart in found["charts"]:
        have = sum(1 for s in published.rows.values() if RELEASED_BY_COLUMN[chart["task"]] in s)
        assert (chart["grey"], chart["points"]) == (have, have + 2)
