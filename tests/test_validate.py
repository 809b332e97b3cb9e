"""`hear validate` on real servers: correct models pass, each deliberate fault fails its check.

The faults come from tests/hear_modules/broken.py (named fakes, chosen by a load_model
option) and broken_load.py (load_model raises); the local engine serves them as modules,
the Docker engine as images built FROM hear/base.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hear_runner.engines.base import ModelSource
from hear_runner.engines.local import LocalEngine
from hear_runner.validate import CHECK_NAMES, validate
from hear_runner.validate import session as validate_session

HEAR_MODULES = Path(__file__).parent / "hear_modules"


def hear(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hear_runner", *args], capture_output=True, text=True, timeout=600
    )


def validate_json(*args: str) -> tuple[int, dict[str, Any], str]:
    """Run `hear validate --json`; the report's `passed` must agree with the exit code."""
    result = hear("validate", "--json", *args)
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] is (result.returncode == 0), (report["passed"], result.returncode)
    assert [c["name"] for c in report["checks"]] == list(CHECK_NAMES)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, report, result.stderr


def by_result(report: dict[str, Any], result: str) -> dict[str, str]:
    return {c["name"]: c["detail"] for c in report["checks"] if c["result"] == result}


# -- local engine ---------------------------------------------------------------------------
def test_correct_module_passes_every_check() -> None:
    code, report, stderr = validate_json("--model-module", "numpy_logmel", "--long-seconds", "60")
    assert code == 0
    assert by_result(report, "fail") == {}
    assert by_result(report, "skip") == {"image_labels": "skipped: not an image"}
    assert report["module"] == "numpy_logmel" and report["image_id"] is None
    assert report["hello"]["sample_rate"] == 16000
    passed = by_result(report, "pass")
    assert "[2, 43, 64]" in passed["timestamp_shapes"]  # 1.07 s at 16 kHz, 25 ms hop, 64 bands
    assert "25.00 ms hop" in passed["timestamp_hop"]
    assert "60 s of audio" in passed["long_input"] and "2401 frames" in passed["long_input"]
    m = report["measurements"]
    assert m["cold_start_seconds"] > 0 and m["long_input_seconds"] > 0
    assert m["peak_rss_bytes"] >= m["peak_rss_bytes_after_load"] > 10 * 2**20
    assert "• long_input: pass" in stderr  # progress, check by check


@pytest.mark.parametrize(
    ("fault", "check", "says"),
    [
        ("wrong_size", "scene_shape", "shape [4, 7]"),
        ("nan", "finite", "NaN or Inf in timestamp embeddings (1.07 s) (44 values)"),
        ("irregular_hop", "timestamp_hop", "irregular hop: from 50.000 to 57.000 ms"),
        ("past_end", "timestamp_range", "last timestamp 1100.000 ms is past the end"),
        ("nondeterministic", "determinism", "the same call twice differs"),
        ("batch_dependent", "batch_invariance", "against one by one: scene embeddings"),
    ],
)
def test_each_fault_fails_its_check_and_only_it(fault: str, check: str, says: str) -> None:
    code, report, _ = validate_json(
        "--model-module", "broken", "--model-options", json.dumps({"fault": fault}),
        "--long-seconds", "0",
    )  # fmt: skip
    assert code == 1
    failed = by_result(report, "fail")
    assert set(failed) == {check}, failed
    assert says in failed[check]


def test_the_correct_broken_module_passes() -> None:
    """Without a fault the fake is a correct model: the failures above are its faults'."""
    code, report, _ = validate_json("--model-module", "broken", "--long-seconds", "30")
    assert code == 0 and by_result(report, "fail") == {}


def test_load_crash_is_a_failed_check_not_a_traceback() -> None:
    code, report, _ = validate_json("--model-module", "broken_load")
    assert code == 1
    failed = by_result(report, "fail")
    assert set(failed) == {"load"}
    assert "could not load its model: RuntimeError: weights file is corrupt" in failed["load"]
    assert "broken_load" in failed["load"]
    assert report["hello"] is None
    load = report["checks"][0]
    assert "Traceback" in load["traceback"]  # the model's, kept in the report
    skipped = by_result(report, "skip")
    assert set(skipped) == set(CHECK_NAMES) - {"load"}
    assert skipped["scene_shape"] == "skipped: the model did not load"


def test_table_output_names_the_failed_check(tmp_path: Path) -> None:
    result = hear(
        "validate", "--model-module", "broken", "--model-options", '{"fault": "past_end"}',
        "--long-seconds", "0",
    )  # fmt: skip
    assert result.returncode == 1
    rows = [line for line in result.stdout.splitlines() if "timestamp_range" in line]
    assert rows and "FAIL" in rows[0]
    assert "broken: failed: 11 passed, 1 failed, 2 skipped" in result.stdout


