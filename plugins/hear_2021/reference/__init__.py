"""HEAR 2021's published leaderboard as data: ``hear2021-leaderboard.json`` beside this file.

The file is a versioned record of facts (its ``source`` names the repository, path and
commit every score was copied from); :func:`load` reads it into what the
``hear_register_reference_results`` hook registers. A file that does not fit is a one-line
error naming it and the field at fault.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from hear_runner.api import HearError, ReferenceResults, ReferenceTask

FILE = Path(__file__).with_name("hear2021-leaderboard.json")
SCHEMA = "hear-reference-results"


class Submission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    scores: dict[str, float]  # by released task folder; absent: not published


class ReferenceFile(BaseModel):
    """The file's layout, version 1."""

    model_config = ConfigDict(extra="forbid")

    schema_: Literal["hear-reference-results"]
    version: Literal[1]
    name: str
    title: str
    source: dict[str, Any]
    tasks: dict[str, ReferenceTask]
    submissions: list[Submission]


def load(path: Path = FILE) -> ReferenceResults:
    """The reference results in ``path`` (the shipped HEAR 2021 leaderboard by default)."""
    try:
        raw = json.loads(path.read_text())
        if isinstance(raw, dict) and "schema" in raw:
            raw["schema_"] = raw.pop("schema")
        data = ReferenceFile.model_validate(raw)
        names = [s.name for s in data.submissions]
        if len(set(names)) != len(names):
            raise HearError(f"{path}: a submission is listed twice")
        return ReferenceResults(
            name=data.name,
            title=data.title,
            source=data.source,
            tasks=data.tasks,
            rows={s.name: s.scores for s in data.submissions},
        )
    except (OSError, json.JSONDecodeError) as e:
        raise HearError(f"{path}: cannot be read as JSON: {e}") from None
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or e.title
        raise HearError(f"{path}: {where}: {first['msg']}") from None
