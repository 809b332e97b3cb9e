"""Example hear task plugin: your own clips and labels become ``hear run --task my_task``.

Set ``HEAR_MY_TASK_DIR`` to a folder holding your audio files and a ``labels.csv`` with the
columns ``file,label,split`` (split: train, valid or test), then ``hear tasks prepare my_task``.
"""

import os
from pathlib import Path

from hear_runner.api import HearError, TaskSource, hookimpl, read_labels_csv, write_task_folder

FOLDER = "my_task-1.0-full"  # the task folder's name under --tasks-dir


def prepare(tasks_dir: Path, scale: str) -> Path:
    clips_dir = os.environ.get("HEAR_MY_TASK_DIR")
    if not clips_dir:
        raise HearError("my_task: set HEAR_MY_TASK_DIR to a folder of clips with a labels.csv")
    clips = read_labels_csv(Path(clips_dir) / "labels.csv")
    return write_task_folder(tasks_dir / FOLDER, clips, task_name="my_task")


@hookimpl
def hear_register_tasks(register):
    register(
        TaskSource(
            name="my_task",
            suite="example",
            description="My own clips and labels (HEAR_MY_TASK_DIR)",
            domain="environment",
            embedding_type="scene",
            prediction_type="multiclass",
            split_mode="trainvaltest",
            prepare=prepare,
            folder_name=lambda scale: FOLDER,
        )
    )
