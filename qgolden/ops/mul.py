"""quantized::mul / mul_relu (FloatFunctional.mul) and mul_scalar.

ATen `qmul_kernel` (all engines for quint8): integer product requantized, vector and scalar paths agree:
    c = (qa - za) * (qb - zb)                                   # exact int32
    m = f32(f32(f32(sa) * f32(sb)) * (1.0f / f32(so)))
    q = clamp(rne(f32(f32(c) * m)) + zo) ; relu: max(q, zo)
qint8 mul goes to XNNPACK on every engine (QMul::run, zero_point < 127): not modelled.
"""
from __future__ import annotations

import numpy as np

from ..numerics import elementwise as E
from .spec import OpSpec


def mul(a, b, *, a_scale, a_zero_point, b_scale, b_zero_point, out_scale, out_zero_point,
        relu=False, dtype="uint8", profile, trace=None) -> np.ndarray:
    if dtype == "int8" and int(out_zero_point) < 127:
        raise NotImplementedError("qint8 mul runs XNNPACK (not modelled)")
    a = np.asarray(a).astype(np.int64)
    b = np.asarray(b).astype(np.int64)
    a, b = np.broadcast_arrays(a, b)
    c = (a - int(a_zero_point)) * (b - int(b_zero_point))
    mult = np.float32(np.float32(np.float32(a_scale) * np.float32(b_scale)) * E.inv_scale32(out_scale))
    out = E.requantize_from_int(c, mult, out_zero_point, dtype)
    if relu:
        out = np.maximum(out, int(out_zero_point))
    if trace is not None:
        trace.update(kernel="aten_qmul", product=c, multiplier=mult, out=out)
    return E.to_dtype(out, dtype)


def mul_relu(a, b, **kw):
    return mul(a, b, relu=True, **kw)


def mul_scalar_out_qparams(x_scale, x_zero_point, scalar, dtype="uint8"):
    qmin, qmax = E.qrange(dtype)
    c = float(scalar)
    if c > 0:
        return (c * float(x_scale), int(x_zero_point))
    if c == 0:
        return (1.0, 0)
    return (abs(c) * float(x_scale), qmax - (int(x_zero_point) - qmin))


def mul_scalar(x, *, x_scale, x_zero_point, scalar, relu=False, dtype="uint8", profile, trace=None) -> np.ndarray:
    """quantized::mul_scalar(_relu) (`_mul_scalar_out`, qmul.cpp): only qparams change.
    c > 0: q' = q (relu: max(q, z)), s' = c*s;  c == 0: q' = 0, (1.0, 0);
    c < 0: q' = qmax + qmin - q (relu: max(q', z')), s' = |c|*s, z' = qmax - (z - qmin)."""
    qmin, qmax = E.qrange(dtype)
    x = np.asarray(x).astype(np.int64)
    s_out, z_out = mul_scalar_out_qparams(x_scale, x_zero_point, scalar, dtype)
    c = float(scalar)
    if c > 0:
        out = np.maximum(x, int(x_zero_point)) if relu else x.copy()
    elif c == 0:
        out = np.zeros_like(x)
    else:
        out = qmax + qmin - x
        if relu:
            out = np.maximum(out, z_out)
    if trace is not None:
        trace.update(out_scale=s_out, out_zero_point=z_out, out=out)
    return E.to_dtype(out, dtype)


SPECS = [
    OpSpec("mul", "mul", elementwise=True, integer="mul", summary='multiplies two quantized tensors', formula=('y_q = clamp(rne((a_q − z_a)(b_q − z_b)·s_a·s_b/s_y) + z_y)', ),
           torch=('quantized::mul', 'quantized::mul_relu', 'FloatFunctional.mul', 'x * y (convert_fx)')),
    OpSpec("mul_scalar", "mul_scalar", elementwise=True, integer="lut", summary='multiplies by a constant', formula=('y_q = x_q with a new scale (or requantized)', ),
           torch=('quantized::mul_scalar', 'quantized::mul with a number', 'FloatFunctional.mul_scalar', 'x * c (convert_fx)')),
]
