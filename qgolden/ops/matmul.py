"""Quantized matmul of two quantized tensors (quantized::matmul, QFunctional.matmul):
aten/src/ATen/native/quantized/cpu/qmatmul.cpp.

PyTorch's CPU builds leave USE_RUY_QMATMUL off, so `qmatmul` is the same on every engine:

    a = at::dequantize(qa)                 f32(s_a) * f32(qa - z_a)   (fbgemm::Dequantize)
    b = at::dequantize(qb)                 f32(s_b) * f32(qb - z_b)
    c = at::matmul(a, b)                   float32 GEMM over the last two dims, batch dims broadcast
    y = at::quantize_per_tensor(c, s_y, z_y, qa.dtype)

The float GEMM is the BLAS sgemm (at::native::cpublas::gemm); per output it is one FMA chain over k in
order, starting at 0.0, on the classes where CpuClass.float_gemm_is_fma_chain holds for the shape:
    c[i, j] = fma(a[i, K-1], b[K-1, j], ... fma(a[i, 1], b[1, j], f32(a[i, 0] * b[0, j])))
Other shapes and classes sum in orders qgolden does not know: it refuses them.
"""
from __future__ import annotations

import numpy as np

from ..cpu import cpu_class
from ..errors import UserError
from ..numerics import quantize as Q
from ..numerics.floatops import fma32
from .spec import OpSpec


class UnsupportedMatmul(UserError):
    """A float GEMM shape whose summation order on the profile's CPU class is not known."""


def fma_chain_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float32 a [..., M, K] @ b [..., K, N] (batch dims broadcast), each output one in-order FMA
    chain over k starting at 0.0 (numerics.floatops.fma32: one rounding per step)."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
    acc = np.zeros(shape, dtype=np.float32)
    for k in range(a.shape[-1]):
        acc = fma32(a[..., :, k:k + 1], b[..., k:k + 1, :], acc)
    return acc


def matmul(a, b, *, a_scale, a_zero_point, b_scale, b_zero_point, out_scale, out_zero_point, dtype="uint8",
           profile=None, trace=None) -> np.ndarray:
    """quantized::matmul(qa, qb, s_y, z_y): dequantize both, float GEMM, quantize_per_tensor."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.ndim < 2 or b.ndim < 2:
        raise UnsupportedMatmul("quantized matmul of a 1-D operand is not supported")
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    cls = cpu_class(profile)
    if not cls.float_gemm_is_fma_chain(m, k, n):
        raise UnsupportedMatmul(
            f"quantized matmul [{m}, {k}] x [{k}, {n}] on CPU class {cls.tag}: the order in which "
            f"PyTorch's float GEMM sums this shape there is not known to qgolden (known: M, N >= 2 and "
            f"K <= {cls.float_gemm_fma_k})")
    fa = Q.dequantize_per_tensor(a, a_scale, a_zero_point)
    fb = Q.dequantize_per_tensor(b, b_scale, b_zero_point)
    fc = fma_chain_matmul(fa, fb)
    out = Q.quantize_per_tensor(fc, out_scale, out_zero_point, dtype)
    if trace is not None:
        trace.update(a_dequantized=fa, b_dequantized=fb, float_matmul=fc, out=out)
    return out


SPECS = [
    OpSpec("matmul", "matmul", integer="float",
           summary="matrix product of two quantized tensors (dequantize both, float32 GEMM, quantize)",
           formula=("a = f32(s_a) · f32(a_q − z_a);  b = f32(s_b) · f32(b_q − z_b)",
                    "c[i, j] = fma chain over k = 0..K−1 of a[i, k] · b[k, j]   (float32, in order)",
                    "y_q = clamp(rne(f32(c · f32(1/s_y) + z_y)))"),
           torch=("quantized::matmul", "QFunctional.matmul")),
]
