"""The one slug rule: what it keeps, what it replaces, and the names already on disk it must reproduce."""

from __future__ import annotations

import pytest

from hear_runner.names import slug


@pytest.mark.parametrize(
    ("text", "kwargs", "expected"),
    [
        # Result records: results/<slug>/<task>.json (names already on disk must not change).
        ("naive", {"default": "model"}, "naive"),
        ("hear/naive:1.0", {"default": "model"}, "hear_naive_1.0"),
        ("__/x y/__", {"default": "model"}, "x_y"),
        ("///", {"default": "model"}, "model"),
        ("modèle", {"default": "model"}, "modèle"),
        # Report file names: dots become fills too.
        ("a.b c", {"keep": "-_"}, "a_b_c"),
        ("...", {"keep": "-_"}, "x"),
        # Container names: '-' fills, nothing stripped, no stand-in for empty.
        ("-naive:1-", {"fill": "-", "strip": False, "default": ""}, "-naive-1-"),
        ("", {"fill": "-", "strip": False, "default": ""}, ""),
    ],
)
def test_slug_rules(text: str, kwargs: dict[str, object], expected: str) -> None:
    assert slug(text, **kwargs) == expected  # type: ignore[arg-type]
