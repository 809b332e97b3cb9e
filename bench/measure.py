"""Measuring one command: wall and CPU time, peak host memory, the containers it starts.

Shared by the bench harnesses (run as ``python bench/<script>.py``, so this folder is on
their path); standard library only. What each number means:

  * wall s: ``perf_counter`` around the subprocess, start-up included;
  * CPU s: user + system seconds of the command's process tree, from ``/usr/bin/time -v``
    (which counts the command and its waited-for descendants);
  * max RSS: ``/usr/bin/time -v``'s maximum resident set size (the largest single process),
    else ``ru_maxrss`` of ``RUSAGE_CHILDREN`` in a fresh wrapper process;
  * tree PSS: the sampled peak of the summed PSS of the whole process tree, which counts
    worker processes and shared pages fairly: every 50 ms, or as seldom as keeps the
    sampler within 2% of a core (``TreeSampler``);
  * containers (on request): the Docker containers a process of the tree started (their
    ``org.hear.owner.pid`` label), each one's peak memory and CPU seconds from its cgroup,
    sampled every 0.5 s while it lives (cgroup v1 or v2).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

TIME = Path("/usr/bin/time")
OWNER_PID_LABEL = "org.hear.owner.pid"  # hear_runner.engines.leftovers.OWNER_PID
CGROUP = Path("/sys/fs/cgroup")


def _children_of() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def _pss_kib(pid: int) -> tuple[int, int]:
    """(PSS, anonymous PSS) of ``pid`` in KiB. PSS counts the pages of memory-mapped files
    (the probe's memmapped embeddings) that the kernel can drop and reread at will; the
    anonymous part is what the process itself holds."""
    pss = anon = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Pss_Anon:"):
                    anon = int(line.split()[1])
    except OSError:
        pass
    return pss, anon


#: The tree sampler's own CPU time stays within this share of one core. A sample reads
#: each process's smaps_rollup, which walks its page tables: for a full-size event probe
#: (3.5 GB resident, mostly memory-mapped embeddings) every 50 ms took 31% of a core
#: (25 of 80 minutes, 2026-12-07), taken from the 2-core machine running the probe.
SAMPLER_CPU_SHARE = 0.02


class TreeSampler(threading.Thread):
    """Peaks of the summed PSS and anonymous PSS of a process and all its descendants,
    sampled every ``every`` seconds, or less often where one sample's CPU time (this
    thread's) would exceed SAMPLER_CPU_SHARE; and every pid seen in the tree (to tell which
    containers the tree started)."""

    def __init__(self, pid: int, every: float = 0.05):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.peak_kib = 0
        self.peak_anon_kib = 0
        self.peak_procs = 0
        self.samples = 0
        self.seen: set[int] = {pid}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            started = time.thread_time()
            kids = _children_of()
            tree, todo = [], [self.pid]
            while todo:
                p = todo.pop()
                tree.append(p)
                todo += kids.get(p, [])
            self.seen.update(tree)
            sizes = [_pss_kib(p) for p in tree]
            total, anon = sum(s for s, _ in sizes), sum(a for _, a in sizes)
            if total > self.peak_kib:
                self.peak_kib, self.peak_procs = total, len(tree)
            self.peak_anon_kib = max(self.peak_anon_kib, anon)
            self.samples += 1
            cost = time.thread_time() - started
            self._halt.wait(max(self.every, cost / SAMPLER_CPU_SHARE))

    def stop(self) -> None:
        self._halt.set()
        self.join()


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _cgroup_usage(container_id: str) -> tuple[int | None, float | None]:
    """A live container's peak memory (bytes) and CPU seconds, from cgroup v1 or v2."""
    v1 = CGROUP / "memory" / "docker" / container_id
    if v1.is_dir():
        cpu_ns = _read_int(CGROUP / "cpuacct" / "docker" / container_id / "cpuacct.usage")
        return _read_int(v1 / "memory.max_usage_in_bytes"), cpu_ns / 1e9 if cpu_ns else None
    v2 = CGROUP / "system.slice" / f"docker-{container_id}.scope"
    cpu_s = None
    try:
        stat = (v2 / "cpu.stat").read_text()
        m = re.search(r"usage_usec (\d+)", stat)
        cpu_s = int(m.group(1)) / 1e6 if m else None
    except OSError:
        pass
    return _read_int(v2 / "memory.peak"), cpu_s


