"""Exact integer accumulation for linear/conv, including the int16 saturation of
FBGEMM's u8*s8 kernels.

All results are int64 and exact. float64 BLAS is used only when every partial sum is
provably below 2**53 in magnitude (then float64 matmul cannot round).
"""
from __future__ import annotations

import contextlib
import importlib.util
import weakref

import numpy as np

from ..cpu import cpu_class

_EXACT = 2.0**53
_I16_MIN, _I16_MAX = -32768, 32767


def matmul_exact(a, b) -> np.ndarray:
    """a [..., M, K] @ b [K, N] for integer arrays, exactly, as int64.

    float32 BLAS over K chunks in which every partial sum is provably below 2**24
    (max|a| * Σ_chunk |b[:, n]| < 2**24, so any summation order is exact), the chunk
    results summed as integers; else float64 BLAS when max|a|*max|b|*K < 2**53 (e.g. 8-bit
    x 8-bit with K < 2**37); otherwise int64 numpy matmul (exact, slow).
    """
    a = np.asarray(a)
    b = np.asarray(b)
    k = a.shape[-1]
    if a.size == 0 or b.size == 0 or k == 0:
        return _matmul_f64(a.astype(np.float64), b.astype(np.float64)).astype(np.int64)
    a2 = a.reshape(-1, k)
    if a.dtype.kind == "u":
        acol = a2.max(axis=0).astype(np.float64)  # max |a[:, k]| per column
    else:
        acol = np.maximum(a2.max(axis=0).astype(np.float64), -(a2.min(axis=0).astype(np.float64)))
    ba = int(acol.max())
    bb = _absmax_int(b)
    if ba * bb * max(k, 1) >= _EXACT:
        return np.matmul(a.astype(np.int64), b.astype(np.int64))
    if ba == 0 or bb == 0 or a2.shape[0] <= _F64_DIRECT_ROWS:
        # few rows: one float64 product (exact, see above) costs less than finding float32 chunks
        return _matmul_f64(a.astype(np.float64), b.astype(np.float64)).astype(np.int64)
    lim = float(2 ** 24 - 1)
    babs = np.abs(b.astype(np.float64))
    total = float((acol @ babs).max())  # every partial sum of column n is <= (acol @ |b|)[n]
    bounds = [0, k]
    if total > lim:
        cum = np.concatenate([np.zeros((1, b.shape[1])), np.cumsum(acol[:, None] * babs, axis=0)], axis=0)
        bounds = [0]
        while bounds[-1] < k and len(bounds) <= _F32_MAX_CHUNKS:
            k0 = bounds[-1]
            d = (cum[k0 + 1:] - cum[k0:k0 + 1]).max(axis=1)  # nondecreasing
            bounds.append(min(k, k0 + max(1, int(np.searchsorted(d, lim, side="right")))))
        if bounds[-1] < k:
            return _matmul_f64(a.astype(np.float64), b.astype(np.float64)).astype(np.int64)
    af = a.astype(np.float32)
    bf = b.astype(np.float32)
    if len(bounds) == 2:
        return _matmul_f32(af, bf).astype(np.int64)
    idt = np.int32 if total < 2.0**31 - 1 else np.int64
    out = None
    for k0, k1 in zip(bounds[:-1], bounds[1:]):
        part = _matmul_f32(af[..., k0:k1], bf[k0:k1]).astype(idt)
        out = part if out is None else np.add(out, part, out=out)
    return out.astype(np.int64)


def matmul_weight_exact(x, w, as_float=False) -> np.ndarray:
    """x [M, K] @ w[N, K].T exactly, as int64, for a constant weight w (its float32 copy and
    bound cached): one float32 matmul when max|x| * max_n Σ_k |w[n, k]| < 2**24 (every partial
    sum below 2**24: exact in any order), else matmul_exact. as_float: the float32 product
    itself (exact integers) when that one matmul was used."""
    x = np.asarray(x)
    w = np.asarray(w)
    if x.size == 0 or w.size == 0 or x.dtype.kind not in "iu":
        return matmul_exact(x, w.T)
    xa = _absmax_int(x)
    wt = _cached_weight(w, "float32_T", lambda: np.ascontiguousarray(w.T.astype(np.float32)))
    if xa * max_abs_row_sum(w) < 2**24:
        out = _matmul_f32(x.astype(np.float32), wt)
        return out if as_float else out.astype(np.int64)
    bounds = weight_k_chunks(w, xa)
    if bounds is None:
        return matmul_exact(x, w.T)
    xf = x.astype(np.float32)
    out = None
    for k0, k1 in zip(bounds[:-1], bounds[1:]):
        part = _matmul_f32(xf[:, k0:k1], wt[k0:k1]).astype(np.int64)  # exact integers below 2**24
        out = part if out is None else np.add(out, part, out=out)
    return out


def weight_k_chunks(w, xa):
    """K boundaries [0, k1, ..., K] of a constant weight w [N, K] such that xa * Σ_{k in chunk}
    |w[n, k]| < 2**24 for every row n and chunk: then every partial sum of x @ w.T over a chunk,
    |x| <= xa, is an integer below 2**24, exact in float32 in any summation order. Greedy, cached
    per (weight, xa); None when one column alone breaks the bound or more than
    _F32_MAX_WEIGHT_CHUNKS chunks are needed."""
    w = np.asarray(w)

    def build():
        lim = (2**24 - 1) // max(int(xa), 1)  # Σ|w| over a chunk must stay <= lim
        cum = np.concatenate([np.zeros((w.shape[0], 1), np.int64),
                              np.cumsum(np.abs(w.astype(np.int64)), axis=1)], axis=1)  # [N, K+1]
        bounds = [0]
        k = w.shape[1]
        while bounds[-1] < k:
            k0 = bounds[-1]
            d = (cum[:, k0 + 1:] - cum[:, k0:k0 + 1]).max(axis=0)  # nondecreasing in k1
            step = int(np.searchsorted(d, lim, side="right"))
            if step == 0 or len(bounds) > _F32_MAX_WEIGHT_CHUNKS:
                return None
            bounds.append(k0 + step)
        return bounds
    return _cached_weight(w, "k_chunks", build, (int(xa),))


_F32_MAX_WEIGHT_CHUNKS = 16


_F32_MAX_CHUNKS = 4
_F64_DIRECT_ROWS = 32


def sat16(x) -> np.ndarray:
    return np.clip(x, _I16_MIN, _I16_MAX)


