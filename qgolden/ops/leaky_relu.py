"""quantized leaky_relu (nnq.LeakyReLU(scale, zp, negative_slope), F.leaky_relu).

ATen `leaky_qrelu_out_kernel`:
    vector: x = fma32(si, q, f32(si*-zi)); y = f32(x * (x > 0 ? 1 : f32(slope)))
            q' = vecQ(y) with inv = 1.0f/f32(so)
    scalar tail: x = f32(si*(q-zi)); y = x > 0 ? x : f32(x*slope); quantize_val
"""
from __future__ import annotations

import numpy as np

from ..numerics import elementwise as E
from ..numerics.floatops import f32
from .spec import OpSpec


def _lr(x, slope):
    x = np.asarray(x, dtype=np.float32)
    return np.where(x > 0, x, f32(x.astype(np.float64) * np.float64(np.float32(slope))))


def qnnpack_table(x_scale, x_zero_point, out_scale, out_zero_point, negative_slope):
    i = np.arange(256)
    x = f32(np.float64(np.float32(x_scale)) * (i - int(x_zero_point)).astype(np.float64))
    y = _lr(x, negative_slope)
    t = f32(y.astype(np.float64) / np.float64(np.float32(out_scale)))
    t = f32(t.astype(np.float64) + float(out_zero_point))
    return np.clip(np.rint(t.astype(np.float64)), 0, 255).astype(np.int64)


def leaky_relu(x, *, x_scale, x_zero_point, out_scale, out_zero_point, negative_slope=0.01,
               dtype="uint8", profile, trace=None) -> np.ndarray:
    q = np.asarray(x).astype(np.int64)
    vx = E.vec_dequantize(q, x_scale, x_zero_point)
    vy = _lr(vx, negative_slope)
    vq = E.vec_quantize(vy, E.inv_scale32(out_scale), out_zero_point, dtype)
    sx = E.scalar_dequantize(q, x_scale, x_zero_point)
    sy = _lr(sx, negative_slope)
    sq = E.scalar_quantize(sy, out_scale, out_zero_point, dtype)
    m = E.unary_mask(q.shape, profile)
    out = np.where(m, vq, sq)
    if trace is not None:
        trace.update(kernel="aten_leaky_qrelu", dequant=np.where(m, vx, sx), pre_round=np.where(m, vy, sy),
                     vector_mask=m, out=out)
    return E.to_dtype(out, dtype)


SPECS = [
    OpSpec("leaky_relu", "leaky_relu", elementwise=True, integer="lut", summary='leaky ReLU through floats', formula=('y_q = clamp(rne(leaky(s_x·(x_q − z_x))/s_y) + z_y)', ),
           torch=('nnq.LeakyReLU', 'nn.LeakyReLU', 'F.leaky_relu', 'quantized::leaky_relu', 'aten::leaky_relu')),
]
