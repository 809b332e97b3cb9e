"""Hostile peers for the model contract: a seeded generator of malformed frames, and drivers.

Client side: a thread plays a hostile model server to a real ``ModelClient`` over
``socket.socketpair()``: malformed or lying hellos and replies, truncated or trickled
frames, early closes, hangs. Every case must end within its deadline either with the
arrays that were asked for or with exactly one ``HearError`` whose message is one line
naming the model's label; any other exception, a second line or an overrun is a failure.

Server side: the real ``serve()`` (with a stand-in model) reads malformed requests. It must
answer ``bad_request`` and keep serving while the stream is in step, or answer and stop with
a ProtocolError when it cannot be (``main`` logs one line, exit code 2); only a closed
stream may end it otherwise. Every frame it writes must be a valid frame.

Each case is generated from ``random.Random(seed * 1_000_003 + index)``, so one failing case
reruns alone with ``--seed S --first INDEX --cases 1``. By hand::

    python tests/fuzz_contract.py client --cases 1000000      # prints a JSON summary
    python tests/fuzz_contract.py server --cases 100000
    python tests/fuzz_contract.py hostile                     # finding 6, under a 5 GB limit

Options: ``--seed``, ``--first``, ``--as-limit-gb`` (RLIMIT_AS for this process).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import queue
import random
import resource
import socket
import struct
import sys
import threading
import time
import traceback
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

LABEL = "fuzz-model (image hear/fuzz:1)"
RATE, SCENE_D, FRAME_D = 16000, 4, 3
N, SAMPLES = 2, 160  # each request: audio (2, 160) float32
MAX_FRAMES = int(SAMPLES * 1000 / RATE) + 2  # what the client allows for T
T = 5  # frames in a valid timestamps reply

HELLO: dict[str, Any] = {
    "v": 1,
    "op": "hello",
    "model": "fuzz",
    "sample_rate": RATE,
    "scene_embedding_size": SCENE_D,
    "timestamp_embedding_size": FRAME_D,
    "device": "cpu",
    "audio_format": "numpy",
    "load_seconds": 0.5,
    "versions": {"python": "3.11", "numpy": "2.0"},
    "peak_rss_bytes": 1 << 20,
}

#: Budgets: a normal case never waits (its peer sends everything, then closes or stays
#: open with the whole reply sent); a hanging or trickling case waits SHORT seconds.
NORMAL_SECONDS, SHORT_SECONDS = 5.0, 0.15
#: How far past its budget a case may end (a loaded 2-core machine schedules late).
SLACK_SECONDS = 2.0


# -- frames ------------------------------------------------------------------------------
def frame_bytes(header: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> bytes:
    from hear_runner.contract import wire

    return b"".join(bytes(c) for c in wire.encode(header, arrays))


def raw_frame(text: bytes, body: bytes = b"", length: int | None = None) -> bytes:
    return struct.pack("<I", len(text) if length is None else length) + text + body


_RAW = "\x00raw{}\x00"


def render(header: Any, raws: list[str]) -> bytes:
    """JSON text of ``header`` with each placeholder ``_RAW.format(i)`` replaced by raws[i]."""
    text = json.dumps(header, separators=(",", ":"))
    for i, raw in enumerate(raws):
        text = text.replace(json.dumps(_RAW.format(i)), raw)
    return text.encode("utf-8", "surrogatepass")


def scene_reply(request_id: int = 1) -> tuple[dict[str, Any], bytes]:
    embeddings = np.arange(N * SCENE_D, dtype=np.float32).reshape(N, SCENE_D)
    return _reply("scene", request_id, {"embeddings": embeddings})


def timestamps_reply(request_id: int = 1) -> tuple[dict[str, Any], bytes]:
    embeddings = np.ones((N, T, FRAME_D), np.float32)
    times = np.tile(np.arange(T, dtype=np.float64) * 25.0, (N, 1))
    return _reply("timestamps", request_id, {"embeddings": embeddings, "timestamps": times})


def _reply(op: str, request_id: int, arrays: dict[str, np.ndarray]) -> tuple[dict, bytes]:
    data = frame_bytes({"op": op, "id": request_id, "seconds": 0.01, "peak_rss_bytes": 1}, arrays)
    (length,) = struct.unpack("<I", data[:4])
    return json.loads(data[4 : 4 + length]), data[4 + length :]


# -- hostile values ----------------------------------------------------------------------
HOSTILE_VALUES: list[Any] = [
    -1, 0, 1, 2, 3, 4, 5, 12, 13, 999, 384_001, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**34,
    2**62, 2**63, 2**64, 10**30, -(2**63), True, False, 1.0, 2.5, -0.0, 16000.0, 1e300,
    "4", "", "16000", "a" * 100_000, "line one\nline two\r\u2028\x1b[31mred\x00", "\udc80",
    None, [], [4], [[2, 4]], {}, {"a": 1}, "NaN", "<f4", "embeddings",
]  # fmt: skip

#: JSON text spliced in raw: not JSON at all, or JSON Python parses into trouble.
RAW_TOKENS = [
    "NaN", "Infinity", "-Infinity", "1e400", "-1e999", "9" * 5000, "1" + "0" * 4299,
    "[" * 100_000 + "]" * 100_000, "[" * 40 + "]" * 40, '{"a":' * 50 + "1" + "}" * 50,
    "[" * 999 + "]" * 999, "01", "1.", "+1", "0x10", "true", "null", '"\\ud800"',
]  # fmt: skip


def hostile(rng: random.Random, raws: list[str]) -> Any:
    """A hostile value, or a placeholder for a raw token (appended to ``raws``)."""
    if rng.random() < 0.3:
        raws.append(rng.choice(RAW_TOKENS))
        return _RAW.format(len(raws) - 1)
    return rng.choice(HOSTILE_VALUES)


# -- cases -------------------------------------------------------------------------------
@dataclass
class Case:
    """What the hostile server sends: a hello, then (after the request) a reply."""

    kind: str
    hello: bytes
    op: str  # the call the client makes: scene or timestamps
    reply: bytes = b""
    hang: bool = False  # stay open after sending (else shut the write side)
    trickle: float = 0.0  # seconds between chunks
    chunk: int = 1
    budget: float = NORMAL_SECONDS
    drain: bool = False  # read the request before replying (needed when it is large)


def client_case(rng: random.Random) -> Case:
    op = rng.choice(("scene", "timestamps"))
    header, body = scene_reply() if op == "scene" else timestamps_reply()
    hello = frame_bytes(HELLO)
    kind = rng.choices(list(_CLIENT_KINDS), weights=[w for w, _ in _CLIENT_KINDS.values()], k=1)[0]
    case = Case(kind, hello, op)
    _CLIENT_KINDS[kind][1](rng, case, header, body)
    return case


def _valid(header: dict, body: bytes) -> bytes:
    return raw_frame(json.dumps(header).encode(), body)


def k_valid(rng: random.Random, case: Case, header: dict, body: bytes) -> None:
    case.reply = _valid(header, body)
    if rng.random() < 0.3:  # garbage after a complete reply is never read
        case.reply += rng.randbytes(rng.randint(1, 64))


def k_truncate(rng: random.Random, case: Case, header: dict, body: bytes) -> None:
    full = _valid(header, body)
    case.reply = full[: rng.randrange(len(full))]


def k_length(rng: random.Random, case: Case, header: dict, body: bytes) -> None:
    length = rng.choice([0, 1, 2, (1 << 20) + 1, 1 << 20, 2**31, 2**32 - 1, 2**32 - 2])
    text = rng.randbytes(rng.randint(0, 256)) if rng.random() < 0.5 else json.dumps(header).encode()
    case.reply = raw_frame(text, body, length)


def k_spec(rng: random.Random, case: Case, header: dict, body: bytes) -> None:
    """Lie in one array spec: a hostile value, a missing key, or a spec that is not a dict."""
    raws: list[str] = []
    specs = header["arrays"]
    spec = rng.choice(specs)
    action = rng.random()
    if action < 0.6:
        spec[rng.choice(("name", "dtype", "shape", "nbytes"))] = hostile(rng, raws)
    elif action < 0.7:
        del spec[rng.choice(("name", "dtype", "shape", "nbytes"))]
    elif action < 0.8:
        spec["shape"] = [hostile(rng, raws) if rng.random() < 0.5 else d for d in spec["shape"]]
    elif action < 0.9:
        specs[specs.index(spec)] = hostile(rng, raws)
    else:
        header["arrays"] = hostile(rng, raws)
    case.reply = raw_frame(render(header, raws), _body(rng, body))


def k_lie(rng: random.Random, case: Case, header: dict, body: bytes) -> None:
    """Self-consistent lies about sizes: huge or wrong shapes, dtypes, byte counts."""
    spec = rng.choice(header["arrays"])
    dims = [rng.choice([0, 1, N, SCENE_D, FRAME_D, T, MAX_FRAMES, MAX_FRAMES + 1, 2**20,
                        2**34, 2**40]) for _ in range(rng.randint(0, 4))]  # fmt: skip
    if rng.random() < 0.5:
        spec["shape"] = dims
    if rng.random() < 0.3:
        spec["dtype"] = rng.choice(["<f4", "<f8", "<i8", "<i4", "|u1", ">f4", "<f2", "|O", "<c8"])
    itemsize = {"<f4": 4, "<f8": 8, "<i8": 8, "<i4": 4, "|u1": 1}.get(spec["dtype"], 4)
    if rng.random() < 0.8:
        spec["nbytes"] = math.prod(spec["shape"]) * itemsize + rng.choice([0, 0, 0, 1, -1])
    case.reply = raw_frame(json.dumps(header).encode(), _body(rng, body))


def k_names(rng: random.Random, case: Case, header: dict, body: bytes) -> None:
    """Duplicate, extra, missing or renamed arrays."""
    specs = header["arrays"]
    action = rng.randrange(4)
    if action == 0:  # a duplicate, maybe declaring something huge first
        twin = dict(rng.choice(specs))
        if rng.random() < 0.5:
            twin.update(shape=[N, 2**30], nbytes=N * 2**30 * 4)
        specs.insert(0, twin)
    elif action == 1:
        specs.append({"name": rng.choice(["extra", "audio", "timestamps"]), "dtype": "|u1",
                      "shape": [3], "nbytes": 3})  # fmt: skip
        body += b"xyz"
    elif action == 2:
        specs.pop(rng.randrange(len(specs)))
    else:
        rng.choice(specs)["name"] = rng.choice(["Embeddings", "audio", "x" * 65, "é"])
    case.reply = raw_frame(json.dumps(header).encode(), _body(rng, body))


def k_fields(rng: random.Random, case: Case, header: dict, body: bytes) -> None:
    """Hostile top-level fields: wrong id, version, op, seconds; bool/float/str for ints."""
    raws: list[str] = []
    name = rng.choice(["id", "id", "v", "op", "seconds", "peak_rss_bytes", "peak_gpu_bytes",
                       "extra"])  # fmt: skip
    if rng.random() < 0.15:
        header.pop(name, None)
    elif name == "id" and rng.random() < 0.5:
        header["id"] = rng.choice([0, 2, -1, None, "1", 1.0, True, [1], 2**64, {"id": 1}])
    else:
        header[name] = hostile(rng, raws)
    case.reply = raw_frame(render(header, raws), body)


def k_nonjson(rng: random.Random, case: Case, header: dict, body: bytes) -> None:
    choice = rng.randrange(5)
    if choice == 0:
        text = rng.randbytes(rng.randint(1, 200))
    elif choice == 1:
        text = b"\xff\xfe" + json.dumps(header).encode()
    elif choice == 2:
        full = json.dumps(header).encode()
        text = full[: rng.randrange(len(full))]
    elif choice == 3:
        text = rng.choice(
            [b"[]", b'"scene"', b"1", b"null", b"[" + json.dumps(header).encode() + b"]"]
        )
    else:
        text = json.dumps(header).encode() + b" trailing"
    case.reply = raw_frame(text, body)


def k_deep(rng: random.Random, case: Case, header: dict, body: bytes) -> None:
    depth = rng.choice([33, 100, 990, 5000, 100_000])
    opener, closer = rng.choice([("[", "]"), ('{"a":', "}")])
    nest = opener * depth + "1" + closer * depth
    where = rng.choice(["top", "field", "spec"])
    if where == "top":
        case.reply = raw_frame(nest.encode(), body)
        return
    raws = [nest]
    target = header if where == "field" else rng.choice(header["arrays"])
    target[rng.choice(["deep", "id", "shape", "seconds"])] = _RAW.format(0)
    case.reply = raw_frame(render(header, raws), body)


def k_nonfinite_arrays(rng: random.Random, case: Case, header: dict, body: bytes) -> None:
    """NaN and Inf in the array bodies: the client returns embeddings, refuses timestamps."""
    values = np.frombuffer(bytearray(body[: N * T * FRAME_D * 4 if case.op == "timestamps" else None]),
                           np.float32).copy()  # fmt: skip
    for _ in range(rng.randint(1, 3)):
        values[rng.randrange(len(values))] = rng.choice([np.nan, np.inf, -np.inf])
    rest = bytearray(body[values.nbytes :])
    if rest and rng.random() < 0.7:
        times = np.frombuffer(rest, np.float64).copy()
        times[rng.randrange(len(times))] = rng.choice([np.nan, np.inf, -np.inf])
        rest = bytearray(times.tobytes())
    case.reply = _valid(header, values.tobytes() + bytes(rest))


def k_error_frame(rng: random.Random, case: Case, header: dict, body: bytes) -> None:
    raws: list[str] = []
    error: dict[str, Any] = {"v": 1, "op": "error", "id": 1,
                             "kind": rng.choice(["bad_request", "model_error", "out_of_memory",
                                                 "load_error", "other"]),
                             "message": rng.choice(["boom", "two\nlines", "x" * 100_000,
                                                    "\x1b[2J\u2028\udc80", ""]),
                             "traceback": "Traceback (most recent call last):\n  ...\n"}  # fmt: skip
    if rng.random() < 0.4:
        error[rng.choice(["id", "kind", "message", "traceback", "arrays"])] = hostile(rng, raws)
    elif rng.random() < 0.2:
        del error[rng.choice(["kind", "message", "id"])]
    case.reply = raw_frame(render(error, raws), _body(rng, b""))


def k_hello_reply(rng: random.Random, case: Case, header: dict, body: bytes) -> None:
    case.reply = frame_bytes(HELLO) + _valid(header, body)


def k_bitflip(rng: random.Random, case: Case, header: dict, body: bytes) -> None:
    data = bytearray(_valid(header, body))
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(data))
        action = rng.randrange(3)
        if action == 0:
            data[at] ^= 1 << rng.randrange(8)
        elif action == 1:
            del data[at]
        else:
            data.insert(at, rng.randrange(256))
    case.reply = bytes(data)


def k_hang(rng: random.Random, case: Case, header: dict, body: bytes) -> None:
    """Part of a reply (or none, or all of it for a hello), then silence with the stream open."""
    full = _valid(header, body)
    case.reply = full[: rng.randrange(len(full))]
    case.hang, case.budget = True, SHORT_SECONDS
    if rng.random() < 0.2:
        case.hello = case.hello[: rng.randrange(len(case.hello))]


def k_trickle(rng: random.Random, case: Case, header: dict, body: bytes) -> None:
    """Valid or broken bytes a few at a time: the deadline must hold for the whole reply."""
    full = _valid(header, body)
    case.reply = full if rng.random() < 0.5 else full[: rng.randrange(len(full))]
    case.hang, case.budget = rng.random() < 0.5, SHORT_SECONDS
    case.trickle, case.chunk = rng.choice([0.002, 0.01, 0.03]), rng.randint(1, 16)


def k_close(rng: random.Random, case: Case, header: dict, body: bytes) -> None:
    """The server closes early: before or inside its hello, or before its reply."""
    case.hello = case.hello[: rng.randrange(len(case.hello) + 1)]
    case.reply = b""


def k_hello(rng: random.Random, case: Case, header: dict, body: bytes) -> None:
    """A hostile hello: a field out of range or of the wrong type, missing, or a broken frame."""
    raws: list[str] = []
    hello = json.loads(json.dumps(HELLO))
    name = rng.choice(["sample_rate", "sample_rate", "scene_embedding_size",
                       "timestamp_embedding_size", "model", "device", "audio_format",
                       "load_seconds", "versions", "device_name", "peak_rss_bytes", "v", "op",
                       "extra"])  # fmt: skip
    action = rng.random()
    if action < 0.1:
        hello.pop(name, None)
    elif action < 0.4 and name in (
        "sample_rate",
        "scene_embedding_size",
        "timestamp_embedding_size",
    ):
        hello[name] = rng.choice([2e9, 2_000_000_000, 2**34, 2**16, 2**16 + 1, 0, -1, 999, 1000,
                                  48_000, 384_000, 384_001, 16000.0, 16000.5, "16000", True])  # fmt: skip
    elif action < 0.5 and name == "versions":
        hello["versions"] = rng.choice([{str(i): "1" for i in range(100)}, {"a": 1},
                                        {"x" * 300: "1"}, ["numpy"], {"a": {"b": "c"}}])  # fmt: skip
    else:
        hello[name] = hostile(rng, raws)
    text = render(hello, raws)
    case.hello = raw_frame(text, b"")
    if rng.random() < 0.1:  # a hello with arrays, or an error frame in its place
        case.hello = rng.choice([
            frame_bytes(HELLO, {"embeddings": np.zeros(3, np.float32)}),
            frame_bytes({"op": "error", "kind": "load_error", "message": "no\nweights",
                         "traceback": "tb"}),
            frame_bytes({"op": "error", "kind": "model_error", "message": "m", "traceback": ""}),
            frame_bytes({"op": "error", "kind": 5}),
        ])  # fmt: skip
    case.reply = _valid(header, body)


def _body(rng: random.Random, body: bytes) -> bytes:
    """The body as it was, cut, grown, or empty."""
    choice = rng.random()
    if choice < 0.6:
        return body
    if choice < 0.8:
        return body[: rng.randrange(len(body) + 1)]
    if choice < 0.9:
        return body + rng.randbytes(rng.randint(1, 4096))
    return b""


#: kind -> (weight, generator). Hang and trickle cases wait for their short budget: few.
_CLIENT_KINDS = {
    "valid": (3, k_valid),
    "truncate": (8, k_truncate),
    "length": (5, k_length),
    "spec": (16, k_spec),
    "lie": (12, k_lie),
    "names": (8, k_names),
    "fields": (10, k_fields),
    "nonjson": (5, k_nonjson),
    "deep": (3, k_deep),
    "nonfinite_arrays": (3, k_nonfinite_arrays),
    "error_frame": (8, k_error_frame),
    "hello_as_reply": (2, k_hello_reply),
    "bitflip": (8, k_bitflip),
    "close": (3, k_close),
    "hello": (10, k_hello),
    "hang": (0.15, k_hang),
    "trickle": (0.15, k_trickle),
}


# -- client driver -----------------------------------------------------------------------
class HostileServer:
    """One thread that plays each case's server side, one case after another."""

    def __init__(self) -> None:
        self.jobs: queue.Queue[tuple[socket.socket, bytes, Case, threading.Event] | None] = (
            queue.Queue()
        )
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def play(self, peer: socket.socket, first: bytes, case: Case, done: threading.Event) -> None:
        self.jobs.put((peer, first, case, done))

    def stop(self) -> None:
        self.jobs.put(None)
        self.thread.join(10)

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            peer, first, case, done = job
            try:
                self._send(peer, first, case)
                if case.drain:
                    from hear_runner.contract import wire

                    with contextlib.suppress(wire.ProtocolError):
                        wire.read_frame(peer.makefile("rb"))
                if case.reply:
                    self._send(peer, case.reply, case)
                if not case.hang:
                    peer.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            done.wait(30)
            peer.close()

    @staticmethod
    def _send(peer: socket.socket, data: bytes, case: Case) -> None:
        if not case.trickle:
            peer.sendall(data)
            return
        for i in range(0, len(data), case.chunk):
            peer.sendall(data[i : i + case.chunk])
            time.sleep(case.trickle)


