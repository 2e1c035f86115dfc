"""quantize_per_tensor / quantize_per_channel op: float32 -> quantized ints (see numerics.quantize)."""
from __future__ import annotations

import numpy as np

from ..numerics import quantize as Q
from ..numerics.floatops import fma32
from .spec import OpSpec


def quantize(x, *, scale, zero_point, dtype="uint8", axis=None, profile=None, trace=None) -> np.ndarray:
    """Per tensor (scale, zero_point scalars): FBGEMM FMA path, zp added before rounding.
    Per channel (scale, zero_point 1-D, axis): quantize_val per element (no FMA)."""
    x = np.asarray(x, dtype=np.float32)
    if axis is None:
        out = Q.quantize_per_tensor(x, scale, zero_point, dtype)
    else:
        shape = [1] * x.ndim
        shape[axis] = -1
        s = np.asarray(scale, dtype=np.float64)
        z = np.asarray(zero_point, dtype=np.int64)
        out = np.empty(x.shape, dtype=Q.NP_DTYPE[dtype])
        xm = np.moveaxis(x, axis, 0)
        om = np.moveaxis(out, axis, 0)
        for c in range(xm.shape[0]):
            om[c] = Q.quantize_val(xm[c], float(s[c]), int(z[c]), dtype)
    if trace is not None:
        trace.update(out=out)
        if axis is None and dtype != "int32":
            # for explanations only: the float32 value FBGEMM rounds (zero point already added)
            trace["pre_round"] = fma32(x, np.float32(1.0) / np.float32(scale), np.float32(zero_point))
    return out


SPECS = [
    OpSpec("quantize", "quantize", elementwise=True, integer="quantize", summary='turns floats into integers', formula=('y_q = clamp(rne(f32(x · f32(1/s) + z)), 0, 255)   (one fused multiply-add: z added before rounding)', ),
           torch=('nnq.Quantize (QuantStub)', 'torch.quantize_per_tensor', 'aten::quantize_per_tensor')),
]
