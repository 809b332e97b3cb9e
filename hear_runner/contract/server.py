"""The in-image side of the contract: host any HEAR-API module behind framed RPC.

Run as ``python -m hear_contract.server``, inside a model image or by the local
engine (from a copy of this package on the interpreter's PYTHONPATH). It depends on the
standard library and numpy only, so any model environment can host it, a
numpy-1.19 or TensorFlow stack included.

Environment:
  HEAR_MODULE          module implementing the HEAR API (required)
  HEAR_MODEL_PATH      weights path, passed as ``load_model``'s first argument
  HEAR_MODEL_OPTIONS   JSON object of keyword options for ``load_model``
  HEAR_DEVICE          auto (default: CUDA when torch sees one), cpu or cuda[:N]
  HEAR_AUDIO_FORMAT    auto (default), torch, tensorflow or numpy: what the
                       module's functions receive as audio
  HEAR_SOCKET          connect to the host's Unix socket at this path instead of
                       using stdin/stdout (the host listens; the server connects)
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import platform
import resource
import socket
import sys
import time
import traceback
from typing import Any, BinaryIO

import numpy as np

# Relative import only: this file runs as ``hear_contract.server``, never beside the host's
# other modules (the host imports it as ``hear_runner.contract.server`` only in its own tests).
from .wire import (
    CONTRACT_VERSION,
    PeerClosed,
    ProtocolError,
    read_arrays,
    read_exact,
    read_header,
    write_frame,
)

#: Exit code when the model cannot be loaded; the error frame says why.
EXIT_LOAD_ERROR = 3

#: Largest audio batch the server accepts (float32 bytes): bounds a bad request.
MAX_AUDIO_BYTES = int(os.environ.get("HEAR_MAX_AUDIO_BYTES", str(4 << 30)))


class BadRequest(Exception):
    """The client asked for something the contract does not allow."""


def _log(message: str) -> None:
    print(f"[hear-server] {message}", file=sys.stderr, flush=True)


def _open_transport() -> tuple[BinaryIO, BinaryIO]:
    """Return (reader, writer) for frames, keeping the model's prints off them."""
    path = os.environ.get("HEAR_SOCKET")
    if path:
        # The host owns this socket and listens on it, in a folder the container cannot
        # write: the server connects, so nothing in the container chooses what the host
        # talks to. The host listens before the container starts; the retries only cover
        # a slow filesystem.
        deadline = time.monotonic() + 10.0
        while True:
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                conn.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                conn.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        return conn.makefile("rb"), conn.makefile("wb")
    # Frames own the original stdout; anything the model prints goes to stderr.
    frames_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(0, "rb", buffering=1 << 20), os.fdopen(frames_fd, "wb", buffering=1 << 20)


