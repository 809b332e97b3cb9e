"""What a model container (or a killed `hear`) must not be able to do to the host (issue 12).

Real images FROM hear/base, real containers, real `hear run` subprocesses killed with real
signals. ``HEAR_TEST_BASE`` names another base image to build the test images on (to show
the same tests against an older hear/base).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import hear_containers

from hear_runner.engines.base import EngineSettings, ModelSource
from hear_runner.engines.docker import DockerEngine

TESTS = Path(__file__).parent
HEAR_MODULES = TESTS / "hear_modules"
ROOT = TESTS.parent

#: A HEAR module that attacks the host at load time; its embeddings say what worked:
#: [symlink planted over the socket, MiB written to /run/hear, MiB written to /tmp].
SNEAKY = """
import os
import numpy as np


def _try(action):
    try:
        action()
        return 1.0
    except OSError:
        return 0.0


def _fill(path, mib):
    written = 0
    try:
        with open(path, "wb") as f:
            for _ in range(mib):
                f.write(b"\\0" * (1 << 20))
                f.flush()
                written += 1
    except OSError:
        pass
    return float(written)


class Model:
    sample_rate = 16000
    scene_embedding_size = 3
    timestamp_embedding_size = 3


def load_model(target="", fill_mib=0):
    model = Model()
    sock = "/run/hear/model.sock"
    planted = 0.0
    if target:
        _try(lambda: os.unlink(sock))
        planted = _try(lambda: os.symlink(target, sock))
    model.flags = [planted, _fill("/run/hear/fill", fill_mib), _fill("/tmp/fill", fill_mib)]
    return model


def get_scene_embeddings(audio, model):
    return np.tile(np.array(model.flags, np.float32), (len(audio), 1))


def get_timestamp_embeddings(audio, model):
    n = len(audio)
    return np.zeros((n, 1, 3), np.float32), np.zeros((n, 1))
"""


#: hear/base's server from a shell: the launcher, or an older hear/base's module.
START_SERVER = (
    "if [ -f /opt/hear/hear_contract/launch.py ]; "
    "then exec python3 /opt/hear/hear_contract/launch.py; "
    "else exec python3 -m hear_contract.server; fi"
)


def hear(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hear_runner", *args],
        capture_output=True,
        text=True,
        timeout=600,
        **kwargs,  # type: ignore[call-overload]
    )


@pytest.fixture(scope="session")
def base_image(docker_client) -> str:
    """hear/base built from this checkout (or HEAR_TEST_BASE, to try an older one)."""
    if os.environ.get("HEAR_TEST_BASE"):
        return os.environ["HEAR_TEST_BASE"]
    from hear_runner.build.builder import build_image

    return build_image(docker_client, ROOT / "images" / "base", say=lambda m: None).tag


def build(docker_client, base: str, tag: str, dockerfile: str, files: dict[str, str]) -> str:
    """A test image FROM ``base``: the Dockerfile's lines after FROM, and files beside it."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for name, text in files.items():
            (Path(tmp) / name).write_text(text)
        (Path(tmp) / "Dockerfile").write_text(f"FROM {base}\n{dockerfile}")
        docker_client.images.build(path=tmp, tag=tag, rm=True)
    return tag


@pytest.fixture(scope="session")
def sneaky_image(docker_client, base_image: str) -> str:
    return build(
        docker_client, base_image, "hear-test/sneaky:latest",
        "WORKDIR /opt/model\nCOPY sneaky.py /opt/model/\nENV HEAR_MODULE=sneaky\n",
        {"sneaky.py": SNEAKY},
    )  # fmt: skip


@pytest.fixture(scope="session")
def faulty_image(docker_client, base_image: str) -> str:
    return build(
        docker_client, base_image, "hear-test/trust-faulty:latest",
        "WORKDIR /opt/model\nCOPY faulty.py numpy_logmel.py /opt/model/\nENV HEAR_MODULE=faulty\n",
        {n: (HEAR_MODULES / n).read_text() for n in ("faulty.py", "numpy_logmel.py")},
    )  # fmt: skip


