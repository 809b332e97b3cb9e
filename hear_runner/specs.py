"""What plugins register: one frozen pydantic spec per hook, all under the same rule.

Every spec has a ``name``, unique among the specs of its kind across every loaded plugin
(a second registration of a name is an error naming both plugins), and a ``plugin`` field
that the runner fills in with the registering plugin's entry-point name: a plugin that sets
it is refused, so a listing can never credit the wrong plugin. The specs are frozen: what a
plugin registered is what every part of the runner sees.

Public through :mod:`hear_runner.api`; the fields documented there are stable.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hear_runner.errors import HearError

EmbeddingType = Literal["scene", "event"]
PredictionType = Literal["multiclass", "multilabel"]
SplitMode = Literal["trainvaltest", "new_split_kfold", "presplit_kfold"]


class PluginSpec(BaseModel):
    """The fields and rule every registered spec shares."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    #: What one spec is called in messages ("model", "metric", "task").
    noun: ClassVar[str] = "spec"

    name: str = Field(min_length=1)
    plugin: str = ""  # filled in by the runner: the entry-point name that registered it

    @model_validator(mode="before")
    @classmethod
    def _plugin_is_filled_in_by_the_runner(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("plugin"):
            raise ValueError(
                "'plugin' is filled in by the runner from the registering plugin's entry-point "
                "name; do not set it"
            )
        return data

    def registered_by(self, plugin: str, plugin_folder: Path | None) -> Self:
        """This spec as registered by ``plugin``, whose module lives in ``plugin_folder``."""
        return self.model_copy(update={"plugin": plugin})


class TaskSource(PluginSpec):
    """A task a plugin can write into a tasks directory (generate, convert or download).

    ``prepare(tasks_dir, scale)`` writes the task folder (hear-preprocess layout) under
    ``tasks_dir`` and returns it; ``folder_name(scale)`` is that folder's name, known without
    preparing it (so ``hear tasks list`` can say whether the data is here).
    """

    noun: ClassVar[str] = "task"

    suite: str  # a group of tasks prepared together (``hear tasks prepare SUITE``)
    description: str
    domain: str  # speech | environment | music ("" where unknown)
    embedding_type: EmbeddingType
    prediction_type: PredictionType
    split_mode: SplitMode
    prepare: Callable[[Path, str], Path]
    folder_name: Callable[[str], str]
    scales: tuple[str, ...] = ("full",)
    scale_factor: bool = False  # also takes a positive number: a factor of its full size

    def accepts_scale(self, scale: str) -> bool:
        """``scale`` is one of :attr:`scales`, or a positive number where the task takes one."""
        if scale in self.scales:
            return True
        try:
            return self.scale_factor and 0 < float(scale) < float("inf")
        except ValueError:
            return False


class Metric(PluginSpec):
    """A named score, as heareval names it (a task's ``evaluation`` list names metrics).

    Scene metrics: ``score(targets, scores, labels) -> float`` with multi-hot targets and
    predicted scores, both (n_clips, n_labels), and the label vocabulary in column order.
    Event metrics (``kind="event"``): ``score(reference, predicted, labels) -> {sub-score:
    value}`` on events ``{"label", "start", "end"}`` (ms) per file; the first sub-score is the
    metric's value. An event metric may add ``score_arrays(reference, predicted, labels)``,
    the same scores, exactly, on ``hear_runner.event_arrays.EventArrays``: a probe's
    selection then scores its many predicted event lists without building them as dicts.
    """

    noun: ClassVar[str] = "metric"

    score: Callable[..., Any]
    higher_is_better: bool = True
    kind: EmbeddingType = "scene"
    score_arrays: Callable[..., Any] | None = None


class ModelSpec(PluginSpec):
    """A named model: its image, and where to build it from when the engine does not have it.

    A relative ``build`` folder is resolved against the folder of the registering plugin's
    module, so a plugin ships its image folder as package data; an absolute one is kept.
    """

    noun: ClassVar[str] = "model"

    image: str  # a tag, e.g. hear/torchcrepe:latest
    build: Path | None = None  # an image folder with a Dockerfile
    options: dict[str, Any] = Field(default_factory=dict)  # passed as HEAR_MODEL_OPTIONS
    sample_rate: int | None = None  # informative; the image's hello is what counts
    gpu: bool = False  # whether it wants a GPU
    description: str = ""

    def registered_by(self, plugin: str, plugin_folder: Path | None) -> Self:
        build = self.build
        if build is not None and not build.is_absolute():
            if plugin_folder is None:
                raise HearError(
                    f"plugin {plugin!r}: model {self.name!r} has a relative build folder "
                    f"{build}, but the plugin has no module file to resolve it against: give "
                    "an absolute path"
                )
            build = (plugin_folder / build).resolve()
        return self.model_copy(update={"plugin": plugin, "build": build})


class ReferenceTask(BaseModel):
    """One task of a published table: the released task it was scored on, and how."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = Field(min_length=1)  # the task's version; a record of another is not compared
    metric: str = Field(min_length=1)  # the primary metric the published scores are in
    column: str = ""  # the source's own column header, for tracing a score back
    task_name: str = ""
    mode: str = ""
    mean_of_folders: tuple[str, ...] = ()  # where the published score averages folders


class ReferenceResults(PluginSpec):
    """Published scores to show beside a user's records (``hear leaderboard --reference``).

    ``tasks`` is keyed by released task folder name; ``rows`` maps each published
    submission to its scores, keyed by those folders (a missing key: no published score).
    Facts only: ``source`` says where every score was read (repository, path, commit, URL).
    """

    noun: ClassVar[str] = "reference"

    title: str
    source: dict[str, Any]
    tasks: dict[str, ReferenceTask]
    rows: dict[str, dict[str, float]]

    @model_validator(mode="after")
    def _scores_are_of_its_tasks(self) -> Self:
        for submission, scores in self.rows.items():
            for folder, score in scores.items():
                if folder not in self.tasks:
                    raise ValueError(f"rows.{submission}: {folder!r} is not one of its tasks")
                if not math.isfinite(score):
                    raise ValueError(f"rows.{submission}.{folder}: {score} is not finite")
        return self
