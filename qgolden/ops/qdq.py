"""Ops of PT2E / torchao Q/DQ graphs (`quantized_decomposed.*` around float aten ops).

The arithmetic (numerics.md §7, torchao `reference_representation_rewrite.py`):

    qdq_quantize, mode "mul" (quantized_decomposed.quantize_per_tensor, and Inductor's C++):
        q = clamp(rne(f32(x * f32(1/scale_f64))) + zp, qmin, qmax)     # zp added AFTER rounding
    qdq_quantize, mode "div" (torchao _reference_quantize_per_tensor_int8):
        q = clamp(trunc_i32(rne(f32(x / f32(scale)))) + zp, qmin, qmax)
    qdq_dequantize: f32(f32(q - zp) * f32(scale))

    add_reference (torchao _reference_quantized_add, int8):
        r_x = f32(f32(sx) / f32(so)); a = rne(f32(r_x * f32(x - zx)))       (same for y)
        out = clamp(a + b + zo, -128, 127)
    add_reference relu (_reference_quantized_add_relu): out_dtype(mul, int32) TRUNCATES:
        a = trunc(f32(f32(x - zx) * r_x)) ... out = clamp(a + b + zo, zo, qmax)

Float ops that a Q/DQ graph computes between a dequantize and a quantize are here too:
`float_unary` (hardswish etc., exact in float32), `float_adaptive_avg_pool` (ATen's
sequential per-window sum), `float_conv` / `float_linear` (NOT reproducible bit for bit:
the float32 summation order is the BLAS/oneDNN library's; qgolden sums exactly in float64
and rounds once, so results agree except where a float rounding moves a value across a
quantization boundary).
"""
from __future__ import annotations

import numpy as np

from ..numerics.floatops import f32, rne
from .spec import OpSpec

_NP = {"uint8": np.uint8, "int8": np.int8, "int32": np.int32}


def qdq_quantize(x, *, scale, zero_point, quant_min, quant_max, dtype, mode="mul", profile=None, trace=None):
    x = np.asarray(x, dtype=np.float32)
    if mode == "div":
        t = f32(x.astype(np.float64) / np.float64(np.float32(scale)))
    else:
        inv = np.float32(1.0 / float(scale))
        t = f32(x.astype(np.float64) * np.float64(inv))
    r = rne(t.astype(np.float64))
    if mode == "div":  # .to(int32) of an out-of-range float: x86 cvttps2dq gives INT32_MIN
        with np.errstate(invalid="ignore"):
            r = np.where(np.isfinite(r) & (np.abs(r) < 2.0**31), r, -(2.0**31))
    with np.errstate(invalid="ignore"):
        out = np.clip(r + float(zero_point), quant_min, quant_max)
        out = np.where(np.isnan(out), quant_min, out)  # NaN: not produced by finite models
    out = out.astype(_NP[dtype])
    if trace is not None:
        trace.update(pre_round=t, out=out)
    return out


def qdq_dequantize(q, *, scale, zero_point, profile=None, trace=None):
    d = f32(np.asarray(q).astype(np.float64) - float(zero_point))
    out = f32(d.astype(np.float64) * np.float64(np.float32(scale)))
    if trace is not None:
        trace.update(out=out)
    return out


def add_reference(a, b, *, a_scale, a_zero_point, b_scale, b_zero_point, out_scale, out_zero_point,
                  quant_min, quant_max, relu=False, dtype="int8", profile=None, trace=None):
    ra = np.float32(np.float32(a_scale) / np.float32(out_scale))
    rb = np.float32(np.float32(b_scale) / np.float32(out_scale))
    da = np.asarray(a).astype(np.int64) - int(a_zero_point)
    db = np.asarray(b).astype(np.int64) - int(b_zero_point)
    fa = f32(da.astype(np.float64) * np.float64(ra))
    fb = f32(db.astype(np.float64) * np.float64(rb))
    if relu:
        ia, ib = np.trunc(fa.astype(np.float64)), np.trunc(fb.astype(np.float64))
        lo, hi = int(out_zero_point), int(quant_max)
    else:
        ia, ib = rne(fa.astype(np.float64)), rne(fb.astype(np.float64))
        lo, hi = -128, 127
    s = ia.astype(np.int64) + ib.astype(np.int64) + int(out_zero_point)
    out = np.clip(s, lo, hi).astype(_NP[dtype])
    if trace is not None:
        trace.update(a_term=ia, b_term=ib, multiplier=(ra, rb), out=out)
    return out


