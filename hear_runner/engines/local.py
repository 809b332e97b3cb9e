"""The local engine: the contract server as a subprocess of the host's Python.

For machines without Docker and for fast tests. The server speaks over a
socket pair given to it as stdin and stdout, so the same client (with the
same timeouts) serves both engines.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from hear_runner.contract import package
from hear_runner.contract.client import ModelClient
from hear_runner.engines import leftovers
from hear_runner.engines.base import EngineSettings, ModelSource, RunningModel
from hear_runner.errors import HearError


class LocalEngine:
    name = "local"

    def __init__(
        self, settings: EngineSettings | None = None, python: str = sys.executable
    ) -> None:
        self.settings = settings or EngineSettings()
        self.python = python
        leftovers.sweep_temp()  # what a `hear` killed with SIGKILL left in the temp folder

    def check(self, source: ModelSource) -> str:
        if source.kind != "module":
            raise HearError(f"the local engine runs modules, not images ({source.ref})")
        return f"{source.ref} @ {Path(self.python).absolute()}"

    def start(self, source: ModelSource, gpu: str | None = None) -> RunningModel:
        """Start a server process; ``gpu`` (a device id) pins it to that CUDA device."""
        self.check(source)
        host_end, server_end = socket.socketpair()
        # The pid in the name: a later run removes it if this process is killed (leftovers).
        log_fd, log_name = tempfile.mkstemp(prefix=f"hear-server-{os.getpid()}-", suffix=".log")
        env = {**os.environ, **source.environment()}
        if gpu is not None:
            env["HEAR_DEVICE"] = f"cuda:{gpu}"
        # The server comes from its own folder: the model's interpreter need not have hear-runner.
        paths = [str(package.package_root()), os.getcwd(), env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        proc = subprocess.Popen(
            [self.python, "-m", package.SERVER_MODULE],
            stdin=server_end.fileno(),
            stdout=server_end.fileno(),
            stderr=log_fd,
            env=env,
            start_new_session=True,  # Ctrl-C reaches the host, which then stops the server
        )
        server_end.close()
        os.close(log_fd)
        log = Path(log_name)
        label = f"module {source.ref} (local process {proc.pid})"
        if self.python != sys.executable:
            label = f"module {source.ref} ({self.python}, process {proc.pid})"

        def kill() -> None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

        def post_mortem() -> str:
            try:
                code = proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                return "its connection closed but the process is still running"
            return _describe_exit(code) + _last_line(log)

        def stop() -> None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                kill()
            log.unlink(missing_ok=True)

        client = ModelClient(host_end, label, post_mortem, kill, self.settings.budget())
        running = RunningModel(
            client,
            {"engine": "local", "module": source.ref, "python": self.python, "pid": proc.pid},
            stop,
        )
        try:
            hello = client.wait_hello(self.settings.load_timeout)
        except BaseException:
            running.close(graceful=False)
            raise
        running.provenance.update(hello=hello.model_dump())
        return running


def _describe_exit(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def _last_line(log: Path) -> str:
    """The last non-empty line the server wrote to stderr: usually the exception."""
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return f"; last output: {lines[-1].strip()}" if lines else ""
