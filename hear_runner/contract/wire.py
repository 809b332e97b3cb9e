"""Framing of the model contract, version 1: the same bytes on every transport.

A frame is a 4-byte little-endian header length, a UTF-8 JSON header, then
the raw C-order bytes of each array the header declares, in order. JSON
carries the small things, raw bytes carry the audio and embeddings: this is
5-8x faster than JSON or ``.npy`` bodies.

This module is copied into every model image, so it depends on the Python
standard library and numpy only, and works on numpy 1.19 as well as 2.x.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np

CONTRACT_VERSION = 1

#: Largest JSON header either side accepts; real headers are a few hundred bytes.
MAX_HEADER_BYTES = 1 << 20

#: Deepest nesting of lists and objects a header may have (real headers nest 3 deep).
MAX_HEADER_DEPTH = 32

#: Most arrays one frame may declare, most dimensions one array may have, longest name.
MAX_ARRAYS = 16
MAX_NDIM = 8
MAX_NAME_CHARS = 64

#: Largest dimension or byte count a spec may declare (keeps the arithmetic small).
MAX_COUNT = 1 << 62

#: dtypes allowed on the wire, by their little-endian numpy names.
WIRE_DTYPES = ("<f4", "<f8", "<i8", "<i4", "|u1")

_LENGTH = struct.Struct("<I")


class ProtocolError(Exception):
    """The peer sent bytes that are not a valid frame, or a frame we did not ask for."""


class PeerClosed(ProtocolError):
    """The peer closed the stream (a dead server, or a client that went away)."""


def encode(header: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> list[bytes]:
    """Return the frame as a list of byte chunks (header, then each array's bytes).

    Chunks rather than one joined buffer, so that a large embedding batch is
    never copied once more just to be sent.
    """
    header = dict(header)
    header.setdefault("v", CONTRACT_VERSION)
    specs = []
    bodies: list[bytes] = []
    for name, array in (arrays or {}).items():
        array = np.ascontiguousarray(array)
        dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
        array = array.astype(dtype, copy=False)
        if dtype.str not in WIRE_DTYPES:
            raise ProtocolError(f"array {name!r} has dtype {dtype.str}, not one of {WIRE_DTYPES}")
        specs.append(
            {"name": name, "dtype": dtype.str, "shape": list(array.shape), "nbytes": array.nbytes}
        )
        if array.nbytes:
            bodies.append(memoryview(array.reshape(-1)).cast("B"))  # type: ignore[arg-type]
    header["arrays"] = specs
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return [_LENGTH.pack(len(raw)) + raw, *bodies]


def write_frame(
    stream: BinaryIO, header: dict[str, Any], arrays: dict[str, np.ndarray] | None = None
) -> None:
    """Write one frame and flush it."""
    for chunk in encode(header, arrays):
        stream.write(chunk)
    stream.flush()


def read_exact(stream: BinaryIO, n: int) -> bytes:
    """Read exactly n bytes or raise PeerClosed."""
    chunks = []
    remaining = n
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            raise PeerClosed(f"stream closed after {n - remaining} of {n} bytes")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_header(stream: BinaryIO, max_header_bytes: int = MAX_HEADER_BYTES) -> dict[str, Any]:
    """Read and parse a frame's header, leaving its array bytes on the stream.

    Strict JSON only: NaN, Infinity and numbers that overflow a float are rejected,
    and so is nesting deeper than ``MAX_HEADER_DEPTH``.
    """
    (length,) = _LENGTH.unpack(read_exact(stream, _LENGTH.size))
    if length > max_header_bytes:
        raise ProtocolError(f"frame header of {length} bytes exceeds {max_header_bytes}")
    raw = read_exact(stream, length)
    try:
        header = json.loads(
            raw.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite_float
        )
    except (UnicodeDecodeError, ValueError) as e:  # JSONDecodeError, too many digits, NaN
        raise ProtocolError(f"frame header is not JSON: {str(e)[:200]}") from None
    except RecursionError:
        raise ProtocolError(f"frame header nests deeper than {MAX_HEADER_DEPTH}") from None
    if not isinstance(header, dict):
        raise ProtocolError("frame header is not a JSON object")
    if _depth_exceeds(header, MAX_HEADER_DEPTH):
        raise ProtocolError(f"frame header nests deeper than {MAX_HEADER_DEPTH}")
    version = header.get("v")
    if type(version) is not int or version != CONTRACT_VERSION:
        raise ProtocolError(
            f"peer speaks contract version {shorten(version)}, this side speaks {CONTRACT_VERSION}"
        )
    check_array_specs(header)
    return header


def check_array_specs(header: dict[str, Any]) -> None:
    """Check that the declared arrays are well typed and self-consistent, before any allocation.

    Each spec is an object with a ``name`` (a non-empty string, unique in the frame), a
    ``dtype`` from ``WIRE_DTYPES``, a ``shape`` (a list of at most ``MAX_NDIM`` non-negative
    integers, booleans not allowed) and an integer ``nbytes`` equal to the shape's product
    times the item size.
    """
    specs = header.get("arrays", [])
    if not isinstance(specs, list):
        raise ProtocolError("'arrays' must be a list")
    if len(specs) > MAX_ARRAYS:
        raise ProtocolError(f"frame declares {len(specs)} arrays, more than {MAX_ARRAYS}")
    names = set()
    for spec in specs:
        if not isinstance(spec, dict):
            raise ProtocolError(f"malformed array spec {shorten(spec)}: not an object")
        name = spec.get("name")
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_CHARS:
            raise ProtocolError(f"malformed array spec: name {shorten(name)} is not a short string")
        if name in names:
            raise ProtocolError(f"array {name!r} is declared twice")
        names.add(name)
        dtype = spec.get("dtype")
        if not isinstance(dtype, str) or dtype not in WIRE_DTYPES:
            raise ProtocolError(
                f"array {name!r}: dtype {shorten(dtype)} is not one of {WIRE_DTYPES}"
            )
        shape = spec.get("shape")
        if (
            not isinstance(shape, list)
            or len(shape) > MAX_NDIM
            or not all(_is_count(d) for d in shape)
        ):
            raise ProtocolError(
                f"malformed array spec {name!r}: shape {shorten(shape)} is not a list of at most "
                f"{MAX_NDIM} non-negative integers"
            )
        nbytes = spec.get("nbytes")
        if not _is_count(nbytes):
            raise ProtocolError(
                f"malformed array spec {name!r}: nbytes {shorten(nbytes)} is not a "
                "non-negative integer"
            )
        if nbytes != math.prod(shape) * np.dtype(dtype).itemsize:
            raise ProtocolError(f"array {name!r}: {nbytes} bytes do not fit {shape} of {dtype}")


def _is_count(value: Any) -> bool:
    """A JSON integer (not a boolean) in [0, MAX_COUNT]."""
    return type(value) is int and 0 <= value <= MAX_COUNT


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} overflows a float")
    return value


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether lists and objects nest deeper than ``limit`` (iteratively: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def shorten(value: Any, limit: int = 80) -> str:
    """A peer's value for an error message: its repr, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def read_arrays(stream: BinaryIO, header: dict[str, Any]) -> dict[str, np.ndarray]:
    """Read the array bodies a (checked) header declares.

    Buffers are allocated uninitialised (``np.empty``), so a peer that declares a large
    array and then sends nothing costs address space, not resident memory.
    """
    arrays = {}
    for spec in header.get("arrays", []):
        buffer = np.empty(spec["nbytes"], dtype=np.uint8)
        view = memoryview(buffer)  # type: ignore[arg-type]
        filled = 0
        while filled < len(buffer):
            n = stream.readinto(view[filled:])  # type: ignore[attr-defined]
            if not n:
                raise PeerClosed(f"stream closed inside array {spec['name']!r}")
            filled += n
        arrays[spec["name"]] = buffer.view(spec["dtype"]).reshape(spec["shape"])
    return arrays


def read_frame(
    stream: BinaryIO,
    check: Callable[[dict[str, Any]], None] | None = None,
    max_header_bytes: int = MAX_HEADER_BYTES,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read one frame; ``check`` may reject the header before any array is allocated."""
    header = read_header(stream, max_header_bytes)
    if check is not None:
        check(header)
    return header, read_arrays(stream, header)
