"""Integer-only conv, accumulation stage: the engine's exact int accumulator, no requantization.

    acc[n, o, y, x] = Σ (x - zx)(w - zw) over the window, as the engine's kernel forms it
                      (ops.conv.conv_accumulate: FBGEMM depthwise / AVX2 int16 pair saturation
                      and oneDNN's padding compensation included), integers (int32 or int64), NCHW (NCL for conv1d), in NHWC memory.
Followed by `requantize_int` (axis 1) in an integer-only program.
"""
from __future__ import annotations

import numpy as np

from ..numerics.profile import kernel_profile
from .conv import conv_accumulate
from .spec import OpSpec


def conv_acc(x, *, x_zero_point, weight, weight_zero_point, stride, padding, dilation, groups,
             profile, trace=None) -> np.ndarray:
    acc, ctx = conv_accumulate(x, weight, x_zero_point, weight_zero_point, stride, padding, dilation,
                               groups, kernel_profile(profile))
    # an NCHW view of the NHWC result, as the conv op returns it: requantize_int reads it channel last
    out = acc.reshape(ctx["nb"], ctx["oh"], ctx["ow"], ctx["c_out"]).transpose(0, 3, 1, 2)
    if ctx["conv1d"]:
        out = out[:, :, 0, :]
    if trace is not None:
        trace.update(acc=out, path=ctx["path"])
    return out


SPECS = [
    OpSpec("conv_acc", "conv_acc", integer="integer"),
]
