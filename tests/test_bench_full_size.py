"""bench/full_size.py: one real mini task end to end (prepare, embed in Docker, a linear
probe), and the arithmetic of its report (extrapolation, memory rule, throughputs)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hear_runner.plan.throughput import Throughputs

ROOT = Path(__file__).parent.parent
SCRIPT = ROOT / "bench" / "full_size.py"
sys.path.insert(0, str(ROOT / "bench"))

import full_size_report as report  # noqa: E402


def _row(scale: str, audio_s: float, embed_s: float, rows: int, probe_s: float) -> dict:
    return {
        "model": "m",
        "task": "t",
        "scale": scale,
        "task_info": {
            "embedding_type": "scene",
            "audio_s": audio_s,
            "training_rows": rows,
            "dim": 8,
            "clips": 10,
            "split_mode": "trainvaltest",
            "clips_per_split": {"train": rows},
        },
        "embed": {"status": "ok", "wall_s": embed_s},
        "probes": {
            "linear": {
                "status": "ok",
                "wall_s": probe_s,
                "units": rows * 8,
                "training_rows": rows,
                "dim": 8,
                "grid_points": 1,
            }
        },
    }


def test_extrapolation_is_linear_from_one_scale() -> None:
    result = report.extrapolate([report.Point(0.1, 360.0, 12.0)])
    assert result is not None
    assert result["full_size"] == 3600.0
    assert result["seconds"] == 120.0
    assert result["exponent"] == 1.0
    assert "linear" in result["method"]


def test_extrapolation_fits_the_exponent_from_two_scales() -> None:
    points = [report.Point(0.1, 100.0, 10.0), report.Point(0.2, 200.0, 40.0)]
    result = report.extrapolate(points)
    assert result is not None
    assert math.isclose(result["exponent"], 2.0)
    # from the larger measurement: 40 s * (1000 / 200)**2 = 1000 s
    assert result["seconds"] == 1000.0
    assert "fitted from scales 0.1, 0.2" in result["method"]


def test_extrapolation_stays_linear_where_start_up_dominates() -> None:
    # 10x the size in 1.5x the time: k = 0.18, which would predict less than linear
    points = [report.Point(0.01, 10.0, 20.0), report.Point(0.1, 100.0, 30.0)]
    result = report.extrapolate(points)
    assert result is not None
    assert result["exponent"] == 1.0 and result["seconds"] == 300.0
    assert "0.18 < 1" in result["method"]


def test_annotate_extrapolates_rows_below_full_size_only() -> None:
    rows = [
        _row("0.1", 360.0, 6.0, 1000, 4.0),
        _row("0.2", 720.0, 12.0, 2000, 16.0),
        {**_row("smoke", 10.0, 1.0, 10, 1.0), "task": "u"},
    ]
    rows[2]["task_info"].update(embedding_type="event", splits={"train": [30, 8], "test": [12, 8]})
    report.annotate(rows)
    small, large, smoke = rows
    assert smoke["extrapolated"] is None
    assert smoke["task_info"]["frames"] == 42 and small["task_info"]["frames"] is None
    assert smoke["dominant_stage"] == "embed"
    assert small["dominant_stage"] == "embed" and large["dominant_stage"] == "probe linear"
    # embed doubles with audio (k = 1): 12 s * 5 = 60 s; probe quadruples (k = 2): 16 * 25
    assert large["extrapolated"]["embed"]["seconds"] == 60.0
    assert large["extrapolated"]["probe linear"]["seconds"] == 400.0
    assert small["extrapolated"]["probe linear"]["seconds"] == 400.0
    assert math.isclose(small["extrapolated"]["probe linear"]["exponent"], 2.0)
    # a stage that timed out is extrapolated alone, linearly, as a lower bound
    large["probes"]["linear"]["status"] = "timeout"
    report.annotate(rows)
    assert large["extrapolated"]["probe linear"] == {
        "seconds": 80.0, "full_size": 10000.0, "exponent": 1.0,
        "method": "extrapolated, linear in size", "lower_bound": True,
    }  # fmt: skip


def test_extrapolation_goes_to_the_released_size_where_small_splits_were_rounded_up() -> None:
    """MAESTRO at --scale 0.02 keeps 2 clips in each of its 5 folds: 10 of the released 185
    clips. Its probe's time extrapolates by 185/10, not by 1/0.02 (2.7x more)."""
    row = _row("0.02", 1200.0, 12.0, 14406, 967.0)
    row["task"] = "maestro"
    row["task_info"]["clips_per_split"] = {f"fold{i:02d}": 2 for i in range(5)}
    report.annotate([row])
    assert report.released_clips("maestro") == {f"fold{i:02d}": 37 for i in range(5)}
    assert report.measured_fraction(row, "probe linear") == 10 / 185
    probe = row["extrapolated"]["probe linear"]
    assert probe["full_size"] == round(14406 * 18.5, 1) and probe["seconds"] == 17889.5
    # train/valid/test: the probe's rows follow the train split, the audio every split
    row = _row("0.1", 864.0, 12.0, 9604, 1012.0)
    row["task"] = "dcase2016_task2"
    released = report.released_clips("dcase2016_task2")
    assert released is not None and set(released) == {"train", "valid", "test"}
    row["task_info"]["clips_per_split"] = {"train": 4, "valid": 2, "test": 2}
    report.annotate([row])
    assert report.measured_fraction(row, "probe linear") == 4 / released["train"]
    assert report.measured_fraction(row, "embed") == 8 / sum(released.values())
    # a task the catalogue does not hold (or whose splits differ): --scale as given
    assert report.measured_fraction(_row("0.1", 1.0, 1.0, 10, 1.0), "embed") == 0.1