def _docker_cgroups() -> Path | None:
    for root in (CGROUP / "memory" / "docker", CGROUP / "system.slice"):
        if root.is_dir():
            return root
    return None


def _container_ids(root: Path) -> set[str]:
    ids = set()
    for entry in os.scandir(root):
        name = entry.name.removeprefix("docker-").removesuffix(".scope")
        if entry.is_dir() and len(name) == 64:
            ids.add(name)
    return ids


class ContainerSampler(threading.Thread):
    """Peak memory and CPU seconds of the containers a process tree starts (cgroups)."""

    def __init__(self, tree: TreeSampler, every: float = 0.5):
        super().__init__(daemon=True)
        self.tree, self.every = tree, every
        self.root = _docker_cgroups()
        self.before = _container_ids(self.root) if self.root else set()
        self.owner: dict[str, bool] = {}
        self.usage: dict[str, tuple[int | None, float | None]] = {}
        self._halt = threading.Event()

    def _owned(self, container_id: str) -> bool:
        if container_id not in self.owner:
            try:
                out = subprocess.run(
                    ["docker", "inspect", "--format",
                     f'{{{{index .Config.Labels "{OWNER_PID_LABEL}"}}}}', container_id],
                    capture_output=True, text=True, timeout=30,
                ).stdout.strip()  # fmt: skip
            except (OSError, subprocess.SubprocessError):
                out = ""
            if not out.isdigit():
                return False  # gone before it was inspected, or not a hear container
            self.owner[container_id] = int(out) in self.tree.seen
        return self.owner[container_id]

    def sample(self) -> None:
        if self.root is None:
            return
        for cid in _container_ids(self.root) - self.before:
            if self._owned(cid):
                peak, cpu = _cgroup_usage(cid)
                if peak is not None:
                    self.usage[cid] = (peak, cpu)

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def result(self) -> dict[str, Any]:
        if self.root is None:
            return {"containers": None, "container_note": "no Docker cgroup folder found"}
        peaks = [p for p, _ in self.usage.values() if p is not None]
        cpus = [c for _, c in self.usage.values() if c is not None]
        return {
            "containers": [
                {"id": cid[:12], "peak_mib": round(p / 2**20, 1) if p else None, "cpu_s": c}
                for cid, (p, c) in sorted(self.usage.items())
            ],
            "container_peak_mib": round(max(peaks) / 2**20, 1) if peaks else None,
            "container_cpu_s": round(sum(cpus), 2) if cpus else None,
            "container_source": str(self.root),
        }


def _max_rss_wrapper() -> list[str]:
    """A fresh wrapper process that reports its children's ru_maxrss (no /usr/bin/time)."""
    code = (
        "import json,resource,subprocess,sys\n"
        "rc=subprocess.call(sys.argv[2:])\n"
        "ru=resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "open(sys.argv[1],'w').write(json.dumps({'max_rss_kib':ru.ru_maxrss}))\n"
        "sys.exit(rc)\n"
    )
    return [sys.executable, "-c", code]


