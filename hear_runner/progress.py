"""Progress of long work: live bars on a terminal, plain log lines anywhere else (CI, files).

Both take ``add_task(description, total)``, ``advance(task, n, audio_seconds=0.0)``,
``loaded(task, n)`` and ``note(task, text)``; audio seconds, when given, show as the model's
speed (audio seconds per second). A note says where the item in progress stands (a probe's
training: its epoch and best check) until the next item is done. Items loaded (an earlier
run's saved trainings) count as done but stay out of the speed and the time left: a resumed
probe that loaded 3 of 8 trainings in a second would otherwise promise the other 5 in
seconds more.
Descriptions are plain text, never rich markup: they carry task and folder names.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

#: A log line at least this often (seconds), and at every quarter of the work.
LOG_EVERY = 30.0
#: An unfinished task quiet this long (seconds) logs where it stands anyway: one training
#: of a full-size probe can run for many minutes, and a silent log reads as a hung run.
QUIET_AT_MOST = 300.0
#: Bars' time left from the speed over this many seconds (rich's default, 30, leaves a
#: probe whose trainings take minutes each without any).
SPEED_OVER = 24 * 3600.0


class _AudioSpeed(ProgressColumn):
    def render(self, task: Task) -> Text:
        audio = task.fields.get("audio", 0.0)
        elapsed = task.elapsed or 0.0
        if not audio or not elapsed:
            return Text("")
        return Text(f"{audio / elapsed:.1f} audio s/s", style="cyan")


class _CountSpeed(ProgressColumn):
    """Items a second (clips a second for embedding: each node's rate on a Ray run)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0  # since the last items loaded (``loaded``)
        done = task.completed - task.fields.get("loaded", 0)
        if not done or not elapsed:
            return Text("")
        return Text(speed(done, elapsed, self.unit))


def speed(done: float, elapsed: float, unit: str) -> str:
    """Items a second; for slow work (a probe's trainings, minutes each) seconds an item."""
    rate = done / elapsed
    return f"{rate:.1f} {unit}/s" if rate >= 0.1 else f"{elapsed / done:.0f} s each"


class LiveProgress:
    def __init__(self, console: Console, unit: str) -> None:
        self.bars = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(unit),
            _AudioSpeed(),
            _CountSpeed(unit),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[note]}", markup=False),
            console=console,
            speed_estimate_period=SPEED_OVER,
        )

    def add_task(self, description: str, total: int | None) -> int:
        return int(self.bars.add_task(description, total=total, audio=0.0, loaded=0, note=""))

    def advance(self, task: int, n: int, audio_seconds: float = 0.0) -> None:
        audio = self._task(task).fields["audio"]
        self.bars.update(TaskID(task), advance=n, audio=audio + audio_seconds, note="")

    def note(self, task: int, text: str) -> None:
        """Where the item in progress stands, shown until the next one is done."""
        self.bars.update(TaskID(task), note=text)

    def loaded(self, task: int, n: int) -> None:
        """``n`` done by an earlier run: the clock (speed, time left) starts again after them."""
        done = self._task(task)
        self.bars.reset(
            TaskID(task), completed=int(done.completed) + n, audio=0.0,
            loaded=done.fields["loaded"] + n,
        )  # fmt: skip

    def _task(self, task: int) -> Task:
        return self.bars.tasks[self.bars.task_ids.index(TaskID(task))]

    def __enter__(self) -> LiveProgress:
        self.bars.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.bars.stop()


