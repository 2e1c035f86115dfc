"""quantized::linear / linear_relu (static, quint8 activations, qint8 weights).

Engine -> kernel (profile.linear_backend):
    fbgemm  (x86, fbgemm)  PackedLinearWeight::apply_impl -> fbgemmPacked + ReQuantizeOutput
    qnnpack                PackedLinearWeightsQnnp::apply_impl -> q8gemm (SSE2, exact int32)
    onednn                 PackedLinearWeightsOnednn::apply_impl -> oneDNN matmul
"""
from __future__ import annotations

import numpy as np

from ..numerics.accumulate import (matmul_exact, matmul_pair_saturated,
                                   matmul_pair_saturated_blocked, onednn_gemm_k_blocks)
from ..numerics.profile import gemm_saturates, linear_backend
from ..numerics.requantize import requantize_fbgemm, requantize_onednn, requantize_qnnpack


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
            acc = matmul_exact(x2, w.T)
        elif backend == "onednn":
            acc = matmul_pair_saturated_blocked(x2, w, onednn_gemm_k_blocks(k, isa))
        else:
            acc = matmul_pair_saturated(x2, w)
        acc = acc - zx * w.astype(np.int64).sum(axis=1)[None, :]
        if np.any(zw != 0):
            acc = acc - x2.astype(np.int64).sum(axis=1)[:, None] * zw[None, :] + k * zx * zw[None, :]
        return acc
    xs = x2.astype(np.int64) - zx
    ws = w.astype(np.int64) - zw[:, None]
    return matmul_exact(xs, ws.T)


def linear(x, *, x_scale, x_zero_point, weight, weight_scale, weight_zero_point, bias,
           out_scale, out_zero_point, relu, per_channel=False, profile, trace=None):
    """y = requant(Σ_k (x-zx)(w-zw)) for x uint8 [..., K], weight int8 [N, K] -> uint8 [..., N].

    weight_scale float64 [N] (or [1] per-tensor), weight_zero_point int64 [N] (or [1]),
    bias float32 [N] or None, scales Python floats. `per_channel` selects the engine's
    per-channel code path (it matters even when all scales are equal).
    """
    backend = linear_backend(profile)
    x = np.asarray(x)
    w = np.asarray(weight)
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    if backend == "onednn" and np.any(np.asarray(weight_zero_point) != 0):
        raise ValueError("onednn linear requires weight zero point 0")
    acc = accumulate_linear(x2, w, x_zero_point, weight_zero_point, backend,
                            backend != "qnnpack" and gemm_saturates(profile), profile["isa"])
    req = {"fbgemm": requantize_fbgemm, "qnnpack": requantize_qnnpack,
           "onednn": requantize_onednn}[backend]
    t = {} if trace is not None else None
    out = req(acc, x_scale=x_scale, weight_scale=weight_scale, out_scale=out_scale,
              out_zero_point=out_zero_point, bias=bias, per_channel=per_channel, relu=relu,
              trace=t)
    out = out.reshape(lead + (w.shape[0],))
    if trace is not None:
        trace["acc"] = acc.reshape(lead + (w.shape[0],))
        trace.update(t)
        trace["out"] = out
    return out
