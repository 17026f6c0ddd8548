"""Crafted dumps read in bounded memory: each in a child process whose address space is capped.

The crafted inputs (tests/support/crafted.py) cost the reader of the branch point 1.1–3.1 GB of RSS; under
a 200 MB address-space cap it raised MemoryError on each. Now each reads, with the snapshot it should give,
under the cap (its address space peaks at 45–96 MB), so its peak RSS is under 200 MB too (figures in
benchmarks/README.md).
"""

from __future__ import annotations

import pytest

from tests.support import crafted

LIMIT = 200 << 20  #: RLIMIT_AS of the child (the goal for peak RSS): the interpreter takes ~30 MB of it
TARGET_RSS_KB = 200 << 10


@pytest.mark.parametrize("kind", ["escapes", "backslashes", "long-comment", "many-rows"])
def test_crafted_dump_reads_in_bounded_memory(kind, tmp_path):
    path = crafted.write(kind, tmp_path)
    got = crafted.peak_rss(path, limit=LIMIT)
    assert "error" not in got, got
    # the fixture's first nova snapshot: the crafted change adds no host and loses none
    assert got["hosts"] == [
        "r10-n02.vm.example",
        "r2-n01.vm.example",
        "r2-n05.vm.example",
        "r9-n03.vm.example",
        "r9-n06.vm.example",
    ]
    assert got["maxrss_kb"] < TARGET_RSS_KB, got
