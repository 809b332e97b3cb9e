"""`hear probe` and `hear embed` on heareval's embeddings folders."""

from __future__ import annotations

import json
import pickle
import random
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from taskfolders import write_task

from hear_runner.probes.heareval_dir import read_embeddings_dir


def hear(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hear_runner", *args], capture_output=True, text=True, timeout=600
    )


def write_like_heareval(task: Path, out: Path, dim: int = 8, frames: int = 0) -> Path:
    """An embeddings folder as heareval's embedding runner leaves it.

    Rows in its shuffled file order (random.Random(0) across splits), raw float32
    memmaps, pickled label lists, and for event tasks [absolute path, ms] per frame.
    Scene rows sit near one centre per label, so a probe can learn them.
    """
    out.mkdir(parents=True)
    metadata = json.loads((task / "task_metadata.json").read_text())
    for name in ("task_metadata.json", "labelvocabulary.csv"):
        shutil.copy(task / name, out / name)
    vocabulary = [
        line.split(",")[1] for line in (task / "labelvocabulary.csv").read_text().split()[1:]
    ]
    centres = np.random.default_rng(7).normal(size=(len(vocabulary), dim)) * 3
    prng, rng = random.Random(0), np.random.default_rng(0)
    splits = [p.stem for p in sorted(task.glob("*.json")) if p.stem != "task_metadata"]
    for split in splits:
        shutil.copy(task / f"{split}.json", out / f"{split}.json")
        data = json.loads((task / f"{split}.json").read_text())
        files = list(data)
        prng.shuffle(files)
        rows, labels, stamps = [], [], []
        for file in files:
            if frames:
                for t in np.arange(frames) * 50.0:
                    active = [e["label"] for e in data[file] if e["start"] <= t <= e["end"]]
                    mean = sum((centres[vocabulary.index(lb)] for lb in active), np.zeros(dim))
                    rows.append(mean + rng.normal(size=dim))
                    labels.append(active)
                    stamps.append([str(out / split / file), float(t)])
            else:
                rows.append(centres[vocabulary.index(data[file][0])] + rng.normal(size=dim))
                labels.append(data[file])
        memmap = np.memmap(
            out / f"{split}.embeddings.npy", np.float32, "w+", shape=(len(rows), dim)
        )
        memmap[:] = np.array(rows)
        memmap.flush()
        (out / f"{split}.embedding-dimensions.json").write_text(json.dumps([len(rows), dim]))
        pickle.dump(labels, (out / f"{split}.target-labels.pkl").open("wb"))
        if metadata["embedding_type"] == "event":
            (out / f"{split}.filename-timestamps.json").write_text(json.dumps(stamps))
    return out


def event_task(root: Path) -> Path:
    path = write_task(root, "toyev-1.0.0-full")
    metadata = json.loads((path / "task_metadata.json").read_text())
    metadata.update(embedding_type="event", prediction_type="multilabel",
                    evaluation=["event_onset_200ms_fms", "segment_1s_er"])  # fmt: skip
    (path / "task_metadata.json").write_text(json.dumps(metadata))
    for split in ("train", "valid", "test"):
        events = {
            f"{i}.wav": [
                {"label": ["low", "high"][i % 2], "start": 100.0 * i, "end": 100.0 * i + 300}
            ]
            for i in range(4)
        }
        (path / f"{split}.json").write_text(json.dumps(events))
    return path


def test_probe_reads_heareval_kfold_folder_and_writes_its_scores(tmp_path: Path) -> None:
    task = write_task(tmp_path / "tasks", "toyk-1.0.0-full", nfolds=3)
    folder = write_like_heareval(task, tmp_path / "emb" / task.name)
    result = hear("probe", str(tmp_path / "emb"), "--mode", "linear")
    assert result.returncode == 0, result.stderr
    assert "toyk-1.0.0-full" in result.stdout and "linear" in result.stdout
    scores = json.loads((folder / "test.predicted-scores.json").read_text())
    assert {"fold00", "fold01", "fold02", "aggregated_scores", "hparams", "postprocessing",
            "score_mode", "embedding_path"} <= set(scores)  # fmt: skip
    per_fold = [scores[f]["test_score"] for f in ("fold00", "fold01", "fold02")]
    assert scores["aggregated_scores"]["test_score_mean"] == pytest.approx(np.mean(per_fold))
    assert scores["aggregated_scores"]["test_score_std"] == pytest.approx(np.std(per_fold, ddof=1))
    assert scores["fold00"]["test_top1_acc"] == scores["fold00"]["test_score"] >= 0.75
    assert {"test_loss", "validation_score", "epoch", "time_in_min", "test_mAP"} <= set(
        scores["fold00"]
    )
    assert scores["score_mode"] == "max" and scores["postprocessing"] == []


