"""Event metrics as heareval 2021.1.3 computes them with sed_eval 0.2.1, quirks included.

heareval hands its label files to dcase_util's MetaDataContainer and sed_eval's
EventBasedMetrics / SegmentBasedMetrics. dcase_util cannot be imported with current setuptools
(it needs ``pkg_resources``) and drags in librosa, numba and matplotlib, so the few parts that
heareval uses are reimplemented here, operation for operation; tests/test_metrics_reference.py
proves equality against heareval itself.

Each ``score(reference, predicted, labels)`` takes ``{file: [{"label", "start", "end"}]}``
(milliseconds, heareval's label-file shape) and the vocabulary, and returns heareval's
sub-scores with the primary one first.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

Events = dict[str, list[dict[str, Any]]]
EventScoreFn = Callable[[Events, Events, list[str]], dict[str, float]]

# sed_eval's default eps in its rate denominators.
_EPS = float(np.spacing(1))


@dataclass(frozen=True)
class _Event:
    file: Any
    label: str | None
    onset: float
    offset: float


def _file_key(name: Any) -> Any:
    """dcase_util stores relative names normpath'd with '/'; lookups use the raw name."""
    if isinstance(name, str) and not os.path.isabs(name):
        return os.path.normpath(name).replace("\\", "/")
    return name


def _label(label: Any) -> str | None:
    """heareval str()s the label; dcase_util strips it and reads '' or 'none' (any case) as None."""
    text = str(label).strip()
    return None if text == "" or text.lower() == "none" else text


def _events(x: Events) -> list[_Event]:
    return [
        # heareval converts milliseconds to seconds by dividing by 1000.0.
        _Event(_file_key(name), _label(e["label"]), e["start"] / 1000.0, e["end"] / 1000.0)
        for name, events in x.items()
        for e in events
    ]


def _by_file(x: Events) -> dict[Any, list[_Event]]:
    groups: dict[Any, list[_Event]] = {}
    for e in _events(x):
        groups.setdefault(e.file, []).append(e)
    return groups


def _per_file(reference: Events, predicted: Events) -> list[tuple[list[_Event], list[_Event]]]:
    """Quirk: only the predicted files are evaluated; reference-only files are ignored."""
    ref, est = _by_file(reference), _by_file(predicted)
    return [(ref.get(name, []), est.get(name, [])) for name in predicted]


def _precision_recall_f(ntp: float, nsys: float, nref: float) -> dict[str, float]:
    # sed_eval: NaN precision/recall on an empty denominator, F 0 only when both are exactly 0.
    precision = math.nan if nsys == 0 else ntp / nsys
    recall = math.nan if nref == 0 else ntp / nref
    if precision == 0 and recall == 0:
        f_measure = 0.0
    else:
        f_measure = 2.0 * precision * recall / (1.0 * precision + recall)
    return {"f_measure": f_measure, "precision": precision, "recall": recall}


def _event_based(
    reference: Events,
    predicted: Events,
    t_collar: float,
    evaluate_offset: bool,
    percentage_of_length: float = 0.5,
) -> dict[str, float]:
    """sed_eval's overall event-based F: optimal one-to-one matching, file by file.

    Quirk: overall counts take every event, so labels outside the vocabulary still count (and
    match each other); the vocabulary only shapes sed_eval's class-wise scores, unused here.
    """
    ntp = nsys = nref = 0.0
    for ref, est in _per_file(reference, predicted):
        nref += len(ref)
        nsys += len(est)
        if not ref or not est:
            continue
        ids: dict[str | None, int] = {}
        ref_label = np.array([ids.setdefault(e.label, len(ids)) for e in ref])
        est_label = np.array([ids.setdefault(e.label, len(ids)) for e in est])
        ref_on = np.array([e.onset for e in ref], dtype=np.float64)
        ref_off = np.array([e.offset for e in ref], dtype=np.float64)
        est_on = np.array([e.onset for e in est], dtype=np.float64)
        est_off = np.array([e.offset for e in est], dtype=np.float64)
        hit = ref_label[:, None] == est_label[None, :]
        hit &= np.abs(ref_on[:, None] - est_on[None, :]) <= t_collar
        if evaluate_offset:
            # The offset may miss by the collar or by a fraction of the reference's length.
            relative = percentage_of_length * (ref_off - ref_on)
            tolerance = np.where(relative > t_collar, relative, t_collar)  # Python's max()
            hit &= np.abs(ref_off[:, None] - est_off[None, :]) <= tolerance[:, None]
        if hit.any():
            matching = maximum_bipartite_matching(csr_matrix(hit), perm_type="column")
            ntp += int(np.count_nonzero(matching >= 0))
    return _precision_recall_f(ntp, nsys, nref)


