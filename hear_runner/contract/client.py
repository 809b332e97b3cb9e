"""The host side of the contract: calls with timeouts, replies checked before they are read.

Every reply header is checked against what was asked before a byte of its
arrays is allocated: a server cannot make the host allocate an array it did
not ask for, and an embedding of the wrong size is an error naming the model.
However a server misbehaves (a malformed frame, a lie about sizes, a hang, a
trickle, an early close), a call ends within its budget with one ModelError
(or subclass) whose message is a single line naming the server's label.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Callable
from typing import Any, BinaryIO, Protocol, cast

import numpy as np
from pydantic import ValidationError

from hear_runner.contract import wire
from hear_runner.contract.messages import ErrorReply, Hello, Usage
from hear_runner.errors import HearError, ModelDied, ModelError, ModelTimeout

#: Default cap on the array bytes of any one reply (``HEAR_MAX_REPLY_BYTES`` overrides it):
#: the same 4 GiB as the server's cap on a request. Under it, a reply must still be exactly
#: the size its request implies (for timestamps, at most one frame per ms of audio).
DEFAULT_MAX_REPLY_BYTES = 4 << 30

#: Longest text from a server (an error message, a contract violation) put in an error.
MAX_PEER_TEXT = 300


def max_reply_bytes_from_env() -> int:
    """``HEAR_MAX_REPLY_BYTES`` if set, else the default."""
    value = os.environ.get("HEAR_MAX_REPLY_BYTES", "")
    if not value:
        return DEFAULT_MAX_REPLY_BYTES
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit <= 0:
        raise HearError(f"HEAR_MAX_REPLY_BYTES={value!r} is not a positive number of bytes")
    return limit


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
        max_reply_bytes: int | None = None,
    ) -> None:
        self.sock = sock
        self.label = label
        self.post_mortem = post_mortem
        self.kill = kill
        self.budget = budget or CallBudget()
        self.max_reply_bytes = max_reply_bytes or max_reply_bytes_from_env()
        self._deadline_reader = _DeadlineReader(sock)
        self.reader = cast(BinaryIO, io.BufferedReader(self._deadline_reader, 1 << 20))
        self.writer = cast(BinaryIO, _SendAll(sock))
        self.hello: Hello | None = None
        self.usage = Usage()
        self._next_id = 0

    # -- lifecycle -----------------------------------------------------------------
    def wait_hello(self, timeout: float) -> Hello:
        """Read the server's hello; a load failure arrives as an error frame instead."""
        header, _ = self._read(timeout, "loading the model", _no_arrays, None)
        if header.get("op") == "error":  # a load_error, already validated by _read
            error = ErrorReply.model_validate(header)
            raise ModelError(
                f"{self.label} could not load its model: {_line(error.message)}",
                error.kind,
                error.traceback,
            )
        try:
            self.hello = Hello.model_validate(header)
        except ValidationError as e:
            self.kill()
            raise ModelError(
                f"{self.label} sent an invalid hello: {_first_error(e)}", "bad_request"
            ) from None
        self.usage.update(header)
        return self.hello

    def shutdown(self, timeout: float = 5.0) -> None:
        """Ask the server to exit; a server that is already gone is fine."""
        try:
            request_id = self._take_id()
            self._send({"op": "shutdown", "id": request_id}, {})
            self._read(timeout, "shutting down", _no_arrays, request_id)
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
            # The specs passed wire.check_array_specs: dicts with unique names, int shapes.
            specs = {s["name"]: s for s in header.get("arrays", [])}
            shape = specs.get("embeddings", {}).get("shape", [])
            t = shape[1] if len(shape) == 3 and shape[1] <= max_frames else -1
            # t == -1 is reported by _expect as a shape mismatch
            expected = {"embeddings": ("<f4", (n, t, size)), "timestamps": ("<f8", (n, t))}
            self._expect(header, "timestamps", expected, context)

        _, arrays = self._call("timestamps", audio, check, context)
        if not np.isfinite(arrays["timestamps"]).all():
            where = f" ({context})" if context else ""
            raise ModelError(f"{self.label} returned NaN or Inf timestamps{where}")
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
        header, arrays = self._read(timeout, context or op, check, request_id)
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
        self,
        timeout: float,
        doing: str,
        check: Callable[[dict[str, Any]], None],
        request_id: int | None,
    ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Read the answer to ``request_id`` (None: the hello), checked before its arrays.

        Whatever the server sends, this returns the checked reply or raises one ModelError
        (a subclass for a timeout or a dead server) with a one-line message.
        """
        # One deadline for the whole reply: a server trickling bytes cannot stretch it.
        self._deadline_reader.deadline = time.monotonic() + timeout
        started = time.monotonic()
        try:
            header = wire.read_header(self.reader)
            if header.get("op") == "error":
                _no_arrays(header)
                error = ErrorReply.model_validate(header)
                if error.id is not None and error.id != request_id:
                    raise wire.ProtocolError(
                        f"an error for request {error.id} answered request {request_id}"
                    )
                if error.kind == "load_error" and request_id is None:
                    return header, {}
                where = f" ({doing})" if doing else ""
                raise ModelError(
                    f"{self.label} failed{where}: [{error.kind}] {_line(error.message)}",
                    error.kind,
                    error.traceback,
                )
            reply_id = header.get("id")
            if request_id is not None and (type(reply_id) is not int or reply_id != request_id):
                raise wire.ProtocolError(
                    f"it answered request {wire.shorten(reply_id)} to request {request_id}"
                )
            try:
                check(header)
            except ModelError:
                self.kill()  # its arrays are still on the stream: the server cannot be reused
                raise
            try:
                return header, wire.read_arrays(self.reader, header)
            except MemoryError:
                self.kill()
                total = sum(spec["nbytes"] for spec in header["arrays"])
                raise ModelError(
                    f"the host cannot hold {total} bytes of {self.label}'s reply ({doing}): "
                    "out of memory; lower HEAR_MAX_REPLY_BYTES or the batch size",
                    "bad_request",
                ) from None
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
                f"{self.label} broke the contract ({doing}): {_line(str(e))}", "bad_request"
            ) from None
        except ValidationError as e:
            self.kill()
            raise ModelError(
                f"{self.label} sent a malformed error frame ({doing}): {_first_error(e)}",
                "bad_request",
            ) from None
        except OSError as e:
            if time.monotonic() - started >= timeout:
                self.kill()
            raise self._died(doing, _line(str(e))) from None

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
        """Reject a reply whose arrays are not exactly the ones asked for, or too large."""
        where = f" ({context})" if context else ""
        if header.get("op") != op:
            raise wire.ProtocolError(
                f"expected a {op!r} reply, got {wire.shorten(header.get('op'))}"
            )
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
        total = sum(spec["nbytes"] for spec in header["arrays"])
        if total > self.max_reply_bytes:
            raise ModelError(
                f"{self.label} sent a reply of {total} bytes{where}, more than the "
                f"{self.max_reply_bytes} allowed for one reply (HEAR_MAX_REPLY_BYTES)",
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


def _no_arrays(header: dict[str, Any]) -> None:
    if header.get("arrays"):
        raise wire.ProtocolError(f"a {wire.shorten(header.get('op'))} frame must carry no arrays")


def _line(text: str, limit: int = MAX_PEER_TEXT) -> str:
    """A server's text as part of a one-line message: printable, on one line, cut short."""
    text = "".join(c if c.isprintable() else " " for c in text[: limit + 1]).strip()
    return text if len(text) <= limit else text[:limit] + "..."


def _first_error(e: ValidationError) -> str:
    """A pydantic error as one line: the first failing field and why."""
    first = e.errors()[0]
    field = ".".join(str(p) for p in first["loc"])
    return _line(f"field '{field}': {first['msg']}")
