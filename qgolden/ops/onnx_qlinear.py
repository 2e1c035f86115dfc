"""ONNX quantized ops as ONNX Runtime's CPU execution provider and the ONNX reference evaluator
compute them (formulas: qgolden/numerics/mlas.py, each with its source file).

`runtime` selects the arithmetic: "mlas" (onnxruntime: MLAS kernels, float32 requantization,
the CPU class's pair saturation) or "reference" (onnx.reference.ReferenceEvaluator: exact
int32 sums, float64 requantization). Tensors keep ONNX's layout (NCHW) unless
`channels_last` (com.microsoft ops ORT's NHWC transformer made).
"""
from __future__ import annotations

import numpy as np

from ..cpu import cpu_class
from ..numerics import mlas
from ..numerics.accumulate import im2col_patches, matmul_exact, matmul_pair_saturated
from .spec import OpSpec

RUNTIMES = ("mlas", "reference")


def saturating(profile, a_dtype: str, b_dtype: str, runtime: str) -> bool:
    """MLAS's u8*s8 kernels pair products in saturating int16 on this CPU class (CpuClass.mlas_u8s8_saturates);
    an int8 A is biased to uint8 (+128) first, so s8*s8 takes the same kernel."""
    if runtime != "mlas" or b_dtype != "int8" or profile is None:
        return False
    return cpu_class(profile).mlas_u8s8_saturates


def gemm_acc(a, b, a_zero_point, b_zero_point, saturate: bool) -> np.ndarray:
    """acc[m, n] = Σ_k (a[m,k] - za) * (b[k,n] - zb[n]), exactly, as int64 (a [M, K] integers,
    b [K, N]). saturate: MLAS's AVX2 / AVX-512 (non-VNNI) u8s8 kernel (qgemm_kernel_avx2.cpp,
    vpmaddubsw) sums the raw byte products of k = 2j, 2j+1 in saturating int16 over the A bytes
    as uint8 (int8 A biased by +128, its zero point with it), then subtracts the zero-point
    terms exactly: acc = S - za * Σ_k b[k,n] - zb[n] * Σ_k a[m,k] + K * za * zb[n]."""
    a = np.asarray(a)
    b = np.asarray(b)
    zb = np.broadcast_to(np.asarray(b_zero_point, dtype=np.int64).reshape(-1), (b.shape[1],))
    za = int(a_zero_point)
    if not saturate:
        a0 = a.astype(np.int16) - za
        b0 = b.astype(np.int16) - zb.astype(np.int16)[None, :]
        return matmul_exact(a0, b0)
    au = a.astype(np.int16)
    if a.dtype == np.int8:
        au = au + 128
        za = za + 128
    au = au.astype(np.uint8)
    s = matmul_pair_saturated(au, np.ascontiguousarray(b.T.astype(np.int8)))
    k = a.shape[1]
    return (s - za * b.astype(np.int64).sum(axis=0)[None, :] - zb[None, :] * au.astype(np.int64).sum(axis=1)[:, None]
            + k * za * zb[None, :])


def _requant(acc, scale, y_zero_point, dtype, runtime):
    if runtime == "reference":
        return mlas.requantize_reference(acc, scale, int(y_zero_point), dtype)
    return mlas.requantize_output(acc, scale, int(y_zero_point), dtype)


# -- Q / DQ ----------------------------------------------------------------------------------------
def onnx_quantize(x, *, scale, zero_point, dtype, profile=None, trace=None):
    """QuantizeLinear: saturate(round_half_even(x / scale) + zp) (mlas.quantize_linear).
    scale / zero_point are already shaped to broadcast against x (per-axis)."""
    return mlas.quantize_linear(x, scale, zero_point, dtype)


def onnx_dequantize(q, *, scale, zero_point, profile=None, trace=None):
    """DequantizeLinear: float32(q - zp) * scale (mlas.dequantize_linear)."""
    return mlas.dequantize_linear(q, scale, zero_point)


