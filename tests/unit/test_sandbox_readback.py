"""Reading a program's folder back as hostile data, and removing it whatever it holds (pure file operations)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from em_eval.sandbox.execute import _disk_usage, read_collected, remove_tree


@pytest.fixture
def work(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    (tmp_path / "secret").write_text("outside the folder")
    return folder


def test_a_regular_file_is_read_up_to_the_limit(work: Path) -> None:
    (work / "verdict.json").write_bytes(b"x" * 5000)
    (work / "sub").mkdir()
    (work / "sub" / "out.h5").write_bytes(b"abc")
    assert read_collected(work, "verdict.json", 1000) == b"x" * 1000
    assert read_collected(work, "sub/out.h5", 1000) == b"abc"


@pytest.mark.parametrize("kind", ["fifo", "symlink", "directory", "symlinked folder", "missing", "dotdot"])
def test_anything_but_a_regular_file_inside_is_an_oserror_at_once(work: Path, kind: str) -> None:
    name = "verdict.json"
    if kind == "fifo":
        os.mkfifo(work / name)  # an open() without O_NONBLOCK would block forever
    elif kind == "symlink":
        (work / name).symlink_to(work.parent / "secret")
    elif kind == "directory":
        (work / name).mkdir()
    elif kind == "symlinked folder":
        (work / "sub").symlink_to(work.parent)
        name = "sub/secret"
    elif kind == "dotdot":
        name = "../secret"
    with pytest.raises(OSError):
        read_collected(work, name, 1 << 20)


def test_deep_and_hostile_trees_are_removed_without_raising(tmp_path: Path) -> None:
    base = tmp_path / "base"
    deep = base / "work"
    deep.mkdir(parents=True)
    fd = os.open(deep, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(2500):  # deeper than the recursion limit and than PATH_MAX as one path
        os.mkdir("d", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.close(fd)
    (base / "work" / "link").symlink_to(tmp_path / "keep")
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "precious").write_text("not the program's")
    os.mkfifo(base / "work" / "fifo")
    locked = base / "work" / "locked"
    locked.mkdir()
    (locked / "inside").write_text("x")
    locked.chmod(0)
    remove_tree(base)
    assert not base.exists()
    assert (tmp_path / "keep" / "precious").read_text() == "not the program's"  # the link was not followed
    remove_tree(base)  # gone already: still no exception


def test_the_watch_stops_a_folder_it_cannot_read_or_count(work: Path) -> None:
    (work / "small").write_bytes(b"x" * 10)
    assert 0 < _disk_usage(work) < 1 << 20
    for i in range(10_001):
        (work / f"empty{i}").touch()
    assert _disk_usage(work) > 1 << 40  # empty files cost inodes: past the count, the folder is full
