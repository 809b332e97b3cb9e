"""The embedding pipeline on real task folders through the local engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from taskfolders import write_task

from hear_runner.embed.pipeline import embed_split
from hear_runner.embed.split import SplitEmbeddings
from hear_runner.embed.store import SplitStore
from hear_runner.engines.base import ModelSource
from hear_runner.engines.local import LocalEngine
from hear_runner.errors import ModelError
from hear_runner.tasks.folder import Task


def event_task(root: Path) -> Task:
    path = write_task(root)
    metadata = json.loads((path / "task_metadata.json").read_text())
    metadata.update(embedding_type="event", prediction_type="multilabel")
    (path / "task_metadata.json").write_text(json.dumps(metadata))
    for split in ("train", "valid", "test"):
        (path / f"{split}.json").write_text(json.dumps({f"{i}.wav": [] for i in range(4)}))
    return Task(path)


def start(module: str, **options: object):
    return LocalEngine().start(ModelSource(kind="module", ref=module, options=options))


def test_scene_embeddings_follow_the_split_order(tmp_path: Path) -> None:
    task = Task(write_task(tmp_path))
    with start("numpy_logmel") as model:
        result = embed_split(model.client, task, "test", SplitStore(tmp_path / "s"), batch_size=3)
    assert result.files == ["0.wav", "1.wav", "2.wav", "3.wav"]
    assert result.embeddings.shape == (4, 128) and result.audio_seconds == pytest.approx(2.0)


def test_event_frames_keep_their_clip_and_time(tmp_path: Path) -> None:
    task = event_task(tmp_path)
    with start("numpy_logmel") as model:
        result = embed_split(model.client, task, "test", SplitStore(tmp_path / "s"), batch_size=3)
    # 0.5 s clips, a frame every 25 ms from 0 to 500 ms inclusive: 21 per clip.
    assert result.embeddings.shape == (4 * 21, 64)
    assert np.bincount(result.frame_clip).tolist() == [21, 21, 21, 21]
    assert result.frame_ms[:3].tolist() == [0.0, 25.0, 50.0] and result.frame_ms.max() == 500.0


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("irregular_hop", r"irregular timestamps for 0.wav: hops from 50.000 to 57.000 ms"),
        (
            "nan",
            r"NaN or Inf embeddings for 1 clip\(s\) \(task toy-1.0.0-full, split test, clips 1-2\), first 0.wav",
        ),
    ],
)
def test_bad_timestamp_output_names_model_and_clip(
    tmp_path: Path, fault: str, message: str
) -> None:
    task = event_task(tmp_path)
    with start("faulty", fault=fault) as model, pytest.raises(ModelError, match=message) as info:
        embed_split(model.client, task, "test", SplitStore(tmp_path / "s"), batch_size=2)
    assert "module faulty" in str(info.value)


def test_clips_of_any_length_are_batched_only_with_their_own_length(tmp_path: Path) -> None:
    """Padding would change a scene embedding (a mean over frames): none is added."""
    import soundfile as sf

    path = write_task(tmp_path)
    metadata = json.loads((path / "task_metadata.json").read_text())
    metadata["sample_duration"] = None
    (path / "task_metadata.json").write_text(json.dumps(metadata))
    for i in (1, 3):  # two of the four test clips get shorter
        audio, rate = sf.read(path / "16000" / "test" / f"{i}.wav")
        sf.write(path / "16000" / "test" / f"{i}.wav", audio[: rate // 5], rate)
    task = Task(path)
    with start("numpy_logmel") as model:
        together = embed_split(model.client, task, "test", SplitStore(tmp_path / "a"), batch_size=4)
        alone = embed_split(model.client, task, "test", SplitStore(tmp_path / "b"), batch_size=1)
    assert together.files == alone.files == ["0.wav", "1.wav", "2.wav", "3.wav"]
    assert np.allclose(together.embeddings, alone.embeddings, atol=1e-5)
    assert together.audio_seconds == pytest.approx(0.5 + 0.2 + 0.5 + 0.2)


def long_task(root: Path, seconds: float, event: bool) -> Task:
    """Four noise clips of ``seconds`` per split (a scene or an event task)."""
    import soundfile as sf

    task = event_task(root) if event else Task(write_task(root))
    metadata = json.loads((task.path / "task_metadata.json").read_text())
    metadata["sample_duration"] = seconds
    (task.path / "task_metadata.json").write_text(json.dumps(metadata))
    rng = np.random.default_rng(0)
    for wav in task.path.glob("16000/*/*.wav"):
        sf.write(wav, rng.uniform(-0.5, 0.5, round(seconds * 16000)).astype(np.float32), 16000)
    return Task(task.path)


def test_long_clips_are_embedded_in_chunks_with_exact_timestamps(tmp_path: Path) -> None:
    """faulty's frames see only their own 50 ms: chunked and whole must agree exactly."""
    task = long_task(tmp_path, 4.2, event=True)
    with start("faulty") as model:
        whole = embed_split(model.client, task, "test", SplitStore(tmp_path / "a"))
        # 1.33 s chunks: the next chunk starts on the frame grid, at 1.30 s.
        chunked = embed_split(
            model.client, task, "test", SplitStore(tmp_path / "b"), max_clip_seconds=1.33
        )
    assert whole.frame_ms.tolist() == chunked.frame_ms.tolist()
    assert np.bincount(chunked.frame_clip).tolist() == [84] * 4  # 0 to 4150 ms every 50 ms
    assert np.array_equal(whole.embeddings, chunked.embeddings)
    assert chunked.batch_size == 1  # clips that long go one at a time


