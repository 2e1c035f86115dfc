"""Requantization of an exact integer accumulator to quint8, one function per engine.

Every function takes `acc` (int64, any shape, output channel LAST) = the integer sum
Σ (xq - zx)·(wq - zw) exactly as the engine forms it (saturation effects included),
and returns uint8 of the same shape. Scales arrive as Python floats / float64 arrays
(double, as torch stores them); each function casts them the way its kernel does.

If `trace` is a dict the function stores 'bias_term', 'multiplier', 'pre_round',
'rounded' in it.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .floatops import f32, rne
from .parallel import for_blocks, row_blocks
from .quantize import quantize_per_tensor

_I32_MIN = -(2**31)


def cvtps_epi32(x) -> np.ndarray:
    """x86 `cvtps2dq` (`_mm256_cvtps_epi32`): round half to even; NaN and values out of
    int32 range give the "integer indefinite" 0x80000000."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        r = rne(x)
        bad = ~(np.abs(r) < 2.0**31) & ~(r == -(2.0**31))
        r = np.where(bad, _I32_MIN, r)
    return r.astype(np.int64)


def _sat_add_zero_point_u8(rounded, zero_point, lo, hi=255):
    """packs_epi32 (int16 sat) -> adds_epi16(zp) (int16 sat) -> packus_epi16 (u8 sat) -> clamp."""
    r = np.clip(rounded, -32768, 32767)
    r = np.clip(r + int(zero_point), -32768, 32767)
    r = np.clip(r, 0, 255)
    return np.clip(r, lo, hi).astype(np.uint8)


def _per_channel(a, n):
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    return a if a.size != 1 else np.repeat(a, n)


def fbgemm_scales(x_scale, weight_scale, out_scale, n):
    """act_times_w_scale and requant multiplier as PackedLinearWeight::apply_impl /
    PackedConvWeight::apply_impl form them (qlinear.cpp, qconv.cpp):

        atw[n]  = f32( f32(sx) * f32(sw[n]) )     # PackedLinearWeight keeps w_scale as float
        mult[n] = atw[n] / (float)so               # float32 division

    Verified against the alternative f32(f32(sx) * (double)sw) with crafted tie cases:
    that one mismatches, this one does not.
    """
    sw = np.asarray(weight_scale, dtype=np.float64).reshape(-1)
    return _fbgemm_scales(float(x_scale), sw.tobytes(), float(out_scale), int(n))


@functools.lru_cache(maxsize=1024)
def _fbgemm_scales(x_scale, weight_scale_bytes, out_scale, n):
    """fbgemm_scales on hashable arguments (a model's layers ask for the same ones each run);
    the arrays returned are read-only, as they are shared."""
    sw = f32(_per_channel(np.frombuffer(weight_scale_bytes, np.float64), n)).astype(np.float64)
    atw = f32(np.float64(np.float32(x_scale)) * sw)
    mult = f32(atw.astype(np.float64) / np.float64(np.float32(out_scale)))
    atw.flags.writeable = False
    mult.flags.writeable = False
    return atw, mult


def bias_fbgemm(bias, atw, per_channel):
    """Float bias folded into the int accumulator scale (FBGEMM requantizeOutputProcessingAvx2,
    src/QuantUtilsAvx2.cc):

        per-tensor : b' = f32(bias * f32(1.0 / (double)atw))   # act_times_w_rcp, then _mm256_mul_ps
        per-channel: b' = f32(bias / atw[n])                   # _mm256_div_ps
    """
    b = np.asarray(bias, dtype=np.float32).astype(np.float64)
    if per_channel:
        return f32(b / atw.astype(np.float64))
    rcp = f32(1.0 / np.float64(atw[0]))
    return f32(b * np.float64(rcp))


