"""The reason hear-runner exists: models that cannot share one environment, in one run.

hear/naive runs hearbaseline.naive on numpy 1.23 (numba 0.57 wants numpy < 1.25);
hear/whisper runs Whisper tiny.en on numpy 2; hear/torchcrepe-tiny runs HEAR 2021's CREPE
code. One `hear run` scores all three on parts of the mini suite (a subset, to keep CI
short): the pattern of HEAR's leaderboard shows, the pitch model wins on pitch and the
speech model on speech. And `hear validate` passes on every shipped image.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker


def hear(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hear_runner", *args], capture_output=True, text=True, timeout=1800
    )


def subset(source: Path, into: Path, keep: Callable[[int, str], bool]) -> Path:
    """A copy of a task folder with only the clips ``keep(index, file)`` accepts in each split."""
    target = into / source.name
    target.mkdir(parents=True)
    for name in ("task_metadata.json", "labelvocabulary.csv"):
        shutil.copy(source / name, target / name)
    for split_file in source.glob("*.json"):
        if split_file.name == "task_metadata.json":
            continue
        labels = json.loads(split_file.read_text())
        kept = {f: v for i, (f, v) in enumerate(sorted(labels.items())) if keep(i, f)}
        (target / split_file.name).write_text(json.dumps(kept))
        for rate_dir in source.iterdir():
            if rate_dir.is_dir():
                (target / rate_dir.name / split_file.stem).mkdir(parents=True, exist_ok=True)
                for f in kept:
                    folder = rate_dir.name + "/" + split_file.stem
                    shutil.copy(source / folder / f, target / folder / f)
    return target


@pytest.fixture(scope="module")
def mini_subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Spoken digits (every other clip) and pitch (one soundfont: every pitch in every fold)."""
    from hear_mini import pitch, spoken_digits

    made = tmp_path_factory.mktemp("mini")
    tasks = tmp_path_factory.mktemp("subset")
    digits = spoken_digits.prepare(made, "smoke", progress=False)
    notes = pitch.prepare(made, "smoke", progress=False)
    subset(digits, tasks, lambda i, _: i % 2 == 0)
    subset(notes, tasks, lambda _, f: f.startswith("musescore"))
    return tasks


def test_three_models_that_cannot_share_an_environment_score_side_by_side(
    naive_image: str, crepe_tiny_image: str, whisper_image: str, mini_subset: Path,
    tmp_path: Path, no_leftover_containers,
) -> None:  # fmt: skip
    result = hear(
        "run", "--model", "naive", "--model", "crepe-tiny", "--model", "whisper-tiny-en",
        "--tasks-dir", str(mini_subset), "--results-dir", str(tmp_path), "--probe", "linear",
        "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    score = {
        (r["model"]["name"].split("/")[1].split(":")[0], r["task"]["task_name"]): r["test_score"]
        for r in json.loads(result.stdout)
    }
    assert len(score) == 6
    versions = {
        r["model"]["name"]: r["model"]["engine"]["hello"]["versions"]["numpy"]
        for r in json.loads(result.stdout)
    }
    assert versions["hear/naive:latest"].startswith("1.23")
    assert versions["hear/whisper:latest"].startswith("2.")
    # Pitch: CREPE (a pitch tracker) far above the speech encoder, and near perfect.
    assert score["torchcrepe-tiny", "mini_pitch"] >= 0.9
    assert score["torchcrepe-tiny", "mini_pitch"] > score["whisper", "mini_pitch"] + 0.2
    # Speech: the speech encoder above both; CREPE last.
    assert score["whisper", "mini_spoken_digits"] > score["naive", "mini_spoken_digits"]
    assert score["naive", "mini_spoken_digits"] > score["torchcrepe-tiny", "mini_spoken_digits"]

    board = hear("leaderboard", "--results-dir", str(tmp_path), "--format", "json")
    assert board.returncode == 0, board.stderr
    rows = json.loads(board.stdout)["rows"]
    assert len(rows) == 3 and all(row["tasks"] == 2 for row in rows)


@pytest.mark.parametrize(
    ("model", "fixture", "long_seconds"),
    [
        # hear/naive is validated with the full 20-minute input in test_validate.py.
        ("crepe-tiny", "crepe_tiny_image", "60"),
        ("whisper-tiny-en", "whisper_image", "60"),
        # The full CREPE takes about 1.1 CPU seconds per audio second: no long input here.
        ("crepe", "crepe_image", "0"),
    ],
)
def test_hear_validate_passes_on_every_shipped_image(
    model: str, fixture: str, long_seconds: str, request: pytest.FixtureRequest,
    no_leftover_containers,
) -> None:  # fmt: skip
    request.getfixturevalue(fixture)
    result = hear("validate", "--model", model, "--long-seconds", long_seconds, "--json")
    report = json.loads(result.stdout)
    failed = [c for c in report["checks"] if c["result"] == "fail"]
    assert result.returncode == 0 and report["passed"] and not failed, failed
    if long_seconds != "0":
        assert any(c["name"] == "long_input" and c["result"] == "pass" for c in report["checks"])
