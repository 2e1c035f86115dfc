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


# --- torch.compile (Inductor C++ backend) float32 sums: torch/_inductor/codegen/cpp.py -------------
INDUCTOR_CASCADE_MIN = 4096  # CppKernel.need_use_acc_helper: sums over more than 4096 use CascadeSumHelper
INDUCTOR_MIN_CHUNK = 512     # torch._inductor.config.cpp.min_chunk_size
INDUCTOR_PAR_REDUCTION_RATIO = 300  # LoopNest.max_parallel_depth: reduction loop > 300x outer steps


def inductor_sum_is_serial(outer_steps: int, reduction_steps: int, reduction_size: int, total: int,
                           threads: int) -> bool:
    """Whether Inductor's C++ kernel sums each output in one thread, in loop order, with a plain
    `acc = acc + x` (what sequential_sum / inductor_lane_sum reproduce). It does not when
      - reduction_size > 4096: CascadeSumHelper (need_use_acc_helper), or
      - the reduction loop is parallelised: LoopNest.max_parallel_depth moves the parallel loop into
        the reduction when outer_steps * 300 < reduction_steps, and decide_parallel_depth keeps it
        when total // threads >= min_chunk_size (512); each thread then sums its own chunk."""
    if reduction_size > INDUCTOR_CASCADE_MIN:
        return False
    parallel_reduction = outer_steps * INDUCTOR_PAR_REDUCTION_RATIO < reduction_steps
    return not (parallel_reduction and threads > 1 and total // threads >= INDUCTOR_MIN_CHUNK)


def sequential_sum(x) -> np.ndarray:
    """x [size, ...] float32: acc = 0; for i: acc = f32(acc + x[i]). Inductor's reduction over a
    non-innermost dim (e.g. H*W of a channels-last tensor: the channels are the vector lanes, so each
    channel is summed alone, in memory order)."""
    x = np.asarray(x, dtype=np.float32)
    acc = np.zeros(x.shape[1:], np.float32)
    for row in x:
        acc = np.add(acc, row, dtype=np.float32)
    return acc


def vec_reduce_all(lanes) -> np.ndarray:
    """lanes [..., L] (L = 8 or 16): at::vec::vec_reduce_all for Vectorized<float> with +
    (ATen/cpu/vec/functional_base.h, VecReduceAllSIMD): the upper half added onto the lower half
    until one lane is left. AVX2 (8 lanes): b_i = a_i + a_{i+4}; c_i = b_i + b_{i+2}; d = c_0 + c_1.
    AVX512 (16 lanes) first adds the 256-bit halves, a_i + a_{i+8} (_mm512_shuffle_f32x4), then as AVX2."""
    a = np.asarray(lanes, dtype=np.float32)
    while a.shape[-1] > 1:
        h = a.shape[-1] // 2
        a = np.add(a[..., :h], a[..., h:], dtype=np.float32)
    return a[..., 0]


def inductor_lane_sum(x, lanes: int = 8) -> np.ndarray:
    """Sum over the last (contiguous) axis as Inductor's vectorised reduction kernel does it:
    `lanes` float32 lanes (VecAVX2 8, VecAVX512 16) accumulate x[lanes*k + j] in order; the tail
    (n % lanes) is added into the first lanes (sum_masked_reduce); then
    tmp_acc0 = 0 + vec_reduce_all(lanes). Returns x.shape[:-1]."""
    if lanes not in (8, 16):
        raise NotImplementedError("Inductor lane sums are modelled for 8 and 16 float lanes")
    x = np.asarray(x, dtype=np.float32)
    n = x.shape[-1]
    acc = np.zeros(x.shape[:-1] + (lanes,), np.float32)
    full = n // lanes * lanes
    for k in range(0, full, lanes):
        acc = np.add(acc, x[..., k:k + lanes], dtype=np.float32)
    if n > full:
        acc[..., :n - full] = np.add(acc[..., :n - full], x[..., full:], dtype=np.float32)
    return np.add(np.float32(0), vec_reduce_all(acc), dtype=np.float32)
