"""Freed image buffers stay in the process: the next board reuses them instead of page-faulting them in."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pcb_inspect.inspect.memory import keep_freed_memory

# ten 400 KB images a "board", all freed at its end, twenty boards; prints the minor page faults of the last 15
_BOARDS = """
import resource, sys
import numpy as np
from pcb_inspect.inspect.memory import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else None
def board():
    images = [np.ones((640, 640), np.uint8) for _ in range(10)]
    return sum(int(i[0, 0]) for i in images)
for _ in range(5):
    board()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(15):
    board()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, applied)
"""


def _faults(mode: str) -> tuple[int, str]:
    out = subprocess.run([sys.executable, "-c", _BOARDS, mode], capture_output=True, text=True, check=True).stdout
    faults, applied = out.split()
    return int(faults), applied


def test_boards_reuse_their_memory_instead_of_faulting_it_in_again() -> None:
    kept, applied = _faults("keep")
    if applied != "True":
        pytest.skip("not glibc: keep_freed_memory() leaves the allocator as it is")
    given_back, _ = _faults("default")
    assert given_back > 15 * 10 * 50  # each board faults its images in afresh (100 pages an image)
    assert kept < given_back / 10


def test_it_is_idempotent() -> None:
    assert keep_freed_memory() == keep_freed_memory()
