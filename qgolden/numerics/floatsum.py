"""ATen's float32 sum on the CPU (aten/src/ATen/native/cpu/SumKernel.cpp), reproduced exactly.

torch.mean / adaptive_avg_pool2d(x, 1) on a contiguous float tensor sum the innermost elements
with `vectorized_inner_sum`: Vectorized<float> lanes (8 on AVX2) summed by `row_sum`, which
interleaves 4 accumulators (`multi_row_sum`) and cascades partial sums over 4 levels; the
scalar tail is added to 0, then the 8 lanes in order. Rows shorter than one vector use the
same row_sum on scalars. Checked against torch.mean for sizes 1..3136 (tests/test_float_regions.py).
"""
from __future__ import annotations

import numpy as np

NUM_LEVELS = 4
ILP = 4


def _ceil_log2(x: int) -> int:
    return 0 if x <= 1 else int(x - 1).bit_length()


def multi_row_sum(rows: np.ndarray) -> np.ndarray:
    """rows [size, ILP, ...]: ATen multi_row_sum, a 4-level cascade of float32 partial sums."""
    size = rows.shape[0]
    level_power = max(4, _ceil_log2(size) // NUM_LEVELS)
    level_step = 1 << level_power
    level_mask = level_step - 1
    acc = [np.zeros(rows.shape[1:], np.float32) for _ in range(NUM_LEVELS)]
    i = 0
    while i + level_step <= size:
        for _ in range(level_step):
            acc[0] = np.add(acc[0], rows[i], dtype=np.float32)
            i += 1
        for j in range(1, NUM_LEVELS):
            acc[j] = np.add(acc[j], acc[j - 1], dtype=np.float32)
            acc[j - 1] = np.zeros_like(acc[j - 1])
            if (i & (level_mask << (j * level_power))) != 0:
                break
    while i < size:
        acc[0] = np.add(acc[0], rows[i], dtype=np.float32)
        i += 1
    for j in range(1, NUM_LEVELS):
        acc[0] = np.add(acc[0], acc[j], dtype=np.float32)
    return acc[0]


def row_sum(elems: np.ndarray) -> np.ndarray:
    """elems [size, ...]: ATen row_sum (ILP accumulators over rows of 4, then the leftovers)."""
    size = elems.shape[0]
    size_ilp = size // ILP
    if size_ilp:
        partial = multi_row_sum(elems[:size_ilp * ILP].reshape((size_ilp, ILP) + elems.shape[1:]))
    else:
        partial = np.zeros((ILP,) + elems.shape[1:], np.float32)
    total = partial[0].copy()
    for i in range(size_ilp * ILP, size):
        total = np.add(total, elems[i], dtype=np.float32)
    for k in range(1, ILP):
        total = np.add(total, partial[k], dtype=np.float32)
    return total


def inner_sum(x, lanes: int = 8) -> np.ndarray:
    """Sum over the last axis of a contiguous float32 array, as ATen's vectorized_inner_sum
    (rows of at least `lanes` elements) or scalar_inner_sum. Returns x.shape[:-1]."""
    x = np.asarray(x, dtype=np.float32)
    n = x.shape[-1]
    rows = x.reshape(-1, n)
    if n >= lanes:
        nv = n // lanes
        vecs = rows[:, :nv * lanes].reshape(rows.shape[0], nv, lanes).transpose(1, 0, 2)
        vacc = row_sum(vecs)  # [rows, lanes]
        total = np.zeros(rows.shape[0], np.float32)
        for k in range(nv * lanes, n):
            total = np.add(total, rows[:, k], dtype=np.float32)
        for k in range(lanes):
            total = np.add(total, vacc[:, k], dtype=np.float32)
    else:
        total = row_sum(np.ascontiguousarray(rows.T))
    return total.reshape(x.shape[:-1])
