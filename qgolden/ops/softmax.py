"""Quantized softmax (nnq.Softmax, quantized::softmax): aten/src/ATen/native/quantized/cpu/qsoftmax.cpp.

1. QNNPACK (engine qnnpack, quint8, output scale 1/256 and zero point 0: `qsoftmax_qnnpack`,
   qnnpack/src/softargmax.c + u8rmax + u8lut32norm/scalar.c), integers only, per row along `dim`:
       T[i] = lrint(qscale * exp((i - 255) * s_x)),  i = 0..255,  qscale = min(UINT32_MAX / C, 8388607)
                                                     (double exp of the C library)
       m = max q;  t_j = T[q_j + 255 - m];  S = Σ t_j (uint32)
       y_j = min((t_j * 256 + S // 2) // S, 255)
2. Otherwise (`qsoftmax_naive`): x = dequantize(q) (f32(s) * f32(q - zp)), the float softmax of
   aten/src/ATen/native/cpu/SoftMaxKernel.cpp on x.contiguous(), then quantize_per_tensor(y, s_y, z_y).
   Its Vectorized<float> has L lanes (16 under the AVX-512 capability: ALSO_REGISTER_AVX512_DISPATCH; 8 AVX2).
   dim last (`_vec_softmax_lastdim`), per row:
       m = reduce_all(max); e = exp(x - m) (Vectorized::exp = SLEEF expf u10);
       S = reduce_all(+, e): lanes accumulate vectors in order (a partial last vector into its first lanes),
           then the lanes pairwise (halves); rows shorter than L add their elements one by one;
       y = e * f32(1 / S)
   other dims (`_vec_softmax`), over outer x inner positions split in one chunk per thread: L positions
   that lie in one inner row and one chunk run as a vector (SLEEF exp, sums in dim order from 0, y = e / S);
   the others run scalar (std::exp = the C library's expf, same order, y = e / S).
"""
from __future__ import annotations

import numpy as np

from ..cpu import cpu_class
from ..numerics import elementwise as E
from ..numerics import quantize as Q
from ..numerics.expf import libm_exp, libm_expf, sleef_expf_u10
from ..numerics.profile import aten_float_lanes
from .spec import OpSpec

QNNPACK_OUT_SCALE = 2.0 ** -8  # qnnpack_softmax_output_scale


def qnnpack_softmax_table(x_scale, channels: int) -> np.ndarray:
    """pytorch_qnnp_create_softargmax_nc_q8's lookup table (uint32 values as int64)."""
    qscale = min(float(2**32 - 1) / float(channels), 8388607.0)
    s = float(np.float32(x_scale))
    return np.array([int(np.rint(qscale * libm_exp(float(i - 255) * s))) for i in range(256)], dtype=np.int64)