def matmul_pair_saturated(xq_u8, wq_s8, *, chunk_elems: int = 1 << 22, as_float: bool = False) -> np.ndarray:
    """Σ_j sat_int16(x[m,2j]*w[n,2j] + x[m,2j+1]*w[n,2j+1]) for x uint8 [M,K], w int8 [N,K].

    This is FBGEMM's AVX2 / AVX512 (non-VNNI) u8s8s32 GEMM: vpmaddubsw sums two adjacent
    k-products into a saturating int16, vpmaddwd(ones) then widens to int32 exactly.
    K is zero-padded to even (a lone last product cannot saturate).

    Exact matmul first, then a correction sat16(P) - P over only the (n, j) pairs whose
    bound (column-max of x times w) can leave int16; those are evaluated for all rows in
    chunks and summed per column with reduceat. Fully vectorized. as_float: float32 (exact
    integers below 2**24) when the product took one float32 matmul and nothing saturated.
    """
    exact = matmul_weight_exact(xq_u8, wq_s8, as_float)
    corr = pair_saturation_correction(xq_u8, wq_s8, chunk_elems=chunk_elems, none_if_zero=True)
    if corr is None:
        return exact
    return exact.astype(np.int64) + corr


def pair_saturation_correction(xq_u8, wq_s8, *, chunk_elems: int = 1 << 22, none_if_zero: bool = False):
    """Σ_j (sat_int16(P_j) - P_j) for the pairs P_j of matmul_pair_saturated: what FBGEMM's
    saturating sum adds to the exact one. int64 [M, N]; zero when no pair can leave int16
    (none_if_zero: None instead of an array of zeros).

    Sparse: candidate (n, j) pairs from the column bounds, then, per candidate column j, only
    the rows with x0*a0_j + x1*a1_j > 32767 (a0_j, a1_j = max |w| over the candidates of j,
    an upper bound of |P_j| for x >= 0) are evaluated."""
    x = np.asarray(xq_u8)
    w = np.asarray(wq_s8)
    m, k = x.shape
    n = w.shape[0]
    out = None
    zero = None if none_if_zero else np.zeros((m, n), dtype=np.int64)
    if k < 2 or m == 0 or n == 0:
        return zero
    if x.dtype != np.uint8 and x.min() < 0:
        return _pair_saturation_correction_dense(x, w, chunk_elems=chunk_elems)
    kk = k - (k % 2)  # a lone last product (paired with 0) cannot leave int16
    x0, x1 = x[:, 0:kk:2], x[:, 1:kk:2]  # [M, J] views
    colmax = x[:, :kk].max(axis=0).astype(np.int64)
    wp, wn = weight_column_bounds(w)
    cols = pair_saturation_columns(colmax, (wp[:kk], wn[:kk]))  # the only pair columns j that can clip
    if cols.size == 0:
        return zero
    w = w.astype(np.int64)
    w0, w1 = w[:, 0:kk:2][:, cols], w[:, 1:kk:2][:, cols]  # [N, Jc]
    mx0, mx1 = colmax[0::2][cols], colmax[1::2][cols]
    pos = mx0 * np.maximum(w0, 0) + mx1 * np.maximum(w1, 0)
    neg = mx0 * np.maximum(-w0, 0) + mx1 * np.maximum(-w1, 0)
    cand = (pos > _I16_MAX) | (neg > -_I16_MIN)  # [N, Jc]
    cand_jc, cand_n = np.nonzero(cand.T)  # sorted by j
    cand_j = cols[cand_jc]
    w0, w1 = w[:, 0:kk:2], w[:, 1:kk:2]  # [N, J]
    if cand_n.size == 0:
        return zero
    uj, starts, counts = np.unique(cand_j, return_index=True, return_counts=True)
    aw0 = np.abs(w0[cand_n, cand_j])
    aw1 = np.abs(w1[cand_n, cand_j])
    a0 = np.maximum.reduceat(aw0, starts)
    a1 = np.maximum.reduceat(aw1, starts)
    step = max(1, chunk_elems // max(m, 1))
    for s in range(0, uj.size, step):
        sl = slice(s, s + step)
        X0 = x0[:, uj[sl]].astype(np.int32)  # [M, U]
        X1 = x1[:, uj[sl]].astype(np.int32)
        hit = X0 * a0[sl].astype(np.int32) + X1 * a1[sl].astype(np.int32) > _I16_MAX
        rr, uu = np.nonzero(hit)
        if rr.size == 0:
            continue
        reps = counts[sl][uu]
        tot = int(reps.sum())
        off = np.cumsum(reps) - reps
        ci = np.arange(tot) - np.repeat(off - starts[sl][uu], reps)  # index into cand_*
        r_e = np.repeat(rr, reps)
        u_e = np.repeat(uu, reps)
        cn = cand_n[ci]
        cj = cand_j[ci]
        p = X0[r_e, u_e].astype(np.int64) * w0[cn, cj] + X1[r_e, u_e].astype(np.int64) * w1[cn, cj]
        corr = sat16(p) - p
        nz = np.nonzero(corr)[0]
        if nz.size:
            if out is None:
                out = np.zeros((m, n), dtype=np.int64)
            np.add.at(out.reshape(-1), r_e[nz] * n + cn[nz], corr[nz])
    return zero if out is None else out


def weight_column_bounds(w):
    """(max(w[:, k], 0), max(-w[:, k], 0)) per column k of w [N, K], int64; cached per weight."""
    w = np.asarray(w)

    def bounds():
        if w.size == 0:
            return np.zeros(w.shape[1], np.int64), np.zeros(w.shape[1], np.int64)
        return np.maximum(w.max(axis=0).astype(np.int64), 0), np.maximum(-(w.min(axis=0).astype(np.int64)), 0)
    return _cached_weight(w, "column_bounds", bounds)


def pair_saturation_columns(colmax, bounds) -> np.ndarray:
    """Pair indices j (pairs (2j, 2j+1) of the K axis, K even) where some row of a weight
    could leave int16 for data x with 0 <= x[:, k] <= colmax[k]: a cheap superset test with
    the column-wise max positive / negative weight, bounds = (wp, wn) [K] (weight_column_bounds,
    first K columns). Sorted int array, usually empty."""
    cm = np.asarray(colmax, dtype=np.int64)
    wp, wn = bounds
    if cm.size == 0:
        return np.zeros(0, np.int64)
    pos = cm[0::2] * wp[0::2] + cm[1::2] * wp[1::2]
    neg = cm[0::2] * wn[0::2] + cm[1::2] * wn[1::2]
    return np.nonzero((pos > _I16_MAX) | (neg > -_I16_MIN))[0]


def even_odd_pairs(xq, wq):
    """The operands of the k-pairs (2j, 2j+1): (x0, x1 [M, J], w0, w1 [N, J]) as int64, K
    zero-padded to even; None when there is no pair (K < 2, or an empty operand)."""
    x = np.asarray(xq).astype(np.int64)
    w = np.asarray(wq).astype(np.int64)
    m, k = x.shape
    n = w.shape[0]
    if k < 2 or m == 0 or n == 0:
        return None
    if k % 2:
        x = np.concatenate([x, np.zeros((m, 1), np.int64)], axis=1)
        w = np.concatenate([w, np.zeros((n, 1), np.int64)], axis=1)
    return x[:, 0::2], x[:, 1::2], w[:, 0::2], w[:, 1::2]


def _pair_saturation_correction_dense(xq_u8, wq_s8, *, chunk_elems: int = 1 << 22) -> np.ndarray:
    m, n = np.shape(xq_u8)[0], np.shape(wq_s8)[0]
    out = np.zeros((m, n), dtype=np.int64)
    pairs = even_odd_pairs(xq_u8, wq_s8)
    if pairs is None:
        return out
    x0, x1, w0, w1 = pairs  # [M, J], [N, J]
    # bounds with x >= 0
    mx0, mx1 = x0.max(axis=0), x1.max(axis=0)  # [J]
    pos = mx0 * np.maximum(w0, 0) + mx1 * np.maximum(w1, 0)
    neg = mx0 * np.maximum(-w0, 0) + mx1 * np.maximum(-w1, 0)
    cand_n, cand_j = np.nonzero((pos > _I16_MAX) | (neg > -_I16_MIN))  # sorted by n
    if cand_n.size == 0:
        return out
    step = max(1, chunk_elems // max(m, 1))
    for s in range(0, cand_n.size, step):
        cn = cand_n[s:s + step]
        cj = cand_j[s:s + step]
        p = x0[:, cj] * w0[cn, cj] + x1[:, cj] * w1[cn, cj]  # [M, C]
        corr = sat16(p) - p
        starts = np.concatenate([[0], np.nonzero(np.diff(cn))[0] + 1])
        sums = np.add.reduceat(corr, starts, axis=1)
        out[:, cn[starts]] += sums
    return out


def matmul_pair_saturated_blocked(xq_u8, wq_s8, block_starts) -> np.ndarray:
    """matmul_pair_saturated over K split at `block_starts` (sorted offsets, first 0): each
    K block is paired from its own start (its odd tail paired with 0). An odd block start
    shifts the pairing of everything after it."""
    k = np.asarray(xq_u8).shape[1]
    bounds = list(block_starts) + [k]
    out = None
    for b0, b1 in zip(bounds[:-1], bounds[1:]):
        if b1 <= b0:
            continue
        part = matmul_pair_saturated(xq_u8[:, b0:b1], wq_s8[:, b0:b1])
        out = part if out is None else out + part
    if out is None:
        out = np.zeros((np.asarray(xq_u8).shape[0], np.asarray(wq_s8).shape[0]), np.int64)
    return out


def onednn_gemm_k_blocks(k: int, isa: str) -> list:
    """K-block starts of oneDNN's jit int8 GEMM on CPU class `isa` (CpuClass.onednn_gemm_k_blocks)."""
    return cpu_class(isa).onednn_gemm_k_blocks(k)


def pair_saturated_taps(x_taps, w_taps) -> np.ndarray:
    """Σ_j sat_int16(x[...,2j]*w[...,2j] + x[...,2j+1]*w[...,2j+1]) elementwise-broadcast
    over leading dims, taps on the last axis (odd count padded with 0). Used by the FBGEMM
    depthwise kernel, where every (output, channel) has its own weights."""
    x = np.asarray(x_taps).astype(np.int32)
    w = np.asarray(w_taps).astype(np.int32)
    t = x.shape[-1]
    if t % 2:
        x = np.concatenate([x, np.zeros(x.shape[:-1] + (1,), np.int32)], axis=-1)
        w = np.concatenate([w, np.zeros(w.shape[:-1] + (1,), np.int32)], axis=-1)
    p = x[..., 0::2] * w[..., 0::2] + x[..., 1::2] * w[..., 1::2]
    return sat16(p).astype(np.int64).sum(axis=-1)


def im2col_patches(x, kernel, stride, padding, dilation, pad_value) -> np.ndarray:
    """x uint8 [B, C, H, W] -> patches [B, OH, OW, C, KH, KW] (a strided view into the
    padded input). Padding uses `pad_value` (the input zero point, i.e. real 0)."""
    kh, kw = kernel
    sh, sw = stride
    ph, pw = padding
    dh, dw = dilation
    b, c, h, w = x.shape
    xp = np.full((b, c, h + 2 * ph, w + 2 * pw), pad_value, dtype=x.dtype)
    xp[:, :, ph:ph + h, pw:pw + w] = x
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    if xp.shape[2] < eh or xp.shape[3] < ew:
        oh = max(0, (xp.shape[2] - eh) // sh + 1)
        ow = max(0, (xp.shape[3] - ew) // sw + 1)
        return np.zeros((b, oh, ow, c, kh, kw), dtype=x.dtype)
    win = np.lib.stride_tricks.sliding_window_view(xp, (eh, ew), axis=(2, 3))
    win = win[:, :, ::sh, ::sw, ::dh, ::dw]  # [B, C, OH, OW, KH, KW]
    return win.transpose(0, 2, 3, 1, 4, 5)


def im2col_fbgemm(patches, c0, c1) -> np.ndarray:
    """Columns of channels [c0, c1) in FBGEMM's NHWC im2col order: k = (r*KW + s)*Cg + c
    (channel fastest). patches [B, OH, OW, C, KH, KW] -> [B*OH*OW, KH*KW*Cg]."""
    p = patches[:, :, :, c0:c1]
    b, oh, ow, cg, kh, kw = p.shape
    return np.ascontiguousarray(p.transpose(0, 1, 2, 4, 5, 3)).reshape(b * oh * ow, kh * kw * cg)


def padded_nhwc(x, padding, pad_value, c0, c1, even_channels=False) -> np.ndarray:
    """Channels [c0, c1) of x uint8 [B, C, H, W] copied once into padded NHWC memory
    [B, H + 2*ph, W + 2*pw, Ce], padding = pad_value; even_channels adds a zero channel to an
    odd Cg (Ce = Cg + Cg % 2), as oneDNN pairs channels within a tap."""
    ph, pw = padding
    b, _, h, w = x.shape
    cg = c1 - c0
    ce = cg + cg % 2 if even_channels else cg
    xp = np.zeros((b, h + 2 * ph, w + 2 * pw, ce), np.asarray(x).dtype)
    if pad_value:
        xp[..., :cg] = pad_value
    xp[:, ph:ph + h, pw:pw + w, :cg] = np.asarray(x)[:, c0:c1].transpose(0, 2, 3, 1)
    return xp


def im2col_rows(x, kernel, stride, padding, dilation, pad_value, c0, c1, even_channels=False) -> np.ndarray:
    """im2col_fbgemm (even_channels=False) or im2col_onednn (True: a zero channel added to odd Cg)
    straight from x uint8 [B, C, H, W], without the patches view: the input is copied once into
    padded NHWC, where with dilation 1 along W the (s, c) run of each kernel row is contiguous,
    so each row of taps is copied as one block. -> [B*OH*OW, KH*KW*Ce]."""
    kh, kw = kernel
    sh, sw = stride
    ph, pw = padding
    dh, dw = dilation
    b, _, h, w = x.shape
    if (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0) and not (even_channels and (c1 - c0) % 2):
        # a pointwise conv reads each pixel once: the rows are x itself in NHWC order
        return np.asarray(x)[:, c0:c1].transpose(0, 2, 3, 1).reshape(b * h * w, c1 - c0)
    if dw != 1 or h + 2 * ph < dh * (kh - 1) + 1 or w + 2 * pw < kw:
        patches = im2col_patches(x, kernel, stride, padding, dilation, pad_value)
        return (im2col_onednn if even_channels else im2col_fbgemm)(patches, c0, c1)
    xp = padded_nhwc(x, padding, pad_value, c0, c1, even_channels)
    ce = xp.shape[3]
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - (kw - 1) - 1) // sw + 1
    sb, sr, sc, _ = xp.strides
    rows = np.lib.stride_tricks.as_strided(xp, (b, oh, ow, kh, kw * ce), (sb, sh * sr, sw * sc, dh * sr, 1),
                                           writeable=False)
    return np.ascontiguousarray(rows).reshape(b * oh * ow, kh * kw * ce)


def last_axis_max(a) -> np.ndarray:
    """a.max(axis=-1); a short last axis (NHWC with few channels) as a chain of elementwise
    maxima, which NumPy runs ~20x faster than a reduction over 3 contiguous values."""
    if a.shape[-1] > 8 or a.shape[-1] == 0:
        return a.max(axis=-1)
    out = a[..., 0].copy()
    for c in range(1, a.shape[-1]):
        np.maximum(out, a[..., c], out=out)
    return out


def im2col_rows_at(x, rows, out_hw, kernel, stride, padding, dilation, pad_value, c0, c1,
                   even_channels=False) -> np.ndarray:
    """The rows of im2col_rows (same k order and padding) of the output positions `rows` only
    (flat indices b*OH*OW + oh*OW + ow), gathered straight from x uint8 [B, C, H, W]
    -> [R, KH*KW*Ce]."""
    oh_n, ow_n = out_hw
    kh, kw = kernel
    _, _, h, w = x.shape
    rows = np.asarray(rows, dtype=np.int64)
    b, rem = np.divmod(rows, oh_n * ow_n)
    oh, ow = np.divmod(rem, ow_n)
    ih = oh[:, None] * stride[0] + np.arange(kh) * dilation[0] - padding[0]  # [R, KH]
    iw = ow[:, None] * stride[1] + np.arange(kw) * dilation[1] - padding[1]  # [R, KW]
    inside = ((ih >= 0) & (ih < h))[:, :, None] & ((iw >= 0) & (iw < w))[:, None, :]  # [R, KH, KW]
    x = np.asarray(x)
    if not (x.flags.c_contiguous or x.transpose(0, 2, 3, 1).flags.c_contiguous):
        x = np.ascontiguousarray(x)
    flat = x.reshape(-1) if x.flags.c_contiguous else x.transpose(0, 2, 3, 1).reshape(-1)  # views
    sb, sc, sh, sw = (st // x.itemsize for st in x.strides)
    # flat indices with np.take: much faster than 4-array fancy indexing; a short channel axis
    # is gathered channel by channel, as NumPy loops slowly over a broadcast inner axis of 3
    base = ((b * sb)[:, None, None] + (np.clip(ih, 0, h - 1) * sh)[:, :, None]
            + (np.clip(iw, 0, w - 1) * sw)[:, None, :])  # [R, KH, KW]
    cg = c1 - c0
    ce = cg + cg % 2 if even_channels else cg
    vals = np.zeros(base.shape + (ce,), x.dtype)
    if cg <= 8:
        for c in range(cg):
            vals[..., c] = np.take(flat, base + (c0 + c) * sc)
    else:
        vals[..., :cg] = np.take(flat, base[..., None] + np.arange(c0, c1) * sc)
    if not inside.all():
        vals[~inside, :cg] = pad_value
    return vals.reshape(rows.size, kh * kw * ce)


def channel_max(x, c0, c1) -> np.ndarray:
    """max over channels [c0, c1) of x [B, C, H, W] -> [B, H, W], reduced in x's memory order
    (an outer-axis maximum for NCHW memory, a short inner one for NHWC)."""
    xg = np.asarray(x)[:, c0:c1]
    if xg.shape[1] > 1 and xg.strides[1] < xg.strides[3]:  # channels innermost (NHWC memory)
        return last_axis_max(xg.transpose(0, 2, 3, 1))
    return xg.max(axis=1)


def per_channel_max(x) -> np.ndarray:
    """max of x [B, C, H, W] per channel, int64 [C], reduced in x's memory order."""
    x = np.asarray(x)
    if x.size == 0:
        return np.zeros(x.shape[1], np.int64)
    if x.shape[1] > 1 and x.strides[1] < x.strides[3]:  # NHWC memory: rows of C
        return x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1]).max(axis=0).astype(np.int64)
    return x.reshape(x.shape[0], x.shape[1], -1).max(axis=2).max(axis=0).astype(np.int64)


def rows_reading(hot, out_hw, kernel, stride, dilation) -> np.ndarray:
    """Sorted flat output positions (b*OH*OW + oh*OW + ow) whose window holds a True cell of
    hot [B, Hp, Wp] (padded coordinates): for each hot cell and tap (r, s), oh = (h - r*dh)/sh
    when that divides and lands in range."""
    oh_n, ow_n = out_hw
    kh, kw = kernel
    hp, wp = hot.shape[1:]
    hb, rem = np.divmod(np.flatnonzero(hot), hp * wp)  # flat: ~10x faster than a 3-D nonzero
    hh, hw = np.divmod(rem, wp)
    oh = hh[:, None] - np.arange(kh) * dilation[0]  # [n, KH]
    ow = hw[:, None] - np.arange(kw) * dilation[1]  # [n, KW]
    okh = (oh >= 0) & (oh % stride[0] == 0) & (oh // stride[0] < oh_n)
    okw = (ow >= 0) & (ow % stride[1] == 0) & (ow // stride[1] < ow_n)
    ok = okh[:, :, None] & okw[:, None, :]  # [n, KH, KW]
    i, r, s = np.nonzero(ok)
    flat = np.sort((hb[i] * oh_n + oh[i, r] // stride[0]) * ow_n + ow[i, s] // stride[1])
    return flat[np.concatenate(([True], flat[1:] != flat[:-1]))] if flat.size else flat  # np.unique, faster


def weight_rows(w, layout, o0, o1) -> np.ndarray:
    """weight_fbgemm ('fbgemm') or weight_onednn ('onednn') of a constant weight, cached."""
    return _cached_weight(w, "rows_" + layout, lambda: (weight_fbgemm if layout == "fbgemm" else weight_onednn)(w, o0, o1),
                          (o0, o1))


def weight_fbgemm(w, o0, o1) -> np.ndarray:
    """Conv weight [O, Cg, KH, KW] rows [o0, o1) -> [Og, KH*KW*Cg] in the same k order."""
    wg = w[o0:o1]
    return np.ascontiguousarray(wg.transpose(0, 2, 3, 1)).reshape(wg.shape[0], -1)


def onednn_conv_acc(patches0, valid, w, c0, c1, o0, o1, x_zero_point, saturate) -> np.ndarray:
    """oneDNN jit_uni_x8s8s32x convolution (jit_uni_int8:avx2 / jit_uni_int8_1x1:avx2),
    one group: weights are blocked 4 input channels at a time per tap (ABcd2b8a4b), so
    vpmaddubsw pairs adjacent input channels (c 2j, 2j+1) WITHIN a tap (Cg padded with 0
    to even; pairs never cross taps). Taps falling in the padding are skipped, and the src
    zero point is compensated over the valid taps only:

        acc = Σ_valid taps Σ_j sat16(x[2j]w[2j] + x[2j+1]w[2j+1]) - zx * Σ_valid taps Σ_c w

    patches0: [B, OH, OW, C, KH, KW] padded with 0; valid: [B*OH*OW, KH*KW] 0/1.
    saturate=False gives the exact int32 sum (VNNI)."""
    cols = im2col_onednn(patches0, c0, c1)
    w2 = weight_onednn(w, o0, o1)
    acc = matmul_pair_saturated(cols, w2) if saturate else matmul_exact(cols, w2.T)
    t = patches0.shape[4] * patches0.shape[5]
    wsum = w2.astype(np.int64).reshape(o1 - o0, t, -1).sum(axis=2)  # [Og, T]
    return acc - int(x_zero_point) * matmul_exact(valid, wsum.T)


def im2col_onednn(patches0, c0, c1) -> np.ndarray:
    """Columns of channels [c0, c1) in oneDNN's pairing order: k = (r*KW + s)*Ce + c, Ce = Cg
    rounded up to even with a zero channel, so pairs (2j, 2j+1) never cross a tap.
    patches0 [B, OH, OW, C, KH, KW] (padding 0) -> uint8 [B*OH*OW, KH*KW*Ce]."""
    p = patches0[:, :, :, c0:c1]
    b, oh, ow, cg, kh, kw = p.shape
    cols = np.zeros((b, oh, ow, kh, kw, cg + cg % 2), p.dtype)
    cols[..., :cg] = p.transpose(0, 1, 2, 4, 5, 3)
    return cols.reshape(b * oh * ow, kh * kw * (cg + cg % 2))


def weight_onednn(w, o0, o1) -> np.ndarray:
    """Conv weight [O, Cg, KH, KW] rows [o0, o1) -> [Og, KH*KW*Ce] in im2col_onednn's order."""
    wg = np.asarray(w)[o0:o1]
    og, cg, kh, kw = wg.shape
    out = np.zeros((og, kh, kw, cg + cg % 2), wg.dtype)
    out[..., :cg] = wg.transpose(0, 2, 3, 1)
    return out.reshape(og, -1)


def depthwise_fbgemm_acc(patches, w, x_zero_point, w_zero_point) -> np.ndarray:
    """The reference model of FBGEMM's depthwise kernel, every tap pair evaluated (conv runs the
    equal, faster depthwise_exact_acc + depthwise_pair_correction; tests hold them together).
    FBGEMM depthwise fast path (FbgemmI8DepthwiseAvx2-inl.h), groups == C, O = C or 2C
    (output channel o reads input channel o // (O // C)):
    taps t = r*K + s paired (0,1),(2,3),... per channel, each pair sum saturated to int16
    (vpmaddubsw), last odd tap paired with 0; input padding = zx. Then
        raw = Σ_j P_j - zx*Σ_t w_t - zw*Σ_t x_t + T*zx*zw.
    patches [B, OH, OW, C, KH, KW] uint8, w int8 [C, 1, KH, KW]; zw per channel [C].
    Returns [B, OH, OW, O]. Saturates on every ISA (VNNI included, numerics.md §3)."""
    b, oh, ow, c_in, kh, kw = patches.shape
    c = np.asarray(w).shape[0]
    xt = patches.reshape(b, oh, ow, c_in, kh * kw)
    if c != c_in:
        xt = np.repeat(xt, c // c_in, axis=3)
    wt = np.asarray(w).reshape(c, kh * kw)
    acc = pair_saturated_taps(xt, wt)
    zw = np.broadcast_to(np.asarray(w_zero_point, dtype=np.int64).reshape(-1), (c,))
    t = kh * kw
    acc = acc - int(x_zero_point) * wt.astype(np.int64).sum(axis=1)
    if np.any(zw != 0):
        acc = acc - zw * xt.astype(np.int64).sum(axis=-1) + t * int(x_zero_point) * zw
    return acc


def depthwise_taps(x, w, x_zero_point, stride, padding, dilation):
    """The padded NHWC input of a depthwise conv and its taps as strided views: (xp, taps) with
    xp [B, Hp, Wp, C] uint8 padded with zx (FBGEMM's padding) and taps(t, channels) the values
    that tap t = r*KW + s reads, [B, OH, OW, len(channels)] (channels: input channel indices)."""
    _, _, kh, kw = np.shape(w)
    xp = padded_nhwc(x, padding, int(x_zero_point), 0, np.shape(x)[1])
    oh = (xp.shape[1] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (xp.shape[2] - dilation[1] * (kw - 1) - 1) // stride[1] + 1

    def taps(t, channels=None):
        """channels None: every input channel, a view (no copy)."""
        r, s = divmod(t, kw)
        h0, w0 = r * dilation[0], s * dilation[1]
        view = xp[:, h0:h0 + (oh - 1) * stride[0] + 1:stride[0], w0:w0 + (ow - 1) * stride[1] + 1:stride[1]]
        return view if channels is None else view[..., channels]
    return xp, taps


def depthwise_exact_acc(x, w, x_zero_point, w_zero_point, stride, padding, dilation) -> np.ndarray:
    """Σ_t (x_t - zx)(w_t - zw) of a depthwise conv (groups == C, O = m*C, output o reads input
    o // m), exactly, float32 [B, OH, OW, O]: Σ_t x_t*w_t tap by tap in float32 (every partial
    sum below 255*Σ|w| < 2**24 for 8-bit data and at most 512 taps, so exact), then the zero-point
    terms - zx*Σw - zw*Σx + T*zx*zw (int64 if zw != 0)."""
    o, _, kh, kw = np.shape(w)
    c = np.shape(x)[1]
    ch = None if o == c else np.arange(o) // (o // c)  # channel multiplier 1: views, no gather
    wt = np.asarray(w).reshape(o, kh * kw)
    if kh * kw > 512:
        raise ValueError("depthwise_exact_acc: more than 512 taps")
    _, taps = depthwise_taps(x, w, x_zero_point, stride, padding, dilation)
    wf = wt.astype(np.float32)
    acc = None
    for t in range(kh * kw):
        if acc is None:
            acc = taps(t, ch) * wf[:, t]
        else:
            acc += taps(t, ch) * wf[:, t]
    zx = int(x_zero_point)
    acc -= np.float32(zx) * wt.astype(np.int64).sum(axis=1).astype(np.float32)  # |zx*Σw| < 2**24: exact
    zw = np.broadcast_to(np.asarray(w_zero_point, dtype=np.int64).reshape(-1), (o,))
    if np.any(zw != 0):
        xsum = sum(taps(t, ch).astype(np.int64) for t in range(kh * kw))
        return acc.astype(np.int64) - zw * xsum + kh * kw * zx * zw
    return acc


def depthwise_pair_correction(x, w, x_zero_point, stride, padding, dilation):
    """What FBGEMM's depthwise kernel (depthwise_fbgemm_acc) adds to the exact sum:
    Σ_j (sat_int16(P_j) - P_j), P_j = x_2j*w_2j + x_2j+1*w_2j+1 over the taps of one output
    channel (padding = zx, an odd last tap paired with 0 cannot leave int16). Only the
    (channel, pair) candidates whose bound xmax*(|w_2j| + |w_2j+1|) (same signs) can leave
    int16 are evaluated, over every output position. Sparse list for conv._corrected,
    [(rows, channels, corr int64 [M, len(channels)])], or None when nothing saturates."""
    o, _, kh, kw = np.shape(w)
    c = np.shape(x)[1]
    mult = o // c
    wt = np.asarray(w).reshape(o, kh * kw).astype(np.int64)
    npairs = (kh * kw) // 2
    if npairs == 0 or np.size(x) == 0:
        return None
    xmax = per_channel_max(x)
    if any(padding):
        xmax = np.maximum(xmax, int(x_zero_point))
    xmax_o = np.repeat(xmax, mult)[:, None]
    w0, w1 = wt[:, 0:2 * npairs:2], wt[:, 1:2 * npairs:2]  # [O, J]
    pos = xmax_o * (np.maximum(w0, 0) + np.maximum(w1, 0))
    neg = xmax_o * (np.maximum(-w0, 0) + np.maximum(-w1, 0))
    cand = (pos > _I16_MAX) | (neg > -_I16_MIN)  # [O, J]
    if not cand.any():
        return None
    cols = np.nonzero(cand.any(axis=1))[0]
    _, taps = depthwise_taps(x, w, x_zero_point, stride, padding, dilation)
    corr = None
    for j in np.nonzero(cand.any(axis=0))[0]:
        oj = np.nonzero(cand[:, j])[0]
        p = (taps(2 * j, oj // mult).astype(np.int32) * w0[oj, j].astype(np.int32)
             + taps(2 * j + 1, oj // mult).astype(np.int32) * w1[oj, j].astype(np.int32))
        d = np.clip(p, _I16_MIN, _I16_MAX)
        d -= p
        if not d.any():
            continue
        if corr is None:
            corr = np.zeros(p.shape[:3] + (cols.size,), np.int64)
        corr[..., np.searchsorted(cols, oj)] += d
    if corr is None:
        return None
    corr = corr.reshape(-1, cols.size)
    return [(np.arange(corr.shape[0]), cols, corr)]


# -- optional acceleration ------------------------------------------------------------------------
_BACKEND = "numpy"


def set_backend(name: str) -> None:
    """'numpy' (default; float64 BLAS through NumPy) or 'torch' (float64 matmul through torch's
    BLAS, when torch is installed). Both are exact: every sum stays below 2**53."""
    global _BACKEND
    if name not in ("numpy", "torch"):
        raise ValueError(f"unknown accumulate backend {name!r}: choose numpy or torch")
    if name == "torch" and importlib.util.find_spec("torch") is None:
        raise ValueError("accumulate backend 'torch' needs PyTorch installed (pip install torch==2.13.0)")
    _BACKEND = name
    _leave_cores_to_torch()


def _leave_cores_to_torch() -> None:
    """With torch sums, torch's OpenMP workers spin between calls: the elementwise pool leaves them
    their cores (parallel.set_spinning); with NumPy sums it uses every core."""
    from . import parallel

    if _BACKEND == "torch":
        import torch

        parallel.set_spinning(torch.get_num_threads() - 1)
    else:
        parallel.set_spinning(0)


@contextlib.contextmanager
def using_backend(name: str | None):
    """set_backend(name) for a with-block (None: leave it as it is), restored afterwards."""
    global _BACKEND
    saved = _BACKEND
    if name is not None:
        set_backend(name)
    try:
        yield
    finally:
        _BACKEND = saved
        _leave_cores_to_torch()


def _matmul_f32(a, b):
    if _BACKEND == "torch":
        import torch

        # from_numpy keeps strides: a transposed weight is not copied
        return torch.matmul(torch.from_numpy(np.asarray(a)), torch.from_numpy(np.asarray(b))).numpy()
    return np.matmul(a, b)


def _matmul_f64(a, b):
    if _BACKEND == "torch":
        import torch

        # from_numpy keeps strides: a transposed weight is not copied
        return torch.matmul(torch.from_numpy(np.asarray(a)), torch.from_numpy(np.asarray(b))).numpy()
    return np.matmul(a, b)


def _absmax_int(a) -> int:
    if a.size == 0:
        return 0
    return max(abs(int(a.max())), abs(int(a.min())))


def value_range(x) -> tuple[int, int]:
    """(min, max) of an integer array as Python ints; (0, 0) when empty."""
    x = np.asarray(x)
    if x.size == 0:
        return 0, 0
    return int(x.min()), int(x.max())


def pairs_can_saturate(x, w, x_range=None) -> bool:
    """Whether any u8*s8 pair sum x0*w0 + x1*w1 (raw stored values, as FBGEMM's vpmaddubsw and
    oneDNN's AVX2 kernels form them) can leave int16 for these data: 2*max|x|*max|w| > 32767.
    x_range: value_range(x), when the caller has it."""
    if x.size == 0 or w.size == 0:
        return False
    lo, hi = x_range if x_range is not None else value_range(x)
    return 2 * max(abs(lo), abs(hi)) * _cached_weight(w, "absmax", lambda: _absmax_int(w)) > 32767


_WCACHE: dict = {}


def _cached_weight(w, what, fn, extra=()):
    """Per-weight quantities, computed on first use, keyed by id of the (constant) weight
    array. The entry holds a weak reference to the array and goes when the array does, so a
    temporary passed here neither keeps memory alive nor lets a reused id hit a stale entry."""
    key = (id(w), what) + tuple(extra)
    hit = _WCACHE.get(key)
    if hit is not None and hit[0]() is w:
        return hit[1]
    val = fn()
    try:
        ref = weakref.ref(w, lambda _r, key=key, cache=_WCACHE: cache.pop(key, None))
    except TypeError:  # not weak-referenceable: not cached
        return val
    if len(_WCACHE) > 4096:
        _WCACHE.clear()
    _WCACHE[key] = (ref, val)
    return val


_CHANNELS_LAST = True


def conv_exact_torch(x4, w4, x_zero_point, w_zero_point, stride, padding, dilation, groups, as_float=False):
    """acc[m, o] = Σ (x - zx)(w - zw_o) over the window, padding contributing 0, computed with
    torch's float32 direct convolution in input-channel chunks small enough that every partial
    sum stays below 2**24 (max|x| * Σ|w| over the chunk, per output channel, so float32 is
    exact in any summation order); NNPACK (Winograd, inexact) is switched off. Each chunk's
    float32 result is exact and converted straight to an integer. Returns int64 [N*OH*OW, O]
    (as_float and one chunk: the float32 result itself, exact integers below 2**24)."""
    import torch
    import torch.nn.functional as F

    nb, c_in, _, _ = x4.shape
    c_out, cpg, kh, kw = w4.shape
    zw = np.broadcast_to(np.asarray(w_zero_point, dtype=np.int64).reshape(-1), (c_out,))
    zkey = (zw.tobytes(),)

    def _prep():
        wsn = np.asarray(w4).astype(np.float32) - zw.astype(np.float32).reshape(-1, 1, 1, 1)
        wt = torch.from_numpy(np.ascontiguousarray(wsn))
        if _CHANNELS_LAST:
            wt = wt.contiguous(memory_format=torch.channels_last)
        return wt, np.abs(wsn.astype(np.float64)).sum(axis=(2, 3))
    ws, wabs = _cached_weight(w4, "conv_exact_torch", _prep, zkey + (_CHANNELS_LAST,))  # wabs [O, Cg]: Σ_taps |w - zw|
    zx = int(x_zero_point)
    x4 = np.asarray(x4)
    # per input channel max |x - zx|; a partial sum of output o over channels C is at most
    # Σ_{c in C} xa[c] * wabs[o, c]
    if x4.size:
        xa = x4.max(axis=(0, 2, 3)).astype(np.float64) - zx
        if zx:
            xa = np.maximum(xa, zx - x4.min(axis=(0, 2, 3)).astype(np.float64))
        xa = np.maximum(xa, 0.0)
    else:
        xa = np.zeros(c_in)
    xa_o = xa.reshape(groups, cpg)[np.arange(c_out) // max(1, c_out // groups)]  # [O, Cg]
    contrib = wabs * xa_o
    total = float(contrib.sum(axis=1).max()) if contrib.size else 0.0
    lim = float(2 ** 24 - 1)
    mf = torch.channels_last if _CHANNELS_LAST else torch.contiguous_format
    xs = torch.from_numpy(x4).to(dtype=torch.float32, memory_format=mf)
    if zx:
        xs -= float(zx)
    bounds = [0, cpg]
    if total > lim:
        cum = np.concatenate([np.zeros((c_out, 1)), np.cumsum(contrib, axis=1)], axis=1)  # [O, Cg+1]
        bounds = [0]
        while bounds[-1] < cpg:
            c0 = bounds[-1]
            d = (cum[:, c0 + 1:] - cum[:, c0:c0 + 1]).max(axis=0)  # nondecreasing in c1
            c1 = c0 + max(1, int(np.searchsorted(d, lim, side="right")))
            bounds.append(min(c1, cpg))
    idt = torch.int32 if total < 2.0**31 - 1 else torch.int64
    out = None
    with torch.backends.nnpack.flags(enabled=False), torch.no_grad():
        if len(bounds) <= 2:
            out = F.conv2d(xs, ws, None, stride, padding, dilation, groups)
        else:
            xg = xs.reshape(nb, groups, cpg, *xs.shape[2:])
            for c0, c1 in zip(bounds[:-1], bounds[1:]):
                xsub = xg[:, :, c0:c1].reshape(nb, groups * (c1 - c0), *xs.shape[2:]).contiguous(memory_format=mf)
                part = F.conv2d(xsub, ws[:, c0:c1].contiguous(memory_format=mf), None, stride, padding, dilation, groups).to(idt)
                out = part if out is None else out.add_(part)
    acc = out.permute(0, 2, 3, 1).numpy().reshape(-1, c_out)
    if as_float and acc.dtype == np.float32:
        return acc
    # float32 (exact integers) or int32/int64 chunk sums -> int64 [N*OH*OW, O], one pass
    return acc.astype(np.int64)


# -- oneDNN int8 convolution as an accumulator (torch backend) --------------------------------------
_ONEDNN_HOST_MODE: list = []  # [mode] once probed


def onednn_conv_raw(x4, w4, x_zero_point, stride, padding, dilation, groups, as_float=False, x_range=None):
    """torch's oneDNN u8*s8 convolution (onednn::qconv2d_pointwise) run as a plain integer
    accumulator: unit scales, no bias, float32 output, so dst = f32(acc) with

        acc = Σ_valid taps Σ_c x*w (the host kernel's own int16 pair sums) - zx * Σ_valid taps Σ_c w

    x4 uint8 [N, C, H, W], w4 int8 [O, C/g, KH, KW] with weight zero point 0. Returns int32
    [N*OH*OW, O] (as_float: the float32 result itself, exact integers), or None when some
    |dst| >= 2**24 (f32 may have rounded it)."""
    import torch

    x4 = np.asarray(x4)
    if np.shape(w4)[2:] == (1, 1) and tuple(stride) != (1, 1):
        # oneDNN's strided 1x1 path (its input is first gathered to unit stride) gave other
        # integers now and then on saturating data (random seed 529, 1 call in ~100): gather here,
        # and run the unit-stride conv, which has the same sums
        if any(padding):
            return None
        x4 = x4[:, :, ::stride[0], ::stride[1]]
        stride, dilation = (1, 1), (1, 1)
    nb, c_in, h, wd = x4.shape
    c_out = w4.shape[0]
    geo = (list(stride), list(padding), list(dilation), int(groups))

    def _prep():
        ws = torch.ones(c_out, dtype=torch.float32)
        packed = torch.ops.onednn.qconv_prepack(torch.from_numpy(np.ascontiguousarray(w4)), ws, 1.0,
                                                int(x_zero_point), *geo, [nb, c_in, h, wd])
        return packed, ws, torch.zeros(c_out, dtype=torch.int64)
    packed, ws, wz = _cached_weight(w4, "onednn_conv_raw", _prep, (repr(geo), int(x_zero_point), x4.shape))
    # from_numpy keeps NumPy's strides: an NCHW view of NHWC memory is already channels-last
    xt = torch.from_numpy(x4).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        dst = torch.ops.onednn.qconv2d_pointwise(xt, 1.0, int(x_zero_point), packed, ws, wz, None, *geo,
                                                 1.0, 0, torch.float32, "none", [], "")
    acc = dst.permute(0, 2, 3, 1).numpy().reshape(-1, c_out)  # NHWC memory: a view
    if max_abs_conv_sum(x4, w4, x_zero_point, x_range) >= 2**24 and acc.size and (acc.min() <= -2.0**24 or acc.max() >= 2.0**24):
        return None  # |acc| < 2**24 is guaranteed by the bound, or checked
    return acc if as_float else acc.astype(np.int32)


def max_abs_row_sum(w) -> int:
    """max over outputs o of Σ|w[o, ...]| (a weight [O, ...]), cached per weight; 0 when empty."""
    w = np.asarray(w)
    return _cached_weight(w, "max_abs_row_sum", lambda: int(np.abs(w.astype(np.int64)).reshape(len(w), -1)
                                                                .sum(axis=1).max()) if w.size else 0)


def max_abs_conv_sum(x4, w4, x_zero_point, x_range=None) -> int:
    """A bound of every partial sum of a conv: max|x - zx| * max_o Σ|w[o]| (weights cached).
    x_range: value_range(x4), when the caller has it."""
    x4 = np.asarray(x4)
    zx = int(x_zero_point)
    lo, hi = x_range if x_range is not None else value_range(x4)
    xa = max(hi - zx, zx - lo, 0) if x4.size else 0
    wabs = max_abs_row_sum(w4)
    return xa * wabs


def onednn_host_conv_mode() -> str | None:
    """How this machine's oneDNN u8*s8 conv sums pairs, found once by running it on data that
    saturates and comparing with both models of onednn_conv_acc: 'saturate' (vpmaddubsw, AVX2 /
    AVX512 without VNNI), 'exact' (VNNI), or None (neither: the accelerator is not used)."""
    if not _ONEDNN_HOST_MODE:
        mode = None
        try:
            rng = np.random.default_rng(7)
            x = rng.integers(200, 256, (1, 6, 5, 5)).astype(np.uint8)
            w = rng.choice([-128, 127, -100, 120, 3], (8, 6, 3, 3)).astype(np.int8)
            got = onednn_conv_raw(x, w, 9, (1, 1), (1, 1), (1, 1), 1)
            p0 = im2col_patches(x, (3, 3), (1, 1), (1, 1), (1, 1), np.uint8(0))
            valid = im2col_patches(np.ones((1, 1, 5, 5), np.uint8), (3, 3), (1, 1), (1, 1), (1, 1),
                                   np.uint8(0)).reshape(25, 9)
            for name, sat in (("saturate", True), ("exact", False)):
                if got is not None and np.array_equal(got, onednn_conv_acc(p0, valid, w, 0, 6, 0, 8, 9, sat)):
                    mode = name
        except Exception:  # no oneDNN in this torch build: keep the float32 path
            mode = None
        _ONEDNN_HOST_MODE.append(mode)
    return _ONEDNN_HOST_MODE[0]
