"""The ledger: trust on first use for archives the catalogue gives no checksum for.

After the first complete install of such an archive, its size and sha256 are written to
``tasks_dir/.downloads/<archive file>.verified.json``; every later download or reuse of
it is checked against that record (see :mod:`hear_runner.tasks.download`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from hear_runner.errors import HearError, one_line
from hear_runner.files import atomic_write

LEDGER_SUFFIX = ".verified.json"  # tasks_dir/.downloads/<archive file> + this


def ledger_path(downloads: Path, file: str) -> Path:
    return downloads / f"{file}{LEDGER_SUFFIX}"


class Ledger(NamedTuple):
    """What the first install of an archive recorded."""

    path: Path
    size: int
    sha256: str


def read_ledger(downloads: Path, file: str) -> Ledger | None:
    """The size and sha256 recorded at the first install of ``file``, or None."""
    path = ledger_path(downloads, file)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise HearError(f"{path}: unreadable ledger ({one_line(e)}); delete it to trust the "
                        "next download") from None  # fmt: skip
    ok = isinstance(data, dict) and isinstance(data.get("size"), int)
    if not ok or not isinstance(data.get("sha256"), str) or len(data["sha256"]) != 64:
        raise HearError(f"{path}: a ledger needs an integer size and a 64-hex sha256; "
                        "delete it to trust the next download")  # fmt: skip
    return Ledger(path, data["size"], data["sha256"].lower())


def write_ledger(downloads: Path, file: str, size: int, sha256: str, url: str) -> Path:
    path = ledger_path(downloads, file)
    recorded = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    entry = {"file": file, "size": size, "sha256": sha256, "url": url, "recorded": recorded}
    atomic_write(path, json.dumps(entry, indent=1) + "\n")
    return path
