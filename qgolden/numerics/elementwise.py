"""Shared pieces of ATen's elementwise quantized CPU kernels (QuantizedOpKernels.cpp).

Every such kernel is `cpu_kernel_vec(iter, scalar_op, vector_op)` (ATen/native/cpu/Loops.h):
  * TensorIterator coalesces contiguous dims; the innermost run of n elements goes to
    `vectorized_loop`, which applies the vector op to blocks of 2*V elements
    (V = Vectorized<quint8>::size() of the AVX2 kernel: 32 on every x86 class, since these
    stubs leave the AVX512 slot empty; profile.aten_vector_width) and the SCALAR op to the
    last n % (2V) elements of the run.
  * numel > 32768 (at::internal::GRAIN_SIZE) with >1 thread: the flat range is split in
    ceil(numel/chunk) OpenMP chunks, each with its own tail (profile.get('num_threads')).
  * if an operand is broadcast inside the row (and not a stride-0 scalar) the whole row runs
    the scalar op (basic_loop).
The vector and scalar ops round differently (vector: zp added after rounding; scalar
quantize_val: zp added before rounding, fbgemm LEGACY), hence `path_mask`.
"""
from __future__ import annotations

import functools

import numpy as np

from .floatops import f32, fma32
from .profile import aten_vector_width
from .quantize import QRANGE, NP_DTYPE

GRAIN_SIZE = 32768
INT32_FLOAT_MAX = np.float32(2147483520.0)


def qrange(dtype):
    return QRANGE[dtype]


def inv_scale32(scale) -> np.float32:
    """`1.0f / (float)scale` (most kernels)."""
    return np.float32(1.0) / np.float32(scale)


def inv_scale_d(scale) -> np.float32:
    """`(float)(1.0 / scale)` in double (qhardswish, qelu, qthreshold, qsigmoid, qtanh, qcat)."""
    return np.float32(1.0 / float(scale))


def _wrap32(x):
    return (np.asarray(x, dtype=np.int64) + 2**31) % 2**32 - 2**31


def cvtps_epi32(t):
    """_mm256_cvtps_epi32: RNE; NaN/out of range -> INT32_MIN."""
    t = np.asarray(t, dtype=np.float32).astype(np.float64)
    with np.errstate(invalid="ignore"):
        r = np.rint(t)
        bad = ~np.isfinite(r) | (r >= 2**31) | (r < -(2**31))
        r = np.where(bad, -(2**31), r)
    return r.astype(np.int64)


def vec_quantize(x, inverse_scale, zero_point, dtype="uint8"):
    """Vectorized<T>::quantize -> QuantizeAvx2 (vec256_qint.h):
    t = min(f32(x*inv), 2147483520.f) (NaN -> 2147483520); q = rne(t) + zp (int32 wrap); saturate."""
    x = np.asarray(x, dtype=np.float32)
    t = x * np.float32(inverse_scale)  # one float32 multiply == f32 of the exact product
    lo, hi = QRANGE[dtype]
    with np.errstate(invalid="ignore"):
        if t.size and t.min() > -(2.0**30) and t.max() < 2.0**30:
            # no NaN, no int32 overflow or wrap: q = clamp(rne(t) + zp), in float32 on small integers
            np.rint(t, out=t)
            t += np.float32(int(zero_point))
            np.clip(t, lo, hi, out=t)
            return t.astype(np.int64)
        t = np.where(np.isnan(t), INT32_FLOAT_MAX, np.minimum(t, INT32_FLOAT_MAX))
    q = _wrap32(cvtps_epi32(t) + int(zero_point))
    return np.clip(q, lo, hi)


def scalar_quantize(x, scale, zero_point, dtype="uint8"):
    """at::native::quantize_val -> fbgemm::Quantize (behaves LEGACY: zp added before rounding):
    t = f32(zp + f32(x * (1.f/f32(scale)))); q = clamp(nearbyint(t))."""
    x = np.asarray(x, dtype=np.float32)
    inv = inv_scale32(scale)
    t = f32(x.astype(np.float64) * np.float64(inv))
    t = f32(t.astype(np.float64) + float(np.float32(zero_point)))
    lo, hi = QRANGE[dtype]
    with np.errstate(invalid="ignore"):
        r = np.rint(t.astype(np.float64))
        r = np.where(np.isnan(r), lo, r)  # never reached from 8-bit inputs
    return np.clip(r, lo, hi).astype(np.int64)


def vec_dequantize(q, scale, zero_point):
    """Vectorized<T>::dequantize(scale, zp, scale_zp_premul): fma32(s, q, f32(s*-zp))."""
    s = np.float32(scale)
    premul = f32(np.float64(s) * np.float64(np.float32(-float(zero_point))))
    return fma32(s, np.asarray(q, dtype=np.float32), premul)


def vec_dequantize2(q, scale, zero_point):
    """Two-argument Vectorized<T>::dequantize(scale, zp) (qsigmoid): f32((q - zp) * s)."""
    d = (np.asarray(q, dtype=np.int64) - int(zero_point)).astype(np.float32)
    return f32(d.astype(np.float64) * np.float64(np.float32(scale)))


def scalar_dequantize(q, scale, zero_point):
    """at::native::dequantize_val -> fbgemm::Dequantize: f32(s) * f32(q - zp)."""
    d = (np.asarray(q, dtype=np.int64) - int(zero_point)).astype(np.float32)
    return f32(np.float64(np.float32(scale)) * d.astype(np.float64))


