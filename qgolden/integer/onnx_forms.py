"""The arithmetic behind the integer-only forms of ONNX programs (QLinearConv, QGemm / QLinearMatMul,
QLinearAdd / QLinearMul, QLinearGlobalAveragePool, the table ops): accumulator intervals, the
runtime's requantization as a function of the integer accumulator, and tables over every value
an op can receive. The formulas are those of qgolden/numerics/mlas.py (MLAS and the ONNX
reference evaluator); integer/transform.py turns them into nodes and certificates.
"""
from __future__ import annotations

import numpy as np

from ..numerics import mlas

QRANGE = mlas.QRANGE


def acc_interval(rows, w_zero_point, xlo: int, xhi: int, x_zero_point: int, x_dtype: str, saturate: bool):
    """[lo, hi] int64 per output channel holding every value of Σ_k (x_k - zx)(w[o, k] - zw[o]) for
    inputs in [xlo, xhi] (zx included: conv padding reads it). rows: the weights as [O, K].
    Exact sums: the tight interval, each end reached by every x_k at an end of its range.
    saturate (MLAS u8s8, ops/onnx_qlinear.gemm_acc): the kernel forms S = Σ pairs sat16(u0 w0 + u1 w1)
    over u = x (+128 for int8 x), then acc = S - zu Σw - zw Σu + K zu zw; sat16(P) lies between 0 and
    P, so S lies in [Σ_k min(0, umin w_k, umax w_k), Σ_k max(0, umin w_k, umax w_k)] (a superset:
    certification enumerates every value in it)."""
    w = np.asarray(rows).astype(np.int64)
    o, k = w.shape
    zw = np.broadcast_to(np.asarray(w_zero_point, np.int64).reshape(-1), (o,))
    zx = int(x_zero_point)
    xlo, xhi = min(int(xlo), zx), max(int(xhi), zx)
    if not saturate:
        d = w - zw[:, None]
        a, b = (xlo - zx) * d, (xhi - zx) * d
        return np.minimum(a, b).sum(axis=1), np.maximum(a, b).sum(axis=1)
    off = 128 if x_dtype == "int8" else 0
    ulo, uhi, zu = xlo + off, xhi + off, zx + off
    s_lo = np.minimum(0, np.minimum(ulo * w, uhi * w)).sum(axis=1)
    s_hi = np.maximum(0, np.maximum(ulo * w, uhi * w)).sum(axis=1)
    base = -zu * w.sum(axis=1) + k * zu * zw
    r1, r2 = -zw * k * ulo, -zw * k * uhi
    return s_lo + base + np.minimum(r1, r2), s_hi + base + np.maximum(r1, r2)


def gemm_requant(bias, scale, y_zero_point: int, dtype: str, runtime: str, channels: int):
    """(ref, monotone_ok, pivots) of QLinearConv / QGemm's output stage over the accumulator without
    bias, acc [L, C] -> y [L, C]:
        mlas:      y = MlasRequantizeOutput(acc + bias[c], scale[c], zy)   (mlas.requantize_output)
        reference: y = rint(clip(f64(acc + bias[c]) * f64(scale[c]) + zy))  (mlas.requantize_reference)
    Non-decreasing in acc while acc + bias stays in int32 (the kernels' accumulator type); the float
    value is 0 at acc = -bias[c]."""
    b = np.zeros(channels, np.int64) if bias is None else \
        np.broadcast_to(np.asarray(bias, np.int64).reshape(-1), (channels,))
    s = np.broadcast_to(np.asarray(scale, np.float32).reshape(-1), (channels,))
    zy = int(y_zero_point)

    def ref(acc, trace=None):
        v = np.asarray(acc, np.int64) + b
        if runtime == "reference":
            return mlas.requantize_reference(v, s, zy, dtype).astype(np.int64)
        return mlas.requantize_output(v, s, zy, dtype).astype(np.int64)

    def monotone_ok(lo, hi):
        return (np.asarray(lo) + b >= -(2**31)) & (np.asarray(hi) + b < 2**31)

    return ref, monotone_ok, -b.astype(np.float64)


def binary_branch(a_shape, b_shape, fixed_point: bool) -> str:
    """Which MLAS QLinearAdd kernel branch a node's operand shapes take (ops/onnx_qlinear.onnx_qlinear_add):
    'scalar_a' / 'scalar_b' (qladd_avx2.cpp's scalar-operand branch: a separate multiply and add for the
    scalar), or 'vector' (both fused multiply-adds; also arm64's fixed point, which has no branches)."""
    if fixed_point:
        return "vector"
    a_size, b_size = int(np.prod(a_shape, dtype=np.int64)), int(np.prod(b_shape, dtype=np.int64))
    if a_size == 1 and b_size != 1:
        return "scalar_a"
    if b_size == 1 and a_size != 1:
        return "scalar_b"
    if a_size == 1 and b_size == 1:
        return "vector"
    shape = np.broadcast_shapes(tuple(a_shape), tuple(b_shape))
    a_scalar = bool(len(a_shape)) and tuple(a_shape)[-1:] == (1,) and shape[-1] != 1
    b_scalar = bool(len(b_shape)) and tuple(b_shape)[-1:] == (1,) and shape[-1] != 1
    if a_scalar and not b_scalar:
        return "scalar_a"
    if b_scalar and not a_scalar:
        return "scalar_b"
    return "vector"


def binary_table(fn, attrs, dtype: str, branch: str, profile) -> np.ndarray:
    """[256 * 256] int64: the node's own kernel on every pair of input values, in the branch its shapes
    take, indexed (a - qmin) * 256 + (b - qmin)."""
    qmin, qmax = QRANGE[dtype]
    v = np.arange(qmin, qmax + 1).astype(dtype)
    if branch == "scalar_a":  # a [256, 1]: one a per row of b [1, 256]
        t = np.asarray(fn(v[:, None], v[None, :], **attrs, profile=profile)).astype(np.int64)
    elif branch == "scalar_b":  # rows are b, columns a, then transposed to [a, b]
        t = np.asarray(fn(v[None, :], v[:, None], **attrs, profile=profile)).astype(np.int64).T
    else:
        t = np.asarray(fn(np.repeat(v, v.size), np.tile(v, v.size), **attrs, profile=profile)).astype(np.int64)
    return np.ascontiguousarray(t).reshape(-1)


def gap_requant(x_scale, x_zero_point: int, y_scale, y_zero_point: int, image_size: int, dtype: str,
                fixed_point: bool):
    """ref(S) of QLinearGlobalAveragePool over the exact sum S = Σ (x - zX) of one channel
    (mlas.global_average_pool: x86 float requantization, arm64 fixed point); non-decreasing in S."""
    def ref(S, trace=None):
        sums = np.asarray(S, np.int64) + int(x_zero_point) * int(image_size)
        return mlas.global_average_pool(sums, image_size, x_scale, x_zero_point, y_scale, y_zero_point, dtype,
                                        fixed_point).astype(np.int64)

    return ref


def byte_table_as_lut(table, dtype: str) -> np.ndarray:
    """A table indexed by the input's byte (x.view(uint8), ORT's lookup ops) re-indexed by x - qmin
    (qgolden's lut): entry i is table[(i + qmin) & 0xFF]."""
    qmin, qmax = QRANGE[dtype]
    idx = np.arange(qmin, qmax + 1, dtype=np.int64) & 0xFF
    return np.asarray(table)[idx].astype(np.int64)
