"""quantized sigmoid (torch.sigmoid on a quantized tensor; nnq.Sigmoid does not exist).
Output qparams are fixed: quint8 (1/256, 0), qint8 (1/256, -128).

ATen `qsigmoid_kernel`:
    vector: x = f32(f32(q - zi) * si)      (two-argument dequantize, no FMA)
            y = 1.f / f32(1 + expf(-x))     (Sleef_expf8_u10; modelled as correctly rounded expf)
            q' = vecQ(y) with inv = f32(1.0/so_double) = 256
    scalar tail: x = f32(si*(q-zi)); y = f32(1.0 / (1.0 + (double)expf(-x))); quantize_val
QNNPACK (engine qnnpack, quint8): lookup table  lrintf(clamp(256.f / f32(1.f + expf(-x))))
    with x = f32(si * f32(i - zi)).
"""
from __future__ import annotations

import numpy as np

from ..numerics import elementwise as E
from ..numerics.floatops import f32
from .spec import OpSpec


def expf(x):
    """float32 exp, correctly rounded (glibc expf / Sleef u10 agree on all but rare hard cases)."""
    with np.errstate(over="ignore", under="ignore"):
        return f32(np.exp(np.asarray(x, dtype=np.float32).astype(np.float64)))


def out_qparams(dtype="uint8"):
    return (1.0 / 256.0, -128 if dtype == "int8" else 0)


def sigmoid(x, *, x_scale, x_zero_point, dtype="uint8", profile, trace=None) -> np.ndarray:
    q = np.asarray(x).astype(np.int64)
    so, zo = out_qparams(dtype)
    if profile["engine"] == "qnnpack" and dtype == "uint8":
        tab = E.qnnpack_u8_table(x_scale, x_zero_point,
                                 lambda x: f32(256.0 / f32(1.0 + expf(-x).astype(np.float64)).astype(np.float64)))
        out = tab[q]
        if trace is not None:
            trace.update(kernel="qnnpack_lut", table=tab, out=out)
        return E.to_dtype(out, dtype)
    vx = E.vec_dequantize2(q, x_scale, x_zero_point)
    vden = f32(1.0 + expf(-vx).astype(np.float64))
    vy = f32(1.0 / vden.astype(np.float64))
    vq = E.vec_quantize(vy, E.inv_scale_d(so), zo, dtype)
    sx = E.scalar_dequantize(q, x_scale, x_zero_point)
    sy = f32(1.0 / (1.0 + expf(-sx).astype(np.float64)))
    sq = E.scalar_quantize(sy, so, zo, dtype)
    m = E.unary_mask(q.shape, profile)
    out = np.where(m, vq, sq)
    if trace is not None:
        trace.update(kernel="aten_qsigmoid", dequant=np.where(m, vx, sx), pre_round=np.where(m, vy, sy),
                     vector_mask=m, out=out, out_scale=so, out_zero_point=zo)
    return E.to_dtype(out, dtype)


SPECS = [
    OpSpec("sigmoid", "sigmoid", elementwise=True, integer="lut", summary='sigmoid through floats (fixed output scale 1/256)', formula=('y_q = clamp(rne(σ(s_x·(x_q − z_x))·256))', ),
           torch=('nn.Sigmoid', 'nnq.Sigmoid', 'torch.sigmoid', 'x.sigmoid', 'F.sigmoid', 'quantized::sigmoid', 'aten::sigmoid')),
]
