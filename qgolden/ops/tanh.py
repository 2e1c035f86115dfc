"""quantized tanh (torch.tanh on a quantized tensor). Output qparams fixed:
quint8 (2/256, 128), qint8 (2/256, 0).

ATen `qtanh_kernel`: vector x = fma dequant, y = tanhf(x) (Sleef_tanhf8_u10), vecQ(y, inv=128);
scalar tail x = f32(si*(q-zi)), y = tanhf(x), quantize_val. tanhf modelled as correctly rounded.
QNNPACK (engine qnnpack, quint8): lookup table lrintf(clamp(f32(tanhf(x) * 128) + 128)).
"""
from __future__ import annotations

import numpy as np

from ..numerics import elementwise as E
from ..numerics.floatops import f32
from .spec import OpSpec


def tanhf(x):
    return f32(np.tanh(np.asarray(x, dtype=np.float32).astype(np.float64)))


def out_qparams(dtype="uint8"):
    return (2.0 / 256.0, 128 if dtype == "uint8" else 0)


def tanh(x, *, x_scale, x_zero_point, dtype="uint8", profile, trace=None) -> np.ndarray:
    q = np.asarray(x).astype(np.int64)
    so, zo = out_qparams(dtype)
    if profile["engine"] == "qnnpack" and dtype == "uint8":
        tab = E.qnnpack_u8_table(x_scale, x_zero_point,
                                 lambda x: f32(f32(tanhf(x).astype(np.float64) * 128.0).astype(np.float64) + 128.0))
        out = tab[q]
        if trace is not None:
            trace.update(kernel="qnnpack_lut", table=tab, out=out)
        return E.to_dtype(out, dtype)
    vx = E.vec_dequantize(q, x_scale, x_zero_point)
    vy = tanhf(vx)
    vq = E.vec_quantize(vy, E.inv_scale_d(so), zo, dtype)
    sx = E.scalar_dequantize(q, x_scale, x_zero_point)
    sy = tanhf(sx)
    sq = E.scalar_quantize(sy, so, zo, dtype)
    m = E.unary_mask(q.shape, profile)
    out = np.where(m, vq, sq)
    if trace is not None:
        trace.update(kernel="aten_qtanh", dequant=np.where(m, vx, sx), pre_round=np.where(m, vy, sy),
                     vector_mask=m, out=out, out_scale=so, out_zero_point=zo)
    return E.to_dtype(out, dtype)


SPECS = [
    OpSpec("tanh", "tanh", elementwise=True, integer="lut", summary='tanh through floats (fixed output scale 2/256, zero point 128)', formula=('y_q = clamp(rne(tanh(s_x·(x_q − z_x))·128) + 128)', ),
           torch=('nn.Tanh', 'torch.tanh', 'x.tanh', 'F.tanh', 'aten::tanh')),
]
