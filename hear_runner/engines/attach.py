"""The Docker attach stream as a model server's stdin and stdout.

The fallback transport where host and engine share no filesystem for the Unix socket
(a remote engine, or `hear` itself running in a container). Without a TTY, Docker
multiplexes the container's stdout and stderr on one stream, each chunk behind an
8-byte header (the stream: 1 stdout, 2 stderr; three zero bytes; a big-endian length).
This reads the stdout chunks as one byte stream, so the contract's frames pass through
unchanged, and keeps the last lines of stderr for error messages (the container runs
with no log driver: binary frames must not fill a log).
"""

from __future__ import annotations

import socket
import struct
from typing import Any

STDOUT, STDERR = 1, 2
STDERR_KEPT = 4096


class AttachStream:
    """The parts of a socket `ModelClient` uses, over Docker's multiplexed attach stream."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._left = 0  # stdout bytes left in the current chunk
        self._stderr = bytearray()

    def settimeout(self, timeout: float | None) -> None:
        self.sock.settimeout(timeout)

    def recv_into(self, buffer: Any, nbytes: int = 0) -> int:
        """Read stdout bytes only; 0 at the end of the stream."""
        while self._left == 0:
            header = self._exactly(8)
            if not header:
                return 0
            kind, size = header[0], struct.unpack(">I", header[4:8])[0]
            if kind == STDOUT:
                self._left = size
            else:
                chunk = self._exactly(size)
                if kind == STDERR:
                    self._stderr = (self._stderr + chunk)[-STDERR_KEPT:]
        view = memoryview(buffer)
        want = min(nbytes or len(view), self._left)
        n = self.sock.recv_into(view[:want])
        self._left -= n
        return n

    def _exactly(self, n: int) -> bytes:
        """``n`` bytes, or b"" at the end of the stream."""
        data = bytearray()
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                return b""
            data += chunk
        return bytes(data)

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()

    def last_stderr_line(self) -> str:
        lines = [ln for ln in self._stderr.decode(errors="replace").splitlines() if ln.strip()]
        return lines[-1].strip() if lines else ""


def attach(api: Any, container_id: str) -> socket.socket:
    """The raw socket of a container's attach stream (stdin, stdout, stderr), before start."""
    params = {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
    raw = api.attach_socket(container_id, params=params)
    return getattr(raw, "_sock", raw)  # docker's SocketIO wraps the socket