def qnnpack_softmax(q, x_scale):
    """Rows along the last axis of q (uint8 values): u8rmax, then u8lut32norm."""
    q = np.asarray(q, dtype=np.int64)
    table = qnnpack_softmax_table(x_scale, q.shape[-1])
    m = q.max(axis=-1, keepdims=True)
    t = table[q + 255 - m]
    S = t.sum(axis=-1, keepdims=True) % 2**32
    y = np.minimum(((t << 8) + (S >> 1)) // S, 255)
    return y, t, S


def _reduce_all(v, lanes, op):
    """at::vec::reduce_all over the last axis of v (ATen/cpu/vec/functional_base.h)."""
    n = v.shape[-1]
    if n < lanes:  # vec_reduce_all's slow path: lane 0 takes the elements one by one
        acc = v[..., 0]
        for i in range(1, n):
            acc = op(acc, v[..., i])
        return acc
    full = n - n % lanes
    acc = v[..., :lanes].copy()
    for d in range(lanes, full, lanes):
        acc = op(acc, v[..., d:d + lanes])
    if n > full:
        acc[..., :n - full] = op(acc[..., :n - full], v[..., full:])
    while acc.shape[-1] > 1:  # VecReduceAllSIMD: the upper half onto the lower half
        h = acc.shape[-1] // 2
        acc = op(acc[..., :h], acc[..., h:])
    return acc[..., 0]


def _add(a, b):
    return np.add(a, b, dtype=np.float32)


def softmax_lastdim(x, lanes):
    """_vec_softmax_lastdim over the last axis of a float32 array."""
    m = _reduce_all(x, lanes, np.maximum)
    e = sleef_expf_u10(np.subtract(x, m[..., None], dtype=np.float32))
    S = _reduce_all(e, lanes, _add)
    r = np.divide(np.float32(1), S, dtype=np.float32)
    return np.multiply(e, r[..., None], dtype=np.float32)


def softmax_inner(x, dim, lanes, threads):
    """_vec_softmax: softmax along a dim that is not last, x contiguous float32."""
    shape = x.shape
    outer = int(np.prod(shape[:dim], dtype=np.int64))
    inner = int(np.prod(shape[dim + 1:], dtype=np.int64))
    size = shape[dim]
    v = x.reshape(outer, size, inner)
    n = outer * inner
    vector = np.zeros(n, bool)  # which outer*inner positions the vector path computes
    nt = threads if n > 1 and threads > 1 else 1
    chunk = -(-n // nt)
    for begin in range(0, n, chunk):
        end = min(n, begin + chunk)
        idx = begin
        while idx < end:
            inner_idx = idx % inner
            if inner_idx + lanes <= inner and idx + lanes <= end:
                vector[idx:idx + lanes] = True
                idx += lanes
            else:
                idx += (end - idx) if idx + lanes > end else (inner - inner_idx)
    vector = vector.reshape(outer, 1, inner)
    m = v.max(axis=1, keepdims=True)
    d = np.subtract(v, m, dtype=np.float32)
    e = np.where(vector, sleef_expf_u10(d), libm_expf(d) if not vector.all() else d)
    S = np.zeros((outer, 1, inner), np.float32)
    for k in range(size):
        S = _add(S, e[:, k:k + 1])
    return np.divide(e, S, dtype=np.float32).reshape(shape), vector


def softmax(x, *, x_scale, x_zero_point, dim, out_scale, out_zero_point, dtype="uint8", profile, trace=None):
    x = np.asarray(x)
    nd = x.ndim
    dim = int(dim) % nd if nd else 0
    if (profile["engine"] == "qnnpack" and dtype == "uint8" and nd > 0 and float(out_scale) == QNNPACK_OUT_SCALE
            and int(out_zero_point) == 0):
        y, t, S = qnnpack_softmax(np.moveaxis(x, dim, -1), x_scale)
        if trace is not None:
            trace.update(kernel="qnnpack_softargmax", table_values=np.moveaxis(t, -1, dim),
                         row_sum=np.moveaxis(S, -1, dim))
        return E.to_dtype(np.moveaxis(y, -1, dim), dtype)
    if cpu_class(profile).arch != "x86_64":
        raise NotImplementedError("quantized softmax through float (qsoftmax_naive) is reproduced for x86 "
                                  "CPUs only (its NEON exp is not modelled)")
    lanes = aten_float_lanes(profile, "softmax_lastdim_kernel")
    xf = Q.dequantize_per_tensor(x, x_scale, x_zero_point)
    if nd == 0 or dim == nd - 1:
        yf = softmax_lastdim(xf.reshape(1, -1) if nd == 0 else xf, lanes).reshape(x.shape)
        vector = None
    else:
        yf, vector = softmax_inner(xf, dim, lanes, E.num_threads(profile))
    out = Q.quantize_per_tensor(yf, out_scale, out_zero_point, dtype)
    if trace is not None:
        trace.update(kernel="aten_softmax_float", dequantized=xf, float_softmax=yf)
        if vector is not None:
            trace["vector_mask"] = np.broadcast_to(vector, (vector.shape[0], x.shape[dim], vector.shape[2])
                                                   ).reshape(x.shape)
    return E.to_dtype(out, dtype)


SPECS = [
    OpSpec("softmax", "softmax", integer="float",
           summary="softmax: QNNPACK's integer table kernel (qnnpack, output 1/256), else through floats "
                   "(dequantize, ATen's float softmax, quantize)",
           formula=("qnnpack: t = T[x_q + 255 − max x_q], T[i] = rne(qscale·exp((i − 255)·s_x));  "
                    "y_q = min((256·t + Σt/2) // Σt, 255)",
                    "else: x = s_x·(x_q − z_x);  y = exp(x − max x) / Σ exp(x − max x);  y_q = clamp(rne(y/s_y + z_y))"),
           torch=("nnq.Softmax", "quantized::softmax")),
]
