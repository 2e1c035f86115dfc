"""Integer-only quantize of a float32 input: a threshold table on the float32 bit patterns.

    key = bits            if bits >= 0      (bits: the input's int32 bit pattern; no float math)
          -(bits & 0x7fffffff) - 1 otherwise  (order-preserving: -0.0 -> -1, +0.0 -> 0)
    out = out_min + #{k : key >= thresholds[k]};   NaN patterns -> nan_value
    key >= wrap_key (when given) -> wrap_value   (torchao's reference quantize of floats so large
                                                  that x/scale leaves int32: x86 gives INT32_MIN)
The thresholds are the exact float32 values where the engine's quantize steps (integer/lut.py).
"""
from __future__ import annotations

import numpy as np

from ..integer.fixedpoint import float32_keys, is_nan_bits
from .spec import OpSpec


def quantize_thr(x, *, thresholds, out_min, nan_value, dtype="uint8", wrap_key=None, wrap_value=None,
                 bits_formula=None, profile=None, trace=None):
    """bits_formula (optional): the same quantize as integer arithmetic on the bits, proved equal to
    the table (integer/quantize_bits.py); the C export emits it. The table defines the result here."""
    from ..integer.fastlut import cached_bucket_plan, count_thresholds32, float32_keys32  # (see ops/lut.py)

    bits = np.ascontiguousarray(np.asarray(x, dtype=np.float32)).view(np.int32)
    plan = cached_bucket_plan(thresholds) if trace is None else None
    if plan is not None:  # the same integers: int32 keys, counts from a bucket table (integer/fastlut.py)
        key = float32_keys32(bits)
        out = count_thresholds32(key, plan).astype(np.int64) + int(out_min)
        nan = (bits & np.int32(0x7FFFFFFF)) > np.int32(0x7F800000)
    else:  # the reference (a trace takes this path)
        key = float32_keys(bits)
        out = np.searchsorted(np.asarray(thresholds, dtype=np.int64), key, side="right") + int(out_min)
        nan = is_nan_bits(bits)
    if wrap_key is not None:
        out = np.where(key >= int(wrap_key), int(wrap_value), out)
    out = np.where(nan, int(nan_value), out).astype(dtype)
    if trace is not None:
        trace.update(out=out)
    return out


SPECS = [
    OpSpec("quantize_thr", "quantize_thr", integer="integer"),
]