def _stop_group(proc: subprocess.Popen) -> None:
    """End the tool's whole process group (it runs in its own session)."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _stop_below_wrapper(proc: subprocess.Popen) -> None:
    """End the command under the measuring wrapper first, so that the wrapper still reports
    its CPU time and max RSS; then the whole group."""
    kids = _children_of()
    todo, tree = list(kids.get(proc.pid, [])), []
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += kids.get(pid, [])
    for pid in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=20)
    _stop_group(proc)


def settle(max_load: float | None, max_wait: float) -> float:
    """Wait (up to max_wait s) for the 1-minute load average to drop below max_load."""
    waited = 0.0
    while max_load is not None and os.getloadavg()[0] >= max_load and waited < max_wait:
        time.sleep(5)
        waited += 5
    return waited


def add_settle_options(ap: argparse.ArgumentParser) -> None:
    """--settle-load and --settle-max, for harnesses on a shared machine."""
    ap.add_argument(
        "--settle-load",
        type=float,
        default=None,
        help="before each run, wait for the 1-minute load average to drop below this "
        "(default: don't wait)",
    )
    ap.add_argument("--settle-max", type=float, default=300.0, help="longest such wait, s")


def thread_env(threads: int | None) -> dict[str, str]:
    """This environment, with OMP/MKL/OPENBLAS_NUM_THREADS=threads when given."""
    env = dict(os.environ)
    if threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(threads)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _time_stats(text: str) -> tuple[int | None, dict[str, float | None], int | None]:
    """Max RSS (KiB), user/system seconds and exit status from ``/usr/bin/time -v``."""
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    max_rss_kib = int(m.group(1)) if m else None
    cpu: dict[str, float | None] = {}
    for key, pattern in (
        ("user_s", r"User time \(seconds\): ([\d.]+)"),
        ("sys_s", r"System time \(seconds\): ([\d.]+)"),
    ):
        m = re.search(pattern, text)
        cpu[key] = float(m.group(1)) if m else None
    m = re.search(r"Exit status: (\d+)", text)
    return max_rss_kib, cpu, int(m.group(1)) if m else None


def measure(
    cmd: list[str],
    cwd: Path,
    env: dict,
    log: Path,
    timeout: float | None,
    containers: bool = False,
) -> dict[str, Any]:
    """Run ``cmd`` in its own session, output to ``log``; stop its group after ``timeout``."""
    stats = cwd / ".bench-time.txt"
    if TIME.exists():
        wrapped = [str(TIME), "-v", "-o", str(stats), *cmd]
    else:
        wrapped = [*_max_rss_wrapper(), str(stats), *cmd]
    load = os.getloadavg()
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            wrapped, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        sampler = TreeSampler(proc.pid)
        sampler.start()
        docker = ContainerSampler(sampler) if containers else None
        if docker is not None:
            docker.start()
        timed_out = False
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _stop_below_wrapper(proc)
            rc = None
        except BaseException:  # Ctrl-C or SIGTERM of the harness: leave nothing behind
            _stop_group(proc)
            raise
        finally:
            wall = time.perf_counter() - start
            sampler.stop()
            if docker is not None:
                docker.stop()
    max_rss_kib = None
    cpu: dict[str, float | None] = {}
    if stats.exists():
        text = stats.read_text()
        if TIME.exists():
            max_rss_kib, cpu, status = _time_stats(text)
            if status is not None and rc is not None:
                rc = status
        else:
            max_rss_kib = json.loads(text)["max_rss_kib"]
    return {
        "status": "timeout" if timed_out else ("ok" if rc == 0 else "failed"),
        "returncode": rc,
        "wall_s": round(wall, 3),
        "max_rss_mib": round(max_rss_kib / 1024, 1) if max_rss_kib else None,
        "tree_pss_peak_mib": round(sampler.peak_kib / 1024, 1),
        "tree_anon_peak_mib": round(sampler.peak_anon_kib / 1024, 1),
        **cpu,
        "tree_procs_at_peak": sampler.peak_procs,
        "loadavg_before": [round(x, 2) for x in load],
        "memory_tool": "/usr/bin/time -v" if TIME.exists() else "getrusage(RUSAGE_CHILDREN)",
        **(docker.result() if docker is not None else {}),
    }


def cpu_s(run: dict) -> float | None:
    """User + system seconds of a measured run, if both are known."""
    if run.get("user_s") is None or run.get("sys_s") is None:
        return None
    return run["user_s"] + run["sys_s"]


def primary_score(scores: dict) -> dict:
    """heareval's shape: {fold: {test_score, ...}, aggregated_scores: {...}, hparams, ...}:
    aggregated_scores.test_score_mean for k-fold tasks, else the single fold's test_score."""
    folds = {
        k: v for k, v in scores.items()
        if isinstance(v, dict) and "test_score" in v
    }  # fmt: skip
    agg = scores.get("aggregated_scores")
    if isinstance(agg, dict) and "test_score_mean" in agg:
        value, std, source = (
            agg["test_score_mean"],
            agg.get("test_score_std"),
            "aggregated_scores.test_score_mean",
        )
    elif len(folds) == 1:
        ((name, fold),) = folds.items()
        value, std, source = fold["test_score"], None, f"{name}.test_score"
    else:
        value, std, source = None, None, "not found"
    return {
        "score": value,
        "score_std": std,
        "score_source": source,
        "fold_scores": {k: v["test_score"] for k, v in folds.items()},
    }
