"""Quantized layer norm, group norm and instance norm (nnq.LayerNorm, nnq.GroupNorm,
nnq.InstanceNorm1d/2d/3d; quantized::layer_norm / group_norm / instance_norm).

Source: aten/src/ATen/native/quantized/cpu/qnormalization.cpp and, in
aten/src/ATen/native/quantized/cpu/kernels/QuantizedOpKernels.cpp, `quantized_normalize_kernel`
(contiguous input) and `quantized_groupnorm_nhwc_kernel` (group/instance norm of a channels-last
input). The input is split in M groups of N elements (layer norm: the normalized trailing dims;
group norm: C/G channels of one sample). Per group, from the stored values q (exact integer sums):

    m  = f32(f32(Σq) / N)                       mean of the stored values
    mu = f32(m - zx)                            mean / s_x
    v  = max(fma(-m, m, f32(f32(Σq²) / N)), 0)       (GCC contracts `a/N - m*m` into one FMA:
                                                the kernel file is compiled with FMA, CpuClass.kernel_fma)
    r  = (float)(s_x / sqrt((double)f32(f32(v·s_x)·s_x) + eps))     s_x / std, in double

layer norm (gamma, beta per element):
    vector blocks of V = Vectorized<quint8>::size() elements:  y = f32(f32(f32(d - mu)·r)·gamma) + beta
    the last N % V elements (scalar):                            same y, quantize_val
group / instance norm, contiguous: per channel g = f32(r·gamma_c), beta_c; every element of the
    channel (its H·W run, a partial vector at the end) takes the vector path:  y = f32(f32(d - mu)·g) + beta_c
group / instance norm, channels-last: scale_c = f32(r·gamma_c), bias_c = f32(f32(-scale_c·mu) + beta_c),
    y = f32(d·scale_c) + bias_c; vector blocks of V channels along C, the rest scalar. Below 512
    pixels the sums are exact per group; from 512 pixels on ("impl-2") they are float32 sums per
    channel in pixel order, per thread chunk of the N·HxW pixels, then summed over threads and
    channels in float32.
with d = q - zx (exact), vector quantize clamp(rne(f32(y·f32(1/s_y))) + zy), scalar quantize_val
clamp(rne(f32(f32(y·(1/s_y)) + zy))).
"""
from __future__ import annotations

import numpy as np

from ..numerics import elementwise as E
from ..numerics.floatops import f32, fma32
from ..numerics.profile import aten_vector_width
from .spec import OpSpec

NHWC_PIXEL_THRESHOLD = 512  # feature_map_threshold of quantized_groupnorm_nhwc_kernel


def _mul(a, b):
    return f32(np.asarray(a, dtype=np.float32).astype(np.float64) * np.asarray(b, dtype=np.float32).astype(np.float64))


def _add(a, b):
    return f32(np.asarray(a, dtype=np.float32).astype(np.float64) + np.asarray(b, dtype=np.float32).astype(np.float64))


def group_stats(s, s2, n, x_scale, x_zero_point, eps):
    """(mu, r) of each group from its sums s = Σq, s2 = Σq² (float32 or integer), n elements."""
    nf = np.float32(n)
    m = f32(f32(s).astype(np.float64) / np.float64(nf))
    mu = f32(m.astype(np.float64) - float(np.float32(x_zero_point)))
    v = np.maximum(fma32(-m, m, f32(f32(s2).astype(np.float64) / np.float64(nf))), np.float32(0))
    xs = np.float32(x_scale)
    var_d = _mul(_mul(v, xs), xs).astype(np.float64) + float(eps)
    r = f32(np.float64(xs) / np.sqrt(var_d))
    return mu, r


def _vec_q(y, out_scale, out_zero_point, dtype):
    return E.vec_quantize(y, E.inv_scale32(out_scale), out_zero_point, dtype)


def _scalar_q(y, out_scale, out_zero_point, dtype):
    return E.scalar_quantize(y, out_scale, out_zero_point, dtype)


