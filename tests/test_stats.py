"""Bootstrap intervals in every record, and `hear compare`'s paired test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hear_runner.errors import HearError
from hear_runner.metrics import get_metric
from hear_runner.results.compare import TIE, compare_models
from hear_runner.results.predictions import FoldPredictions, load_predictions
from hear_runner.results.records import (
    HEAREVAL_SCORES,
    FoldResult,
    ModelInfo,
    ProbeInfo,
    RunRecord,
    TaskInfo,
)
from hear_runner.results.stats import FoldScorer, bootstrap_interval, paired_bootstrap

LABELS = [str(i) for i in range(5)]


def hear(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hear_runner", *args], capture_output=True, text=True, timeout=600
    )


def scene_fold(
    accuracy: float, clips: int, seed: int = 0, name: str = "fold00", files: list[str] | None = None
) -> FoldPredictions:
    """Multiclass predictions right on ``accuracy`` of the clips (exactly, clips shuffled)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, len(LABELS), clips)
    right = rng.permutation(clips) < round(accuracy * clips)
    guess = np.where(right, truth, (truth + 1) % len(LABELS))
    eye = np.eye(len(LABELS), dtype=np.float32)
    return FoldPredictions(
        fold=name, seed=42, files=files or [f"{i}.wav" for i in range(clips)],
        targets=eye[truth].astype(np.uint8), scores=eye[guess] * 0.8 + 0.04,
    )  # fmt: skip


def record_with_predictions(
    model: str,
    task: str,
    folds: list[FoldPredictions],
    metric: str = "top1_acc",
    score: float | None = None,
    created: str = "2026-01-01T00:00:00+00:00",
    labels: list[str] = LABELS,
) -> RunRecord:
    """A record as `hear run` writes one, test predictions kept, for constructed cases."""
    m = get_metric(metric)
    values = [FoldScorer(f, labels, m).score() for f in folds]
    test_score = float(np.mean(values)) if score is None else score
    record = RunRecord(
        created=created,
        model=ModelInfo(
            name=model, kind="module", sample_rate=16000, scene_embedding_size=8,
            timestamp_embedding_size=8,
        ),
        task=TaskInfo(
            name=task, task_name=task.split("-")[0], version="1.0.0", mode="full", path="/nowhere",
            content_hash="0", embedding_type="scene", prediction_type="multiclass",
            split_mode="trainvaltest", clips={"test": len(folds[0].files) if folds else 0},
            source_sample_rate=16000,
        ),
        probe=ProbeInfo(mode="linear", config={}, selection_metric=metric),
        primary_metric=metric,
        test_score=test_score,
        scores={"valid": {metric: test_score}, "test": {metric: test_score}},
        folds=[
            FoldResult(
                fold=f.fold, train=["train"], valid="valid", test="test",
                scores={"test": {metric: v}}, best_epoch=0, epochs_trained=0, probe_seconds=0,
            )
            for f, v in zip(folds, values, strict=True)
        ],
        timings={},
    )  # fmt: skip
    if folds:
        record.keep_predictions(labels, folds)
    return record


# --- intervals ---------------------------------------------------------------------------


