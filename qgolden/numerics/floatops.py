"""IEEE float32 primitives the kernels use, reproduced exactly in NumPy.

PyTorch's quantized kernels compute in float32, sometimes with fused multiply-add
(one rounding) where NumPy has none. These helpers give the exact float32 results.
"""
from __future__ import annotations

import numpy as np


def f32(x) -> np.ndarray:
    """Round to float32 (round-to-nearest-even), as a C `(float)` cast."""
    return np.asarray(x, dtype=np.float64).astype(np.float32)


def rne(x) -> np.ndarray:
    """Round half to even, as x86 `cvtps2dq`, `std::nearbyint`, `lrintf` under default MXCSR."""
    return np.rint(x)


def fma32(a, b, c) -> np.ndarray:
    """float32 fused multiply-add: f32(a*b + c) with a single rounding.

    a*b of two float32 is exact in float64, so s = f64(a*b + c) is one rounding away from the
    exact sum v, and f32(s) == f32(v) unless s is exactly a float32 rounding midpoint (no
    midpoint can lie strictly between v and its nearest double s: midpoints are doubles).
    Only those elements, and results near or below the float32 subnormal range, take the
    exact route (_fma32_exact): TwoSum, then round-to-odd in float64.
    """
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    c = np.asarray(c, dtype=np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        s = np.asarray(np.multiply(a, b, dtype=np.float64))
        if s.ndim and s.shape == np.broadcast_shapes(s.shape, c.shape):
            s += c
        else:
            s = np.asarray(s + c.astype(np.float64))
    bits = s.view(np.int64)
    # a float32 midpoint: below the float32 mantissa (29 low bits of the double's), exactly 1000...
    low = np.bitwise_and(bits, 0x1FFFFFFF)
    suspect = low == 0x10000000
    # float32 subnormals (|s| < 2**-126) have fewer mantissa bits; inf/nan: leave to the exact route
    small = np.bitwise_and(bits, 0x7FF0000000000000) < (1023 - 125) << 52
    suspect |= small & (s != 0)
    suspect |= ~np.isfinite(s)
    with np.errstate(over="ignore"):
        out = s.astype(np.float32)
    if suspect.any():
        if out.ndim == 0:
            return _fma32_exact(a, b, c)
        idx = np.nonzero(suspect)
        bb = np.broadcast_arrays(a, b, c)
        out[idx] = _fma32_exact(bb[0][idx], bb[1][idx], bb[2][idx])
    return out


def _fma32_exact(a, b, c) -> np.ndarray:
    """fma32 for any input: p = a*b exact in float64, the sum p + c made exact with TwoSum,
    then rounded to odd in float64, after which rounding to float32 is correctly rounded
    (53 >= 2*24 + 2), i.e. the same as a hardware FMA."""
    a = np.asarray(a, dtype=np.float32).astype(np.float64)
    b = np.asarray(b, dtype=np.float32).astype(np.float64)
    c = np.asarray(c, dtype=np.float32).astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        p = a * b  # exact
        s = p + c
        # TwoSum: err = (p + c) - s exactly
        bb = s - p
        err = (p - (s - bb)) + (c - bb)
        bits = s.view(np.int64) if isinstance(s, np.ndarray) else np.float64(s).view(np.int64)
        inexact = (err != 0) & np.isfinite(s)
        even = (bits & 1) == 0
        fix = inexact & even
        if np.any(fix):
            s = np.where(fix, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)
    return np.asarray(s).astype(np.float32)


def recip32(x) -> np.float32:
    """1.0f / f32(x): a float32 reciprocal, as kernels form `inverse_scale`."""
    return np.float32(1.0) / np.float32(x)