def _max_offset(events: list[_Event]) -> float:
    # dcase_util's max_offset starts from 0, so negative offsets never count.
    longest: float = 0
    for e in events:
        if e.offset > longest:
            longest = e.offset
    return longest


def _event_roll(events: list[_Event], labels: list[str], resolution: float) -> np.ndarray:
    """sed_eval's roll: segments floor(onset / r) to ceil(offset / r), numpy slice semantics."""
    column: dict[str | None, int] = {}
    for i, label in enumerate(labels):
        column.setdefault(label, i)
    roll = np.zeros((math.ceil(_max_offset(events) * 1 / resolution), len(labels)))
    for e in events:
        if e.label not in column:
            # sed_eval looks the label up with list.index: an unknown label raises.
            raise ValueError(f"{e.label!r} is not in the label vocabulary")
        start = math.floor(e.onset * 1 / float(resolution))
        stop = math.ceil(e.offset * 1 / float(resolution))
        roll[start:stop, column[e.label]] = 1
    return roll


def _pad(roll: np.ndarray, length: int) -> np.ndarray:
    if length < roll.shape[0]:
        return roll[:length]
    return np.vstack((roll, np.zeros((length - roll.shape[0], roll.shape[1]))))


def _segment_based(
    reference: Events, predicted: Events, labels: list[str], resolution: float
) -> dict[str, float]:
    """sed_eval's overall segment-based error rate (and its parts), file by file.

    Each file spans the ceiling of its last offset (reference or predicted) in segments.
    """
    subs = dels = ins = nref = 0.0
    for ref, est in _per_file(reference, predicted):
        ref_roll = _event_roll(ref, labels, resolution)
        est_roll = _event_roll(est, labels, resolution)
        seconds = max(_max_offset(ref), _max_offset(est))
        length = math.ceil(seconds * 1 / float(resolution))
        ref_roll, est_roll = _pad(ref_roll, length), _pad(est_roll, length)
        # Per segment: S = min(Nref, Nsys) - Ntp, D = max(0, Nref - Nsys), I = max(0, Nsys - Nref).
        tp = np.count_nonzero(ref_roll + est_roll > 1, axis=1)
        n_ref, n_sys = ref_roll.sum(axis=1), est_roll.sum(axis=1)
        subs += float(np.sum(np.minimum(n_ref, n_sys) - tp))
        dels += float(np.sum(np.maximum(0, n_ref - n_sys)))
        ins += float(np.sum(np.maximum(0, n_sys - n_ref)))
        nref += float(np.sum(n_ref))
    # sed_eval adds eps to the denominator: no reference at all gives a huge, finite rate.
    substitution_rate = subs / (nref + _EPS)
    deletion_rate = dels / (nref + _EPS)
    insertion_rate = ins / (nref + _EPS)
    return {
        "error_rate": substitution_rate + deletion_rate + insertion_rate,
        "substitution_rate": substitution_rate,
        "deletion_rate": deletion_rate,
        "insertion_rate": insertion_rate,
    }


def event_onset_200ms_fms(
    reference: Events, predicted: Events, labels: list[str]
) -> dict[str, float]:
    """Event-based F-measure, onsets within 200 ms, offsets ignored."""
    return _event_based(reference, predicted, t_collar=0.2, evaluate_offset=False)


def event_onset_50ms_fms(
    reference: Events, predicted: Events, labels: list[str]
) -> dict[str, float]:
    """Event-based F-measure, onsets within 50 ms, offsets ignored."""
    return _event_based(reference, predicted, t_collar=0.05, evaluate_offset=False)


def event_onset_offset_50ms_20perc_fms(
    reference: Events, predicted: Events, labels: list[str]
) -> dict[str, float]:
    """Event-based F-measure, onsets within 50 ms, offsets within max(50 ms, 20% of length)."""
    return _event_based(
        reference, predicted, t_collar=0.05, evaluate_offset=True, percentage_of_length=0.2
    )


def segment_1s_er(reference: Events, predicted: Events, labels: list[str]) -> dict[str, float]:
    """Segment-based error rate on 1 s segments (heareval reports only ``error_rate``)."""
    return _segment_based(reference, predicted, labels, resolution=1.0)


EVENT_METRICS: dict[str, EventScoreFn] = {
    "event_onset_200ms_fms": event_onset_200ms_fms,
    "event_onset_50ms_fms": event_onset_50ms_fms,
    "event_onset_offset_50ms_20perc_fms": event_onset_offset_50ms_20perc_fms,
    "segment_1s_er": segment_1s_er,
}

HIGHER_IS_BETTER: dict[str, bool] = {
    "event_onset_200ms_fms": True,
    "event_onset_50ms_fms": True,
    "event_onset_offset_50ms_20perc_fms": True,
    "segment_1s_er": False,
}
