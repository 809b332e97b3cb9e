"""`hear report`: after real runs of two models, the page renders in headless Chromium with
every plot, no console error, and nothing fetched from a network.

Chromium is driven over the DevTools protocol with a small websocket client written here
(the standard library only): console errors and exceptions are collected from the moment
the page starts loading, the rendered DOM is queried, and a screenshot is checked for ink.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

MODELS = ("numpy_logmel", "torch_mean")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def hear(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hear_runner", *args], capture_output=True, text=True, timeout=timeout
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


class Browser:
    """Headless Chromium with a DevTools endpoint on a free port; stopped on exit."""

    def __init__(self, binary: str, profile: Path) -> None:
        self.binary, self.profile = binary, profile
        self.stderr: list[str] = []

    def __enter__(self) -> Browser:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                "--window-size=1280,900",
                "--no-first-run",
                "--no-default-browser-check",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        found = threading.Event()
        self.port = 0

        def drain() -> None:  # keep reading: a full pipe would stall the browser
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.stderr.append(line)
                m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
                if m:
                    self.port = int(m.group(1))
                    found.set()

        threading.Thread(target=drain, daemon=True).start()
        if not found.wait(60):
            self.__exit__()
            raise AssertionError(
                "chromium did not open its DevTools port:\n" + "".join(self.stderr)
            )
        return self

    def open(self, url: str) -> Page:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=10) as r:
            targets = json.load(r)
        target = next(t for t in targets if t["type"] == "page")
        page = Page(WebSocket(target["webSocketDebuggerUrl"]))
        page.load(url)
        return page

    def __exit__(self, *_: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Page:
    """One tab over the DevTools protocol: events are kept, commands answered by id."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.next_id = 0
        for domain in ("Runtime", "Log", "Page"):
            self.call(f"{domain}.enable")

    def call(self, method: str, timeout: float = 60, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = json.loads(self.ws.receive(deadline - time.monotonic()))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)
        raise TimeoutError(method)

    def load(self, url: str, timeout: float = 60) -> None:
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not finish loading")
            self.events.append(json.loads(self.ws.receive(deadline - time.monotonic())))

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(result["exceptionDetails"])
        return result["result"]["value"]

    def screenshot(self) -> bytes:
        shot = self.call(
            "Page.captureScreenshot",
            format="png",
            clip={"x": 0, "y": 0, "width": 1280, "height": 900, "scale": 0.5},
        )
        return base64.b64decode(shot["data"])

    def errors(self) -> list[str]:
        """Exceptions, console errors and browser log errors (a failed load among them)."""
        self.call("Runtime.evaluate", expression="0")  # flush events that are on their way
        found = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails'].get('text')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                found.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
        return found


class WebSocket:
    """The client half of RFC 6455, as much as the DevTools protocol needs: text frames."""

    def __init__(self, url: str) -> None:
        m = re.fullmatch(r"ws://([^:/]+):(\d+)(/.*)", url)
        assert m, url
        host, port, path = m.group(1), int(m.group(2)), m.group(3)
        self.sock = socket.create_connection((host, port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def _recv(self) -> bytes:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("the browser closed the DevTools connection")
        return chunk

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self.buffer += self._recv()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def send(self, text: str) -> None:
        payload = text.encode()
        n = len(payload)
        header = bytes([0x81])  # FIN, text
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)  # a client masks every frame
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def receive(self, timeout: float) -> str:
        self.sock.settimeout(max(timeout, 0.1))
        message = b""
        while True:
            first, second = self._read(2)
            opcode, n = first & 0x0F, second & 0x7F
            if n == 126:
                (n,) = struct.unpack(">H", self._read(2))
            elif n == 127:
                (n,) = struct.unpack(">Q", self._read(8))
            mask = self._read(4) if second & 0x80 else b""
            payload = self._read(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x8:
                raise ConnectionError("the browser closed the DevTools connection")
            if opcode == 0x9:  # ping: answer with a pong
                self.sock.sendall(bytes([0x8A, 0x80]) + os.urandom(4))
                continue
            if opcode in (0x0, 0x1):
                message += payload
                if first & 0x80:
                    return message.decode()


def png_pixels(data: bytes) -> np.ndarray:
    """Decode an 8-bit, non-interlaced PNG (what Chromium writes) into (height, width, channels)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and interlace == 0, (depth, interlace)
            channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
        elif kind == b"IDAT":
            idat += chunk
    raw = zlib.decompress(idat)
    stride = width * channels
    rows = np.zeros((height, stride), np.uint8)
    prev = [0] * stride
    for y in range(height):
        start = y * (stride + 1)
        kind_, line = raw[start], list(raw[start + 1 : start + 1 + stride])
        cur = [0] * stride
        for i in range(stride):
            a = cur[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if kind_ == 0:
                v = line[i]
            elif kind_ == 1:
                v = line[i] + a
            elif kind_ == 2:
                v = line[i] + b
            elif kind_ == 3:
                v = line[i] + (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                v = line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)
            cur[i] = v & 0xFF
        rows[y] = cur
        prev = cur
    return rows.reshape(height, width, channels)
