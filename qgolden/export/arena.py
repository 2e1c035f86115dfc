"""Static activation arena: liveness of every buffer over the step list, the minimum any
placement needs (the largest sum of buffers live at one step), and offsets that reuse memory.

A buffer is live from the step that writes it to the last step that reads it (or any alias of
it). Two buffers may share bytes only if their lifetimes do not overlap. Placement is greedy
(lowest free offset that fits, as TFLite Micro's GreedyMemoryPlanner) over several orders
(largest first, by start, by lifetime, then seeded random ones); the smallest arena is kept.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Buffer:
    name: str
    size: int
    first: int   # step index that writes it
    last: int    # last step index that reads it
    offset: int = -1


def lifetimes(steps, sizes: dict, root, external: set) -> list:
    """Buffers of the arena: one per storage root written by a step and not in `external`
    (caller-provided input/output buffers). `root(t)` maps a tensor to its storage root."""
    first, last = {}, {}
    for i, s in enumerate(steps):
        r = root(s.output)
        if r not in external:
            first.setdefault(r, i)
            last[r] = max(last.get(r, i), i)
        for t in s.inputs:
            rt = root(t)
            if rt in first:
                last[rt] = max(last[rt], i)
    return [Buffer(r, int(sizes[r]), first[r], last[r]) for r in first]


def minimum_bytes(buffers) -> int:
    """max over steps of the bytes of all buffers live at that step (a lower bound for any plan)."""
    if not buffers:
        return 0
    end = max(b.last for b in buffers)
    return max(sum(b.size for b in buffers if b.first <= i <= b.last) for i in range(end + 1))


def _overlap(a, b) -> bool:
    return not (a.last < b.first or b.last < a.first)


def _place(buffers, order) -> int:
    placed = []
    for b in order:
        cands = [p for p in placed if _overlap(p, b)]
        off = 0
        for p in sorted(cands, key=lambda p: p.offset):
            if off + b.size <= p.offset:
                break
            off = max(off, p.offset + p.size)
        b.offset = off
        placed.append(b)
    return max((b.offset + b.size for b in buffers), default=0)


def plan_arena(buffers, tries: int = 300) -> int:
    """Assign offsets (in place); returns the arena size in bytes. Heuristic orders first, then
    seeded random orders, stopping as soon as a placement reaches the minimum."""
    import random

    floor = minimum_bytes(buffers)
    orders = [
        sorted(buffers, key=lambda b: (-b.size, b.first)),
        sorted(buffers, key=lambda b: (b.first, -b.size)),
        sorted(buffers, key=lambda b: (-(b.last - b.first), -b.size)),
        sorted(buffers, key=lambda b: (-b.size * (b.last - b.first + 1), b.first)),
    ]
    rng = random.Random(0)
    for _ in range(tries if len(buffers) > 1 else 0):
        order = list(buffers)
        rng.shuffle(order)
        orders.append(order)
    best, best_offsets = None, None
    for order in orders:
        size = _place(buffers, order)
        if best is None or size < best:
            best, best_offsets = size, [b.offset for b in buffers]
        if best <= floor:
            break
    for b, off in zip(buffers, best_offsets):
        b.offset = off
    return best or 0


def check_plan(buffers) -> None:
    """Raise AssertionError if two buffers live at the same time share a byte."""
    for i, a in enumerate(buffers):
        for b in buffers[i + 1:]:
            if _overlap(a, b) and a.size and b.size:
                assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset, (a, b)
