"""shared.memory: memory freed inside glibc's heaps goes back to the operating system when the service
trims (issue 16: the soak's RSS growth was such memory). Real allocations through the C library's malloc
and free, and the process's own RSS from /proc."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util

from shared import memory

MB = 1 << 20


def rss() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS"))


def freed_in_the_heap(blocks: int = 60_000, size: int = 1000) -> ctypes.c_void_p:
    """Allocate ``blocks`` small blocks (below the mmap threshold: inside the heap), touch them, free all
    but the last, which keeps the freed ones from being the heap's top (so free() alone returns nothing).
    Returns the last block, for the caller to free."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    ptrs = [libc.malloc(size) for _ in range(blocks)]
    for p in ptrs:
        ctypes.memset(p, 1, size)
    for p in ptrs[:-1]:
        libc.free(p)
    return ptrs[-1]  # type: ignore[no-any-return]


def free(p: ctypes.c_void_p) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.free.argtypes = [ctypes.c_void_p]
    libc.free(p)


def test_trim_gives_back_memory_that_free_kept() -> None:
    assert memory.available(), "this machine's C library is glibc: malloc_trim must be found"
    last = freed_in_the_heap()
    try:
        kept = rss()
        assert memory.trim() is True
        assert kept - rss() > 30 * MB, (kept, rss())
    finally:
        free(last)


async def test_the_keeper_trims_every_period_and_stops_when_told() -> None:
    last = freed_in_the_heap()
    try:
        kept = rss()
        stop = asyncio.Event()
        keeper = asyncio.create_task(memory.keep_trimming(stop, 0.05))
        for _ in range(200):  # bounds a failure only: the first period ends after 0.05 s
            if kept - rss() > 30 * MB:
                break
            await asyncio.sleep(0.05)
        assert kept - rss() > 30 * MB, (kept, rss())
        stop.set()
        await asyncio.wait_for(keeper, 5)
    finally:
        free(last)


async def test_a_period_of_zero_turns_the_keeper_off() -> None:
    await asyncio.wait_for(memory.keep_trimming(asyncio.Event(), 0), 1)  # returns at once
