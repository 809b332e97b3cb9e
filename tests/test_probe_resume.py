"""A probe stage stopped part way goes on where it was, and ends as an uninterrupted one.

Each test stops a real `hear probe` or `hear run` with SIGKILL (nothing is flushed or
cleaned up) once it has saved some trainings, runs the same command again, and compares
every number with a run that was never stopped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from taskfolders import write_task
from test_heareval_dir import write_like_heareval
from test_probes import clusters, scene_problem

from hear_runner.errors import HearError
from hear_runner.probes.resume import (
    CHECKPOINT_ENV,
    MANIFEST,
    PROGRESS_FOLDER,
    EpochDone,
    ProbeProgress,
    checkpoint_seconds,
)
from hear_runner.probes.stage import run_probe

HEAR = [sys.executable, "-m", "hear_runner"]


def killed_once_saved(
    command: list[str], progress: Path, saved: str = "*.pt", env: dict[str, str] | None = None
) -> None:
    """Start ``command``, SIGKILL it as soon as a file ``saved`` (a whole training; or
    ``*.partial``, one part way) is under ``progress``."""
    proc = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )
    deadline = time.monotonic() + 300
    while not list(progress.glob(f"*/{saved}")):
        if proc.poll() is not None:
            pytest.fail(f"ended before saving a training: {proc.stderr.read()}")  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "no training saved in 300 s"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()  # type: ignore[union-attr]


def probed_whole_and_a_copy(tmp_path: Path, args: list[str]) -> tuple[Path, Path]:
    """A toy task's embeddings folder probed by `hear <args>` to the end, and an unprobed
    copy of it (for a run to be stopped)."""
    task = write_task(tmp_path / "tasks", "toyk-1.0.0-full", nfolds=3)
    whole = write_like_heareval(task, tmp_path / "whole" / task.name)
    stopped = tmp_path / "stopped" / task.name
    shutil.copytree(whole, stopped)
    done = subprocess.run([*HEAR, *args, str(whole)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return whole, stopped


def predicted(folder: Path) -> dict:
    """heareval's score file the probe wrote in ``folder``."""
    return dict(json.loads((folder / "test.predicted-scores.json").read_text()))


def numbers(scores: dict) -> dict:
    """A score file without its clock readings and its folder's path."""
    return {
        k: numbers(v) if isinstance(v, dict) else v
        for k, v in scores.items()
        if not k.startswith("time_in_min") and k != "embedding_path"
    }


