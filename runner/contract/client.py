"""The host side of the contract: calls with timeouts, replies checked before they are read.

Every reply header is checked against what was asked before a byte of its
arrays is allocated: a server cannot make the host allocate an array it did
not ask for, and an embedding of the wrong size is an error naming the model.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable
from typing import Any, BinaryIO, Protocol, cast

import numpy as np
from pydantic import ValidationError

from runner.contract import wire
from runner.contract.messages import ErrorReply, Hello, Usage
from runner.errors import ModelDied, ModelError, ModelTimeout


class CallBudget:
    """How long a call may take: a fixed part plus a part per second of audio sent."""

    def __init__(self, base_seconds: float = 60.0, per_audio_second: float = 10.0) -> None:
        self.base_seconds = base_seconds
        self.per_audio_second = per_audio_second

    def for_audio(self, n_samples_total: int, sample_rate: int) -> float:
        return self.base_seconds + self.per_audio_second * n_samples_total / sample_rate


class Stream(Protocol):
    """What the client needs of its connection: a socket, or the Docker attach stream."""

    def settimeout(self, timeout: float | None) -> None: ...
    def recv_into(self, buffer: Any, nbytes: int = 0) -> int: ...
    def sendall(self, data: bytes) -> None: ...
    def close(self) -> None: ...


class ModelClient:
    """Talks to one model server over a connected stream socket.

    ``label`` names the server in every error (image and container, or module);
    ``post_mortem`` explains a dead server (exit code, OOM kill, last log lines);
    ``kill`` stops a server that ran past its budget.
    """

    def __init__(
        self,
        sock: Stream,
        label: str,
        post_mortem: Callable[[], str],
        kill: Callable[[], None],
        budget: CallBudget | None = None,
    ) -> None:
        self.sock = sock
        self.label = label
        self.post_mortem = post_mortem
        self.kill = kill
        self.budget = budget or CallBudget()
        self._deadline_reader = _DeadlineReader(sock)
        self.reader = cast(BinaryIO, io.BufferedReader(self._deadline_reader, 1 << 20))
        self.writer = cast(BinaryIO, _SendAll(sock))
        self.hello: Hello | None = None
        self.usage = Usage()
        self._next_id = 0

    # -- lifecycle -----------------------------------------------------------------
    def wait_hello(self, timeout: float) -> Hello:
        """Read the server's hello; a load failure arrives as an error frame instead."""
        header, _ = self._read(timeout, "loading the model", lambda h: _no_arrays(h, self.label))
        if header.get("op") == "error":
            error = ErrorReply.model_validate(header)
            raise ModelError(
                f"{self.label} could not load its model: {error.message}",
                error.kind,
                error.traceback,
            )
        try:
            self.hello = Hello.model_validate(header)
        except ValidationError as e:
            first = e.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise ModelError(
                f"{self.label} sent an invalid hello: field '{field}': {first['msg']}",
                "bad_request",
            ) from None
        self.usage.update(header)
        return self.hello

    def shutdown(self, timeout: float = 5.0) -> None:
        """Ask the server to exit; a server that is already gone is fine."""
        try:
            self._send({"op": "shutdown", "id": self._take_id()}, {})
            self._read(timeout, "shutting down", lambda h: _no_arrays(h, self.label))
        except (ModelError, OSError):
            pass

    def close(self) -> None:
        for stream in (self.reader, self.writer, self.sock):
            with contextlib.suppress(OSError):
                stream.close()

    # -- calls ---------------------------------------------------------------------
    def scene(self, audio: np.ndarray, context: str = "") -> np.ndarray:
        """Scene embeddings, shape (n_sounds, scene_embedding_size), float32."""
        hello = self._require_hello()
        n = audio.shape[0]
        size = hello.scene_embedding_size

        def check(header: dict[str, Any]) -> None:
            self._expect(header, "scene", {"embeddings": ("<f4", (n, size))}, context)

        _, arrays = self._call("scene", audio, check, context)
        return arrays["embeddings"]

    def timestamps(self, audio: np.ndarray, context: str = "") -> tuple[np.ndarray, np.ndarray]:
        """Timestamp embeddings (n, T, D) float32 and their times in ms (n, T) float64."""
        hello = self._require_hello()
        n, n_samples = audio.shape
        size = hello.timestamp_embedding_size
        # A frame per millisecond of audio is already absurd: bound T by it.
        max_frames = int(n_samples * 1000 / hello.sample_rate) + 2

        def check(header: dict[str, Any]) -> None:
            specs = {s.get("name"): s for s in header.get("arrays", [])}
            frames = specs.get("embeddings", {}).get("shape", [None, None])[1:2]
            t = frames[0] if frames and isinstance(frames[0], int) else -1
            if not 0 <= t <= max_frames:
                t = -1  # reported by _expect as a shape mismatch
            expected = {"embeddings": ("<f4", (n, t, size)), "timestamps": ("<f8", (n, t))}
            self._expect(header, "timestamps", expected, context)

        _, arrays = self._call("timestamps", audio, check, context)
        return arrays["embeddings"], arrays["timestamps"]

    # -- plumbing ------------------------------------------------------------------
    def _require_hello(self) -> Hello:
        if self.hello is None:
            raise RuntimeError("wait_hello() must succeed before any call")
        return self.hello

    def _take_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _call(
        self,
        op: str,
        audio: np.ndarray,
        check: Callable[[dict[str, Any]], None],
        context: str,
    ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        hello = self._require_hello()
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        timeout = self.budget.for_audio(audio.size, hello.sample_rate)
        request_id = self._take_id()
        self._send({"op": op, "id": request_id}, {"audio": audio}, context)
        header, arrays = self._read(timeout, context or op, check)
        if header.get("id") != request_id:
            raise ModelError(
                f"{self.label} answered request {header.get('id')} to request {request_id}"
            )
        self.usage.update(header)
        return header, arrays

    def _send(
        self, header: dict[str, Any], arrays: dict[str, np.ndarray], context: str = ""
    ) -> None:
        try:
            self.sock.settimeout(None)
            for chunk in wire.encode(header, arrays):
                self.writer.write(chunk)
        except OSError:
            raise self._died(context) from None

    def _read(
        self, timeout: float, doing: str, check: Callable[[dict[str, Any]], None]
    ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        # One deadline for the whole reply: a server trickling bytes cannot stretch it.
        self._deadline_reader.deadline = time.monotonic() + timeout
        started = time.monotonic()
        try:
            header = wire.read_header(self.reader)
            if header.get("op") == "error":
                _no_arrays(header, self.label)
                error = ErrorReply.model_validate(header)
                if error.kind == "load_error":
                    return header, {}
                where = f" ({doing})" if doing else ""
                raise ModelError(
                    f"{self.label} failed{where}: [{error.kind}] {error.message}",
                    error.kind,
                    error.traceback,
                )
            try:
                check(header)
            except ModelError:
                self.kill()  # its arrays are still on the stream: the server cannot be reused
                raise
            return header, wire.read_arrays(self.reader, header)
        except TimeoutError:
            self.kill()
            raise ModelTimeout(
                f"{self.label} did not answer within {timeout:.0f} s ({doing}); it was stopped",
                "timeout",
            ) from None
        except wire.PeerClosed:
            raise self._died(doing) from None
        except wire.ProtocolError as e:
            self.kill()
            raise ModelError(
                f"{self.label} broke the contract ({doing}): {e}", "bad_request"
            ) from None
        except ValidationError as e:
            self.kill()
            raise ModelError(
                f"{self.label} sent a malformed error frame: {e}", "bad_request"
            ) from None
        except OSError as e:
            if time.monotonic() - started >= timeout:
                self.kill()
            raise self._died(doing, str(e)) from None

    def _died(self, doing: str, extra: str = "") -> ModelDied:
        where = f" while {doing}" if doing else ""
        detail = self.post_mortem() or extra
        return ModelDied(f"{self.label} died{where}: {detail or 'connection closed'}", "died")

    def _expect(
        self,
        header: dict[str, Any],
        op: str,
        expected: dict[str, tuple[str, tuple[int, ...]]],
        context: str,
    ) -> None:
        """Reject a reply whose arrays are not exactly the ones asked for."""
        where = f" ({context})" if context else ""
        if header.get("op") != op:
            raise wire.ProtocolError(f"expected a {op!r} reply, got {header.get('op')!r}")
        got = {s["name"]: (s["dtype"], tuple(s["shape"])) for s in header.get("arrays", [])}
        if set(got) != set(expected):
            raise wire.ProtocolError(f"reply arrays {sorted(got)} are not {sorted(expected)}")
        for name, (dtype, shape) in expected.items():
            if got[name] != (dtype, shape):
                raise ModelError(
                    f"{self.label} returned {name} of dtype {got[name][0]} and shape "
                    f"{list(got[name][1])}{where}, expected {dtype} and {_shape_text(shape)}"
                    " (the sizes it announced in its hello)",
                    "bad_request",
                )


class _SendAll(io.RawIOBase):
    """Unbuffered writes that send every byte (a partial socket write is not an option)."""

    def __init__(self, sock: Stream) -> None:
        self.sock = sock

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.sock.sendall(data)
        return memoryview(data).nbytes


class _DeadlineReader(io.RawIOBase):
    """Socket reads that share one deadline (socket timeouts alone are per recv)."""

    def __init__(self, sock: Stream) -> None:
        self.sock = sock
        self.deadline: float | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.deadline is not None:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("reply deadline passed")
            self.sock.settimeout(remaining)
        return self.sock.recv_into(buffer)


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join("T" if d == -1 else str(d) for d in shape) + "]"


def _no_arrays(header: dict[str, Any], label: str) -> None:
    if header.get("arrays"):
        raise wire.ProtocolError(f"{label}: a {header.get('op')!r} frame must carry no arrays")
