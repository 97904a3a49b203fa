"""atomic_dir: a folder appears whole or not at all (no Keras)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hpsearch.atomic import DestinationExists, atomic_dir


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_success_renames_the_temporary_folder_into_place(tmp_path):
    dest = tmp_path / "out"
    with atomic_dir(dest) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.")
        assert tmp.is_dir() and not dest.exists()
        (tmp / "a.txt").write_text("a")
    assert (dest / "a.txt").read_text() == "a"
    assert _names(tmp_path) == ["out"]


def test_the_folder_gets_plain_mkdir_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        with atomic_dir(tmp_path / "out"):
            pass
    finally:
        os.umask(umask)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755


def test_an_exception_leaves_nothing(tmp_path):
    dest = tmp_path / "new" / "deeper" / "out"
    with pytest.raises(RuntimeError, match="disk full"), atomic_dir(dest) as tmp:
        (tmp / "a.txt").write_text("a")
        raise RuntimeError("disk full")
    assert _names(tmp_path) == []  # the parents made for it are gone too


def test_a_parent_that_existed_stays(tmp_path):
    (tmp_path / "keep").mkdir()
    with pytest.raises(KeyboardInterrupt), atomic_dir(tmp_path / "keep" / "out"):
        raise KeyboardInterrupt
    assert _names(tmp_path) == ["keep"] and _names(tmp_path / "keep") == []


def test_an_existing_destination_is_kept_without_replace(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    entered = False
    with pytest.raises(DestinationExists, match="out already exists"), atomic_dir(dest):
        entered = True
    assert not entered  # refused before anything is written
    assert _names(dest) == ["old.txt"] and _names(tmp_path) == ["out"]


def test_a_destination_that_appears_meanwhile_is_kept_without_replace(tmp_path):
    dest = tmp_path / "out"
    with pytest.raises(DestinationExists), atomic_dir(dest) as tmp:
        (tmp / "new.txt").write_text("new")
        dest.mkdir()
        (dest / "other.txt").write_text("other")
    assert _names(dest) == ["other.txt"] and _names(tmp_path) == ["out"]


def test_an_existing_destination_is_replaced_with_replace(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    with atomic_dir(dest, replace=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert _names(dest) == ["new.txt"]
    assert _names(tmp_path) == ["out"]  # no temporary or old folder left


def test_a_failure_with_replace_keeps_the_old_destination(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(dest, replace=True) as tmp:
        (tmp / "new.txt").write_text("new")
        raise RuntimeError
    assert _names(dest) == ["old.txt"] and _names(tmp_path) == ["out"]


def test_a_failed_rename_puts_the_old_destination_back(tmp_path, monkeypatch):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    real = os.replace

    def replace(src: str | Path, dst: str | Path) -> None:
        if Path(src).name.endswith(".tmp"):
            raise OSError("rename failed")
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="rename failed"), atomic_dir(dest, replace=True):
        pass
    assert _names(dest) == ["old.txt"] and _names(tmp_path) == ["out"]
