"""Connecting to a Ray cluster: the address, a quick reachability check, and its nodes.

A run on Ray is asked for with ``--ray ADDRESS`` or ``HEAR_RAY_ADDRESS``: ``auto`` (the
cluster this machine belongs to), ``HOST:PORT`` (its head's GCS, from a machine of the
cluster) or ``ray://HOST:PORT`` (Ray Client, from anywhere that reaches the head; it needs
``ray[client]``, and carries no streaming tasks, so each unit's batches come back when the
unit ends). An address nobody answers fails in seconds with one line naming it, rather
than after Ray's own minute of retries.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from pydantic import BaseModel

from hear_runner.errors import HearError, one_line

#: Where ``--ray`` is read from when the option is not given.
ADDRESS_VARIABLE = "HEAR_RAY_ADDRESS"

#: The custom resource a node with a Docker engine declares: how many model containers
#: it runs at once (``ray start --resources '{"hear_docker": 1}'``).
RESOURCE = "hear_docker"

#: The Ray namespace of a run's named model servers.
NAMESPACE = "hear"

#: Seconds to wait for the head to accept a connection.
CONNECT_TIMEOUT = 5.0

INSTALL_HINT = "pip install 'hear-runner[ray]'"

#: Ray Client: the head's client server starts a server process for each driver, and that
#: start can fail on a loaded head (the process gone before the proxy looked at it); the
#: driver is told so with this message, and joins again, up to CLIENT_ATTEMPTS times.
SERVER_START_FAILED = "Initialization failure from server"
CLIENT_ATTEMPTS = 3
CLIENT_RETRY_SECONDS = 2.0


class NodeInfo(BaseModel):
    """A node as the run found it: Ray's id, its address, and what it offers."""

    node_id: str
    ip: str
    hostname: str
    resources: dict[str, float]


class ClusterInfo(BaseModel):
    """The cluster a run used (kept in its manifest and records)."""

    address: str
    ray_version: str
    nodes: list[NodeInfo]


def import_ray() -> Any:
    """Ray, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise HearError(f"--ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def check_reachable(address: str) -> None:
    """HOST:PORT (or ray://HOST:PORT) must accept a TCP connection within CONNECT_TIMEOUT."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise HearError(f"--ray {address!r}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as e:
        reason = one_line(e.strerror or e) if not isinstance(e, TimeoutError) else "timed out"
        raise HearError(f"no Ray cluster answers at {address}: {reason}") from None


def connect(address: str, resource: str) -> ClusterInfo:
    """Join the cluster as its driver; it must have a node offering ``resource``."""
    ray = import_ray()
    check_reachable(address)
    client = address.startswith("ray://")
    quiet = {} if client else {"log_to_driver": False}
    for attempt in range(1, CLIENT_ATTEMPTS + 1):
        try:
            ray.init(address=address, namespace=NAMESPACE, logging_level="ERROR", **quiet)
            break
        except ImportError as e:  # Ray Client without ray[client]'s grpcio
            raise HearError(f"--ray {address}: {one_line(e)}: pip install 'ray[client]'") from None
        except (ConnectionError, RuntimeError, ValueError) as e:
            if client and SERVER_START_FAILED in str(e) and attempt < CLIENT_ATTEMPTS:
                ray.shutdown()
                time.sleep(CLIENT_RETRY_SECONDS * attempt)
                continue
            tries = f" (after {attempt} tries)" if attempt > 1 else ""
            raise HearError(
                f"cannot join the Ray cluster at {address}{tries}: {one_line(e)}"
            ) from None
    nodes = [
        NodeInfo(
            node_id=n["NodeID"],
            ip=n["NodeManagerAddress"],
            hostname=n.get("NodeManagerHostname", ""),
            resources={k: float(v) for k, v in n["Resources"].items() if "node:" not in k},
        )
        for n in ray.nodes()
        if n["Alive"]
    ]
    if not any(n.resources.get(resource) for n in nodes):
        ray.shutdown()
        raise HearError(
            f"the Ray cluster at {address} has no node with a Docker engine for hear: start "
            f"such nodes with ray start ... --resources '{{\"{resource}\": 1}}'"
        )
    return ClusterInfo(address=address, ray_version=ray.__version__, nodes=nodes)
