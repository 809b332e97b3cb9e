"""hear2021-sized: synthetic HEAR 2021 tasks at the released size, checked at small scales.

Each generated folder must read as a valid task to the runner, say what the catalogue says
(released task_name, split mode, folds, metrics, durations, vocabulary size, evaluation
params), hold round_half_up(released clips x scale), at least 2, per split, and be
learnable: a linear model on log spectra must score far above chance.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hear_2021 import sized
from hear_2021.catalogue import CATALOGUE, CatalogueTask, by_name

from hear_runner.errors import HearError
from hear_runner.tasks.folder import Task

# The vocabulary sizes HEAR 2021 released (gunshot_triangulation: 4 microphones, mic1-mic4,
# per hear-preprocess; its 7 is the number of firearms, i.e. folds).
VOCAB_SIZES = {
    "speech_commands_5h": 12, "speech_commands_full": 12, "nsynth_pitch_5h": 88,
    "nsynth_pitch_50h": 88, "dcase2016_task2": 11, "beehive_states": 2, "beijing_opera": 4,
    "tfds_crema_d": 6, "esc50": 50, "fsd50k": 200, "gunshot_triangulation": 4,
    "tfds_gtzan": 10, "tfds_gtzan_music_speech": 2, "libricount": 11, "maestro": 88,
    "mridangam_stroke": 10, "mridangam_tonic": 6, "vocal_imitation": 302,
    "vox_lingua_top10": 10,
}  # fmt: skip
TASKS = by_name()


def hear(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hear_runner", *args], capture_output=True, text=True, timeout=300
    )


def expected_clips(task: CatalogueTask, scale: float) -> dict[str, int]:
    """The documented rule: round half up, at least two clips a split."""
    assert task.sized is not None
    return {s: max(2, math.floor(n * scale + 0.5)) for s, n in task.sized.split_clips.items()}


def test_every_task_has_sized_facts_that_add_up_to_the_published_size() -> None:
    assert {task.name for task in CATALOGUE} == set(VOCAB_SIZES)
    for task in CATALOGUE:
        facts = task.sized
        assert facts is not None, task.name
        assert sum(facts.split_clips.values()) == task.clips, task.name
        splits = [f"fold{i:02d}" for i in range(task.nfolds)] if task.nfolds else None
        assert list(facts.split_clips) == (splits or ["train", "valid", "test"]), task.name
        assert facts.vocab_size == VOCAB_SIZES[task.name], task.name
        assert facts.labels is None or len(set(facts.labels)) == facts.vocab_size, task.name
        event = task.embedding_type == "event"
        assert (facts.events_per_minute is not None) == event, task.name
        assert (task.sample_duration is None) == (facts.duration_range is not None), task.name
    maestro = TASKS["maestro"].extra_metadata["evaluation_params"]
    assert maestro["event_postprocessing_grid"] == {"median_filter_ms": [150], "min_duration": [50]}


def test_folder_names_mark_the_version_synthetic_and_show_the_scale() -> None:
    commands = TASKS["speech_commands_full"]
    assert sized.folder_name(commands, "full") == "speech_commands-v0.0.2-sized-full"
    assert sized.folder_name(commands, "1") == "speech_commands-v0.0.2-sized-full"
    assert sized.folder_name(commands, "0.01") == "speech_commands-v0.0.2-sized0.01-full"
    assert (
        sized.folder_name(TASKS["beehive_states"], "full") == "beehive_states_fold0-v2-sized-full"
    )
    released = {archive.folder for task in CATALOGUE for archive in task.archives}
    for task in CATALOGUE:
        for scale in ("full", "0.5", "2"):
            assert sized.folder_name(task, scale) not in released
    for bad in ("smoke", "0", "-1", "nan", "inf"):
        with pytest.raises(HearError, match="positive factor"):
            sized.folder_name(commands, bad)


def prepared(tmp: Path, name: str, scale: float) -> Task:
    path = sized.prepare(TASKS[name], tmp, str(scale), progress=False)
    task = Task(path)  # the runner's own reading of a task folder: raises if invalid
    task.check_audio()
    return task


@pytest.mark.parametrize(
    ("name", "scale"),
    [
        ("speech_commands_5h", 0.005),  # trainvaltest, scene, multiclass, 1 s
        ("mridangam_stroke", 0.003),  # new_split_kfold, 0.81 s
        ("esc50", 0.01),  # presplit_kfold
        ("fsd50k", 0.001),  # multilabel scene, clips of their own length
    ],
)
def test_a_scene_task_folder_says_what_the_catalogue_says(
    tmp_path: Path, name: str, scale: float
) -> None:
    entry = TASKS[name]
    task = prepared(tmp_path, name, scale)
    meta = task.metadata
    assert task.path.name == sized.folder_name(entry, str(scale))
    assert (meta.task_name, meta.embedding_type, meta.prediction_type, meta.split_mode) == (
        entry.task_name, entry.embedding_type, entry.prediction_type, entry.split_mode,
    )  # fmt: skip
    assert (meta.nfolds, meta.sample_duration, meta.mode) == (
        entry.nfolds, entry.sample_duration, entry.mode,
    )  # fmt: skip
    assert tuple(meta.evaluation) == entry.evaluation
    assert meta.version == f"{entry.version}-sized{scale:g}"
    assert {s: len(task.clips(s)) for s in task.splits} == expected_clips(entry, scale)
    assert entry.sized is not None
    assert len(task.vocabulary) == entry.sized.vocab_size
    durations = []
    for split in task.splits:
        for clip in task.clips(split):
            info = sf.info(task.audio_path(split, clip.file, 16000))
            assert info.samplerate == 16000 and info.channels == 1 and info.subtype == "PCM_16"
            durations.append(info.duration)
            if entry.prediction_type == "multilabel":
                assert 1 <= len(clip.labels) <= 3
    if entry.sample_duration is not None:
        assert set(durations) == {entry.sample_duration} or np.allclose(
            durations, entry.sample_duration, atol=1 / 16000
        )
    else:
        low, high = entry.sized.duration_range or (0, 0)
        assert low <= min(durations) and max(durations) <= high
        assert 0.6 * 7.6 < float(np.mean(durations)) < 1.4 * 7.6  # the published mean


@pytest.mark.parametrize(("name", "scale"), [("dcase2016_task2", 0.01), ("maestro", 0.01)])
def test_event_labels_lie_in_their_clip_at_the_catalogue_density(
    tmp_path: Path, name: str, scale: float
) -> None:
    entry = TASKS[name]
    assert entry.sized is not None and entry.sized.events_per_minute is not None
    task = prepared(tmp_path, name, scale)
    assert task.metadata.evaluation_params == entry.extra_metadata.get("evaluation_params", {})
    short, long = entry.sized.event_seconds or (0, 0)
    events = 0
    minutes = 0.0
    for split in task.splits:
        for clip in task.clips(split):
            assert sf.info(task.audio_path(split, clip.file, 16000)).duration == 120.0
            minutes += 2
            for event in clip.events:
                assert 0 <= event.start < event.end <= 120_000
                assert short * 1000 - 1 <= event.end - event.start <= long * 1000 + 1
                events += 1
    assert events / minutes == pytest.approx(entry.sized.events_per_minute, rel=0.25)


def test_a_small_scene_task_is_learnable_far_above_chance(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    task = prepared(tmp_path, "speech_commands_5h", 0.01)  # 160 train, 49 test, 12 labels

    def features(split: str) -> tuple[np.ndarray, list[str]]:
        rows, labels = [], []
        for clip in task.clips(split):
            audio, _ = sf.read(task.audio_path(split, clip.file, 16000), dtype="float32")
            spectrum = np.abs(np.fft.rfft(audio, n=4096))[: 4096 // 2]
            rows.append(np.log(spectrum.reshape(64, -1).mean(axis=1) + 1e-6))
            labels.append(clip.labels[0])
        return np.array(rows), labels

    model = LogisticRegression(max_iter=2000).fit(*features("train"))
    accuracy = model.score(*features("test"))
    assert accuracy >= 0.8  # chance is 1/12


def folder_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode() + file.read_bytes())
    return digest.hexdigest()


def test_generation_is_deterministic_and_a_second_prepare_is_a_no_op(tmp_path: Path) -> None:
    first = sized.prepare(TASKS["tfds_gtzan_music_speech"], tmp_path / "a", "0.1", progress=False)
    again = sized.prepare(TASKS["tfds_gtzan_music_speech"], tmp_path / "b", "0.1", progress=False)
    assert folder_digest(first) == folder_digest(again)
    stamp = (first / "task_metadata.json").stat().st_mtime_ns
    assert sized.prepare(TASKS["tfds_gtzan_music_speech"], tmp_path / "a", "0.1") == first
    assert (first / "task_metadata.json").stat().st_mtime_ns == stamp


def test_the_cli_lists_the_sized_suite_and_prepares_a_filtered_fraction(tmp_path: Path) -> None:
    listed = hear("tasks", "list", "--tasks-dir", str(tmp_path), "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [row for row in json.loads(listed.stdout) if row["suite"] == "hear2021-sized"]
    assert sorted(row["name"] for row in rows) == sorted(f"sized_{t.name}" for t in CATALOGUE)
    made = hear("tasks", "prepare", "hear2021-sized", "--scale", "0.05", "--tasks",
                "gunshot_triangulation,sized_tfds_gtzan_music_speech", "--tasks-dir",
                str(tmp_path))  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "gunshot_triangulation-v1.0-sized0.05-full",
        "tfds_gtzan_music_speech-1.0.0-sized0.05-full",
    ]
    unknown = hear("tasks", "prepare", "hear2021-sized", "--tasks", "nope", "--tasks-dir",
                   str(tmp_path))  # fmt: skip
    assert unknown.returncode != 0 and "no task 'nope'" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1
    not_a_factor = hear("tasks", "prepare", "mini", "--scale", "0.5", "--tasks-dir", str(tmp_path))
    assert not_a_factor.returncode != 0 and "not '0.5'" in not_a_factor.stderr
