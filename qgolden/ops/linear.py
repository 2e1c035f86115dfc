"""quantized::linear / linear_relu (static, quint8 activations, qint8 weights).

Engine -> kernel (profile.linear_backend):
    fbgemm  (x86, fbgemm)  PackedLinearWeight::apply_impl -> fbgemmPacked + ReQuantizeOutput
    qnnpack                PackedLinearWeightsQnnp::apply_impl -> q8gemm (SSE2, exact int32)
    onednn                 PackedLinearWeightsOnednn::apply_impl -> oneDNN matmul
"""
from __future__ import annotations

import numpy as np

from ..numerics.accumulate import (_cached_weight, even_odd_pairs, matmul_exact, matmul_pair_saturated,
                                   matmul_pair_saturated_blocked, matmul_weight_exact, onednn_gemm_k_blocks)
from ..cpu import cpu_class
from ..numerics.profile import gemm_saturates, linear_backend
from ..numerics.quantize import dequantize_per_tensor
from ..numerics.requantize import requantize_fbgemm, requantize_onednn, requantize_qnnpack
from .spec import OpSpec


def accumulate_linear(x2, w, x_zero_point, w_zero_point, backend, saturates, isa="avx2"):
    """Integer accumulator [M, N] = Σ_k (x - zx)(w - zw[n]) as `backend` forms it.

    fbgemm: acc = Σ_k x*w (pair-saturated int16 on non-VNNI CPUs)
                  - zx*Σ_k w[n] - zw[n]*Σ_k x[m] + K*zx*zw[n]    (col/row offsets, int32)
    onednn: acc = Σ_k x*w (pair-saturated int16 on non-VNNI CPUs: oneDNN's AVX2 int8
                  jit GEMM (gemm:jit, s8u8s32) also uses vpmaddubsw on the raw u8 src,
                  with K split into blocks by onednn_gemm_k_blocks, each paired from
                  its own start) - zx*Σ_k w[n] (src zero-point compensation, exact).
    qnnpack: exact Σ (x-zx)(w-zw) (SSE2 madd_epi16 on zero-point-subtracted 9-bit values).
    """
    x2 = np.asarray(x2)
    w = np.asarray(w)
    k = x2.shape[-1]
    zx = int(x_zero_point)
    zw = np.broadcast_to(np.asarray(w_zero_point, dtype=np.int64).reshape(-1), (w.shape[0],))
    if backend in ("fbgemm", "onednn"):
        if not saturates:
            acc = matmul_weight_exact(x2, w)
        elif backend == "onednn":
            acc = matmul_pair_saturated_blocked(x2, w, onednn_gemm_k_blocks(k, isa))
        else:
            acc = matmul_pair_saturated(x2, w)
        acc -= zx * _cached_weight(w, "row_sums", lambda: w.astype(np.int64).sum(axis=1))[None, :]
        if np.any(zw != 0):
            acc = acc - x2.astype(np.int64).sum(axis=1)[:, None] * zw[None, :] + k * zx * zw[None, :]
        return acc
    xs = x2.astype(np.int64) - zx
    ws = w.astype(np.int64) - zw[:, None]
    return matmul_exact(xs, ws.T)


def onednn_linear_output_stage(profile, m: int, k: int, n: int) -> str:
    """The output stage (requantize_onednn) of oneDNN's matmul for x [M, K] and weight [N, K] on the
    profile's CPU class (CpuClass.onednn_matmul_kernel, then onednn_output_stage)."""
    cls = cpu_class(profile)
    return cls.onednn_output_stage(cls.onednn_matmul_kernel(int(m), int(k), int(n)))