def concat(xs, *, dim, profile=None, trace=None):
    """cat of quantized tensors that share their quantization (dq -> cat -> q, same qparams): a copy."""
    return np.concatenate([np.asarray(x) for x in xs], axis=dim)


def float_unary(x, *, fn, min_val=None, max_val=None, profile=None, trace=None):
    """Elementwise float32 ops as ATen's CPU kernels, or torch.compile's C++ (engine x86-inductor),
    compute them: each step correctly rounded; the sign of a zero result from max/min is the
    instruction's (float_ops.float_clamp, CpuClass.vec_zero_minmax)."""
    from .float_ops import float_clamp, runs_inductor, vec_max, vec_min

    x = np.asarray(x, dtype=np.float32)
    if fn == "hardswish":  # x * min(max(x + 3, 0), 6) / 6 (ATen's and Inductor's decomposition alike)
        from ..cpu import cpu_class, detect

        zeros = cpu_class(profile or detect()).vec_zero_minmax
        t = vec_min(vec_max(x + np.float32(3), np.float32(0), zeros), np.float32(6), zeros)
        return ((x * t) / np.float32(6)).astype(np.float32)
    if fn in ("relu", "relu6", "hardtanh"):
        return float_clamp(x, fn, min_val, max_val, inductor=runs_inductor(profile), profile=profile)
    raise NotImplementedError(f"float op {fn}")


def float_adaptive_avg_pool(x, *, output_size, profile=None, trace=None):
    """aten adaptive_avg_pool2d on float32 (AdaptiveAvgPoolKernel.cpp): each window summed
    in float32 sequentially (row by row, left to right), then divided by the window size."""
    x = np.asarray(x, dtype=np.float32)
    h, w = x.shape[-2:]
    oh, ow = [int(v) for v in output_size]
    if (oh, ow) == (1, 1):  # ATen computes this case as x.mean((-1, -2), keepdim=True)
        return float_mean(x, dim=[-2, -1], keepdim=True)
    out = np.empty(x.shape[:-2] + (oh, ow), np.float32)
    for i in range(oh):
        h0, h1 = (i * h) // oh, -((-(i + 1) * h) // oh)
        for j in range(ow):
            w0, w1 = (j * w) // ow, -((-(j + 1) * w) // ow)
            acc = np.zeros(x.shape[:-2], np.float32)
            for a in range(h0, h1):
                for b in range(w0, w1):
                    acc = (acc + x[..., a, b]).astype(np.float32)
            out[..., i, j] = acc / np.float32((h1 - h0) * (w1 - w0))
    return out


def trailing_dims(x, dim) -> bool:
    """Whether `dim` are the innermost dims of x (what ATen sums with vectorized_inner_sum)."""
    d = sorted(int(v) % x.ndim for v in dim)
    return d == list(range(x.ndim - len(d), x.ndim))


def float_mean(x, *, dim, keepdim, profile=None, trace=None):
    """aten mean on float32 = ATen's sum, then one float32 division by the count. Over the innermost
    dims of a contiguous tensor the sum is ATen's cascade (numerics/floatsum.py, exact); otherwise
    (not reproduced) the exact sum rounded once."""
    from ..numerics.floatsum import inner_sum

    x = np.asarray(x, dtype=np.float32)
    d = tuple(int(v) % x.ndim for v in dim)
    n = int(np.prod([x.shape[v] for v in d]))
    if trailing_dims(x, d):
        lead = x.shape[:x.ndim - len(d)]
        y = np.divide(inner_sum(x.reshape(lead + (n,))), np.float32(n), dtype=np.float32)
        return y.reshape(lead + (1,) * len(d)) if keepdim else y
    return f32(x.astype(np.float64).sum(axis=d, keepdims=keepdim) / n)


def float_linear(x, *, weight, bias=None, profile=None, trace=None):
    """float32 linear on dequantized values: exact sum in float64, one rounding, then + bias."""
    x = np.asarray(x, dtype=np.float32).astype(np.float64)
    acc = f32(x @ np.asarray(weight, np.float32).astype(np.float64).T)
    if bias is not None:
        acc = f32(acc.astype(np.float64) + np.asarray(bias, np.float32).astype(np.float64))
    return acc


def onednn_f32_1x1_kernel(x_hw, kernel, stride, padding) -> bool:
    """Whether oneDNN runs a float32 conv as its 1x1 kernel: kernel 1x1, no padding, and a stride that
    reduce_to_unit_stride can take out (each input extent = output extent * stride, i.e. a multiple
    of the stride; rtus_prepare in src/cpu/x64/jit_uni_1x1_conv_utils.hpp)."""
    return (tuple(kernel) == (1, 1) and all(int(p) == 0 for p in padding)
            and all(int(h) % int(s) == 0 for h, s in zip(x_hw, stride)))


