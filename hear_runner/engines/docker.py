"""The Docker engine: each model in its own hardened container, spoken to over a Unix socket.

The host owns the socket: it binds and listens on ``model.sock`` in a run folder of its
own (mode 0755), bind-mounted read-only at ``/run/hear``, and the server in the container
connects to it. The container can neither replace the socket (so it cannot point the host
at another socket of this machine) nor write anything to the host's disk through it; its
scratch space is its size-limited tmpfs. This works with no network at all and is the
fastest transport on one host. Images built on a hear/base older than this (without the
``org.hear.socket=connect`` label) listen instead of connecting: they are spoken to over
the attach stream (stdio), which they speak unchanged.

Containers are removed by id on every exit path: normal end, error, timeout, Ctrl-C, and
interpreter exit; after a SIGKILL the next engine removes them (``leftovers``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import struct
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from hear_runner.contract import wire
from hear_runner.contract.client import ModelClient
from hear_runner.engines import leftovers
from hear_runner.engines.attach import AttachStream, attach
from hear_runner.engines.base import EngineSettings, ModelSource, RunningModel
from hear_runner.errors import HearError, ImageError, ModelDied
from hear_runner.names import slug

CONTRACT_LABEL = "org.hear.contract"
RUNNER_LABEL = leftovers.RUNNER_LABEL
SOCKET_DIR = "/run/hear"
UNPRIVILEGED_USER = "10001:10001"
#: Set by hear/base: its server connects to the host's socket (HEAR_SOCKET) rather than
#: listening on one. Images without it get the stdio transport.
SOCKET_LABEL = "org.hear.socket"
SOCKET_CONNECTS = "connect"
#: hear/base's entrypoint: it finds the server without PYTHONPATH.
BASE_ENTRYPOINT = ["python3", "/opt/hear/hear_contract/launch.py"]
#: hear/base's entrypoint before it had the launcher (needs PYTHONPATH=/opt/hear).
LEGACY_ENTRYPOINT = ["python3", "-m", "hear_contract.server"]


class Sandbox(BaseModel):
    """How a model container is confined; recorded with every result."""

    network: str = "none"
    read_only_root: bool = True
    tmpfs_size: str = "4g"
    cap_drop: list[str] = ["ALL"]
    no_new_privileges: bool = True
    memory: str | None = "8g"
    pids_limit: int = 1024
    gpus: str | None = None
    # socket: a Unix socket in a bind-mounted run folder (fast; host and engine share a
    # filesystem). stdio: the attach stream (a remote engine, or hear inside a container).
    transport: Literal["auto", "socket", "stdio"] = "auto"


def pick_transport(choice: str, docker_root: str | None = None) -> Literal["socket", "stdio"]:
    """``auto``: the Unix socket when the engine shares this host's files (a local engine
    whose data root is visible here), else the attach stream (a remote DOCKER_HOST, or
    hear in a container talking to its host's engine)."""
    if choice in ("socket", "stdio"):
        return choice  # type: ignore[return-value]
    if choice != "auto":
        raise HearError(f"--transport {choice!r}: expected auto, socket or stdio")
    host = os.environ.get("DOCKER_HOST", "")
    if host and not host.startswith("unix://"):
        return "stdio"
    return "socket" if docker_root and Path(docker_root).is_dir() else "stdio"


def connect() -> Any:
    """A Docker SDK client, or a one-line error saying how to get an engine."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env()
        client.ping()
    except DockerException as e:
        raise HearError(
            f"no Docker engine reachable ({_first_line(e)}): start dockerd, or use "
            "--model-module to run the model with the local engine"
        ) from None
    return client


def device_requests(gpus: str | None) -> list[Any]:
    """Map --gpus all|N|device=0,2 to Docker device requests, as `docker run --gpus` does."""
    from docker.types import DeviceRequest

    if not gpus:
        return []
    if gpus == "all":
        return [DeviceRequest(count=-1, capabilities=[["gpu"]])]
    if gpus.isdigit():
        return [DeviceRequest(count=int(gpus), capabilities=[["gpu"]])]
    if gpus.startswith("device="):
        ids = [d for d in gpus.removeprefix("device=").split(",") if d]
        if ids:
            return [DeviceRequest(device_ids=ids, capabilities=[["gpu"]])]
    raise HearError(f"--gpus {gpus!r}: expected all, a count, or device=ID[,ID...]")


class DockerEngine:
    name = "docker"

    def __init__(
        self,
        settings: EngineSettings | None = None,
        sandbox: Sandbox | None = None,
        client: Any = None,
    ) -> None:
        self.settings = settings or EngineSettings()
        self.docker = client or connect()
        self.sandbox = sandbox or Sandbox()
        if self.sandbox.transport == "auto":
            root = self.docker.info().get("DockerRootDir")
            self.sandbox = self.sandbox.model_copy(
                update={"transport": pick_transport("auto", root)}
            )
        # What a `hear` killed with SIGKILL left on this engine and in this machine's temp.
        leftovers.sweep_containers(self.docker, SOCKET_DIR)
        leftovers.sweep_temp()

    # -- images --------------------------------------------------------------------
    def inspect_image(self, ref: str) -> Any:
        """The local image, refused before any container starts if it lacks the contract label."""
        from docker.errors import APIError, ImageNotFound

        try:
            image = self.docker.images.get(ref)
        except ImageNotFound:
            image = self._pull(ref)
        except APIError as e:
            raise ImageError(f"image {ref!r}: {_first_line(e)}") from None
        labels = image.labels or {}
        version = labels.get(CONTRACT_LABEL)
        if version != str(wire.CONTRACT_VERSION):
            said = (
                f"declares {CONTRACT_LABEL}={version}"
                if version
                else f"has no {CONTRACT_LABEL} label"
            )
            raise ImageError(
                f"image {ref!r} {said}; this runner speaks contract "
                f"{wire.CONTRACT_VERSION}: build the image FROM hear/base (see docs/contract.md)"
            )
        return image

    def _pull(self, ref: str) -> Any:
        from docker.errors import DockerException

        try:
            return self.docker.images.pull(ref)
        except DockerException as e:
            raise ImageError(
                f"image {ref!r} is not on this Docker engine and could not be pulled "
                f"({_first_line(e)}); build it with: hear image build DIR --tag {ref}"
            ) from None

    # -- containers ----------------------------------------------------------------
    def check(self, source: ModelSource) -> str:
        if source.kind != "image":
            raise HearError(f"the docker engine runs images, not modules ({source.ref})")
        return str(self.inspect_image(source.ref).id)

    def start(self, source: ModelSource, gpu: str | None = None) -> RunningModel:
        """Start a container; ``gpu`` (a device id) gives it that one GPU instead of --gpus."""
        self.check(source)
        image = self.inspect_image(source.ref)
        sandbox = self._sandbox_for(image, gpu)
        name = f"hear-{_slug(source.ref)}-{secrets.token_hex(3)}"
        label = f"container {name} (image {source.ref})"
        run_dir: Path | None = None
        listener: socket.socket | None = None
        if sandbox.transport == "socket":
            run_dir, listener = _listen()
        container: Any = None

        def remove() -> None:
            if listener is not None:
                listener.close()
            if container is not None:
                with contextlib.suppress(Exception):
                    container.remove(force=True)
            if run_dir is not None:
                shutil.rmtree(run_dir, ignore_errors=True)

        stream: Any = None
        peer: dict[str, int] = {}
        try:
            container = self._create(image, source, name, run_dir, sandbox)
            if sandbox.transport == "stdio":
                stream = AttachStream(attach(self.docker.api, container.id))  # before start
            container.start()
            deadline = time.monotonic() + self.settings.load_timeout  # socket and hello share it
            if stream is None:
                assert listener is not None
                stream, peer = self._accept(listener, container, label, deadline, image)
                listener.close()  # one connection: nobody else may connect later
        except BaseException:
            if stream is not None:
                stream.close()
            remove()
            raise

        def kill() -> None:
            with contextlib.suppress(Exception):
                container.kill()

        def post_mortem() -> str:
            last = stream.last_stderr_line() if isinstance(stream, AttachStream) else ""
            return _post_mortem(container, last)

        def stop() -> None:
            with contextlib.suppress(Exception):
                container.wait(timeout=5)
            remove()

        client = ModelClient(stream, label, post_mortem, kill, self.settings.budget())
        provenance = self._provenance(image, source, container, sandbox)
        if peer:
            provenance["socket_peer"] = peer
        running = RunningModel(client, provenance, stop)
        try:
            hello = client.wait_hello(max(deadline - time.monotonic(), 1.0))
        except BaseException:
            running.close(graceful=False)
            raise
        running.provenance["hello"] = hello.model_dump()
        return running

    def _sandbox_for(self, image: Any, gpu: str | None) -> Sandbox:
        """This container's sandbox: its one GPU, and stdio for an image whose server listens
        on its socket (built on an older hear/base): the host never connects to a socket
        that a container made."""
        update: dict[str, Any] = {}
        if gpu is not None:
            update["gpus"] = f"device={gpu}"
        if self.sandbox.transport == "socket" and not socket_connects(image):
            update["transport"] = "stdio"
        return self.sandbox.model_copy(update=update) if update else self.sandbox

    def _create(
        self, image: Any, source: ModelSource, name: str, run_dir: Path | None, sandbox: Sandbox
    ) -> Any:
        from docker.errors import DockerException

        user = image.attrs.get("Config", {}).get("User") or ""
        if user in ("", "0", "root") or user.startswith(("0:", "root:")):
            user = UNPRIVILEGED_USER
        stdio = sandbox.transport == "stdio"
        environment = source.environment()
        if not stdio:
            environment["HEAR_SOCKET"] = f"{SOCKET_DIR}/model.sock"
        if sandbox.gpus is None:
            environment.setdefault("HEAR_DEVICE", "cpu")
        # Read-only: the socket is the host's (connecting needs no write access to the
        # mount), and nothing the container writes can reach the host's disk.
        volumes = {str(run_dir): {"bind": SOCKET_DIR, "mode": "ro"}} if run_dir else {}
        try:
            return self.docker.containers.create(
                image.id,
                name=name,
                environment=environment,
                user=user,
                init=True,
                network_mode=sandbox.network,
                read_only=sandbox.read_only_root,
                tmpfs={"/tmp": f"rw,exec,size={sandbox.tmpfs_size},mode=1777"},
                cap_drop=sandbox.cap_drop,
                security_opt=["no-new-privileges"] if sandbox.no_new_privileges else [],
                mem_limit=sandbox.memory,
                pids_limit=sandbox.pids_limit,
                device_requests=device_requests(sandbox.gpus),
                volumes=volumes,
                # Owner marks: the next run removes this container if this process is
                # killed with SIGKILL (leftovers.sweep_containers).
                labels={
                    RUNNER_LABEL: "1",
                    "org.hear.source": source.ref,
                    **leftovers.owner_labels(),
                },
                # The attach stream carries binary frames: a log driver would store them all.
                log_config={"type": "none"}
                if stdio
                else {"type": "json-file", "config": {"max-size": "10m"}},
                stdin_open=stdio,
            )
        except DockerException as e:
            raise HearError(
                f"cannot create a container for {source.ref!r}: {_first_line(e)}"
            ) from None

    def _accept(
        self,
        listener: socket.socket,
        container: Any,
        label: str,
        deadline: float,
        image: Any,
    ) -> tuple[socket.socket, dict[str, int]]:
        """Wait for the container's server to connect; a container that exits first is
        reported as dead. A peer that is not a process of this container is turned away."""
        listener.settimeout(0.2)
        refused: list[str] = []
        while time.monotonic() < deadline:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                container.reload()
                if container.status in ("exited", "dead"):
                    raise ModelDied(
                        f"{label} died before serving: {_post_mortem(container)}"
                        + _entrypoint_hint(image),
                        "died",
                    ) from None
                continue
            peer = _peer_credentials(conn)
            container.reload()
            if not _peer_in_container(peer.get("pid", 0), container):
                refused.append(str(peer.get("pid")))
                conn.close()
                continue
            conn.settimeout(None)
            return conn, peer
        others = f" (refused connections from processes {', '.join(refused)})" if refused else ""
        raise ModelDied(
            f"{label} did not connect to its socket within {self.settings.load_timeout:.0f} s"
            + others
            + _entrypoint_hint(image)
        )

    def _provenance(
        self, image: Any, source: ModelSource, container: Any, sandbox: Sandbox
    ) -> dict[str, Any]:
        return {
            "engine": "docker",
            "image": source.ref,
            "image_id": image.id,
            "repo_digests": image.attrs.get("RepoDigests", []),
            "image_labels": image.labels,
            "container": container.name,
            "sandbox": sandbox.model_dump(),
            "docker_version": self.docker.version().get("Version"),
        }


def socket_connects(image: Any) -> bool:
    """Whether the image's server connects to the host's socket (hear/base with the label)."""
    return (image.labels or {}).get(SOCKET_LABEL) == SOCKET_CONNECTS


def entrypoint_problem(image: Any, ref: str) -> str:
    """A line naming an image whose entrypoint is not hear/base's, else ''."""
    entrypoint = image.attrs.get("Config", {}).get("Entrypoint") or []
    if entrypoint in (BASE_ENTRYPOINT, LEGACY_ENTRYPOINT):
        return ""
    return (
        f"image {ref} replaces hear/base's entrypoint {json.dumps(BASE_ENTRYPOINT)} with "
        f"{json.dumps(entrypoint)}: the contract server must be the image's entrypoint "
        "(remove ENTRYPOINT from its Dockerfile)"
    )


def _entrypoint_hint(image: Any) -> str:
    entrypoint = image.attrs.get("Config", {}).get("Entrypoint") or []
    if entrypoint in (BASE_ENTRYPOINT, LEGACY_ENTRYPOINT):
        return ""
    return f"; its entrypoint {json.dumps(entrypoint)} is not hear/base's"


def _listen() -> tuple[Path, socket.socket]:
    """A run folder of this host's (0755: the container may only traverse it) holding the
    socket the host listens on; mode 0666 so the container's user can connect."""
    run_dir = Path(tempfile.mkdtemp(prefix=f"hear-run-{os.getpid()}-"))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        run_dir.chmod(0o755)
        path = run_dir / "model.sock"
        listener.bind(str(path))
        path.chmod(0o666)
        listener.listen(1)
    except BaseException:
        listener.close()
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return run_dir, listener


def _peer_credentials(conn: socket.socket) -> dict[str, int]:
    """The connecting process's pid, uid and gid (SO_PEERCRED); {} where not available."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return {}
    try:
        pid, uid, gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, option, 12))
    except OSError:
        return {}
    return {"pid": pid, "uid": uid, "gid": gid}


def _peer_in_container(pid: int, container: Any) -> bool:
    """False only when the peer is known not to descend from the container's init.

    The pid is 0 when the peer lives in a pid namespace this process cannot see (hear in
    a container of its own): nothing to check then, and the socket's folder still keeps
    everything but the container's mount from reaching it.
    """
    init = int(container.attrs.get("State", {}).get("Pid") or 0)
    if pid <= 0 or init <= 0 or not Path(f"/proc/{init}").exists():
        return True
    for _ in range(64):
        if pid == init:
            return True
        if pid <= 1:
            return False
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True  # gone meanwhile: cannot tell
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return False


def _post_mortem(container: Any, last_line: str = "") -> str:
    """Exit code, OOM kill and the last log line of a container that stopped answering."""
    try:
        result = container.wait(timeout=5)
        container.reload()
    except Exception:
        return "its connection closed but the container is still running"
    state = container.attrs.get("State", {})
    parts = [f"exited with code {result.get('StatusCode')}"]
    if state.get("OOMKilled"):
        limit = container.attrs["HostConfig"].get("Memory")
        parts.append(f"killed for exceeding its memory limit ({limit} bytes)")
    elif result.get("StatusCode") == 137:
        parts.append("killed (SIGKILL)")
    try:
        lines = [
            ln for ln in container.logs(tail=20).decode(errors="replace").splitlines() if ln.strip()
        ]
    except Exception:
        lines = [last_line] if last_line else []  # no log driver: the attach stream's stderr
    if lines:
        parts.append(f"last output: {lines[-1].strip()}")
        if "No module named 'hear_contract'" in lines[-1]:
            parts.append(
                "the image's PYTHONPATH hides /opt/hear (hear/base before its launcher): "
                "rebuild it on the current hear/base"
            )
    return "; ".join(parts)


def _slug(ref: str) -> str:
    """The image's own name (no registry, digest or tag colon), fit for a container name."""
    base = ref.rsplit("/", 1)[-1].split("@")[0].replace(":", "-")
    return slug(base, fill="-", strip=False, default="")[:40]


def _first_line(e: BaseException) -> str:
    text = getattr(e, "explanation", None) or str(e)
    return str(text).strip().splitlines()[0] if str(text).strip() else type(e).__name__