class Victim:
    """A Unix socket of the host's, in a folder no container mounts: counts connections."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "victim.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(self.path))
        self.path.chmod(0o777)
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.connections = 0
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop = True
        self._thread.join()
        self.sock.close()


def _run_dir(docker_client, container_name: str) -> tuple[Path, bool]:
    """The host folder mounted at /run/hear, and whether the mount is writable."""
    container = docker_client.containers.get(container_name)
    [mount] = [m for m in container.attrs["Mounts"] if m["Destination"] == "/run/hear"]
    return Path(mount["Source"]), mount["RW"]


# -- finding 4: the host owns its socket ------------------------------------------------------
@pytest.mark.docker
def test_module_cannot_replace_the_hosts_socket(
    docker_client, sneaky_image, tmp_path, no_leftover_containers
):
    """At load time the module swaps /run/hear/model.sock for a symlink to a host socket:
    it cannot (the folder is read-only to it), the host never connects there, and the run
    works over the host's own socket."""
    victim = Victim(tmp_path)
    source = ModelSource(kind="image", ref=sneaky_image, options={"target": str(victim.path)})
    try:
        engine = DockerEngine(EngineSettings(load_timeout=60))
        with engine.start(source) as model:
            planted, _, _ = model.client.scene(np.zeros((1, 1600), np.float32))[0]
            run_dir, writable = _run_dir(docker_client, model.provenance["container"])
            sock = run_dir / "model.sock"
            assert stat.S_ISSOCK(sock.lstat().st_mode), "the container replaced the socket"
            assert model.provenance["sandbox"]["transport"] == "socket"
            peer = model.provenance["socket_peer"]
            assert peer["pid"] not in (0, os.getpid()) and peer["uid"] == 10001
        assert planted == 0.0, "the container replaced the host's socket"
        assert not writable
    finally:
        victim.close()
    assert victim.connections == 0, "the host connected to a socket the container planted"


@pytest.mark.docker
def test_entrypoint_cannot_plant_a_socket_before_the_server_starts(
    docker_client, base_image, tmp_path, no_leftover_containers
):
    """An image whose entrypoint plants the symlink first, then waits, then starts the server:
    the host must not connect to the planted path; the run works over its own socket (or
    fails naming the container, never talking to the victim)."""
    victim = Victim(tmp_path)
    script = f"ln -sf {victim.path} /run/hear/model.sock 2>/dev/null; sleep 2; {START_SERVER}"
    tag = build(
        docker_client, base_image, "hear-test/planter:latest",
        "WORKDIR /opt/model\nCOPY numpy_logmel.py /opt/model/\nENV HEAR_MODULE=numpy_logmel\n"
        f"ENTRYPOINT {json.dumps(['sh', '-c', script])}\n",
        {"numpy_logmel.py": (HEAR_MODULES / "numpy_logmel.py").read_text()},
    )  # fmt: skip
    try:
        engine = DockerEngine(EngineSettings(load_timeout=20))
        try:
            with engine.start(ModelSource(kind="image", ref=tag)) as model:
                assert model.client.scene(np.zeros((1, 16000), np.float32)).shape == (1, 128)
        except Exception as e:  # allowed: one line naming the container
            assert "container hear-planter" in str(e) and "\n" not in str(e)
    finally:
        victim.close()
    assert victim.connections == 0, "the host connected to a socket the container planted"


@pytest.mark.docker
def test_a_host_process_cannot_take_the_containers_place(
    docker_client, base_image, no_leftover_containers
):
    """A process of the host that connects to model.sock before the container's server does
    is turned away (SO_PEERCRED: not a process of the container)."""
    tag = build(
        docker_client, base_image, "hear-test/slow-start:latest",
        "WORKDIR /opt/model\nCOPY numpy_logmel.py /opt/model/\nENV HEAR_MODULE=numpy_logmel\n"
        f"ENTRYPOINT {json.dumps(['sh', '-c', 'sleep 2; ' + START_SERVER])}\n",
        {"numpy_logmel.py": (HEAR_MODULES / "numpy_logmel.py").read_text()},
    )  # fmt: skip
    import tempfile

    impostor: list[bytes] = []

    def connect_first() -> None:
        deadline = time.monotonic() + 30
        pattern = f"hear-run-{os.getpid()}-*/model.sock"
        while time.monotonic() < deadline:
            for path in Path(tempfile.gettempdir()).glob(pattern):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.connect(str(path))
                    sock.settimeout(10)
                    impostor.append(sock.recv(1))  # b"": the host hung up on it
                except OSError:
                    impostor.append(b"error")
                finally:
                    sock.close()
                return
            time.sleep(0.01)

    thread = threading.Thread(target=connect_first)
    thread.start()
    with DockerEngine().start(ModelSource(kind="image", ref=tag)) as model:
        assert model.client.scene(np.zeros((1, 16000), np.float32)).shape == (1, 128)
        assert model.provenance["socket_peer"]["pid"] != os.getpid()
    thread.join()
    assert impostor == [b""]