def test_probe_scores_heareval_event_folder_with_postprocessing(tmp_path: Path) -> None:
    task = event_task(tmp_path / "tasks")
    folder = write_like_heareval(task, tmp_path / "emb", frames=20)
    problem = read_embeddings_dir(folder)
    assert problem.splits["test"].files[0] in {"0.wav", "1.wav", "2.wav", "3.wav"}
    result = hear("probe", str(folder), "--grid-points", "1", "--json")
    assert result.returncode == 0, result.stderr
    scores = json.loads((folder / "test.predicted-scores.json").read_text())
    assert json.loads(result.stdout)[str(folder)] == scores
    test = scores["test"]
    assert test["test_score"] == test["test_event_onset_200ms_fms"]
    assert test["test_event_onset_200ms_fms_f_measure"] == test["test_score"] > 0.5
    assert "test_segment_1s_er_error_rate" in test
    assert [k for k, _ in scores["postprocessing"]] == ["median_filter_ms", "min_duration"]
    (point,) = scores["grid"]  # beyond heareval's keys: what the point did, epochs included
    assert point["epochs_trained"] >= point["best_epoch"] >= 1
    assert point["valid_selection_score"] == test["validation_score"]


def test_probe_options_reach_every_point_and_the_score_file(tmp_path: Path) -> None:
    task = event_task(tmp_path / "tasks")
    folder = write_like_heareval(task, tmp_path / "emb", frames=20)
    result = hear("probe", str(folder), "--grid-points", "2", "--precision", "bfloat16",
                  "--shuffle-batches")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "fast bfloat16" in result.stdout  # the table says which arithmetic scored it
    scores = json.loads((folder / "test.predicted-scores.json").read_text())
    assert scores["hparams"]["precision"] == "bfloat16" and scores["hparams"]["shuffle_batches"]
    assert [(p["precision"], p["shuffle_batches"]) for p in scores["grid"]] == [
        ("bfloat16", True)
    ] * 2
    assert "2/2" in result.stderr  # the progress knows its total: 2 points, 1 fold


def test_nonfinite_row_stops_the_probe_naming_folder_split_and_row(tmp_path: Path) -> None:
    task = write_task(tmp_path / "tasks")
    folder = write_like_heareval(task, tmp_path / "emb")
    memmap = np.memmap(folder / "valid.embeddings.npy", np.float32, "r+", shape=(4, 8))
    memmap[2, 5] = np.nan
    memmap.flush()
    result = hear("probe", str(folder))
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert str(folder) in line and "split 'valid', row 2" in line and "NaN or Inf" in line
    assert not (folder / "test.predicted-scores.json").exists()


def test_truncated_embeddings_file_is_named(tmp_path: Path) -> None:
    folder = write_like_heareval(write_task(tmp_path / "tasks"), tmp_path / "emb")
    data = (folder / "test.embeddings.npy").read_bytes()
    (folder / "test.embeddings.npy").write_bytes(data[:-4])
    result = hear("probe", str(folder))
    assert result.returncode == 1
    assert "test.embeddings.npy: holds 124 bytes; [4, 8] float32 needs 128" in result.stderr


