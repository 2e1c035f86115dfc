"""quantized::cat (QFunctional.cat / FloatFunctional.cat after convert).

qcat (qconcat.cpp), generic path: inputs whose (scale, zp) equal the output's are copied;
the others are requantized as quantize_per_tensor(dequantize(x_i), so, zo):
    x = f32(f32(s_i) * f32(q - z_i));  q' = clamp(rne(fma32(x, 1.f/f32(so), f32(zo))))
(the NHWC fast path for channels-last 4-D inputs is not modelled.)
"""
from __future__ import annotations

import numpy as np

from ..numerics import elementwise as E
from ..numerics.quantize import dequantize_per_tensor, quantize_per_tensor
from .spec import OpSpec


def cat(xs, *, x_scales, x_zero_points, out_scale, out_zero_point, dim=0, relu=False, dtype="uint8",
        profile, trace=None) -> np.ndarray:
    parts = []
    for q, s, z in zip(xs, x_scales, x_zero_points):
        q = np.asarray(q)
        if float(s) == float(out_scale) and int(z) == int(out_zero_point) and not relu:
            parts.append(q.astype(np.int64))
        else:
            f = dequantize_per_tensor(q, s, z)
            if relu:
                f = np.maximum(f, np.float32(0))
            parts.append(quantize_per_tensor(f, out_scale, out_zero_point, dtype).astype(np.int64))
    out = np.concatenate(parts, axis=dim)
    if trace is not None:
        trace.update(out=out)
    return E.to_dtype(out, dtype)


SPECS = [
    OpSpec("cat", "cat", integer="cat", summary='concatenates; inputs with other qparams are requantized', formula=('y_q = concat(requant(x_i))', ),
           torch=('torch.cat', 'torch.concat', 'FloatFunctional.cat', 'quantized::cat', 'aten::cat', 'aten::concat')),
]
