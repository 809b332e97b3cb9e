"""Saved trainings of an unfinished probe stage: a stopped run goes on where it was.

At full size a probe stage trains for hours on a CPU. Each training (a faithful or
linear point, a fast group of points) is saved as it finishes, with torch's random
state after it, under a key made of everything its result depends on: the bytes of the
embeddings and targets, the task's metadata, labels and folds, the mode, seeds and
configurations, the versions of torch, numpy and scikit-learn, and the source of
hear-runner and of the task's metric plugins. Run again with the same inputs, the stage
loads what was saved and trains the rest; with torch's random state restored, faithful's
single stream goes on as if never stopped, so a resumed stage ends with the numbers of
an uninterrupted one. Saved trainings under another key are never read; those made by
other code (which can never match again) are removed, the others kept for their
settings. A finished stage removes its own.

A training itself can outlast a run: at full size one grid point trains for hours. So
each training also saves its whole state part way (:class:`Checkpoint`: weights, the
optimizer's moments, early stopping's record, the best weights so far, every random
generator) at the end of an epoch every few minutes, and a resumed training goes on from
the last such epoch with the numbers it would have had if never stopped.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import math
import os
import platform
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from hear_runner.errors import HearError
from hear_runner.files import OutputError, atomic_save, atomic_write
from hear_runner.metrics import get_metric
from hear_runner.probes.data import ProbeProblem

T = TypeVar("T")

#: The saved trainings' folder: `hear probe` keeps them in the embeddings folder
#: (``<folder>/.probe-progress``), `hear run` beside the task's record
#: (``<results>/<model>/<task>.probe-progress``).
PROGRESS_FOLDER = ".probe-progress"
#: A key folder's manifest: the settings, and the code that made it.
MANIFEST = "manifest.json"
#: A training part way: ``<name>.partial`` beside where ``<name>.pt`` will be.
PARTIAL = ".partial"
#: Seconds between a training's saved states (``HEAR_CHECKPOINT_SECONDS`` to change).
CHECKPOINT_SECONDS = 300.0
CHECKPOINT_ENV = "HEAR_CHECKPOINT_SECONDS"


@dataclass(frozen=True)
class EpochDone:
    """Where a training stands after an epoch. At full size one training runs for hours,
    and "1 of 8 trainings" cannot tell one at epoch 30 from one near the 500-epoch cap."""

    epoch: int
    max_epochs: int
    best: float  # the best validation check so far (-inf before the first)
    best_epoch: int  # 0 before the first check
    seconds_per_epoch: float  # over this run's epochs of the training

    def line(self) -> str:
        """``epoch 230 of at most 500 (4.5 s an epoch), best check 0.612 at epoch 200``."""
        best = (f"best check {self.best:.4g} at epoch {self.best_epoch}"
                if self.best_epoch else "no check yet")  # fmt: skip
        return (f"epoch {self.epoch} of at most {self.max_epochs} "
                f"({self.seconds_per_epoch:.3g} s an epoch), {best}")  # fmt: skip


class Checkpoint:
    """One training's state part way, for a training loop to save and resume from.

    The loop calls :meth:`load` once, after building its network (whose random draws the
    state then overwrites), and at the end of each epoch :meth:`epoch_end`, then, where
    :meth:`due`, :meth:`save`: every :attr:`every` seconds. This base class keeps nothing;
    it counts the seconds, and tells :attr:`on_epoch` (where set) each epoch's end.
    """

    every = math.inf

    def __init__(self) -> None:
        self.opened = time.perf_counter()
        self.last = self.opened
        self.before = 0.0  # seconds the training ran in earlier, stopped runs
        self.on_epoch: Callable[[EpochDone], None] | None = None
        self._first_epoch: int | None = None  # this run's first

    def epoch_end(self, epoch: int, max_epochs: int, best: float, best_epoch: int) -> None:
        """The loop finished ``epoch`` (of at most ``max_epochs``); its best check so far."""
        if self.on_epoch is None:
            return
        if self._first_epoch is None:
            self._first_epoch = epoch
        per_epoch = (time.perf_counter() - self.opened) / (epoch - self._first_epoch + 1)
        self.on_epoch(EpochDone(epoch, max_epochs, best, best_epoch, per_epoch))

    def seconds(self) -> float:
        """The training's seconds so far, in this run and the runs it went on from."""
        return self.before + time.perf_counter() - self.opened

    def load(self) -> dict[str, Any] | None:
        """The state last saved (torch's generators set back as they were then), or None."""
        return None

    def due(self) -> bool:
        """Whether :attr:`every` seconds have passed since the last save (or the start)."""
        return time.perf_counter() - self.last >= self.every

    def save(self, epoch: int, state: dict[str, Any]) -> None:
        """Keep ``state``, the training's after ``epoch``, for a run that goes on from it."""
        self.last = time.perf_counter()
        self._write({**state, "epoch": epoch, "seconds": self.seconds()})

    def _write(self, state: dict[str, Any]) -> None:
        pass