# -- conv / gemm -----------------------------------------------------------------------------------
def conv_accumulate(x, weight, w_zero_point, x_zero_point, strides, pads, dilations, group, channels_last,
                    saturate):
    """QLinearConv's sums without the bias: acc[n, p, o] = Σ_{c, taps} (x - zx) * (w[o] - zw[o]), padding
    reading zx, 1-D and 2-D, as int64 [N, OH, OW, O] (OH = 1 for 1-D), and whether the input was 1-D.
    The im2col K order is ORT's NHWC one (tap outer, channel inner), which is where adjacent products
    pair when `saturate` (MLAS's u8s8 kernels on CPUs without VNNI, gemm_acc)."""
    x = np.asarray(x)
    if channels_last:
        x = np.moveaxis(x, -1, 1)
    one_d = x.ndim == 3
    w = np.asarray(weight)
    if one_d:
        x = x[:, :, None, :]
        w = w[:, :, None, :]
        strides, pads, dilations = [1] + list(strides), [0, pads[0], 0, pads[1]], [1] + list(dilations)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    pt, pl, pb, pr = pads
    xp = np.full((n, c, h + pt + pb, wd + pl + pr), x_zero_point, dtype=x.dtype)
    xp[:, :, pt:pt + h, pl:pl + wd] = x
    patches = im2col_patches(xp, (kh, kw), tuple(strides), (0, 0), tuple(dilations), x_zero_point)
    _, oh, ow = patches.shape[:3]
    og = o // group
    zw = np.broadcast_to(np.asarray(w_zero_point, dtype=np.int64).reshape(-1), (o,))
    acc = np.empty((n * oh * ow, o), dtype=np.int64)
    pad_c = symmetric_channel_pad(saturate, cg, zw, w.dtype)
    for g in range(group):
        cols = np.ascontiguousarray(patches[:, :, :, g * cg:(g + 1) * cg].transpose(0, 1, 2, 4, 5, 3))
        wg = w[g * og:(g + 1) * og].transpose(2, 3, 1, 0)
        if pad_c:
            cols = np.concatenate([cols, np.full(cols.shape[:-1] + (1,), x_zero_point, cols.dtype)], axis=-1)
            wg = np.concatenate([wg, np.zeros(wg.shape[:2] + (1, og), wg.dtype)], axis=2)
        cols = cols.reshape(n * oh * ow, kh * kw * (cg + pad_c))
        wg = wg.reshape(kh * kw * (cg + pad_c), og)
        acc[:, g * og:(g + 1) * og] = gemm_acc(cols, wg, x_zero_point, zw[g * og:(g + 1) * og], saturate)
    return acc.reshape(n, oh, ow, o), one_d


def symmetric_channel_pad(saturate, channels_per_group, w_zero_point, w_dtype) -> int:
    """1 where MLAS's symmetric conv kernels (int8 weights, all zero points 0: qlinearconv.cc
    TryConvSymPrepack, convsym.cpp) pad each tap's odd channel count with one zero channel, so that
    saturating pairs never straddle taps; 0 elsewhere."""
    return int(bool(saturate and channels_per_group % 2 and channels_per_group > 1
                    and not np.any(w_zero_point) and np.dtype(w_dtype) == np.int8))


def _conv_layout(acc, one_d, channels_last):
    """[N, OH, OW, O] -> the op's layout: NCHW / NCL, or channels last."""
    if one_d:
        acc = acc[:, 0]
        return np.ascontiguousarray(acc if channels_last else np.moveaxis(acc, -1, 1))
    return np.ascontiguousarray(acc if channels_last else acc.transpose(0, 3, 1, 2))