@pytest.mark.docker
def test_image_on_an_older_base_is_spoken_to_over_stdio(
    docker_client, base_image, no_leftover_containers
):
    """An image without org.hear.socket=connect (built on an older hear/base, whose server
    listens on HEAR_SOCKET) gets the attach stream, which old servers speak unchanged."""
    tag = build(
        docker_client, base_image, "hear-test/old-style:latest",
        "WORKDIR /opt/model\nCOPY numpy_logmel.py /opt/model/\nENV HEAR_MODULE=numpy_logmel\n"
        'LABEL org.hear.socket=""\n',
        {"numpy_logmel.py": (HEAR_MODULES / "numpy_logmel.py").read_text()},
    )  # fmt: skip
    from hear_runner.engines.docker import Sandbox

    engine = DockerEngine(sandbox=Sandbox(transport="socket"))
    with engine.start(ModelSource(kind="image", ref=tag)) as model:
        assert model.provenance["sandbox"]["transport"] == "stdio"
        container = docker_client.containers.get(model.provenance["container"])
        assert container.attrs["Mounts"] == []
        assert model.client.scene(np.zeros((1, 16000), np.float32)).shape == (1, 128)


# -- finding 5: no writes to the host's disk ------------------------------------------------
@pytest.mark.docker
def test_container_cannot_fill_the_hosts_disk_through_its_run_folder(
    docker_client, sneaky_image, no_leftover_containers
):
    """The module writes 50 MiB into /run/hear at load time: nothing lands on the host; the
    same 50 MiB in /tmp (its size-limited tmpfs) work."""
    source = ModelSource(kind="image", ref=sneaky_image, options={"fill_mib": 50})
    with DockerEngine().start(source) as model:
        _, to_run_dir, to_tmp = model.client.scene(np.zeros((1, 1600), np.float32))[0]
        run_dir, writable = _run_dir(docker_client, model.provenance["container"])
        size = sum(p.lstat().st_size for p in run_dir.iterdir())
        mode = run_dir.stat()
        assert [p.name for p in run_dir.iterdir()] == ["model.sock"]
    assert to_run_dir == 0.0, f"the container wrote {to_run_dir:.0f} MiB to the host"
    assert size < 4096 and not writable
    assert stat.S_IMODE(mode.st_mode) == 0o755 and mode.st_uid == os.getuid()
    assert to_tmp == 50.0  # scratch space is the container's own tmpfs