@dataclass
class Summary:
    side: str
    cases: int = 0
    seconds: float = 0.0
    slowest: float = 0.0
    outcomes: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    problems: Counter = field(default_factory=Counter)

    def fail(self, index: int, case: Any, problem: str) -> None:
        self.problems[f"{case.kind}: {problem.split(':')[0][:60]}"] += 1
        if len(self.failures) < 20:
            self.failures.append(f"case {index} ({case.kind}): {problem}")

    def as_dict(self) -> dict[str, Any]:
        peak_kib = peak_rss_kib()
        return {
            "side": self.side, "cases": self.cases, "seconds": round(self.seconds, 2),
            "slowest_case_seconds": round(self.slowest, 3), "peak_rss_mib": peak_kib // 1024,
            "n_failures": self.outcomes["FAIL"], "problems": dict(self.problems.most_common()),
            "failures": self.failures,
            "outcomes": dict(self.outcomes.most_common()), "kinds": dict(self.kinds.most_common()),
        }  # fmt: skip


def peak_rss_kib() -> int:
    """This process's peak resident memory since it was started.

    ``/proc/self/status``'s VmHWM where there is one: ``ru_maxrss`` carries over the
    parent's peak through fork and exec (a pytest process that has loaded torch).
    """
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def check_error(e: BaseException) -> str | None:
    """The problem with an error a case ended in, or None if it is one good line."""
    from hear_runner.errors import HearError

    if not isinstance(e, HearError):
        text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        return f"{type(e).__name__} escaped: {text[-1500:]}"
    message = str(e)
    if len(message.splitlines()) != 1 or not message.strip():
        return f"{type(e).__name__} message is not one line: {message[:300]!r}"
    if LABEL not in message:
        return f"{type(e).__name__} message does not name the model: {message[:300]!r}"
    if len(message) > 1000:
        return f"{type(e).__name__} message is {len(message)} characters long"
    try:
        message.encode("utf-8")
    except UnicodeEncodeError:
        return f"{type(e).__name__} message cannot be printed: {message[:300]!r}"
    return None