def test_a_new_row_keeps_the_probes_of_other_modes_the_old_one_measured() -> None:
    old = {**_row("full", 10.0, 1.0, 10, 152.0), "generated": "then", "command": "linear"}
    new = {**_row("full", 10.0, 2.0, 10, 9301.0), "generated": "now"}
    new["probes"] = {"fast": {**new["probes"].pop("linear"), "status": "timeout"}}
    (row,) = report.merge_rows([old], [new])
    assert row["generated"] == "now" and row["embed"]["wall_s"] == 2.0
    assert row["probes"]["fast"]["wall_s"] == 9301.0
    assert row["probes"]["linear"]["wall_s"] == 152.0
    assert row["probes"]["linear"]["measured_in"] == {
        "generated": "then", "command": "linear", "commit": None,
    }  # fmt: skip
    (again,) = report.merge_rows([row], [{**new, "probes": dict(new["probes"])}])
    assert set(again["probes"]) == {"fast", "linear"}  # carried on, not lost the next time


def test_memory_rule_and_throughputs() -> None:
    rule = report.memory_rule(training_rows=100_000, dim=512, used_mib=2000.0)
    assert rule["bound_mib"] == round((2e9 + 100_000 * 512 * 4) / 2**20, 1)
    assert rule["pass"] is True
    assert report.memory_rule(10, 10, 1908.0)["pass"] is False
    rows = [_row("0.1", 100.0, 4.0, 100, 1.5), _row("0.2", 300.0, 6.0, 300, 3.5)]
    measured = {"command": "c", "date": "d", "machine": "m", "note": ""}
    summary = report.throughputs(rows, measured)
    table = Throughputs.model_validate(summary)  # the schema `hear plan` reads
    # wall = 10 clips x 0.3 s + audio s / 100: (10, 100 s) -> 4 s, (10, 300 s) -> 6 s
    model = table.models["m"]
    assert model.scene_audio_per_second == 100.0
    assert math.isclose(model.scene_seconds_per_clip, 0.3)
    assert math.isclose(model.embed_seconds("scene", 10, 300.0), 6.0)
    assert table.models["default"].scene_audio_per_second == 100.0
    linear = table.probes["linear"]
    # wall = 0.5 s a training + 0.00125 s a unit (one training; units = rows * 8)
    assert math.isclose(linear.seconds_per_training, 0.5)
    assert math.isclose(linear.seconds_per_unit, 0.00125)
    assert "fitted to 2 run(s)" in linear.measured.note
    # hear plan's estimates: in sample (both rows), and left out (row 0 from row 1 alone:
    # audio seconds only, 300 s in 6 s -> 50 audio s/s -> 100 s of audio in 2 s)
    section = report.plan_check(rows, measured)
    assert "| m | t | 0.1 | embed | 4.0 | 4.0 | 1.00 | 2.0 | 0.50 |" in section


