"""A leaderboard site's folder: ``site.json`` (what it is and which references it shows) and
``records/``, a results folder of the records its pages are rendered from.

``records/`` is read by hear_runner.results.reader like any results folder, so the pages
show what `hear leaderboard` shows of it. A copy from a results folder takes the newest
record of each (model, task), the files beside it (test predictions, heareval's scores) and
the run manifests that name it, at their paths relative to the results folder; submissions
(``records/submissions/``, added from packs) are kept across copies. A folder that is not a
site and not empty is never written into: it is a user's.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hear_runner.errors import HearError, first_field_error
from hear_runner.files import atomic_directory, atomic_write
from hear_runner.results.manifest import find_manifests
from hear_runner.results.reader import Results

SITE_FILE = "site.json"
RECORDS = "records"
SUBMISSIONS = "submissions"  # records/submissions/<model slug>/: one folder per added pack
SCHEMA: Literal["hear-leaderboard-site"] = "hear-leaderboard-site"


class SiteInfo(BaseModel):
    """``site.json``: a folder is a leaderboard site when it holds one."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    schema_: Literal["hear-leaderboard-site"] = Field(default=SCHEMA, alias="schema")
    version: Literal[1] = 1
    references: list[str] = []  # reference results shown beside the records (--reference)

    def write(self, site_dir: Path) -> None:
        atomic_write(site_dir / SITE_FILE, self.model_dump_json(by_alias=True, indent=2) + "\n")


def open_site(site_dir: Path) -> SiteInfo | None:
    """The site's ``site.json``; None for a folder that does not exist or is empty. Anything
    else (a file, a folder with other things in it) is refused: it is not ours to write."""
    if not site_dir.exists():
        return None
    if not site_dir.is_dir():
        raise HearError(f"{site_dir}: not a folder; a leaderboard site is written into a folder")
    info = site_dir / SITE_FILE
    if not info.is_file():
        if any(site_dir.iterdir()):
            raise HearError(
                f"{site_dir}: not empty and not a leaderboard site (no {SITE_FILE}): "
                "refusing to write into it; name a new or empty folder"
            )
        return None
    try:
        return SiteInfo.model_validate_json(info.read_text())
    except OSError as e:
        raise HearError(f"{info}: not readable ({e.strerror})") from None
    except ValidationError as e:
        raise HearError(f"{info}: not a leaderboard site file: {first_field_error(e)}") from None


def copy_records(results: Results, records_dir: Path) -> list[str]:
    """Replace ``records_dir`` with the newest record of each (model, task) of ``results``,
    the files beside each and the manifests naming them; ``submissions/`` stays. Notes say
    what was left out."""
    source = results.folder
    copied: set[Path] = set()
    notes: list[str] = []
    with atomic_directory(records_dir) as staging:
        for found in results.records():
            record = found.record
            files = [found.path]
            for name in (record.predictions_file, record.heareval_scores_file):
                if name and (found.path.parent / name).is_file():
                    files.append(found.path.parent / name)
            for path in files:
                _copy(path, staging / path.relative_to(source))
            copied.add(found.path.resolve())
        for manifest in find_manifests(source, notes):
            if any(path in copied for path in manifest.records):
                _copy(manifest.path, staging / manifest.path.relative_to(source))
        kept = records_dir / SUBMISSIONS
        if kept.is_dir():
            shutil.copytree(kept, staging / SUBMISSIONS, dirs_exist_ok=True)
    return notes


def _copy(path: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(path, target)
