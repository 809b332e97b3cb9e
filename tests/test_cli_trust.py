"""What the `hear` command does with what it cannot trust (issue 12, findings 7, 9, 12):
a manifest that names a local interpreter, markup in names and model errors, a full or
read-only output folder. Real `python -m hear_runner` processes on real (tmpfs) mounts."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from taskfolders import write_task

from hear_runner.results.predictions import SUFFIX, load_predictions
from hear_runner.results.records import HEAREVAL_SCORES, RunRecord

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)")


def hear(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hear_runner", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def error_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("error:")]


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "2m", read_only: bool = False) -> Iterator[Path]:
    """A real tmpfs at ``path`` (read-only if asked); unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(path)], check=True)


def fill(folder: Path, leave_pages: int = 0) -> None:
    """Fill ``folder``'s file system, then free about ``leave_pages`` pages of 4 KiB."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as e:
        assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)
    size = filler.stat().st_size // 4096 * 4096
    os.truncate(filler, max(0, size - leave_pages * 4096))


def debris(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def orphans(folder: Path) -> list[Path]:
    """Predictions or heareval score files whose record is not there."""
    found = []
    for p in folder.rglob(f"*{SUFFIX}"):
        if not p.with_name(p.name.removesuffix(SUFFIX) + ".json").exists():
            found.append(p)
    for p in folder.rglob(HEAREVAL_SCORES):
        if not p.parent.with_name(p.parent.name + ".json").exists():
            found.append(p)
    return found


# Finding 7: a manifest's local models run only with --allow-local.


def local_manifest(root: Path, python: str) -> Path:
    """A manifest from elsewhere: one module model run by the interpreter ``python``."""
    from hear_runner.tasks.folder import Task

    task = Task(write_task(root / "tasks"))
    manifest = {
        "results_dir": str(root / "results"),
        "engine": {"engine": "local", "python": python},
        "models": [{"kind": "module", "ref": "numpy_logmel", "identity": f"numpy_logmel @ {python}"}],
        "tasks": [{"name": task.name, "path": str(task.path), "content_hash": task.content_hash,
                   "version": task.metadata.version}],
        "probe": {"mode": "linear", "seeds": [42], "grid_points": 1, "batch_size": 32},
    }  # fmt: skip
    path = root / "manifest.json"
    path.write_text(json.dumps(manifest))
    return path


def test_rerun_runs_a_manifests_interpreter_only_with_allow_local(tmp_path: Path) -> None:
    marker = tmp_path / "it-ran"
    python = tmp_path / "bin" / "python"
    python.parent.mkdir()
    python.write_text(f"#!/bin/sh\ntouch {marker}\nexit 3\n")
    python.chmod(0o755)
    manifest = local_manifest(tmp_path, str(python))

    done = hear("rerun", str(manifest), "--results-dir", str(tmp_path / "r"))
    assert not marker.exists(), "the manifest's interpreter ran without --allow-local"
    assert done.returncode == 1, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert f"module numpy_logmel with the interpreter {python}" in line and "--allow-local" in line
    assert not (tmp_path / "r").exists()

    done = hear("rerun", str(manifest), "--allow-local", "--results-dir", str(tmp_path / "r"))
    said = " ".join(done.stderr.split())
    assert f"running outside a container (--allow-local): module numpy_logmel with the interpreter {python}" in said
    assert marker.exists() and done.returncode == 1  # it ran (and, not being Python, failed)
    assert "Traceback" not in done.stderr


def test_rerun_of_an_image_manifest_needs_no_flag(tmp_path: Path) -> None:
    manifest = local_manifest(tmp_path, "/nowhere/python")
    data = json.loads(manifest.read_text())
    data["engine"] = {"engine": "docker"}
    data["models"] = [{"kind": "image", "ref": "hear-test/none:1", "identity": "sha256:" + "a" * 64}]
    manifest.write_text(json.dumps(data))
    done = hear("rerun", str(manifest), "--results-dir", str(tmp_path / "r"),
                env={"DOCKER_HOST": "unix:///nonexistent.sock"})  # fmt: skip
    assert done.returncode == 1 and "--allow-local" not in done.stderr  # it went on to Docker
    assert "running outside a container" not in done.stderr


# Finding 9: markup in what a model, task or file supplies is printed as it is.

MARKUP_ERROR = "bad [/bold] weights [link=http://x]y[/link] and [red]x"
MARKUP_TASK = "toy[red]x[bold]y[link=z]w-1.0.0-full"  # a file name has no "/"

MARKUP_MODULE = f'''
def load_model(model_file_path=""):
    raise RuntimeError({MARKUP_ERROR!r})


def get_scene_embeddings(audio, model):
    raise NotImplementedError


def get_timestamp_embeddings(audio, model):
    raise NotImplementedError
'''

TERMINAL = {"FORCE_COLOR": "1", "COLUMNS": "200"}  # rich renders styles, links and live bars


def test_model_error_with_markup_reaches_stderr_whole(tmp_path: Path) -> None:
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules" / "markup_model.py").write_text(MARKUP_MODULE)
    write_task(tmp_path / "tasks")
    path = os.pathsep.join([str(tmp_path / "modules"), os.environ.get("PYTHONPATH", "")])
    done = hear("run", "--model-module", "markup_model", "--tasks-dir", str(tmp_path / "tasks"),
                "--results-dir", str(tmp_path / "r"), env={**TERMINAL, "PYTHONPATH": path})  # fmt: skip
    assert "Traceback" not in done.stderr and "MarkupError" not in done.stderr, done.stderr
    assert done.returncode == 1
    [line] = [ln for ln in ANSI.sub("", done.stderr).splitlines() if ln.startswith("error:")]
    assert line.endswith(f"could not load its model: RuntimeError: {MARKUP_ERROR}"), line
    assert "\x1b]8;" not in done.stderr  # no hyperlink


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "log"])
def test_task_name_with_markup_is_printed_as_it_is(tmp_path: Path, terminal: bool) -> None:
    write_task(tmp_path / "tasks", MARKUP_TASK)
    done = hear("run", "--model-module", "numpy_logmel", "--tasks-dir", str(tmp_path / "tasks"),
                "--results-dir", str(tmp_path / "r"), "--probe", "linear",
                env=TERMINAL if terminal else {})  # fmt: skip
    assert done.returncode == 0, done.stderr
    err, out = ANSI.sub("", done.stderr), ANSI.sub("", done.stdout)
    assert f"{MARKUP_TASK} · train" in err and f"{MARKUP_TASK} · linear probe" in err  # bars
    assert f"wrote {tmp_path / 'r' / 'numpy_logmel' / MARKUP_TASK}.json" in err
    assert f"│ {MARKUP_TASK} │" in out  # the results table's cell
    assert "\x1b]8;" not in done.stderr + done.stdout  # no hyperlink
    if terminal:  # [red] and [bold] did not style the text after them
        assert not re.search(r"\x1b\[[0-9;]*(31|1)m[xy]", done.stderr + done.stdout)
    # The same, from the store and in the rerun's table.
    [manifest] = (tmp_path / "r" / "manifests").glob("*.json")
    done = hear("rerun", str(manifest), "--allow-local", "--overwrite", "only-missing",
                "--results-dir", str(tmp_path / "again"), env=TERMINAL if terminal else {})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"cached {MARKUP_TASK}: every split" in ANSI.sub("", done.stderr)
    assert MARKUP_TASK in ANSI.sub("", done.stdout)


# Finding 12: a full or read-only output folder.


def test_read_only_output_folders_stop_before_any_work(
    tmp_path: Path, empty_embedding_store: Path
) -> None:
    tasks = tmp_path / "tasks"
    write_task(tasks)
    embeddings = tmp_path / "embeddings"
    done = hear("embed", "--model-module", "numpy_logmel", "--tasks-dir", str(tasks),
                "--out", str(embeddings))  # fmt: skip
    assert done.returncode == 0, done.stderr
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\ntouch {tmp_path / 'it-ran'}\nexit 3\n")
    python.chmod(0o755)
    manifest = local_manifest(tmp_path / "elsewhere", str(python))
    store = tmp_path / "store"
    with tmpfs(tmp_path / "ro", read_only=True) as ro:
        subprocess.run(["mount", "--bind", "-o", "ro", str(embeddings), str(ro)], check=True)
        try:
            commands = {
                "run": ["run", "--model-module", "numpy_logmel", "--tasks-dir", str(tasks),
                        "--results-dir", str(ro / "results"), "--cache-dir", str(store)],
                "rerun": ["rerun", str(manifest), "--allow-local", "--results-dir",
                          str(ro / "results")],
                "embed": ["embed", "--model-module", "numpy_logmel", "--tasks-dir", str(tasks),
                          "--out", str(ro / "out"), "--cache-dir", str(store)],
                "probe": ["probe", str(ro / "toy-1.0.0-full"), "--mode", "linear"],
                "report": ["report", "--results-dir", str(tmp_path), "-o", str(ro / "r.html")],
            }  # fmt: skip
            for name, args in commands.items():
                done = hear(*args)
                assert "Traceback" not in done.stderr, (name, done.stderr)
                assert done.returncode == 1, (name, done.stderr)
                [line] = error_lines(done)
                assert "starting" not in done.stderr, (name, done.stderr)
                assert "not writable: the file system is read-only" in line, (name, line)
                assert str(ro) in line, (name, line)
            # An OSError of a full or read-only disk met elsewhere: one line naming the path.
            done = hear("tasks", "prepare", "mini", "--tasks-dir", str(ro / "tasks"))
            assert "Traceback" not in done.stderr and done.returncode == 1, done.stderr
            assert error_lines(done) == [f"error: {ro / 'tasks'}: Read-only file system"]
        finally:
            subprocess.run(["umount", str(ro)], check=True)  # the bind mount
    assert not list(store.rglob("*.npy")), "hear run embedded before finding the results folder"
    assert not (tmp_path / "it-ran").exists(), "hear rerun ran the model first"


def test_full_disk_is_one_line_leaves_nothing_half_and_keeps_the_embeddings(
    tmp_path: Path,
) -> None:
    tasks, store = tmp_path / "tasks", tmp_path / "store"
    write_task(tasks)
    run = ["run", "--model-module", "numpy_logmel", "--tasks-dir", str(tasks),
           "--cache-dir", str(store), "--probe", "linear", "--json"]  # fmt: skip
    with tmpfs(tmp_path / "small") as small:
        fill(small)
        done = hear(*run, "--results-dir", str(small / "results"))
        assert "Traceback" not in done.stderr, done.stderr
        assert done.returncode == 1
        [line] = error_lines(done)
        assert str(small / "results") in line and "the disk is full" in line, line
        assert not debris(small) and not orphans(small)
        assert not list(small.rglob("*.probe-progress"))  # no empty progress folder either
    # Space freed: a run to another folder scores from the store, embedding nothing.
    done = hear(*run, "--results-dir", str(tmp_path / "results"))
    assert done.returncode == 0, done.stderr
    [record] = json.loads(done.stdout)
    assert record["timings"]["clips_embedded"] == 0 and record["timings"]["embed_cached"] == 1.0

    # Whatever space is left (none, room for the predictions only, ...), a record is written
    # whole with its files, or nothing of it is.
    path = tmp_path / "results" / "numpy_logmel" / "toy-1.0.0-full.json"
    kept = RunRecord.model_validate_json(path.read_text())
    kept.keep_predictions(*load_predictions(path.with_name(f"toy-1.0.0-full{SUFFIX}")))
    kept.keep_heareval_scores(json.loads((path.with_suffix("") / HEAREVAL_SCORES).read_text()))
    outcomes = []
    for pages in range(12):
        with tmpfs(tmp_path / f"pages{pages}") as small:
            fill(small, leave_pages=pages)
            try:
                kept.write(small / "results")
                outcomes.append("written")
            except Exception as e:  # a full disk
                outcomes.append(type(e).__name__)
            assert not debris(small), pages
            assert not orphans(small), (pages, sorted(small.rglob("*")))
            if outcomes[-1] == "written":
                assert (small / "results" / "numpy_logmel" / "toy-1.0.0-full.json").exists()
                break
    assert outcomes[0] != "written" and outcomes[-1] == "written", outcomes
