"""Integer clamp: out = min(max(x, lo), hi) (relu: lo = zero point; hardtanh / relu6: the quantized
bounds). nhwc_as_nchw reproduces torch's QNNPACK clamp layout quirk (ops/hardtanh.py)."""
from __future__ import annotations

import numpy as np

from .spec import OpSpec


def clamp_int(x, *, lo=None, hi=None, dtype="uint8", nhwc_as_nchw=False, profile=None, trace=None):
    out = np.asarray(x).astype(np.int64)
    if lo is not None:
        out = np.maximum(out, int(lo))
    if hi is not None:
        out = np.minimum(out, int(hi))
    out = out.astype(dtype)
    if nhwc_as_nchw and out.ndim == 4:
        n, c, h, w = out.shape
        out = np.ascontiguousarray(out.transpose(0, 2, 3, 1)).reshape(n, c, h, w)
    if trace is not None:
        trace.update(out=out)
    return out


SPECS = [
    OpSpec("clamp_int", "clamp_int", integer="integer"),
]
