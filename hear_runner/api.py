"""The public plugin API: everything a hear plugin imports, and nothing else.

A plugin (built-in or third-party) imports only from this module; every name under
``__all__`` is documented in docs/plugins.md and kept stable across minor versions.
The rest of ``hear_runner`` is internal and may change.

- :data:`hookimpl` marks a plugin's hook implementations (the hooks: :mod:`hookspecs`).
- :class:`TaskSource`, :class:`Metric`, :class:`ModelSpec`, :class:`ReferenceResults`: what
  the hooks register.
- :func:`write_task_folder`, :func:`read_labels_csv`, :class:`LabelledClip`: a task folder
  from a folder of clips and labels; :func:`build_folder` and the ``write_*`` helpers for
  plugins that generate their own audio.
- :func:`download_task`: install a downloadable task's archives (checked, resumable).
- :func:`images_dir`: hear-runner's own model image folders (for plugins naming them).
- :class:`HearError`, :class:`TaskError`: the errors the CLI prints as one line.
"""

from __future__ import annotations

from pathlib import Path

from hear_runner.build.shipped import images_dir
from hear_runner.errors import HearError, TaskError
from hear_runner.event_arrays import EventArrays
from hear_runner.hookspecs import hookimpl
from hear_runner.metrics import Events, EventScoreFn, SceneScoreFn
from hear_runner.specs import (
    EmbeddingType,
    Metric,
    ModelSpec,
    PluginSpec,
    PredictionType,
    ReferenceResults,
    ReferenceTask,
    SplitMode,
    TaskSource,
)
from hear_runner.tasks import download
from hear_runner.tasks.download import ArchiveSpec, TaskSpec
from hear_runner.tasks.metadata import TaskMetadata
from hear_runner.tasks.writer import (
    LabelledClip,
    build_folder,
    params_hash,
    read_labels_csv,
    write_metadata,
    write_split,
    write_task_folder,
    write_vocabulary,
    write_wav,
)

__all__ = [
    "ArchiveSpec",
    "EmbeddingType",
    "EventArrays",
    "EventScoreFn",
    "Events",
    "HearError",
    "LabelledClip",
    "Metric",
    "ModelSpec",
    "PluginSpec",
    "PredictionType",
    "ReferenceResults",
    "ReferenceTask",
    "SceneScoreFn",
    "SplitMode",
    "TaskError",
    "TaskMetadata",
    "TaskSource",
    "TaskSpec",
    "build_folder",
    "download_task",
    "hookimpl",
    "images_dir",
    "params_hash",
    "read_labels_csv",
    "write_metadata",
    "write_split",
    "write_task_folder",
    "write_vocabulary",
    "write_wav",
]


def download_task(task: TaskSpec, tasks_dir: Path, sample_rate: int = 48000) -> Path:
    """Install every archive of ``task`` into ``tasks_dir``; returns its (first) task folder.

    ``task`` has a ``name`` and ``archives``, each with ``folder`` (the task folder inside),
    ``file``, ``url``, and ``md5`` or ``sha256``. Archives are fetched resumably (through
    ``$HEAR_MIRROR`` when set), checked against their digest, unpacked with limits, and the
    audio resampled to ``sample_rate`` if the archive holds another rate. A folder already
    installed is reused.
    """
    return download.download_task(task, tasks_dir, sample_rate)