def test_event_batches_hold_only_as_many_frames_as_the_byte_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Long event clips come back a few at a time: the first batch by an assumed 10 ms hop,
    later ones by the frame rate the model has shown (faulty: 50 ms, 8 floats a frame)."""
    from hear_runner.embed import pipeline

    task = long_task(tmp_path, 4.2, event=True)
    clip_bytes = 4.2 * pipeline.ASSUMED_FRAMES_PER_SECOND * 8 * 4
    with start("faulty") as model:
        monkeypatch.setattr(pipeline, "EVENT_BATCH_BYTES", int(clip_bytes * 1.5))
        (budgeted, sizes), (unbounded, whole) = _with_and_without_budget(
            model, task, tmp_path, monkeypatch
        )
    assert sizes[0] == 1 and sum(sizes) == 4 and max(sizes) > 1  # 20 frames/s, not 100
    assert whole == [4]
    assert np.array_equal(budgeted.embeddings, unbounded.embeddings)
    assert budgeted.frame_ms.tolist() == unbounded.frame_ms.tolist()


def test_scene_batches_hold_only_as_much_audio_as_the_byte_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Long scene clips (Beehive's ten minutes) go a few at a time, with the same embeddings."""
    from hear_runner.embed import pipeline

    task = long_task(tmp_path, 4.2, event=False)
    with start("faulty") as model:
        assert model.client.hello is not None
        clip_bytes = 4.2 * model.client.hello.sample_rate * 4
        monkeypatch.setattr(pipeline, "BATCH_AUDIO_BYTES", int(clip_bytes * 2.5))
        (budgeted, sizes), (unbounded, whole) = _with_and_without_budget(
            model, task, tmp_path, monkeypatch
        )
    assert sizes == [2, 2] and whole == [4]
    assert np.array_equal(budgeted.embeddings, unbounded.embeddings)


def _with_and_without_budget(
    model: Any, task: Task, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> list[tuple[SplitEmbeddings, list[int]]]:
    """The test split embedded in batches of up to 32 under the byte budget monkeypatched
    by the caller, then with it undone: each result with the clips of its every batch."""
    results = []
    for store in ("a", "b"):
        sizes: list[int] = []
        result = embed_split(
            model.client, task, "test", SplitStore(tmp_path / store), batch_size=32,
            on_batch=lambda n, _, sizes=sizes: sizes.append(n),
        )  # fmt: skip
        results.append((result, sizes))
        monkeypatch.undo()
    return results


def test_a_clip_out_of_memory_alone_is_halved_into_chunks(tmp_path: Path) -> None:
    """The model cannot take more than 1.5 s: 4.2 s clips go in four 1.05 s chunks."""
    import faulty
    import soundfile as sf

    task = long_task(tmp_path, 4.2, event=False)
    with start("faulty", fault="oom_long") as model:
        result = embed_split(model.client, task, "test", SplitStore(tmp_path / "s"), batch_size=4)
    for row, file in enumerate(result.files):
        audio, _ = sf.read(task.path / "16000" / "test" / file, dtype="float32")
        chunks = audio.reshape(4, -1)  # 4 x 16800 samples
        expected = faulty._features(chunks).mean(0)  # equal lengths: a plain mean
        assert np.allclose(result.embeddings[row], expected, atol=1e-6)
