"""Resumable HTTP downloads: a dropped connection continues with a ``Range`` request.

The HEAR 2021 archives are up to tens of GB, so starting over after a dropped
connection is not an option; a transient failure (a reset, a 5xx) is retried with
exponential backoff, and a size the server announces is checked against what was
recorded before a byte is written.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Protocol

from hear_runner.errors import HearError, one_line
from hear_runner.progress import file_bars

CHUNK = 1 << 20
RETRIES = 5  # further tries after the first, with exponential backoff
BACKOFF_S = 1.0
TIMEOUT_S = 60.0  # per socket operation, not per download
USER_AGENT = "hear-runner"
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class _Retry(Exception):
    """A transient failure: try again after a pause."""


def fetch(
    url: str,
    part: Path,
    progress: bool = True,
    retries: int | None = None,
    backoff_s: float | None = None,
    timeout_s: float | None = None,
    expected_size: int | None = None,
) -> Path:
    """Download ``url`` to ``part``, continuing what is already there with a Range request.

    A dropped connection or a 5xx is retried with exponential backoff; a server that
    answers a Range request with the whole file (200) is followed from the start.
    ``expected_size`` (from the ledger or the catalogue) refuses a server announcing
    another size before the transfer, and a part growing past it. When the tries run
    out, the part is kept for the next run only if the server honours Range.
    """
    retries = RETRIES if retries is None else retries
    backoff_s = BACKOFF_S if backoff_s is None else backoff_s
    timeout_s = TIMEOUT_S if timeout_s is None else timeout_s
    part.parent.mkdir(parents=True, exist_ok=True)
    if expected_size is not None and part.exists() and part.stat().st_size > expected_size:
        part.unlink()  # cannot be the start of the expected archive
    failures = 0
    state = _Attempts()
    with file_bars(progress, transfer=True) as bar:
        task_id = bar.add_task(part.name.removesuffix(".part"), total=None)

        def show(done: int, total: int | None) -> None:
            bar.update(task_id, completed=done, total=total)

        while True:
            try:
                if _fetch_once(url, part, timeout_s, show, expected_size, state):
                    return part
                problem = "the connection closed before the end"
            except _Retry as e:
                problem = str(e)
            failures += 1
            if failures > retries:
                kept = "; the partial file is kept and resumed next time"
                if state.range_ignored:  # the next run would start over anyway
                    part.unlink(missing_ok=True)
                    kept = "; the server ignores Range, so the partial file is removed"
                elif not part.exists():
                    kept = ""
                raise HearError(f"{url}: download failed after {failures} tries: {problem}{kept}")
            time.sleep(backoff_s * 2 ** (failures - 1))


class _Attempts:
    """What the tries so far learnt about the server."""

    range_ignored = False


def _fetch_once(
    url: str,
    part: Path,
    timeout_s: float,
    show: _Show,
    expected_size: int | None = None,
    state: _Attempts | None = None,
) -> bool:
    """One request, appending to ``part``; True when ``part`` then holds the whole file."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=timeout_s
        )
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:
            _, total = _content_range(e.headers.get("Content-Range"))
            if total == have:
                return True  # the part already holds the whole file
            part.unlink()
            raise _Retry(f"HTTP 416 for a range from byte {have}; restarting") from None
        if e.code in _RETRY_STATUSES:
            raise _Retry(f"HTTP {e.code} {e.reason}") from None
        raise HearError(f"{url}: HTTP {e.code} {one_line(e.reason)}") from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, OSError):  # refused, reset, unreachable, DNS, timeout
            raise _Retry(one_line(e.reason)) from None
        raise HearError(f"{url}: {one_line(e.reason)}") from None
    except ValueError as e:
        raise HearError(f"{url}: {one_line(e)}") from None
    except (http.client.HTTPException, OSError) as e:
        raise _Retry(f"{type(e).__name__}: {one_line(e)}") from None

    with response:
        if response.status == 206:
            start, total = _content_range(response.headers.get("Content-Range"))
            if start != have:
                part.unlink(missing_ok=True)
                raise _Retry(f"the server resumed at byte {start}, not {have}; restarting")
            mode = "ab"
        elif response.status == 200:
            if have and state is not None:
                state.range_ignored = True
            have, mode = 0, "wb"  # no Range, or the server ignored it: start clean
            length = response.headers.get("Content-Length", "")
            total = int(length) if length.isdigit() else None
        else:
            raise HearError(f"{url}: unexpected HTTP {response.status}")
        if expected_size is not None and total is not None and total != expected_size:
            part.unlink(missing_ok=True)
            raise HearError(
                f"{url}: the server announces {total} bytes, {expected_size} were recorded "
                f"for {part.name.removesuffix('.part')} (nothing downloaded; partial file removed)"
            )
        if total is None:
            total = expected_size
        show(have, total)
        try:
            handle = part.open(mode)
        except OSError as e:
            raise HearError(f"{part}: cannot write: {e.strerror}") from None
        with handle:
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (http.client.HTTPException, OSError) as e:
                    raise _Retry(f"connection lost at byte {have}: {type(e).__name__}") from None
                if not chunk:
                    break
                try:
                    handle.write(chunk)
                except OSError as e:
                    raise HearError(f"{part}: cannot write: {e.strerror}") from None
                have += len(chunk)
                show(have, total)
                if total is not None and have > total:
                    break
    if total is not None and have > total:
        part.unlink()
        raise _Retry(f"received {have} bytes, {total} announced; restarting")
    return total is None or have == total


class _Show(Protocol):
    def __call__(self, done: int, total: int | None) -> None: ...


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """``bytes 10-99/100`` -> (10, 100); ``bytes */100`` -> (None, 100); unknowns None."""
    if not value or not value.startswith("bytes "):
        return None, None
    span, _, size = value[len("bytes ") :].partition("/")
    start_text = span.split("-", 1)[0].strip()
    start = int(start_text) if start_text.isdigit() else None
    total = int(size) if size.strip().isdigit() else None
    return start, total