def float_depthwise_conv(x, w, bias, stride, padding, dilation, bias_first=True):
    """torch's float32 depthwise conv on the CPU (oneDNN, channel multiplier 1), reproduced exactly:

        bias_first: acc = bias (or 0) ; for r in rows, for s in columns: acc = fma32(x[r, s], w[r, s], acc)
        otherwise:  acc = 0 ; the same taps ; acc = f32(acc + bias)

    oneDNN's depthwise kernels (jit_uni_dw_conv, any ISA) and AVX2's direct conv start at the bias
    (measured: 0 differences over 460 configurations on AVX2, and C > 1 on AVX-512). With a single
    channel oneDNN sees a plain conv: on AVX-512 jit_avx512_common_conv_fwd_kernel_f32 adds the bias
    after the taps (CpuClass.onednn_f32_conv_bias_first False), except its 1x1 kernel
    (onednn_f32_1x1_kernel), whose single tap is fma32(x, w, bias). Padded taps hold 0, for which
    the FMA leaves acc unchanged."""
    from ..numerics.floatops import fma32

    nb, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    sh, sw = stride
    ph, pw = padding
    dh, dw = dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    b = np.zeros(c, np.float32) if bias is None else np.asarray(bias, np.float32)
    start = b if bias_first else np.zeros(c, np.float32)
    acc = np.broadcast_to(start[None, :, None, None], (nb, c, oh, ow)).astype(np.float32)
    for r in range(kh):
        for s_ in range(kw):
            tap = xp[:, :, r * dh:r * dh + (oh - 1) * sh + 1:sh, s_ * dw:s_ * dw + (ow - 1) * sw + 1:sw]
            acc = fma32(tap, w[:, 0, r, s_][None, :, None, None], acc)
    if not bias_first:
        acc = np.add(acc, b[None, :, None, None], dtype=np.float32)
    return acc


def float_conv(x, *, weight, bias=None, stride, padding, dilation, groups, profile=None, trace=None):
    """float32 conv2d on dequantized values. Depthwise (channel multiplier 1): oneDNN's order
    (float_depthwise_conv; profile None: this machine's CPU class). Otherwise (not reproduced):
    exact sum in float64, one rounding, then + bias."""
    from ..numerics import accumulate as A

    x = np.asarray(x, dtype=np.float32)
    w = np.asarray(weight, dtype=np.float32)
    conv1d = x.ndim == 3
    if conv1d:
        x, w = x[:, :, None, :], w[:, :, None, :]
        stride, padding, dilation = [1, stride[0]], [0, padding[0]], [1, dilation[0]]
    nb, c_in = x.shape[:2]
    c_out, cpg, kh, kw = w.shape
    if int(groups) == c_in == c_out and cpg == 1:
        from ..cpu import cpu_class, detect

        bias_first = (c_in > 1 or cpu_class(profile or detect()).onednn_f32_conv_bias_first
                      or onednn_f32_1x1_kernel(x.shape[2:], (kh, kw), stride, padding))
        y = float_depthwise_conv(x, w, bias, stride, padding, dilation, bias_first)
        return y[:, :, 0, :] if conv1d else y
    patches = A.im2col_patches(x, (kh, kw), tuple(stride), tuple(padding), tuple(dilation), np.float32(0))
    _, oh, ow = patches.shape[:3]
    g = int(groups)
    kpg = c_out // g
    acc = np.empty((nb, oh, ow, c_out), np.float64)
    for gi in range(g):
        p = patches[:, :, :, gi * cpg:(gi + 1) * cpg].reshape(nb, oh, ow, -1).astype(np.float64)
        wg = w[gi * kpg:(gi + 1) * kpg].reshape(kpg, -1).astype(np.float64)
        acc[..., gi * kpg:(gi + 1) * kpg] = p @ wg.T
    y = f32(acc)
    if bias is not None:
        y = f32(y.astype(np.float64) + np.asarray(bias, np.float32).astype(np.float64))
    y = np.ascontiguousarray(y.transpose(0, 3, 1, 2))
    return y[:, :, 0, :] if conv1d else y


