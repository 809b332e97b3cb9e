"""Issue 16's acceptance for ``--reference``: real runs of two shipped model images (the naive
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
