"""Exact step thresholds of a monotone integer-valued function, by vectorized binary search.

For a non-decreasing f on the integers [lo, hi] (per column), the threshold of level k is
t_k = min{a in [lo, hi+1] : f(a) >= k}, with hi+1 meaning "never reached in the interval".
Two such functions agree everywhere on [lo, hi] exactly when their thresholds agree for every
level: this is how a whole interval (millions of accumulator values) is compared at the cost
of ~32 evaluations per level.
"""
from __future__ import annotations

import numpy as np


def step_thresholds(fn, lo, hi, levels):
    """t [L, N]: for each level (int array [L]) and column (lo, hi int64 [N]) the smallest
    a in [lo, hi+1] with fn(a)[:, column] >= level. fn takes int64 [L, N] (column = channel,
    last axis) and returns ints of the same shape. fn must be non-decreasing in a."""
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    levels = np.asarray(levels, dtype=np.int64)[:, None]
    a = np.broadcast_to(lo, (levels.shape[0], lo.shape[0])).copy()
    b = np.broadcast_to(hi + 1, a.shape).copy()
    while True:
        active = a < b
        if not active.any():
            return a
        mid = a + (b - a) // 2
        probe = np.where(active, mid, lo[None, :])
        ok = np.asarray(fn(probe)).astype(np.int64) >= levels
        b = np.where(active & ok, mid, b)
        a = np.where(active & ~ok, mid + 1, a)


def differing_values(t_ref, t_new, lo, hi):
    """Accumulator values in [lo, hi] where two monotone step functions differ, from their
    thresholds [L, N] over the same levels (and equal values at lo): for each level, the
    values between the two thresholds. Returns per column a sorted list of (start, end)
    half-open intervals, merged."""
    out = []
    diff_cols = np.any(t_ref != t_new, axis=0)
    for c in range(t_ref.shape[1]):
        if not diff_cols[c]:
            out.append([])
            continue
        iv = []
        for a, b in zip(t_ref[:, c], t_new[:, c]):
            s, e = (int(a), int(b)) if a <= b else (int(b), int(a))
            s, e = max(s, int(lo[c])), min(e, int(hi[c]) + 1)
            if e > s:
                iv.append((s, e))
        iv.sort()
        merged = []
        for s, e in iv:
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        out.append(merged)
    return out
