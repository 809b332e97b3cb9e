"""The event-based F-measures of event_metrics.py on event arrays, in one matching per call.

event_metrics.py (the reference, proven equal to heareval) builds an object per event and a
hit matrix per file. A probe's selection scores thousands of predicted event lists, so here
the same counts come from arrays: candidate pairs are found by sorting (file, label, onset)
and searching a window around each reference onset, the reference's exact tests are applied
to those pairs, and one maximum matching over the block-diagonal graph of all files gives
the sum of the per-file maximum matchings. Every quirk of the reference is kept (only
predicted files count, looked up by raw name; labels compared after dcase_util's cleaning);
tests/test_event_arrays.py asserts equality with the reference on random cases.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from hear_core.event_metrics import _file_key, _label, _precision_recall_f
from hear_runner.api import EventArrays

EventArrayScoreFn = Callable[[EventArrays, EventArrays, list[str]], dict[str, float]]

#: Extra seconds around each onset window: candidates only, the exact test comes after.
_SLACK = 0.01


def _evaluated_file(events: EventArrays, predicted_names: dict[str, int]) -> np.ndarray:
    """Each event's evaluated file (an index into the predicted names), -1 if not evaluated.

    The reference groups events by their normalized name and looks groups up by the
    predicted files' raw names.
    """
    table = np.array(
        [predicted_names.get(_file_key(name), -1) for name in events.files] + [-1],
        dtype=np.int64,
    )
    return table[events.file] if len(events) else np.zeros(0, np.int64)


def _label_ids(reference: EventArrays, predicted: EventArrays) -> tuple[np.ndarray, np.ndarray]:
    ids: dict[str | None, int] = {}

    def table(labels: list[str]) -> np.ndarray:
        return np.array([ids.setdefault(_label(x), len(ids)) for x in labels] + [-1], np.int64)

    ref_table, est_table = table(reference.labels), table(predicted.labels)
    return ref_table[reference.label], est_table[predicted.label]


def _event_based(
    reference: EventArrays,
    predicted: EventArrays,
    t_collar: float,
    evaluate_offset: bool,
    percentage_of_length: float = 0.5,
) -> dict[str, float]:
    names = {name: i for i, name in enumerate(predicted.files)}
    ref_file, est_file = _evaluated_file(reference, names), _evaluated_file(predicted, names)
    ref_label, est_label = _label_ids(reference, predicted)
    ref_kept, est_kept = ref_file >= 0, est_file >= 0
    nref, nsys = float(np.count_nonzero(ref_kept)), float(np.count_nonzero(est_kept))
    ntp = 0
    if nref and nsys:
        ntp = _matches(
            ref_file[ref_kept], ref_label[ref_kept], reference.start[ref_kept] / 1000.0,
            reference.end[ref_kept] / 1000.0, est_file[est_kept], est_label[est_kept],
            predicted.start[est_kept] / 1000.0, predicted.end[est_kept] / 1000.0,
            t_collar, evaluate_offset, percentage_of_length,
        )  # fmt: skip
    return _precision_recall_f(float(ntp), nsys, nref)


def _matches(
    ref_file: np.ndarray,
    ref_label: np.ndarray,
    ref_on: np.ndarray,
    ref_off: np.ndarray,
    est_file: np.ndarray,
    est_label: np.ndarray,
    est_on: np.ndarray,
    est_off: np.ndarray,
    t_collar: float,
    evaluate_offset: bool,
    percentage_of_length: float,
) -> int:
    """The size of a maximum one-to-one matching of hits, every file at once."""
    n_labels = int(max(ref_label.max(), est_label.max())) + 1
    ref_group = ref_file * n_labels + ref_label
    est_group = est_file * n_labels + est_label
    order = np.lexsort((est_on, est_group))
    group_sorted, on_sorted = est_group[order], est_on[order]
    # Within a group the predicted onsets are sorted: search the window by group, then onset.
    begin = np.searchsorted(group_sorted, ref_group, side="left")
    end = np.searchsorted(group_sorted, ref_group, side="right")
    lo = np.empty_like(begin)
    hi = np.empty_like(end)
    for g in np.unique(ref_group[end > begin]).tolist():  # a loop per (file, label) group
        members = np.flatnonzero(ref_group == g)
        a, b = int(begin[members[0]]), int(end[members[0]])
        window = on_sorted[a:b]
        lo[members] = a + np.searchsorted(window, ref_on[members] - t_collar - _SLACK, "left")
        hi[members] = a + np.searchsorted(window, ref_on[members] + t_collar + _SLACK, "right")
    empty = end <= begin
    lo[empty] = hi[empty] = 0
    counts = hi - lo
    if not counts.sum():
        return 0
    ref_index = np.repeat(np.arange(len(ref_on)), counts)
    starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
    est_index = order[starts + np.arange(len(ref_index))]
    # The reference's tests, pair by pair.
    hit = np.abs(ref_on[ref_index] - est_on[est_index]) <= t_collar
    if evaluate_offset:
        relative = percentage_of_length * (ref_off - ref_on)
        tolerance = np.where(relative > t_collar, relative, t_collar)
        hit &= np.abs(ref_off[ref_index] - est_off[est_index]) <= tolerance[ref_index]
    if not hit.any():
        return 0
    graph = csr_matrix(
        (np.ones(int(hit.sum()), np.int8), (ref_index[hit], est_index[hit])),
        shape=(len(ref_on), len(est_on)),
    )
    matching = maximum_bipartite_matching(graph, perm_type="column")
    return int(np.count_nonzero(matching >= 0))


def _metric(t_collar: float, evaluate_offset: bool, percentage: float = 0.5) -> EventArrayScoreFn:
    def score(
        reference: EventArrays, predicted: EventArrays, labels: list[str]
    ) -> dict[str, float]:
        return _event_based(reference, predicted, t_collar, evaluate_offset, percentage)

    return score


#: The metrics of event_metrics.EVENT_METRICS that have an array form, with its settings.
EVENT_ARRAY_METRICS: dict[str, EventArrayScoreFn] = {
    "event_onset_200ms_fms": _metric(t_collar=0.2, evaluate_offset=False),
    "event_onset_50ms_fms": _metric(t_collar=0.05, evaluate_offset=False),
    "event_onset_offset_50ms_20perc_fms": _metric(0.05, evaluate_offset=True, percentage=0.2),
}
