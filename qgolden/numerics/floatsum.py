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


# --- torch.sum / torch.mean of a float32 tensor over any dims (ATen, not Inductor) ------------------
# Sources: aten/src/ATen/TensorIterator.cpp (reorder_dimensions, coalesce_dimensions),
# aten/src/ATen/native/TensorIteratorReduce.cpp (parallel_reduce), aten/src/ATen/native/cpu/SumKernel.cpp
# (cascade_sum and its four loops). acc_type<float, true> is float: every addition is float32.
SUM_GRAIN_SIZE = 32768  # at::internal::GRAIN_SIZE: smaller reductions run serially


def _reorder(shape, strides_out, strides_in):
    """TensorIterator::reorder_dimensions for a reduction: a permutation of the dims, fastest first.
    Reduced dims (output stride 0) go first; others compare output strides, then input strides;
    equal strides put the smaller size first. Insertion sort from perm = [n-1, ..., 0]."""
    n = len(shape)
    perm = list(range(n - 1, -1, -1))
    if n == 1:
        return [0]

    def should_swap(d0, d1):
        for k, st in enumerate((strides_out, strides_in)):
            s0, s1 = st[d0], st[d1]
            if k == 0 and (s0 == 0) != (s1 == 0):
                return 1 if s1 == 0 else -1
            if s0 == 0 or s1 == 0:
                continue
            if s0 < s1:
                return -1
            if s0 > s1:
                return 1
            if shape[d0] > shape[d1]:
                return 1
        return 0

    for i in range(1, n):
        d1 = i
        for d0 in range(i - 1, -1, -1):
            c = should_swap(perm[d0], perm[d1])
            if c > 0:
                perm[d0], perm[d1] = perm[d1], perm[d0]
                d1 = d0
            elif c < 0:
                break
    return perm


def _coalesce_dims(shape, strides):
    """TensorIterator::coalesce_dimensions: merge dim d into the previous one when either has size 1
    or every operand steps through both as one (shape0 * stride0 == stride1). strides: per operand."""
    shape = list(shape)
    strides = [list(s) for s in strides]
    if len(shape) <= 1:
        return shape, strides
    prev = 0
    for d in range(1, len(shape)):
        s0, s1 = shape[prev], shape[d]
        if s0 == 1 or s1 == 1 or all(s0 * st[prev] == st[d] for st in strides):
            if shape[prev] == 1:
                for st in strides:
                    st[prev] = st[d]
            shape[prev] *= shape[d]
        else:
            prev += 1
            if prev != d:
                for st in strides:
                    st[prev] = st[d]
                shape[prev] = shape[d]
    return shape[:prev + 1], [st[:prev + 1] for st in strides]


def _gather(buf, base, size0, stride0, size1, stride1):
    """[size0, size1] view of buf with element strides."""
    idx = base + np.arange(size0)[:, None] * stride0 + np.arange(size1)[None, :] * stride1
    return buf[idx]


def _loop2d(block, in_strides, lanes):
    """One cascade_sum loop over a [size0 (reduced), size1] block whose dim 0 is reduced: the per-column
    values it adds into the output, in the order of its stores ([size1])."""
    size0, size1 = block.shape
    s0, s1 = in_strides
    if s0 == 1 and size0 >= lanes:  # vectorized_inner_sum: each column is a contiguous row
        nv = size0 // lanes
        vecs = block[:nv * lanes].reshape(nv, lanes, size1).transpose(0, 2, 1)  # [nv, size1, lanes]
        vacc = row_sum(vecs)
        total = np.zeros(size1, np.float32)
        for k in range(nv * lanes, size0):
            total = np.add(total, block[k], dtype=np.float32)
        for k in range(lanes):
            total = np.add(total, vacc[:, k], dtype=np.float32)
        return total
    out = np.zeros(size1, np.float32)
    if s1 == 1 and size1 >= lanes:  # vectorized_outer_sum: columns are vector lanes
        j = 0
        while j + 4 * lanes <= size1:
            rows = block[:, j:j + 4 * lanes].reshape(size0, 4, lanes)
            out[j:j + 4 * lanes] = multi_row_sum(rows).reshape(-1)
            j += 4 * lanes
        while j + lanes <= size1:
            out[j:j + lanes] = row_sum(block[:, j:j + lanes])
            j += lanes
        if j < size1:
            out[j:] = row_sum(block[:, j:])
        return out
    if s0 < s1:  # scalar_inner_sum
        return row_sum(block)
    j = 0  # scalar_outer_sum: columns in fours through multi_row_sum, the rest one by one
    while j + 3 < size1:
        out[j:j + 4] = multi_row_sum(block[:, j:j + 4])
        j += 4
    if j < size1:
        out[j:] = row_sum(block[:, j:])
    return out


