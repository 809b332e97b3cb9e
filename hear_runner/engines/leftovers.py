"""What a `hear` killed with SIGKILL leaves behind, and how the next run removes it.

Every exit path that runs Python (normal end, error, Ctrl-C, SIGTERM) removes its own
containers and temporary files. SIGKILL runs nothing: the containers keep running with
their run folders, and the local engine's temporary files stay. So each is marked with its
owner, a process of this machine:

- containers carry labels: the owner's pid, the start time of that process (pids are
  reused) and this machine's hostname and boot id (another machine's containers on a
  shared engine, or a previous boot's, are never this host's to judge);
- temporary files and folders carry the owner's pid in their names
  (``hear-run-<pid>-*``, ``hear-contract-<pid>-*``, ``hear-server-<pid>-*.log``).

Each engine, when created, removes what belongs to owners that are gone. Nothing without
these marks is touched (containers of older hear versions, other users' files).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

#: Every container hear-runner starts carries it (value "1"): what the sweep may look at.
RUNNER_LABEL = "org.hear.runner"
OWNER_PID = "org.hear.owner.pid"
OWNER_STARTED = "org.hear.owner.started"
OWNER_HOST = "org.hear.owner.host"

#: Temporary names with an owner pid: the prefix, the pid, a dash, mkdtemp's random part.
TEMP_NAME = re.compile(r"^hear-(?:run|contract|server)-(\d+)-[a-z0-9_]+(?:\.log)?$")


@cache
def this_host() -> str:
    """This machine and boot: its hostname and the kernel's boot id."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = "unknown-boot"
    return f"{socket.gethostname()}/{boot}"


def process_started(pid: int) -> str | None:
    """When ``pid`` started (clock ticks since boot, /proc/PID/stat field 22); None if gone
    or unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def owner_labels() -> dict[str, str]:
    """The labels that mark a container as this process's."""
    pid = os.getpid()
    return {
        OWNER_PID: str(pid),
        OWNER_STARTED: process_started(pid) or "",
        OWNER_HOST: this_host(),
    }


def alive(pid: int, started: str | None = None) -> bool:
    """Whether process ``pid`` (started at ``started``, when known) still runs here."""
    if pid <= 0:
        return True  # not a pid: never judged gone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    if started:
        now = process_started(pid)
        return now is None or now == started
    return True


def sweep_containers(docker: Any, socket_dir: str) -> list[str]:
    """Force-remove this host's hear containers whose owner is gone, with their run folders.

    Returns the names removed. Errors are ignored: this is housekeeping, never a reason
    for a run to fail.
    """
    removed: list[str] = []
    try:
        found = docker.containers.list(
            all=True,
            filters={"label": [f"{RUNNER_LABEL}=1", f"{OWNER_HOST}={this_host()}"]},
            ignore_removed=True,  # one removed while listed is not a reason to skip the sweep
        )
    except Exception:
        return removed
    for container in found:
        labels = container.labels or {}
        try:
            pid = int(labels.get(OWNER_PID, ""))
        except ValueError:
            continue
        if pid == os.getpid() or alive(pid, labels.get(OWNER_STARTED)):
            continue
        mounts = container.attrs.get("Mounts") or []
        with contextlib.suppress(Exception):
            container.remove(force=True)
            removed.append(container.name)
        for mount in mounts:
            if mount.get("Destination") == socket_dir:
                _remove_owned(Path(mount.get("Source", "")), pid)
    return removed


def sweep_temp(folder: Path | None = None) -> list[Path]:
    """Remove hear's temporary files and folders (in ``folder``, default the temp folder)
    whose owner pid is gone; only this user's. Returns what was removed."""
    folder = Path(folder or tempfile.gettempdir())
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        match = TEMP_NAME.match(entry.name)
        if match is None or alive(int(match.group(1))):
            continue
        if _remove_owned(Path(entry.path), int(match.group(1))):
            removed.append(Path(entry.path))
    return removed


def _remove_owned(path: Path, pid: int) -> bool:
    """Remove ``path`` if it is one of ours: named for ``pid`` and owned by this user."""
    match = TEMP_NAME.match(path.name)
    if match is None or int(match.group(1)) != pid:
        return False
    try:
        if path.lstat().st_uid != os.getuid():
            return False
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except OSError:
        return False
    return True
