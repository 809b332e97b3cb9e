"""A tiny released HEAR task and a loopback HTTP server to download it from (tests only).

The server serves tarballs built here in the released layout (``tasks/<folder>/...`` at
48000 Hz) on 127.0.0.1, and can drop a connection half way or ignore Range, as real
mirrors do. Shared by test_download.py and test_download_trust.py.
"""

from __future__ import annotations

import io
import json
import socket
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import soundfile as sf
from hear_2021.catalogue import Archive, CatalogueTask

FOLDER = "tiny-1.0-full"
RATE = 48000
SECONDS = 0.2
SPLITS = ("train", "valid", "test")


# --- a tiny released task --------------------------------------------------------------


def wav_bytes(frequency: float) -> bytes:
    t = np.arange(int(RATE * SECONDS)) / RATE
    buffer = io.BytesIO()
    sf.write(buffer, 0.5 * np.sin(2 * np.pi * frequency * t), RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def task_files(folder: str = FOLDER) -> dict[str, bytes]:
    """Relative path -> bytes of a 3-split task with 0.2 s clips at 48 kHz."""
    meta = {"task_name": "tiny", "version": "1.0", "embedding_type": "scene", "prediction_type": "multiclass",
            "split_mode": "trainvaltest", "sample_duration": SECONDS, "evaluation": ["top1_acc"]}  # fmt: skip
    files = {
        f"{folder}/task_metadata.json": json.dumps(meta).encode(),
        f"{folder}/labelvocabulary.csv": b"idx,label\n0,low\n1,high\n",
    }
    for split in SPLITS:
        labels = {f"{i}.wav": ["low" if i % 2 else "high"] for i in range(3)}
        files[f"{folder}/{split}.json"] = json.dumps(labels).encode()
        for i, name in enumerate(labels):
            files[f"{folder}/{RATE}/{split}/{name}"] = wav_bytes(300 if i % 2 else 3000)
    return files


def tarball(files: dict[str, bytes], root: str = "tasks", mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:  # type: ignore[call-overload]
        for name, data in files.items():
            info = tarfile.TarInfo(f"{root}/{name}" if root else name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def entry(url: str, sha256: str | None = None, md5: str | None = None) -> CatalogueTask:
    archive = Archive(folder=FOLDER, file=f"{FOLDER}.tar.gz", url=url, md5=md5, sha256=sha256, size=None)  # fmt: skip
    return CatalogueTask(
        name="tiny", title="Tiny", folder=FOLDER, task_name="tiny", version="1.0", mode="full",
        embedding_type="scene", prediction_type="multiclass", split_mode="trainvaltest",
        nfolds=None, evaluation=("top1_acc",), sample_duration=SECONDS, domain="speech",
        clips=9, archives=(archive,),
    )  # fmt: skip


# --- a local server ------------------------------------------------------------------------


@dataclass
class Server:
    base: str
    files: dict[str, bytes] = field(default_factory=dict)
    ranges: list[str | None] = field(default_factory=list)  # the Range header of each GET
    drops: int = 0  # the next this many responses send half the body, then hang up
    ignore_range: bool = False

    def serve(self, name: str, data: bytes) -> str:
        self.files[name] = data
        return f"{self.base}/{name}"


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer

    def do_GET(self) -> None:
        state = self.server.state
        requested = self.headers.get("Range")
        state.ranges.append(requested)
        data = state.files.get(self.path.lstrip("/"))
        if data is None:
            self.send_error(404)
            return
        start = 0
        if requested and not state.ignore_range:
            start = int(requested.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if state.drops > 0:
            state.drops -= 1
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    state: Server

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a dropped connection is the point of some tests


@contextmanager
def serving() -> Iterator[Server]:
    """A server on 127.0.0.1 (a free port) for the duration of the block."""
    httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
    httpd.state = Server(f"http://127.0.0.1:{httpd.server_address[1]}")
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield httpd.state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
