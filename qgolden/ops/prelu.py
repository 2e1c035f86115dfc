"""Quantized PReLU (nnq.PReLU, quantized::prelu): a per-channel (or single) quantized slope w.

ATen `qprelu_out_kernel` (aten/src/ATen/native/quantized/cpu/kernels/QuantizedOpKernels.cpp): in
int32, with w broadcast along dim 1 (a 1-element weight everywhere),
    one = quantize_val(s_w, z_w, 1.0) - z_w
    acc = (max(q, zx) - zx)·one + (min(q, zx) - zx)·(w - z_w)
    y   = clamp(rne(f32(f32(acc)·M)) + zy),  M = f32(f32(s_x·s_w)·f32(1/s_y))
(requantize_from_int: the vector and scalar paths agree, so neither layout nor tails matter).
"""
from __future__ import annotations

import numpy as np

from ..numerics import elementwise as E
from ..numerics.floatops import f32
from .spec import OpSpec


def multiplier(x_scale, w_scale, out_scale):
    """f32(f32(s_x·s_w)·(1.f/s_y))."""
    return f32(f32(np.float64(np.float32(x_scale)) * np.float64(np.float32(w_scale))).astype(np.float64)
               * np.float64(E.inv_scale32(out_scale)))


def prelu(x, *, x_scale, x_zero_point, weight, w_scale, w_zero_point, out_scale, out_zero_point, dtype="uint8",
          profile=None, trace=None) -> np.ndarray:
    q = np.asarray(x).astype(np.int64)
    w = np.asarray(weight)
    if w.dtype == np.uint8 and dtype == "int8":  # the kernel reads the quint8 slope's bytes as qint8
        w = w.view(np.int8)
    w = w.astype(np.int64).reshape(-1)
    if q.ndim >= 2 and w.size > 1:
        shape = [1] * q.ndim
        shape[1] = w.size
        w = w.reshape(shape)
    elif w.size == 1:
        w = w.reshape(())
    zx, zw = int(x_zero_point), int(w_zero_point)
    one = int(E.scalar_quantize(np.float32(1.0), w_scale, zw, dtype)) - zw
    acc = (np.maximum(q, zx) - zx) * one + (np.minimum(q, zx) - zx) * (w - zw)
    mult = multiplier(x_scale, w_scale, out_scale)
    out = E.requantize_from_int(acc, mult, out_zero_point, dtype)
    if trace is not None:
        trace.update(kernel="aten_qprelu", accumulator=acc, multiplier=mult, weight_one=one, out=out)
    return E.to_dtype(out, dtype)


SPECS = [
    OpSpec("prelu", "prelu", integer="batch_norm",
           summary="PReLU: integer products with the quantized slope, float32 requantization",
           formula=("acc = (max(x_q, z_x) − z_x)·q(1) + (min(x_q, z_x) − z_x)·(w_q − z_w);",
                    "y_q = clamp(rne(acc·s_x·s_w/s_y) + z_y)"),
           torch=("nnq.PReLU", "quantized::prelu")),
]
