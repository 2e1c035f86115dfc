"""A small linear that torch.compile turns into plain float32 C++ instead of a GEMM call.

Inductor's CPU decompositions (torch/_inductor/decomposition.py) rewrite these matrix products
before any quantization pattern can match them, so a dq -> linear of this shape never reaches
onednn::qlinear_pointwise; the dequantize, the products, the sum and the bias are all fused
into Inductor's own kernel:

    addmm(bias, x[M, K], w.T)  with M == 1 and (N == 1, or K <= 16 and N <= 16):
        sum(x.T * w.T, dim=0) * 1 + 1 * bias            (alpha * out + beta * self)
    mm(x[M, K], w.T)           with M == 1 and N == 1:  sum(x * w)
                               with K == 1, M != 1, N != 1 and M*K + K*N <= 32:  x * w

Each product is one float32 multiply of the dequantized values (no FMA: Inductor compiles with
-ffp-contract=off). The sum over K is an Inductor "sum" Reduction (ir.py Reduction.create):
    K == 1                                   the product itself (a pointwise op)
    K < 8 (config.unroll_reductions_threshold) and more than one output:
                                             unrolled, p0 + p1 + ... in order
    otherwise                                a loop over K in float32 vector lanes (K is the
                                             contiguous dim of x and of the frozen [N, K] weight):
                                             numerics/floatsum.inductor_lane_sum
                                             -- except the tail: per-channel weight scales and zero
                                             points of 2..8 entries are inlined as selects on the output
                                             index (graph.py can_inline_constant, lowering.py tensor),
                                             which the masked tail vector cannot take, so the last
                                             K % lanes products run as a scalar loop: t = 0; t += p_k;
                                             sum = f32(t + vec_reduce_all(lanes of the full vectors))
then y = f32(sum + bias) (the * 1 is exact).
"""
from __future__ import annotations

import numpy as np

from ..cpu import cpu_class, detect
from ..numerics.floatsum import inductor_lane_sum, inductor_sum_is_serial, vec_reduce_all
from .spec import OpSpec

UNROLL_BELOW = 8            # torch._inductor.config.unroll_reductions_threshold (Reduction.create: numel < 8)
ADDMM_SMALL = 16            # decomposition.py addmm: mat2.size(0) <= 16 and mat2.size(1) <= 16
MM_OUTER_PRODUCT_NUMEL = 32  # decomposition.py mm: numel(self) + numel(input2) <= 32


def inductor_decomposed_linear(m: int, k: int, n: int, has_bias: bool) -> str | None:
    """How Inductor's CPU decomposition computes linear(x[m, k], w[n, k]) (+ bias): 'sum' (products
    summed over K), 'product' (K == 1 outer product) or None (not decomposed: a GEMM kernel)."""
    if has_bias:
        if m == 1 and (n == 1 or (k <= ADDMM_SMALL and n <= ADDMM_SMALL)):
            return "sum"
        return None
    if m == 1 and n == 1:
        return "sum"
    if k == 1 and m != 1 and n != 1 and m * k + k * n <= MM_OUTER_PRODUCT_NUMEL:
        return "product"
    return None


INLINE_MAX = 8  # graph.py can_inline_constant: 1-D constants of at most 8 entries


def decomposed_linear_sum_order(k: int, outputs: int, n: int, per_channel: bool) -> str:
    """'product' (K == 1), 'unrolled' (K < 8, more than one output), 'lanes_scalar_tail' (vector lanes,
    the tail a scalar loop: the per-channel scales are inlined selects, 2 <= N <= 8) or 'lanes'."""
    if k == 1:
        return "product"
    if k < UNROLL_BELOW and outputs != 1:
        return "unrolled"
    if per_channel and 2 <= n <= INLINE_MAX:
        return "lanes_scalar_tail"
    return "lanes"


def decomposed_linear_serial(order: str, k: int, n: int, lanes: int, threads: int) -> bool:
    """Whether the loop sums each output in one thread (inductor_sum_is_serial: N outputs, K / lanes
    vector steps each)."""
    if order in ("product", "unrolled"):
        return True
    return inductor_sum_is_serial(n, k // lanes, k, n * k, threads)


def float_linear_inductor(x, *, weight, bias=None, sum_order="lanes", profile=None, trace=None):
    """linear of float32 x [M, K] and the dequantized weight [N, K] as Inductor's decomposed kernel
    computes it (module docstring; sum_order from decomposed_linear_sum_order). Returns [M, N] float32."""
    x = np.asarray(x, dtype=np.float32)
    w = np.asarray(weight, dtype=np.float32)
    prods = np.multiply(x[..., None, :], w, dtype=np.float32)  # [M, N, K], each product rounded
    k = w.shape[1]
    order = sum_order
    if order == "product":
        total = prods[..., 0]
    elif order == "unrolled":
        total = prods[..., 0]
        for i in range(1, k):
            total = np.add(total, prods[..., i], dtype=np.float32)
    elif order == "lanes_scalar_tail":
        lanes = cpu_class(profile or detect()).inductor_lanes
        full = k // lanes * lanes
        tail = np.zeros(prods.shape[:-1], np.float32)
        for i in range(full, k):
            tail = np.add(tail, prods[..., i], dtype=np.float32)
        vec = np.zeros(prods.shape[:-1] + (lanes,), np.float32)
        for i in range(0, full, lanes):
            vec = np.add(vec, prods[..., i:i + lanes], dtype=np.float32)
        total = np.add(tail, vec_reduce_all(vec), dtype=np.float32)
    else:
        total = inductor_lane_sum(prods, cpu_class(profile or detect()).inductor_lanes)
    y = total if bias is None else np.add(total, np.asarray(bias, np.float32), dtype=np.float32)
    if trace is not None:
        trace.update(products=prods, sum=total, out=y, order=order)
    return y


SPECS = [
    OpSpec("float_linear_inductor", "float_linear_inductor", integer="float",
           summary="a small linear compiled by Inductor into float32 C++ (products, a float32 sum, + bias)",
           formula=("y[n] = f32(Σ_k f32(x[k]·w[n,k]) in Inductor's order) + bias[n]",),
           torch=("aten.linear (x86-inductor, batch 1, small)",)),
]
