"""quantized::add / add_relu (FloatFunctional.add / QFunctional.add) and add_scalar.

ATen (x86, fbgemm, onednn; qnnpack when shapes differ): `qadd_kernel` (QuantizedOpKernels.cpp)
    vector (blocks of 2V):  da = fma32(sa, qa, f32(sa*-za)); db likewise; c = f32(da + db)
                            relu: c = max(c, 0); q = clamp(rne(min(f32(c*inv), 2^31-128)) + zo)
    scalar tail:            da = f32(sa*(qa-za)); c = f32(da+db); q = clamp(rne(f32(zo + f32(c*inv))))
    inv = 1.0f / f32(so)
QNNPACK (engine qnnpack, quint8, same shapes): fixed-point `pytorch_qnnp_add_quantize`.
"""
from __future__ import annotations

import functools

import numpy as np

from ..numerics import elementwise as E
from ..numerics.floatops import f32
from .spec import OpSpec


def _qnnpack_add(a, b, a_scale, a_zero_point, b_scale, b_zero_point, out_scale, out_zero_point, relu, trace):
    a_os = np.float32(a_scale) / np.float32(out_scale)
    b_os = np.float32(b_scale) / np.float32(out_scale)
    for r in (a_os, b_os):
        if not (2.0**-14 <= float(r) < 2.0**8):
            raise ValueError("QNNPACK add: scale ratio must be in [2**-14, 2**8)")
    mx = max(a_os, b_os)
    exp = int((np.float32(mx).view(np.uint32) >> 23)) - 127
    shift = 21 - exp
    am = int(np.rint(np.float64(a_os) * 2.0**shift))  # exact scaling by 2**shift, then lrintf
    bm = int(np.rint(np.float64(b_os) * 2.0**shift))
    zpp = -(am * int(a_zero_point) + bm * int(b_zero_point))
    acc = E._wrap32(zpp + a.astype(np.int64) * am + b.astype(np.int64) * bm)
    mask = (1 << shift) - 1
    thr = mask >> 1
    rem = (acc & mask) - (acc < 0)
    y = (acc >> shift) + (rem > thr)
    y = y + int(out_zero_point)
    lo = int(out_zero_point) if relu else 0
    y = np.clip(y, lo, 255)
    if trace is not None:
        trace.update(kernel="qnnpack_add", a_multiplier=am, b_multiplier=bm, shift=shift,
                     zero_point_product=zpp, acc=acc, out=y)
    return y.astype(np.uint8)


def add(a, b, *, a_scale, a_zero_point, b_scale, b_zero_point, out_scale, out_zero_point,
        relu=False, dtype="uint8", profile, trace=None) -> np.ndarray:
    a = np.asarray(a)
    b = np.asarray(b)
    eng = profile["engine"]
    if eng == "qnnpack":
        if dtype == "int8":
            raise NotImplementedError("qint8 add under the qnnpack engine runs XNNPACK (not modelled)")
        if a.shape == b.shape and dtype == "uint8" and a.ndim > 0:
            return _qnnpack_add(a, b, a_scale, a_zero_point, b_scale, b_zero_point,
                                out_scale, out_zero_point, relu, trace)
    out_shape = a.shape
    b_b = np.broadcast_to(b, out_shape)
    m = E.path_mask(out_shape, [a.shape, b.shape], profile)
    if trace is None and a.dtype == b_b.dtype and a.dtype in (np.uint8, np.int8):
        # both paths are functions of the pair (qa, qb): look them up in 65,536-entry tables
        vec, sca = _pair_tables(float(a_scale), int(a_zero_point), float(b_scale), int(b_zero_point),
                                float(out_scale), int(out_zero_point), bool(relu), dtype, a.dtype.str)
        idx = a.view(np.uint8).astype(np.uint16)
        idx <<= 8
        idx |= b_b.view(np.uint8)
        out = np.take(vec, idx)
        if not m.all():
            out[~m] = sca[idx[~m]]
        return out
    (va, vb, vc, vq), (sa, sb, sc, sq) = _both_paths(a, b_b, a_scale, a_zero_point, b_scale, b_zero_point,
                                                     out_scale, out_zero_point, relu, dtype)
    out = np.where(m, vq, sq)
    if trace is not None:
        trace.update(kernel="aten_qadd", dequant_a=np.where(m, va, sa), dequant_b=np.where(m, vb, sb),
                     sum=np.where(m, vc, sc), vector_mask=m, out=out)
    return E.to_dtype(out, dtype)