def layer_norm(x, *, x_scale, x_zero_point, out_scale, out_zero_point, normalized_ndim, eps, weight=None,
               bias=None, dtype="uint8", profile, trace=None) -> np.ndarray:
    x = np.asarray(x)
    shape = x.shape
    n = int(np.prod(shape[len(shape) - int(normalized_ndim):], dtype=np.int64))
    q = x.reshape(-1, n).astype(np.int64)
    s, s2 = q.sum(axis=1), (q * q).sum(axis=1)
    mu, r = group_stats(s, s2, n, x_scale, x_zero_point, eps)
    d = (q - int(x_zero_point)).astype(np.float32)
    gamma = np.ones(n, np.float32) if weight is None else np.asarray(weight, np.float32).reshape(-1)
    beta = np.zeros(n, np.float32) if bias is None else np.asarray(bias, np.float32).reshape(-1)
    y = _add(_mul(_mul(_add(d, -mu[:, None]), r[:, None]), gamma), beta)
    V = aten_vector_width(profile, "quantized_normalize")
    nv = (n // V) * V
    vector = np.zeros(n, bool)
    vector[:nv] = profile.get("force_path", "") != "scalar"
    out = np.where(vector, _vec_q(y, out_scale, out_zero_point, dtype), _scalar_q(y, out_scale, out_zero_point, dtype))
    if trace is not None:
        trace.update(kernel="aten_quantized_normalize", sum=s, sum_sq=s2, mean_div_scale=mu, scale_div_std=r,
                     pre_round=y.reshape(shape), vector_mask=np.broadcast_to(vector, q.shape).reshape(shape))
    return E.to_dtype(out.reshape(shape), dtype)


def group_norm(x, *, x_scale, x_zero_point, out_scale, out_zero_point, num_groups, eps, weight=None, bias=None,
               channels_last=False, dtype="uint8", profile, trace=None) -> np.ndarray:
    x = np.asarray(x)
    b, c = x.shape[0], x.shape[1]
    hw = int(np.prod(x.shape[2:], dtype=np.int64))
    g = int(num_groups)
    cg = c // g
    q = x.reshape(b, g, cg, hw).astype(np.int64)
    gamma = np.ones(c, np.float32) if weight is None else np.asarray(weight, np.float32).reshape(-1)
    beta = np.zeros(c, np.float32) if bias is None else np.asarray(bias, np.float32).reshape(-1)
    d = (q - int(x_zero_point)).astype(np.float32)
    n = cg * hw
    V = aten_vector_width(profile, "quantized_normalize")
    gam = gamma.reshape(1, g, cg, 1)
    bet = beta.reshape(1, g, cg, 1)
    if channels_last and x.ndim >= 3 and hw >= NHWC_PIXEL_THRESHOLD:
        s, s2 = _nhwc_float_sums(q, profile)
    else:
        s, s2 = q.sum(axis=(2, 3)), (q * q).sum(axis=(2, 3))
    mu, r = group_stats(s, s2, n, x_scale, x_zero_point, eps)
    mu4, r4 = mu[:, :, None, None], r[:, :, None, None]
    if not channels_last:
        gp = _mul(r4, gam)
        y = _add(_mul(_add(d, -mu4), gp), bet)
        out = _vec_q(y, out_scale, out_zero_point, dtype)
        vector = np.ones(q.shape, bool)
    else:
        sc = _mul(r4, gam)
        bi = _add(_mul(-sc, mu4), bet)
        y = _add(_mul(d, sc), bi)
        # along C in memory: impl-1 vectorizes each group's C/G channels, impl-2 all C channels
        run, idx = (cg, np.arange(cg).reshape(1, 1, cg, 1)) if hw < NHWC_PIXEL_THRESHOLD else \
            (c, np.arange(c).reshape(1, g, cg, 1))
        vector = np.broadcast_to(idx < (run // V) * V, q.shape)
        if profile.get("force_path") is not None:
            vector = np.full(q.shape, profile["force_path"] == "vector")
        out = np.where(vector, _vec_q(y, out_scale, out_zero_point, dtype), _scalar_q(y, out_scale, out_zero_point, dtype))
    if trace is not None:
        trace.update(kernel="aten_groupnorm_nhwc" if channels_last else "aten_quantized_normalize", sum=s,
                     sum_sq=s2, mean_div_scale=mu, scale_div_std=r, pre_round=y.reshape(x.shape),
                     vector_mask=np.asarray(vector).reshape(x.shape))
    return E.to_dtype(out.reshape(x.shape), dtype)


def _nhwc_float_sums(q, profile):
    """impl-2 of quantized_groupnorm_nhwc_kernel: per thread t, buffer[t][n][c] += q and q² in float32
    over its chunk of the B·HxW pixels (at::parallel_for over pixels, grain 1), then per group the
    float32 sum over threads, then channels. q: [B, G, C/G, HxW]."""
    b, g, cg, hw = q.shape
    c = g * cg
    pix = q.reshape(b, c, hw).transpose(0, 2, 1).reshape(b * hw, c)  # NHWC pixel rows
    total = b * hw
    nt = max(1, min(E.num_threads(profile), total))
    chunk = -(-total // nt)
    bufs = []
    for t0 in range(0, total, chunk):
        rows = pix[t0:t0 + chunk]
        owner = np.arange(t0, t0 + rows.shape[0]) // hw
        acc = np.zeros((b, c), np.float32)
        acc2 = np.zeros((b, c), np.float32)
        for i in range(rows.shape[0]):  # float32 running sums, in pixel order
            acc[owner[i]] += rows[i].astype(np.float32)
            acc2[owner[i]] += (rows[i] * rows[i]).astype(np.float32)
        bufs.append((acc, acc2))
    s = np.zeros((b, g), np.float32)
    s2 = np.zeros((b, g), np.float32)
    for acc, acc2 in bufs:
        for j in range(cg):
            s += acc.reshape(b, g, cg)[:, :, j]
            s2 += acc2.reshape(b, g, cg)[:, :, j]
    return s, s2


SPECS = [
    OpSpec("layer_norm", "layer_norm", integer="float",
           summary="layer norm through floats (no integer-only form: each output depends on float32 statistics of its whole row)",
           formula=("mu = Σx_q/N − z_x;  r = s_x/√(var·s_x² + eps);  y = ((x_q − z_x) − mu)·r·γ + β;",
                    "y_q = clamp(rne(y/s_y) + z_y)"),
           torch=("nnq.LayerNorm", "quantized::layer_norm")),
    OpSpec("group_norm", "group_norm", integer="float",
           summary="group / instance norm through floats (no integer-only form: each output depends on float32 statistics of its whole group)",
           formula=("per group: mu = Σx_q/N − z_x;  r = s_x/√(var·s_x² + eps);  y = ((x_q − z_x) − mu)·(r·γ_c) + β_c;",
                    "y_q = clamp(rne(y/s_y) + z_y)"),
           torch=("nnq.GroupNorm", "nnq.InstanceNorm1d/2d/3d", "quantized::group_norm", "quantized::instance_norm")),
]