@pytest.mark.parametrize("mode", ["faithful", "fast"])
def test_hear_probe_stopped_mid_grid_resumes_to_the_numbers_of_an_unstopped_run(
    tmp_path: Path, mode: str
) -> None:
    args = ["probe", "--mode", mode, "--grid-points", "8"]
    whole, stopped = probed_whole_and_a_copy(tmp_path, args)
    assert not (whole / PROGRESS_FOLDER).exists()  # a finished stage leaves nothing behind

    killed_once_saved([*HEAR, *args, str(stopped)], stopped / PROGRESS_FOLDER)
    [key] = (stopped / PROGRESS_FOLDER).iterdir()
    saved = len(list(key.glob("*.pt")))
    assert saved >= 1 and not (stopped / "test.predicted-scores.json").exists()
    again = subprocess.run([*HEAR, *args, str(stopped)], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    total = 8 + 2  # the grid, then one per other fold
    loaded = int(again.stderr.split("resumed: ")[1].split(" of ")[0])
    assert saved <= loaded and f"of {total} trainings were loaded" in again.stderr
    # the progress counts them as done, and its time left is this run's trainings' own
    assert f": {loaded}/{total} trainings ({loaded} loaded), " in again.stderr
    assert not (stopped / PROGRESS_FOLDER).exists()
    assert numbers(predicted(stopped)) == numbers(predicted(whole))


@pytest.mark.parametrize("mode", ["faithful", "fast"])
def test_a_training_stopped_part_way_goes_on_from_its_last_epoch_saved(
    tmp_path: Path, mode: str
) -> None:
    """A training longer than a run is not redone whole: its state (weights, Adam's
    moments, early stopping, the best weights, the random generators) saved at the end of
    an epoch is where the next run goes on, to the numbers of a run never stopped."""
    args = ["probe", "--mode", mode, "--grid-points", "2"]
    whole, stopped = probed_whole_and_a_copy(tmp_path, args)

    every_epoch = {**os.environ, CHECKPOINT_ENV: "0"}
    progress = stopped / PROGRESS_FOLDER
    killed_once_saved([*HEAR, *args, str(stopped)], progress, "*.partial", every_epoch)
    [partial] = progress.glob("*/*.partial")
    stopped_after = torch.load(partial, weights_only=False)[0]["epoch"]
    again = subprocess.run(
        [*HEAR, *args, str(stopped)], capture_output=True, text=True, env=every_epoch
    )
    assert again.returncode == 0, again.stderr
    assert f"1 went on from where it stopped (after epoch {stopped_after})" in again.stderr
    assert not progress.exists()
    assert numbers(predicted(stopped)) == numbers(predicted(whole))


def test_checkpoint_seconds_come_from_the_environment_or_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(CHECKPOINT_ENV, raising=False)
    assert checkpoint_seconds() == 300
    monkeypatch.setenv(CHECKPOINT_ENV, "12.5")
    assert checkpoint_seconds() == 12.5
    for bad in ("soon", "-1", "nan"):
        monkeypatch.setenv(CHECKPOINT_ENV, bad)
        with pytest.raises(HearError, match=f"^{CHECKPOINT_ENV}='{bad}' is not a number"):
            checkpoint_seconds()


def test_hear_run_stopped_in_its_probe_resumes_from_the_saved_trainings(tmp_path: Path) -> None:
    write_task(tmp_path / "tasks", "toyk-1.0.0-full", nfolds=3)

    def run(results: str) -> list[str]:
        return [*HEAR, "run", "--model-module", "numpy_logmel", "--tasks-dir",
                str(tmp_path / "tasks"), "--results-dir", str(tmp_path / results),
                "--probe", "faithful", "--cache-dir", str(tmp_path / "cache")]  # fmt: skip

    done = subprocess.run(run("whole"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    progress = tmp_path / "stopped" / "numpy_logmel" / "toyk-1.0.0-full.probe-progress"
    killed_once_saved(run("stopped"), progress)
    again = subprocess.run(run("stopped"), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "toyk-1.0.0-full: resumed: " in again.stderr
    loaded = int(again.stderr.split("toyk-1.0.0-full: resumed: ")[1].split(" of ")[0])
    assert f"faithful probe: {loaded}/" in again.stderr and f"({loaded} loaded)" in again.stderr
    assert not progress.exists()
    whole, got = (
        json.loads((tmp_path / r / "numpy_logmel" / "toyk-1.0.0-full.json").read_text())
        for r in ("whole", "stopped")
    )
    assert [f["scores"] for f in got["folds"]] == [f["scores"] for f in whole["folds"]]
    assert [f["losses"] for f in got["folds"]] == [f["losses"] for f in whole["folds"]]
    assert got["probe"]["grid"] == whole["probe"]["grid"]
    assert got["probe"]["resumed"] >= 1 and whole["probe"]["resumed"] == 0


def test_saved_trainings_serve_only_the_same_inputs_and_code(tmp_path: Path) -> None:
    problem = scene_problem(
        train=clusters("train", 40), valid=clusters("valid", 20, seed=1),
        test=clusters("test", 20, seed=2),
    )  # fmt: skip
    settings = {"mode": "faithful", "seeds": [42]}
    calls = []

    def train() -> float:
        calls.append(1)
        return float(torch.rand(()))  # draws: the random state after it is saved too

    first = ProbeProgress(tmp_path, problem, settings)
    value = first.run("point0", train)
    after = torch.get_rng_state()
    torch.manual_seed(0)  # elsewhere in the stream: loading puts it back where it was
    same = ProbeProgress(tmp_path, problem, settings)
    assert same.run("point0", train) == value and same.resumed == 1 and len(calls) == 1
    assert torch.equal(torch.get_rng_state(), after)
    [saved] = same.here.glob("*.pt")
    saved.write_bytes(saved.read_bytes()[:100])  # damaged: trained again, not a traceback
    assert ProbeProgress(tmp_path, problem, settings).run("point0", train) != value
    assert len(calls) == 2

    changed = scene_problem(**problem.splits)
    changed.splits["test"] = clusters("test", 20, seed=2)
    changed.splits["test"].embeddings[7, 3] = np.nextafter(
        changed.splits["test"].embeddings[7, 3], np.float32(np.inf)
    )  # one float's last bit, in a split no training reads
    for other in (
        ProbeProgress(tmp_path, changed, settings),
        ProbeProgress(tmp_path, problem, {**settings, "seeds": [43]}),
    ):
        other.run("point0", train)
        assert other.resumed == 0
    assert len(calls) == 4 and len(list(tmp_path.iterdir())) == 3

    stale = tmp_path / "made-by-other-code"
    stale.mkdir()
    (stale / MANIFEST).write_text(json.dumps({"code": "0" * 16}))
    (stale / "point0.pt").write_bytes(b"")
    kept = ProbeProgress(tmp_path, problem, {**settings, "seeds": [44]})
    kept.run("point0", train)  # a first save sweeps what no run of this code can resume
    assert not stale.exists() and len(list(tmp_path.iterdir())) == 4
    kept.finish()
    assert not kept.here.exists() and len(list(tmp_path.iterdir())) == 3


@pytest.mark.parametrize("mode", ["faithful", "fast"])
def test_every_epoch_tells_where_its_training_stands(mode: str) -> None:
    """The progress of a training hours long: its epoch, its cap and its best check so far,
    which are the training's own (a watched run trains exactly as an unwatched one)."""
    problem = scene_problem(
        train=clusters("train", 60), valid=clusters("valid", 30, seed=1),
        test=clusters("test", 30, seed=2),
    )  # fmt: skip
    seen: list[EpochDone] = []
    watched = run_probe(problem, mode, grid_points=2, on_epoch=seen.append)  # type: ignore[arg-type]
    assert watched.grid == run_probe(problem, mode, grid_points=2).grid  # type: ignore[arg-type]
    starts = [i for i, e in enumerate(seen) if e.epoch == 1]
    trainings = [seen[a:b] for a, b in zip(starts, [*starts[1:], len(seen)], strict=True)]
    # faithful trains its 2 points one by one; fast as many in one network as fit a CPU's cache
    assert (starts[0] == 0 and len(trainings) == 2) if mode == "faithful" else starts[0] == 0
    for epochs in trainings:
        assert [e.epoch for e in epochs] == list(range(1, len(epochs) + 1))
        assert {e.max_epochs for e in epochs} == {500}
        assert all(e.seconds_per_epoch > 0 for e in epochs)
        assert all(e.best_epoch % 3 == 0 for e in epochs)  # a check every 3 epochs
        assert [e.best for e in epochs] == sorted(e.best for e in epochs)
        assert epochs[0].line().startswith("epoch 1 of at most 500 (")
        assert epochs[0].line().endswith("s an epoch), no check yet")
    # where each stood at its last epoch told is what its training kept
    points = [(g["best_epoch"], g["valid_selection_score"]) for g in watched.grid]
    told = [(t[-1].best_epoch, t[-1].best) for t in trainings]
    assert (told == points) if mode == "faithful" else (set(told) <= set(points))
    assert max(told, key=lambda p: p[1]) == max(points, key=lambda p: p[1])
    last = trainings[0][-1]
    assert last.line().endswith(f"best check {last.best:.4g} at epoch {last.best_epoch}")


def test_hear_probe_logs_the_epoch_of_a_training_that_is_quiet_for_long(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hear_runner import progress
    from hear_runner.cli.probe import probe

    task = write_task(tmp_path / "tasks", "toy-1.0.0-full")
    folder = write_like_heareval(task, tmp_path / "embeddings" / task.name)
    monkeypatch.setattr(progress, "QUIET_AT_MOST", 0.05)  # a beat every 50 ms, not 5 minutes
    probe([folder], mode="faithful", grid_points=1)
    log = capsys.readouterr().err
    beat = (
        r"toy-1.0.0-full · faithful probe: 0/1 trainings, \d+ s; now epoch (\d+) of at most 500 \("
    )
    epochs = [int(e) for e in re.findall(beat, log)]
    assert epochs and epochs == sorted(epochs), log
