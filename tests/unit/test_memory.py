"""glibc's allocator, asked to keep less (overlaytui/memory.py): two arenas and trimming run here, in this process,
and do nothing harmful where there is no glibc."""

from __future__ import annotations

import ctypes
import os

import pytest

from overlaytui import memory


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_trim_gives_back_the_pages_freed_below_a_live_block():
    """What a probe round's churn leaves: freed memory under something still alive, which free() cannot give back
    (the heap shrinks only at its top) and malloc_trim(0) can."""
    memory.fewer_arenas()
    blocks = [bytearray(64 * 1024 - 64) for _ in range(1600)]  # ~100 MB of the heap (each under mmap's threshold)
    top = bytearray(64 * 1024 - 64)  # alive above them
    del blocks
    before = rss_mb()
    memory.trim()
    assert before - rss_mb() > 50
    del top


def test_without_glibc_nothing_happens(monkeypatch):
    def missing(name):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", missing)
    memory.fewer_arenas()
    memory.trim()


@pytest.mark.parametrize("call", [memory.fewer_arenas, memory.trim])
def test_a_libc_without_the_function_is_left_alone(monkeypatch, call):
    monkeypatch.setattr(memory, "_libc", lambda: object())
    call()
