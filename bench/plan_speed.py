"""How long `hear plan` takes on the HEAR 2021 suite at its released size.

Writes what a plan reads of the 19 full-size tasks (task_metadata.json, labelvocabulary.csv,
every <split>.json with each clip's labels or events, and, for tasks whose clips keep
their own length (FSD50K), header-only wav files of the right sizes), not the audio the
plan never opens (FSD50K's files are sparse: their size, no data); then times `hear plan`
over them. Uses the sized catalogue (plugins/hear_2021/catalogue.py, issue 14 item 1).

    python bench/plan_speed.py DIR [--model-image hear/naive:latest]
"""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

RATE = 16000


def write_suite(root: Path) -> int:
    from hear_2021.catalogue import CATALOGUE

    total = 0
    rng = random.Random(0)
    for task in CATALOGUE:
        sized = task.sized
        assert sized is not None
        folder = root / task.folder
        if (folder / "task_metadata.json").exists():
            total += sum(sized.split_clips.values())
            continue
        folder.mkdir(parents=True)
        labels = sized.labels or tuple(f"label{i}" for i in range(sized.vocab_size))
        (folder / "labelvocabulary.csv").write_text(
            "idx,label\n" + "".join(f"{i},{label}\n" for i, label in enumerate(labels))
        )
        for split, count in sized.split_clips.items():
            clips = {}
            for i in range(count):
                if task.embedding_type == "event":
                    clips[f"{i}.wav"] = [{"label": rng.choice(labels), "start": 1000.0 * k,
                                          "end": 1000.0 * k + 500} for k in range(8)]  # fmt: skip
                else:
                    clips[f"{i}.wav"] = [rng.choice(labels)]
            (folder / f"{split}.json").write_text(json.dumps(clips))
            audio = folder / str(RATE) / split
            audio.mkdir(parents=True)
            if task.sample_duration is None:  # sized from the files: sparse, their length
                low, high = sized.duration_range or (1.0, 10.0)
                for name in clips:
                    samples = int(rng.uniform(low, high) * RATE)
                    with open(audio / name, "wb") as handle:  # no disk used past the header
                        handle.write(b"RIFF")
                        handle.truncate(44 + 2 * samples)
            total += count
        metadata = {"task_name": task.task_name, "version": task.version, "mode": task.mode,
                    "embedding_type": task.embedding_type,
                    "prediction_type": task.prediction_type, "split_mode": task.split_mode,
                    "sample_duration": task.sample_duration,
                    "evaluation": list(task.evaluation), **task.extra_metadata}  # fmt: skip
        if task.nfolds:
            metadata["nfolds"] = task.nfolds
        (folder / "task_metadata.json").write_text(json.dumps(metadata))
    return total


def main() -> None:
    root = Path(sys.argv[1])
    model = sys.argv[sys.argv.index("--model-image") + 1] if "--model-image" in sys.argv else (
        "hear/naive:latest")  # fmt: skip
    clips = write_suite(root)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "hear_runner", "plan", "--model-image", model,
                             "--tasks-dir", str(root)], capture_output=True, text=True)  # fmt: skip
    seconds = time.perf_counter() - started
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(result.stdout[-3000:], result.stderr[-2000:])
    print(f"hear plan: {len(list(root.iterdir()))} tasks, {clips:,} clips: {seconds:.2f} s wall, "
          f"{cpu.ru_utime + cpu.ru_stime:.2f} s CPU")  # fmt: skip


if __name__ == "__main__":
    main()
