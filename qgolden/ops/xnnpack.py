"""ExecuTorch's XNNPACK delegate (`--engine xnnpack`): the arithmetic XNNPACK's kernels perform.

A PT2E graph lowered with `to_edge_transform_and_lower(..., partitioner=[XnnpackPartitioner()])`
becomes one XNNPACK subgraph: every dq -> op -> q chain of a quantized op is one qs8 node, every
quantize / dequantize left at the edge of a float region is an XNNPACK Convert node, and the
float ops between them (hardswish, clamp, global average pooling...) run XNNPACK's f32 kernels.
Each formula below is one function; the sources are google/XNNPACK (src/...) and
pytorch/executorch (backends/xnnpack/...). docs/numerics.md lists them.

Constants ExecuTorch hands to XNNPACK (computed at lowering time, in Python):
    bias      int32 = ExecuTorch's quantize of the float bias with scale sx*sw   (bias_int32)
    weights   int8 as in the graph (symmetric, zero point 0)
Constants XNNPACK derives when it creates an operator (float32 C arithmetic):
    conv / fully connected   scale[c] = f32(f32(sx * sw[c]) / so)            (requantization_scale)
    add                      multipliers and shift from f32(sa / so), f32(sb / so) (add_params)
    fused activation bounds  xnn_qs8_quantize(value, so, zo)                  (activation_bound)
"""
from __future__ import annotations

import numpy as np

from ..numerics import accumulate as A
from ..numerics.floatops import f32, fma32, rne
from .spec import OpSpec

INT8_MIN, INT8_MAX = -128, 127


# -- constants ------------------------------------------------------------------------------
def requantization_scale(x_scale, weight_scale, out_scale) -> np.ndarray:
    """Per output channel: f32(f32(sx * sw[c]) / so), in float32 as XNNPACK's C computes
    `input_scale * kernel_scale[c] / output_scale` (src/operators/convolution-nhwc.c,
    src/operators/fully-connected-nc.c, qs8 / qs8_qc8w create functions)."""
    sw = f32(np.asarray(weight_scale, np.float64).reshape(-1)).astype(np.float64)
    prod = f32(np.float64(np.float32(x_scale)) * sw).astype(np.float64)
    return f32(prod / np.float64(np.float32(out_scale)))


def bias_int32(bias, x_scale, weight_scale, per_channel) -> np.ndarray:
    """The int32 bias ExecuTorch serializes for a quantized conv / linear with a float bias
    (executorch backends/xnnpack/operators/quant_params.py: QuantParams.from_bias, then
    quantize_tensor -> quantized_decomposed.quantize_per_tensor / quantize_per_channel):

        per-tensor   s = sw * sx (Python doubles);  q = rne(f32(b * f32(1/s)))
        per-channel  s = f32(sw[c] * f32(sx)) (float32 tensor times a Python float);
                     q = rne(f32(b * f32(1/s)))            (`input * (1.0 / scales)`)
    then clamped to int32."""
    b = np.asarray(bias, np.float32).astype(np.float64)
    sw = np.asarray(weight_scale, np.float64).reshape(-1)
    if per_channel:
        s = f32(f32(sw).astype(np.float64) * np.float64(np.float32(x_scale))).astype(np.float64)
        inv = f32(1.0 / s).astype(np.float64)
    else:
        s = float(sw[0]) * float(x_scale)
        inv = np.float64(np.float32(1.0 / s))
    q = rne(f32(b * inv).astype(np.float64))
    return np.clip(q, -(2.0**31), 2.0**31 - 1).astype(np.int64)


def activation_bound(value, out_scale, out_zero_point) -> int:
    """A fused activation's float bound (relu: 0, hardtanh: min/max) in the output's integers,
    as XNNPACK's subgraph computes it (src/xnnpack/quantization.h, xnn_qs8_quantize):
        lrintf(clamp(f32(f32(value / so) + zo), -128, 127))          (zero point added before rounding)
    +-inf give the int8 range."""
    if value == float("inf"):
        return INT8_MAX
    if value == float("-inf"):
        return INT8_MIN
    t = f32(np.float64(np.float32(value)) / np.float64(np.float32(out_scale)))
    t = f32(np.float64(t) + float(out_zero_point))
    return int(rne(np.clip(np.float64(t), INT8_MIN, INT8_MAX)))


def add_params(a_scale, b_scale, out_scale):
    """qs8 add's fixed-point parameters (src/microparams-init.c, xnn_init_qs8_add_minmax_scalar_params):
        ra = f32(sa / so), rb = f32(sb / so)
        shift = 20 - exponent(max(ra, rb))                     (in [12, 30])
        ma = lrintf(ra * 2**shift), mb = lrintf(rb * 2**shift)  (round half to even)
    Returns (ma, mb, shift)."""
    so = np.float64(np.float32(out_scale))
    ra = f32(np.float64(np.float32(a_scale)) / so)
    rb = f32(np.float64(np.float32(b_scale)) / so)
    _, e = np.frexp(np.float64(max(ra, rb)))  # max = m * 2**e, m in [0.5, 1): exponent = e - 1
    shift = 20 - (int(e) - 1)
    if not 12 <= shift <= 30:
        raise ValueError(f"XNNPACK qs8 add: scale ratio {max(ra, rb)} out of its range [2**-10, 2**8)")
    ma = int(rne(np.float64(ra) * 2.0**shift))
    mb = int(rne(np.float64(rb) * 2.0**shift))
    return ma, mb, shift


# -- requantization -------------------------------------------------------------------------
def requantize_fp32(acc, scale, out_zero_point, out_min, out_max) -> np.ndarray:
    """qs8 gemm / igemm / dwconv "fp32" requantization (src/qs8-gemm, src/qs8-dwconv, e.g.
    *-minmax-fp32-avx2*.c):  clamp(rne(f32(f32(acc) * scale[c])) + zo, out_min, out_max)
    (cvtps2dq or magic-bias rounding: both round half to even; the float clamp at
    out_max - zo before rounding gives the same integers)."""
    v = f32(f32(np.asarray(acc, np.float64)).astype(np.float64) * np.asarray(scale, np.float64))
    q = rne(v.astype(np.float64)) + int(out_zero_point)
    return np.clip(q, out_min, out_max).astype(np.int8)


# -- ops ------------------------------------------------------------------------------------
def conv_acc(x, weight, x_zero_point, stride, padding, dilation, groups) -> np.ndarray:
    """acc[n, oh, ow, o] = Σ (x - zx) * w exactly in int32 (XNNPACK packs the bias and
    -zx * Σw into the weights; integer sums are exact in any order). Padding is real 0."""
    x = np.asarray(x)
    w = np.asarray(weight)
    zx = int(x_zero_point)
    nb = x.shape[0]
    c_out, cpg, kh, kw = w.shape
    g = int(groups)
    kpg = c_out // g
    patches = A.im2col_patches(x, (kh, kw), tuple(stride), tuple(padding), tuple(dilation), x.dtype.type(zx))
    _, oh, ow = patches.shape[:3]
    acc = np.empty((nb * oh * ow, c_out), np.int64)
    for gi in range(g):
        cols = A.im2col_fbgemm(patches, gi * cpg, (gi + 1) * cpg).astype(np.int64) - zx
        wg = A.weight_fbgemm(w, gi * kpg, (gi + 1) * kpg).astype(np.int64)
        acc[:, gi * kpg:(gi + 1) * kpg] = A.matmul_exact(cols, wg.T)
    return acc.reshape(nb, oh, ow, c_out)


def conv(x, *, x_scale, x_zero_point, weight, weight_scale, bias, out_scale, out_zero_point, stride, padding,
         dilation, groups, per_channel, out_quant_min, out_quant_max, trace=None):
    """XNNPACK qs8 / qs8_qc8w convolution (conv2d, depthwise; conv1d as H = 1):
    acc = Σ (x - zx) w + bias_int32[c]; requantize_fp32 with requantization_scale.
    out_quant_min / out_quant_max carry the fused activation's bounds (activation_bound)."""
    x = np.asarray(x)
    w = np.asarray(weight)
    conv1d = x.ndim == 3
    if conv1d:
        x, w = x[:, :, None, :], w[:, :, None, :]
        stride, padding, dilation = [1, stride[0]], [0, padding[0]], [1, dilation[0]]
    acc = conv_acc(x, w, x_zero_point, stride, padding, dilation, groups)
    if bias is not None:
        acc = acc + bias_int32(bias, x_scale, weight_scale, per_channel)
    scale = requantization_scale(x_scale, weight_scale, out_scale)
    out = requantize_fp32(acc, scale, out_zero_point, out_quant_min, out_quant_max)
    out = np.ascontiguousarray(out.transpose(0, 3, 1, 2))
    if trace is not None:
        trace.update(acc=acc, multiplier=scale, out=out)
    return out[:, :, 0, :] if conv1d else out


def linear(x, *, x_scale, x_zero_point, weight, weight_scale, bias, out_scale, out_zero_point, per_channel,
           out_quant_min, out_quant_max, trace=None):
    """XNNPACK qs8 / qs8_qc8w fully connected: acc = Σ_k (x - zx) w + bias_int32[n];
    requantize_fp32 with requantization_scale."""
    x = np.asarray(x)
    w = np.asarray(weight)
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1]).astype(np.int64) - int(x_zero_point)
    acc = A.matmul_exact(x2, w.astype(np.int64).T)
    if bias is not None:
        acc = acc + bias_int32(bias, x_scale, weight_scale, per_channel)
    scale = requantization_scale(x_scale, weight_scale, out_scale)
    out = requantize_fp32(acc, scale, out_zero_point, out_quant_min, out_quant_max).reshape(lead + (w.shape[0],))
    if trace is not None:
        trace.update(acc=acc.reshape(lead + (w.shape[0],)), multiplier=scale, out=out)
    return out


def add(a, b, *, a_scale, a_zero_point, b_scale, b_zero_point, out_scale, out_zero_point, out_min=INT8_MIN,
        out_max=INT8_MAX, profile=None, trace=None):
    """XNNPACK qs8 add (src/qs8-vadd/*.c, params from add_params):
        acc = (2**(shift-1) - ma*za - mb*zb) + a*ma + b*mb        (int32)
        out = clamp((acc >> shift) + zo, out_min, out_max)       (arithmetic shift: half rounds up)
    out_min / out_max: a fused relu's bound (activation_bound)."""
    ma, mb, shift = add_params(a_scale, b_scale, out_scale)
    bias = (1 << (shift - 1)) - ma * int(a_zero_point) - mb * int(b_zero_point)
    acc = bias + np.asarray(a).astype(np.int64) * ma + np.asarray(b).astype(np.int64) * mb
    out = np.clip((acc >> shift) + int(out_zero_point), out_min, out_max).astype(np.int8)
    if trace is not None:
        trace.update(acc=acc, multiplier=(ma, mb), shift=shift, out=out)
    return out


def quantize(x, *, scale, zero_point, dtype="int8", profile=None, trace=None):
    """XNNPACK Convert f32 -> qs8 (src/f32-qs8-vcvt, params xnn_init_f32_qs8_cvt_scalar_params
    with scale = 1.0f / output_scale):  clamp(rne(f32(x * f32(1/s))) + zo, -128, 127).
    dtype: int8 only (qs8; named so the integer-only transform can read the output's type)."""
    if dtype != "int8":
        raise ValueError(f"XNNPACK Convert f32 -> qs8 gives int8, not {dtype}")
    inv = np.float32(1.0) / np.float32(scale)
    t = f32(np.asarray(x, np.float32).astype(np.float64) * np.float64(inv))
    with np.errstate(invalid="ignore"):
        out = np.clip(rne(t.astype(np.float64)) + int(zero_point), INT8_MIN, INT8_MAX)
    out = out.astype(np.int8)
    if trace is not None:
        trace.update(pre_round=t, out=out)
    return out


def hardswish(x, *, profile=None, trace=None):
    """XNNPACK f32 hardswish on an FMA3 CPU (src/f32-vhswish/gen/f32-vhswish-fma3.c, chosen by
    src/configs/unary-elementwise-config.c when the CPU has FMA3 and not AVX512F):
        y = f32(min(max(fma(x, 0x1.555556p-3, 0.5), 0), 1) * x)."""
    x = np.asarray(x, np.float32)
    t = fma32(x, np.float32(float.fromhex("0x1.555556p-3")), np.float32(0.5))
    t = np.minimum(np.maximum(t, np.float32(0)), np.float32(1))
    return (t * x).astype(np.float32)


def global_mean(x, *, profile=None, trace=None):
    """XNNPACK f32 global average pooling = static mean over H and W of the NHWC tensor
    (src/subgraph: xnn_define_global_average_pooling_2d -> reduce mean; src/f32-rdsum/simd.c.in):
        acc = 0; for each pixel in row-major (h, w) order: acc = f32(x + acc)
        out = f32(acc * f32(1.0f / (H*W)))
    x [N, C, H, W] float32 -> [N, C, 1, 1]."""
    x = np.asarray(x, np.float32)
    n, c, h, w = x.shape
    acc = np.zeros((n, c), np.float32)
    for i in range(h):
        for j in range(w):
            acc = (x[:, :, i, j] + acc).astype(np.float32)
    scale = np.float32(1.0) / np.float32(h * w)
    return (acc * scale).astype(np.float32).reshape(n, c, 1, 1)


def quantized_mean_scale(in_scale, out_scale, count) -> np.float32:
    """The float32 factor of XNNPACK's qs8 mean: f32(f32(si / so) * f32(1.0f / N))
    (reduce params set at create from the quantizations, updated at reshape with 1/N)."""
    ratio = f32(np.float64(np.float32(in_scale)) / np.float64(np.float32(out_scale)))
    inv_n = np.float32(1.0) / np.float32(count)
    return np.float32(f32(np.float64(ratio) * np.float64(inv_n)))


def quantized_global_mean(x, *, in_scale, in_zero_point, out_scale, out_zero_point, profile=None, trace=None):
    """XNNPACK qs8 global average pooling = qs8 reduce mean over H, W (src/operators/reduce-nd.c:
    qs8 rdsum into int32, s32 -> f32 convert less N * zi, scaled, to qs8):
        acc = Σ (q - zi)  (int32, exact);  v = f32(f32(acc) * quantized_mean_scale)
        out = clamp(rne(f32(v + zo)), -128, 127)          (zero point added BEFORE rounding)
    Unlike the conv/convert requantization, the output zero point is added in float before the
    round-half-even: measured on ExecuTorch 1.5.1 (0 of 3072 elements differ; adding it after
    rounding differs on 44, at the .5 ties). x int8 [N, C, H, W] -> [N, C, 1, 1]."""
    x = np.asarray(x)
    n, c, h, w = x.shape
    count = h * w
    acc = x.astype(np.int64).sum(axis=(2, 3)) - count * int(in_zero_point)
    scale = quantized_mean_scale(in_scale, out_scale, count)
    out = mean_requantize(acc, scale, out_zero_point, trace)
    if trace is not None:
        trace.update(acc=acc, multiplier=scale, out=out)
    return out.reshape(n, c, 1, 1)


