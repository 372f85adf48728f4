"""Pure pieces of the sandbox's confinement: seccomp's pid ranges, which uids are in use, what programs may import,
and giving a program's folders back to their owner without following its links."""

from __future__ import annotations

import os
import site
from pathlib import Path

import pytest

from em_eval.sandbox.execute import give_rights_back, subordinate_ranges, uid_in_use
from em_eval.sandbox.launcher import ALL_BITS, aligned_blocks
from em_eval.sandbox.paths import import_paths


@pytest.mark.parametrize("high", [1, 2, 3, 7, 8, 100, 257, 4096, 4_194_303])
def test_aligned_blocks_match_exactly_the_pids_below_the_programs_own(high: int) -> None:
    blocks = aligned_blocks(1, high)
    assert len(blocks) <= 2 * high.bit_length()  # a short seccomp filter whatever the pid
    probes = set(range(min(high + 70, 1 << 13))) | {high - 1, high, high + 1, 1 << 40, ALL_BITS, (1 << 32) + 1}
    for x in probes:
        assert any(x & mask == value for value, mask in blocks) == (1 <= x < high), x


def test_subordinate_ranges_are_read_from_subuid_lines() -> None:
    text = "alice:100000:65536\n# comment\nbob:3000000:1000000\nbroken:line\n\ncarol:x:5\n"
    assert subordinate_ranges(text) == [(100000, 65536), (3000000, 1000000)]


def test_a_uid_with_a_user_or_a_process_is_in_use() -> None:
    reason = uid_in_use(os.getuid())  # this process runs as it, and root is in /etc/passwd
    assert reason and str(os.getuid()) in reason


def test_programs_may_import_the_standard_library_and_site_packages_only(tmp_path: Path) -> None:
    stdlib = os.path.dirname(os.__file__)
    chained = tmp_path / "other-env" / "lib" / "site-packages"
    working, script = tmp_path / "project", tmp_path / "scripts"
    for folder in (chained, working, script):
        folder.mkdir(parents=True)
    entries = [str(working), "", stdlib, str(chained), str(script), site.getusersitepackages()]
    assert import_paths(entries) == [stdlib, str(chained)]


def test_rights_are_given_back_through_real_folders_only(tmp_path: Path) -> None:
    top = tmp_path / "work"
    (top / "a" / "b").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o500)
    (top / "link").symlink_to(outside)
    (top / "a" / "b").chmod(0o300)  # writable, not listable
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert give_rights_back(fd, ["a", "b"])
        assert not give_rights_back(fd, ["link"])  # a link in place of a folder is never followed
        assert not give_rights_back(fd, ["missing"])
    finally:
        os.close(fd)
    assert (top / "a" / "b").stat().st_mode & 0o777 == 0o700
    assert outside.stat().st_mode & 0o777 == 0o500