def test_throughputs_can_be_fitted_to_one_cpus_rows() -> None:
    fast, slow = _row("0.1", 100.0, 1.0, 100, 1.0), _row("0.2", 100.0, 4.0, 100, 4.0)
    fast["machine"], slow["machine"] = {"cpu_model": "Intel Xeon"}, {"cpu_model": "AMD EPYC"}
    assert report.rows_on([fast, slow], None) == [fast, slow]
    assert report.rows_on([fast, slow], "Xeon") == [fast]
    measured = {"command": "c", "date": "d", "machine": "m", "note": ""}
    table = Throughputs.model_validate(report.throughputs(report.rows_on([fast, slow], "Xeon"),
                                                          measured))  # fmt: skip
    assert table.models["m"].scene_audio_per_second == 100.0  # the slow row left out
    with pytest.raises(SystemExit, match=r"--fit-cpu 'Graviton'.*seen: AMD EPYC, Intel Xeon"):
        report.rows_on([fast, slow], "Graviton")


@pytest.mark.docker
def test_a_resumed_probe_sums_its_segments_times_and_keeps_their_largest_peaks() -> None:
    import full_size

    first = {"status": "timeout", "wall_s": 600.5, "user_s": 1100.0, "sys_s": 20.0,
             "max_rss_mib": 900.0, "tree_pss_peak_mib": 950.0, "tree_anon_peak_mib": 800.0,
             "log": "a.log"}  # fmt: skip
    second = {**first, "wall_s": 300.0, "user_s": 550.0, "max_rss_mib": 1000.0,
              "tree_anon_peak_mib": 700.0, "log": "b.log"}  # fmt: skip
    third = {**second, "status": "ok", "wall_s": 100.0, "sys_s": None, "score": 0.9}
    first["superseded"] = [{"status": "timeout", "wall_s": 9301.0}]
    joined = full_size.joined(full_size.joined(first, second), third)
    assert joined["superseded"] == first["superseded"]  # kept through every segment
    assert [s["log"] for s in joined["segments"]] == ["a.log", "b.log", "b.log"]
    assert joined["status"] == "ok" and joined["score"] == 0.9
    assert joined["wall_s"] == 1000.5 and joined["user_s"] == 2200.0
    assert joined["sys_s"] is None  # a segment without it: no sum
    assert (joined["max_rss_mib"], joined["tree_anon_peak_mib"]) == (1000.0, 800.0)


@pytest.mark.docker
def test_saved_trainings_are_resumed_only_by_the_same_runner_and_plugins(tmp_path: Path) -> None:
    """A segment at a commit that changed only the bench or the docs resumes the saved
    trainings; one whose hear_runner differs starts the probe over (its key would differ)."""
    import full_size

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(tmp_path), *args], check=True,
                              capture_output=True, text=True)  # fmt: skip
        return done.stdout.strip()

    def commit(path: str, text: str) -> str:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
        git("add", "-A")
        git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", path)
        return git("rev-parse", "HEAD")

    git("init", "-q")
    commit("plugins/p.py", "")
    commit("pyproject.toml", "")
    made = commit("hear_runner/a.py", "x = 1\n")
    docs = commit("README.md", "docs\n")
    code = commit("hear_runner/a.py", "x = 2\n")
    trees = [full_size.runner_trees(c, tmp_path) for c in (made, docs, code)]
    assert None not in trees[0] and trees[0] == trees[1] != trees[2]
    assert None in full_size.runner_trees("0" * 40, tmp_path)  # unknown commit: not the same