def onnx_qlinear_conv(x, *, weight, w_zero_point, bias, scale, x_zero_point, y_zero_point, strides, pads,
                      dilations, group, channels_last=False, dtype, runtime="mlas", profile=None, trace=None):
    """QLinearConv (providers/cpu/quantization/qlinearconv.cc; reference op_qlinear_conv.py), 1-D
    and 2-D:
        acc[n, o, p] = bias[o] + Σ_{c, taps} (x - zx) * (w[o] - zw[o])   (padding reads zx)
        y = requantize(acc, scale[o], zy)       scale = (x_scale * w_scale[o]) / y_scale
    The im2col K order is ORT's NHWC one (tap outer, channel inner), which is where adjacent
    products pair on CPUs whose u8s8 kernel saturates."""
    sat = saturating(profile, str(np.asarray(x).dtype), str(np.asarray(weight).dtype), runtime)
    acc, one_d = conv_accumulate(x, weight, w_zero_point, x_zero_point, strides, pads, dilations, group,
                                 channels_last, sat)
    n, oh, ow, o = acc.shape
    acc = acc.reshape(-1, o)
    if bias is not None:
        acc = acc + np.asarray(bias, dtype=np.int64)[None, :]
    if trace is not None:
        trace.update(accumulator=acc, scale=scale)
    y = _requant(acc, np.asarray(scale, np.float32).reshape(-1), y_zero_point, dtype, runtime)
    return _conv_layout(y.reshape(n, oh, ow, o), one_d, channels_last)


def onnx_conv_acc(x, *, weight, w_zero_point, x_zero_point, strides, pads, dilations, group, channels_last=False,
                  runtime="mlas", profile=None, trace=None):
    """Integer-only QLinearConv, accumulation stage: the sums Σ (x - zx)(w - zw) of onnx_qlinear_conv
    without its bias (the bias is part of the requantize_int that follows), as the runtime forms them
    (MLAS's int16 pair saturation on the CPU classes that have it), int64 in the op's layout."""
    sat = saturating(profile, str(np.asarray(x).dtype), str(np.asarray(weight).dtype), runtime)
    acc, one_d = conv_accumulate(x, weight, w_zero_point, x_zero_point, strides, pads, dilations, group,
                                 channels_last, sat)
    out = _conv_layout(acc, one_d, channels_last)
    if trace is not None:
        trace.update(acc=out)
    return out


def onnx_gemm_acc(a, *, b, b_zero_point, a_zero_point, runtime="mlas", profile=None, trace=None):
    """Integer-only QGemm / QLinearMatMul, accumulation stage: Σ_k (a - za)(b[k, n] - zb[n]) of onnx_qgemm
    without its bias, as the runtime forms it, int64 [..., N]."""
    a = np.asarray(a)
    bb = np.asarray(b)
    acc = gemm_acc(a.reshape(-1, a.shape[-1]), bb, a_zero_point, b_zero_point,
                   saturating(profile, str(a.dtype), str(bb.dtype), runtime))
    out = acc.reshape(a.shape[:-1] + (bb.shape[1],))
    if trace is not None:
        trace.update(acc=out)
    return out


def onnx_qgemm(a, *, b, b_zero_point, bias, scale, a_zero_point, y_zero_point, dtype, runtime="mlas",
               profile=None, trace=None):
    """QGemm (contrib_ops/cpu/quantization/quant_gemm.cc), QLinearMatMul
    (providers/cpu/quantization/quantize_linear_matmul.cc; reference op_qlinear_matmul.py) and a
    fused Gemm/MatMul QDQ group, on a [..., K] x b [K, N]:
        acc = bias + Σ_k (a - za) * (b[k, n] - zb[n])         (int32 bias C added exactly)
        y   = requantize(acc, scale[n], zy)
    QGemm: scale = ((alpha * a_scale) * b_scale[n]) / y_scale; QLinearMatMul: (a_scale * b_scale[n]) / y_scale."""
    a = np.asarray(a)
    lead = a.shape[:-1]
    a2 = a.reshape(-1, a.shape[-1])
    bb = np.asarray(b)
    acc = gemm_acc(a2, bb, a_zero_point, b_zero_point, saturating(profile, str(a.dtype), str(bb.dtype), runtime))
    if bias is not None:
        acc = acc + np.broadcast_to(np.asarray(bias, dtype=np.int64), acc.shape)
    if trace is not None:
        trace.update(accumulator=acc, scale=scale)
    y = _requant(acc, np.asarray(scale, np.float32).reshape(-1), y_zero_point, dtype, runtime)
    return y.reshape(lead + (bb.shape[1],))


