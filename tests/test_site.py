"""`hear leaderboard --format site`: a static leaderboard site, checked page by page in headless
Chromium (tests/chromium.py): no console error and nothing fetched from a network, opened
from disk and from a static server; the table sorted from the keyboard and read with
scripts off; every text's contrast; every relative link; a refused folder; a re-render.

Records: synthetic ones on released HEAR folder names (as test_reference's), beside HEAR
2021's published rows, and one real `hear run` of numpy_logmel on the spoken digits, so a
model page shows real provenance (module, interpreter, manifest, hardware, times).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from chromium import CHROMIUM, Browser, Page
from hear_2021 import reference
from test_leaderboard import hear
from test_reference import ESC50, GTZAN, RELEASED
from test_stats import record_with_predictions

from hear_runner.errors import HearError
from hear_runner.site import write_site

# Every published submission (all publish an ESC-50 score).
PUBLISHED = len(reference.load().rows)
SYNTHETIC = {  # model -> folder -> (score, interval)
    "mine": {ESC50: (0.99, (0.97, 1.0)), GTZAN: (0.10, (0.05, 0.16))},
    "yours": {ESC50: (0.50, (0.45, 0.55))},
}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, tasks_dir: Path, digits_task: Path) -> Path:
    root = tmp_path_factory.mktemp("site")
    folder = root / "results"
    for model, scores in SYNTHETIC.items():
        for task, (score, ci) in scores.items():
            metric = RELEASED[task].evaluation[0]
            record = record_with_predictions(model, task, [], metric=metric, score=score)
            record.task = record.task.model_copy(update={"version": RELEASED[task].version})
            record.test_score_ci = ci
            record.write(folder)
    done = hear(
        "run", "--model-module", "numpy_logmel", "--tasks-dir", str(tasks_dir), "--task",
        digits_task.name, "--results-dir", str(folder), "--probe", "linear",
        "--cache-dir", str(root / "cache"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return folder


@pytest.fixture(scope="module")
def site(results: Path) -> dict[str, Any]:
    """The site as a user writes it, and the leaderboard's JSON of the same records."""
    out = results.parent / "site"
    args = ("--results-dir", str(results), "--reference", "hear2021")
    done = hear("leaderboard", *args, "--format", "site", "--output", str(out))
    assert done.returncode == 0, done.stderr
    board = hear("leaderboard", *args, "--format", "json")
    assert board.returncode == 0, board.stderr
    pages = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html"))
    return {"dir": out, "stdout": done.stdout, "board": json.loads(board.stdout), "pages": pages}


@pytest.fixture(scope="module")
def tab(tmp_path_factory: pytest.TempPathFactory) -> Any:
    if CHROMIUM is None:
        pytest.fail("no chromium binary: scripts/setup installs Debian's chromium package")
    with Browser(CHROMIUM, tmp_path_factory.mktemp("profile")) as browser:
        yield browser.tab()


def test_the_command_writes_an_index_a_page_per_task_and_per_model(site: dict[str, Any]) -> None:
    out, board = site["dir"], site["board"]
    assert "wrote" in site["stdout"] and f"{PUBLISHED} published rows" in site["stdout"]
    columns = [c["name"] for c in board["columns"]]
    assert len(columns) == 3 and {"ESC-50", "GTZAN Genre"} < set(columns)
    assert len([p for p in site["pages"] if p.startswith("tasks/")]) == len(columns)
    assert sorted(p for p in site["pages"] if p.startswith("models/")) == [
        "models/mine.html", "models/numpy_logmel.html", "models/yours.html",
    ]  # fmt: skip
    index = (out / "index.html").read_text()
    assert index.count('<tr class="published"') == PUBLISHED
    assert all(f">{escape(name)}</th>" in index for name in reference.load().rows)
    assert json.loads((out / "site.json").read_text())["references"] == ["hear2021"]
    # The records came along with their sidecars and the manifest that names them.
    records = out / "records"
    run = records / "numpy_logmel"
    assert len(list(run.glob("*.predictions.npz"))) == 1
    assert len(list(run.glob("*/test.predicted-scores.json"))) == 1
    assert len(list((records / "manifests").glob("*.json"))) == 1


def test_every_page_opens_with_no_error_and_no_network_from_disk_and_served(
    site: dict[str, Any], tab: Page
) -> None:
    out: Path = site["dir"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        cwd=out, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for(port)
        for base in (out.as_uri() + "/", f"http://127.0.0.1:{port}/"):
            for page in site["pages"]:
                tab.load(base + page)
                assert tab.errors() == [], (base, page)
                asked = tab.requests()
                assert asked and all(u.startswith(base) for u in asked), (page, asked)
                if page == "index.html":
                    assert base + "assets/site.css" in asked and base + "assets/site.js" in asked
                title = tab.evaluate("document.title")
                assert title.endswith("HEAR leaderboard"), title
    finally:
        server.terminate()
        server.wait(10)


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"http.server did not listen on {port}")


