"""Quantized embeddings (weight-only, float32 out): nnq.Embedding / nnq.EmbeddingBag and the ops
quantized::embedding_byte, embedding_4bit, embedding_bag_byte(_rowwise_offsets), embedding_bag_4bit(_rowwise_offsets).

The table is quantized row by row (per_channel_affine_float_qparams): 8-bit codes (quint8) or 4-bit codes
(quint4x2, two per byte, low nibble first). PyTorch's prepack (aten/src/ATen/native/quantized/cpu/
qembeddingbag_prepack.cpp PackedEmbeddingBagWeight::prepack) stores beside each row
    scale[r] = f32 scale,   bias[r] = -f32(zero_point[r] * scale[r])
as float32 (8-bit) or rounded to float16 (4-bit: at::Half(float), round to nearest even).

Kernels (aten/src/ATen/native/quantized/cpu/qembeddingbag.cpp embedding_bag_byte_impl / embedding_bag_nbit_impl):
    x86 (USE_FBGEMM)  FBGEMM GenerateEmbeddingSpMDM / GenerateEmbeddingSpMDMNBit: the JIT-ed AVX2 / AVX-512
                      kernels (src/EmbeddingSpMDM.cc: vaddps out, bias; vfmadd231ps out, q, scale) and the
                      reference (src/RefImplementations.cc EmbeddingSpMDM_ref: std::fma) compute, per index of a
                      bag in order, out = fma(scale·w, q, out + bias·w), from out = 0; per element, so the
                      vector width does not change the result.
    arm64 (no FBGEMM) 4-bit, and 8-bit with per_sample_weights: embedding_lookup_fallback_impl, the same
                      fma formula. 8-bit without weights: embedding_lookup_byte_neon_impl, which takes the
                      bag's indices in groups of 16, 8, 4, 2, 1 (greedy), sums the group's biases first
                      (float adds in order from 0), adds that sum to out, then out += q·scale per index with
                      vmlaq_f32 / scalar `+=` (contracted into one FMA where the build contracts: CpuClass
                      baseline_fma). CpuClass.embedding_byte_neon says which.

PyTorch's quantized embedding bag ignores `mode`: nnq.EmbeddingBag passes mode 0 whatever it was built with,
and the ops take the argument but never read it, so every mode sums (measured: mode 1 and 2 give the sum).
qgolden reproduces that, keeps the mode for explain, and says so there.
"""
from __future__ import annotations

import numpy as np

from ..numerics.floatops import f32, fma32
from .spec import OpSpec


def row_scale_bias(scales, zero_points, bits):
    """The per-row (scale, bias) PyTorch's prepack stores: bias = -f32(zp * scale) (float32 product);
    for 4-bit both rounded to float16 (at::Half(float): round to nearest even)."""
    s = np.asarray(scales, dtype=np.float32)
    b = -f32(np.asarray(zero_points, dtype=np.float32).astype(np.float64) * s.astype(np.float64))
    if bits == 4:
        return s.astype(np.float16), b.astype(np.float16)
    return s, b


def bag_bounds(indices, bag_inputs, has_offsets, include_last_offset):
    """(flat indices, start and end of each bag, output shape prefix) as PyTorch forms them:
    2-D indices [B, L] are B bags of L (offsets must be absent); 1-D indices with offsets
    [M] are M bags (the last ends at len(indices)), or M - 1 with include_last_offset."""
    idx = np.asarray(indices).astype(np.int64)
    if idx.ndim == 2:
        if has_offsets:
            raise ValueError("2-D indices take no offsets (each row is a bag)")
        n, length = idx.shape
        starts = np.arange(n, dtype=np.int64) * length
        return idx.reshape(-1), starts, starts + length
    if idx.ndim != 1:
        raise ValueError(f"indices must be 1-D or 2-D, got {idx.ndim}-D")
    if not has_offsets:
        raise ValueError("1-D indices need offsets")
    off = np.asarray(bag_inputs[0]).astype(np.int64).reshape(-1)
    bounds = off if include_last_offset else np.concatenate([off, [idx.size]])
    if bounds.size == 0:
        raise ValueError("include_last_offset needs at least one offset")
    if np.any(np.diff(bounds) < 0) or (bounds.size and (bounds[0] < 0 or bounds[-1] > idx.size)):
        raise ValueError("offsets must be non-decreasing and within the indices")
    return idx, bounds[:-1], bounds[1:]


def fbgemm_bag_sum(q, scale, bias, idx, starts, ends, weights, running=None):
    """FBGEMM EmbeddingSpMDM (8-bit and N-bit, reference and JIT alike), per bag from out = 0:
        for each index i of the bag, in order:  s = f32(scale[r]·w_i), b = f32(bias[r]·w_i)  (w_i = 1: s, b)
                                                out = fma(s, q[r], f32(out + b))
    Bags are independent: evaluated together, position by position."""
    m, d = starts.size, q.shape[1]
    out = np.zeros((m, d), dtype=np.float32)
    lengths = ends - starts
    for k in range(int(lengths.max()) if m else 0):
        bags = np.nonzero(lengths > k)[0]
        pos = starts[bags] + k
        rows = idx[pos]
        s = scale[rows].astype(np.float32)
        b = bias[rows].astype(np.float32)
        if weights is not None:
            s = f32(s.astype(np.float64) * weights[pos].astype(np.float64))
            b = f32(b.astype(np.float64) * weights[pos].astype(np.float64))
        t = f32(out[bags].astype(np.float64) + b[:, None].astype(np.float64))
        out[bags] = fma32(np.broadcast_to(s[:, None], t.shape), q[rows].astype(np.float32), t)
        if running is not None:
            running[pos] = out[bags]
    return out


