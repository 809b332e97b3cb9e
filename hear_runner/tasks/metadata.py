"""The task metadata hear-preprocess writes (``task_metadata.json``), as a pydantic model."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class TaskMetadata(BaseModel):
    """Fields heareval reads; unknown fields are kept (hear-preprocess writes many)."""

    model_config = ConfigDict(extra="allow")

    task_name: str = Field(min_length=1)
    version: str
    embedding_type: Literal["scene", "event"]
    prediction_type: Literal["multiclass", "multilabel"]
    split_mode: Literal["trainvaltest", "new_split_kfold", "presplit_kfold"]
    sample_duration: float | None = Field(default=None, gt=0)
    evaluation: list[str] = Field(min_length=1)
    nfolds: int | None = Field(default=None, ge=2)
    mode: str | None = None
    use_scoring_for_early_stopping: bool | None = None
    evaluation_params: dict[str, Any] = {}

    @property
    def primary_metric(self) -> str:
        """heareval's convention: the first evaluation metric drives model selection."""
        return self.evaluation[0]
