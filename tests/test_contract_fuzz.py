"""The contract against hostile peers (issue 12, findings 6 and 8).

A server may announce absurd sizes or send any bytes at all; the host must end every call
within its deadline with one ModelError (or subclass) whose message is one line naming the
model, never another exception and never an allocation the request does not justify. A host
may send any bytes to a server; it must answer bad_request and keep serving while the stream
is in step, or answer and stop. The fuzzer is tests/fuzz_contract.py; HEAR_FUZZ_CASES sets its
case count (10,000 by default), HEAR_FUZZ_SEED its seed.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import fuzz_contract as fuzz
import numpy as np
import pytest

import hear_runner
from hear_runner.errors import HearError, ModelError

CASES = int(os.environ.get("HEAR_FUZZ_CASES", "10000"))
SEED = os.environ.get("HEAR_FUZZ_SEED", "0")
CHECKOUT = Path(hear_runner.__file__).resolve().parents[1]


def run_fuzz(*args: str) -> subprocess.CompletedProcess[str]:
    """The fuzzer in its own process (under its own RLIMIT_AS), on this checkout's code."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(CHECKOUT), str(CHECKOUT / "plugins")])
    script = Path(__file__).with_name("fuzz_contract.py")
    return subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, env=env, timeout=900
    )


def summary_of(proc: subprocess.CompletedProcess[str]) -> dict:
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"the fuzzer crashed (rc {proc.returncode}): {proc.stderr[-3000:]}")


# -- finding 8: malformed frames, fuzzed --------------------------------------------------
def test_every_hostile_reply_ends_in_one_line_naming_the_model_within_its_deadline() -> None:
    proc = run_fuzz("client", "--cases", str(CASES), "--seed", SEED, "--as-limit-gb", "4")
    summary = summary_of(proc)
    assert summary["n_failures"] == 0, (
        json.dumps(summary["problems"]) + "\n" + "\n".join(summary["failures"])
    )
    assert summary["cases"] == CASES
    assert summary["peak_rss_mib"] < 300  # no hostile claim got memory behind it
    # Hang and trickle cases wait out their short budget: they must not dominate the run.
    assert summary["slowest_case_seconds"] < 2 * fuzz.SHORT_SECONDS + fuzz.SLACK_SECONDS


def test_every_malformed_request_is_answered_or_ends_the_server_cleanly() -> None:
    proc = run_fuzz("server", "--cases", str(CASES), "--seed", SEED, "--as-limit-gb", "4")
    summary = summary_of(proc)
    assert summary["n_failures"] == 0, (
        json.dumps(summary["problems"]) + "\n" + "\n".join(summary["failures"])
    )
    assert summary["peak_rss_mib"] < 300


# -- finding 6: hostile sizes under a real memory limit ------------------------------------
def test_hostile_sizes_under_a_5_gb_limit_end_in_one_line_naming_the_model() -> None:
    proc = run_fuzz("hostile", "--as-limit-gb", "5")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "MemoryError" not in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sample_rate", 2e9),
        ("sample_rate", 2_000_000_000),
        ("sample_rate", 999),
        ("sample_rate", True),
        ("sample_rate", "16000"),
        ("scene_embedding_size", 1 << 34),
        ("timestamp_embedding_size", (1 << 16) + 1),
        ("scene_embedding_size", 4.0),
        ("model", "m" * 10_000),
        ("versions", {str(i): "1" for i in range(100)}),
        ("peak_rss_bytes", -1),
    ],
)
def test_hello_out_of_bounds_or_of_the_wrong_type_is_refused(field: str, value: object) -> None:
    hello = fuzz.frame_bytes(dict(fuzz.HELLO, **{field: value}))
    with pytest.raises(ModelError, match=f"invalid hello: field '{field}") as info:
        fuzz.exchange(hello, b"")
    assert fuzz.check_error(info.value) is None


def test_hello_at_the_bounds_is_accepted() -> None:
    hello = dict(fuzz.HELLO, sample_rate=384_000, timestamp_embedding_size=1 << 16)
    audio = np.zeros((fuzz.N, 384), np.float32)
    data = fuzz.frame_bytes(
        {"op": "timestamps", "id": 1},
        {"embeddings": np.zeros((2, 1, 1 << 16), np.float32), "timestamps": np.zeros((2, 1))},
    )
    embeddings, _ = fuzz.exchange(fuzz.frame_bytes(hello), data, "timestamps", audio)
    assert embeddings.shape == (2, 1, 1 << 16)


def test_reply_cap_is_configurable_and_names_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    header, body = fuzz.timestamps_reply()  # 2 x 5 x 3 float32 + 2 x 5 float64: 200 bytes
    reply = fuzz.raw_frame(json.dumps(header).encode(), body)
    assert len(fuzz.exchange(fuzz.frame_bytes(fuzz.HELLO), reply, "timestamps")[0]) == 2
    monkeypatch.setenv("HEAR_MAX_REPLY_BYTES", "199")
    with pytest.raises(ModelError, match=r"reply of 200 bytes.*more than the 199 allowed") as info:
        fuzz.exchange(fuzz.frame_bytes(fuzz.HELLO), reply, "timestamps")
    assert fuzz.check_error(info.value) is None
    monkeypatch.setenv("HEAR_MAX_REPLY_BYTES", "lots")
    with pytest.raises(HearError, match="HEAR_MAX_REPLY_BYTES='lots'"):
        fuzz.exchange(fuzz.frame_bytes(fuzz.HELLO), reply, "timestamps")


