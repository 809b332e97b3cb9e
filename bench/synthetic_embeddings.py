#!/usr/bin/env python3
"""Write a SYNTHETIC embeddings folder in heareval's layout, for developing the harness.

    python bench/synthetic_embeddings.py TASK_DIR OUT_DIR [--dim 64] [--hop-ms 50]

Reads a hear-preprocess task folder (task_metadata.json, labelvocabulary.csv and one
<split>.json per split), and writes OUT_DIR/<task folder name>/ as heareval 2021.1.3's
embedding runner would (heareval/embeddings/task_embeddings.py, memmap_embeddings):
  task_metadata.json (with "splits" added when the task lacks it), labelvocabulary.csv,
  <split>.json, <split>.embeddings.npy (raw float32 memmap, no .npy header),
  <split>.embedding-dimensions.json ([rows, dim]), <split>.target-labels.pkl, and for
  event tasks <split>.filename-timestamps.json.
Embeddings are Gaussian noise plus a fixed random mean per label: a probe can learn them.
They are for development only; published numbers come from a real model's embeddings.

``write_task`` makes a label-only task folder of any size (no audio), so that bench/gpu-check
can build full-size problems on a machine with no data.
"""

from __future__ import annotations

import argparse
import csv
import json
import pickle
import random
import shutil
from pathlib import Path

import numpy as np

#: Rows generated and written at a time: bounds memory for full-size tasks.
CHUNK_ROWS = 16384


def splits_of(task: Path, metadata: dict) -> list[str]:
    if "splits" in metadata:
        return list(metadata["splits"])
    if metadata["split_mode"] == "trainvaltest":
        return ["train", "valid", "test"]
    return sorted(p.stem for p in task.glob("fold*.json"))


def write_task(
    root: Path,
    name: str,
    metadata: dict,
    labels: list[str],
    clips: dict[str, int],
    seed: int = 0,
) -> Path:
    """A task folder of labels only: scene clips get one label, event clips random events.

    ``clips`` maps each split to its number of clips. Event clips get one event per 10 s
    (at least 4), each 0.3 to 3 s long, times in ms inside ``metadata["sample_duration"]``.
    """
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    (path / "task_metadata.json").write_text(json.dumps({**metadata, "splits": list(clips)}))
    (path / "labelvocabulary.csv").write_text(
        "idx,label\n" + "".join(f"{i},{label}\n" for i, label in enumerate(labels))
    )
    rng = np.random.default_rng(seed)
    duration_ms = 1000.0 * float(metadata.get("sample_duration") or 1.0)
    events_per_clip = max(4, round(duration_ms / 10_000))
    for split, n in clips.items():
        data: dict[str, list] = {}
        for i in range(n):
            if metadata["embedding_type"] == "scene":
                data[f"{split}-{i}.wav"] = [labels[int(rng.integers(len(labels)))]]
                continue
            events = []
            for _ in range(events_per_clip):
                start = float(rng.uniform(0, 0.9 * duration_ms))
                end = min(start + float(rng.uniform(300, 3000)), duration_ms)
                label = labels[int(rng.integers(len(labels)))]
                events.append({"label": label, "start": start, "end": end})
            data[f"{split}-{i}.wav"] = events
        (path / f"{split}.json").write_text(json.dumps(data))
    return path


def write_embeddings(
    task: Path,
    out_dir: Path,
    dim: int = 64,
    hop_ms: float = 50.0,
    separation: float = 1.0,
    seed: int = 0,
    say: bool = True,
) -> Path:
    """Write ``out_dir/<task name>/`` in heareval's layout; returns that folder."""
    metadata = json.loads((task / "task_metadata.json").read_text())
    splits = splits_of(task, metadata)
    metadata["splits"] = splits
    with open(task / "labelvocabulary.csv") as f:
        labels = [row["label"] for row in csv.DictReader(f)]
    index = {label: i for i, label in enumerate(labels)}
    rng = np.random.default_rng(seed)
    means = separation * rng.standard_normal((len(labels), dim)).astype(np.float32)
    prng = random.Random(seed)
    event = metadata["embedding_type"] == "event"

    out = out_dir / task.name
    out.mkdir(parents=True, exist_ok=True)
    (out / "task_metadata.json").write_text(json.dumps(metadata, indent=4))
    shutil.copy(task / "labelvocabulary.csv", out)
    for split in splits:
        shutil.copy(task / f"{split}.json", out)
        data = json.loads((task / f"{split}.json").read_text())
        files = list(data)
        prng.shuffle(files)  # heareval shuffles files before memmapping them
        targets: list[list[str]] = []
        stamps: list[list] = []
        for name in files:
            if not event:
                targets.append([str(x) for x in data[name]])
                continue
            times = np.arange(0.0, 1000.0 * float(metadata["sample_duration"]), hop_ms)
            frame_labels: list[list[str]] = [[] for _ in times]
            for e in data[name]:
                for t in np.flatnonzero((e["start"] <= times) & (times <= e["end"])):
                    frame_labels[t].append(str(e["label"]))
            targets += frame_labels
            stamps += [[f"{split}/{name}", float(t)] for t in times]
        hot = np.zeros((len(targets), len(labels)), np.float32)
        for row, row_labels in enumerate(targets):
            for label in row_labels:
                hot[row, index[label]] += 1.0
        mm = np.memmap(
            out / f"{split}.embeddings.npy", dtype=np.float32, mode="w+", shape=(len(hot), dim)
        )
        for start in range(0, len(hot), CHUNK_ROWS):
            rows = hot[start : start + CHUNK_ROWS]
            noise = rng.standard_normal((len(rows), dim), dtype=np.float32)
            mm[start : start + len(rows)] = rows @ means + noise
        mm.flush()
        del mm
        (out / f"{split}.embedding-dimensions.json").write_text(json.dumps([len(hot), dim]))
        with open(out / f"{split}.target-labels.pkl", "wb") as f:
            pickle.dump(targets, f)
        if event:
            (out / f"{split}.filename-timestamps.json").write_text(json.dumps(stamps))
        if say:
            print(f"{out.name} {split}: {len(hot)} x {dim}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("task_dir", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--hop-ms", type=float, default=50.0)
    ap.add_argument("--separation", type=float, default=1.0, help="scale of label means")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    write_embeddings(args.task_dir, args.out_dir, args.dim, args.hop_ms, args.separation, args.seed)


if __name__ == "__main__":
    main()
