"""Clamp-style quantized ops (qparams unchanged, integer clamp):
    relu6 (nnq.ReLU6 / quantized::relu6):  q' = min(max(q, zp), quantize_val(6.0))
    hardtanh / clamp (F.hardtanh, torch.clamp): q' = min(max(q, quantize_val(min_val)), quantize_val(max_val))
quantize_val is the scalar fbgemm quantize: clamp(rne(f32(zp + f32(v * (1.f/f32(s)))))).
"""
from __future__ import annotations

import numpy as np

from ..numerics import elementwise as E
from .spec import OpSpec


def qnnpack_clamp_layout(out, profile, dtype, channels_last):
    """torch's QNNPACK clamp (hardtanh, relu6, clamp on quint8) walks a channels-last input in
    memory order but returns a contiguous NCHW tensor: the NHWC buffer read as NCHW."""
    if profile and profile.get("engine") == "qnnpack" and dtype == "uint8" and channels_last and out.ndim == 4:
        n, c, h, w = out.shape
        return np.ascontiguousarray(out.transpose(0, 2, 3, 1)).reshape(n, c, h, w)
    return out


def hardtanh(x, *, x_scale, x_zero_point, min_val=-1.0, max_val=1.0, dtype="uint8", profile, trace=None,
             channels_last=False) -> np.ndarray:
    lo = int(E.scalar_quantize(np.float32(min_val), x_scale, x_zero_point, dtype)) if min_val is not None else None
    hi = int(E.scalar_quantize(np.float32(max_val), x_scale, x_zero_point, dtype)) if max_val is not None else None
    # lo, hi are quantized values (within the dtype's range): clamp in the stored dtype, in x's memory order
    out = np.clip(np.asarray(x).astype(E.NP_DTYPE[dtype], copy=False), lo, hi)
    if trace is not None:
        trace.update(q_min=lo, q_max=hi, out=out)
    return qnnpack_clamp_layout(out, profile, dtype, channels_last)


clamp = hardtanh


def relu6(x, *, x_scale, x_zero_point, dtype="uint8", profile, trace=None) -> np.ndarray:
    q6 = int(E.scalar_quantize(np.float32(6.0), x_scale, x_zero_point, dtype))
    out = np.clip(np.asarray(x).astype(E.NP_DTYPE[dtype], copy=False), int(x_zero_point), q6)
    if trace is not None:
        trace.update(q_six=q6, out=out)
    return out


SPECS = [
    OpSpec("hardtanh", "hardtanh", integer="clamp", summary='clamp between two integer limits', formula=('y_q = clamp(x_q, q(min_val), q(max_val))', ),
           torch=('nn.Hardtanh', 'nn.ReLU6', 'nnq.ReLU6', 'F.hardtanh', 'F.relu6', 'torch.clamp', 'torch.clip', 'x.clamp', 'x.clip', 'quantized::relu6', 'aten::hardtanh', 'aten::relu6', 'aten::clamp', 'aten::clip')),
]