def linear_reference(x, *, x_scale, x_zero_point, weight, weight_scale, weight_zero_point, bias,
                     out_scale, out_zero_point, out_quant_min, out_quant_max, out_dtype, trace=None):
    """torchao _reference_quantized_linear (int8, per-tensor weight):

        acc  = Σ_k (x - zx)(w - zw)                                  exact int32
        bs   = f32(f32(sx) * f32(sw))                                 (aten.mul of two Python floats)
        acc += trunc(f32(bias / bs))                                  out_dtype(div, int32)
        m    = f32(bs / f32(so))
        y    = trunc(f32(f32(acc) * m)) + zo                          out_dtype(mul, int32)
        out  = clamp(y, qmin, qmax)
    """
    from ..numerics.accumulate import matmul_exact

    x = np.asarray(x)
    w = np.asarray(weight)
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1]).astype(np.int64) - int(x_zero_point)
    zw = int(np.asarray(weight_zero_point).reshape(-1)[0])
    acc = matmul_exact(x2, (w.astype(np.int64) - zw).T)
    t = {}
    out = requantize_reference(acc, x_scale=x_scale, weight_scale=weight_scale, bias=bias, out_scale=out_scale,
                               out_zero_point=out_zero_point, out_quant_min=out_quant_min,
                               out_quant_max=out_quant_max, out_dtype=out_dtype, trace=t)
    out = out.reshape(lead + (w.shape[0],))
    if trace is not None:
        trace.update(t, acc=t["acc"].reshape(lead + (w.shape[0],)), out=out)
    return out


def requantize_reference(acc, *, x_scale, weight_scale, bias, out_scale, out_zero_point, out_quant_min,
                         out_quant_max, out_dtype, trace=None):
    """The requantization of _reference_quantized_linear, from the exact accumulator acc [M, N]:

        bs = f32(f32(sx) * f32(sw));  acc += trunc(f32(bias / bs))
        out = clamp(trunc(f32(f32(acc) * f32(bs / f32(so)))) + zo, qmin, qmax)
    (trace: acc, bias_term, acc_with_bias, multiplier, pre_round)"""
    acc = acc_in = np.asarray(acc, dtype=np.int64)
    bs = np.float32(np.float32(x_scale) * np.float32(np.asarray(weight_scale).reshape(-1)[0]))
    bterm = None
    if bias is not None:
        bterm = np.trunc(f32(np.asarray(bias, np.float32).astype(np.float64) / np.float64(bs)).astype(np.float64))
        acc = acc + bterm.astype(np.int64)
    m = np.float32(bs / np.float32(out_scale))
    pre = f32(f32(acc.astype(np.float64)).astype(np.float64) * np.float64(m))
    y = np.trunc(pre.astype(np.float64)) + int(out_zero_point)
    out = np.clip(y, out_quant_min, out_quant_max).astype(_NP[out_dtype])
    if trace is not None:
        trace.update(acc=acc_in, bias_term=bterm, acc_with_bias=acc, multiplier=m, pre_round=pre)
    return out


def _onednn_profile(profile):
    p = dict(profile)
    p["engine"] = "onednn"
    return p


def linear_pt2e(backend, x, *, x_scale, x_zero_point, weight, weight_scale, weight_zero_point, bias,
                out_scale, out_zero_point, relu, per_channel, out_quant_min, out_quant_max, out_dtype,
                profile, trace=None):
    """linear of a PT2E runtime (called by ops.linear for the PT2E backends)."""
    if backend == "pt2e_reference":
        if relu:
            raise ValueError("the reference representation has no fused linear+relu")
        return linear_reference(x, x_scale=x_scale, x_zero_point=x_zero_point, weight=weight,
                                weight_scale=weight_scale, weight_zero_point=weight_zero_point, bias=bias,
                                out_scale=out_scale, out_zero_point=out_zero_point, out_quant_min=out_quant_min,
                                out_quant_max=out_quant_max, out_dtype=out_dtype, trace=trace)
    if backend == "onednn_inductor" and out_dtype == "float32":
        from ..numerics.profile import gemm_saturates
        from .linear import accumulate_linear

        x = np.asarray(x)
        x2 = x.reshape(-1, x.shape[-1])
        acc = accumulate_linear(x2, np.asarray(weight), x_zero_point, weight_zero_point, "onednn",
                                gemm_saturates(profile), profile["isa"])
        m, k = x2.shape
        combined = onednn_combined_scale(profile, "linear", {"m": m, "k": k, "n": np.asarray(weight).shape[0]})
        y = _onednn_float_out(acc, x_scale, weight_scale, bias, relu, combined=combined)
        return y.reshape(x.shape[:-1] + (y.shape[-1],))
    if backend == "onednn_inductor":
        from .linear import linear

        n = np.asarray(weight).shape[0]
        b = np.zeros(n, np.float32) if bias is None else bias
        return linear(x, x_scale=x_scale, x_zero_point=x_zero_point, weight=weight, weight_scale=weight_scale,
                      weight_zero_point=weight_zero_point, bias=b, out_scale=out_scale,
                      out_zero_point=out_zero_point, relu=relu, per_channel=per_channel,
                      profile=_onednn_profile(profile), trace=trace)
    if backend == "xnnpack":
        from . import xnnpack

        return xnnpack.linear(x, x_scale=x_scale, x_zero_point=x_zero_point, weight=weight, weight_scale=weight_scale,
                              bias=bias, out_scale=out_scale, out_zero_point=out_zero_point, per_channel=per_channel,
                              out_quant_min=out_quant_min, out_quant_max=out_quant_max, trace=trace)
    raise NotImplementedError(f"linear on the {backend} runtime is not modelled yet")


