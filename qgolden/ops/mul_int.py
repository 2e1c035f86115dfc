"""Integer-only quantized mul: exact product, then integer requantization (requantize_int).

    c   = (a - za) * (b - zb)                       (exact; b broadcast to a)
    out = requantize_int(c) with one channel's multiplier/shift/bias/frac (or its thresholds)
"""
from __future__ import annotations

import numpy as np

from ..integer.requant import apply_plan
from .spec import OpSpec


def mul_int(a, b, *, a_zero_point, b_zero_point, multiplier, shift, bias, frac, use_table, thresholds,
            out_zero_point, out_min=0, out_max=255, rounding="half_up", bits=32, dtype="uint8",
            profile=None, trace=None) -> np.ndarray:
    a, b = np.broadcast_arrays(np.asarray(a).astype(np.int64), np.asarray(b).astype(np.int64))
    c = (a - int(a_zero_point)) * (b - int(b_zero_point))
    p = dict(multiplier=multiplier, shift=shift, bias=bias, frac=frac, use_table=use_table,
             thresholds=thresholds, out_zero_point=out_zero_point, out_min=out_min, out_max=out_max,
             rounding=rounding, bits=bits)
    out = apply_plan(c, p, 0).astype(dtype)
    if trace is not None:
        trace.update(product=c, out=out)
    return out


SPECS = [
    OpSpec("mul_int", "mul_int", integer="integer"),
]