def onnx_integer_matmul(a, *, b, b_zero_point, a_zero_point, profile=None, trace=None):
    """MatMulInteger (providers/cpu/quantization/matmul_integer.cc; op_matmul_integer.py):
    int32 Σ_k (a - za)(b - zb[n]), exact in both runtimes (ORT adds no requantization)."""
    a = np.asarray(a)
    acc = gemm_acc(a.reshape(-1, a.shape[-1]), np.asarray(b), a_zero_point, b_zero_point, False)
    return acc.astype(np.int32).reshape(a.shape[:-1] + (np.asarray(b).shape[1],))


# -- elementwise ----------------------------------------------------------------------------------
def onnx_qlinear_add(a, b, *, a_scale, a_zero_point, b_scale, b_zero_point, y_scale, y_zero_point, dtype,
                     runtime="mlas", profile=None, trace=None):
    """QLinearAdd (contrib_ops/cpu/quantization/qlinear_binary_op.cc -> MlasQLinearAdd): the x86
    kernel's fused float formula (mlas.qlinear_add_x86), or arm64's fixed point (mlas.qlinear_add_neon,
    elementwise, so broadcasting does not change it). ORT loops over broadcast spans: a
    broadcast operand that is a single value per span takes the x86 kernel's scalar branch."""
    a = np.asarray(a)
    b = np.asarray(b)
    if profile is not None and cpu_class(profile).mlas_fixed_point:
        a, b = np.broadcast_arrays(a, b)
        return mlas.qlinear_add_neon(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point, dtype)
    if a.size == 1 or b.size == 1:
        return mlas.qlinear_add_x86(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point,
                                    dtype).reshape(np.broadcast_shapes(a.shape, b.shape))
    shape = np.broadcast_shapes(a.shape, b.shape)
    a_b = np.broadcast_to(a, shape)
    b_b = np.broadcast_to(b, shape)
    # a span where one input repeats one value along the innermost axis runs the scalar kernel
    a_scalar = a.shape[-1:] == (1,) and shape[-1] != 1 if a.ndim else True
    b_scalar = b.shape[-1:] == (1,) and shape[-1] != 1 if b.ndim else True
    if not (a_scalar or b_scalar):
        return mlas.qlinear_add_x86(a_b, a_scale, a_zero_point, b_b, b_scale, b_zero_point, y_scale, y_zero_point,
                                    dtype)
    rows_a = a_b.reshape(-1, shape[-1])
    rows_b = b_b.reshape(-1, shape[-1])
    out = np.empty(rows_a.shape, dtype=dtype)
    for i in range(rows_a.shape[0]):
        ra = rows_a[i, :1] if a_scalar else rows_a[i]
        rb = rows_b[i, :1] if b_scalar else rows_b[i]
        out[i] = mlas.qlinear_add_x86(ra, a_scale, a_zero_point, rb, b_scale, b_zero_point, y_scale, y_zero_point,
                                      dtype)
    return out.reshape(shape)


def onnx_qlinear_mul(a, b, *, a_scale, a_zero_point, b_scale, b_zero_point, y_scale, y_zero_point, dtype,
                     runtime="mlas", profile=None, trace=None):
    """QLinearMul (qlinear_binary_op.cc -> MlasQLinearMul): mlas.qlinear_mul, elementwise after broadcasting."""
    a, b = np.broadcast_arrays(np.asarray(a), np.asarray(b))
    return mlas.qlinear_mul(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point, dtype)


def onnx_qlinear_global_average_pool(x, *, x_scale, x_zero_point, y_scale, y_zero_point, channels_last=False,
                                     dtype, runtime="mlas", profile=None, trace=None):
    """QLinearGlobalAveragePool (contrib_ops/cpu/quantization/qlinear_global_average_pool.cc ->
    MlasQLinearGlobalAveragePool): exact int32 sum over the spatial positions, then
    mlas.global_average_pool (x86: float requantization; arm64 NEON: fixed point)."""
    x = np.asarray(x)
    axes = tuple(range(1, x.ndim - 1)) if channels_last else tuple(range(2, x.ndim))
    size = int(np.prod([x.shape[i] for i in axes]))
    sums = x.astype(np.int64).sum(axis=axes, keepdims=True)
    fixed = cpu_class(profile).mlas_fixed_point if profile is not None else False
    return mlas.global_average_pool(sums, size, x_scale, x_zero_point, y_scale, y_zero_point, dtype, fixed)


