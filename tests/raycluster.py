"""A real Ray cluster of several nodes on this machine, on loopback only, for the tests.

Ray replaces a node address of 127.0.0.1 with the machine's outward one (so nodes on
other machines can reach it), so the cluster runs in a network namespace of its own whose
only interface is loopback: every node, and the driver (run with :meth:`run`), joins it
there. Each node is its own ``ray start --block`` in its own process group, so a test
stops exactly the processes it started (a node "dies" by SIGKILL to its group). Nodes
reach the host's Docker engine through its Unix socket, which no namespace hides. A node
can also get a mount namespace of its own in which a folder is hidden (an empty folder
bound over it), as on a machine that lacks a shared filesystem.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
PORT = 6391


def can_run() -> str | None:
    """Why a cluster cannot start here (None when it can)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return "ray is not installed (pip install 'hear-runner[ray]'; scripts/setup installs it)"
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("unshare", "nsenter", "ip")):
        return "a loopback-only cluster needs root, unshare, nsenter and ip (network namespaces)"
    return None


class LoopbackCluster:
    """Nodes started by this object, in a network namespace that only has 127.0.0.1."""

    def __init__(self, root: Path) -> None:
        self.root = root  # the nodes' logs
        root.mkdir(parents=True, exist_ok=True)
        self.nodes: dict[str, subprocess.Popen[bytes]] = {}
        self.namespace = subprocess.Popen(
            ["unshare", "--net", "--", "sh", "-c", "ip link set lo up && exec sleep infinity"],
            start_new_session=True,
        )
        self.address = f"127.0.0.1:{PORT}"
        self.token = secrets.token_hex(32)
        self.temp = Path(tempfile.mkdtemp(prefix="hear-ray-"))
        self._wait(lambda: b"UP" in self._ip(), "the namespace's loopback")

    def _ip(self) -> bytes:
        return subprocess.run(self.enter(["ip", "-brief", "link", "show", "lo"]),
                              capture_output=True, check=False).stdout  # fmt: skip

    def enter(self, command: list[str]) -> list[str]:
        """``command`` run inside the cluster's network namespace."""
        return ["nsenter", "-t", str(self.namespace.pid), "-n", "--", *command]

    def env(self) -> dict[str, str]:
        return {**os.environ, "RAY_USAGE_STATS_ENABLED": "0",
                # Ray's token authentication, with this cluster's own token
                "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token,
                # a lost node is noticed in about 3 s rather than Ray's default 15 s
                "RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3",
                "RAY_health_check_initial_delay_ms": "1000",
                # a Ray Client's server process may start slowly on a loaded 2-core machine
                "RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S": "120"}  # fmt: skip

    def start_node(
        self,
        name: str,
        resources: dict[str, float],
        hide: list[Path] | None = None,
        cpus: int = 1,
        over: Path | None = None,
    ) -> None:
        """Start node ``name`` (the first is the head), the folders ``hide`` made empty in
        its view (or showing the folder ``over`` instead)."""
        head = not self.nodes
        temp = self.temp / name  # Ray's sockets live here: AF_UNIX paths hold 107 bytes
        temp.mkdir(parents=True, exist_ok=True)
        command = [RAY, "start", "--block", "--node-ip-address", "127.0.0.1",
                   f"--num-cpus={cpus}", "--num-gpus=0", "--resources", json.dumps(resources),
                   "--disable-usage-stats", f"--temp-dir={temp}"]  # fmt: skip
        if head:
            command += ["--head", f"--port={PORT}", "--include-dashboard=false"]
        else:
            command += [f"--address={self.address}"]
        if hide:
            empty = over or self.root / f"{name}-empty"
            empty.mkdir(exist_ok=True)
            script = 'e=$1; shift; while [ "$1" != -- ]; do mount --bind "$e" "$1" || exit 1; shift; done; shift; exec "$@"'
            command = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                       script, "sh", str(empty), *map(str, hide), "--", *command]  # fmt: skip
        log = (self.root / f"{name}.log").open("wb")
        self.nodes[name] = subprocess.Popen(
            self.enter(command), stdout=log, stderr=subprocess.STDOUT, env=self.env(),
            start_new_session=True,
        )  # fmt: skip
        count = len(self.nodes)
        self._wait(lambda: self.alive_nodes() >= count, f"node {name} to join")

    def alive_nodes(self) -> int:
        return sum(self.node_ids().values())

    def node_ids(self) -> dict[str, bool]:
        """Ray's id of each node (the head's first) and whether it is alive."""
        code = (
            f"import json, ray; ray.init(address='{self.address}', logging_level='ERROR', "
            "log_to_driver=False); nodes = sorted(ray.nodes(), key=lambda n: "
            "'node:__internal_head__' not in n['Resources']); "
            "print(json.dumps({n['NodeID']: n['Alive'] for n in nodes}))"
        )
        done = subprocess.run(self.enter([sys.executable, "-c", code]), capture_output=True,
                              text=True, env=self.env(), timeout=60, check=False)  # fmt: skip
        lines = done.stdout.strip().splitlines()
        return json.loads(lines[-1]) if done.returncode == 0 and lines else {}

    def run(self, command: list[str], **kwargs: object) -> subprocess.Popen[str]:
        """Start ``command`` (a driver) inside the cluster's namespace."""
        return subprocess.Popen(self.enter(command), env=self.env(), text=True,
                                start_new_session=True, **kwargs)  # type: ignore[call-overload]  # fmt: skip

    def kill_node(self, name: str) -> None:
        """The node's processes (its raylet, workers and model servers' actors) SIGKILLed."""
        node = self.nodes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.pid, signal.SIGKILL)
        node.wait(timeout=30)

    def stop(self) -> None:
        """Every node this object started, last first, then the namespace."""
        for name in reversed(list(self.nodes)):
            self.kill_node(name)  # nothing of a test's cluster needs a graceful drain
        os.killpg(self.namespace.pid, signal.SIGKILL)
        self.namespace.wait(timeout=10)
        for logs in self.temp.glob("*/session_latest/logs"):  # kept beside the node logs
            node = logs.parent.parent.name
            shutil.copytree(logs, self.root / f"{node}-ray-logs", dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("*.sock", "*.pid"))  # fmt: skip
        shutil.rmtree(self.temp, ignore_errors=True)

    @staticmethod
    def _wait(ready: object, what: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():  # type: ignore[operator]
                return
            time.sleep(0.5)
        raise TimeoutError(f"waited {timeout:.0f} s for {what}")