def linear(x, *, x_scale, x_zero_point, weight, weight_scale, weight_zero_point, bias,
           out_scale, out_zero_point, relu, per_channel=False, profile, trace=None,
           out_quant_min=None, out_quant_max=None, out_dtype=None):
    """y = requant(Σ_k (x-zx)(w-zw)) for x uint8 [..., K], weight int8 [N, K] -> uint8 [..., N].

    weight_scale float64 [N] (or [1] per-tensor), weight_zero_point int64 [N] (or [1]),
    bias float32 [N] or None, scales Python floats. `per_channel` selects the engine's
    per-channel code path (it matters even when all scales are equal).
    """
    backend = linear_backend(profile)
    if backend in ("pt2e_reference", "onednn_inductor", "xnnpack"):  # PT2E runtimes (ops/qdq.py)
        from . import qdq

        return qdq.linear_pt2e(backend, x, x_scale=x_scale, x_zero_point=x_zero_point, weight=weight,
                               weight_scale=weight_scale, weight_zero_point=weight_zero_point, bias=bias,
                               out_scale=out_scale, out_zero_point=out_zero_point, relu=relu,
                               per_channel=per_channel, out_quant_min=out_quant_min,
                               out_quant_max=out_quant_max, out_dtype=out_dtype, profile=profile, trace=trace)
    x = np.asarray(x)
    w = np.asarray(weight)
    if x.ndim < 2:  # PyTorch's quantized linear refuses it too (qlinear.cpp: "larger than or equal to 2")
        raise ValueError(f"the input of a quantized linear needs at least 2 dims, got shape {tuple(x.shape)}")
    if x.shape[-1] != w.shape[-1]:
        raise ValueError(f"the input's last dim is {x.shape[-1]}, the weight takes {w.shape[-1]}")
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    if backend == "onednn" and np.any(np.asarray(weight_zero_point) != 0):
        raise ValueError("onednn linear requires weight zero point 0")
    acc = accumulate_linear(x2, w, x_zero_point, weight_zero_point, backend,
                            backend != "qnnpack" and gemm_saturates(profile), profile["isa"])
    req = {"fbgemm": requantize_fbgemm, "qnnpack": requantize_qnnpack,
           "onednn": requantize_onednn}[backend]
    t = {} if trace is not None else None
    extra = {"kernel": onednn_linear_output_stage(profile, *x2.shape, w.shape[0]), "weight_scales": "reciprocal"} \
        if backend == "onednn" else {}
    out = req(acc, x_scale=x_scale, weight_scale=weight_scale, out_scale=out_scale,
              out_zero_point=out_zero_point, bias=bias, per_channel=per_channel, relu=relu,
              trace=t, **extra)
    out = out.reshape(lead + (w.shape[0],))
    if trace is not None:
        trace["acc"] = acc.reshape(lead + (w.shape[0],))
        trace.update(t)
        trace["out"] = out
        # for explanations only (the numbers above are the computation): the exact sum, and
        # how many u8*s8 pair sums the saturating kernels clipped to int16 per output element
        zw = np.broadcast_to(np.asarray(weight_zero_point, dtype=np.int64).reshape(-1), (w.shape[0],))
        exact = matmul_exact(x2.astype(np.int64) - int(x_zero_point), (w.astype(np.int64) - zw[:, None]).T)
        trace["acc_exact"] = exact.reshape(lead + (w.shape[0],))
        if backend != "qnnpack" and gemm_saturates(profile):
            starts = onednn_gemm_k_blocks(x2.shape[1], profile["isa"]) if backend == "onednn" else [0]
            sat = count_pair_saturations_blocked(x2, w, starts)
        else:
            sat = np.zeros(exact.shape, dtype=np.int64)
        trace["saturated_pairs"] = sat.reshape(lead + (w.shape[0],))
        trace["out_real"] = dequantize_per_tensor(out, out_scale, out_zero_point)
    return out


def count_pair_saturations(xq_u8, wq_s8, *, chunk_elems: int = 1 << 22) -> np.ndarray:
    """[M, N]: how many pairs (2j, 2j+1) of u8*s8 products have a sum outside int16 (what
    vpmaddubsw saturates), for x uint8 [M, K], w int8 [N, K]. Trace-only (explanations)."""
    m, n = np.shape(xq_u8)[0], np.shape(wq_s8)[0]
    out = np.zeros((m, n), dtype=np.int64)
    pairs = even_odd_pairs(xq_u8, wq_s8)
    if pairs is None:
        return out
    x0, x1, w0, w1 = pairs
    mx0, mx1 = x0.max(axis=0), x1.max(axis=0)
    pos = mx0 * np.maximum(w0, 0) + mx1 * np.maximum(w1, 0)
    neg = mx0 * np.maximum(-w0, 0) + mx1 * np.maximum(-w1, 0)
    cand_n, cand_j = np.nonzero((pos > 32767) | (neg > 32768))
    step = max(1, chunk_elems // max(m, 1))
    for s in range(0, cand_n.size, step):
        cn, cj = cand_n[s:s + step], cand_j[s:s + step]
        p = x0[:, cj] * w0[cn, cj] + x1[:, cj] * w1[cn, cj]
        np.add.at(out.T, cn, ((p > 32767) | (p < -32768)).T.astype(np.int64))
    return out


def count_pair_saturations_blocked(xq_u8, wq_s8, block_starts) -> np.ndarray:
    """count_pair_saturations with K split into blocks each paired from its own start."""
    k = np.asarray(xq_u8).shape[1]
    bounds = list(block_starts) + [k]
    out = np.zeros((np.asarray(xq_u8).shape[0], np.asarray(wq_s8).shape[0]), np.int64)
    for b0, b1 in zip(bounds[:-1], bounds[1:]):
        if b1 > b0:
            out += count_pair_saturations(xq_u8[:, b0:b1], wq_s8[:, b0:b1])
    return out


SPECS = [
    OpSpec("linear", "linear", integer="gemm",
           torch=('nnq.Linear', 'nniq.LinearReLU', 'quantized::linear', 'quantized::linear_relu')),
]
