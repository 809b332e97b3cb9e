"""Random metric cases for comparing hear-runner's metrics with heareval's own code.

Deterministic (Python's ``random`` seeded per case) and dependency-free, so the same file comes
out anywhere. Scores are stored as integers over a ``scale`` (exact, small, and with ties).

    python tests/reference/make_cases.py tests/reference/heareval_cases.json
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

SCENE_SEEDS = range(200)
EVENT_SEEDS = range(300)

WORDS = [
    *("dog", "cat", "bird", "car", "door", "speech", "phone", "keys", "cough", "laugh"),
    *("alarm", "bell", "clap", "drill"),
]
GRIDS_MS = [1, 10, 25, 50, 100]


def scene_case(seed: int) -> dict[str, Any]:
    """Multiclass (one-hot) or multilabel targets; coarse scales make many tied scores."""
    rng = random.Random(f"scene-{seed}")
    kind = rng.choice(["multiclass", "multiclass", "multilabel", "multilabel", "pitch"])
    n = 0 if seed == 0 else rng.choice([1, 2, 3, 5, 13, *[30, 40, 60, 80] * 4])
    if kind == "pitch":
        n_labels = rng.randint(13, 30)
        labels = [str(21 + i) for i in range(n_labels)]
    else:
        n_labels = 1 if seed == 1 else rng.randint(2, 12)
        labels = rng.sample(WORDS, n_labels)
    scale = rng.choice([4, 10, 1000, 1000000])
    targets: list[list[int]] = []
    density = rng.choice([0.05, 0.2, 0.5, 0.9])
    for _ in range(n):
        row = [0] * n_labels
        if kind == "multilabel":
            row = [int(rng.random() < density) for _ in range(n_labels)]
        else:
            row[rng.randrange(n_labels)] = 1
        targets.append(row)
    if n >= 2 * n_labels and rng.random() < 0.9:
        # Most cases have both classes in every column (otherwise ROC AUC is undefined).
        for j in range(n_labels):
            if kind == "multilabel":
                targets[2 * j][j], targets[2 * j + 1][j] = 1, 0
            else:
                targets[2 * j] = [int(i == j) for i in range(n_labels)]
    scores: list[list[int]] = []
    skill = rng.random() * 0.45
    for row in targets:
        # Informative scores: positives nudged up by a random skill, then quantized.
        values = [min(1.0, rng.random() * (1 - skill) + skill * t) for t in row]
        scores.append([round(v * scale) for v in values])
    return {
        "id": f"scene-{seed}",
        "kind": kind,
        "labels": labels,
        "targets": targets,
        "scores": scores,
        "scale": scale,
    }


def _label(rng: random.Random, labels: list[str], odd: float) -> str:
    """Mostly a vocabulary label; sometimes one outside it or one dcase_util rewrites."""
    if rng.random() < odd:
        return rng.choice(["unknown", " " + labels[0], labels[0] + " ", "None", "", "none "])
    return rng.choice(labels)


def _ms(rng: random.Random, grid: float, high: float) -> float:
    return rng.randint(0, int(high / grid)) * grid


def _reference_events(rng: random.Random, labels: list[str], grid: float) -> list[dict[str, Any]]:
    events = []
    for _ in range(rng.choice([0, 1, 2, 3, 5, 8])):
        start = _ms(rng, grid, 9000)
        length = rng.choice([0, grid, 2 * grid, _ms(rng, grid, 3000), _ms(rng, grid, 3000)])
        events.append({"label": rng.choice(labels), "start": start, "end": start + length})
    return events


def _predicted_events(
    rng: random.Random, reference: list[dict[str, Any]], labels: list[str], grid: float, odd: float
) -> list[dict[str, Any]]:
    mode = rng.choice(["empty", "jitter", "jitter", "jitter", "random", "mixed"])
    if mode == "empty":
        return []
    events = []
    if mode in ("jitter", "mixed"):
        for ref in reference:
            if rng.random() < 0.15:
                continue  # a miss
            # Jitters that land on and around the 50 ms and 200 ms collars.
            jitter = rng.choice([0, 10, 40, 50, 60, 100, 150, 200, 250, 400]) * rng.choice([-1, 1])
            end_jitter = rng.choice([0, 25, 50, 75, 200, 600]) * rng.choice([-1, 1])
            label = ref["label"] if rng.random() < 0.8 else _label(rng, labels, odd)
            start = max(0, ref["start"] + jitter)
            events.append({"label": label, "start": start, "end": ref["end"] + end_jitter})
            if rng.random() < 0.1:
                events.append(dict(events[-1]))  # a duplicate detection
    if mode in ("random", "mixed"):
        for _ in range(rng.choice([1, 2, 4, 6])):
            start = _ms(rng, grid, 9000)
            end = start + rng.choice([0, _ms(rng, grid, 2000), -grid])  # even end < start
            events.append({"label": _label(rng, labels, odd), "start": start, "end": end})
    rng.shuffle(events)
    return events


def event_case(seed: int) -> dict[str, Any]:
    """Files with reference events and predictions: empty, jittered, random, swapped labels."""
    rng = random.Random(f"event-{seed}")
    labels = rng.sample(WORDS, rng.randint(1, 6))
    grid: float = rng.choice([*GRIDS_MS, 0.5])
    odd = rng.choice([0.0, 0.0, 0.0, 0.1])  # labels outside the vocabulary in some cases
    names = [f"{rng.choice(['clip', '00', 'a'])}{i}.wav" for i in range(rng.randint(1, 6))]
    if rng.random() < 0.05:
        names.append(rng.choice(["./dot.wav", "sub//double.wav", "/abs/path.wav"]))
    reference = {name: _reference_events(rng, labels, grid) for name in names}
    predicted = {}
    for name in names:
        if rng.random() < 0.1:
            continue  # a reference file without predictions
        predicted[name] = _predicted_events(rng, reference[name], labels, grid, odd)
    if rng.random() < 0.1:
        predicted["extra.wav"] = _predicted_events(rng, [], labels, grid, odd)
    if seed == 0:
        predicted = {}
    if seed == 1:
        reference = {}
    return {
        "id": f"event-{seed}",
        "labels": labels,
        "reference": reference,
        "predicted": predicted,
    }


def make_cases() -> dict[str, Any]:
    return {
        "scene": [scene_case(s) for s in SCENE_SEEDS],
        "event": [event_case(s) for s in EVENT_SEEDS],
    }


def dumps(cases: dict[str, Any]) -> str:
    return json.dumps(cases, separators=(",", ":"), sort_keys=True) + "\n"


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(dumps(make_cases()))
