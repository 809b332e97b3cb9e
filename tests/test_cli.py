"""The `hear` command as a user runs it: help, local-engine runs, one-line errors."""

from __future__ import annotations

import inspect
import io
import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from taskfolders import write_task

from hear_runner.cli import app


def hear(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hear_runner", *args], capture_output=True, text=True, timeout=600
    )


def commands(group: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Every command under a (click-like) group; typer may vendor its own click."""
    found = []
    for name, command in group.commands.items():
        found.append((f"{prefix}{name}", command))
        if hasattr(command, "commands"):
            found += commands(command, f"{prefix}{name} ")
    return found


def test_every_command_and_option_has_help() -> None:
    all_commands = commands(typer.main.get_command(app))
    assert {"run", "plugins", "image build", "tasks prepare"} <= {n for n, _ in all_commands}
    for name, command in all_commands:
        assert command.help, f"hear {name} has no help"
        for param in command.params:
            if param.param_type_name == "option":
                assert param.help, f"hear {name} {param.opts[0]} has no help"


def test_run_help_explains_the_model_options() -> None:
    result = hear("run", "--help")
    assert result.returncode == 0
    for option in ("--model-image", "--model-module", "--tasks-dir", "--results-dir", "--gpus"):
        assert option in result.stdout


def help_at_100_columns(*command: str) -> str:
    """`hear ... --help` as a user's 100-column terminal shows it."""
    env = {**os.environ, "COLUMNS": "100", "TERMINAL_WIDTH": "100"}
    result = subprocess.run(
        [sys.executable, "-m", "hear_runner", *command, "--help"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_every_summary_is_one_line_and_no_option_shows_a_python_type() -> None:
    groups = [("", typer.main.get_command(app))]
    groups += [(name, c) for name, c in commands(groups[0][1]) if hasattr(c, "commands")]
    for path, group in groups:
        text = help_at_100_columns(*path.split())
        assert "<bool>" not in text, f"hear {path} --help"
        panel = text.split("─ Commands ─")[1].split("╰")[0].splitlines()[1:]
        rows = [line.strip("│ ") for line in panel]
        assert len(rows) == len(group.commands), f"hear {path} --help wraps a summary:\n{text}"
        for name, command in group.commands.items():
            [summary] = [r.removeprefix(name).strip() for r in rows if r.split()[0] == name]
            first = inspect.cleandoc(command.help).split("\n\n")[0]
            assert summary == first and "\n" not in first, f"hear {path} {name}: {first!r}"
            assert summary.endswith((".", ")")), f"hear {path} {name}: {summary!r}"
    for name, _ in commands(groups[0][1]):
        text = help_at_100_columns(*name.split())
        assert "<bool>" not in text, f"hear {name} --help:\n{text}"
        # An option reads as --model NAME, not as typer's --model <list[str]>.
        assert not re.search(r"^│[ *]*--\S+ +<list\[", text, re.M), f"hear {name} --help:\n{text}"
        # An argument reads as PACK or names..., not with typer's <path> or <list[str]> beside.
        assert not re.search(r"<(str|int|float|path|list\[\w+\])>", text), f"hear {name}:\n{text}"
        # The description is wrapped by the terminal: a line breaks only where the next
        # word would not fit in its 98 columns (typer kept the docstring's line breaks).
        described = text.split("Usage:")[1].split("╭")[0].splitlines()[2:]
        for line, after in itertools.pairwise(described):
            if line.strip() and after.strip():
                fits = len(line.strip()) + 1 + len(after.split()[0]) <= 98
                assert not fits, f"hear {name} --help breaks {line.strip()!r}:\n{text}"


def test_serving_options_are_declared_once_with_the_engines_defaults() -> None:
    from hear_runner.cli.options import SERVE_OPTIONS
    from hear_runner.engines.base import EngineSettings
    from hear_runner.engines.docker import Sandbox
    from hear_runner.engines.settings import ServeSettings

    assert set(SERVE_OPTIONS) == set(ServeSettings.model_fields)
    defaults = ServeSettings()
    assert defaults.limits() == EngineSettings()
    assert defaults.sandbox() == Sandbox()
    by_name = dict(commands(typer.main.get_command(app)))
    for name in ("run", "embed", "validate"):
        shown = {
            p.name.removeprefix("serve_"): p.default
            for p in by_name[name].params
            if p.name.startswith("serve_")
        }
        assert {"gpus", "memory", "load_timeout"} <= set(shown), f"hear {name}"
        for field, default in shown.items():
            assert default == getattr(defaults, field), (name, field)


def test_task_a_plugin_provides_is_prepared_into_the_tasks_dir_and_run(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks"  # not there yet: created
    args = ["--task", "mini_spoken_digits", "--tasks-dir", str(tasks), "--model-module",
            "numpy_logmel", "--results-dir", str(tmp_path / "results"), "--probe", "linear",
            "--cache-dir", str(tmp_path / "cache"), "--json"]  # fmt: skip
    result = hear("run", *args)
    assert result.returncode == 0, result.stderr
    assert "task mini_spoken_digits is not in" in result.stderr and "preparing it" in result.stderr
    [record] = json.loads(result.stdout)
    folder = record["task"]["name"]
    assert (
        folder.startswith("mini_spoken_digits") and (tasks / folder / "task_metadata.json").exists()
    )
    assert record["task"]["clips"]["test"] > 0 and record["test_score"] > 0
    again = hear("run", *args)  # the folder is there now: used as it is
    assert again.returncode == 0 and "preparing" not in again.stderr
    unknown = hear("run", "--task", "no_such_task", *args[2:])
    assert unknown.returncode == 1 and "no task named no_such_task" in unknown.stderr


def test_a_manifest_keeps_every_serving_setting_for_its_rerun(tmp_path: Path) -> None:
    from hear_runner.engines.settings import ServeSettings
    from hear_runner.results.manifest import RunManifest

    write_task(tmp_path / "tasks")
    result = hear("run", "--tasks-dir", str(tmp_path / "tasks"), "--model-module", "numpy_logmel",
                  "--results-dir", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "c"),
                  "--probe", "linear", "--max-clip-seconds", "0.75", "--call-timeout", "33")  # fmt: skip
    assert result.returncode == 0, result.stderr
    [path] = (tmp_path / "results" / "manifests").glob("*.json")
    engine = RunManifest.load(path).engine
    assert set(ServeSettings.model_fields) <= set(type(engine).model_fields)
    assert engine.max_clip_seconds == 0.75 and engine.call_timeout == 33


def test_local_engine_run_scores_and_writes_a_record(tmp_path: Path) -> None:
    write_task(tmp_path / "tasks")
    result = hear(
        "run", "--model-module", "numpy_logmel", "--tasks-dir", str(tmp_path / "tasks"),
        "--results-dir", str(tmp_path / "results"), "--grid-points", "2",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "HEAR results" in result.stdout and "toy-1.0.0-full" in result.stdout
    # Not a terminal: progress comes as log lines, with the model's speed.
    assert "toy-1.0.0-full · train: started (4 clips)" in result.stderr
    assert re.search(r"toy-1.0.0-full · test: 4/4 clips, [\d.]+ audio s/s", result.stderr)
    record = json.loads((tmp_path / "results" / "numpy_logmel" / "toy-1.0.0-full.json").read_text())
    assert record["model"]["kind"] == "module" and record["model"]["sample_rate"] == 16000
    assert record["task"]["source_sample_rate"] == 16000 and record["task"]["clips"]["test"] == 4
    assert record["test_score"] == record["scores"]["test"]["top1_acc"] >= 0.75  # chance: 0.5
    assert record["timings"]["embed"] > 0


def log_progress(unit: str, buffer: io.StringIO) -> Any:
    """Progress as log lines (off a terminal) into ``buffer``."""
    from rich.console import Console

    from hear_runner import progress

    return progress.LogProgress(Console(file=buffer, width=200), unit)


def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """progress's clock, moved by hand: ``now[0] += s``."""
    from hear_runner import progress

    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    return now


def test_progress_lines_give_seconds_each_for_slow_work(monkeypatch: pytest.MonkeyPatch) -> None:
    now, buffer = frozen_clock(monkeypatch), io.StringIO()
    log = log_progress("trainings", buffer)
    bar = log.add_task("esc50 · fast probe", total=8)
    now[0] += 180.0
    log.advance(bar, 2)  # a quarter: a line
    now[0] += 30.0
    log.advance(bar, 1)
    fast = log_progress("clips", buffer)
    fast.add_task("esc50 · train", total=400)
    now[0] += 2.0
    fast.advance(0, 100)
    lines = buffer.getvalue().splitlines()
    assert lines[1] == "esc50 · fast probe: 2/8 trainings, 90 s each, 180 s, about 540 s left"
    assert lines[2] == "esc50 · fast probe: 3/8 trainings, 70 s each, 210 s, about 350 s left"
    assert lines[4] == "esc50 · train: 100/400 clips, 50.0 clips/s, 2 s, about 6 s left"


def test_progress_of_a_resumed_probe_leaves_loaded_trainings_out_of_its_time_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Trainings an earlier run saved load in a second: counted in the rate, they would
    promise a 5-hour probe's rest in seconds."""
    now, buffer = frozen_clock(monkeypatch), io.StringIO()
    log = log_progress("trainings", buffer)
    bar = log.add_task("dcase · fast probe", total=8)
    now[0] += 1.0
    log.loaded(bar, 3)
    now[0] += 600.0
    log.advance(bar, 1)
    lines = buffer.getvalue().splitlines()
    assert lines[1] == "dcase · fast probe: 3/8 trainings (3 loaded), 1 s"
    assert lines[2] == (
        "dcase · fast probe: 4/8 trainings (3 loaded), 600 s each, 601 s, about 2400 s left"
    )

    # The same on a terminal's bars (rich's clock is the console's)
    from rich.console import Console

    from hear_runner import progress

    screen = Console(file=io.StringIO(), force_terminal=True, get_time=lambda: now[0])
    live = progress.LiveProgress(screen, "trainings")
    bar = live.add_task("dcase · fast probe", total=8)
    now[0] += 1.0
    live.loaded(bar, 3)
    for _ in range(2):
        now[0] += 600.0
        live.advance(bar, 1)
    [task] = live.bars.tasks
    assert task.completed == 5 and task.time_remaining == 1800.0
    assert str(progress._CountSpeed("trainings").render(task)) == "600 s each"


def test_quiet_progress_logs_where_it_stands(monkeypatch: pytest.MonkeyPatch) -> None:
    """One training of a full-size probe can take many minutes: a log that stays silent
    meanwhile reads as a hung run, so an unfinished task says where it stands."""
    import threading

    from hear_runner import progress

    now, buffer = frozen_clock(monkeypatch), io.StringIO()
    log = log_progress("trainings", buffer)
    bar = log.add_task("dcase · fast probe", total=8)
    now[0] += 74.0
    log.advance(bar, 1)  # a line: the first training (not a quarter, but LOG_EVERY passed)
    now[0] += progress.QUIET_AT_MOST - 1
    log.beat()  # not yet quiet long enough
    now[0] += 1
    log.beat()
    now[0] += 10
    log.beat()  # it has just said where it stands
    done = log.add_task("dcase · test", total=2)
    log.advance(done, 2)
    now[0] += progress.QUIET_AT_MOST * 2
    log.beat()  # the probe again; the finished one says nothing more
    lines = buffer.getvalue().splitlines()
    assert lines[1] == "dcase · fast probe: 1/8 trainings, 74 s each, 74 s, about 518 s left"
    assert lines[2] == "dcase · fast probe: 1/8 trainings, 374 s each, 374 s, about 2618 s left"
    assert lines[3:5] == ["dcase · test: started (2 trainings)",
                          "dcase · test: 2/2 trainings, 0 s"]  # fmt: skip
    assert lines[5] == "dcase · fast probe: 1/8 trainings, 984 s each, 984 s, about 6888 s left"
    assert len(lines) == 6

    # The watching thread does it on its own, and stops with the progress.
    monkeypatch.undo()
    monkeypatch.setattr(progress, "QUIET_AT_MOST", 0.2)
    buffer = io.StringIO()
    with log_progress("trainings", buffer) as live:
        live.add_task("slow · fast probe", total=8)
        for _ in range(100):
            if len(buffer.getvalue().splitlines()) >= 3:
                break
            threading.Event().wait(0.05)
    watched = buffer.getvalue().splitlines()
    assert len(watched) >= 3 and watched[1].startswith("slow · fast probe: 0/8 trainings, ")
    assert not any(t.name == "hear-progress" for t in threading.enumerate())


def test_a_long_training_says_its_epoch_until_it_is_done(monkeypatch: pytest.MonkeyPatch) -> None:
    """A log saying "0/8 trainings" for an hour cannot tell a training at epoch 30 from one
    near the cap: the training in progress notes where it stands, until it is done."""
    from rich.console import Console

    from hear_runner import progress

    now, buffer = frozen_clock(monkeypatch), io.StringIO()
    log = log_progress("trainings", buffer)
    bar = log.add_task("dcase · fast probe", total=8)
    where = "epoch 230 of at most 500 (4.5 s an epoch), best check 0.612 at epoch 200"
    log.note(bar, where)
    now[0] += progress.QUIET_AT_MOST
    log.beat()
    now[0] += progress.LOG_EVERY
    log.advance(bar, 1)
    lines = buffer.getvalue().splitlines()
    assert lines[1] == f"dcase · fast probe: 0/8 trainings, 300 s; now {where}"
    assert lines[2] == "dcase · fast probe: 1/8 trainings, 330 s each, 330 s, about 2310 s left"

    screen = Console(file=io.StringIO(), width=200)
    live = progress.LiveProgress(screen, "trainings")
    bar = live.add_task("dcase · fast probe", total=8)
    live.note(bar, "epoch 3 of at most 500 [no markup]")
    screen.print(live.bars.make_tasks_table(live.bars.tasks))
    assert "epoch 3 of at most 500 [no markup]" in screen.file.getvalue()  # type: ignore[attr-defined]
    live.advance(bar, 1)
    assert live.bars.tasks[0].fields["note"] == ""


def test_kfold_task_reports_fold_mean_and_spread(tmp_path: Path) -> None:
    write_task(tmp_path / "tasks", "toyk-1.0.0-full", nfolds=3)
    result = hear(
        "run", "--model-module", "numpy_logmel", "--tasks-dir", str(tmp_path / "tasks"),
        "--results-dir", str(tmp_path / "results"), "--json", "--grid-points", "2",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [record] = json.loads(result.stdout)
    assert record["probe"]["mode"] == "fast" and len(record["probe"]["grid"]) == 2
    assert [f["test"] for f in record["folds"]] == ["fold00", "fold01", "fold02"]
    per_fold = [f["scores"]["test"]["top1_acc"] for f in record["folds"]]
    assert record["test_score"] == pytest.approx(sum(per_fold) / 3)
    assert record["test_score_std"] is not None


def test_broken_metadata_is_one_line_naming_file_and_field(tmp_path: Path) -> None:
    path = write_task(tmp_path)
    metadata = json.loads((path / "task_metadata.json").read_text())
    metadata["prediction_type"] = "regression"
    (path / "task_metadata.json").write_text(json.dumps(metadata))
    result = hear("run", "--model-module", "numpy_logmel", "--tasks-dir", str(tmp_path))
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert str(path / "task_metadata.json") in line and "field 'prediction_type'" in line


def test_module_that_fails_to_import_is_one_line(tmp_path: Path) -> None:
    write_task(tmp_path)
    result = hear("run", "--model-module", "not_a_module_abc", "--tasks-dir", str(tmp_path))
    assert result.returncode == 1
    error = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(error) == 1 and "No module named 'not_a_module_abc'" in error[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model-module", "a", "--model-image", "b"], "not both"),
        ([], "--model-image (Docker) or --model-module"),
        (["--model-module", "numpy_logmel", "--model-options", "[1]"], "expected a JSON object"),
        (["--model-module", "numpy_logmel", "--transport", "pigeon"], "--transport 'pigeon'"),
    ],
)
def test_bad_arguments_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    write_task(tmp_path)
    result = hear("run", *args, "--tasks-dir", str(tmp_path))
    assert result.returncode == 1 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_plugins_lists_built_ins_with_versions() -> None:
    result = hear("plugins", "--json")
    assert result.returncode == 0
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["core_metrics"]["hooks"] == ["hear_register_metrics"]
    assert plugins["mini"]["hooks"] == ["hear_register_tasks"]
    assert plugins["core_metrics"]["distribution"] == "hear-runner"
    assert plugins["core_metrics"]["version"]


def test_plugin_block_list_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEAR_DISABLE_PLUGINS", "mini,hear2021,models")
    result = hear("plugins", "--json")
    assert [p["name"] for p in json.loads(result.stdout)] == ["core_metrics"]


def _retarget(path: Path, **metadata: object) -> None:
    data = json.loads((path / "task_metadata.json").read_text())
    data.update(metadata)
    (path / "task_metadata.json").write_text(json.dumps(data))


def test_multilabel_scene_task_is_scored(tmp_path: Path) -> None:
    path = write_task(tmp_path / "tasks", "toyml-1.0.0-full")
    _retarget(path, prediction_type="multilabel", evaluation=["mAP", "aucroc", "d_prime"])
    for split in ("train", "valid", "test"):
        labels = {f"{i}.wav": ([] if i == 3 else [["low", "high"][i % 2]]) for i in range(4)}
        (path / f"{split}.json").write_text(json.dumps(labels))
    result = hear("run", "--model-module", "numpy_logmel", "--tasks-dir", str(tmp_path / "tasks"),
                  "--results-dir", str(tmp_path / "r"), "--json", "--probe", "linear")  # fmt: skip
    assert result.returncode == 0, result.stderr
    [record] = json.loads(result.stdout)
    assert record["primary_metric"] == "mAP" and set(record["scores"]["test"]) == {
        "mAP",
        "aucroc",
        "d_prime",
    }


def test_event_task_is_scored_with_event_metrics(tmp_path: Path) -> None:
    path = write_task(tmp_path / "tasks", "toyev-1.0.0-full")
    _retarget(path, embedding_type="event", prediction_type="multilabel",
              evaluation=["event_onset_200ms_fms", "segment_1s_er"])  # fmt: skip
    for split in ("train", "valid", "test"):
        events = {
            f"{i}.wav": [{"label": ["low", "high"][i % 2], "start": 0.0, "end": 500.0}]
            for i in range(4)
        }
        (path / f"{split}.json").write_text(json.dumps(events))
    result = hear("run", "--model-module", "numpy_logmel", "--tasks-dir", str(tmp_path / "tasks"),
                  "--results-dir", str(tmp_path / "r"), "--json", "--grid-points", "2")  # fmt: skip
    assert result.returncode == 0, result.stderr
    [record] = json.loads(result.stdout)
    fold = record["folds"][0]
    assert record["primary_metric"] == "event_onset_200ms_fms"
    assert set(fold["details"]["postprocessing"]) == {"median_filter_ms", "min_duration"}
    assert set(fold["details"]["test"]["event_onset_200ms_fms"]) == {
        "f_measure",
        "precision",
        "recall",
    }
    assert record["test_score"] > 0.5  # tones filling the clip: onsets at 0 are easy


def test_scene_metric_on_event_task_names_the_field(tmp_path: Path) -> None:
    path = write_task(tmp_path, "toyev-1.0.0-full")
    _retarget(path, embedding_type="event", prediction_type="multilabel", evaluation=["top1_acc"])
    for split in ("train", "valid", "test"):
        (path / f"{split}.json").write_text(json.dumps({f"{i}.wav": [] for i in range(4)}))
    result = hear("run", "--model-module", "numpy_logmel", "--tasks-dir", str(tmp_path))
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "task_metadata.json: field 'evaluation': top1_acc is a scene metric" in line


def test_missing_audio_file_is_one_line_naming_it(tmp_path: Path) -> None:
    path = write_task(tmp_path)
    (path / "16000" / "valid" / "2.wav").unlink()
    result = hear("run", "--model-module", "numpy_logmel", "--tasks-dir", str(tmp_path),
                  "--results-dir", str(tmp_path / "r"))  # fmt: skip
    assert result.returncode == 1
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "16000/valid/2.wav: audio file is missing" in errors[0]


def test_task_specific_param_grid_and_variable_length_clips(tmp_path: Path) -> None:
    path = write_task(tmp_path / "tasks", "toyvar-1.0.0-full")
    _retarget(path, sample_duration=None, use_scoring_for_early_stopping=False,
              evaluation_params={"task_specific_param_grid": {"max_epochs": [7], "check_val_every_n_epoch": [1]}})  # fmt: skip
    import soundfile as sf

    audio, rate = sf.read(path / "16000" / "test" / "1.wav")
    sf.write(path / "16000" / "test" / "1.wav", audio[: rate // 4], rate)  # a shorter clip
    result = hear("run", "--model-module", "numpy_logmel", "--tasks-dir", str(tmp_path / "tasks"),
                  "--results-dir", str(tmp_path / "r"), "--json", "--grid-points", "1")  # fmt: skip
    assert result.returncode == 0, result.stderr
    [record] = json.loads(result.stdout)
    assert (
        record["probe"]["config"]["max_epochs"] == 7
        and record["probe"]["config"]["check_every"] == 1
    )
    assert record["probe"]["selection_metric"] == "validation loss"
    assert record["folds"][0]["epochs_trained"] <= 7


def test_mini_suite_covers_every_domain_and_shape(tmp_path: Path) -> None:
    listed = json.loads(hear("tasks", "list", "--json", "--tasks-dir", str(tmp_path)).stdout)
    mini = [t for t in listed if t["suite"] == "mini"]
    assert len(mini) >= 6
    assert {t["domain"] for t in mini} == {"speech", "environment", "music"}
    assert {t["embedding_type"] for t in mini} == {"scene", "event"}
    assert {t["prediction_type"] for t in mini} == {"multiclass", "multilabel"}
    assert {"trainvaltest"} < {t["split_mode"] for t in mini}  # and a k-fold mode
    assert len([t for t in listed if t["suite"] == "hear2021"]) == 19


def test_faithful_probe_tries_heareval_grid_and_keeps_the_best(tmp_path: Path) -> None:
    write_task(tmp_path / "tasks", nfolds=3)
    result = hear("run", "--model-module", "numpy_logmel", "--tasks-dir", str(tmp_path / "tasks"),
                  "--results-dir", str(tmp_path / "r"), "--probe", "faithful", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    [record] = json.loads(result.stdout)
    probe = record["probe"]
    assert probe["mode"] == "faithful" and len(probe["grid"]) == 8
    best = max(probe["grid"], key=lambda p: p["valid_selection_score"])
    assert probe["config"]["lr"] == best["lr"]
    assert probe["config"]["initialization"].startswith("xavier")
    assert len(record["folds"]) == 3


def test_run_probes_in_bfloat16_when_asked_records_it_and_a_rerun_repeats_it(
    tmp_path: Path,
) -> None:
    write_task(tmp_path / "tasks")
    result = hear("run", "--model-module", "numpy_logmel", "--tasks-dir", str(tmp_path / "tasks"),
                  "--results-dir", str(tmp_path / "r"), "--grid-points", "1",
                  "--precision", "bfloat16", "--shuffle-batches", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    [record] = json.loads(result.stdout)
    assert record["probe"]["config"]["precision"] == "bfloat16"
    assert record["probe"]["config"]["shuffle_batches"] is True
    [manifest] = (tmp_path / "r" / "manifests").glob("*.json")
    probe = json.loads(manifest.read_text())["probe"]
    assert (probe["precision"], probe["shuffle_batches"]) == ("bfloat16", True)
    faithful = hear("run", "--model-module", "numpy_logmel", "--tasks-dir", str(tmp_path / "tasks"),
                    "--results-dir", str(tmp_path / "r2"), "--probe", "faithful",
                    "--precision", "bfloat16")  # fmt: skip
    assert faithful.returncode == 1
    assert faithful.stderr.strip().splitlines() == [
        "error: --precision bfloat16: only the fast probe trains in reduced precision (the "
        "faithful probe trains in float32, as heareval does)"
    ]
    assert not (tmp_path / "r2").exists()  # refused before any model started


def test_unknown_probe_mode_is_one_line(tmp_path: Path) -> None:
    write_task(tmp_path)
    result = hear(
        "run", "--model-module", "numpy_logmel", "--tasks-dir", str(tmp_path), "--probe", "quick"
    )
    assert (
        result.returncode == 1
        and "probe mode 'quick': expected one of fast, faithful, linear" in result.stderr
    )
