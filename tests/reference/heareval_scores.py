"""heareval 2021.1.3's own scores for the cases of make_cases.py, as JSON.

Runs in a separate environment that has heareval (it pins numpy 1.19 and needs dcase_util):

    python3 -m venv /tmp/heareval-venv
    /tmp/heareval-venv/bin/pip install --no-deps heareval==2021.1.3
    /tmp/heareval-venv/bin/pip install numpy==1.26.4 scikit-learn scipy pandas \
        sed_eval dcase_util torch "setuptools<81"
    /tmp/heareval-venv/bin/python tests/reference/heareval_scores.py CASES.json OUT.json

An error heareval raises is recorded as ``{"error": "<exception type>"}``.
"""

from __future__ import annotations

import json
import sys
import warnings
from importlib.metadata import version
from typing import Any

import numpy as np

warnings.simplefilter("ignore")

from heareval.score import SegmentBasedScore, available_scores  # noqa: E402

SCENE = ["top1_acc", "pitch_acc", "chroma_acc", "mAP", "d_prime", "aucroc"]
EVENT = [
    "event_onset_200ms_fms",
    "event_onset_50ms_fms",
    "event_onset_offset_50ms_20perc_fms",
    "segment_1s_er",
]
# segment_1s_er reports only error_rate; its sed_eval parts come from the same class.
SEGMENT_PARTS = ("error_rate", "substitution_rate", "deletion_rate", "insertion_rate")


def _call(fn: Any, *args: Any) -> Any:
    try:
        ret = fn(*args)
    except Exception as e:
        return {"error": type(e).__name__}
    if isinstance(ret, tuple):
        return {name: float(value) for name, value in ret}
    return float(ret)


def scene_scores(case: dict[str, Any]) -> dict[str, Any]:
    label_to_idx = {label: i for i, label in enumerate(case["labels"])}
    n_labels = len(case["labels"])
    targets = np.array(case["targets"], dtype=np.float64).reshape(-1, n_labels)
    scores = np.array(case["scores"], dtype=np.float64).reshape(-1, n_labels) / case["scale"]
    # heareval's score functions take (predictions, targets).
    return {
        name: _call(available_scores[name](label_to_idx=label_to_idx), scores, targets)
        for name in SCENE
    }


def event_scores(case: dict[str, Any]) -> dict[str, Any]:
    label_to_idx = {label: i for i, label in enumerate(case["labels"])}
    out = {}
    for name in EVENT:
        fn = available_scores[name](label_to_idx=label_to_idx)
        out[name] = _call(fn, case["predicted"], case["reference"])
    parts = SegmentBasedScore(
        label_to_idx=label_to_idx,
        scores=SEGMENT_PARTS,
        params={"time_resolution": 1.0},
        name="segment_1s_er",
        maximize=False,
    )
    full = _call(parts, case["predicted"], case["reference"])
    if "error" not in full:
        assert full["error_rate"] == out["segment_1s_er"]["error_rate"]
        out["segment_1s_er"] = full
    return out


def main(cases_path: str, out_path: str) -> None:
    with open(cases_path) as f:
        cases = json.load(f)
    result = {
        "versions": {
            p: version(p)
            for p in ("heareval", "sed_eval", "dcase_util", "scikit-learn", "scipy", "numpy")
        },
        "scene": {case["id"]: scene_scores(case) for case in cases["scene"]},
        "event": {case["id"]: event_scores(case) for case in cases["event"]},
    }
    with open(out_path, "w") as f:
        # Insertion order kept: the primary sub-score comes first, as heareval returns it.
        json.dump(result, f, indent=0)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
