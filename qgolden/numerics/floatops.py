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

    a*b of two float32 is exact in float64; the sum p + c is made exact with TwoSum,
    then rounded to odd in float64, after which rounding to float32 is correctly
    rounded (53 >= 2*24 + 2), i.e. the same as a hardware FMA.
    """
    a = np.asarray(a, dtype=np.float32).astype(np.float64)
    b = np.asarray(b, dtype=np.float32).astype(np.float64)
    c = np.asarray(c, dtype=np.float32).astype(np.float64)
    p = a * b  # exact
    s = p + c
    # TwoSum: err = (p + c) - s exactly
    bb = s - p
    err = (p - (s - bb)) + (c - bb)
    with np.errstate(invalid="ignore"):
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
