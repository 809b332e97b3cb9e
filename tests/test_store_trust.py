"""The embedding store serves only what matches the audio and its own checksums, and two
runs can share it (issue 12, findings 1, 2 and 10)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from taskfolders import write_task

from hear_runner.embed.pipeline import SplitPlan, embed_batches, embed_split
from hear_runner.embed.store import SplitStore
from hear_runner.engines.base import ModelSource
from hear_runner.engines.local import LocalEngine
from hear_runner.files import OutputError
from hear_runner.tasks.folder import Task


def hear(*args: str, log: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"HEAR_TEST_CALL_LOG": str(log)} if log else {})}
    return subprocess.run([sys.executable, "-m", "hear_runner", *args], capture_output=True,
                          text=True, timeout=600, env=env)  # fmt: skip


def run_args(task: Path, results: Path, *extra: str) -> list[str]:
    return ["run", "--model-module", "faulty", "--tasks-dir", str(task.parent), "--results-dir",
            str(results), "--probe", "linear", "--batch-size", "2", "--json", *extra]  # fmt: skip


def record(task: Path, results: Path, log: Path | None = None) -> dict[str, Any]:
    result = hear(*run_args(task, results), log=log)
    assert result.returncode == 0, result.stderr
    [found] = json.loads(result.stdout)
    found["stderr"] = result.stderr
    return found


def calls(log: Path) -> list[int]:
    """The batch size of every model call logged so far."""
    return [int(line.split()[0]) for line in log.read_text().splitlines()] if log.exists() else []


def split_dir(store: Path, split: str) -> Path:
    [found] = store.glob(f"*/*/{split}")
    return found


def noise(path: Path, seed: int) -> None:
    """Rewrite a clip with noise of the same length (same size; a new mtime)."""
    audio, rate = sf.read(path, dtype="float32")
    sf.write(path, np.random.default_rng(seed).uniform(-0.5, 0.5, len(audio)), rate)


def start(module: str = "faulty", **options: object):
    return LocalEngine().start(ModelSource(kind="module", ref=module, options=options))


def event_task(root: Path) -> Path:
    """The toy task as an event task: frames.npz then matters."""
    path = write_task(root, "toyevents-1.0.0-full")
    metadata = json.loads((path / "task_metadata.json").read_text())
    metadata.update(embedding_type="event", prediction_type="multilabel",
                    evaluation=["event_onset_200ms_fms"],
                    evaluation_params={"event_postprocessing_grid": {"median_filter_ms": [0],
                                                                     "min_duration": [0]}})  # fmt: skip
    (path / "task_metadata.json").write_text(json.dumps(metadata))
    for split in ("train", "valid", "test"):
        labels = json.loads((path / f"{split}.json").read_text())
        events = {f: [{"label": label[0], "start": 0, "end": 500}] for f, label in labels.items()}
        (path / f"{split}.json").write_text(json.dumps(events))
    return path


# Finding 1: stale embeddings ------------------------------------------------------------


def test_changed_test_clips_are_embedded_again_and_change_the_score(
    tmp_path: Path, empty_embedding_store: Path
) -> None:
    task = write_task(tmp_path / "tasks")
    first = record(task, tmp_path / "r")
    for i, wav in enumerate(sorted((task / "16000" / "test").glob("*.wav"))):
        noise(wav, i)
    log = tmp_path / "calls"
    again = record(task, tmp_path / "r", log)
    assert again["timings"]["clips_embedded"] == 4 and sum(calls(log)) == 4
    assert again["timings"]["clips_from_store"] == 8 and again["timings"]["clips_changed"] == 4
    assert "4 clip(s) changed on disk since they were embedded" in again["stderr"]
    assert again["scores"] != first["scores"]
    fresh = hear(*run_args(task, tmp_path / "f", "--cache-dir", str(tmp_path / "fresh")))
    assert again["scores"] == json.loads(fresh.stdout)[0]["scores"]  # as if never cached


def test_one_changed_clip_of_a_complete_split_is_the_only_one_embedded(tmp_path: Path) -> None:
    task = write_task(tmp_path / "tasks")
    first = record(task, tmp_path / "r")
    audio, rate = sf.read(task / "16000" / "test" / "2.wav")
    sf.write(task / "16000" / "test" / "2.wav", audio, rate)  # same audio, rewritten
    log = tmp_path / "calls"
    again = record(task, tmp_path / "r", log)
    assert calls(log) == [1] and again["timings"]["clips_embedded"] == 1
    assert again["timings"]["clips_from_store"] == 11
    assert again["scores"] == first["scores"]  # the unchanged rows kept their places


def test_one_changed_clip_re_embeds_exactly_the_batch_holding_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = Task(write_task(tmp_path / "tasks"))
    store = SplitStore(tmp_path / "s")
    log = tmp_path / "calls"
    monkeypatch.setenv("HEAR_TEST_CALL_LOG", str(log))
    with start() as model:
        embed_batches(model.client, task, "test", store, SplitPlan(task, "test", store, 16000), 2)
        assert sorted(p.name for p in store.path.glob("batch-*.json")) == [
            "batch-00000000.json", "batch-00000002.json"]  # fmt: skip
        noise(task.audio_path("test", "3.wav", 16000), 0)
        log.unlink()
        result = embed_split(model.client, task, "test", store, batch_size=2)
        fresh = embed_split(model.client, task, "test", SplitStore(tmp_path / "f"), batch_size=2)
    assert calls(log)[:1] == [2]  # clips 2 and 3, then the fresh split's calls
    assert result.clips_embedded == 2 and result.clips_from_store == 2
    assert result.clips_changed == 1
    assert np.array_equal(result.embeddings, fresh.embeddings)


def test_a_vanished_clip_fails_before_the_model_starts_naming_it(tmp_path: Path) -> None:
    task = write_task(tmp_path / "tasks")
    record(task, tmp_path / "r")
    (task / "16000" / "test" / "2.wav").unlink()
    log = tmp_path / "calls"
    result = hear(*run_args(task, tmp_path / "r"), log=log)
    assert result.returncode == 1 and not log.exists() and "starting" not in result.stderr
    assert "test/2.wav" in result.stderr and "missing" in result.stderr
    assert "Traceback" not in result.stderr


# Finding 2: corrupt store files -----------------------------------------------------------


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _broken_json(path: Path) -> None:
    path.write_text('{"clips": [0, 1')


def _reverse_rows(path: Path) -> None:
    np.save(path, np.load(path)[::-1])


def _remove(path: Path) -> None:
    path.unlink()


def batches_only(store_dir: Path, task: Path, split: str) -> None:
    """Leave ``split`` as committed batches of two clips (a run stopped before assembling)."""
    store = SplitStore(split_dir(store_dir, split))
    for name in ("split.json", "embeddings.npy", "frames.npz"):
        (store.path / name).unlink()
    loaded = Task(task)
    with start() as model:
        embed_batches(model.client, loaded, split, store, SplitPlan(loaded, split, store, 16000), 2)


@pytest.mark.parametrize(
    ("file", "damage", "embedded"),
    [
        ("batch-00000002.npy", _truncate, 2),
        ("batch-00000002.npy", _empty, 2),
        ("batch-00000000.npy", _reverse_rows, 2),
        ("batch-00000002.json", _broken_json, 2),
        ("batch-00000000.npy", _remove, 2),
        ("embeddings.npy", _truncate, 4),
        ("embeddings.npy", _empty, 4),
        ("embeddings.npy", _reverse_rows, 4),
        ("split.json", _broken_json, 4),
    ],
)
def test_a_damaged_store_file_is_named_dropped_and_recomputed(
    tmp_path: Path, empty_embedding_store: Path, file: str, damage: Any, embedded: int
) -> None:
    task = write_task(tmp_path / "tasks")
    first = record(task, tmp_path / "r")
    if file.startswith("batch-"):
        batches_only(empty_embedding_store, task, "test")
    damaged = split_dir(empty_embedding_store, "test") / file
    damage(damaged)
    log = tmp_path / "calls"
    again = record(task, tmp_path / "r", log)
    assert str(damaged) in again["stderr"] and "embedded again" in again["stderr"]
    assert sum(calls(log)) == embedded == again["timings"]["clips_embedded"]
    assert again["scores"] == first["scores"]


def test_an_event_split_without_frames_is_recomputed(
    tmp_path: Path, empty_embedding_store: Path
) -> None:
    task = event_task(tmp_path / "tasks")
    first = record(task, tmp_path / "r")
    frames = split_dir(empty_embedding_store, "valid") / "frames.npz"
    frames.unlink()
    log = tmp_path / "calls"
    again = record(task, tmp_path / "r", log)
    assert f"{frames}: missing" in again["stderr"]
    assert sum(calls(log)) == 4 and again["scores"] == first["scores"]


def test_a_broken_model_record_counts_as_missing(
    tmp_path: Path, empty_embedding_store: Path
) -> None:
    task = write_task(tmp_path / "tasks")
    first = record(task, tmp_path / "r")
    [model_json] = empty_embedding_store.glob("*/model.json")
    model_json.write_text("{")
    log = tmp_path / "calls"
    again = record(task, tmp_path / "r", log)
    assert f"{model_json}: unreadable" in again["stderr"]
    assert not calls(log) and again["scores"] == first["scores"]  # the splits were sound
    assert json.loads(model_json.read_text())["hello"]  # written again


def test_a_full_disk_while_committing_a_batch_leaves_no_half_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins

    import hear_runner.files

    real_open = builtins.open

    def full_for_records(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if ".json." in str(path) and "w" in mode:
            real_open(path, mode).close()  # the temporary file exists, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, mode, *args, **kwargs)

    task = Task(write_task(tmp_path / "tasks"))
    store = SplitStore(tmp_path / "s")
    with start() as model:
        monkeypatch.setattr(hear_runner.files, "open", full_for_records, raising=False)
        with pytest.raises(OutputError, match=r"batch-00000000\.json: cannot write: the disk"):
            embed_split(model.client, task, "test", store, batch_size=2)
        monkeypatch.undo()
        assert sorted(p.name for p in store.path.iterdir()) == [".lock"]  # no rows, no .tmp
        result = embed_split(model.client, task, "test", store, batch_size=2)
    assert result.clips_embedded == 4


# Finding 10: two runs on one store ------------------------------------------------------


def test_two_runs_at_once_on_one_store_agree_with_one_run(
    digits_task: Path, tmp_path: Path, empty_embedding_store: Path
) -> None:
    log = tmp_path / "calls"
    env = {**os.environ, "HEAR_TEST_CALL_LOG": str(log)}

    def launch(results: Path) -> subprocess.Popen[str]:
        args = run_args(digits_task, results, "--model-options", '{"fault": "slow"}')
        return subprocess.Popen([sys.executable, "-m", "hear_runner", *args], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip

    runs = [launch(tmp_path / "r0"), launch(tmp_path / "r1")]
    outputs = [run.communicate(timeout=600) for run in runs]
    for run, (_, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err
    records = [json.loads(out)[0] for out, _ in outputs]
    assert records[0]["scores"] == records[1]["scores"]
    clips = sum(len(json.loads((digits_task / f"{s}.json").read_text()))
                for s in ("train", "valid", "test"))  # fmt: skip
    assert sum(calls(log)) == clips  # each clip embedded once: the second run waited
    for split in ("train", "valid", "test"):
        folder = split_dir(empty_embedding_store, split)
        assert sorted(p.name for p in folder.iterdir()) == [
            ".lock", "embeddings.npy", "frames.npz", "split.json"]  # fmt: skip
    one = hear(*run_args(digits_task, tmp_path / "one", "--cache-dir", str(tmp_path / "c1")))
    assert json.loads(one.stdout)[0]["scores"] == records[0]["scores"]
    a = np.load(split_dir(empty_embedding_store, "train") / "embeddings.npy")
    assert np.array_equal(a, np.load(split_dir(tmp_path / "c1", "train") / "embeddings.npy"))