def test_embed_writes_a_folder_heareval_and_hear_probe_read(tmp_path: Path) -> None:
    write_task(tmp_path / "tasks", nfolds=3)
    result = hear("embed", "--model-module", "numpy_logmel", "--tasks-dir", str(tmp_path / "tasks"),
                  "--out", str(tmp_path / "emb"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "emb" / "toy-1.0.0-full"
    dims = json.loads((folder / "fold00.embedding-dimensions.json").read_text())
    raw = np.fromfile(folder / "fold00.embeddings.npy", np.float32)
    assert raw.size == dims[0] * dims[1] and dims[0] == 4  # headerless, as heareval memmaps
    labels = pickle.load((folder / "fold00.target-labels.pkl").open("rb"))
    assert labels == [["low"], ["high"], ["low"], ["high"]]
    problem = read_embeddings_dir(folder)
    assert [f.test for f in problem.folds] == ["fold00", "fold01", "fold02"]
    splits = json.loads((folder / "task_metadata.json").read_text())["splits"]
    assert splits == ["fold00", "fold01", "fold02"]  # heareval's runner reads it
    assert np.array_equal(problem.splits["fold00"].embeddings, raw.reshape(dims))


MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    from pathlib import Path
    import numpy as np
    import torch
    from hear_runner.probes.heareval_dir import read_embeddings_dir
    from hear_runner.probes.mlp import MLPConfig
    from hear_runner.probes.stage import run_probe

    def rss() -> int:
        return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize()

    # torch's first training step sets up thread pools and scratch buffers: not data.
    net = torch.nn.Linear(1024, 8)
    optimizer = torch.optim.Adam(net.parameters())
    net(torch.zeros(2048, 1024)).sum().backward()
    optimizer.step()
    before = rss()
    problem = read_embeddings_dir(Path(sys.argv[1]))
    config = MLPConfig(hidden_dim=8, max_epochs=1, check_every=1)
    run_probe(problem, sys.argv[2], points=lambda seed: [config])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"growth": peak - before}))
    """
)


@pytest.mark.parametrize("mode", ["fast", "faithful"])
def test_probe_holds_each_split_once(tmp_path: Path, mode: str) -> None:
    """Five folds of 48 MiB: training on three must not copy them (that would add 144 MiB)."""
    folder = tmp_path / "emb"
    folder.mkdir()
    rows, dim = 12288, 1024
    metadata = {"task_name": "big", "version": "1", "embedding_type": "scene",
                "prediction_type": "multiclass", "split_mode": "new_split_kfold", "nfolds": 5,
                "evaluation": ["top1_acc"]}  # fmt: skip
    (folder / "task_metadata.json").write_text(json.dumps(metadata))
    (folder / "labelvocabulary.csv").write_text("idx,label\n0,a\n1,b\n")
    rng = np.random.default_rng(0)
    for i in range(5):
        split = f"fold{i:02d}"
        labels = [["a"] if j % 2 else ["b"] for j in range(rows)]
        (folder / f"{split}.json").write_text(
            json.dumps({f"{j}.wav": lb for j, lb in enumerate(labels)})
        )
        rng.standard_normal((rows, dim), np.float32).tofile(folder / f"{split}.embeddings.npy")
        (folder / f"{split}.embedding-dimensions.json").write_text(json.dumps([rows, dim]))
        pickle.dump(labels, (folder / f"{split}.target-labels.pkl").open("wb"))
    result = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(folder), mode],
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr
    growth = json.loads(result.stdout)["growth"]
    data = 5 * rows * dim * 4
    assert growth < data * 1.1 + 48 * 2**20, (
        f"grew {growth / 2**20:.0f} MiB for {data / 2**20:.0f} MiB"
    )


def test_seeds_are_recorded_with_each_seeds_score(tmp_path: Path) -> None:
    write_task(tmp_path / "tasks")
    result = hear("run", "--model-module", "numpy_logmel", "--tasks-dir", str(tmp_path / "tasks"),
                  "--results-dir", str(tmp_path / "r"), "--grid-points", "1", "--seeds", "2",
                  "--seed", "7", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    [record] = json.loads(result.stdout)
    assert record["probe"]["seeds"] == [7, 8] and len(record["seed_scores"]) == 2
    assert [f["seed"] for f in record["folds"]] == [7, 8]
    assert record["test_score"] == pytest.approx(np.mean(record["seed_scores"]))
