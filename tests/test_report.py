"""`hear report`: after real runs of two models, the page renders in headless Chromium with
every plot, no console error, and nothing fetched from a network.

Chromium is driven over the DevTools protocol (tests/chromium.py, the standard library only):
console errors and exceptions are collected from the moment the page starts loading, the
rendered DOM is queried, and a screenshot is checked for ink.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from chromium import CHROMIUM, Browser, png_pixels

MODELS = ("numpy_logmel", "torch_mean")


def hear(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hear_runner", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory, tasks_dir: Path) -> dict[str, Any]:
    """Both test models on three mini tasks (multiclass scene, multilabel k-fold scene, event),
    with the linear probe; the results folder and the task folder names."""
    from hear_mini import sound_events, sound_mix, spoken_digits
    from hear_mini import sound_themes as st

    if st.missing_packages(sound_events.CLASSES) or st.missing_packages(sound_mix.CLASSES):
        pytest.skip("sound themes not installed (scripts/setup installs them)")
    root = tmp_path_factory.mktemp("report")
    tasks = root / "tasks"
    digits = spoken_digits.folder_name("smoke")
    shutil.copytree(tasks_dir / digits, tasks / digits)
    events = sound_events.prepare(tasks, "smoke", progress=False).name
    mix = sound_mix.prepare(tasks, "smoke", progress=False).name
    results = root / "results"
    started = time.perf_counter()
    done = hear(
        "run",
        *(a for m in MODELS for a in ("--model-module", m)),
        "--tasks-dir",
        str(tasks),
        "--results-dir",
        str(results),
        "--probe",
        "linear",
        "--cache-dir",
        str(root / "cache"),
    )
    assert done.returncode == 0, done.stderr
    return {
        "root": root,
        "results": results,
        "tasks": tasks,
        "run_seconds": time.perf_counter() - started,
        "digits": digits,
        "events": events,
        "mix": mix,
    }


def test_report_renders_every_plot_in_headless_chromium(
    suite: dict[str, Any], tmp_path: Path
) -> None:
    if CHROMIUM is None:
        pytest.fail("no chromium binary: scripts/setup installs Debian's chromium package")
    out = tmp_path / "report.html"
    started = time.perf_counter()
    done = hear("report", "--results-dir", str(suite["results"]), "--output", str(out))
    assert done.returncode == 0, done.stderr
    report_seconds = time.perf_counter() - started
    html = out.read_text()
    assert not re.search(r"https?://", html), "the report must open with no network"
    assert "<script" not in html.lower() and "<link" not in html.lower()  # all inline

    with Browser(CHROMIUM, tmp_path / "profile") as browser:
        page = browser.open(out.as_uri())
        found = page.evaluate(INVENTORY)
        png = page.screenshot()
        errors = page.errors()
    (tmp_path / "report.png").write_bytes(png)

    assert errors == [], errors
    assert found["resources"] == [], "the page fetched something"
    assert found["title"].startswith("HEAR report")
    tasks = sorted([suite["digits"], suite["events"], suite["mix"]])
    figures = found["figures"]
    for f in figures:  # every plot is drawn: a visible SVG with marks and a title
        assert f["svgs"] == 1 and f["width"] > 100 and f["height"] > 50, f
        assert f["marks"] > 5 and f["caption"], f
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for f in figures:
        by_kind.setdefault(f["kind"], []).append(f)

    # One score chart per task, each naming both models and showing a point for each scored one.
    scores = by_kind["task-scores"]
    assert sorted(f["task"] for f in scores) == tasks
    for f in scores:
        assert all(m in f["text"] for m in MODELS), f["text"]
    assert {m for f in scores for m in f["points"]} == set(MODELS)
    mix_chart = next(f for f in scores if f["task"] == suite["mix"])
    assert mix_chart["whiskers"] == 2  # five folds: ± std over folds for both models

    # The cost plot: both models' points, a log-scale axis in seconds per audio hour.
    [cost] = by_kind["cost"]
    assert cost["id"] == "cost-plot" and set(cost["points"]) == set(MODELS)
    assert "seconds per hour of audio" in cost["text"]

    # The event task's timeline: true events, and the predictions of a model that made some.
    [timeline] = by_kind["event-timeline"]
    assert timeline["task"] == suite["events"]
    assert timeline["true_events"] > 0 and "numpy_logmel" in timeline["predicted_models"]
    assert (
        all(m in timeline["text"] for m in MODELS) and "time in clip (seconds)" in timeline["text"]
    )

    # A confusion matrix per model for the multiclass scene task (digits), none for the
    # multilabel one: label names on both axes, a cell per label pair.
    confusions = by_kind["confusion"]
    assert sorted((f["task"], f["model"]) for f in confusions) == [
        (suite["digits"], m) for m in MODELS
    ]
    for f in confusions:
        assert f["cells"] == 100 and "predicted label" in f["text"] and "seven" in f["text"]

    assert sorted(found["leaderboard_models"]) == sorted(MODELS)
    assert found["leaderboard_tasks"] == tasks

    pixels = png_pixels(png)
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert pixels.std() > 10 and len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 20
    print(f"run {suite['run_seconds']:.1f} s, report {report_seconds:.1f} s")


def test_report_shows_confidence_intervals_where_records_have_them(
    suite: dict[str, Any], tmp_path: Path
) -> None:
    """Records with ``test_score_ci`` (bootstrap intervals) get it in the table and as
    whiskers; a record without one keeps the spread over folds; missing cells stay missing."""
    results = tmp_path / "results"
    shutil.copytree(suite["results"], results)
    for path in results.glob("*/*.json"):  # runs may or may not write intervals: none, then one
        data = json.loads(path.read_text())
        data.pop("test_score_ci", None)
        path.write_text(json.dumps(data))
    record = results / "numpy_logmel" / f"{suite['digits']}.json"
    data = json.loads(record.read_text())
    data["test_score_ci"] = [data["test_score"] - 0.1, data["test_score"] + 0.05]
    record.write_text(json.dumps(data))
    (results / "torch_mean" / f"{suite['mix']}.json").unlink()  # a (model, task) not run
    out = tmp_path / "r.html"
    done = hear("report", "--results-dir", str(results), "--output", str(out))
    assert done.returncode == 0, done.stderr
    html = out.read_text()
    lo, hi = data["test_score_ci"]
    assert f"[{lo:.3f}, {hi:.3f}]" in html
    assert "bootstrap CI over test clips" in html and "± std over folds" in html
    assert 'title="no record">—</td>' in html


def test_report_without_records_is_one_line_error(tmp_path: Path) -> None:
    done = hear("report", "--results-dir", str(tmp_path), "--output", str(tmp_path / "r.html"))
    assert done.returncode == 1 and "no result records" in done.stderr
    assert not (tmp_path / "r.html").exists()


# What the test reads from the rendered page (run in the page by Runtime.evaluate).
INVENTORY = """
(() => {
  const figures = [...document.querySelectorAll('figure.plot')].map(f => {
    const svg = f.querySelector('svg');
    const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
    const models = sel => [...new Set([...f.querySelectorAll(sel)].map(e => e.dataset.model))];
    return {
      id: f.id, kind: f.classList[1], task: f.dataset.task || null, model: f.dataset.model || null,
      caption: f.querySelector('figcaption')?.textContent || '',
      svgs: f.querySelectorAll('svg').length, width: box.width, height: box.height,
      marks: f.querySelectorAll('circle, rect, line, polyline').length,
      text: svg ? svg.textContent : '',
      points: models('circle.score-point, circle.cost-point'),
      whiskers: f.querySelectorAll('line.whisker').length,
      true_events: f.querySelectorAll('rect.true-event').length,
      predicted_models: models('rect.predicted-event'),
      cells: f.querySelectorAll('rect.cell').length,
    };
  });
  return {
    title: document.title, figures,
    leaderboard_models: [...document.querySelectorAll('#leaderboard tbody th')].map(e => e.textContent),
    leaderboard_tasks: [...document.querySelectorAll('#leaderboard thead th[data-task]')].map(e => e.dataset.task),
    resources: performance.getEntriesByType('resource').map(r => r.name),
  };
})()
"""
