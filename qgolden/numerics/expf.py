"""float32 exponentials of ATen's float kernels, reproduced bit for bit.

    sleef_expf_u10(x)   Vectorized<float>::exp() on x86: Sleef_expf8_u10 (AVX2) / Sleef_expf16_u10
                        (AVX-512), SLEEF's xexpf (src/libm/sleefsimdsp.c) built with FMA (vmla = fmadd)
    libm_expf(x)        std::exp(float) of ATen's scalar loops: the C library's expf, called through ctypes
                        (glibc's expf is not correctly rounded in every case, so it is called, not imitated)
    libm_exp(x)         the C library's double exp (QNNPACK builds its tables with it)
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math

import numpy as np

from .floatops import fma32

R_LN2F = np.float32(1.442695040888963407359924681001892137426645954152985934135449406931)
L2UF = np.float32(0.693145751953125)
L2LF = np.float32(1.428606765330187045e-06)
SLEEF_EXPF_POLY = (0.000198527617612853646278381, 0.00139304355252534151077271, 0.00833336077630519866943359,
                   0.0416664853692054748535156, 0.166666671633720397949219, 0.5)


def _pow2i(q):
    """vpow2i_vf_vi2: the float 2**q built from its exponent bits."""
    return ((q.astype(np.int64) + 127) << 23).astype(np.uint32).view(np.float32)


def sleef_expf_u10(x) -> np.ndarray:
    """SLEEF xexpf with FMA:
        q = rne(f32(x * R_LN2f));  s = fma(q, -L2Uf, x);  s = fma(q, -L2Lf, s)
        u = Horner over SLEEF_EXPF_POLY with fma;  u = f32(1 + fma(f32(s*s), u, s))
        u = f32(f32(u * 2^(q>>1)) * 2^(q - (q>>1)))
        x < -104 -> 0;  x > 100 -> inf"""
    d = np.asarray(x, dtype=np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        t = np.multiply(d, R_LN2F, dtype=np.float32)
        q = np.rint(np.nan_to_num(t, nan=0.0, posinf=2**30, neginf=-2**30)).astype(np.int64).clip(-2**31, 2**31 - 1)
        qf = q.astype(np.float32)
        s = fma32(qf, -L2UF, d)
        s = fma32(qf, -L2LF, s)
        u = np.full(d.shape, SLEEF_EXPF_POLY[0], np.float32)
        for c in SLEEF_EXPF_POLY[1:]:
            u = fma32(u, s, np.float32(c))
        u = np.add(np.float32(1.0), fma32(np.multiply(s, s, dtype=np.float32), u, s), dtype=np.float32)
        h = q >> 1
        u = np.multiply(np.multiply(u, _pow2i(np.clip(h, -127, 128)), dtype=np.float32),
                        _pow2i(np.clip(q - h, -127, 128)), dtype=np.float32)
        u = np.where(d < np.float32(-104), np.float32(0), u)
        u = np.where(d > np.float32(100), np.float32(np.inf), u)
    return np.asarray(u, dtype=np.float32)


@functools.lru_cache(maxsize=1)
def _libm():
    lib = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    lib.expf.restype, lib.expf.argtypes = ctypes.c_float, [ctypes.c_float]
    return lib


def libm_expf(x) -> np.ndarray:
    """expf of the C library, element by element (each distinct value once)."""
    x = np.asarray(x, dtype=np.float32)
    vals, inv = np.unique(x.reshape(-1), return_inverse=True)
    f = _libm().expf
    out = np.array([f(float(v)) for v in vals], dtype=np.float32)
    return out[inv].reshape(x.shape)


def libm_exp(x: float) -> float:
    """The C library's double exp (Python's math.exp calls it)."""
    return math.exp(x)
