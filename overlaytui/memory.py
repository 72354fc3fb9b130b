"""What the C allocator keeps of what Python freed (glibc only; elsewhere these do nothing).

- glibc gives each thread that allocates a malloc arena of its own (up to 8 per core), and what a thread frees
  stays in its arena for that thread. The dashboard's frame thread, workers and executors each built a second's
  objects in their own arena; `serve`'s viewers, ~30 of a viewer's ~40 MB at 200 nodes. Two arenas for the
  process (as MALLOC_ARENA_MAX=2 would): the interpreter lock serialises the threads anyway.
- Freed memory inside a heap is returned to the system only at its top; `malloc_trim(0)` gives back every free
  page (glibc >= 2.8), which is what a probe round's churn leaves behind.
- glibc raises its mmap threshold (up to 32 MB) each time a mapped block is freed, and its trim threshold to twice
  that: after a probe round's large arrays and lists were freed, the next ones came from the heap, and up to
  twice their size stayed free in it. Fixed thresholds (as MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_
  would) keep blocks of 256 KiB or more mapped on their own, given back when freed: the 200-node dashboard's
  highs between two trims 260 -> 230 MB (bench/soak.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import threading

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # glibc's mallopt parameters (malloc.h)
MMAP_FROM = 256 * 1024  # bytes: blocks this large or larger are mapped on their own
TRIM_FROM = 1024 * 1024  # bytes free at a heap's top before free() gives them back


def _libc():
    with contextlib.suppress(OSError):
        return ctypes.CDLL("libc.so.6")
    return None


def keep_less() -> None:
    """Two malloc arenas for the whole process, and fixed mmap and trim thresholds: call it before any thread
    starts."""
    libc = _libc()
    with contextlib.suppress(AttributeError):
        if libc is not None:
            libc.mallopt(M_ARENA_MAX, 2)
            libc.mallopt(M_MMAP_THRESHOLD, MMAP_FROM)
            libc.mallopt(M_TRIM_THRESHOLD, TRIM_FROM)


def trim() -> None:
    """Give the free pages of every arena back to the system."""
    libc = _libc()
    with contextlib.suppress(AttributeError):
        if libc is not None:
            libc.malloc_trim(0)


_trimming = threading.Lock()


def trim_soon() -> threading.Thread | None:
    """`trim` in a thread of its own, one at a time (None: one is running): ctypes lets go of the interpreter
    lock, so the 25-68 ms it takes at 200 nodes are off the dashboard's loop."""
    if not _trimming.acquire(blocking=False):
        return None

    def run() -> None:
        try:
            trim()
        finally:
            _trimming.release()
    thread = threading.Thread(target=run, name="malloc-trim", daemon=True)
    try:
        thread.start()
    except BaseException:  # no thread (none left, or the interpreter is exiting): the next call tries again
        _trimming.release()
        return None
    return thread