class Host:
    """Loads the HEAR module once and answers scene/timestamp requests."""

    def __init__(self) -> None:
        name = os.environ.get("HEAR_MODULE")
        if not name:
            raise RuntimeError("HEAR_MODULE is not set: name the HEAR-API module to serve")
        self.module_name = name
        options = json.loads(os.environ.get("HEAR_MODEL_OPTIONS") or "{}")
        if not isinstance(options, dict):
            raise RuntimeError("HEAR_MODEL_OPTIONS must be a JSON object of load_model options")
        started = time.perf_counter()
        self.module = importlib.import_module(name)
        for attr in ("load_model", "get_scene_embeddings", "get_timestamp_embeddings"):
            if not callable(getattr(self.module, attr, None)):
                raise RuntimeError(f"module {name!r} has no HEAR API function {attr}()")
        path = os.environ.get("HEAR_MODEL_PATH")
        self.model = (
            self.module.load_model(path, **options) if path else self.module.load_model(**options)
        )
        self.audio_format = self._audio_format()
        self.device = self._place_model()
        self.load_seconds = time.perf_counter() - started
        for attr in ("sample_rate", "scene_embedding_size", "timestamp_embedding_size"):
            if not hasattr(self.model, attr):
                raise RuntimeError(f"model returned by {name}.load_model() has no attribute {attr}")

    def _audio_format(self) -> str:
        wanted = os.environ.get("HEAR_AUDIO_FORMAT", "auto")
        if wanted not in ("auto", "torch", "tensorflow", "numpy"):
            raise RuntimeError(
                f"HEAR_AUDIO_FORMAT={wanted!r}: expected auto, torch, tensorflow or numpy"
            )
        if wanted != "auto":
            return wanted
        if "torch" in sys.modules:
            return "torch"
        if "tensorflow" in sys.modules:
            return "tensorflow"
        return "numpy"

    def _place_model(self) -> str:
        if self.audio_format != "torch":
            return "cpu"
        import torch

        wanted = os.environ.get("HEAR_DEVICE", "auto")
        device = ("cuda" if torch.cuda.is_available() else "cpu") if wanted == "auto" else wanted
        if isinstance(self.model, torch.nn.Module):
            self.model = self.model.to(device)
            self.model.eval()
        return str(device)

    def hello(self) -> dict[str, Any]:
        return {
            "op": "hello",
            "model": self.module_name,
            "sample_rate": int(self.model.sample_rate),
            "scene_embedding_size": int(self.model.scene_embedding_size),
            "timestamp_embedding_size": int(self.model.timestamp_embedding_size),
            "device": self.device,
            "audio_format": self.audio_format,
            "load_seconds": round(self.load_seconds, 3),
            "versions": _versions(self.module_name),
            **self._device_name(),
            **self.resources(),
        }

    def resources(self) -> dict[str, Any]:
        """Peak memory so far: the process's resident set and, for torch on CUDA, the GPU's.

        Sent with the hello and every reply, so the host can record what a model needed.
        """
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        found: dict[str, Any] = {"peak_rss_bytes": int(peak_kib) * 1024}
        torch = self._torch_on_cuda()
        if torch is not None:
            found["peak_gpu_bytes"] = int(torch.cuda.max_memory_allocated())
        return found

    def _device_name(self) -> dict[str, str]:
        """What the model runs on, for the hello: the GPU's name (torch on CUDA), else "cpu".

        ``device`` says "cuda:0"; this says which card, so a result names the hardware.
        """
        torch = self._torch_on_cuda()
        if torch is None:
            return {"device_name": "cpu"}
        return {"device_name": str(torch.cuda.get_device_name(torch.device(self.device)))}

    def _torch_on_cuda(self) -> Any:
        """torch, when the model already imported it and runs on CUDA; else None."""
        torch = sys.modules.get("torch")
        if torch is not None and self.device.startswith("cuda") and torch.cuda.is_available():
            return torch
        return None

    def _to_model(self, audio: np.ndarray) -> Any:
        if self.audio_format == "torch":
            import torch

            return torch.from_numpy(np.array(audio, dtype=np.float32)).to(self.device)
        if self.audio_format == "tensorflow":
            import tensorflow as tf

            return tf.convert_to_tensor(audio)
        return np.array(audio, dtype=np.float32)

    def _call(self, fn: Any, audio: np.ndarray) -> Any:
        if self.audio_format == "torch":
            import torch

            with torch.no_grad():
                return fn(self._to_model(audio), self.model)
        return fn(self._to_model(audio), self.model)

    def scene(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        embeddings = self._call(self.module.get_scene_embeddings, audio)
        return {"embeddings": _to_numpy(embeddings, np.float32)}

    def timestamps(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        result = self._call(self.module.get_timestamp_embeddings, audio)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise TypeError("get_timestamp_embeddings must return (embeddings, timestamps)")
        embeddings, timestamps = result
        return {
            "embeddings": _to_numpy(embeddings, np.float32),
            "timestamps": _to_numpy(timestamps, np.float64),
        }

    def free_memory(self) -> None:
        if self.audio_format == "torch":
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()


def _to_numpy(value: Any, dtype: Any) -> np.ndarray:
    """Convert a torch, TensorFlow or numpy output to a C-contiguous numpy array."""
    if hasattr(value, "detach"):  # torch.Tensor
        value = value.detach().cpu().numpy()
    elif hasattr(value, "numpy"):  # tf.Tensor
        value = value.numpy()
    return np.ascontiguousarray(np.asarray(value, dtype=dtype))


def _versions(module_name: str) -> dict[str, str]:
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for lib in ("torch", "tensorflow"):
        if lib in sys.modules:
            versions[lib] = str(getattr(sys.modules[lib], "__version__", "unknown"))
    try:
        from importlib.metadata import packages_distributions, version

        top = module_name.split(".")[0]
        for dist in packages_distributions().get(top, [top]):
            versions[dist] = version(dist)
    except Exception:
        pass
    return versions


def _error(kind: str, exc: BaseException, request_id: Any = None) -> dict[str, Any]:
    message = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
    return {
        "op": "error",
        "id": request_id,
        "kind": kind,
        "message": message,
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    }


def _is_out_of_memory(exc: BaseException) -> bool:
    return (
        isinstance(exc, MemoryError)
        or "OutOfMemory" in type(exc).__name__
        or ("out of memory" in str(exc).lower())
    )


def _request_problem(header: dict[str, Any]) -> str | None:
    if header.get("op") not in ("scene", "timestamps", "shutdown"):
        return f"unknown operation {header.get('op')!r}"
    total = sum(spec["nbytes"] for spec in header.get("arrays", []))
    if total > MAX_AUDIO_BYTES:
        return f"request carries {total} bytes, more than {MAX_AUDIO_BYTES}"
    return None


def _discard(reader: BinaryIO, nbytes: int) -> None:
    while nbytes:
        nbytes -= len(read_exact(reader, min(nbytes, 1 << 20)))


def _refuse(writer: BinaryIO, problem: str, request_id: Any = None) -> None:
    """Say why the server stops reading, if the client still listens."""
    with contextlib.suppress(OSError):
        write_frame(writer, _error("bad_request", BadRequest(problem), request_id))


def serve(reader: BinaryIO, writer: BinaryIO, host: Host) -> None:
    """Answer requests until shutdown or end of input; keep serving after any error.

    A request that parses but asks for something not allowed gets a ``bad_request``
    reply and the server goes on. A frame that cannot be parsed leaves the stream
    out of step: it gets a ``bad_request`` reply (id null) and ends the server with
    a ProtocolError (``main`` logs one line and exits with code 2).
    """
    write_frame(writer, host.hello())
    while True:
        try:
            header = read_header(reader)
        except PeerClosed:
            return
        except ProtocolError as e:
            _refuse(writer, str(e))
            raise
        request_id = header.get("id")
        problem = _request_problem(header)
        if problem:
            _discard(reader, sum(spec["nbytes"] for spec in header.get("arrays", [])))
            write_frame(writer, _error("bad_request", BadRequest(problem), request_id))
            continue
        try:
            arrays = read_arrays(reader, header)
        except MemoryError:
            problem = "the server has no memory for the request's arrays"
            _refuse(writer, problem, request_id)
            raise ProtocolError(problem) from None
        op = header["op"]
        if op == "shutdown":
            write_frame(writer, {"op": "bye", "id": request_id})
            return
        audio = arrays.get("audio")
        if audio is None or audio.ndim != 2 or audio.dtype != np.float32:
            got = "nothing" if audio is None else f"{audio.dtype} of shape {audio.shape}"
            err = BadRequest(f"'audio' must be float32 (n_sounds, n_samples); got {got}")
            write_frame(writer, _error("bad_request", err, request_id))
            continue
        started = time.perf_counter()
        try:
            result = host.scene(audio) if op == "scene" else host.timestamps(audio)
            failure = None
        except Exception as e:
            failure = _error(
                "out_of_memory" if _is_out_of_memory(e) else "model_error", e, request_id
            )
        if failure is not None:  # the exception and its (GPU) tensors are released by now
            host.free_memory()
            write_frame(writer, failure)
            continue
        seconds = round(time.perf_counter() - started, 6)
        reply = {"op": op, "id": request_id, "seconds": seconds, **host.resources()}
        write_frame(writer, reply, result)


def main() -> int:
    try:
        reader, writer = _open_transport()
    except OSError as e:
        _log(f"cannot open the transport: {e}")
        return 2
    try:
        host = Host()
    except BaseException as e:
        _log(f"cannot load {os.environ.get('HEAR_MODULE')!r}: {e}")
        with contextlib.suppress(OSError):
            write_frame(writer, _error("load_error", e))
        return EXIT_LOAD_ERROR
    _log(f"serving {host.module_name} on {host.device} (contract v{CONTRACT_VERSION})")
    try:
        serve(reader, writer, host)
    except (BrokenPipeError, ConnectionResetError):
        return 0
    except ProtocolError as e:
        _log(f"protocol error: {e}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
