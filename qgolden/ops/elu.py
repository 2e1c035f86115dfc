"""quantized elu (nnq.ELU(scale, zp, alpha), F.elu with output qparams).

ATen `qelu_kernel` (scale = input_scale = 1 for nn.ELU):
    vector: x = fma dequant; y = x > 0 ? x : f32(expm1f(f32(x*1)) * alpha); y = f32(y*1)
            q' = vecQ(y, inv = f32(1.0/so_double))          (Sleef_expm1f8_u10)
    scalar tail: x = f32(si*(q-zi)); y = x >= 0 ? x : f32(f32(expm1f(x)*alpha)*1); quantize_val
expm1f modelled as correctly rounded.
"""
from __future__ import annotations

import numpy as np

from ..numerics import elementwise as E
from ..numerics.floatops import f32
from .spec import OpSpec


def expm1f(x):
    return f32(np.expm1(np.asarray(x, dtype=np.float32).astype(np.float64)))


def _elu(x, alpha, scale=1.0, input_scale=1.0):
    x = np.asarray(x, dtype=np.float32)
    a = np.float32(alpha)
    xs = f32(x.astype(np.float64) * np.float64(np.float32(input_scale)))
    neg = f32(expm1f(xs).astype(np.float64) * np.float64(a))
    y = np.where(x > 0, x, neg)
    return f32(y.astype(np.float64) * np.float64(np.float32(scale)))


def elu(x, *, x_scale, x_zero_point, out_scale, out_zero_point, alpha=1.0, dtype="uint8",
        profile, trace=None) -> np.ndarray:
    q = np.asarray(x).astype(np.int64)
    vx = E.vec_dequantize(q, x_scale, x_zero_point)
    vy = _elu(vx, alpha)
    vq = E.vec_quantize(vy, E.inv_scale_d(out_scale), out_zero_point, dtype)
    sx = E.scalar_dequantize(q, x_scale, x_zero_point)
    sy = _elu(sx, alpha)
    sq = E.scalar_quantize(sy, out_scale, out_zero_point, dtype)
    m = E.unary_mask(q.shape, profile)
    out = np.where(m, vq, sq)
    if trace is not None:
        trace.update(kernel="aten_qelu", dequant=np.where(m, vx, sx), pre_round=np.where(m, vy, sy),
                     vector_mask=m, out=out)
    return E.to_dtype(out, dtype)


SPECS = [
    OpSpec("elu", "elu", elementwise=True, integer="lut", summary='ELU through floats', formula=('y_q = clamp(rne(elu(s_x·(x_q − z_x))/s_y) + z_y)', ),
           torch=('nnq.ELU', 'nn.ELU', 'F.elu', 'quantized::elu', 'aten::elu')),
]
