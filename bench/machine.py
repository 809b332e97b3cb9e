"""What every benchmark records about where it ran: the machine and the code measured.

Shared by the bench scripts (run as ``python bench/<script>.py``, so this folder is on
their path); standard library only, as the scripts may run under another interpreter.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cmd(args: list[str], **kwargs: object) -> str | None:
    """A command's stripped stdout, or None when it cannot run or fails."""
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=120, **kwargs)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _proc_field(path: str, prefix: str) -> str | None:
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    line = next((x for x in text.splitlines() if x.startswith(prefix)), None)
    return line.split(":", 1)[1].strip() if line else None


def machine() -> dict:
    """CPU model, cores (as ``nproc`` counts them: the affinity mask), memory, platform."""
    mem_kib = _proc_field("/proc/meminfo", "MemTotal:")
    return {
        "cpu_model": _proc_field("/proc/cpuinfo", "model name"),
        "nproc": int(cmd(["nproc"]) or 0) or os.cpu_count(),
        "os_cpu_count": os.cpu_count(),
        "memory_gib": round(int(mem_kib.split()[0]) / 1024**2, 1) if mem_kib else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def git_state(*paths: str) -> dict:
    """This checkout's commit, and whether ``paths`` have uncommitted edits."""
    dirty = cmd(["git", "-C", str(REPO), "status", "--porcelain", "--", *paths])
    return {
        "commit": cmd(["git", "-C", str(REPO), "rev-parse", "HEAD"]),
        "runner_dirty": bool(dirty),
        "runner_dirty_files": dirty.splitlines() if dirty else [],
        "source": str(REPO),
    }