def requantize_fbgemm(acc, *, x_scale, weight_scale, out_scale, out_zero_point, bias,
                      per_channel, relu, trace=None):
    """FBGEMM ReQuantizeOutput (include/fbgemm/OutputProcessing-inl.h,
    src/QuantUtilsAvx2.cc requantizeOutputProcessingAvx2; same math on AVX512, in the
    depthwise / groupwise kernels, and in the N % 8 tail columns):

        xf  = cvtepi32_ps(acc)                     # f32(acc)
        xf  = f32(xf + b')                          # b' from bias_fbgemm; skipped without bias
        y   = cvtps_epi32(f32(xf * mult[n]))        # RNE; out of int32 range -> INT32_MIN
        out = packus(adds_epi16(packs(y), zo))      # == clamp(y + zo, 0, 255), except
        relu: out = max(out, zo)                    #   y = INT32_MIN (overflow) -> 0
    """
    acc = np.asarray(acc)
    n = acc.shape[-1]
    atw, mult = fbgemm_scales(x_scale, weight_scale, out_scale, n)
    if not per_channel:
        atw = np.repeat(atw[:1], n)
        mult = np.repeat(mult[:1], n)
    bterm = bias_fbgemm(bias, atw, per_channel) if bias is not None else None
    # a float32 acc holds exact integers below 2**24 (conv_accumulate exact_float): then
    # cvtepi32_ps is exact and |pre| is bounded without looking at it
    in_place = acc.dtype == np.float32 and trace is None
    bounded = False
    if in_place:
        bmax = float(np.abs(bterm).max()) if bterm is not None and bterm.size else 0.0
        bounded = (2.0**24 + bmax) * (float(np.abs(mult).max()) if mult.size else 0.0) < 2.0**30
    # float32 arithmetic directly: one float32 op == the float64 op rounded to float32
    # (exact product / innocuous double rounding), int32 -> float32 is cvtepi32_ps (RNE)
    xf = acc if in_place else np.asarray(acc, dtype=np.int32).astype(np.float32)
    wide, k = _channel_rows(xf)
    if bterm is not None:
        wide += np.tile(bterm.astype(np.float32), k)
    wide *= np.tile(mult.astype(np.float32), k)
    pre = xf
    if trace is not None:
        trace.update(pre_round=pre.copy())
    r = np.rint(pre, out=pre)
    with np.errstate(invalid="ignore"):
        if not bounded and not (r.size == 0 or (r.min() >= np.float32(-(2.0**31)) and r.max() < np.float32(2.0**31))):
            r[~(np.abs(r) < np.float32(2.0**31)) & ~(r == np.float32(-(2.0**31)))] = np.float32(_I32_MIN)
    if trace is not None:
        trace.update(bias_term=bterm, act_times_w_scale=atw, multiplier=mult,
                     rounded=r.astype(np.float64).astype(np.int64))
    lo = int(np.clip(out_zero_point, 0, 255)) if relu else 0
    # packs_epi32 -> adds_epi16(zp) -> packus_epi16 -> max(., lo): for 0 <= lo <= 255 the int16
    # saturations cannot change the result, so it is clamp(r + zp, lo, 255), done before the add
    zp = int(out_zero_point)
    np.clip(r, max(0, lo) - zp, 255 - zp, out=r)
    # + zp straight into uint8: integral values in [lo, 255], so the cast is exact
    return np.add(r, np.float32(zp), out=np.empty(r.shape, np.uint8), casting="unsafe")


