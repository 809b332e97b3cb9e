"""Small task folders in the hear-preprocess layout, written by tests."""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def assert_reused_untouched(prepare: Callable[[], Path], task: Path) -> None:
    """``prepare()`` returns the complete ``task`` at once, rewriting nothing."""
    before = {p: p.stat().st_mtime_ns for p in task.rglob("*")}
    start = time.perf_counter()
    assert prepare() == task
    assert time.perf_counter() - start < 0.5
    assert {p: p.stat().st_mtime_ns for p in task.rglob("*")} == before


def assert_stale_folder_rebuilt(module: Any, task: Path, tmp_path: Path) -> None:
    """A folder left by an older generator is rebuilt byte-identical to ``task``, cleanly."""
    stale = tmp_path / module.folder_name("smoke")
    stale.mkdir()
    (stale / ".complete").write_text("parameters of an older generator\n")
    (stale / "leftover.wav").write_bytes(b"")
    assert module.prepare(tmp_path, "smoke", progress=False) == stale
    assert tree(stale) == tree(task)  # same bytes, leftover gone
    assert [p.name for p in tmp_path.iterdir()] == [stale.name]  # no temporary folders left


def mini_material_missing(task: str) -> str | None:
    """Why the mini task module ``task`` cannot be generated on this machine, or None."""
    import shutil

    if task in ("spoken_digits", "spoken_language"):
        return None if shutil.which("espeak-ng") else "no espeak-ng"
    if task == "pitch":
        from hear_mini import pitch

        fonts = all((pitch.SOUNDFONTS_DIR / p).is_file() for _, p in pitch.SOUNDFONTS.values())
        return None if shutil.which("fluidsynth") and fonts else "fluidsynth or soundfonts missing"
    if task == "drums":
        from hear_mini import drums

        kits = (drums.KITS_DIR / k / "drumkit.xml" for ks in drums.KIT_FOLDS.values() for k in ks)
        return None if all(p.is_file() for p in kits) else "hydrogen-drumkits not installed"
    from hear_mini import sound_themes

    classes = importlib.import_module(f"hear_mini.{task}").CLASSES
    return "sound themes not installed" if sound_themes.missing_packages(classes) else None


def needs_mini_material(task: str) -> Any:
    """Skip a test where the mini task module ``task``'s material is not installed."""
    import pytest

    reason = mini_material_missing(task)
    return pytest.mark.skipif(bool(reason), reason=reason or "")
