"""quantized batch_norm (nnq.BatchNorm2d / BatchNorm3d, quantized::batch_norm1d/2d/3d(_relu)).

compute_fused_params (Normalization.cpp), float32 params, double scales:
    inv_sigma = f32(1.0 / (double)sqrtf(f32(var + f32(eps))))
    alpha     = f32(f32(inv_sigma * w) * (si / so))                 (si/so in double)
    beta      = f32(f32(b - f32(f32(mean * inv_sigma) * w)) / so)    (division in double)
q_batch_norm_kernel (input made channels-last, one row of C channels per pixel):
    channels [0, C - C%V) and, on AVX2 (V=32), further multiples of 8:
        y = fma32(alpha, f32(q - zi), beta); q' = clamp(rne(min(y, 2^31-128)) + zo)
    remaining channels (scalar): q' = clamp(lrintf(fma32(alpha, q - zi, beta)) + zo)
    relu: max(q', zo)
"""
from __future__ import annotations

import numpy as np

from ..numerics import elementwise as E
from ..numerics.floatops import f32, fma32
from ..numerics.profile import aten_vector_width
from .spec import OpSpec


def fused_params(weight, bias, running_mean, running_var, eps, x_scale, out_scale):
    var = np.asarray(running_var, dtype=np.float32)
    C = var.shape[0]
    w = np.ones(C, np.float32) if weight is None else np.asarray(weight, dtype=np.float32)
    b = np.zeros(C, np.float32) if bias is None else np.asarray(bias, dtype=np.float32)
    mean = np.asarray(running_mean, dtype=np.float32)
    ve = f32(var.astype(np.float64) + np.float64(np.float32(eps)))
    sq = np.sqrt(ve)  # float32 sqrt, correctly rounded
    inv_sigma = f32(1.0 / sq.astype(np.float64))
    aw = f32(inv_sigma.astype(np.float64) * w.astype(np.float64))
    alpha = f32(aw.astype(np.float64) * (float(x_scale) / float(out_scale)))
    t = f32(f32(mean.astype(np.float64) * inv_sigma.astype(np.float64)).astype(np.float64) * w.astype(np.float64))
    beta = f32(f32(b.astype(np.float64) - t.astype(np.float64)).astype(np.float64) / float(out_scale))
    return alpha, beta


def channel_vector_mask(C, profile):
    if profile.get("force_path") is not None:
        return np.full(C, profile["force_path"] == "vector", dtype=bool)
    V = aten_vector_width(profile, "qbatch_norm")
    kv = V // 4
    n = (C // V) * V
    rem = C - n
    if V == 32 and rem >= kv:
        n += (rem // kv) * kv
    m = np.zeros(C, dtype=bool)
    m[:n] = True
    return m


def batch_norm(x, *, x_scale, x_zero_point, out_scale, out_zero_point, weight, bias, running_mean,
               running_var, eps=1e-5, relu=False, dtype="uint8", profile, trace=None) -> np.ndarray:
    q = np.asarray(x).astype(np.int64)
    C = q.shape[1]
    alpha, beta = fused_params(weight, bias, running_mean, running_var, eps, x_scale, out_scale)
    shp = [1] * q.ndim
    shp[1] = C
    a = alpha.reshape(shp)
    b = beta.reshape(shp)
    d = (q - int(x_zero_point)).astype(np.float32)
    y = fma32(a, d, b)
    lo, hi = E.qrange(dtype)
    with np.errstate(invalid="ignore"):
        vq = E.vec_quantize(y, np.float32(1.0), out_zero_point, dtype)
        sq = np.clip(E.cvtps_epi32(y) + int(out_zero_point), lo, hi)
    m = channel_vector_mask(C, profile).reshape(shp)
    out = np.where(m, vq, sq)
    if relu:
        out = np.maximum(out, int(out_zero_point))
    if trace is not None:
        trace.update(alpha=alpha, beta=beta, pre_round=y, out=out)
    return E.to_dtype(out, dtype)


SPECS = [
    OpSpec("batch_norm", "batch_norm", integer="batch_norm", summary='batch norm folded to a per-channel affine map', formula=('y_q = clamp(rne(alpha·x_q + beta))', ),
           torch=('nnq.BatchNorm2d/3d', 'nniq.BNReLU2d/3d', 'quantized::batch_norm2d', 'quantized::batch_norm2d_relu')),
]