def test_a_run_records_an_interval_hardware_and_heareval_scores(
    digits_task: Path, tmp_path: Path
) -> None:
    result = hear(
        "run", "--model-module", "numpy_logmel", "--tasks-dir", str(digits_task.parent),
        "--task", digits_task.name, "--results-dir", str(tmp_path), "--probe", "linear",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [path] = (tmp_path / "numpy_logmel").glob("*.json")
    record = json.loads(path.read_text())
    low, high = record["test_score_ci"]
    assert low <= record["test_score"] <= high and high - low > 0.05  # 40 test clips
    assert record["bootstrap"]["resamples"] == 1000 and record["bootstrap"]["seed"] == 0
    assert record["timings"]["bootstrap"] < 5
    host = record["host"]
    assert host["cpu"] and host["cpu_count"] >= 1 and host["memory_bytes"] > 2**28
    assert host["torch"] and isinstance(host["gpus"], list)
    # The interval is reproducible from the predictions sidecar alone (fixed seed).
    labels, folds = load_predictions(path.parent / record["predictions_file"])
    again = bootstrap_interval(labels, folds, get_metric("top1_acc"))
    assert (again.low, again.high) == (low, high)
    # heareval's file in heareval's place: <results>/<model>/<task>/test.predicted-scores.json
    heareval = json.loads((path.parent / digits_task.name / HEAREVAL_SCORES).read_text())
    assert record["heareval_scores_file"] == f"{digits_task.name}/{HEAREVAL_SCORES}"
    assert heareval["test"]["test_score"] == record["test_score"]
    assert heareval["test"]["test_top1_acc"] == record["scores"]["test"]["top1_acc"]


def test_interval_narrows_with_more_clips_and_is_fixed_by_its_seed() -> None:
    metric = get_metric("top1_acc")
    small = bootstrap_interval(LABELS, [scene_fold(0.8, 50)], metric)
    large = bootstrap_interval(LABELS, [scene_fold(0.8, 800)], metric)
    for interval in (small, large):
        assert interval.low is not None and interval.high is not None
        assert interval.low < 0.8 < interval.high
    assert small.high - small.low > 2 * (large.high - large.low)  # about sqrt(16) = 4x
    assert bootstrap_interval(LABELS, [scene_fold(0.8, 50)], metric) == small
    other = bootstrap_interval(LABELS, [scene_fold(0.8, 800)], metric, seed=1)
    assert (other.low, other.high) != (large.low, large.high)  # another seed, other draws


def test_interval_resamples_within_each_fold_and_averages_folds() -> None:
    # Fold 0 is always right, fold 1 always wrong: every resample's mean over folds is 0.5.
    # Pooling the clips of both folds instead would spread it.
    folds = [scene_fold(1.0, 30, name="fold00"), scene_fold(0.0, 30, name="fold01")]
    interval = bootstrap_interval(LABELS, folds, get_metric("top1_acc"), resamples=200)
    assert (interval.low, interval.high) == (0.5, 0.5)
    # Two seeds of one fold share each draw of its clips.
    seeds = [scene_fold(0.7, 40, seed=3), scene_fold(0.7, 40, seed=3)]
    one = bootstrap_interval(LABELS, seeds[:1], get_metric("top1_acc"), resamples=200)
    both = bootstrap_interval(LABELS, seeds, get_metric("top1_acc"), resamples=200)
    assert (one.low, one.high) == (both.low, both.high)


def test_event_interval_counts_a_file_drawn_twice_twice() -> None:
    def events(file_index: int) -> list[dict]:
        return [{"label": "a", "start": 1000.0 * k, "end": 1000.0 * k + 500} for k in range(3)]

    files = [f"{i}.wav" for i in range(20)]
    reference = {f: events(i) for i, f in enumerate(files)}
    predicted = {f: (events(i) if i % 2 == 0 else []) for i, f in enumerate(files)}
    fold = FoldPredictions("fold00", 42, files, events=predicted, reference=reference)
    metric = get_metric("event_onset_200ms_fms")
    scorer = FoldScorer(fold, ["a"], metric)
    assert scorer.score(np.array([0, 0, 2])) == 1.0  # right files only
    # Nothing predicted: heareval's F-measure is NaN (precision 0/0); such draws are left out.
    assert np.isnan(scorer.score(np.array([1, 1, 3])))
    # Precision 1, recall 2/3 with a right file drawn twice and a missed one once.
    assert scorer.score(np.array([0, 0, 1])) == pytest.approx(2 * (2 / 3) / (1 + 2 / 3))
    full = scorer.score()
    interval = bootstrap_interval(["a"], [fold], metric)
    assert interval.resamples == 200 and interval.invalid == 0
    assert interval.low is not None and interval.high is not None
    assert interval.low < full < interval.high


# --- paired comparisons ------------------------------------------------------------------


def test_a_model_against_itself_is_a_tie() -> None:
    fold = scene_fold(0.7, 60)
    paired = paired_bootstrap(LABELS, [fold], [fold], get_metric("top1_acc"))
    assert paired.difference == 0 and paired.p_value == 1.0
    assert (paired.low, paired.high) == (0.0, 0.0)


def test_compare_names_the_better_model_and_ties_close_ones(tmp_path: Path) -> None:
    files = [f"{i}.wav" for i in range(80)]
    good, bad = scene_fold(0.9, 80, seed=1, files=files), scene_fold(0.5, 80, seed=1, files=files)
    # B's clips in another order: they are matched by file name.
    order = np.random.default_rng(5).permutation(80)
    shuffled = FoldPredictions(
        "fold00", 42, [files[i] for i in order], targets=bad.targets[order],
        scores=bad.scores[order],
    )  # fmt: skip
    close = scene_fold(0.9, 80, seed=1, files=files)
    close.scores = close.scores.copy()
    close.scores[0] = close.scores[0][::-1]  # one clip changed: a 1/80 difference at most
    for model, fold in (("good", good), ("bad", shuffled), ("close", close)):
        record_with_predictions(model, "toy-1.0.0-full", [fold]).write(tmp_path)

    rows, _ = compare_models(tmp_path, "good", "bad")
    [row] = rows
    assert row.verdict == "A better" and row.better == "good"
    assert row.score_a == pytest.approx(0.9) and row.score_b == pytest.approx(0.5)
    assert row.difference == pytest.approx(0.4) and row.p_value < 0.01
    assert row.ci_low is not None and row.ci_high is not None and 0 < row.ci_low < 0.4 < row.ci_high
    [reverse], _ = compare_models(tmp_path, "bad", "good")
    assert reverse.verdict == "B better" and reverse.better == "good"
    assert reverse.difference == pytest.approx(-0.4)
    [tie], _ = compare_models(tmp_path, "good", "close")
    assert tie.verdict == TIE and tie.p_value > 0.05


def test_compare_refuses_records_of_different_test_files(tmp_path: Path) -> None:
    record_with_predictions("a", "toy-1.0.0-full", [scene_fold(0.9, 20)]).write(tmp_path)
    other = scene_fold(0.9, 20, files=[f"other{i}.wav" for i in range(20)])
    record_with_predictions("b", "toy-1.0.0-full", [other]).write(tmp_path)
    with pytest.raises(HearError, match=r"toy-1\.0\.0-full: fold 'fold00'.*different files"):
        compare_models(tmp_path, "a", "b")
    with pytest.raises(HearError, match="no records of model 'c'"):
        compare_models(tmp_path, "a", "c")


def test_compare_command_prints_a_table_and_json(tmp_path: Path) -> None:
    files = [f"{i}.wav" for i in range(60)]
    for model, accuracy in (("good", 0.95), ("bad", 0.4)):
        fold = scene_fold(accuracy, 60, seed=2, files=files)
        record_with_predictions(model, "toy-1.0.0-full", [fold]).write(tmp_path)
    table = hear("compare", "good", "bad", "--results-dir", str(tmp_path))
    assert table.returncode == 0, table.stderr
    assert "A better (good)" in table.stdout and "+0.550" in table.stdout
    result = hear("compare", "good", "bad", "--results-dir", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    [row] = json.loads(result.stdout)["tasks"]
    assert row["verdict"] == "A better" and row["resamples"] == 1000
    missing = hear("compare", "good", "nobody", "--results-dir", str(tmp_path))
    assert missing.returncode != 0 and "no records of model 'nobody'" in missing.stderr
