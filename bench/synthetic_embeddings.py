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


def splits_of(task: Path, metadata: dict) -> list[str]:
    if "splits" in metadata:
        return list(metadata["splits"])
    if metadata["split_mode"] == "trainvaltest":
        return ["train", "valid", "test"]
    return sorted(p.stem for p in task.glob("fold*.json"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("task_dir", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--hop-ms", type=float, default=50.0)
    ap.add_argument("--separation", type=float, default=1.0, help="scale of label means")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    task = args.task_dir
    metadata = json.loads((task / "task_metadata.json").read_text())
    splits = splits_of(task, metadata)
    metadata["splits"] = splits
    with open(task / "labelvocabulary.csv") as f:
        labels = [row["label"] for row in csv.DictReader(f)]
    rng = np.random.default_rng(args.seed)
    means = {
        lbl: args.separation * rng.standard_normal(args.dim).astype(np.float32) for lbl in labels
    }
    prng = random.Random(args.seed)

    out = args.out_dir / task.name
    out.mkdir(parents=True, exist_ok=True)
    (out / "task_metadata.json").write_text(json.dumps(metadata, indent=4))
    shutil.copy(task / "labelvocabulary.csv", out)
    for split in splits:
        shutil.copy(task / f"{split}.json", out)
        data = json.loads((task / f"{split}.json").read_text())
        files = list(data)
        prng.shuffle(files)  # heareval shuffles files before memmapping them
        rows, targets, stamps = [], [], []
        for name in files:
            if metadata["embedding_type"] == "scene":
                lbls = [str(x) for x in data[name]]
                rows.append(sum((means[x] for x in lbls), np.zeros(args.dim, np.float32)))
                targets.append(lbls)
            else:
                duration_ms = 1000.0 * float(metadata["sample_duration"])
                for t in np.arange(0.0, duration_ms, args.hop_ms):
                    lbls = [str(e["label"]) for e in data[name] if e["start"] <= t <= e["end"]]
                    rows.append(sum((means[x] for x in lbls), np.zeros(args.dim, np.float32)))
                    targets.append(lbls)
                    stamps.append([f"{split}/{name}", float(t)])
        emb = np.stack(rows) + rng.standard_normal((len(rows), args.dim)).astype(np.float32)
        mm = np.memmap(
            out / f"{split}.embeddings.npy", dtype=np.float32, mode="w+", shape=emb.shape
        )
        mm[:] = emb
        mm.flush()
        (out / f"{split}.embedding-dimensions.json").write_text(json.dumps(list(emb.shape)))
        with open(out / f"{split}.target-labels.pkl", "wb") as f:
            pickle.dump(targets, f)
        if metadata["embedding_type"] == "event":
            (out / f"{split}.filename-timestamps.json").write_text(json.dumps(stamps))
        print(f"{out.name} {split}: {emb.shape[0]} x {emb.shape[1]}")


if __name__ == "__main__":
    main()
