"""Elementwise passes over large arrays split into cache-sized row blocks, run on every core.

Requantization is elementwise, so the blocks are independent and any order gives the same
bits; NumPy releases the GIL inside its loops, so plain threads use every core. A block runs
all its steps while its data sit in the cache (one pass over memory instead of one per step).
"""
from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor

# elements per block: ~128 KiB of float32, well inside a core's L2 cache
BLOCK_ELEMS = 1 << 15
_POOL: list = []


_SPINNING = [0]  # threads of another runtime that keep their cores busy between its calls


def set_spinning(threads: int) -> None:
    """Tell the pool how many threads another runtime keeps spinning on the cores after each of its
    calls (torch's OpenMP workers busy-wait after a parallel region): elementwise passes then leave
    them their cores instead of fighting them for time slices (measured: 2 cores, torch sums,
    ResNet-18-shaped: 35 ms median with 2 pool threads, 18.5 ms with 1)."""
    _SPINNING[0] = max(0, int(threads))


def num_workers() -> int:
    """Threads for elementwise passes: QGOLDEN_NUM_THREADS when set, else the CPUs this process
    may run on less the threads another runtime keeps spinning (set_spinning), at least 1."""
    env = os.environ.get("QGOLDEN_NUM_THREADS")
    if env:
        return max(1, int(env))
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, cpus - _SPINNING[0])


def row_blocks(rows: int, row_elems: int, step: int = 1) -> list[tuple[int, int]]:
    """[(r0, r1), ...] covering range(rows) in blocks of about BLOCK_ELEMS elements (rows of
    row_elems each), every boundary a multiple of step."""
    per = max(step, (BLOCK_ELEMS // max(1, row_elems)) // step * step)
    return [(r0, min(rows, r0 + per)) for r0 in range(0, rows, per)]


def for_blocks(blocks, body) -> None:
    """body(r0, r1) for every block, on a thread pool of num_workers() threads when there are
    several blocks and workers (the blocks must write disjoint memory)."""
    n = num_workers()
    if n == 1 or len(blocks) < 2:
        for r0, r1 in blocks:
            body(r0, r1)
        return
    if not _POOL or _POOL[0][0] != n:
        if _POOL:
            _POOL.pop()[1].shutdown(wait=False)
        _POOL.append((n, ThreadPoolExecutor(max_workers=n, thread_name_prefix="qgolden")))
    pool = _POOL[0][1]
    nxt = itertools.count()  # each thread takes the next block (next() is atomic under the GIL)

    def run():
        for i in iter(nxt.__next__, None):
            if i >= len(blocks):
                return
            body(*blocks[i])
    for f in [pool.submit(run) for _ in range(min(n, len(blocks)))]:
        f.result()