def conv_pt2e(backend, x, *, x_scale, x_zero_point, weight, weight_scale, weight_zero_point, bias,
              out_scale, out_zero_point, stride, padding, dilation, groups, relu, per_channel,
              out_quant_min, out_quant_max, out_dtype, profile, trace=None, post_op=None, post_op_args=None):
    """conv of a PT2E runtime (called by ops.conv for the PT2E backends).

    onednn_inductor: onednn::qconv_pointwise runs the same oneDNN int8 convolution as the
    'onednn' engine (AVX2: vpmaddubsw pair saturation, see ops/conv.py) with a float bias
    (zeros when the model has none) added after scaling: ops.conv's onednn path. A fused
    hardtanh/hardswish post-op (numerics/onednn_postops.py) is applied to the float value,
    then the uint8 destination (onednn_dst_quantize) unless the output is float32."""
    if backend == "onednn_inductor" and (out_dtype == "float32" or post_op is not None):
        from ..numerics.onednn_postops import onednn_dst_quantize
        from .conv import _CTX, conv_accumulate

        acc, ctx = conv_accumulate(x, weight, x_zero_point, weight_zero_point, stride, padding, dilation,
                                   groups, _onednn_profile(profile))
        c = dict(zip(_CTX, (ctx[k] for k in _CTX)))
        combined = onednn_combined_scale(profile, "conv", conv_shape(np.shape(x), np.shape(weight), stride, padding,
                                                                     groups, (c["oh"], c["ow"])))
        y = _onednn_float_out(acc, x_scale, weight_scale, bias, relu, post_op, post_op_args, combined=combined)
        if out_dtype != "float32":
            y = onednn_dst_quantize(y, out_scale, out_zero_point, out_quant_min, out_quant_max)
        y = y.reshape(c["nb"], c["oh"], c["ow"], c["c_out"]).transpose(0, 3, 1, 2)
        return np.ascontiguousarray(y[:, :, 0, :] if c["conv1d"] else y)
    if backend == "onednn_inductor":
        from .conv import conv

        n = np.asarray(weight).shape[0]
        b = np.zeros(n, np.float32) if bias is None else bias
        return conv(x, x_scale=x_scale, x_zero_point=x_zero_point, weight=weight, weight_scale=weight_scale,
                    weight_zero_point=weight_zero_point, bias=b, out_scale=out_scale,
                    out_zero_point=out_zero_point, stride=stride, padding=padding, dilation=dilation,
                    groups=groups, relu=relu, per_channel=per_channel, profile=_onednn_profile(profile),
                    trace=trace)
    if backend == "xnnpack":
        from . import xnnpack

        return xnnpack.conv(x, x_scale=x_scale, x_zero_point=x_zero_point, weight=weight, weight_scale=weight_scale,
                            bias=bias, out_scale=out_scale, out_zero_point=out_zero_point, stride=stride,
                            padding=padding, dilation=dilation, groups=groups, per_channel=per_channel,
                            out_quant_min=out_quant_min, out_quant_max=out_quant_max, trace=trace)
    raise NotImplementedError(f"conv on the {backend} runtime is not modelled yet")