def onnx_lookup(x, *, table, profile=None, trace=None):
    """QLinearSigmoid / QLinearLeakyRelu (qlinear_lookup_table.cc): y = table[byte of x]."""
    x = np.asarray(x)
    t = np.asarray(table)
    return t[x.view(np.uint8)]


def onnx_max_pool(x, *, kernel_shape, strides, pads, dilations, ceil_mode=False, channels_last=False, profile=None,
                  trace=None):
    """MaxPool on uint8 / int8 (providers/cpu/nn/pool.cc, MaxPool8; NhwcMaxPool): the integer
    maximum over the window taps inside the input (padding never wins); output size
    floor or ceil((L + pads - d*(k-1) - 1) / s) + 1."""
    x = np.asarray(x)
    if channels_last:
        x = np.moveaxis(x, -1, 1)
    nd = x.ndim - 2
    lowest = np.iinfo(x.dtype).min
    pad_width = [(0, 0), (0, 0)] + [(pads[i], pads[i + nd]) for i in range(nd)]
    outs = []
    for i in range(nd):
        L = x.shape[2 + i] + pads[i] + pads[i + nd]
        span = dilations[i] * (kernel_shape[i] - 1) + 1
        num = L - span
        o = (-(-num // strides[i]) if ceil_mode else num // strides[i]) + 1
        if ceil_mode and (o - 1) * strides[i] >= x.shape[2 + i] + pads[i]:
            o -= 1
        outs.append(o)
    extra = [max(0, (outs[i] - 1) * strides[i] + dilations[i] * (kernel_shape[i] - 1) + 1
                 - (x.shape[2 + i] + pads[i] + pads[i + nd])) for i in range(nd)]
    pad_width = [(0, 0), (0, 0)] + [(pads[i], pads[i + nd] + extra[i]) for i in range(nd)]
    xp = np.pad(x, pad_width, constant_values=lowest)
    y = None
    for taps in np.ndindex(*kernel_shape):
        sl = [slice(None), slice(None)]
        for i, t in enumerate(taps):
            start = t * dilations[i]
            sl.append(slice(start, start + (outs[i] - 1) * strides[i] + 1, strides[i]))
        v = xp[tuple(sl)]
        y = v if y is None else np.maximum(y, v)
    return np.ascontiguousarray(np.moveaxis(y, 1, -1) if channels_last else y)


def onnx_qlinear_concat(xs, *, tables, axis, profile=None, trace=None):
    """QLinearConcat (contrib_ops/cpu/quantization/qlinear_concat.cc): each input goes through its
    table (QlinearBuildLookupTable with the identity: requantized onto the output's qparams; an
    input with the output's own qparams is copied, which its identity table does), then Concat."""
    t = np.asarray(tables)
    return np.concatenate([t[i][np.asarray(x).view(np.uint8)] for i, x in enumerate(xs)], axis=axis)


def onnx_constant(*, value, profile=None, trace=None):
    """An initializer the graph reads as a tensor (e.g. a constant QLinearAdd operand)."""
    return np.asarray(value)


def onnx_identity(x, *, profile=None, trace=None):
    return x


def onnx_transpose(x, *, perm, profile=None, trace=None):
    return np.ascontiguousarray(np.transpose(x, perm))


def onnx_reshape(x, *, shape, allowzero=0, profile=None, trace=None):
    """Reshape: 0 copies the input dim (unless allowzero), -1 is inferred."""
    shape = [int(s) for s in shape]
    if not allowzero:
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return np.reshape(x, shape)


def onnx_flatten(x, *, axis=1, profile=None, trace=None):
    axis = axis % max(x.ndim, 1) if axis != x.ndim else axis
    return np.reshape(x, (int(np.prod(x.shape[:axis])), -1))


def onnx_concat(xs, *, axis, profile=None, trace=None):
    return np.concatenate(list(xs), axis=axis)


SPECS = [
    OpSpec("onnx_quantize", "onnx_quantize", integer="quantize",
           summary="QuantizeLinear: float32 divide by the scale, round half to even, add the zero point, saturate",
           formula=("q = clamp(rint(x / scale) + zp, qmin, qmax)",)),
    OpSpec("onnx_dequantize", "onnx_dequantize", integer="dequantize",
           summary="DequantizeLinear: float32(q - zp) * scale", formula=("y = float32(q - zp) * scale",)),
    OpSpec("onnx_qlinear_conv", "onnx_qlinear_conv", integer="onnx_gemm",
           summary="QLinearConv: exact int32 sums, MLAS float32 requantization (or the reference's float64)",
           formula=("acc = bias + Σ (x - zx)(w - zw)", "y = clamp(rint(float32(acc) * scale) + zy)")),
    OpSpec("onnx_qgemm", "onnx_qgemm", integer="onnx_gemm",
           summary="QGemm / QLinearMatMul: exact int32 sums, MLAS float32 requantization",
           formula=("acc = bias + Σ (a - za)(b - zb)", "y = clamp(rint(float32(acc) * scale) + zy)")),
    OpSpec("onnx_conv_acc", "onnx_conv_acc", integer="integer",
           summary="QLinearConv's integer sums without the bias (integer-only programs)",
           formula=("acc = Σ (x - zx)(w - zw)",)),
    OpSpec("onnx_gemm_acc", "onnx_gemm_acc", integer="integer",
           summary="QGemm / QLinearMatMul's integer sums without the bias (integer-only programs)",
           formula=("acc = Σ (a - za)(b - zb)",)),
    OpSpec("onnx_integer_matmul", "onnx_integer_matmul", integer="keep",
           summary="MatMulInteger: exact int32 sums", formula=("y = Σ (a - za)(b - zb)",)),
    OpSpec("onnx_qlinear_add", "onnx_qlinear_add", elementwise=False, integer="onnx_binary",
           summary="QLinearAdd: MLAS AVX2 kernel, two fused multiply-adds in float32",
           formula=("y = sat(rint(fma(a, sA/sC, fma(b, sB/sC, zC - (sA/sC*zA + sB/sC*zB)))))",)),
    OpSpec("onnx_qlinear_mul", "onnx_qlinear_mul", integer="onnx_binary",
           summary="QLinearMul: exact integer product, one float32 multiply and add",
           formula=("y = sat(rint(float32((a - zA)(b - zB)) * (sA*sB/sC) + zC))",)),
    OpSpec("onnx_qlinear_global_average_pool", "onnx_qlinear_global_average_pool", integer="onnx_pool",
           summary="QLinearGlobalAveragePool: exact sum, float32 requantization by sX/(sY*N)",
           formula=("y = sat(rint(float32(Σx - zX*N) * (sX / (sY*N))) + zY)",)),
    OpSpec("onnx_lookup", "onnx_lookup", integer="onnx_lut", summary="QLinearSigmoid / QLinearLeakyRelu: a 256-entry table",
           formula=("y = table[x]",)),
    OpSpec("onnx_max_pool", "onnx_max_pool", integer="onnx_nchw", passes_range=True,
           summary="MaxPool on the integers", formula=("y = max over the window of x",)),
    OpSpec("onnx_qlinear_concat", "onnx_qlinear_concat", integer="onnx_cat",
           summary="QLinearConcat: each input through its 256-entry requantization table, then Concat",
           formula=("y = concat(table_i[x_i])",)),
    OpSpec("onnx_constant", "onnx_constant", integer="keep", summary="a constant tensor of the model"),
    OpSpec("onnx_identity", "onnx_identity", integer="keep", passes_range=True, moves_data=True, summary="Identity"),
    OpSpec("onnx_transpose", "onnx_transpose", integer="keep", passes_range=True, moves_data=True,
           summary="Transpose"),
    OpSpec("onnx_reshape", "onnx_reshape", integer="keep", passes_range=True, moves_data=True, summary="Reshape"),
    OpSpec("onnx_flatten", "onnx_flatten", integer="keep", passes_range=True, moves_data=True, summary="Flatten"),
    OpSpec("onnx_concat", "onnx_concat", integer="onnx_cat", passes_range=True, moves_data=True,
           summary="Concat of tensors that share scale and zero point"),
]
