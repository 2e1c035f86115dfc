"""quantized GELU (nn.GELU / F.gelu on a quantized tensor): output qparams are the input's
(scale as float32).

ATen `qgelu_kernel` (aten/src/ATen/native/quantized/cpu/kernels/QuantizedOpKernels.cpp), input
dequantized as x (vector: fma32(si, q, f32(si*-zi)); scalar tail: f32(si*(q-zi))):
  approximate='none'
    vector: y = f32(f32(x*0.5f) * f32(1 + erf8(f32(x * f32(M_SQRT1_2)))))      vecQ(y, inv=f32(1/(double)si))
            erf8 = Vectorized<float>::erf (vec256_float.h; the NEON vec128 one is the same sequence):
              t = 1 / fma(0.3275911, |x|, 1); r = fma(fma(fma(fma(p5,t,p4),t,p3),t,p2),t,p1)
              erf = sign(x) * fma(f32(-expf(-f32(x*x)) * t), r, 1)              (expf: Sleef_expf8_u10)
    scalar: y = (float)(x * 0.5 * (1 + erf((double)x * M_SQRT1_2)))  in double; quantize_val
  approximate='tanh'
    vector: c = f32(f32(x*x)*x); inner = f32(kB * f32(x + f32(kK*c))); y = f32(f32(0.5*x) * f32(1 + tanhf(inner)))
    scalar: c = x*x*x in float; inner = kB*(x + kK*c) in double; y = (float)(0.5*x*(1 + tanh(inner)))
    with kB = sqrt(2)*2/sqrt(pi)*0.5, kK = 0.044715 (float32 in the vector path, double in the scalar one).
Sleef's expf/tanhf (u10) are modelled as correctly rounded, as in ops/sigmoid.py and ops/tanh.py.
"""
from __future__ import annotations

import math

import numpy as np

from ..numerics import elementwise as E
from ..numerics.floatops import f32, fma32
from .sigmoid import expf
from .spec import OpSpec
from .tanh import tanhf

SQRT1_2 = math.sqrt(0.5)
BETA = 1.41421356237309504880 * 1.12837916709551257390 * 0.5  # M_SQRT2 * M_2_SQRTPI * 0.5
KAPPA = 0.044715
ERF_P = np.float32(0.3275911)
ERF_COEFS = [np.float32(v) for v in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)]


def erf_vec(x):
    """Vectorized<float>::erf, the Abramowitz-Stegun 7.1.26 polynomial with FMAs (vec256_float.h)."""
    x = np.asarray(x, dtype=np.float32)
    ax = np.abs(x)
    t = f32(1.0 / fma32(ERF_P, ax, np.float32(1)).astype(np.float64))
    r = np.full_like(t, ERF_COEFS[0])
    for c in ERF_COEFS[1:]:
        r = fma32(r, t, c)
    e = expf(-f32(x.astype(np.float64) * x.astype(np.float64)))
    t6 = f32(-e.astype(np.float64) * t.astype(np.float64))
    out = fma32(t6, r, np.float32(1))
    return np.where(np.signbit(x), -out, out).astype(np.float32)


def gelu_vec(x, approximate="none"):
    x = np.asarray(x, dtype=np.float32)
    xd = x.astype(np.float64)
    if approximate == "tanh":
        c = f32(f32(xd * xd).astype(np.float64) * xd)
        inner = f32(float(np.float32(BETA)) * f32(xd + f32(float(np.float32(KAPPA)) * c.astype(np.float64))).astype(np.float64))
        one_t = f32(1.0 + tanhf(inner).astype(np.float64))
        return f32(f32(0.5 * xd).astype(np.float64) * one_t.astype(np.float64))
    one_e = f32(1.0 + erf_vec(f32(xd * float(np.float32(SQRT1_2)))).astype(np.float64))
    return f32(f32(xd * 0.5).astype(np.float64) * one_e.astype(np.float64))


def gelu_scalar(x, approximate="none"):
    x = np.asarray(x, dtype=np.float32)
    xd = x.astype(np.float64)
    if approximate == "tanh":
        c = f32(f32(xd * xd).astype(np.float64) * xd).astype(np.float64)
        inner = BETA * (xd + KAPPA * c)
        return f32(0.5 * xd * (1.0 + np.tanh(inner)))
    erf = np.array([math.erf(v * SQRT1_2) for v in xd.reshape(-1)]).reshape(xd.shape)
    return f32(xd * 0.5 * (1.0 + erf))


def out_qparams(x_scale, x_zero_point):
    """The output keeps the input's zero point and its scale rounded to float32."""
    return float(np.float32(x_scale)), int(x_zero_point)


def gelu(x, *, x_scale, x_zero_point, approximate="none", dtype="uint8", profile, trace=None) -> np.ndarray:
    q = np.asarray(x).astype(np.int64)
    so, zo = out_qparams(x_scale, x_zero_point)
    lo, hi = E.qrange(dtype)
    levels = np.arange(lo, hi + 1)  # every stored value: each path is a function of it
    vx = E.vec_dequantize(levels, x_scale, x_zero_point)
    vy = gelu_vec(vx, approximate)
    vq = E.vec_quantize(vy, E.inv_scale_d(so), zo, dtype)
    sx = E.scalar_dequantize(levels, x_scale, x_zero_point)
    sy = gelu_scalar(sx, approximate)
    sq = E.scalar_quantize(sy, so, zo, dtype)
    m = E.unary_mask(q.shape, profile)
    i = q - lo
    out = np.where(m, vq[i], sq[i])
    if trace is not None:
        trace.update(kernel="aten_qgelu", dequant=np.where(m, vx[i], sx[i]), pre_round=np.where(m, vy[i], sy[i]),
                     vector_mask=m, out=out)
    return E.to_dtype(out, dtype)


SPECS = [
    OpSpec("gelu", "gelu", elementwise=True, integer="lut",
           summary="GELU through floats (output qparams are the input's)",
           formula=("x = s_x·(x_q − z_x);  y = x·½·(1 + erf(x/√2))  (tanh form: ½x(1 + tanh(√(2/π)(x + 0.044715x³))));"
                    "  y_q = clamp(rne(y/s_x) + z_x)",),
           torch=("nn.GELU", "F.gelu", "aten::gelu")),
]
