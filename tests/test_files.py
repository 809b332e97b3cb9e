"""The shared atomic writers: a folder swapped in whole, files renamed into place together."""

from __future__ import annotations

from pathlib import Path

import pytest

from hear_runner.files import atomic_directory, atomic_group, atomic_write


def test_atomic_directory_replaces_the_folder_whole(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_directory(target) as staging:
        assert staging.parent == tmp_path and staging != target
        assert not (target / "new.txt").exists()  # readers still see the old folder
        (staging / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging or old folder left


def test_atomic_directory_failure_keeps_the_old_folder_and_leaves_no_debris(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError, match="stopped"), atomic_directory(target) as staging:
        (staging / "half.txt").write_text("half")
        raise RuntimeError("stopped")
    assert (target / "old.txt").read_text() == "old"
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_atomic_group_renames_every_file_only_at_the_end(tmp_path: Path) -> None:
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    with atomic_group() as group:
        group.stage(first, lambda t: atomic_write(t, "a"))
        group.stage(second, lambda t: atomic_write(t, "b"))
        assert not first.exists() and not second.exists()
    assert (first.read_text(), second.read_text()) == ("a", "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]


def test_atomic_group_failure_while_staging_writes_nothing(tmp_path: Path) -> None:
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("earlier")

    def broken(_: Path) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), atomic_group() as group:
        group.stage(first, lambda t: atomic_write(t, "new"))
        group.stage(second, broken)
    assert first.read_text() == "earlier"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_atomic_group_failed_rename_removes_the_files_already_renamed(tmp_path: Path) -> None:
    first, blocked = tmp_path / "a.txt", tmp_path / "b"
    (blocked / "inside").mkdir(parents=True)  # a file cannot be renamed over a non-empty folder
    with pytest.raises(OSError), atomic_group() as group:
        group.stage(first, lambda t: atomic_write(t, "a"))
        group.stage(blocked, lambda t: atomic_write(t, "b"))
    assert not first.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