@functools.lru_cache(maxsize=256)
def _pair_tables(a_scale, a_zero_point, b_scale, b_zero_point, out_scale, out_zero_point, relu, dtype,
                 np_dtype):
    """(vector, scalar) results of add for every pair of stored 8-bit values, indexed by
    (a_bits << 8) | b_bits: the same formulas as add() itself, evaluated once on all pairs."""
    bits = np.arange(65536, dtype=np.uint32)
    qa = (bits >> 8).astype(np.uint8).view(np.dtype(np_dtype))
    qb = (bits & 0xFF).astype(np.uint8).view(np.dtype(np_dtype))
    paths = _both_paths(qa, qb, a_scale, a_zero_point, b_scale, b_zero_point, out_scale, out_zero_point,
                        relu, dtype)
    return tuple(E.to_dtype(p[-1], dtype) for p in paths)


def _both_paths(qa, qb, a_scale, a_zero_point, b_scale, b_zero_point, out_scale, out_zero_point, relu, dtype):
    """ATen's vector and scalar add on every element: ((da, db, sum, q) vector, (da, db, sum, q) scalar)."""
    qa = np.asarray(qa).astype(np.int64)
    qb = np.asarray(qb).astype(np.int64)
    va = E.vec_dequantize(qa, a_scale, a_zero_point)
    vb = E.vec_dequantize(qb, b_scale, b_zero_point)
    vc = f32(va.astype(np.float64) + vb.astype(np.float64))
    if relu:
        vc = np.maximum(vc, np.float32(0))
    vq = E.vec_quantize(vc, E.inv_scale32(out_scale), out_zero_point, dtype)
    sa = E.scalar_dequantize(qa, a_scale, a_zero_point)
    sb = E.scalar_dequantize(qb, b_scale, b_zero_point)
    sc = f32(sa.astype(np.float64) + sb.astype(np.float64))
    if relu:
        sc = np.maximum(sc, np.float32(0))
    sq = E.scalar_quantize(sc, out_scale, out_zero_point, dtype)
    return (va, vb, vc, vq), (sa, sb, sc, sq)


def add_relu(a, b, **kw):
    return add(a, b, relu=True, **kw)


def add_scalar_out_qparams(x_scale, x_zero_point, scalar, dtype="uint8"):
    """Output (scale, zero_point) chosen by `_add_scalar_out` (BinaryOps.cpp)."""
    qmin, qmax = E.qrange(dtype)
    s = float(x_scale)
    z = int(x_zero_point)
    c_q = int(np.rint(float(scalar) / s))
    if qmin > z - c_q:
        return ((float(qmax) - (z - c_q)) / (float(qmax) - qmin) * s, qmin, c_q)
    if qmax < z - c_q:
        return ((float(z - c_q) - qmin) / (float(qmax) - qmin) * s, qmax, c_q)
    return (s, z - c_q, c_q)


def add_scalar(x, *, x_scale, x_zero_point, scalar, relu=False, dtype="uint8", profile, trace=None) -> np.ndarray:
    """quantized::add_scalar(_relu) (same on every engine). Output qparams come from
    `add_scalar_out_qparams`: if z - round(c/s) fits, the values are copied (relu: max(q, z'));
    otherwise q' = clamp(rne(f32(f32(q - z + c_q) * f32(f32(s) * (1.f/f32(s'))))) + z')."""
    x = np.asarray(x).astype(np.int64)
    s_out, z_out, c_q = add_scalar_out_qparams(x_scale, x_zero_point, scalar, dtype)
    if s_out == float(x_scale) and z_out == int(x_zero_point) - c_q:
        out = x.copy()
        if relu:
            out = np.maximum(out, z_out)
    else:
        mult = np.float32(np.float32(x_scale) * E.inv_scale32(s_out))
        out = E.requantize_from_int(x - int(x_zero_point) + c_q, mult, z_out, dtype)
        if relu:
            out = np.maximum(out, z_out)
    if trace is not None:
        trace.update(out_scale=s_out, out_zero_point=z_out, c_q=c_q, out=out)
    return E.to_dtype(out, dtype)


SPECS = [
    OpSpec("add", "add", elementwise=True, integer="binary_lut", summary='adds two quantized tensors with their own scales', formula=('a = s_a·(a_q − z_a);  b = s_b·(b_q − z_b);  y_q = clamp(rne((a + b)/s_y) + z_y)   (ATen, float32)', '(qnnpack: fixed-point a_multiplier·a_q + b_multiplier·b_q, shifted right with rounding)', ),
           torch=('quantized::add', 'quantized::add_relu', 'FloatFunctional.add / add_relu', 'x + y (convert_fx)')),
    OpSpec("add_scalar", "add_scalar", elementwise=True, integer="lut", summary='adds a constant', formula=('y_q = x_q (new zero point z − round(c/s)) or requantized', ),
           torch=('quantized::add_scalar', 'quantized::add with a number', 'FloatFunctional.add_scalar', 'x + c (convert_fx)')),
]
