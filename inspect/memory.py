"""Keep freed image buffers in the process for the next board, instead of handing them back to the kernel.

Every board allocates dozens of 400 KB buffers (masks, differences, warped templates). glibc serves blocks that
size with ``mmap`` and unmaps them on free, or trims the heap they sat at the top of, so the next board
page-faults the same memory in again: 400-810 minor page faults a board in the front end, which cost a tenth to
a third of its time on the 2-core VMs this was measured on (paired runs, e.g. 12.6 -> 8.7 ms a board with 5
faults; ``python benchmarks/front_end_steps.py`` with and without ``--give-back-memory`` shows both). Raising
glibc's mmap and trim thresholds keeps the buffers in the heap. Peak RSS does not grow: the heap holds at most
what one board had in use at its peak. The CLI and bench workers call ``keep_freed_memory()`` at start; a program
that embeds the engine may call it once itself (it changes the allocator of the whole process).
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value; larger blocks (big training batches) still use mmap
TRIM_THRESHOLD = 256 << 20

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Set the thresholds once per process; False (and nothing changed) where the C library is not glibc."""
    global _applied
    if _applied is None:
        _applied = False
        name = ctypes.util.find_library("c")
        try:
            mallopt = ctypes.CDLL(name).mallopt if name else None
        except (OSError, AttributeError):  # no C library found, or one without mallopt (musl, macOS)
            mallopt = None
        if mallopt is not None:
            mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
            _applied = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
                mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
            )
    return _applied