# -- finding 11: leftovers after kill -9 ----------------------------------------------------
@pytest.mark.docker
def test_kill_9_leftover_container_is_removed_by_the_next_run(
    docker_client, faulty_image, digits_task, tmp_path
):
    """`hear run` killed with SIGKILL while its model is busy leaves its container running
    with its run folder; the next `hear run` on this engine removes both."""
    args = ["--tasks-dir", str(digits_task.parent), "--results-dir", str(tmp_path)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "hear_runner", "run", "--model-image", faulty_image,
         "--model-options", '{"fault": "hang"}', *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    before = {c.id for c in hear_containers(docker_client)}
    deadline = time.monotonic() + 60
    mine: list = []
    while time.monotonic() < deadline and not mine:
        mine = [c for c in hear_containers(docker_client)
                if c.id not in before and c.name.startswith("hear-trust-faulty")]  # fmt: skip
        time.sleep(0.1)
    if not mine:
        proc.kill()
        pytest.fail("the model container never started")
    [container] = mine
    run_dir, _ = _run_dir(docker_client, container.name)
    try:
        time.sleep(1.5)  # the run is now waiting on the hanging model call
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(0.5)
        container.reload()
        assert container.status == "running" and run_dir.is_dir()  # what SIGKILL leaves

        again = hear("run", "--model-image", faulty_image, *args, "--probe", "linear")
        assert again.returncode == 0, again.stderr
        left = {c.id for c in hear_containers(docker_client)}
        assert container.id not in left, "leftover container"
        assert not run_dir.exists(), "leftover run folder"
        assert container.labels["org.hear.owner.pid"] == str(proc.pid)  # how it was known
    finally:  # whatever happened above (or an older hear), leave nothing behind
        with contextlib.suppress(Exception):
            container.remove(force=True)
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.mark.docker
def test_sweep_spares_live_owners_and_other_machines(docker_client, faulty_image):
    """Only containers of this machine and boot whose owner process is gone are removed."""
    from hear_runner.engines import leftovers

    gone = subprocess.Popen(["true"])
    gone.wait()
    host = leftovers.this_host()
    me = str(os.getpid())
    cases = {
        "dead-owner": {leftovers.OWNER_PID: str(gone.pid), leftovers.OWNER_HOST: host},
        "live-owner": {leftovers.OWNER_PID: me, leftovers.OWNER_HOST: host},
        "other-host": {leftovers.OWNER_PID: str(gone.pid), leftovers.OWNER_HOST: "elsewhere/1"},
        "reused-pid": {  # this pid, but not the process that started the container
            leftovers.OWNER_PID: "1", leftovers.OWNER_STARTED: "0", leftovers.OWNER_HOST: host,
        },
    }  # fmt: skip
    made = {}
    try:
        for name, labels in cases.items():
            made[name] = docker_client.containers.create(
                faulty_image, name=f"hear-test-sweep-{name}-{me}",
                labels={leftovers.RUNNER_LABEL: "1", **labels},
            )  # fmt: skip
        removed = leftovers.sweep_containers(docker_client, "/run/hear")
        left = {c.id for c in hear_containers(docker_client)}
        assert made["dead-owner"].name in removed and made["dead-owner"].id not in left
        assert made["reused-pid"].id not in left
        assert made["live-owner"].id in left and made["other-host"].id in left
    finally:
        for container in made.values():
            with contextlib.suppress(Exception):
                container.remove(force=True)


def _local_run(tmp: Path, tasks: Path, results: Path, module: str, options: str = "{}"):
    env = {**os.environ, "TMPDIR": str(tmp)}
    return subprocess.Popen(
        [sys.executable, "-m", "hear_runner", "run", "--model-module", module, "--model-options",
         options, "--tasks-dir", str(tasks), "--results-dir", str(results), "--probe", "linear"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def _hear_temp(tmp: Path) -> list[str]:
    return sorted(
        p.name for p in tmp.iterdir() if p.name.startswith(("hear-contract-", "hear-server-"))
    )


def _wait_for(check, seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_local_engine_leaves_no_temp_files_on_any_exit(digits_task, tmp_path):
    """Normal end, a load error and SIGTERM remove the server's package copy and log; after
    SIGKILL they stay (named with the dead pid) and the next run removes them."""
    tmp, tasks, results = tmp_path / "tmp", digits_task.parent, tmp_path / "results"
    tmp.mkdir()
    ok = _local_run(tmp, tasks, results, "numpy_logmel")
    assert ok.wait(300) == 0, ok.communicate()[1]
    assert _hear_temp(tmp) == []

    failed = _local_run(tmp, tasks, results, "broken_load")
    assert failed.wait(120) == 1
    assert _hear_temp(tmp) == []

    calls = tmp_path / "calls.log"
    os.environ["HEAR_TEST_CALL_LOG"] = str(calls)  # the server's pid, to end it afterwards
    try:
        for signum in (signal.SIGTERM, signal.SIGKILL):
            calls.unlink(missing_ok=True)
            proc = _local_run(tmp, tasks, results, "faulty", '{"fault": "hang"}')
            assert _wait_for(lambda: calls.exists() and calls.read_text().strip()), "no call"
            proc.send_signal(signum)
            proc.wait(60)
            server = int(calls.read_text().split()[1])
            if signum == signal.SIGTERM:
                assert proc.returncode == 128 + signum
                assert _hear_temp(tmp) == []
            else:
                left = _hear_temp(tmp)
                assert len(left) == 2 and all(f"-{proc.pid}-" in n for n in left), left
                os.kill(server, signal.SIGKILL)  # the orphaned server (hangs for an hour)
    finally:
        del os.environ["HEAR_TEST_CALL_LOG"]

    again = _local_run(tmp, tasks, results, "numpy_logmel")
    assert again.wait(300) == 0, again.communicate()[1]
    assert _hear_temp(tmp) == []


def test_temp_sweep_spares_live_owners_and_other_names(tmp_path):
    from hear_runner.engines import leftovers

    gone = subprocess.Popen(["true"])
    gone.wait()
    names = {
        f"hear-contract-{gone.pid}-abc_12": True,  # owner gone: removed
        f"hear-server-{gone.pid}-x1y2z3.log": True,
        f"hear-run-{gone.pid}-q9": True,
        f"hear-contract-{os.getpid()}-abc": False,  # owner alive
        "hear-contract-abcd1234": False,  # an older hear's name: no owner to judge
        f"other-{gone.pid}-abc": False,
    }
    for name in names:
        path = tmp_path / name
        if name.endswith(".log"):
            path.write_text("x")
        else:
            path.mkdir()
            (path / "inside").write_text("x")
    removed = leftovers.sweep_temp(tmp_path)
    assert {p.name for p in removed} == {n for n, gone_ in names.items() if gone_}
    assert {p.name for p in tmp_path.iterdir()} == {n for n, gone_ in names.items() if not gone_}


# -- finding 13: an image's own PYTHONPATH ------------------------------------------------
@pytest.mark.docker
@pytest.mark.parametrize("where", ["app", "workdir"])
def test_image_that_sets_pythonpath_starts(
    docker_client, base_image, where, no_leftover_containers
):
    """ENV PYTHONPATH=/app no longer hides the server: a module on that path and a module in
    the WORKDIR both load."""
    folder = "/app" if where == "app" else "/opt/model"
    tag = build(
        docker_client, base_image, f"hear-test/pythonpath-{where}:latest",
        f"WORKDIR /opt/model\nCOPY numpy_logmel.py {folder}/\n"
        "ENV PYTHONPATH=/app HEAR_MODULE=numpy_logmel\n",
        {"numpy_logmel.py": (HEAR_MODULES / "numpy_logmel.py").read_text()},
    )  # fmt: skip
    with DockerEngine().start(ModelSource(kind="image", ref=tag)) as model:
        assert model.client.hello.model == "numpy_logmel"
        assert model.client.scene(np.zeros((2, 16000), np.float32)).shape == (2, 128)


@pytest.mark.docker
def test_validate_names_an_image_whose_entrypoint_was_replaced(
    docker_client, base_image, no_leftover_containers
):
    entrypoint = ["sh", "-c", START_SERVER]
    tag = build(
        docker_client, base_image, "hear-test/own-entrypoint:latest",
        "WORKDIR /opt/model\nCOPY numpy_logmel.py /opt/model/\nENV HEAR_MODULE=numpy_logmel\n"
        f"ENTRYPOINT {json.dumps(entrypoint)}\n",
        {"numpy_logmel.py": (HEAR_MODULES / "numpy_logmel.py").read_text()},
    )  # fmt: skip
    result = hear("validate", "--json", "--model-image", tag, "--long-seconds", "0")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    failed = {c["name"]: c["detail"] for c in report["checks"] if c["result"] == "fail"}
    assert set(failed) == {"load"}, failed
    line = failed["load"]
    assert tag in line and json.dumps(entrypoint) in line and "\n" not in line
    assert '["python3", "/opt/hear/hear_contract/launch.py"]' in line  # hear/base's


@pytest.mark.docker
def test_validate_accepts_hear_bases_entrypoint(
    docker_client, faulty_image, no_leftover_containers
):
    result = hear("validate", "--json", "--model-image", faulty_image, "--long-seconds", "0")
    report = json.loads(result.stdout)
    assert result.returncode == 0, [c for c in report["checks"] if c["result"] == "fail"]


def test_launcher_finds_the_server_without_pythonpath(tmp_path):
    """The launcher outside Docker: hear_contract found beside it although PYTHONPATH names
    another folder, and a module in the working directory importable (as with python -m)."""
    from hear_runner.contract import package, wire

    root = tmp_path / "opt-hear"
    package.copy_package(root)
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(HEAR_MODULES / "numpy_logmel.py", work)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "app"), "HEAR_MODULE": "numpy_logmel"}
    env.pop("HEAR_SOCKET", None)
    served = subprocess.run(
        [sys.executable, str(root / "hear_contract" / "launch.py")],
        cwd=work, stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=60,
    )  # fmt: skip
    assert served.returncode == 0, served.stderr.decode()
    hello, _ = wire.read_frame(io.BytesIO(served.stdout))
    assert hello["op"] == "hello" and hello["model"] == "numpy_logmel"
