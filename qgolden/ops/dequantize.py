"""dequantize op: quantized ints -> float32 (see numerics.quantize)."""
from __future__ import annotations

import numpy as np

from ..numerics import quantize as Q
from .spec import OpSpec


def dequantize(q, *, scale, zero_point, axis=None, profile=None, trace=None) -> np.ndarray:
    """Per tensor: f32(f32(s) * f32(q - zp)). Per channel (axis): f32((q - zp_c) * s_c) in double."""
    if axis is None:
        out = Q.dequantize_per_tensor(q, scale, zero_point)
    else:
        out = Q.dequantize_per_channel(q, scale, zero_point, axis)
    if trace is not None:
        trace.update(out=out)
    return out


SPECS = [
    OpSpec("dequantize", "dequantize", elementwise=True, integer="dequantize", summary="turns integers back into floats: the model's last step", formula=('y = f32(f32(s) · f32(x_q − z))', ),
           torch=('nnq.DeQuantize (DeQuantStub)', 'x.dequantize()', 'torch.dequantize', 'aten::dequantize')),
]
