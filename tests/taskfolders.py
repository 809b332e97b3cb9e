"""Small task folders in the hear-preprocess layout, written by tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf


def write_task(
    root: Path, name: str = "toy-1.0.0-full", rate: int = 16000, nfolds: int | None = None
) -> Path:
    """A small task folder in the layout hear-preprocess writes (k-fold with ``nfolds``)."""
    path = root / name
    (path / str(rate)).mkdir(parents=True)
    metadata = {
        "task_name": "toy", "version": "1.0.0", "embedding_type": "scene",
        "prediction_type": "multiclass",
        "split_mode": "new_split_kfold" if nfolds else "trainvaltest",
        "sample_duration": 0.5, "evaluation": ["top1_acc", "mAP"], "mode": "full",
    }  # fmt: skip
    if nfolds:
        metadata["nfolds"] = nfolds
    (path / "task_metadata.json").write_text(json.dumps(metadata))
    (path / "labelvocabulary.csv").write_text("idx,label\n0,low\n1,high\n")
    t = np.arange(int(0.5 * rate)) / rate
    splits = [f"fold{i:02d}" for i in range(nfolds)] if nfolds else ["train", "valid", "test"]
    for split in splits:
        (path / str(rate) / split).mkdir()
        labels = {}
        for i in range(4):
            label = ["low", "high"][i % 2]
            freq = (220 if label == "low" else 1760) * (1 + 0.05 * i)
            sf.write(
                path / str(rate) / split / f"{i}.wav", 0.5 * np.sin(2 * np.pi * freq * t), rate
            )
            labels[f"{i}.wav"] = [label]
        (path / f"{split}.json").write_text(json.dumps(labels))
    return path


def wavs(task: Path, split: str, rate: int = 16000) -> list[Path]:
    """The split's audio files at ``rate``, sorted."""
    return sorted((task / str(rate) / split).glob("*.wav"))


def split_labels(task: Path, split: str) -> dict:
    return json.loads((task / f"{split}.json").read_text())


def metadata(task: Path) -> dict:
    return json.loads((task / "task_metadata.json").read_text())


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: equal trees are byte-identical builds."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }
