"""quantized::linear_dynamic / linear_relu_dynamic (torch.ao.quantization.quantize_dynamic's nnqd.Linear):
float32 in, float32 out, the activation quantized to quint8 on every call with a scale and zero point
chosen from that call's min and max (numerics/dynamic_quant.py).

Engine -> kernel (aten/src/ATen/native/quantized/cpu/qlinear_dynamic.cpp):
    fbgemm  (x86, fbgemm)  PackedLinearWeight::apply_dynamic_impl: FindMinMax, ChooseQuantizationParams
                           (reduce_range as passed: nnqd.Linear passes True), PackAWithQuantRowOffset
                           (fbgemm::Quantize, the torch.quantize_per_tensor formula), fbgemmPacked,
                           ReQuantizeForFloat (FBGEMM src/QuantUtilsAvx2.cc requantizeForFloatAvx2)
    qnnpack                PackedLinearWeightsQnnp::apply_dynamic_impl: reduce_range ignored (0..255),
                           at::quantize_per_tensor, q8gemm_dq (q8gemm/4x4c2-dq-sse2.c,
                           8x8-dq-aarch64-neon.S: multiply, then add the float bias)
    onednn                 PackedLinearWeightsOnednn::apply_dynamic_impl: ideep quantizes the f32 source
                           itself (a oneDNN reorder with the reciprocal scales PyTorch hands it), then
                           oneDNN's u8s8 matmul with a float32 output
"""
from __future__ import annotations

import numpy as np

from ..numerics.dynamic_quant import choice_text, choose_qparams
from ..numerics.floatops import f32, fma32
from ..numerics.profile import gemm_saturates, linear_backend
from ..numerics.quantize import quantize_per_tensor
from ..numerics.requantize import onednn_v3_scales
from .linear import accumulate_linear, onednn_linear_output_stage
from .spec import OpSpec


def fbgemm_float_output(acc, x_scale, weight_scale, bias, relu):
    """FBGEMM requantizeForFloatAvx2 (per tensor and OUT_CHANNEL), compiled with FMA:

        m[n] = f32(f32(sx) * f32(sw[n]))
        y    = fma32(f32(acc), m[n], bias[n])       (no bias: f32(f32(acc) * m[n]))
        relu: y = maxps(0, y) = 0 where y < 0       (maxps returns its second operand on ±0 and NaN)
    Measured: the unfused f32(f32(acc*m) + bias) differs in about a quarter of the outputs."""
    fa = f32(np.asarray(acc, dtype=np.float64))
    m = f32(np.float64(np.float32(x_scale)) * f32(weight_scale).astype(np.float64))
    if bias is None:
        y = f32(fa.astype(np.float64) * np.broadcast_to(m, fa.shape[-1:]).astype(np.float64))
    else:
        y = fma32(fa, np.broadcast_to(m, fa.shape), np.broadcast_to(np.asarray(bias, np.float32), fa.shape))
    return (np.where(y < 0, np.float32(0), y) if relu else y), m


def qnnpack_float_output(acc, x_scale, weight_scale, bias, relu):
    """PyTorch-QNNPACK q8gemm_dq (4x4c2-dq-sse2.c: _mm_mul_ps then _mm_add_ps; 8x8-dq-aarch64-neon.S:
    FMUL then FADD), with generate_requantization_scales(w_scales, sx, 1.f) (QnnpackUtils.h):

        m[n] = f32(f32(sw[n]) * f32(sx))           (divided by the output scale 1: exact)
        y    = f32(f32(f32(acc) * m[n]) + bias[n]) (the packed bias is zeros when the model has none)
        relu: output.relu_() afterwards: 0 where y < 0"""
    fa = f32(np.asarray(acc, dtype=np.float64)).astype(np.float64)
    m = f32(f32(weight_scale).astype(np.float64) * np.float64(np.float32(x_scale)))
    b = np.zeros(fa.shape[-1:], np.float32) if bias is None else np.asarray(bias, np.float32)
    y = f32(f32(fa * m.astype(np.float64)).astype(np.float64) + b.astype(np.float64))
    return (np.where(y < 0, np.float32(0), y) if relu else y), m


def onednn_quantize_source(x, x_scale, zero_point):
    """ideep's reorder of the f32 source to u8 (matmul_forward with is_dynamic): PyTorch hands ideep
    src_scales = f32(1/scale); oneDNN gets src = f32(1/that) (onednn_v3_scales) and the reorder
    multiplies by its float reciprocal, then adds the zero point, rounds half to even, saturates:

        q = clamp(rne(f32(f32(x * f32(1/src)) + zp)), 0, 255)
    Measured against the onednn engine with inputs on exact rounding ties (the torch.quantize_per_tensor
    formula differs in most tie cases)."""
    src, _, _ = onednn_v3_scales(x_scale, np.ones(1), 1.0, 1)
    inv = np.float32(1.0) / src
    t = f32(f32(np.asarray(x, np.float64) * np.float64(inv)).astype(np.float64) + float(zero_point))
    with np.errstate(invalid="ignore"):
        return np.clip(np.rint(np.nan_to_num(t, nan=0.0)), 0, 255).astype(np.uint8)


