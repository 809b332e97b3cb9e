"""Where each page of a site lies and how one page links to another: relative links only,
so the folder works opened from disk and from any static host, wherever it is put.

Page names are slugs of model and column names, lower-cased (a case-insensitive file
system must not merge two) and made unique; the same names always give the same files.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import quote

from hear_runner.names import slug
from hear_runner.report.board import Links

TASKS, MODELS, ASSETS = "tasks", "models", "assets"


def unique_slugs(names: Iterable[str]) -> dict[str, str]:
    """A distinct file stem for each name, in the names' sorted order."""
    found: dict[str, str] = {}
    taken: set[str] = set()
    for name in sorted(set(names)):
        base = slug(name, keep="-_.", default="page").lower().strip(".")
        stem, n = base or "page", 2
        while stem in taken:
            stem, n = f"{base}-{n}", n + 1
        taken.add(stem)
        found[name] = stem
    return found


@dataclass
class SiteMap:
    """The page of each model (the user's) and of each task column."""

    models: dict[str, str]
    tasks: dict[str, str]

    @classmethod
    def of(cls, models: Iterable[str], columns: Iterable[str]) -> SiteMap:
        return cls(unique_slugs(models), unique_slugs(columns))

    def model_file(self, model: str) -> str:
        return f"{MODELS}/{self.models[model]}.html"

    def task_file(self, column: str) -> str:
        return f"{TASKS}/{self.tasks[column]}.html"

    def pages(self) -> list[str]:
        """Every page's path in the site, index first."""
        return [
            "index.html",
            *(self.task_file(c) for c in self.tasks),
            *(self.model_file(m) for m in self.models),
        ]

    def table_links(self, depth: int) -> Links:
        """The leaderboard table's links from a page ``depth`` folders down."""
        return Links(
            {m: href(self.model_file(m), depth) for m in self.models},
            {c: href(self.task_file(c), depth) for c in self.tasks},
        )


def href(path: str | PurePosixPath, depth: int) -> str:
    """A link to ``path`` (relative to the site's root) from a page ``depth`` folders down."""
    return "../" * depth + quote(str(path))
