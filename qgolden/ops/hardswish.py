"""quantized hardswish (nnq.Hardswish(scale, zp), F.hardswish with output qparams).

ATen `qhardswish_kernel`:
    vector: x = fma32(si, q, f32(si*-zi)); y = f32(f32(x * min(max(f32(x+3),0),6)) / 6)
            q' = clamp(rne(min(f32(y * f32(1.0/so_double)), 2^31-128)) + zo)
    scalar tail: x = f32(si*(q-zi)); same y; quantize_val (1.f/f32(so), zp before rounding)
QNNPACK (engine qnnpack, quint8): 256-entry lookup table (`pytorch_qnnp_create_hardswish_nc_q8`).
"""
from __future__ import annotations

import numpy as np

from ..numerics import elementwise as E
from ..numerics.floatops import f32
from .spec import OpSpec


def _hs(x):
    x = np.asarray(x, dtype=np.float32)
    t = f32(x.astype(np.float64) + 3.0)
    t = np.minimum(np.maximum(t, np.float32(0)), np.float32(6))
    p = f32(x.astype(np.float64) * t.astype(np.float64))
    return f32(p.astype(np.float64) / 6.0)


def qnnpack_table(x_scale, x_zero_point, out_scale, out_zero_point):
    i = np.arange(256)
    x = f32(np.float64(np.float32(x_scale)) * (i - int(x_zero_point)).astype(np.float32).astype(np.float64))
    y = _hs(x)
    inv = np.float32(1.0) / np.float32(out_scale)
    t = f32(f32(y.astype(np.float64) * np.float64(inv)).astype(np.float64) + float(out_zero_point))
    t = np.clip(t, 0, 255)
    return np.rint(t.astype(np.float64)).astype(np.int64)


def hardswish(x, *, x_scale, x_zero_point, out_scale, out_zero_point, dtype="uint8", profile, trace=None) -> np.ndarray:
    q = np.asarray(x).astype(np.int64)
    if profile["engine"] == "qnnpack" and dtype == "uint8":
        tab = qnnpack_table(x_scale, x_zero_point, out_scale, out_zero_point)
        out = tab[q]
        if trace is not None:
            trace.update(kernel="qnnpack_lut", table=tab, out=out)
        return E.to_dtype(out, dtype)
    vx = E.vec_dequantize(q, x_scale, x_zero_point)
    vy = _hs(vx)
    vq = E.vec_quantize(vy, E.inv_scale_d(out_scale), out_zero_point, dtype)
    sx = E.scalar_dequantize(q, x_scale, x_zero_point)
    sy = _hs(sx)
    sq = E.scalar_quantize(sy, out_scale, out_zero_point, dtype)
    m = E.unary_mask(q.shape, profile)
    out = np.where(m, vq, sq)
    if trace is not None:
        trace.update(kernel="aten_qhardswish", dequant=np.where(m, vx, sx), pre_round=np.where(m, vy, sy),
                     vector_mask=m, out=out)
    return E.to_dtype(out, dtype)


SPECS = [
    OpSpec("hardswish", "hardswish", elementwise=True, integer="lut", summary='hardswish through floats', formula=('x = s_x·(x_q − z_x);  y = x·min(max(x + 3, 0), 6) / 6;  y_q = clamp(rne(y/s_y) + z_y)', '(qnnpack: a 256-entry table indexed by x_q)', ),
           torch=('nnq.Hardswish', 'F.hardswish', 'quantized::hardswish', 'aten::hardswish')),
]