def onednn_float_output(acc, x_scale, weight_scale, bias, relu, stage):
    """oneDNN u8s8 matmul with a float32 destination (no dst scale), scales from onednn_v3_scales
    with the weight scales as PyTorch's linear prepack stores them (reciprocals, inverted back):

        combined   (AMX brgemm, AVX2 gemm)   y = f32(f32(f32(acc) * f32(src * wei[n])) + bias[n])
        sequential (VNNI / AVX-512 brgemm)   y = f32(f32(f32(f32(acc) * src) * wei[n]) + bias[n])
        relu (eltwise post-op, alpha 0: vmaxps(y, 0)): 0 where not y > 0
    stage from CpuClass.onednn_matmul_kernel / onednn_output_stage, as for the static linear."""
    fa = f32(np.asarray(acc, dtype=np.float64)).astype(np.float64)
    n = fa.shape[-1]
    src, wei, _ = onednn_v3_scales(x_scale, weight_scale, 1.0, n, "reciprocal")
    if stage == "combined":
        m = f32(np.float64(src) * wei.astype(np.float64))
        y = f32(fa * m.astype(np.float64))
    else:
        m = wei
        y = f32(f32(fa * np.float64(src)).astype(np.float64) * wei.astype(np.float64))
    if bias is not None:
        y = f32(y.astype(np.float64) + np.asarray(bias, np.float32).astype(np.float64))
    return (np.where(y > 0, y, np.float32(0)) if relu else y), m


def dynamic_linear(x, *, weight, weight_scale, weight_zero_point, bias, per_channel=False, relu=False,
                   reduce_range=True, profile, trace=None):
    """y = float(x) @ W^T + b as quantize_dynamic's Linear computes it: x float32 [..., K],
    weight int8 [N, K], weight_scale float64 [N] (or [1]), bias float32 [N] or None -> float32 [..., N].

    The scale and zero point of x are chosen from this x's min and max (over the whole tensor) on
    every call: choose_qparams, with qmin..qmax = 0..127 when reduce_range (fbgemm and onednn; the
    qnnpack kernel ignores it and uses 0..255)."""
    backend = linear_backend(profile)
    if backend not in ("fbgemm", "qnnpack", "onednn"):
        raise NotImplementedError(f"dynamic quantized linear under the {profile['engine']} runtime")
    x = np.asarray(x, dtype=np.float32)
    w = np.asarray(weight)
    if x.ndim < 2:
        raise ValueError(f"the input of a dynamic quantized linear needs at least 2 dims, got shape {x.shape}")
    if x.shape[-1] != w.shape[-1]:
        raise ValueError(f"the input's last dim is {x.shape[-1]}, the weight takes {w.shape[-1]}")
    lead = x.shape[:-1]
    n = w.shape[0]
    x2 = x.reshape(-1, x.shape[-1])
    reduce = bool(reduce_range) and backend != "qnnpack"
    # FindMinMax (fbgemm, onednn) and Tensor::min/max (qnnpack) agree on finite inputs; empty: 0, 0
    x_min = np.float32(x2.min()) if x2.size else np.float32(0)
    x_max = np.float32(x2.max()) if x2.size else np.float32(0)
    scale, zp = choose_qparams(x_min, x_max, 0, 255, reduce)
    sw = np.broadcast_to(np.asarray(weight_scale, dtype=np.float64).reshape(-1), (n,)) if per_channel \
        else np.asarray(weight_scale, dtype=np.float64).reshape(-1)[:1]
    if backend == "onednn":
        if np.any(np.asarray(weight_zero_point) != 0):
            raise ValueError("onednn linear requires weight zero point 0")
        xq = onednn_quantize_source(x2, scale, zp)
    else:
        xq = quantize_per_tensor(x2, scale, zp, "uint8")
    acc = accumulate_linear(xq, w, zp, weight_zero_point, backend,
                            backend != "qnnpack" and gemm_saturates(profile), profile["isa"])
    swn = np.broadcast_to(sw, (n,)) if sw.size == 1 else sw
    stage = None
    if backend == "fbgemm":
        y, m = fbgemm_float_output(acc, scale, swn, bias, relu)
    elif backend == "qnnpack":
        y, m = qnnpack_float_output(acc, scale, swn, bias, relu)
    else:
        stage = onednn_linear_output_stage(profile, x2.shape[0], x2.shape[1], n)
        y, m = onednn_float_output(acc, scale, sw, bias, relu, stage)
    y = y.reshape(lead + (n,))
    if trace is not None:
        trace.update(x_min=float(x_min), x_max=float(x_max), x_scale=scale, x_zero_point=zp,
                     scale_choice=choice_text(x_min, x_max, 0, 255, reduce, scale, zp),
                     x_q=xq.reshape(lead + (x.shape[-1],)), acc=acc.reshape(lead + (n,)),
                     multiplier=np.asarray(m), out=y)
        if stage is not None:
            trace["output_stage"] = stage
    return y


SPECS = [
    OpSpec("dynamic_linear", "dynamic_linear", integer="float",
           summary="dynamic quantized linear (quantize_dynamic): float in and out; the input's scale and zero "
                   "point are chosen from its own min and max on every call (float output: no integer-only form)",
           formula=("min, max = min(min(x), 0), max(max(x), 0);  s_x = (max − min)/(qmax − qmin), qmax − qmin = "
                    "127 with reduce_range (fbgemm, onednn), 255 on qnnpack",
                    "z_x = nearbyint(qmin − min/s_x) or nearbyint(qmax − max/s_x), whichever end is nearer",
                    "x_q = quantize(x, s_x, z_x);  acc[n] = Σ_k (x_q[k] − z_x)·w_q[n,k]",
                    "fbgemm: y = fma(f32(acc), f32(s_x·s_w[n]), bias[n]);  qnnpack: y = f32(f32(acc)·f32(s_w[n]·s_x)) "
                    "+ bias[n];  onednn: its matmul's float output stage"),
           torch=("quantized::linear_dynamic", "quantized::linear_relu_dynamic", "nnqd.Linear"),
           float_why="dynamic quantization chooses the input's scale from its min and max at run time and "
                     "returns float32 (docs/integer-only.md, 'Dynamic quantization')"),
]