def test_full_size_harness_on_a_mini_task(tmp_path: Path) -> None:
    out, md = tmp_path / "full-size.json", tmp_path / "full-size.md"
    throughputs = tmp_path / "throughputs.json"
    subprocess.run(
        [sys.executable, str(SCRIPT), "--model-image", "hear/naive:latest",
         "--tasks-dir", str(tmp_path / "tasks"), "--prepare", "mini", "--scale", "smoke",
         "--tasks", "mini_spoken_digits", "--modes", "linear", "--timeout", "15",
         "--work", str(tmp_path / "work"), "--out", str(out),
         "--throughputs", str(throughputs)],
        check=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    (row,) = json.loads(out.read_text())["rows"]
    assert (row["model"], row["task"], row["scale"]) == (
        "hear/naive:latest", "mini_spoken_digits", "smoke",
    )  # fmt: skip
    info = row["task_info"]
    assert info["clips_per_split"] == {"train": 120, "valid": 40, "test": 40}
    assert info["audio_s"] == 200.0 and info["training_rows"] == 120 and info["dim"] > 0
    assert info["frames"] is None  # a scene task; event tasks count their embedding rows
    assert row["prepare"]["status"] == "ok" and row["prepare"]["wall_s"] > 0
    assert row["prepare"]["folder_existed_before"] is False
    embed = row["embed"]
    assert embed["status"] == "ok" and embed["wall_s"] > 0 and embed["user_s"] > 0
    assert embed["max_rss_mib"] > 50 and embed["tree_pss_peak_mib"] > 50
    assert embed["audio_s_per_s"] == round(200.0 / embed["wall_s"], 2)
    assert embed["out_mib"] > 0 and embed["store_mib"] > 0
    assert embed["container_peak_mib"] > 10  # the naive model's container, from its cgroup
    linear = row["probes"]["linear"]
    assert linear["status"] in ("ok", "timeout") and 0 < linear["wall_s"] < 60
    if linear["status"] == "ok":
        assert 0 <= linear["score"] <= 1
    rule = linear["memory_rule"]
    assert rule["bound_mib"] == round((2e9 + 120 * info["dim"] * 4) / 2**20, 1)
    assert rule["used_mib"] > 50 and rule["pass"] is True
    assert row["dominant_stage"] in ("prepare", "embed", "probe linear")
    assert row["extrapolated"] is None  # smoke is no fraction of full size
    table, _, plan_check = md.read_text().partition("## `hear plan`'s estimates")
    (line,) = [x for x in table.splitlines() if x.startswith("| hear/naive:latest")]
    assert "| hear/naive:latest | mini_spoken_digits | smoke | embed |" in plan_check
    assert "| mini_spoken_digits | smoke | 200 |" in line and "--tasks mini_spoken_digits" in line
    summary = json.loads(throughputs.read_text())
    assert summary["models"]["naive"]["scene_audio_per_second"] > 0  # hear plan's schema
    finished = {"linear"} if linear["status"] == "ok" else set()
    assert set(summary["probes"]) == finished  # fitted from the probes that finished
    md.unlink()
    subprocess.run(
        [sys.executable, str(SCRIPT), "--render", str(out)], check=True, capture_output=True
    )
    assert md.read_text() == table.rstrip("\n") + "\n"  # the table, without the plan check


def test_the_tree_sampler_keeps_within_its_share_of_a_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sample reads each process's memory map, slow for a large one: at a fixed 50 ms the
    sampler took a third of a core from the full-size probe it was measuring."""
    import measure

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        counts = {}
        for share in (1.0, 1e-5):  # no limit; then each sample's CPU time x 100,000 apart
            monkeypatch.setattr(measure, "SAMPLER_CPU_SHARE", share)
            sampler = measure.TreeSampler(sleeper.pid)
            sampler.start()
            time.sleep(1.0)
            sampler.stop()
            assert sampler.peak_kib > 0
            counts[share] = sampler.samples
    finally:
        sleeper.kill()
        sleeper.wait()
    assert counts[1.0] >= 8 and counts[1e-5] == 1, counts