ORDER = """[...document.querySelectorAll('#leaderboard tbody tr')].map(tr =>
  [tr.cells[0].dataset.model, tr.dataset.reference || null])"""
FOCUS = """(() => { const a = document.activeElement, th = a.closest('th');
  return {sort: a.classList.contains('sort'), task: th ? th.dataset.task || null : null}; })()"""
SORTED = """[...document.querySelectorAll('#leaderboard thead th')].filter(th =>
  th.hasAttribute('aria-sort')).map(th => [th.dataset.task || th.firstChild.textContent,
  th.getAttribute('aria-sort')])"""


def test_the_table_sorts_from_the_keyboard(site: dict[str, Any], tab: Page) -> None:
    tab.load((site["dir"] / "index.html").as_uri())
    tab.call("Emulation.setFocusEmulationEnabled", enabled=True)
    rows = [(r["model"], r["reference"]) for r in site["board"]["rows"]]
    assert [tuple(r) for r in tab.evaluate(ORDER)] == rows  # server-rendered: aggregate order
    # ESC-50's scores from the records: the synthetic ones and HEAR 2021's published ones.
    scores = {(m, None): s[ESC50][0] for m, s in SYNTHETIC.items() if ESC50 in s}
    published = reference.load().rows
    scores |= {(m, "hear2021"): s[ESC50] for m, s in published.items() if ESC50 in s}
    assert len(scores) == PUBLISHED + 2

    def expected(descending: bool) -> list[tuple[str, str | None]]:
        have = sorted((r for r in rows if r in scores), key=lambda r: (
            -scores[r] if descending else scores[r], rows.index(r)))  # fmt: skip
        return have + [r for r in rows if r not in scores]  # missing cells last, either way

    for _ in range(200):  # Tab through the page until ESC-50's sort button has focus
        tab.press("Tab")
        focus = tab.evaluate(FOCUS)
        if focus["sort"] and focus["task"] == "ESC-50":
            break
    else:
        pytest.fail("Tab never reached ESC-50's sort button")
    assert tab.evaluate("document.activeElement.tagName") == "BUTTON"
    tab.press("Enter")
    assert [tuple(r) for r in tab.evaluate(ORDER)] == expected(descending=True)
    assert tab.evaluate(SORTED) == [["ESC-50", "descending"]]
    tab.press("Enter")
    assert [tuple(r) for r in tab.evaluate(ORDER)] == expected(descending=False)
    assert tab.evaluate(SORTED) == [["ESC-50", "ascending"]]
    tab.press(" ")  # Space presses it too
    assert [tuple(r) for r in tab.evaluate(ORDER)] == expected(descending=True)
    assert tab.errors() == []


TABLE = """(() => { const t = document.getElementById('leaderboard');
  return {rows: t.tBodies[0].rows.length, cells: t.querySelectorAll('tbody td, tbody th').length,
          filled: t.querySelectorAll('tbody td[data-score]').length,
          buttons: t.querySelectorAll('button.sort').length}; })()"""


def test_the_table_is_whole_with_scripts_off(site: dict[str, Any], tab: Page) -> None:
    url = (site["dir"] / "index.html").as_uri()
    tab.load(url)
    on = tab.evaluate(TABLE)
    tab.scripts(False)
    try:
        tab.load(url)
        off = tab.evaluate(TABLE)
    finally:
        tab.scripts(True)
    rows = site["board"]["rows"]
    columns = site["board"]["columns"]
    assert on["buttons"] == len(columns) + 3  # a sort button per header where scripts run
    assert off["buttons"] == 0  # the script did not run
    assert off["rows"] == on["rows"] == len(rows) == PUBLISHED + 3  # numpy_logmel, mine, yours
    # a cell per task, and the model, published and aggregate cells
    assert off["cells"] == on["cells"] == len(rows) * (len(columns) + 3)
    assert off["filled"] == sum(1 for r in rows for c in r["scores"].values() if c)


CONTRAST = """(() => {
  const parse = c => { const m = /rgba?\\(([^)]*)\\)/.exec(c || ''); if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const behind = el => { const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; } }
    let bg = [255, 255, 255];
    for (const c of layers.reverse()) bg = bg.map((v, i) => c[i] * c[3] + v * (1 - c[3]));
    return bg; };
  const found = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('title, script, style')) continue;
    if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const box = el.getBoundingClientRect(), style = getComputedStyle(el);
    if (box.width <= 1 || box.height <= 1 || style.visibility !== 'visible') continue;
    const fg = parse(el instanceof SVGElement ? style.fill : style.color);
    found.push({text: el.textContent.trim().slice(0, 40), fg, bg: behind(el),
                published: !!el.closest('tr.published')});
  }
  return found; })()"""