def aten_sum(x, dims, order=None, lanes: int = 8, threads: int = 1) -> np.ndarray:
    """torch.sum(x, dims) of a float32 tensor as ATen's cascade_sum computes it (keepdim=False shape).

    x is the logical array; `order` its memory order (dims outermost -> innermost; None: contiguous);
    lanes = Vectorized<float>::size() of the SumKernel build that runs (8 AVX2, 16 AVX512).
    The output is contiguous. Reductions of at least GRAIN_SIZE elements on several threads split the
    work (parallel_dim_reduction / two_pass_reduction): NotImplementedError."""
    x = np.asarray(x, dtype=np.float32)
    nd = x.ndim
    dims = sorted(set(d % nd for d in dims)) if nd else []
    order = list(range(nd)) if order is None else list(order)
    buf = np.ascontiguousarray(x.transpose(order)).reshape(-1)
    in_st = [0] * nd
    acc = 1
    for d in reversed(order):
        in_st[d] = acc
        acc *= x.shape[d]
    out_shape = [x.shape[d] for d in range(nd) if d not in dims]
    out_st = [0] * nd
    acc = 1
    for d in reversed(range(nd)):
        if d not in dims:
            out_st[d] = acc
            acc *= x.shape[d]
    out = np.zeros(int(np.prod(out_shape, dtype=np.int64)), np.float32)
    if x.size == 0:
        return out.reshape(out_shape)
    if threads > 1 and x.size >= SUM_GRAIN_SIZE:
        raise NotImplementedError("a float sum of at least 32768 elements on several threads is split "
                                  "between threads (parallel_reduce); not reproduced")
    perm = _reorder(list(x.shape), out_st, in_st)
    shape = [x.shape[p] for p in perm]
    shape, (so, si) = _coalesce_dims(shape, [[out_st[p] for p in perm], [in_st[p] for p in perm]])
    while len(shape) < 2:
        shape, so, si = shape + [1], so + [0], si + [0]
    if so[0] != 0 and so[1] == 0:  # cascade_sum moves the reduction to the first dim
        shape[0], shape[1] = shape[1], shape[0]
        so[0], so[1] = so[1], so[0]
        si[0], si[1] = si[1], si[0]
    outer = shape[2:]
    for idx in np.ndindex(*outer[::-1]) if outer else [()]:
        idx = idx[::-1]  # dim 2 moves fastest
        bo = sum(i * s for i, s in zip(idx, so[2:]))
        bi = sum(i * s for i, s in zip(idx, si[2:]))
        block = _gather(buf, bi, shape[0], si[0], shape[1], si[1])
        pos = bo + np.arange(shape[1]) * so[1]
        if so[0] != 0:  # not a reduction at all: out = out + x, element by element
            for i0 in range(shape[0]):
                p = bo + i0 * so[0] + np.arange(shape[1]) * so[1]
                out[p] = np.add(out[p], block[i0], dtype=np.float32)
            continue
        vals = _loop2d(block, (si[0], si[1]), lanes)
        if so[1] == 0:  # every column adds into the same output, one store after the other
            for v in vals:
                out[bo] = np.add(out[bo], v, dtype=np.float32)
        else:
            out[pos] = np.add(out[pos], vals, dtype=np.float32)
    return out.reshape(out_shape)