def check_result(client: Any, op: str, result: Any) -> str | None:
    """The problem with what a call returned, or None if it is what was asked for."""
    hello = client.hello
    if op == "scene":
        if result.shape != (N, hello.scene_embedding_size) or result.dtype != np.float32:
            return f"scene returned {result.dtype} {result.shape}"
        return None
    embeddings, times = result
    frames = times.shape[1] if times.ndim == 2 else -1
    if (
        embeddings.shape != (N, frames, hello.timestamp_embedding_size)
        or times.shape != (N, frames)
        or not 0 <= frames <= MAX_FRAMES
        or embeddings.dtype != np.float32
        or times.dtype != np.float64
        or not np.isfinite(times).all()
    ):
        return f"timestamps returned {embeddings.dtype} {embeddings.shape}, {times.dtype} {times.shape}"
    return None


def run_client(cases: int, seed: int, first: int = 0) -> Summary:
    from hear_runner.contract.client import CallBudget, ModelClient

    summary = Summary("client")
    server = HostileServer()
    audio = np.zeros((N, SAMPLES), np.float32)
    started = time.monotonic()
    for index in range(first, first + cases):
        case = client_case(random.Random(seed * 1_000_003 + index))
        summary.kinds[case.kind] += 1
        host, peer = socket.socketpair()
        done = threading.Event()
        server.play(peer, case.hello, case, done)
        client = ModelClient(host, LABEL, lambda: "", done.set, CallBudget(case.budget, 0.0))
        began = time.monotonic()
        try:
            client.wait_hello(case.budget)
            call = client.scene if case.op == "scene" else client.timestamps
            problem = check_result(client, case.op, call(audio, "task fuzz, batch 1/1"))
            outcome = "returned"
        except BaseException as e:  # every exception is judged: only HearError may end a case
            if isinstance(e, KeyboardInterrupt):
                raise
            problem = check_error(e)
            outcome = type(e).__name__
        finally:
            done.set()
            client.close()
        elapsed = time.monotonic() - began
        summary.slowest = max(summary.slowest, elapsed)
        if elapsed > 2 * case.budget + SLACK_SECONDS:  # hello and call each have the budget
            problem = problem or f"took {elapsed:.2f} s, budget {case.budget} s"
        summary.outcomes["FAIL" if problem else outcome] += 1
        if problem:
            summary.fail(index, case, problem)
    server.stop()
    summary.cases, summary.seconds = cases, time.monotonic() - started
    return summary