def neon_byte_bag_sum(q, scale, bias, idx, starts, ends, contract, running=None):
    """PyTorch's aarch64 8-bit kernel without weights (qembeddingbag.cpp embedding_lookup_byte_neon_impl),
    per bag from out = 0, over groups of 16, 8, 4, 2, 1 consecutive indices (greedy):
        bsum = ((0 + bias[r0]) + bias[r1]) + ...       (float32 adds)
        out  = f32(out + bsum)
        out  = fma(q[r_j], scale[r_j], out) for each index j of the group in order
               (f32(out + f32(q·scale)) where the build does not contract)"""
    m, d = starts.size, q.shape[1]
    out = np.zeros((m, d), dtype=np.float32)
    for bag in range(m):
        acc = np.zeros(d, dtype=np.float32)
        i, end = int(starts[bag]), int(ends[bag])
        while i < end:
            group = next(g for g in (16, 8, 4, 2, 1) if i + g <= end)
            rows = idx[i:i + group]
            bsum = np.float32(0)
            for r in rows:
                bsum = np.float32(bsum + bias[r])
            acc = f32(acc.astype(np.float64) + np.float64(bsum))
            for k, r in enumerate(rows):
                qs = q[r].astype(np.float32)
                if contract:
                    acc = fma32(qs, np.full(d, scale[r], np.float32), acc)
                else:
                    acc = f32(acc.astype(np.float64) + f32(qs.astype(np.float64) * np.float64(scale[r])))
                if running is not None:
                    running[i + k] = acc
            i += group
        out[bag] = acc
    return out


def embedding_bag(indices, *bag_inputs, codes, scale_bias, bits=8, has_offsets=False, weighted=False,
                  include_last_offset=False, mode="sum", lookup=False, profile, trace=None):
    """Quantized embedding lookup / bag sum: indices int [L] (with offsets [M]) or [B, L]; codes uint8 [N, D]
    (one code per element, 0..255 or 0..15), scale_bias [N, 2]: each row's scale and bias (float32, float16 for
    4-bit; PyTorch keeps them at the end of each packed row, a scale of 0 included);
    per_sample_weights float32 like indices when weighted -> float32 [bags, D] ([..., D] per index for a lookup).

        out[bag] = Σ over the bag's indices r, in order, of (scale[r]·w)·q[r] + bias[r]·w
    with the runtime's float32 roundings (fbgemm_bag_sum; arm64: neon_byte_bag_sum)."""
    from ..cpu import cpu_class

    q = np.asarray(codes)
    n = q.shape[0]
    if lookup:
        idx = np.asarray(indices).astype(np.int64)
        flat = idx.reshape(-1)
        starts = np.arange(flat.size, dtype=np.int64)
        ends = starts + 1
        lead = idx.shape
    else:
        flat, starts, ends = bag_bounds(indices, bag_inputs, has_offsets, include_last_offset)
        lead = (starts.size,)
    if flat.size and (flat.min() < 0 or flat.max() >= n):
        bad = flat[(flat < 0) | (flat >= n)][0]
        raise IndexError(f"index {bad} is out of the table's {n} rows")
    weights = None
    if weighted:
        weights = np.asarray(bag_inputs[-1], dtype=np.float32).reshape(-1)
        if weights.size != flat.size:
            raise ValueError(f"per_sample_weights has {weights.size} values for {flat.size} indices")
    sb = np.asarray(scale_bias)
    if sb.shape != (n, 2):
        raise ValueError(f"scale_bias has shape {sb.shape} for a table of {n} rows")
    scale, bias = sb[:, 0], sb[:, 1]
    neon = bits == 8 and weights is None and cpu_class(profile).embedding_byte_neon
    # the bag's running sum after each index (explain shows the reduction step by step)
    running = np.zeros((flat.size, q.shape[1]), np.float32) if trace is not None else None
    if neon:
        out = neon_byte_bag_sum(q, scale.astype(np.float32), bias.astype(np.float32), flat, starts, ends,
                                cpu_class(profile).baseline_fma, running)
    else:
        out = fbgemm_bag_sum(q, scale, bias, flat, starts, ends, weights, running)
    out = out.reshape(tuple(lead) + (q.shape[1],))
    if trace is not None:
        trace.update(rows=flat, bag_start=starts, bag_end=ends, row_scale=scale.astype(np.float32),
                     row_bias=bias.astype(np.float32), running=running, out=out,
                     kernel=("ATen's aarch64 NEON kernel: biases of up to 16 indices summed first" if neon
                             else "FBGEMM EmbeddingSpMDM: one fma per index, its bias added first"))
        if weights is not None:
            trace["per_sample_weights"] = weights
    return out


SPECS = [
    OpSpec("embedding_bag", "embedding_bag", integer="float",
           summary="quantized embedding (weight-only, rowwise 8- or 4-bit table): looks up rows and sums each "
                   "bag in float32; PyTorch's quantized kernels ignore mode, so mean and max bags are sums too "
                   "(float output: no integer-only form)",
           formula=("row r of the table: q[r, :] (codes), scale[r], bias[r] = −zero_point[r]·scale[r] "
                    "(float32; float16 for 4-bit)",
                    "lookup: out[i] = scale[r]·q[r] + bias[r] for r = indices[i]",
                    "bag: out = 0; for each index r of the bag in order: out = fma(scale[r]·w, q[r], out + bias[r]·w) "
                    "(w: per_sample_weights, else 1)"),
           torch=("nnq.Embedding", "nnq.EmbeddingBag", "quantized::embedding_byte", "quantized::embedding_4bit",
                  "quantized::embedding_bag_byte", "quantized::embedding_bag_4bit",
                  "quantized::embedding_bag_byte_rowwise_offsets", "quantized::embedding_bag_4bit_rowwise_offsets")),
]