def _channel_rows(a):
    """(view, k): a [..., n] (channel last) seen as rows of k*n values, k dividing the row count,
    so a per-channel vector tiled k times broadcasts over a long inner loop (NumPy runs a
    64-wide broadcast ~3x slower); (a, 1) when a is not C-contiguous."""
    if a.ndim < 2 or not a.flags.c_contiguous or a.shape[-1] == 0:
        return a, 1
    n = a.shape[-1]
    rows = a.size // n
    k = math.gcd(rows, max(1, 2048 // n))
    return a.reshape(rows // k, k * n), k


def bias_qnnpack(bias, x_scale, weight_scale, per_channel):
    """QNNPACK int32 bias (qlinear.cpp / qconv.cpp PackedLinearWeightsQnnp::apply_impl):

        per-tensor : quantize_per_tensor(bias, (double)sw * (double)sx, 0, qint32)
        per-channel: quantize_per_channel(bias, sw[n] * sx, 0, qint32)
    Both quantize to int32 as t = f32(f32(b * f32(1/f32(scale))) + 0), rne, clamp.
    """
    sw = np.asarray(weight_scale, dtype=np.float64).reshape(-1)
    b = np.asarray(bias, dtype=np.float32)
    if not per_channel:
        return quantize_per_tensor(b, float(sw[0]) * float(x_scale), 0, "int32").astype(np.int64)
    out = np.empty(b.shape, dtype=np.int64)
    for i in range(b.shape[0]):
        out[i] = quantize_per_tensor(b[i:i + 1], float(sw[i]) * float(x_scale), 0, "int32")[0]
    return out


def qnnpack_scales(x_scale, weight_scale, out_scale, n):
    """generate_requantization_scales (QnnpackUtils.h), all float32:

        rs[n] = f32( f32(f32(sw[n]) * f32(sx)) * f32(1.f / f32(so)) )
    """
    sw = f32(_per_channel(weight_scale, n)).astype(np.float64)
    inv_so = np.float64(np.float32(1.0) / np.float32(out_scale))
    return f32(f32(sw * np.float64(np.float32(x_scale))).astype(np.float64) * inv_so)


def requantize_qnnpack(acc, *, x_scale, weight_scale, out_scale, out_zero_point, bias,
                       per_channel, relu, trace=None):
    """PyTorch-QNNPACK fp32 requantization (q8gemm/4x4c2-sse2.c, q8conv, q8dwconv):

        acc' = acc + bq[n]                               # int32 bias from bias_qnnpack
        y    = cvtps_epi32(f32(f32(acc') * rs[n]))
        out  = clamp(y + zo, lo, 255); lo = zo under relu (activationLimits), else 0
    """
    acc = np.asarray(acc, dtype=np.int64)
    n = acc.shape[-1]
    bq = None
    if bias is not None:
        bq = bias_qnnpack(bias, x_scale, weight_scale, per_channel)
        acc = acc + bq
    acc32 = ((acc + 2**31) % 2**32 - 2**31)  # int32 wrap, as the kernel's 32-bit add
    rs = qnnpack_scales(x_scale, weight_scale, out_scale, n)
    pre = f32(f32(acc32.astype(np.float64)).astype(np.float64) * rs.astype(np.float64))
    rounded = cvtps_epi32(pre)
    lo = int(np.clip(out_zero_point, 0, 255)) if relu else 0
    out = _sat_add_zero_point_u8(rounded, out_zero_point, lo)
    if trace is not None:
        trace.update(bias_term=bq, multiplier=rs, pre_round=pre, rounded=rounded)
    return out


def onednn_v3_scales(x_scale, weight_scale, out_scale, n, weight_scales="direct"):
    """The scales oneDNN 3 receives from PyTorch through ideep: PyTorch passes reciprocals in
    float (isx = f32(1/sx), iso = f32(1/so)), ideep hands oneDNN their float reciprocals:

        src = f32(1/isx)   dst = f32(1/iso)
        wei[n] = f32(sw[n])              weight_scales 'direct': conv (qconv_prepack.cpp hands
                                         ideep q_scale / q_per_channel_scales as they are)
        wei[n] = f32(1/f32(1/sw[n]))     'reciprocal': linear (qlinear_prepack.cpp stores
                                         1.0/q_scale, per channel 1.0f/float(scale); ideep's
                                         matmul inverts it back)
    Returns (src, wei, dst) as float32."""
    isx = np.float32(1.0 / float(x_scale))
    iso = np.float32(1.0 / float(out_scale))
    sw = _per_channel(weight_scale, n)
    if weight_scales == "reciprocal":
        # per tensor: 1.0/double; per channel: 1.0f/float (same value as f32(1/f32(sw)) when sw is a float)
        inv = (1.0 / sw).astype(np.float32) if np.size(weight_scale) == 1 else np.float32(1) / f32(sw)
        wei = f32(1.0 / inv.astype(np.float64))
    else:
        wei = f32(sw)
    return np.float32(1.0) / isx, wei, np.float32(1.0) / iso


def onednn_output_stage_blocked(acc, src, wei, dst, bias, relu, out_zero_point, kernel) -> np.ndarray:
    """requantize_onednn's output stage (same formulas, same bits; tests hold the two together)
    for acc [M, N] (int, or float32 holding exact integers), in float32 arithmetic on cache-sized
    row blocks on every core (numerics.parallel). One float32 NumPy operation on float32
    operands is the float64 operation rounded to float32 (the double rounding is innocuous for
    + - * / since 53 >= 2*24 + 2), and int -> float32 is the C cast (round to nearest even),
    as cvtdq2ps; so each step below is the reference's step:
        f = f32(acc) * m[n]   (m = f32(src * wei[n]), or f32(f32(acc) * src) * wei[n])
        f += bias[n];  f = f * f32(1/dst)  (ref: f / dst);  relu: max(f, 0)
        out = clamp(rne(f + zo), 0, 255), NaN -> 0
    Returns uint8 [M, N]."""
    m_rows, n = acc.shape
    f32c = np.float32
    if kernel in ("ref", "sequential"):
        mult = wei.astype(f32c)
        first = f32c(src)
    else:
        mult = f32(np.float64(src) * wei.astype(np.float64))
        first = None
    last = f32c(dst) if kernel == "ref" else f32c(np.float32(1.0) / dst)
    bterm = None if bias is None else np.asarray(bias, dtype=f32c).reshape(-1)
    if bterm is not None and bterm.size == 1 and n != 1:
        bterm = np.repeat(bterm, n)
    zo = f32c(float(out_zero_point))
    out = np.empty((m_rows, n), np.uint8)
    if acc.size == 0:
        return out
    # per-channel vectors tiled k times: a long inner loop instead of a short broadcast one
    k = max(1, BLOCK_ROWS_TILE // n)
    tile = (lambda v: np.tile(v, k))
    mult_t = tile(mult)
    bias_t = None if bterm is None else tile(bterm)

    def body(r0, r1):
        a = acc[r0:r1]
        rows = r1 - r0
        f = np.empty((rows, n), f32c)
        np.copyto(f, a, casting="unsafe")  # int -> float32: round to nearest even
        wide = f.reshape(rows // k, k * n) if rows % k == 0 else None
        if wide is None:
            wide, mt, bt = f, mult, bterm
        else:
            mt, bt = mult_t, bias_t
        if first is not None:
            wide *= first
        wide *= mt
        if bt is not None:
            wide += bt
        if kernel == "ref":
            wide /= last
        else:
            wide *= last
        if relu:
            np.maximum(wide, f32c(0), out=wide)  # NaN stays NaN, and becomes 0 below
        wide += zo
        np.rint(wide, out=wide)
        # fmax / fmin return the number when the other operand is NaN: NaN -> 0; +-inf clamp
        np.fmax(wide, f32c(0), out=wide)
        np.fmin(wide, f32c(255), out=wide)
        np.copyto(out[r0:r1], f, casting="unsafe")

    for_blocks(row_blocks(m_rows, n, k), body)
    return out


# rows of a block reshaped to k*n values per row (k = BLOCK_ROWS_TILE // n)
BLOCK_ROWS_TILE = 2048


def requantize_onednn(acc, *, x_scale, weight_scale, out_scale, out_zero_point, bias,
                      per_channel, relu, trace=None, kernel="combined", weight_scales="direct"):
    """oneDNN int8 matmul / conv output stage as driven by PyTorch through ideep
    (PackedLinearWeightsOnednn / PackedConvWeightsOnednn::apply_impl), with the scales of
    onednn_v3_scales. `kernel` is the output stage of the kernel that runs
    (CpuClass.onednn_output_stage):

    'combined' (AVX2 jit conv and gemm, AMX brgemm micro-kernel): one combined scale, the dst
    scale applied as a multiplication by its float reciprocal
        f = f32(f32(acc) * f32(src * wei[n]))
        f = f32(f + bias[n])                     # float bias after scaling, if any
        f = f32(f * f32(1 / dst))
    'sequential' (brgemm / brdgmm kernels without the AMX micro-kernel): the scales one after
    the other, then the dst reciprocal
        f = f32(f32(f32(acc) * src) * wei[n])
        f = f32(f + bias[n])
        f = f32(f * f32(1 / dst))
    'ref' (ref:any conv, e.g. 2 or 3 channels per group on AVX2): the scales one after the
    other, and a division by the dst scale
        f = f32(f32(f32(acc) * src) * wei[n])
        f = f32(f + bias[n])
        f = f32(f / dst)
    then
        f   = max(f, 0) if relu
        out = clamp(rne(f32(f + zo)), 0, 255)    # saturates in float: huge -> 255

    Measured: sweeps of random scales placed on exact requantization ties (so = c * sx * sw)
    against PyTorch's onednn engine on an AMX Xeon, per kernel family (ONEDNN_VERBOSE), where
    only the stage named above matched each family; earlier, on AVX2, the same for jit / ref.
    """
    if kernel == "jit":
        kernel = "combined"
    acc = np.asarray(acc)
    n = acc.shape[-1]
    src, wei, dst = onednn_v3_scales(x_scale, weight_scale, out_scale, n, weight_scales)
    if trace is None and acc.ndim == 2 and acc.dtype.kind in "iuf":
        return onednn_output_stage_blocked(acc, src, wei, dst, bias, relu, out_zero_point, kernel)
    acc = np.asarray(acc, dtype=np.int64)
    fa = f32(acc.astype(np.float64)).astype(np.float64)
    if kernel in ("ref", "sequential"):
        mult = wei
        f = f32(f32(fa * np.float64(src)).astype(np.float64) * wei.astype(np.float64))
    else:
        mult = f32(np.float64(src) * wei.astype(np.float64))
        f = f32(fa * mult.astype(np.float64))
    bterm = None
    if bias is not None:
        bterm = np.asarray(bias, dtype=np.float32)
        f = f32(f.astype(np.float64) + bterm.astype(np.float64))
    if kernel == "ref":
        f = f32(f.astype(np.float64) / np.float64(dst))
    else:
        f = f32(f.astype(np.float64) * np.float64(np.float32(1.0) / dst))
    if relu:
        f = np.maximum(f, np.float32(0))
    pre = f32(f.astype(np.float64) + float(out_zero_point))
    rounded = rne(pre.astype(np.float64))
    with np.errstate(invalid="ignore"):
        out = np.clip(np.nan_to_num(rounded, nan=0.0), 0, 255).astype(np.uint8)
    if trace is not None:
        trace.update(bias_term=bterm, multiplier=mult, pre_round=pre, rounded=rounded, output_stage=kernel)
    return out