def mean_requantize(acc, scale, out_zero_point, trace=None) -> np.ndarray:
    """qs8 mean's requantization of the exact sum acc = Σ (q - zi):
        clamp(rne(f32(f32(f32(acc) * scale) + zo)), -128, 127)      (scale = quantized_mean_scale)"""
    v = f32(f32(np.asarray(acc, np.float64)).astype(np.float64) * np.float64(scale))
    v = f32(v.astype(np.float64) + int(out_zero_point))
    if trace is not None:
        trace.update(pre_round=v)
    return np.clip(rne(v.astype(np.float64)), INT8_MIN, INT8_MAX).astype(np.int8)


def clamp(x, *, out_min, out_max, profile=None, trace=None):
    """XNNPACK qs8 clamp (dq -> relu / hardtanh -> q with one quantization): an integer clamp to the
    bounds activation_bound gives (src/subgraph/unary.c: the float bounds quantized with
    xnn_qs8_quantize; src/s8-vclamp)."""
    return np.clip(np.asarray(x), out_min, out_max).astype(np.int8)


def sum9(taps) -> np.ndarray:
    """One pass of XNNPACK's f32 average pooling kernel over 9 taps t0..t8 (missing ones read
    the zero buffer), in float32 (src/f32-avgpool/avgpool.c.in):
        ((t2 + t3) + (t4 + t5)) + (((t0 + t1) + t8) + (t6 + t7))"""
    t = list(taps) + [np.float32(0)] * (9 - len(taps))
    s018 = f32(f32(t[0] + np.float64(0) + t[1]) + np.float64(0) + t[8]).astype(np.float32)
    s23, s45, s67 = (f32(np.float64(0) + a + b).astype(np.float32) for a, b in ((t[2], t[3]), (t[4], t[5]), (t[6], t[7])))
    s2345 = f32(np.float64(0) + s23 + s45)
    s01678 = f32(np.float64(0) + s018 + s67)
    return f32(np.float64(0) + s2345 + s01678)


def avg_pool(x, *, kernel_size, stride, padding, profile=None, trace=None):
    """XNNPACK f32 average pooling, padding excluded from the count (what ExecuTorch delegates:
    no padding, or count_include_pad=False), src/f32-avgpool/avgpool.c.in (9p kernel):
    the window's taps in the indirection buffer's order (kernel column by column:
    for kx, for ky), 9 at a time: acc = f32(acc + sum9(taps)); out = f32(acc * m), m = f32(1.0f / count)
    (count = taps inside the input; padded taps read the zero buffer). x [N, C, H, W] float32."""
    x = np.asarray(x, np.float32)
    kh, kw = kernel_size
    sh, sw = stride
    ph, pw = padding
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    valid = np.pad(np.ones((h, w), np.int64), ((ph, ph), (pw, pw)))
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    taps, counts = [], np.zeros((oh, ow), np.int64)
    for kx in range(kw):
        for ky in range(kh):
            taps.append(xp[:, :, ky:ky + (oh - 1) * sh + 1:sh, kx:kx + (ow - 1) * sw + 1:sw])
            counts += valid[ky:ky + (oh - 1) * sh + 1:sh, kx:kx + (ow - 1) * sw + 1:sw]
    acc = np.zeros((n, c, oh, ow), np.float32)
    for i in range(0, len(taps), 9):
        acc = f32(np.float64(0) + acc + sum9(taps[i:i + 9]))
    m = (np.float32(1.0) / counts.astype(np.float32)).astype(np.float32)
    return f32(acc.astype(np.float64) * m.astype(np.float64))


SPECS = [
    OpSpec("xnnpack_quantize", "quantize", integer="xnnpack_quantize"),
    OpSpec("xnnpack_add", "add", integer="binary_lut"),
    OpSpec("xnnpack_clamp", "clamp", integer="clamp"),
    OpSpec("xnnpack_hardswish", "hardswish", integer="float"),
    OpSpec("xnnpack_avg_pool", "avg_pool", integer="float"),
    OpSpec("xnnpack_global_mean", "global_mean", integer="float"),
    OpSpec("xnnpack_quantized_global_mean", "quantized_global_mean", integer="xnnpack_mean"),
]