def conv_shape(x_shape, w_shape, stride, padding, groups, out_hw) -> dict:
    """The conv geometry CpuClass.onednn_int8_combined_scale reads (a conv1d is a conv2d of height 1)."""
    x_shape, w_shape = tuple(x_shape), tuple(w_shape)
    conv1d = len(x_shape) == 3
    return {"nb": x_shape[0], "c_in": x_shape[1], "c_out": w_shape[0], "groups": int(groups),
            "kernel": (1, w_shape[-1]) if conv1d else w_shape[2:4],
            "stride": (1, stride[0]) if conv1d else tuple(stride), "padding": (0, padding[0]) if conv1d else tuple(padding),
            "out_hw": tuple(out_hw)}


def onednn_combined_scale(profile, op, shape) -> bool:
    """Whether the oneDNN int8 kernel x86-inductor runs for this op scales by one f32(sx*sw[n])
    (the profile's CpuClass, its thread count for the AMX 1x1 conv choice)."""
    from ..cpu import cpu_class

    return cpu_class(profile).onednn_int8_combined_scale(op, shape, int(profile.get("num_threads", 1)))


def _onednn_float_out(acc, x_scale, weight_scale, bias, relu, post_op=None, post_op_args=None, combined=True):
    """oneDNN int8 kernel with float32 output (qconv/qlinear_pointwise, output_dtype float32):
        combined:   f = f32(f32(acc) * f32(f32(sx) * f32(sw[n])))
        in turn:    f = f32(f32(f32(acc) * f32(sx)) * f32(sw[n]))
    (which one: CpuClass.onednn_int8_combined_scale), then f = f32(f + bias[n]) ; relu ; fused
    post-op (numerics/onednn_postops.py: hardtanh, hardswish)."""
    from ..numerics.onednn_postops import onednn_post_op

    acc = np.asarray(acc, dtype=np.int64)
    n = acc.shape[-1]
    sw = np.asarray(weight_scale, np.float64).reshape(-1)
    sw = f32(np.repeat(sw, n) if sw.size == 1 else sw).astype(np.float64)
    fa = f32(acc.astype(np.float64)).astype(np.float64)
    if combined:
        f = f32(fa * f32(np.float64(np.float32(x_scale)) * sw).astype(np.float64))
    else:
        f = f32(f32(fa * np.float64(np.float32(x_scale))).astype(np.float64) * sw)
    if bias is not None:
        f = f32(f.astype(np.float64) + np.asarray(bias, np.float32).astype(np.float64))
    if relu:
        f = np.maximum(f, np.float32(0))
    return onednn_post_op(f, post_op, *(post_op_args or ()))


def float_max_pool(x, *, kernel_size, stride, padding, dilation, ceil_mode, channels_last=False, profile=None,
                   trace=None):
    """max pool of float32 values (exact): the integer max pool on an order-preserving int32 key."""
    from .max_pool import max_pool

    b = np.ascontiguousarray(np.asarray(x, np.float32)).view(np.int32)
    key = b ^ ((b >> 31) & np.int32(0x7FFFFFFF))
    m = max_pool(key, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
                 ceil_mode=ceil_mode, profile=profile or {"engine": "x86"}, channels_last=False)
    m = np.ascontiguousarray(m.astype(np.int32))
    return (m ^ ((m >> 31) & np.int32(0x7FFFFFFF))).view(np.float32)


SPECS = [
    OpSpec("qdq_quantize", "qdq_quantize", integer="quantize",
           torch=('quantized_decomposed::quantize_per_tensor (PT2E)',)),
    OpSpec("qdq_dequantize", "qdq_dequantize", integer="dequantize",
           torch=('quantized_decomposed::dequantize_per_tensor (PT2E)',)),
    OpSpec("add_reference", "add_reference", integer="binary_lut",
           torch=('aten.add between dequantize and quantize (PT2E)',)),
    OpSpec("concat", "concat", integer="concat",
           torch=('aten.cat between dequantize and quantize (PT2E)',)),
    OpSpec("float_unary", "float_unary", integer="float",
           torch=('aten.relu/hardtanh/relu6/hardswish in float (PT2E)',)),
    OpSpec("float_adaptive_avg_pool", "float_adaptive_avg_pool", integer="float",
           torch=('aten.adaptive_avg_pool2d in float (PT2E)',)),
    OpSpec("float_mean", "float_mean", integer="float",
           torch=('aten.mean in float (PT2E)',)),
    OpSpec("float_linear", "float_linear", integer="float",
           torch=('aten.linear in float (PT2E)',)),
    OpSpec("float_conv", "float_conv", integer="float",
           torch=('aten.conv1d/conv2d in float (PT2E)',)),
    OpSpec("float_max_pool", "float_max_pool", integer="float",
           torch=("aten.max_pool2d in float (PT2E)",)),
]
