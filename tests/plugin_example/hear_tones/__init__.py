"""A third-party task plugin: low/high pure tones, written in the hear-preprocess layout."""

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from hear_runner.api import TaskSource, hookimpl


def prepare(tasks_dir: Path, scale: str) -> Path:
    path = tasks_dir / "tones-1.0-full"
    meta = {"task_name": "tones", "version": "1.0", "embedding_type": "scene", "prediction_type": "multiclass",
            "split_mode": "trainvaltest", "sample_duration": 0.5, "evaluation": ["top1_acc"]}  # fmt: skip
    (path / "16000").mkdir(parents=True, exist_ok=True)
    (path / "task_metadata.json").write_text(json.dumps(meta))
    (path / "labelvocabulary.csv").write_text("idx,label\n0,low\n1,high\n")
    t = np.arange(8000) / 16000
    for split in ("train", "valid", "test"):
        (path / "16000" / split).mkdir(exist_ok=True)
        labels = {f"{i}.wav": ["low" if i % 2 else "high"] for i in range(6)}
        for i, name in enumerate(labels):
            sf.write(
                path / "16000" / split / name,
                np.sin(t * (300 if i % 2 else 3000) * (1 + i / 20)),
                16000,
            )
        (path / f"{split}.json").write_text(json.dumps(labels))
    return path


@hookimpl
def hear_register_tasks(register):
    register(TaskSource(name="tones", suite="tones", description="Low or high pure tone", domain="music",
                        embedding_type="scene", prediction_type="multiclass", split_mode="trainvaltest",
                        prepare=prepare, folder_name=lambda scale: "tones-1.0-full"))  # fmt: skip