class LogProgress:
    """One line when a task starts, at each quarter, at least every LOG_EVERY seconds while
    it advances, and every QUIET_AT_MOST seconds while it does not (a thread watches)."""

    def __init__(self, console: Console, unit: str) -> None:
        self.console = console
        self.unit = unit
        self.tasks: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._watch: threading.Thread | None = None

    def add_task(self, description: str, total: int | None) -> int:
        now = time.monotonic()
        with self._lock:
            self.tasks.append({"description": description, "total": total, "done": 0,
                               "audio": 0.0, "started": now, "logged": now,
                               "quarter": 0, "loaded": 0, "clock": now,
                               "note": ""})  # fmt: skip
            self._print(f"{description}: started ({total or '?'} {self.unit})")
            return len(self.tasks) - 1

    def advance(self, task: int, n: int, audio_seconds: float = 0.0) -> None:
        with self._lock:
            t = self.tasks[task]
            t["done"] += n
            t["audio"] += audio_seconds
            t["note"] = ""
            now = time.monotonic()
            quarter = 4 * t["done"] // t["total"] if t["total"] else 0
            if quarter > t["quarter"] or now - t["logged"] >= LOG_EVERY:
                t["quarter"], t["logged"] = quarter, now
                self._print(self._line(t, now))

    def loaded(self, task: int, n: int) -> None:
        """``n`` done by an earlier run: counted, but speed and time left are this run's."""
        with self._lock:
            t = self.tasks[task]
            t["done"] += n
            t["loaded"] += n
            t["clock"] = t["logged"] = time.monotonic()
            t["quarter"] = 4 * t["done"] // t["total"] if t["total"] else 0
            self._print(self._line(t, t["clock"]))

    def note(self, task: int, text: str) -> None:
        """Where the item in progress stands: the next line says it (a quiet task's beat)."""
        with self._lock:
            self.tasks[task]["note"] = text

    def beat(self) -> None:
        """A line for each unfinished task that has logged nothing for QUIET_AT_MOST s."""
        now = time.monotonic()
        with self._lock:
            for t in self.tasks:
                unfinished = t["total"] is None or t["done"] < t["total"]
                if unfinished and now - t["logged"] >= QUIET_AT_MOST:
                    t["logged"] = now
                    self._print(self._line(t, now))

    def _print(self, line: str) -> None:
        self.console.print(line, highlight=False, markup=False, soft_wrap=True)  # one line

    def _line(self, t: dict[str, Any], now: float) -> str:
        elapsed = now - t["started"]
        parts = [f"{t['description']}: {t['done']}/{t['total'] or '?'} {self.unit}"]
        if t["loaded"]:
            parts[0] += f" ({t['loaded']} loaded)"
        working, worked = now - t["clock"], t["done"] - t["loaded"]
        if t["audio"] and elapsed:
            parts.append(f"{t['audio'] / elapsed:.1f} audio s/s")
        if worked and working:
            parts.append(speed(worked, working, self.unit))
        parts.append(f"{elapsed:.0f} s")
        if t["total"] and worked and t["done"] < t["total"]:
            parts.append(f"about {working * (t['total'] - t['done']) / worked:.0f} s left")
        line = ", ".join(parts)
        return f"{line}; now {t['note']}" if t["note"] else line

    def _watch_quiet(self) -> None:
        while not self._closed.wait(min(QUIET_AT_MOST / 4, LOG_EVERY)):
            self.beat()

    def __enter__(self) -> LogProgress:
        self._closed.clear()
        self._watch = threading.Thread(target=self._watch_quiet, name="hear-progress",
                                       daemon=True)  # fmt: skip
        self._watch.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._closed.set()
        if self._watch is not None:
            self._watch.join()
            self._watch = None


def progress(console: Console, unit: str = "clips") -> LiveProgress | LogProgress:
    """Live bars on a terminal, log lines otherwise."""
    return LiveProgress(console, unit) if console.is_terminal else LogProgress(console, unit)


def file_bars(enabled: bool, transfer: bool) -> Progress:
    """Bars for work on files: bytes and speed for a ``transfer``, else files done."""
    counts: tuple[ProgressColumn, ...] = (
        (DownloadColumn(), TransferSpeedColumn()) if transfer else (MofNCompleteColumn(),)
    )
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        *counts,
        TimeRemainingColumn(),
        disable=not enabled,
    )
