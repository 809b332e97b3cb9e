"""The check registry behind `hear validate`: order from declared needs, skips that say why."""

from __future__ import annotations

import pytest

from hear_runner.validate import CHECK_NAMES
from hear_runner.validate.registry import Need, Registry

Seen = dict[str, str]  # the toy checks' shared state: what each check delivered


def delivered(name: str) -> Need[Seen]:
    return Need[Seen]((name,), lambda seen: name in seen, f"needs {name}'s output")


def toy(registry: Registry[Seen], name: str, *needs: Need[Seen]) -> None:
    @registry.check(name, *needs)
    def body(seen: Seen) -> str:
        seen[name] = "done"
        return name


def test_hear_validate_reports_its_checks_in_the_same_order() -> None:
    assert CHECK_NAMES == (
        "load", "sample_rate", "embedding_sizes", "image_labels", "timestamp_shapes",
        "timestamps_shared", "timestamp_hop", "timestamp_range", "scene_shape", "determinism",
        "batch_invariance", "long_input", "finite", "memory",
    )  # fmt: skip


def test_a_check_runs_after_what_it_needs_even_when_registered_first() -> None:
    registry = Registry[Seen]()
    toy(registry, "uses", delivered("makes"))
    toy(registry, "makes")
    toy(registry, "alone")
    assert [spec.name for spec in registry.ordered()] == ["makes", "uses", "alone"]


def test_an_unmet_need_gives_its_reason_and_a_met_one_none() -> None:
    registry = Registry[Seen]()
    toy(registry, "makes")
    toy(registry, "uses", delivered("makes"))
    makes, uses = registry.ordered()
    seen: Seen = {}
    assert uses.unmet(seen) == "needs makes's output"
    makes.body(seen)
    assert uses.unmet(seen) is None and uses.body(seen) == "uses"


def test_needing_an_unknown_check_is_an_error_naming_it() -> None:
    registry = Registry[Seen]()
    toy(registry, "uses", delivered("nowhere"))
    with pytest.raises(ValueError, match="check 'uses' needs unknown check 'nowhere'"):
        registry.ordered()


def test_checks_that_need_each_other_are_an_error() -> None:
    registry = Registry[Seen]()
    toy(registry, "a", delivered("b"))
    toy(registry, "b", delivered("a"))
    toy(registry, "c")
    with pytest.raises(ValueError, match="checks a, b need each other"):
        registry.ordered()


def test_a_name_registered_twice_is_an_error() -> None:
    registry = Registry[Seen]()
    toy(registry, "a")
    with pytest.raises(ValueError, match="'a' is registered twice"):
        toy(registry, "a")
