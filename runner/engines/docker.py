"""The Docker engine: each model in its own hardened container, spoken to over a Unix socket.

The socket lives in a per-container run directory bind-mounted from the host
(works with no network at all, and is the fastest transport on one host).
Containers are removed by id on every exit path: normal end, error, timeout,
Ctrl-C, and interpreter exit.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from runner.contract import wire
from runner.contract.client import ModelClient
from runner.engines.attach import AttachStream, attach
from runner.engines.base import EngineSettings, ModelSource, RunningModel
from runner.errors import HearError, ImageError, ModelDied

CONTRACT_LABEL = "org.hear.contract"
RUNNER_LABEL = "org.hear.runner"
SOCKET_DIR = "/run/hear"
UNPRIVILEGED_USER = "10001:10001"


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
        run_dir = Path(tempfile.mkdtemp(prefix="hear-run-"))
        run_dir.chmod(0o777)  # the container runs as an unprivileged user of its own
        socket_path = run_dir / "model.sock"
        name = f"hear-{_slug(source.ref)}-{secrets.token_hex(3)}"
        container = self._create(image, source, name, run_dir, gpu)
        label = f"container {name} (image {source.ref})"

        def remove() -> None:
            with contextlib.suppress(Exception):
                container.remove(force=True)
            shutil.rmtree(run_dir, ignore_errors=True)

        stream: Any = None
        try:
            if self.sandbox.transport == "stdio":
                stream = AttachStream(attach(self.docker.api, container.id))  # before start
            container.start()
            deadline = time.monotonic() + self.settings.load_timeout  # socket and hello share it
            if stream is None:
                stream = self._connect(container, socket_path, label, deadline)
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
        running = RunningModel(client, self._provenance(image, source, container), stop)
        try:
            hello = client.wait_hello(max(deadline - time.monotonic(), 1.0))
        except BaseException:
            running.close(graceful=False)
            raise
        running.provenance["hello"] = hello.model_dump()
        return running

    def _create(
        self, image: Any, source: ModelSource, name: str, run_dir: Path, gpu: str | None
    ) -> Any:
        from docker.errors import DockerException

        sandbox = (
            self.sandbox
            if gpu is None
            else self.sandbox.model_copy(update={"gpus": f"device={gpu}"})
        )
        user = image.attrs.get("Config", {}).get("User") or ""
        if user in ("", "0", "root") or user.startswith(("0:", "root:")):
            user = UNPRIVILEGED_USER
        stdio = sandbox.transport == "stdio"
        environment = source.environment()
        if not stdio:
            environment["HEAR_SOCKET"] = f"{SOCKET_DIR}/model.sock"
        if sandbox.gpus is None:
            environment.setdefault("HEAR_DEVICE", "cpu")
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
                volumes={} if stdio else {str(run_dir): {"bind": SOCKET_DIR, "mode": "rw"}},
                labels={RUNNER_LABEL: "1", "org.hear.source": source.ref},
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

    def _connect(
        self, container: Any, socket_path: Path, label: str, deadline: float
    ) -> socket.socket:
        """Wait for the server's socket; a container that exits first is reported as dead."""
        while time.monotonic() < deadline:
            if socket_path.exists():
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.connect(str(socket_path))
                    return sock
                except OSError:
                    sock.close()
            container.reload()
            if container.status in ("exited", "dead"):
                raise ModelDied(f"{label} died before serving: {_post_mortem(container)}", "died")
            time.sleep(0.05)
        raise ModelDied(
            f"{label} did not open its socket within {self.settings.load_timeout:.0f} s"
        )

    def _provenance(self, image: Any, source: ModelSource, container: Any) -> dict[str, Any]:
        return {
            "engine": "docker",
            "image": source.ref,
            "image_id": image.id,
            "repo_digests": image.attrs.get("RepoDigests", []),
            "image_labels": image.labels,
            "container": container.name,
            "sandbox": self.sandbox.model_dump(),
            "docker_version": self.docker.version().get("Version"),
        }


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
    return "; ".join(parts)


def _slug(ref: str) -> str:
    base = ref.rsplit("/", 1)[-1].split("@")[0].replace(":", "-")
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in base)[:40]


def _first_line(e: BaseException) -> str:
    text = getattr(e, "explanation", None) or str(e)
    return str(text).strip().splitlines()[0] if str(text).strip() else type(e).__name__