def _luminance(rgb: list[float]) -> float:
    lin = [(c / 255) / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4
           for c in rgb[:3]]  # fmt: skip
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(fg: list[float], bg: list[float]) -> float:
    alpha = fg[3] if len(fg) > 3 else 1.0
    ink = [f * alpha + b * (1 - alpha) for f, b in zip(fg[:3], bg, strict=True)]
    a, b = sorted((_luminance(ink), _luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def test_every_text_has_contrast_of_at_least_4_5(site: dict[str, Any], tab: Page) -> None:
    """Text colour (SVG text: its fill) against the first background behind it; SVG text is
    measured against the page's background (the chart's faint row stripes are #f6f7f9)."""
    assert contrast([89, 89, 89], [240, 240, 240]) == pytest.approx(6.2, abs=0.1)  # the grey
    checked, published = 0, 0
    for page in site["pages"]:
        tab.load((site["dir"] / page).as_uri())
        for item in tab.evaluate(CONTRAST):
            assert item["fg"] is not None, (page, item)
            ratio = contrast(item["fg"], item["bg"])
            assert ratio >= 4.5, (page, item, round(ratio, 2))
            checked += 1
            published += item["published"]
    assert checked > 500 and published >= PUBLISHED * 3  # every grey row's cells among them


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.found.append(value)


def test_every_relative_link_resolves_to_a_file(site: dict[str, Any]) -> None:
    out: Path = site["dir"]
    relative = 0
    for page in site["pages"]:
        parser = _Links()
        parser.feed((out / page).read_text())
        for link in parser.found:
            parts = urlsplit(link)
            if parts.scheme in ("https", "data") or link.startswith("#"):
                continue
            assert not parts.scheme and not link.startswith("/"), (page, link)
            target = ((out / page).parent / unquote(parts.path)).resolve()
            assert target.is_file() and target.is_relative_to(out.resolve()), (page, link)
            relative += 1
    assert relative > 50


def test_a_model_page_shows_the_runs_provenance(site: dict[str, Any], results: Path) -> None:
    html = (site["dir"] / "models" / "numpy_logmel.html").read_text()
    [record_path] = (results / "numpy_logmel").glob("*.json")
    record = json.loads(record_path.read_text())
    [manifest] = (results / "manifests").glob("*.json")
    assert f'href="../records/manifests/{manifest.name}"' in html
    assert record["model"]["engine"]["module"] == "numpy_logmel"
    assert f"<code>{record['model']['engine']['python']}</code>" in html
    assert record["host"]["cpu"] in html and record["task"]["content_hash"] in html
    assert all(f">{stage}</th>" in html for stage in record["timings"])
    assert f">{record['probe']['mode']}</td>" in html
    assert f'href="../records/numpy_logmel/{record_path.name}"' in html


def test_a_task_page_charts_every_score_published_ones_grey(
    site: dict[str, Any], tab: Page
) -> None:
    tab.load((site["dir"] / "tasks" / "esc-50.html").as_uri())
    found = tab.evaluate("""(() => ({
      points: document.querySelectorAll('svg circle.score-point').length,
      grey: document.querySelectorAll('svg circle.score-point.published').length,
      whiskers: document.querySelectorAll('svg line.whisker').length,
      rows: document.querySelectorAll('#scores tbody tr').length,
      published: document.querySelectorAll('#scores tbody tr.published').length}))()""")
    n = PUBLISHED
    assert found == {"points": n + 2, "grey": n, "whiskers": 2, "rows": n + 2, "published": n}


def test_bad_input_is_one_line_and_writes_nothing(results: Path, tmp_path: Path) -> None:
    done = hear("leaderboard", "--results-dir", str(results), "--format", "site")
    assert done.returncode != 0
    [line] = done.stderr.strip().splitlines()
    assert "--output" in line
    mine = tmp_path / "my-folder"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    done = hear("leaderboard", "--results-dir", str(results), "--format", "site", "-o", str(mine))
    assert done.returncode != 0
    [line] = done.stderr.strip().splitlines()
    assert str(mine) in line and "not a leaderboard site" in line
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    done = hear("leaderboard", "--results-dir", str(results), "--output", str(tmp_path / "x"))
    assert done.returncode != 0 and "--output is for --format site" in done.stderr
    assert not (tmp_path / "x").exists()


def test_a_rerender_writes_the_same_pages_and_a_failure_keeps_them(
    site: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "moved"
    shutil.copytree(site["dir"], copy)
    written = write_site(copy)  # from its records and site.json, somewhere else
    assert sorted(written.pages) == site["pages"] and len(written.pages) == 7
    before = {p: (site["dir"] / p).read_bytes() for p in [*site["pages"], "assets/site.css"]}
    assert {p: (copy / p).read_bytes() for p in before} == before

    import hear_runner.site.write as writer

    def broken(*_: object) -> str:
        raise HearError("a page failed")

    monkeypatch.setattr(writer, "model_page", broken)
    with pytest.raises(HearError, match="a page failed"):
        write_site(copy, references=[])
    assert {p: (copy / p).read_bytes() for p in before} == before
    assert json.loads((copy / "site.json").read_text())["references"] == ["hear2021"]
    assert not [p for p in copy.rglob("*") if p.name.endswith(".tmp")]
