"""The framing: round trips, and every way a peer could make the reader misbehave."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest

from hear_runner.contract import wire


def frame_bytes(header: dict, arrays: dict | None = None) -> io.BytesIO:
    return io.BytesIO(b"".join(bytes(c) for c in wire.encode(header, arrays)))


def raw_frame(header: dict, body: bytes = b"") -> io.BytesIO:
    raw = json.dumps(header).encode()
    return io.BytesIO(struct.pack("<I", len(raw)) + raw + body)


def test_round_trip_keeps_dtype_shape_and_values() -> None:
    audio = np.random.default_rng(0).standard_normal((3, 1001)).astype(np.float32)
    times = np.arange(12, dtype=np.float64).reshape(3, 4)
    header, arrays = wire.read_frame(frame_bytes({"op": "x", "id": 5}, {"a": audio, "t": times}))
    assert header["op"] == "x" and header["id"] == 5 and header["v"] == wire.CONTRACT_VERSION
    np.testing.assert_array_equal(arrays["a"], audio)
    np.testing.assert_array_equal(arrays["t"], times)
    assert arrays["a"].dtype == np.float32 and arrays["t"].dtype == np.float64


def test_big_endian_and_non_contiguous_arrays_are_sent_as_little_endian_c_order() -> None:
    data = np.arange(20, dtype=">f4").reshape(4, 5)[:, ::2]
    _, arrays = wire.read_frame(frame_bytes({"op": "x"}, {"a": data}))
    np.testing.assert_array_equal(arrays["a"], data)
    assert arrays["a"].dtype.str == "<f4"


def test_empty_arrays_round_trip() -> None:
    _, arrays = wire.read_frame(frame_bytes({"op": "x"}, {"a": np.zeros((0, 7), np.float32)}))
    assert arrays["a"].shape == (0, 7)


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"name": "a", "dtype": "<f4", "shape": [2, 2], "nbytes": 15}, "do not fit"),
        ({"name": "a", "dtype": "<c8", "shape": [1], "nbytes": 8}, "dtype"),
        ({"name": "a", "dtype": "|O", "shape": [1], "nbytes": 8}, "dtype"),
        ({"name": "a", "dtype": "<f4", "shape": [-1, 4], "nbytes": 16}, "negative"),
        ({"name": "a", "dtype": "<f4", "shape": "x"}, "malformed"),
        # strict types: what int() would have let through, or crashed on later
        ({"name": "a", "dtype": "<f4", "shape": [2.0, 2], "nbytes": 16}, "shape"),
        ({"name": "a", "dtype": "<f4", "shape": [True, 4], "nbytes": 16}, "shape"),
        ({"name": "a", "dtype": "<f4", "shape": "22", "nbytes": 16}, "shape"),
        ({"name": "a", "dtype": "<f4", "shape": [2, 2], "nbytes": "16"}, "nbytes"),
        ({"name": "a", "dtype": "<f4", "shape": [2, 2], "nbytes": 16.0}, "nbytes"),
        ({"dtype": "<f4", "shape": [2, 2], "nbytes": 16}, "name"),
        ({"name": ["a"], "dtype": "<f4", "shape": [2, 2], "nbytes": 16}, "name"),
        ({"name": "a", "dtype": {"names": ["x"]}, "shape": [1], "nbytes": 4}, "dtype"),
        ({"name": "a", "dtype": "|u1", "shape": [1] * 9, "nbytes": 1}, "shape"),
        # a product that wraps around int64 (2^62 * 4 == 0 in int64) is not zero bytes
        ({"name": "a", "dtype": "|u1", "shape": [2**62, 4], "nbytes": 0}, "do not fit"),
        ("a", "not an object"),
    ],
)
def test_inconsistent_array_specs_are_rejected_before_allocation(spec: dict, problem: str) -> None:
    with pytest.raises(wire.ProtocolError, match=problem):
        wire.read_header(raw_frame({"v": 1, "op": "x", "arrays": [spec]}))


def test_duplicate_array_names_are_rejected() -> None:
    spec = {"name": "a", "dtype": "|u1", "shape": [1], "nbytes": 1}
    with pytest.raises(wire.ProtocolError, match="declared twice"):
        wire.read_header(raw_frame({"v": 1, "op": "x", "arrays": [spec, spec]}))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nests deeper"),  # RecursionError in json
        (b'{"v":1,"a":' + b"[" * 40 + b"]" * 40 + b"}", "nests deeper"),
        (b'{"v":1,"seconds":NaN}', "not JSON"),
        (b'{"v":1,"seconds":-Infinity}', "not JSON"),
        (b'{"v":1,"seconds":1e400}', "not JSON"),  # json gives inf
        (b'{"v":1,"id":' + b"9" * 5000 + b"}", "not JSON"),  # ValueError: too many digits
        (b'{"v":true}', "version True"),
        (b'{"v":1.0}', "version 1.0"),
    ],
)
def test_header_must_be_strict_shallow_json(text: bytes, problem: str) -> None:
    stream = io.BytesIO(struct.pack("<I", len(text)) + text)
    with pytest.raises(wire.ProtocolError, match=problem):
        wire.read_header(stream)


def test_oversized_header_is_rejected_without_reading_it() -> None:
    stream = io.BytesIO(struct.pack("<I", 1 << 30))
    with pytest.raises(wire.ProtocolError, match="exceeds"):
        wire.read_header(stream)


def test_other_contract_version_is_rejected() -> None:
    with pytest.raises(wire.ProtocolError, match="version 2"):
        wire.read_header(raw_frame({"v": 2, "op": "x", "arrays": []}))


def test_non_json_header_is_rejected() -> None:
    stream = io.BytesIO(struct.pack("<I", 3) + b"\xff\x00{")
    with pytest.raises(wire.ProtocolError, match="not JSON"):
        wire.read_header(stream)


def test_truncated_stream_is_peer_closed() -> None:
    data = frame_bytes({"op": "x"}, {"a": np.ones(100, np.float32)}).getvalue()
    with pytest.raises(wire.PeerClosed):
        wire.read_frame(io.BytesIO(data[:-10]))
    with pytest.raises(wire.PeerClosed):
        wire.read_frame(io.BytesIO(b""))


def test_check_callback_sees_header_before_arrays_are_read() -> None:
    stream = frame_bytes({"op": "x"}, {"a": np.ones(10, np.float32)})

    def refuse(header: dict) -> None:
        raise ValueError(f"refused {header['arrays'][0]['shape']}")

    with pytest.raises(ValueError, match=r"refused \[10\]"):
        wire.read_frame(stream, check=refuse)
    assert stream.tell() < len(stream.getvalue())  # the body was never read