def requantize_from_int(c, multiplier, zero_point, dtype="uint8"):
    """Vector RequantizeAvx2 and scalar requantize_from_int agree:
    q = clamp(rne(f32(f32(c) * f32(multiplier))) + zp)."""
    c = np.asarray(c, dtype=np.int64).astype(np.float32)
    t = f32(c.astype(np.float64) * np.float64(np.float32(multiplier)))
    q = cvtps_epi32(t) + int(zero_point)
    lo, hi = QRANGE[dtype]
    return np.clip(q, lo, hi)


def num_threads(profile) -> int:
    return int(profile.get("num_threads", 1) or 1)


def _chunks(numel, profile):
    """[begin, end) ranges that TensorIterator::for_each hands to the loop (at::parallel_for, OpenMP)."""
    nt = num_threads(profile)
    if numel <= GRAIN_SIZE or nt <= 1:
        return [(0, numel)]
    nt = min(nt, -(-numel // GRAIN_SIZE))
    chunk = -(-numel // nt)
    return [(b, min(numel, b + chunk)) for b in range(0, numel, chunk)]


def _coalesce(shape, strides_list):
    """TensorIterator dimension coalescing for C-contiguous output. Returns dims innermost
    first: list of (size, [stride per operand])."""
    dims = [(int(s), [st[i] for st in strides_list]) for i, s in enumerate(shape)][::-1]
    dims = [d for d in dims if d[0] != 1] or [(1, [1] * len(strides_list))]
    out = [dims[0]]
    for size, st in dims[1:]:
        psize, pst = out[-1]
        if all(pst[k] * psize == st[k] for k in range(len(st))):
            out[-1] = (psize * size, pst)
        else:
            out.append((size, st))
    return out


def path_mask(out_shape, in_shapes, profile) -> np.ndarray:
    """Boolean array (out_shape): True where the element is computed by the vector op.

    in_shapes: shapes of the inputs (broadcastable to out_shape, C-contiguous). The result
    depends on shapes, vector width and threads only: cached, and read-only."""
    forced = profile.get("force_path")  # integer/lut.py tabulates each path alone
    if forced is not None:
        return np.full(tuple(int(s) for s in out_shape), forced == "vector", dtype=bool)
    return _path_mask(tuple(int(s) for s in out_shape), tuple(tuple(int(d) for d in s) for s in in_shapes),
                      aten_vector_width(profile, "elementwise"), num_threads(profile))


@functools.lru_cache(maxsize=128)
def _path_mask(out_shape, in_shapes, vector_width, threads) -> np.ndarray:
    mask = _path_mask_uncached(out_shape, in_shapes, {"vector_width": vector_width, "num_threads": threads})
    mask.flags.writeable = False
    return mask


def _path_mask_uncached(out_shape, in_shapes, profile) -> np.ndarray:
    nd = len(out_shape)
    numel = int(np.prod(out_shape, dtype=np.int64))
    V = int(profile["vector_width"])
    strides_list = []
    ostr, acc = [0] * nd, 1
    for i in range(nd - 1, -1, -1):
        ostr[i] = acc
        acc *= out_shape[i]
    strides_list.append(ostr)
    for shp in in_shapes:
        shp = (1,) * (nd - len(shp)) + tuple(int(s) for s in shp)
        st, acc = [0] * nd, 1
        for i in range(nd - 1, -1, -1):
            st[i] = 0 if (shp[i] == 1 and out_shape[i] != 1) else acc
            acc *= shp[i]
        strides_list.append(st)
    mask = np.zeros(numel, dtype=bool)
    if numel == 0:
        return mask.reshape(out_shape)
    dims = _coalesce(out_shape, strides_list)
    size0, st0 = dims[0]
    contiguous = all(s == 1 for s in st0)
    scalar_ok = (not contiguous) and st0[0] == 1 and sum(1 for s in st0[1:] if s == 0) == 1 and all(
        s in (0, 1) for s in st0[1:])
    if size0 == 1 and len(dims) == 1:
        contiguous = True
    vectorizable = contiguous or scalar_ok
    if not vectorizable:
        return mask.reshape(out_shape)
    for b, e in _chunks(numel, profile):
        i = b
        while i < e:
            row_end = min(e, (i // size0 + 1) * size0)
            n = row_end - i
            nv = (n // (2 * V)) * (2 * V)
            mask[i:i + nv] = True
            i = row_end
    return mask.reshape(out_shape)


def unary_mask(shape, profile):
    return path_mask(shape, [shape], profile)


def as_int(q, dtype):
    return np.asarray(q).astype(np.int64)


def to_dtype(q, dtype):
    return np.asarray(q, dtype=np.int64).astype(NP_DTYPE[dtype])


def qnnpack_u8_table(x_scale, x_zero_point, real_to_level):
    """QNNPACK's lookup table for a quint8 unary op: for each stored input i in 0..255,
    x = f32(f32(s)*(i - zp)), level = real_to_level(x) (float32), clamped to [0, 255], rounded
    half to even. Returns int64 [256]."""
    i = np.arange(256)
    xi = f32(np.float64(np.float32(x_scale)) * (i - int(x_zero_point)).astype(np.float64))
    y = np.clip(real_to_level(xi), np.float32(0), np.float32(255))
    return np.rint(y.astype(np.float64)).astype(np.int64)