class Steps:
    """Trainings by name: :meth:`run` trains, or loads what an earlier run saved."""

    def run(self, name: str, train: Callable[[], T], trainings: int = 1) -> T:
        """``train()``'s result (``trainings`` networks: a fast group holds several)."""
        return train()

    def checkpoint(self, name: str) -> Checkpoint:
        """Where the training ``name`` saves its state part way (here: nowhere)."""
        return Checkpoint()


#: Nothing saved, nothing loaded (a cluster's node, the benches).
NO_STEPS = Steps()


class ProbeProgress(Steps):
    """One probe stage's saved trainings, in ``folder/<key>/``."""

    def __init__(self, folder: Path, problem: ProbeProblem, settings: dict[str, Any]) -> None:
        self.folder, self.problem, self.settings = folder, problem, settings
        self.resumed = 0  # trainings loaded rather than trained
        self.continued: list[int] = []  # the epoch each training resumed part way went on from
        self.checkpoint_seconds = checkpoint_seconds()

    @functools.cached_property
    def code(self) -> str:
        """hear-runner's source, the metric plugins' and the numeric libraries' versions."""
        import sklearn

        digest = hashlib.sha256()
        files = sorted(Path(__file__).resolve().parents[1].rglob("*.py"))  # hear_runner
        for name in self.problem.metadata.evaluation:
            metric = get_metric(name)
            for fn in (metric.score, metric.score_arrays):
                files += _module_sources(fn) if fn is not None else []
        for path in dict.fromkeys(files):
            digest.update(f"{path}\n".encode() + path.read_bytes())
        versions = [sys.version, platform.machine(), torch.__version__, np.__version__,
                    sklearn.__version__]  # fmt: skip
        digest.update(json.dumps(versions).encode())
        return digest.hexdigest()[:16]

    @functools.cached_property
    def key(self) -> str:
        """The inputs' fingerprint: every byte of the problem, the settings, the code."""
        digest = hashlib.sha256(self.code.encode())
        digest.update(json.dumps(self.settings, sort_keys=True, default=str).encode())
        problem = self.problem
        digest.update(problem.metadata.model_dump_json().encode())
        folds = [[f.name, list(f.train), f.valid, f.test] for f in problem.folds]
        digest.update(json.dumps([problem.labels, folds]).encode())
        for name in sorted(problem.splits):
            split = problem.splits[name]
            digest.update(json.dumps([name, list(split.embeddings.shape), split.files]).encode())
            for chunk in split.chunks():
                digest.update(chunk.tobytes())
            for array in (split.targets, split.frame_clip, split.frame_ms):
                digest.update(np.ascontiguousarray(array).tobytes())
            digest.update(json.dumps(split.reference, sort_keys=True, default=str).encode())
        return digest.hexdigest()[:24]

    @property
    def here(self) -> Path:
        return self.folder / self.key

    def scope(self, prefix: str) -> Steps:
        """The steps named ``<prefix>-<name>`` (``prefix``: a seed and fold)."""
        return _Scoped(self, prefix)

    def run(self, name: str, train: Callable[[], T], trainings: int = 1) -> T:
        """``train()``'s result, from the file an earlier run saved where there is one."""
        name = _file_name(name)
        saved = self._load(f"{name}.pt")
        if saved is not None:
            self.resumed += trainings
            return saved  # type: ignore[no-any-return]
        value = train()
        self._save(f"{name}.pt", value)
        (self.here / f"{name}{PARTIAL}").unlink(missing_ok=True)
        return value

    def checkpoint(self, name: str) -> Checkpoint:
        return _SavedCheckpoint(self, _file_name(name))

    def _load(self, file: str) -> Any | None:
        """What an earlier run saved in ``file``, torch's generators set back as they were
        after it; None where nothing is saved, or it is damaged (then removed: trained again;
        it was renamed into place whole, so damage is the disk's)."""
        path = self.here / file if self.folder.exists() else None
        if path is None or not path.exists():
            return None
        try:
            value, rng = torch.load(path, weights_only=False)
        except Exception:
            path.unlink(missing_ok=True)
            return None
        _set_random_state(rng)
        return value

    def _save(self, file: str, value: Any) -> None:
        """Written whole or not at all (files.py); a full disk is one line naming the file,
        raised at once rather than after hours more training whose record could not be
        written either. Nothing saved before is lost."""
        here = self.here
        try:
            if not here.exists():
                try:
                    here.mkdir(parents=True, exist_ok=True)  # another run may race
                except OSError as e:
                    raise OutputError(here, e) from None
                manifest = {"code": self.code, **self.settings}
                atomic_write(here / MANIFEST, json.dumps(manifest, default=str))
                self._remove_other_code()
            state = (value, _random_state())
            atomic_save(here / file, lambda handle: torch.save(state, handle))
        except OutputError:
            if not any(p.name != MANIFEST for p in here.glob("*")):  # nothing saved: no folder
                shutil.rmtree(here, ignore_errors=True)
                with contextlib.suppress(OSError):
                    self.folder.rmdir()  # only if empty
            raise

    def _remove_other_code(self) -> None:
        """Saved trainings made by other code: never resumable, so not kept."""
        for other in self.folder.iterdir():
            manifest = other / MANIFEST
            try:
                code = json.loads(manifest.read_text()).get("code")
            except (OSError, ValueError):
                continue
            if other.name != self.key and code != self.code:
                shutil.rmtree(other, ignore_errors=True)

    def finish(self) -> None:
        """The stage is done: its saved trainings go, and the folder if nothing else is in it."""
        if "key" not in self.__dict__:
            return  # nothing was saved or looked up: nothing to remove, nothing to hash
        shutil.rmtree(self.here, ignore_errors=True)
        if self.folder.exists() and not any(self.folder.iterdir()):
            self.folder.rmdir()


