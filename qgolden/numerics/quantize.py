"""Quantize and dequantize, as ATen/FBGEMM do them on the CPU.

Sources: `quantize_tensor_per_tensor_affine_cpu` (aten/src/ATen/native/quantized/cpu/
kernels/QuantizedOpKernels.cpp) -> `fbgemm::Quantize<T, LEGACY=true>`
(FBGEMM src/QuantUtilsAvx2.cc); `at::native::quantize_val` (AffineQuantizerBase.cpp);
`fbgemm::Dequantize`.
"""
from __future__ import annotations

import numpy as np

from .floatops import f32, fma32, rne

QRANGE = {
    "uint8": (0, 255),
    "int8": (-128, 127),
    "int32": (-(2**31), 2**31 - 1),
}
NP_DTYPE = {"uint8": np.uint8, "int8": np.int8, "int32": np.int32}


def quantize_per_tensor(x, scale: float, zero_point: int, dtype: str = "uint8") -> np.ndarray:
    """torch.quantize_per_tensor on CPU (FBGEMM QuantizeAvx2, LEGACY).

        inv = 1.0f / f32(scale)
        t   = fma32(x, inv, f32(zero_point))      # zero point added BEFORE rounding
        t   = min(t, 2147483520.f)                # NaN -> 2147483520 (minps)
        q   = clamp(rne(t), qmin, qmax)

    int32 (bias-style) uses no FMA: t = f32(f32(x*inv) + zp).
    """
    x = np.asarray(x, dtype=np.float32)
    inv = np.float32(1.0) / np.float32(scale)
    qmin, qmax = QRANGE[dtype]
    if dtype == "int32":
        t = f32(f32(x.astype(np.float64) * np.float64(inv)) + np.float32(zero_point))
        with np.errstate(invalid="ignore"):
            r = np.where(np.isnan(t), qmin, np.clip(rne(t.astype(np.float64)), qmin, qmax))
        return r.astype(np.int32)
    if x.size > BLOCK:  # elementwise: blocks whose float64 temporaries stay in cache
        flat = x.reshape(-1)
        out = np.empty(flat.size, NP_DTYPE[dtype])
        for i in range(0, flat.size, BLOCK):
            out[i:i + BLOCK] = _quantize_fma(flat[i:i + BLOCK], inv, zero_point, qmin, qmax, dtype)
        return out.reshape(x.shape)
    return _quantize_fma(x, inv, zero_point, qmin, qmax, dtype)


BLOCK = 1 << 15


def _quantize_fma(x, inv, zero_point, qmin, qmax, dtype):
    """clamp(rne(min(fma32(x, inv, zp), 2147483520.f))), NaN -> 2147483520 (quantize_per_tensor)."""
    t = np.asarray(fma32(x, inv, np.float32(zero_point)))
    np.fmin(t, np.float32(2147483520.0), out=t)  # fmin: NaN -> 2147483520, as minps(t, limit)
    np.rint(t, out=t)  # float32 RNE, as cvtps2dq
    np.clip(t, qmin, qmax, out=t)
    return t.astype(NP_DTYPE[dtype])


def quantize_val(x, scale: float, zero_point: int, dtype: str = "uint8") -> np.ndarray:
    """at::native::quantize_val (scalar path, also per-channel quantize):

        t = f32(f32(x * inv) + f32(zp)) ; q = clamp(rne(t))     # separate roundings, no FMA
    """
    x = np.asarray(x, dtype=np.float32)
    inv = np.float32(1.0) / np.float32(scale)
    qmin, qmax = QRANGE[dtype]
    t = f32(f32(x.astype(np.float64) * np.float64(inv)).astype(np.float64) + np.float64(np.float32(zero_point)))
    q = np.clip(rne(t.astype(np.float64)), qmin, qmax)
    return q.astype(NP_DTYPE[dtype])


def dequantize_per_tensor(q, scale: float, zero_point: int) -> np.ndarray:
    """fbgemm::Dequantize: f32(scale) * f32(q - zp), q - zp in wrapping int32."""
    d = np.asarray(q, dtype=np.int64) - int(zero_point)
    d = ((d + 2**31) % 2**32 - 2**31).astype(np.float32)  # int32 subtraction wraps (qint32)
    return f32(np.float64(np.float32(scale)) * d.astype(np.float64))


def dequantize_per_channel(q, scales, zero_points, axis: int) -> np.ndarray:
    """Per-channel dequantize is computed in double: f32((q - zp_c) * scale_c)."""
    q = np.asarray(q, dtype=np.int64)
    shape = [1] * q.ndim
    shape[axis] = -1
    s = np.asarray(scales, dtype=np.float64).reshape(shape)
    z = np.asarray(zero_points, dtype=np.int64).reshape(shape)
    return f32((q - z).astype(np.float64) * s)


def dequantize_vectorized(q, scale: float, zero_point: int) -> np.ndarray:
    """Vectorized<quint8>::dequantize(scale, zp, scale_zp_premul), the in-kernel dequantize
    of add/mul/hardswish...:  fma32(f32(s), q, f32(f32(s) * -zp))."""
    s = np.float32(scale)
    premul = f32(np.float64(s) * -float(zero_point))
    return fma32(s, np.asarray(q, dtype=np.float32), premul)
