"""Tables for 8-bit ops, built from the engine's own op functions, and the float32 quantize
threshold table.

An ATen elementwise kernel computes each element either in its vector body or in its scalar
tail (numerics/elementwise.py), and the two round differently: a unary op is therefore TWO
functions of the 8-bit input, tabulated by running the engine op with a profile that puts every
element on the vector path (force_path 'vector') and one that puts every element in the tail
(force_path 'scalar'). The integer program picks the table per element with the engine's own
(integer) path mask. Where both tables agree, one table is kept.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..numerics.quantize import NP_DTYPE, QRANGE
from .fixedpoint import float32_keys, key_to_float32
from .thresholds import step_thresholds


def path_profiles(profile):
    return (dict(profile, force_path="vector", num_threads=1), dict(profile, force_path="scalar", num_threads=1))


def unary_tables(node, profile, in_dtype):
    """(vector table, scalar table or None) over every input value qmin..qmax."""
    fn = ops.get(node.op)
    qmin, qmax = QRANGE[in_dtype]
    x = np.arange(qmin, qmax + 1).astype(NP_DTYPE[in_dtype])
    pv, ps = path_profiles(profile)
    tv = np.asarray(fn(x, **node.attrs, **node.consts, profile=pv)).astype(np.int64)
    ts = np.asarray(fn(x, **node.attrs, **node.consts, profile=ps)).astype(np.int64)
    return tv, (None if np.array_equal(tv, ts) else ts)


def binary_tables(node, profile, in_dtype):
    """(vector table, scalar table or None), index (a - qmin)*256 + (b - qmin): all 65,536 pairs."""
    fn = ops.get(node.op)
    qmin, qmax = QRANGE[in_dtype]
    v = np.arange(qmin, qmax + 1)
    a = np.repeat(v, v.size).astype(NP_DTYPE[in_dtype])
    b = np.tile(v, v.size).astype(NP_DTYPE[in_dtype])
    pv, ps = path_profiles(profile)
    tv = np.asarray(fn(a, b, **node.attrs, **node.consts, profile=pv)).astype(np.int64)
    ts = np.asarray(fn(a, b, **node.attrs, **node.consts, profile=ps)).astype(np.int64)
    return tv, (None if np.array_equal(tv, ts) else ts)


def channel_table(node, profile, in_dtype, channels):
    """[C, 256] table of a per-channel op (batch_norm): the engine op on x[0, c, :] = every value."""
    fn = ops.get(node.op)
    qmin, qmax = QRANGE[in_dtype]
    x = np.broadcast_to(np.arange(qmin, qmax + 1), (1, channels, qmax - qmin + 1)).astype(NP_DTYPE[in_dtype])
    return np.asarray(fn(np.ascontiguousarray(x), **node.attrs, **node.consts, profile=profile)).astype(np.int64)[0]


KEY_LO = int(float32_keys(np.array([np.float32(-np.inf)]).view(np.int32))[0])
KEY_HI = int(float32_keys(np.array([np.float32(np.inf)]).view(np.int32))[0])


def quantize_thresholds(node, profile):
    """(thresholds, qmin, NaN value, f, wrap) of the engine's per-tensor quantize (`quantize`, or
    PT2E's `qdq_quantize`): the float32 keys where it steps to levels qmin+1..qmax.

    The quantize is monotone in x (fma, multiply or divide by a positive scale, round, clamp are)
    up to x = 2^24 * scale, far past its top level. Beyond, it stays at its top level, except where
    the rounded x/scale is converted to int32 out of range (torchao's reference quantize: x86
    cvttps2dq gives INT32_MIN, so the largest floats quantize to qmin): wrap = (first key where the
    value leaves the top level, the value there), or None."""
    fn = ops.get(node.op)
    dtype = node.attrs.get("dtype", "uint8")
    qmin, qmax = QRANGE[dtype]

    def f(keys):
        with np.errstate(all="ignore"):
            return np.asarray(fn(key_to_float32(keys), **node.attrs, profile=profile)).astype(np.int64)

    top = int(float32_keys(np.array([np.float32(node.attrs["scale"]) * np.float32(2.0**24)]).view(np.int32))[0])
    levels = np.arange(qmin + 1, qmax + 1)
    t = step_thresholds(f, np.array([KEY_LO]), np.array([top]), levels)[:, 0]
    t = np.where(t > top, KEY_HI + 1, t)  # levels the quantize never reaches (quant_max < qmax)
    base = qmin  # out = qmin + #{k : key >= t_k}
    at_top = int(f(np.array([top]))[0])
    w = int(step_thresholds(lambda k: (f(k) != at_top).astype(np.int64), np.array([top]), np.array([KEY_HI]),
                            np.array([1]))[0, 0])
    wrap = (w, int(f(np.array([w]))[0])) if w <= KEY_HI else None
    with np.errstate(all="ignore"):
        nan = int(np.asarray(fn(np.array([np.nan], np.float32), **node.attrs, profile=profile))[0])
    return t, base, nan, f, wrap


def check_quantize(node, profile, thresholds, base, nan_value, wrap, samples=1 << 16, seed=0):
    """Mismatches of the threshold table against the engine quantize on: both sides of every
    threshold and of the wrap, ±0, ±inf, NaNs, and `samples` random bit patterns (the proof is
    monotonicity; this exercises the op)."""
    from ..ops.quantize_thr import quantize_thr

    rng = np.random.default_rng(seed)
    edges = np.concatenate([thresholds, [wrap[0]] if wrap else []]).astype(np.int64)
    keys = np.concatenate([edges - 2, edges - 1, edges, edges + 1,
                           [KEY_LO, KEY_HI, -1, 0], rng.integers(KEY_LO, KEY_HI + 1, samples)])
    keys = np.clip(keys, KEY_LO, KEY_HI)
    x = key_to_float32(keys)
    x = np.concatenate([x, np.array([np.nan, -np.nan], np.float32)])
    dtype = node.attrs.get("dtype", "uint8")
    mine = quantize_thr(x, thresholds=thresholds, out_min=base, nan_value=nan_value, dtype=dtype,
                        wrap_key=wrap[0] if wrap else None, wrap_value=wrap[1] if wrap else None)
    with np.errstate(all="ignore"):
        ref = ops.get(node.op)(x, **node.attrs, profile=profile)
    return int((mine.astype(np.int64) != ref.astype(np.int64)).sum()), int(x.size)


def dequantize_table(node, in_dtype):
    """int32 bit patterns of the engine's per-tensor dequantize (or PT2E qdq_dequantize) of every value."""
    qmin, qmax = QRANGE[in_dtype]
    x = np.arange(qmin, qmax + 1).astype(NP_DTYPE[in_dtype])
    y = np.asarray(ops.get(node.op)(x, **node.attrs, **node.consts), dtype=np.float32)
    return np.ascontiguousarray(y).view(np.int32).astype(np.int64)
