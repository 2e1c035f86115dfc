"""quantized hardsigmoid (nn.Hardsigmoid / F.hardsigmoid on a quantized tensor).

Output qparams are fixed: quint8 (1/256, 0), qint8 (1/256, -128).

ATen `qhardsigmoid_kernel` (aten/src/ATen/native/quantized/cpu/kernels/QuantizedOpKernels.cpp):
    vector: x = fma32(si, q, f32(si*-zi)); y = f32(min(max(f32(x + 3), 0), 6) / 6)
            q' = clamp(rne(f32(y * 256)) + zo)                       (Vectorized::quantize)
    scalar tail: x = f32(si*(q-zi)); same y; quantize_val(1/256, zo, y) (zp added before rounding)
QNNPACK (engine qnnpack, quint8; qhardsigmoid.cpp -> qnnpack/src/hardsigmoid.c): a 256-entry table
    x = f32(si * f32(i - zi)); y = f32(clamp(f32(x + 3), 0, 6) / 6); lrintf(clamp(f32(256 * y), 0, 255)).
"""
from __future__ import annotations

import numpy as np

from ..numerics import elementwise as E
from ..numerics.floatops import f32
from .spec import OpSpec


def out_qparams(dtype="uint8"):
    """(scale, zero point) ATen gives the output: 1/256 and 0 (quint8) or -128 (qint8)."""
    return (1.0 / 256.0, -128 if dtype == "int8" else 0)


def hardsigmoid_f32(x):
    """f32(min(max(f32(x + 3), 0), 6) / 6), as both ATen paths and QNNPACK compute it."""
    t = f32(np.asarray(x, dtype=np.float32).astype(np.float64) + 3.0)
    t = np.minimum(np.maximum(t, np.float32(0)), np.float32(6))
    return f32(t.astype(np.float64) / 6.0)


def hardsigmoid(x, *, x_scale, x_zero_point, dtype="uint8", profile, trace=None) -> np.ndarray:
    q = np.asarray(x).astype(np.int64)
    so, zo = out_qparams(dtype)
    if profile["engine"] == "qnnpack" and dtype == "uint8":
        tab = E.qnnpack_u8_table(x_scale, x_zero_point,
                                 lambda v: f32(hardsigmoid_f32(v).astype(np.float64) * 256.0))
        out = tab[q]
        if trace is not None:
            trace.update(kernel="qnnpack_lut", table=tab, out=out)
        return E.to_dtype(out, dtype)
    vx = E.vec_dequantize(q, x_scale, x_zero_point)
    vy = hardsigmoid_f32(vx)
    vq = E.vec_quantize(vy, E.inv_scale_d(so), zo, dtype)
    sx = E.scalar_dequantize(q, x_scale, x_zero_point)
    sy = hardsigmoid_f32(sx)
    sq = E.scalar_quantize(sy, so, zo, dtype)
    m = E.unary_mask(q.shape, profile)
    out = np.where(m, vq, sq)
    if trace is not None:
        trace.update(kernel="aten_qhardsigmoid", dequant=np.where(m, vx, sx), pre_round=np.where(m, vy, sy),
                     vector_mask=m, out=out, out_scale=so, out_zero_point=zo)
    return E.to_dtype(out, dtype)


SPECS = [
    OpSpec("hardsigmoid", "hardsigmoid", elementwise=True, integer="lut",
           summary="hardsigmoid through floats (fixed output scale 1/256)",
           formula=("x = s_x·(x_q − z_x);  y = min(max(x + 3, 0), 6) / 6;  y_q = clamp(rne(y·256) + z_y)",
                    "(qnnpack: a 256-entry table indexed by x_q)"),
           torch=("nn.Hardsigmoid", "F.hardsigmoid", "aten::hardsigmoid")),
]