def test_a_server_that_dies_is_restarted_then_given_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure that kills the server: the next check gets a fresh one, up to MAX_RESTARTS;
    after that, checks that need a server are skipped, naming the check that lost it."""
    monkeypatch.setattr(validate_session, "MAX_RESTARTS", 1)
    source = ModelSource(kind="module", ref="broken", options={"fault": "exit"})
    report = validate(LocalEngine(), source, long_seconds=5)
    results = {c.name: c for c in report.checks}
    assert results["timestamp_shapes"].result == "fail"
    assert "died" in results["timestamp_shapes"].detail
    assert "exited with code 7" in results["timestamp_shapes"].detail
    # The one restart serves scene_shape, which kills it again ...
    assert results["scene_shape"].result == "fail" and report.restarts == 1
    # ... so the long input, which needs a server, is skipped and says why.
    assert results["long_input"].result == "skip"
    assert results["long_input"].detail.startswith("skipped: server stopped after scene_shape")
    assert not report.passed


@pytest.mark.parametrize(
    ("fault", "failed", "skip"),
    [
        ("wrong_size", "scene_shape", "skipped: needs the scene embeddings (scene_shape did not pass)"),
        ("nondeterministic", "determinism", "skipped: outputs are not deterministic (determinism failed)"),
    ],
)  # fmt: skip
def test_a_check_whose_dependency_failed_is_skipped_naming_it(
    fault: str, failed: str, skip: str
) -> None:
    source = ModelSource(kind="module", ref="broken", options={"fault": fault})
    report = validate(LocalEngine(), source, long_seconds=0)
    results = {c.name: c for c in report.checks}
    assert results[failed].result == "fail"
    assert results["batch_invariance"].result == "skip"
    assert results["batch_invariance"].detail == skip


def test_usage_errors_exit_2() -> None:
    both = hear("validate", "--model-module", "numpy_logmel", "--model-image", "x/y:1")
    assert both.returncode == 2 and both.stderr.startswith("error:")
    assert "Traceback" not in both.stderr
    neither = hear("validate")
    assert neither.returncode == 2
    negative = hear("validate", "--model-module", "numpy_logmel", "--long-seconds", "-1")
    assert negative.returncode == 2


def test_help_explains_the_checks() -> None:
    result = hear("validate", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for words in ("1.07, 1.98 and 4.0 s", "2.74 s", "NaN", "--long-seconds", "labels", "Exit"):
        assert words in text, words


# -- Docker engine ----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def broken_images(docker_client, naive_image: str, tmp_path_factory) -> dict[str, str]:
    """The fakes as images, built the plain way FROM hear/base (naive_image builds hear/base).

    broken-labels serves the correct module but carries labels stamped for another model.
    """
    import shutil

    context = tmp_path_factory.mktemp("broken-images")
    shutil.copy(HEAR_MODULES / "broken.py", context)
    shutil.copy(HEAR_MODULES / "broken_load.py", context)
    head = "FROM hear/base:latest\nWORKDIR /opt/model\nCOPY broken.py broken_load.py /opt/model/\n"
    stale = {
        "org.hear.model": "broken",
        "org.hear.sample_rate": "44100",
        "org.hear.scene_embedding_size": "8",
        "org.hear.timestamp_embedding_size": "8",
    }
    dockerfiles = {
        "wrong-size": 'ENV HEAR_MODULE=broken HEAR_MODEL_OPTIONS=\'{"fault": "wrong_size"}\'\n',
        "load": "ENV HEAR_MODULE=broken_load\n",
        "labels": "ENV HEAR_MODULE=broken\n"
        + "".join(f"LABEL {k}={json.dumps(v)}\n" for k, v in stale.items()),
    }
    tags = {}
    for name, tail in dockerfiles.items():
        (context / f"Dockerfile.{name}").write_text(head + tail)
        tags[name] = f"hear-test/broken-{name}:latest"
        docker_client.images.build(
            path=str(context), dockerfile=f"Dockerfile.{name}", tag=tags[name], rm=True
        )
    return tags


@pytest.mark.docker
def test_naive_image_passes_with_a_20_minute_input(naive_image: str, no_leftover_containers):
    """The HEAR 2021 naive baseline, unchanged in its image, with the full 1200 s input
    (about 4 s of model time on a 2-core CPU)."""
    code, report, _ = validate_json("--model-image", naive_image)
    assert code == 0, by_result(report, "fail")
    assert by_result(report, "skip") == {}
    passed = by_result(report, "pass")
    assert passed["image_labels"] == "5 labels agree with the hello"
    assert "1200 s of audio" in passed["long_input"] and "24001 frames" in passed["long_input"]
    assert report["image_id"].startswith("sha256:") and report["module"] == "hearbaseline.naive"
    assert "container hear-naive" in passed["load"]
    assert report["measurements"]["long_input_audio_per_second"] > 20


@pytest.mark.docker
def test_wrong_size_image_fails_naming_container_and_image(broken_images, no_leftover_containers):
    code, report, _ = validate_json("--model-image", broken_images["wrong-size"])
    assert code == 1
    failed = by_result(report, "fail")
    assert set(failed) == {"scene_shape"}
    detail = failed["scene_shape"]
    assert "container hear-broken-wrong-size" in detail
    assert f"(image {broken_images['wrong-size']})" in detail and "shape [4, 7]" in detail
    # The client killed that container; a fresh one served the checks after it.
    assert report["restarts"] == 1
    assert by_result(report, "pass").keys() >= {"determinism", "long_input", "finite"}


@pytest.mark.docker
def test_load_crash_image_fails_load(broken_images, no_leftover_containers):
    code, report, _ = validate_json("--model-image", broken_images["load"])
    assert code == 1
    failed = by_result(report, "fail")
    assert set(failed) == {"load"}
    assert f"(image {broken_images['load']}) could not load its model" in failed["load"]
    assert "RuntimeError: weights file is corrupt" in failed["load"]


@pytest.mark.docker
def test_stale_labels_fail_image_labels(broken_images, no_leftover_containers):
    code, report, _ = validate_json(
        "--model-image", broken_images["labels"], "--long-seconds", "0", "--transport", "stdio"
    )
    assert code == 1
    failed = by_result(report, "fail")
    assert set(failed) == {"image_labels"}
    assert "org.hear.sample_rate='44100' but the hello says '16000'" in failed["image_labels"]


@pytest.mark.docker
def test_missing_image_is_a_usage_error(docker_client):
    result = hear("validate", "--model-image", "hear-test/no-such-image:never")
    assert result.returncode == 2
    assert "no-such-image" in result.stderr and "Traceback" not in result.stderr