# -- server side -------------------------------------------------------------------------
class StandInModel:
    """What serve() needs of a Host: fixed small outputs, no model."""

    module_name = "stand-in"

    def hello(self) -> dict[str, Any]:
        return {k: v for k, v in HELLO.items() if k != "v"}

    def resources(self) -> dict[str, Any]:
        return {"peak_rss_bytes": 1}

    def scene(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        return {"embeddings": np.zeros((audio.shape[0], SCENE_D), np.float32)}

    def timestamps(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        n = audio.shape[0]
        return {
            "embeddings": np.zeros((n, 2, FRAME_D), np.float32),
            "timestamps": np.tile(np.array([0.0, 25.0]), (n, 1)),
        }

    def free_memory(self) -> None:
        pass


#: The server's request cap while fuzzing (its default is 4 GiB).
FUZZ_MAX_AUDIO_BYTES = 1 << 16
FOLLOW_UP_ID = 77


@dataclass
class ServerCase:
    kind: str
    request: bytes
    in_step: bool  # after this request the stream is still in step: a follow-up is answered


def _request(op: Any = "scene", request_id: Any = 1, audio: Any = "default") -> bytes:
    arrays = {"audio": np.ones((2, 8), np.float32)} if isinstance(audio, str) else audio
    return frame_bytes({"op": op, "id": request_id}, arrays)


def server_case(rng: random.Random) -> ServerCase:
    kind = rng.choices(list(_SERVER_KINDS), weights=[w for w, _ in _SERVER_KINDS.values()], k=1)[0]
    request, in_step = _SERVER_KINDS[kind][1](rng)
    return ServerCase(kind, request, in_step)


def s_valid(rng: random.Random) -> tuple[bytes, bool]:
    return _request(rng.choice(["scene", "timestamps"]), rng.choice([1, "x", None, [1], 2.5])), True


def s_op(rng: random.Random) -> tuple[bytes, bool]:
    op = rng.choice(["hello", "bye", "error", "", 5, None, [], "SCENE", {"op": "scene"}, True])
    return _request(op), True


def s_audio(rng: random.Random) -> tuple[bytes, bool]:
    """In-step requests the server must refuse (or pass to the model) and then go on."""
    audio = rng.choice([
        {},
        {"sound": np.ones((2, 8), np.float32)},
        {"audio": np.ones((2, 8), np.float64)},
        {"audio": np.ones((2, 8), np.int32)},
        {"audio": np.ones((2, 8), np.uint8)},
        {"audio": np.ones(8, np.float32)},
        {"audio": np.ones((2, 2, 2), np.float32)},
        {"audio": np.ones((), np.float32)},
        {"audio": np.ones((0, 8), np.float32)},
        {"audio": np.ones((2, 0), np.float32)},
        {"audio": np.full((2, 8), np.nan, np.float32)},
        {"audio": np.ones((2, 8), np.float32), "extra": np.ones(3, np.uint8)},
    ])  # fmt: skip
    return _request(rng.choice(["scene", "timestamps"]), 1, audio), True


def s_oversize(rng: random.Random) -> tuple[bytes, bool]:
    """Over the server's cap: refused, its bytes skipped (when sent), in step afterwards."""
    samples = FUZZ_MAX_AUDIO_BYTES // 4 + rng.randint(1, 100)
    data = _request("scene", 1, {"audio": np.zeros((1, samples), np.float32)})
    if rng.random() < 0.5:
        return data, True
    return data[: rng.randrange(len(data))], False


def s_header(rng: random.Random) -> tuple[bytes, bool]:
    """A frame the server cannot parse (or parses to a lie): it answers and stops."""
    raws: list[str] = []
    header, body = _reply("scene", 1, {"audio": np.ones((2, 8), np.float32)})
    header["op"] = "scene"
    choice = rng.randrange(6)
    if choice == 0:
        spec = header["arrays"][0]
        spec[rng.choice(["name", "dtype", "shape", "nbytes"])] = hostile(rng, raws)
    elif choice == 1:
        header[rng.choice(["v", "id", "op", "arrays"])] = hostile(rng, raws)
    elif choice == 2:
        header["arrays"].append(dict(header["arrays"][0]))
        body += body
    elif choice == 3:
        return raw_frame(rng.randbytes(rng.randint(0, 64)), body,
                         rng.choice([None, 0, 2**32 - 1, (1 << 20) + 1])), False  # fmt: skip
    elif choice == 4:
        depth = rng.choice([33, 990, 100_000])
        return raw_frame(("[" * depth + "]" * depth).encode(), body), False
    else:
        return _request()[: rng.randrange(len(_request()))], False
    # Some of these are valid after all (a hostile value that happens to fit): no claim.
    return raw_frame(render(header, raws), body), False


def s_bitflip(rng: random.Random) -> tuple[bytes, bool]:
    data = bytearray(_request(rng.choice(["scene", "timestamps"])))
    for _ in range(rng.randint(1, 3)):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return bytes(data), False


def s_shutdown(rng: random.Random) -> tuple[bytes, bool]:
    return _request("shutdown", 9, {}), False


_SERVER_KINDS = {
    "valid": (10, s_valid),
    "op": (15, s_op),
    "audio": (20, s_audio),
    "oversize": (5, s_oversize),
    "header": (35, s_header),
    "bitflip": (12, s_bitflip),
    "shutdown": (3, s_shutdown),
}


def run_server(cases: int, seed: int, first: int = 0) -> Summary:
    from hear_runner.contract import server as server_module
    from hear_runner.contract import wire

    server_module.MAX_AUDIO_BYTES = FUZZ_MAX_AUDIO_BYTES
    summary = Summary("server")
    sender = HostileServer()  # here it plays the hostile client
    collector = ThreadPoolExecutor(1)
    follow_up = _request("scene", FOLLOW_UP_ID, {"audio": np.ones((1, 8), np.float32)})
    started = time.monotonic()
    for index in range(first, first + cases):
        case = server_case(random.Random(seed * 1_000_003 + index))
        summary.kinds[case.kind] += 1
        client_end, server_end = socket.socketpair()
        server_end.settimeout(10)  # a server that waits for more than was sent: a failure
        done = threading.Event()
        script = Case(case.kind, case.request, "scene", follow_up)
        sender.play(client_end, case.request, script, done)
        reader, writer = server_end.makefile("rb"), server_end.makefile("wb")
        output = client_end.dup().makefile("rb")
        collected = collector.submit(_collect, output)  # the host reads while the server writes
        problem = None
        began = time.monotonic()
        try:
            server_module.serve(reader, writer, cast(Any, StandInModel()))
            ended = "returned"
        except (wire.ProtocolError, BrokenPipeError, ConnectionResetError) as e:
            ended = type(e).__name__  # main() logs one line and exits: a clean end
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            ended = "FAIL"
            text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
            problem = f"serve() raised {type(e).__name__}: {text[-1500:]}"
        finally:
            with contextlib.suppress(OSError):
                writer.close()
            reader.close()
            server_end.close()
        done.set()
        answered, wrong = collected.result(timeout=30)
        output.close()
        problem = problem or wrong
        if case.in_step and not answered:
            problem = problem or f"a request in step was not followed by service ({ended})"
        elapsed = time.monotonic() - began
        summary.slowest = max(summary.slowest, elapsed)
        summary.outcomes["FAIL" if problem else ended] += 1
        if problem:
            summary.fail(index, case, problem)
    sender.stop()
    collector.shutdown()
    summary.cases, summary.seconds = cases, time.monotonic() - started
    return summary


def _collect(output: Any) -> tuple[bool, str | None]:
    """Read every frame a server wrote: whether the follow-up was answered, and any problem."""
    from hear_runner.contract import wire
    from hear_runner.contract.messages import ErrorReply

    answered, problem = False, None
    try:
        header, _ = wire.read_frame(output)
        if header.get("op") != "hello":
            problem = f"first frame is {header.get('op')!r}, not hello"
        while True:
            header, arrays = wire.read_frame(output)
            if header["op"] == "error":
                ErrorReply.model_validate(header)
            elif header["op"] not in ("scene", "timestamps", "bye"):
                problem = problem or f"server wrote a {header['op']!r} frame"
            if header.get("id") == FOLLOW_UP_ID:
                answered = header["op"] == "scene" and arrays["embeddings"].shape == (1, SCENE_D)
    except (wire.PeerClosed, ConnectionResetError):  # reset: it closed with a request unread
        pass
    except Exception as e:
        problem = problem or f"server wrote an invalid frame: {type(e).__name__}: {e}"
    return answered, problem


# -- finding 6: hostile sizes under a real memory limit ------------------------------------
def hostile_sizes() -> list[tuple[str, bool]]:
    """Each line: a hostile hello or reply, the one line the host ended with, and whether
    that line is the refusal expected (a HearError naming the model, saying why)."""

    def reply(op: str, *specs: tuple[str, str, list[int]]) -> bytes:
        arrays = [
            {"name": name, "dtype": dtype, "shape": shape,
             "nbytes": math.prod(shape) * (4 if dtype == "<f4" else 8)}
            for name, dtype, shape in specs
        ]  # fmt: skip
        return raw_frame(json.dumps({"v": 1, "op": op, "id": 1, "arrays": arrays}).encode())

    one = np.zeros((1, 16), np.float32)
    t = 30_002  # one frame per ms of 30 s: what the request allows, far over the reply cap
    big = dict(HELLO, timestamp_embedding_size=1 << 16)
    huge_scene = reply("scene", ("embeddings", "<f4", [1, 1 << 34]))
    cases: list[tuple[str, dict, str, np.ndarray, bytes, str]] = [
        ("hello sample_rate 2e9", dict(HELLO, sample_rate=2e9), "scene", one, b"", "invalid hello"),
        ("hello sample_rate 2000000000", dict(HELLO, sample_rate=2_000_000_000), "scene", one,
         b"", "invalid hello"),
        ("hello scene size 2^34, then 64 GiB", dict(HELLO, scene_embedding_size=1 << 34), "scene",
         one, huge_scene, "invalid hello"),
        ("hello timestamp size 2^34", dict(HELLO, timestamp_embedding_size=1 << 34), "timestamps",
         one, b"", "invalid hello"),
        ("reply of 64 GiB to a 4-float hello", HELLO, "scene", one, huge_scene, "shape"),
        ("duplicate array name, 64 GiB first", HELLO, "scene", np.zeros((2, 16), np.float32),
         reply("scene", ("embeddings", "<f4", [2, 1 << 33]), ("embeddings", "<f4", [2, 4])),
         "declared twice"),
        (f"timestamps 16 x {t} x 65536 (126 GB, 1 frame/ms of the 30 s sent)", big, "timestamps",
         np.zeros((16, 16000 * 30), np.float32),
         reply("timestamps", ("embeddings", "<f4", [16, t, 1 << 16]),
               ("timestamps", "<f8", [16, t])),
         "HEAR_MAX_REPLY_BYTES"),
    ]  # fmt: skip
    results = []
    for name, hello, op, audio, data, expected in cases:
        try:
            exchange(frame_bytes(hello), data, op, audio, drain=True)
            line, good = "returned (a hostile reply was accepted)", False
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            line = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            good = check_error(e) is None and expected in str(e)
        results.append((f"{name}: {line}", good))
    return results


def exchange(
    hello: bytes,
    reply: bytes,
    op: str = "scene",
    audio: np.ndarray | None = None,
    budget: float = NORMAL_SECONDS,
    drain: bool = False,
) -> Any:
    """One scripted exchange: a server sends ``hello``, then ``reply`` to the client's call.

    Returns what the call returned; raises what the client raised.
    """
    from hear_runner.contract.client import CallBudget, ModelClient

    audio = np.zeros((N, SAMPLES), np.float32) if audio is None else audio
    host, peer = socket.socketpair()
    done = threading.Event()
    server = HostileServer()
    server.play(peer, hello, Case("exchange", b"", op, reply, drain=drain), done)
    client = ModelClient(host, LABEL, lambda: "", done.set, CallBudget(budget, 0.0))
    try:
        client.wait_hello(budget)
        return (client.scene if op == "scene" else client.timestamps)(audio)
    finally:
        done.set()
        client.close()
        server.stop()


def _limit_address_space(gib: float) -> None:
    limit = int(gib * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("side", choices=["client", "server", "hostile"])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--as-limit-gb", type=float, default=None)
    args = parser.parse_args(argv)
    if args.as_limit_gb:
        _limit_address_space(args.as_limit_gb)
    if args.side == "hostile":
        _limit_address_space(args.as_limit_gb or 5.0)
        results = hostile_sizes()
        for line, good in results:
            print(("ok   " if good else "BAD  ") + line)
        return 0 if all(good for _, good in results) else 1
    run = run_client if args.side == "client" else run_server
    summary = run(args.cases, args.seed, args.first)
    print(json.dumps(summary.as_dict(), indent=1))
    return 1 if summary.outcomes["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
