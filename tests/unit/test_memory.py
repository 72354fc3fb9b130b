"""glibc's allocator, asked to keep less (overlaytui/memory.py): two arenas and trimming run here, in this process,
and do nothing harmful where there is no glibc."""

from __future__ import annotations

import ctypes
import os
import threading

import pytest

from overlaytui import memory


def _glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") is not None
    except (ValueError, OSError, AttributeError):
        return False


needs_glibc = pytest.mark.skipif(not (_glibc() and os.path.exists("/proc/self/statm")),
                                 reason="measures glibc's allocator through /proc (Linux with glibc only)")


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@needs_glibc
def test_trim_gives_back_the_pages_freed_below_a_live_block():
    """What a probe round's churn leaves: freed memory under something still alive, which free() cannot give back
    (the heap shrinks only at its top) and malloc_trim(0) can."""
    memory.keep_less()
    blocks = [bytearray(64 * 1024 - 64) for _ in range(1600)]  # ~100 MB of the heap (each under mmap's threshold)
    top = bytearray(64 * 1024 - 64)  # alive above them
    del blocks
    before = rss_mb()
    memory.trim()
    assert before - rss_mb() > 50
    del top


def test_trim_soon_trims_in_a_thread_one_at_a_time(monkeypatch):
    started, release = [], threading.Event()

    def slow_trim():
        started.append(threading.current_thread().name)
        release.wait(10)
    monkeypatch.setattr(memory, "trim", slow_trim)
    first = memory.trim_soon()
    assert first is not None and memory.trim_soon() is None  # the first is still trimming: no second thread
    release.set()
    first.join(10)
    assert started == ["malloc-trim"] and not first.is_alive()
    again = memory.trim_soon()  # done: the next one runs
    assert again is not None
    again.join(10)
    assert started == ["malloc-trim"] * 2


def test_without_glibc_nothing_happens(monkeypatch):
    def missing(name):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", missing)
    memory.keep_less()
    memory.trim()


@pytest.mark.parametrize("call", [memory.keep_less, memory.trim])
def test_a_libc_without_the_function_is_left_alone(monkeypatch, call):
    monkeypatch.setattr(memory, "_libc", lambda: object())
    call()


def test_trim_soon_tries_again_when_no_thread_could_start(monkeypatch):
    def refused(self):
        raise RuntimeError("can't start new thread")
    monkeypatch.setattr(threading.Thread, "start", refused)
    assert memory.trim_soon() is None
    monkeypatch.undo()
    thread = memory.trim_soon()  # the lock was let go: trimming goes on
    assert thread is not None
    thread.join(10)


@needs_glibc
def test_large_blocks_go_back_to_the_system_when_freed():
    """glibc's own rule raises its mmap threshold to the size of a mapped block freed (here 8 MB): the 1 MB
    blocks after it would come from the heap and stay there when freed (0 MB back, measured without keep_less)."""
    memory.keep_less()
    big = bytearray(8 * 2**20)
    del big
    blocks = [bytearray(2**20) for _ in range(64)]
    top = bytearray(64 * 1024)  # alive above them
    before = rss_mb()
    del blocks
    assert before - rss_mb() > 50  # at free(), no trim
    del top