# -- finding 8: the crashes the fuzzer found, one by one -----------------------------------
def reply_with(**fields: object) -> bytes:
    header, body = fuzz.scene_reply()
    header.update(fields)
    return fuzz.raw_frame(json.dumps(header).encode(), body)


def spec_reply(**spec: object) -> bytes:
    header, body = fuzz.scene_reply()
    header["arrays"][0].update(spec)
    return fuzz.raw_frame(json.dumps(header).encode(), body)


HELLO = fuzz.frame_bytes(fuzz.HELLO)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (spec_reply(shape=[2.0, 4]), "shape"),
        (spec_reply(shape=[True, 4]), "shape"),
        (spec_reply(nbytes="32"), "nbytes"),
        (spec_reply(nbytes=32.0), "nbytes"),
        (spec_reply(name=None), "name"),
        (spec_reply(dtype=["<f4"]), "dtype"),
        (reply_with(arrays=[5]), "not an object"),
        (reply_with(id=True), "answered request True"),
        (reply_with(id="1"), "answered request '1'"),
        (reply_with(v=True), "version"),
        (reply_with(seconds=10**400), "returned"),  # ignored, as any figure out of range
        (fuzz.raw_frame(b'{"v":1,"op":"scene","id":1,"seconds":NaN,"arrays":[]}'), "not JSON"),
        (fuzz.raw_frame(b'{"v":1,"op":"scene","id":1e400,"arrays":[]}'), "not JSON"),
        (fuzz.raw_frame(b"[" * 100_000 + b"]" * 100_000), "nests deeper"),
        (fuzz.raw_frame(b'{"v":1,"id":' + b"9" * 5000 + b"}"), "not JSON"),
        (
            fuzz.frame_bytes(
                {"op": "error", "id": 1, "kind": "load_error", "message": "m", "traceback": ""}
            ),
            "[load_error] m",
        ),
        (
            fuzz.frame_bytes({"op": "error", "id": 1, "kind": "other", "message": "m"}),
            "field 'kind'",
        ),
        (
            fuzz.frame_bytes(
                {
                    "op": "error",
                    "id": 1,
                    "kind": "model_error",
                    "message": "two\nlines\x1b[2J" + "x" * 10_000,
                    "traceback": "",
                }
            ),
            "two lines",
        ),
    ],
)
def test_malformed_reply_is_one_line_naming_the_model(reply: bytes, expected: str) -> None:
    try:
        fuzz.exchange(HELLO, reply)
    except BaseException as e:  # the point: nothing but one good HearError line
        assert fuzz.check_error(e) is None, fuzz.check_error(e)
        assert expected in str(e)
    else:
        assert expected == "returned"


def test_non_finite_timestamps_are_refused() -> None:
    header, body = fuzz.timestamps_reply()
    times = np.frombuffer(body[-80:], np.float64).copy()
    times[3] = np.nan
    reply = fuzz.raw_frame(json.dumps(header).encode(), body[:-80] + times.tobytes())
    with pytest.raises(ModelError, match="NaN or Inf timestamps"):
        fuzz.exchange(HELLO, reply, "timestamps")


# -- the server: answer, keep serving while in step, or answer and stop --------------------
def serve_requests(data: bytes) -> tuple[list[dict], BaseException | None]:
    from hear_runner.contract import server, wire

    client_end, server_end = socket.socketpair()
    client_end.settimeout(10)

    def send() -> None:
        with contextlib.suppress(OSError):
            client_end.sendall(data)
            client_end.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    reader, writer = server_end.makefile("rb"), server_end.makefile("wb")
    error = None
    try:
        server.serve(reader, writer, fuzz.StandInModel())  # type: ignore[arg-type]
    except Exception as e:
        error = e
    for stream in (reader, writer, server_end):
        with contextlib.suppress(OSError):
            stream.close()
    sender.join(10)
    frames, reader = [], client_end.makefile("rb")
    try:
        while True:
            frames.append(wire.read_frame(reader)[0])
    except (wire.PeerClosed, ConnectionResetError):
        pass
    return frames, error


def test_server_keeps_serving_after_a_request_without_arrays() -> None:
    no_arrays = b'{"v":1,"op":"scene","id":5}'
    frames, error = serve_requests(fuzz.raw_frame(no_arrays) + fuzz._request("scene", 6))
    assert error is None
    assert [(f["op"], f.get("id")) for f in frames] == [("hello", None), ("error", 5), ("scene", 6)]
    assert frames[1]["kind"] == "bad_request" and "audio" in frames[1]["message"]


def test_server_answers_an_unparseable_frame_with_bad_request_then_stops() -> None:
    from hear_runner.contract import wire

    frames, error = serve_requests(fuzz.raw_frame(b"[" * 100_000 + b"]" * 100_000))
    assert isinstance(error, wire.ProtocolError) and "nests deeper" in str(error)
    assert [f["op"] for f in frames] == ["hello", "error"]
    assert frames[1]["kind"] == "bad_request" and frames[1]["id"] is None
