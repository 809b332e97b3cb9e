"""hear-runner's metrics equal heareval 2021.1.3's own score functions, quirks included.

heareval lives in another environment (it pins numpy 1.19 and needs dcase_util), so its scores
for the random cases in tests/reference/heareval_cases.json are committed in
heareval_expected.json. With HEAR_REFERENCE_PYTHON pointing at an interpreter that has heareval,
they are recomputed live (see tests/reference/heareval_scores.py), and the committed fixture
must match them too.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hear_core import metrics as scene
from hear_core.event_metrics import EVENT_METRICS, HIGHER_IS_BETTER

from hear_runner.metrics import metrics

REFERENCE = Path(__file__).parent / "reference"
CASES = REFERENCE / "heareval_cases.json"
EXPECTED = REFERENCE / "heareval_expected.json"
SCENE_NAMES = ["top1_acc", "pitch_acc", "chroma_acc", "mAP", "d_prime", "aucroc"]
TOLERANCE = 1e-6


def _load(path: Path) -> Any:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def cases() -> dict[str, Any]:
    return _load(CASES)


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    committed = _load(EXPECTED)
    python = os.environ.get("HEAR_REFERENCE_PYTHON")
    if not python:
        return committed
    out = tmp_path_factory.mktemp("heareval") / "expected.json"
    subprocess.run(
        [python, str(REFERENCE / "heareval_scores.py"), str(CASES), str(out)],
        check=True,
        timeout=600,
    )
    live = _load(out)
    mismatches = _compare_all(live, committed)
    assert not mismatches, f"committed fixture differs from live heareval: {mismatches[:5]}"
    return live


def _same(ours: float, theirs: float) -> bool:
    if math.isnan(theirs) or math.isnan(ours):
        return math.isnan(theirs) and math.isnan(ours)
    if math.isinf(theirs) or math.isinf(ours):
        return ours == theirs
    # Segment error rates over an empty reference reach ~1e16 (eps denominators): compare relatively.
    return math.isclose(ours, theirs, rel_tol=1e-12, abs_tol=TOLERANCE)


def _compare(ours: Any, theirs: Any) -> bool:
    if isinstance(theirs, dict) and "error" in theirs:
        return isinstance(ours, dict) and ours.get("error") == theirs["error"]
    if isinstance(theirs, dict):
        return (
            isinstance(ours, dict)
            and list(ours) == list(theirs)
            and all(_same(ours[k], theirs[k]) for k in theirs)
        )
    return isinstance(ours, float) and _same(ours, theirs)


def _compare_all(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return [
        f"{kind}/{case}/{name}: {a[kind][case][name]} != {b[kind][case].get(name)}"
        for kind in ("scene", "event")
        for case in a[kind]
        for name in a[kind][case]
        if not _compare(a[kind][case][name], b[kind][case].get(name))
    ]


def _ours(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        ret = fn(*args)
    except Exception as e:
        return {"error": type(e).__name__}
    return {k: float(v) for k, v in ret.items()} if isinstance(ret, dict) else ret


def _scene_arrays(case: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    n_labels = len(case["labels"])
    targets = np.array(case["targets"], dtype=np.float64).reshape(-1, n_labels)
    scores = np.array(case["scores"], dtype=np.float64).reshape(-1, n_labels) / case["scale"]
    return targets, scores


def _max_abs_diff(ours: Any, theirs: Any) -> float:
    pairs = (
        [(ours, theirs)]
        if isinstance(theirs, float)
        else list(zip(ours.values(), theirs.values(), strict=True))
    )
    finite = [abs(a - b) for a, b in pairs if math.isfinite(a) and math.isfinite(b)]
    return max(finite, default=0.0)


@pytest.mark.filterwarnings("ignore")  # sklearn's and numpy's, on the degenerate cases
@pytest.mark.parametrize("name", SCENE_NAMES)
def test_scene_metric_equals_heareval(
    name: str, cases: dict[str, Any], expected: dict[str, Any]
) -> None:
    fn = scene.SCENE_METRICS[name]
    bad, worst, finite = [], 0.0, 0
    for case in cases["scene"]:
        targets, scores = _scene_arrays(case)
        ours, theirs = (
            _ours(fn, targets, scores, case["labels"]),
            expected["scene"][case["id"]][name],
        )
        if not _compare(ours, theirs):
            bad.append(f"{case['id']}: ours {ours}, heareval {theirs}")
        elif isinstance(theirs, float):
            worst = max(worst, _max_abs_diff(ours, theirs))
            finite += math.isfinite(theirs)
    assert not bad, f"{len(bad)} of {len(cases['scene'])} cases differ:\n" + "\n".join(bad[:10])
    assert finite >= 100, "too few cases with a finite value to compare"
    print(f"{name}: {len(cases['scene'])} cases, {finite} finite, max |diff| {worst:.3g}")


@pytest.mark.parametrize("name", list(EVENT_METRICS))
def test_event_metric_equals_heareval(
    name: str, cases: dict[str, Any], expected: dict[str, Any]
) -> None:
    fn = EVENT_METRICS[name]
    bad, worst = [], 0.0
    for case in cases["event"]:
        ours = _ours(fn, case["reference"], case["predicted"], case["labels"])
        theirs = expected["event"][case["id"]][name]
        if not _compare(ours, theirs):
            bad.append(f"{case['id']}: ours {ours}, heareval {theirs}")
        elif "error" not in theirs:
            worst = max(worst, _max_abs_diff(ours, theirs))
    assert not bad, f"{len(bad)} of {len(cases['event'])} cases differ:\n" + "\n".join(bad[:10])
    print(f"{name}: {len(cases['event'])} cases, max |diff| {worst:.3g}")


def test_cases_file_is_what_the_generator_makes() -> None:
    spec = importlib.util.spec_from_file_location("make_cases", REFERENCE / "make_cases.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_cases"] = module
    spec.loader.exec_module(module)
    assert module.dumps(module.make_cases()) == CASES.read_text()


def test_fixture_covers_every_case_and_metric(cases: dict[str, Any]) -> None:
    committed = _load(EXPECTED)
    assert committed["versions"]["heareval"] == "2021.1.3"
    assert set(committed["scene"]) == {c["id"] for c in cases["scene"]}
    assert set(committed["event"]) == {c["id"] for c in cases["event"]}
    assert all(set(v) == set(SCENE_NAMES) for v in committed["scene"].values())
    assert all(set(v) == set(EVENT_METRICS) for v in committed["event"].values())
    assert CASES.stat().st_size + EXPECTED.stat().st_size < 2_000_000


# ---- Known values, computed by hand ----------------------------------------------------------

ONE_HOT = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=float)


def test_top1_and_pitch_acc_take_the_first_argmax() -> None:
    scores = np.array([[0.5, 0.5, 0.0], [0.1, 0.8, 0.1], [0.4, 0.4, 0.2], [0.2, 0.7, 0.1]])
    # Ties go to the first column: rows 0 and 1 right, rows 2 and 3 wrong.
    assert scene.top1_acc(ONE_HOT, scores, ["a", "b", "c"]) == 0.5
    assert scene.pitch_acc(ONE_HOT, scores, ["a", "b", "c"]) == 0.5
    multi_hot = np.array([[0, 1, 1], [1, 1, 0]], dtype=float)
    # A multi-hot target counts only its first positive column.
    assert (
        scene.top1_acc(multi_hot, np.array([[0, 0, 1], [1, 0, 0]], float), ["a", "b", "c"]) == 0.5
    )


def test_top1_acc_of_no_clips_raises_like_heareval() -> None:
    with pytest.raises(ZeroDivisionError):
        scene.top1_acc(np.zeros((0, 3)), np.zeros((0, 3)), ["a", "b", "c"])
    with pytest.raises(ValueError):
        scene.top1_acc(np.zeros(3), np.zeros(3), ["a", "b", "c"])


def test_chroma_acc_compares_column_indices_mod_12() -> None:
    labels = [str(60 + i) for i in range(25)]
    targets = np.eye(25)[[0, 1, 2, 24]]
    scores = np.eye(25)[[12, 13, 2, 0]]  # octave errors, a hit, two octaves off
    assert scene.chroma_acc(targets, scores, labels) == 1.0
    assert scene.top1_acc(targets, scores, labels) == 0.25
    # The labels are never read: an unsorted vocabulary gives the same answer.
    assert scene.chroma_acc(targets, scores, labels[::-1]) == 1.0
    assert scene.chroma_acc(targets, np.eye(25)[[11, 1, 2, 0]], labels) == 0.75


def test_map_is_the_macro_average_precision() -> None:
    targets = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], dtype=float)
    scores = np.array([[0.9, 0.1], [0.8, 0.7], [0.3, 0.6], [0.2, 0.4]])
    # In both columns the positives rank 1st and 3rd: AP (1/1 + 2/3) / 2.
    assert scene.mean_average_precision(targets, scores, []) == pytest.approx((1 + 2 / 3) / 2)


def test_map_counts_a_label_without_positives_as_zero() -> None:
    targets = np.array([[1, 0], [0, 0], [1, 0]], dtype=float)
    scores = np.array([[0.9, 0.5], [0.1, 0.2], [0.8, 0.3]])
    with pytest.warns(UserWarning):
        assert scene.mean_average_precision(targets, scores, []) == 0.5


def test_aucroc_and_d_prime() -> None:
    targets = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], dtype=float)
    scores = np.array([[0.9, 0.1], [0.8, 0.7], [0.3, 0.6], [0.2, 0.4]])
    # Column 0: AUC 3/4 (0.9 beats both negatives, 0.3 beats 0.2); column 1: 0.7 and 0.4 vs 0.1 and 0.6 -> 3/4.
    assert scene.aucroc(targets, scores, []) == pytest.approx(0.75)
    from scipy.stats import norm

    assert scene.d_prime(targets, scores, []) == pytest.approx(math.sqrt(2) * norm.ppf(0.75))


def test_aucroc_and_d_prime_are_nan_when_a_label_has_one_class() -> None:
    targets = np.array([[1, 0], [0, 0], [1, 0]], dtype=float)
    scores = np.array([[0.9, 0.5], [0.1, 0.2], [0.8, 0.3]])
    with pytest.warns(Warning):
        assert math.isnan(scene.aucroc(targets, scores, []))
    with pytest.warns(Warning):
        assert math.isnan(scene.d_prime(targets, scores, []))


def test_d_prime_is_infinite_for_a_perfect_ranking() -> None:
    assert scene.d_prime(ONE_HOT, ONE_HOT, []) == math.inf
    # AUC 1 on one label and 0 on another: inf - inf.
    inverted = ONE_HOT.copy()
    inverted[:, 1] = 1 - inverted[:, 1]
    with pytest.warns(RuntimeWarning):
        assert math.isnan(scene.d_prime(ONE_HOT, inverted, []))


def test_scene_metrics_are_registered_under_heareval_names() -> None:
    found = metrics()
    for name in SCENE_NAMES:
        assert found[name].plugin == "core_metrics"
        assert found[name].higher_is_better is True
        assert found[name].score is scene.SCENE_METRICS[name]


def _ev(label: str, start: float, end: float) -> dict[str, Any]:
    return {"label": label, "start": start, "end": end}


def test_onset_collars_include_their_edge() -> None:
    reference = {"f.wav": [_ev("dog", 1000, 2000), _ev("cat", 3000, 3500)]}
    # 1.2 - 1.0 is 0.19999999999999996 s, within 200 ms; 50 ms off is within 50 ms too.
    predicted = {"f.wav": [_ev("dog", 1200, 2000), _ev("cat", 3050, 9000)]}
    assert EVENT_METRICS["event_onset_200ms_fms"](reference, predicted, ["dog", "cat"]) == {
        "f_measure": 1.0,
        "precision": 1.0,
        "recall": 1.0,
    }
    fifty = EVENT_METRICS["event_onset_50ms_fms"](reference, predicted, ["dog", "cat"])
    assert fifty == {"f_measure": 0.5, "precision": 0.5, "recall": 0.5}


def test_offsets_within_collar_or_a_fifth_of_the_length() -> None:
    reference = {"f.wav": [_ev("dog", 0, 1000), _ev("dog", 5000, 5100)]}
    # First: offset 180 ms off, within 20% of 1 s. Second: 60 ms off, beyond max(50 ms, 20 ms).
    predicted = {"f.wav": [_ev("dog", 0, 1180), _ev("dog", 5000, 5160)]}
    score = EVENT_METRICS["event_onset_offset_50ms_20perc_fms"]
    assert score(reference, predicted, ["dog"]) == {
        "f_measure": 0.5,
        "precision": 0.5,
        "recall": 0.5,
    }


def test_matching_is_optimal_and_one_to_one() -> None:
    # A greedy match would pair the first reference with the middle detection and lose one.
    reference = {"f.wav": [_ev("dog", 1000, 1500), _ev("dog", 1300, 1800)]}
    predicted = {"f.wav": [_ev("dog", 1150, 1500), _ev("dog", 950, 1500), _ev("dog", 1150, 1600)]}
    result = EVENT_METRICS["event_onset_200ms_fms"](reference, predicted, ["dog"])
    assert result["recall"] == 1.0 and result["precision"] == pytest.approx(2 / 3)
    assert result["f_measure"] == pytest.approx(0.8)


def test_only_predicted_files_count_and_empty_output_is_nan() -> None:
    reference = {"a.wav": [_ev("dog", 0, 500)], "b.wav": [_ev("dog", 0, 500)]}
    result = EVENT_METRICS["event_onset_200ms_fms"](
        reference, {"a.wav": [_ev("dog", 0, 500)]}, ["dog"]
    )
    assert result == {"f_measure": 1.0, "precision": 1.0, "recall": 1.0}
    empty = EVENT_METRICS["event_onset_200ms_fms"](reference, {"a.wav": []}, ["dog"])
    assert math.isnan(empty["precision"]) and math.isnan(empty["f_measure"])
    assert empty["recall"] == 0.0


def test_labels_outside_the_vocabulary_still_match_in_event_scores() -> None:
    reference = {"f.wav": [_ev("owl", 0, 500)]}
    predicted = {"f.wav": [_ev(" owl ", 0, 500)]}  # stripped by dcase_util
    assert EVENT_METRICS["event_onset_50ms_fms"](reference, predicted, ["dog"])["f_measure"] == 1.0
    with pytest.raises(ValueError):
        EVENT_METRICS["segment_1s_er"](reference, predicted, ["dog"])


def test_segment_error_rate_by_hand() -> None:
    # Reference dog in segments 0-1 and cat in 2; prediction dog in 1-2 (1.5 s to 2.5 s -> 1, 2).
    reference = {"f.wav": [_ev("dog", 0, 2000), _ev("cat", 2100, 2900)]}
    predicted = {"f.wav": [_ev("dog", 1500, 2500)]}
    # Segment 0: D; segment 1: hit; segment 2: cat vs dog -> S. Nref 3.
    result = EVENT_METRICS["segment_1s_er"](reference, predicted, ["dog", "cat"])
    assert list(result) == ["error_rate", "substitution_rate", "deletion_rate", "insertion_rate"]
    assert result["error_rate"] == pytest.approx(2 / 3)
    assert result["substitution_rate"] == pytest.approx(1 / 3)
    assert result["deletion_rate"] == pytest.approx(1 / 3)
    assert result["insertion_rate"] == 0.0


def test_segment_error_rate_without_reference_divides_by_eps() -> None:
    result = EVENT_METRICS["segment_1s_er"]({}, {"f.wav": [_ev("dog", 0, 1000)]}, ["dog"])
    assert result["error_rate"] == 1 / np.spacing(1)


def test_event_metric_directions() -> None:
    assert set(HIGHER_IS_BETTER) == set(EVENT_METRICS)
    assert HIGHER_IS_BETTER["segment_1s_er"] is False
    assert all(HIGHER_IS_BETTER[n] for n in EVENT_METRICS if n.endswith("_fms"))