def resumed_line(loaded: int, continued: list[int], total: int, saved: str) -> str | None:
    """What a probe stage took from its saved progress, in one line (None: nothing)."""
    if not loaded and not continued:
        return None
    line = f"resumed: {loaded} of {total} trainings were loaded from {saved}"
    if continued:
        epochs = ", ".join(map(str, continued))
        line += f"; {len(continued)} went on from where it stopped (after epoch {epochs})"
    return line


def checkpoint_seconds() -> float:
    """``HEAR_CHECKPOINT_SECONDS`` if set, else :data:`CHECKPOINT_SECONDS`."""
    value = os.environ.get(CHECKPOINT_ENV, "").strip()
    if not value:
        return CHECKPOINT_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not seconds >= 0:
        raise HearError(f"{CHECKPOINT_ENV}={value!r} is not a number of seconds (0 or more)")
    return seconds


class _SavedCheckpoint(Checkpoint):
    """A training's state part way, in ``<key folder>/<name>.partial``."""

    def __init__(self, progress: ProbeProgress, name: str) -> None:
        super().__init__()
        self.progress, self.file = progress, f"{name}{PARTIAL}"
        self.every = progress.checkpoint_seconds

    def load(self) -> dict[str, Any] | None:
        state = self.progress._load(self.file)
        if state is None:  # nothing saved, or damaged: the training starts over
            return None
        self.before = float(state["seconds"])
        self.progress.continued.append(int(state["epoch"]))
        return state  # type: ignore[no-any-return]

    def _write(self, state: dict[str, Any]) -> None:
        self.progress._save(self.file, state)


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def _module_sources(fn: Callable[..., Any]) -> list[Path]:
    """The source files of the package (or lone module) defining ``fn``: a metric plugin's."""
    module = sys.modules.get(getattr(inspect.unwrap(fn), "__module__", None) or "")
    top = sys.modules.get(module.__name__.split(".")[0]) if module else None
    if top is None or not getattr(top, "__file__", None):
        return []
    path = Path(str(top.__file__)).resolve()
    return sorted(path.parent.rglob("*.py")) if hasattr(top, "__path__") else [path]


def _random_state() -> dict[str, Any]:
    """torch's generators: the CPU's, and each GPU's (faithful's dropout draws there)."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return {"cpu": torch.get_rng_state(), "cuda": cuda}


def _set_random_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])


class Watched(Steps):
    """``steps`` whose trainings tell ``on_epoch`` where they stand after every epoch."""

    def __init__(self, steps: Steps, on_epoch: Callable[[EpochDone], None]) -> None:
        self.steps, self.on_epoch = steps, on_epoch

    def run(self, name: str, train: Callable[[], T], trainings: int = 1) -> T:
        return self.steps.run(name, train, trainings)

    def checkpoint(self, name: str) -> Checkpoint:
        checkpoint = self.steps.checkpoint(name)
        checkpoint.on_epoch = self.on_epoch
        return checkpoint


class _Scoped(Steps):
    def __init__(self, progress: ProbeProgress, prefix: str) -> None:
        self.progress, self.prefix = progress, prefix

    def run(self, name: str, train: Callable[[], T], trainings: int = 1) -> T:
        return self.progress.run(f"{self.prefix}-{name}", train, trainings)

    def checkpoint(self, name: str) -> Checkpoint:
        return self.progress.checkpoint(f"{self.prefix}-{name}")
