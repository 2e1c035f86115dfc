"""ONNX Runtime's CPU arithmetic for quantized tensors (MLAS, onnxruntime/core/mlas/lib), and the
ONNX reference evaluator's (onnx/reference/ops), as small pure NumPy functions.

Every function states its formula and the source file it was read from. float32 operations
are done in float32 (NumPy keeps float32 op float32 in float32); a fused multiply-add is
computed exactly (fma32), because MLAS's AVX2/AVX-512 kernels use vfmadd.
"""
from __future__ import annotations

import numpy as np

QRANGE = {"uint8": (0, 255), "int8": (-128, 127)}


def f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def fma32(a, b, c) -> np.ndarray:
    """float32 fused multiply-add, round(a*b + c) with one rounding (vfmadd*ps).

    a*b of two float32 is exact in float64; a+b in float64 is rounded once more, which can
    only mislead the final float32 rounding when the float64 sum lands exactly on a float32
    midpoint: there the exact error term (TwoSum) decides the side."""
    a, b, c = np.broadcast_arrays(*(np.asarray(v, dtype=np.float32) for v in (a, b, c)))
    p = a.astype(np.float64) * b.astype(np.float64)
    c64 = c.astype(np.float64)
    s = p + c64
    t = s - p
    err = (p - (s - t)) + (c64 - t)
    r = np.atleast_1d(s.astype(np.float32))
    s1 = np.atleast_1d(s)
    other = np.nextafter(r, np.where(s1 > r.astype(np.float64), np.float32(np.inf), np.float32(-np.inf)))
    mid = (r.astype(np.float64) + other.astype(np.float64)) / 2
    fix = (s1 == mid) & (np.atleast_1d(err) != 0) & \
        (np.sign(np.atleast_1d(err)) == np.sign(other.astype(np.float64) - r.astype(np.float64)))
    return np.where(fix, other, r).astype(np.float32).reshape(np.shape(s))


def rne_int(x) -> np.ndarray:
    """cvtps2dq / vcvtnq_s32_f32 / np.rint: round half to even, as int64."""
    return np.rint(np.asarray(x)).astype(np.int64)


# -- QuantizeLinear ---------------------------------------------------------------------------------
def quantize_linear(x, scale, zero_point, dtype: str) -> np.ndarray:
    """MlasQuantizeLinear (quantize.cpp; AVX-512F: intrinsics/avx512/quantize_avx512f.cpp):
        v = x / scale (float32 division); v = min(max(v, qmin - zp), qmax - zp)
        q = cvtps2dq(v) (half to even) + zp
    max_ps(NaN, lo) returns lo, so NaN quantizes to qmin. onnx.reference's QuantizeLinear
    (op_quantize_linear.py: rint(x / y_scale) + zp, clipped) gives the same integers for
    finite x. `scale` and `zero_point` may be per-axis arrays broadcast against x."""
    lo, hi = QRANGE[dtype]
    zp = np.asarray(zero_point, dtype=np.int64)
    v = f32(x) / f32(scale)
    lo_v = (lo - zp).astype(np.float32)
    hi_v = (hi - zp).astype(np.float32)
    v = np.where(np.isnan(v), lo_v, np.minimum(np.maximum(v, lo_v), hi_v))
    return (rne_int(v) + zp).astype(dtype)


def dequantize_linear(q, scale, zero_point) -> np.ndarray:
    """DequantizeLinear (providers/cpu/quantization/quantize_linear.cc; MlasDequantizeLinear):
        y = float32(int32(q) - zp) * scale   (one float32 multiply)
    onnx.reference: (q.astype(float32) - zp) * scale, the same float32 value."""
    d = (np.asarray(q).astype(np.int64) - np.asarray(zero_point, dtype=np.int64)).astype(np.float32)
    return d * f32(scale)


# -- requantization of int32 accumulators -------------------------------------------------------
def output_scale(x_scale, w_scale, y_scale) -> np.ndarray:
    """QLinearConv::ComputeOutputScale (providers/cpu/quantization/qlinearconv.cc), QGemm and
    QLinearMatMul alike: (x_scale * w_scale[i]) / y_scale, two float32 operations left to right."""
    return (f32(x_scale) * f32(w_scale)) / f32(y_scale)


def requantize_output(acc, scale, zero_point: int, dtype: str) -> np.ndarray:
    """MlasRequantizeOutput (mlas/lib/quantize.cpp) and MLAS_QGEMM_REQUANT_OUTPUT_PROCESSOR:
        v = float32(acc) * scale          (cvtdq2ps rounds |acc| > 2**24; one float32 multiply)
        v = min(max(v, qmin - zp), qmax - zp)
        y = cvtps2dq(v) + zp              (round half to even)
    `scale` is a scalar or a per-column vector (last axis of acc)."""
    lo, hi = QRANGE[dtype]
    v = np.asarray(acc).astype(np.float32) * f32(scale)
    v = np.minimum(np.maximum(v, np.float32(lo - zero_point)), np.float32(hi - zero_point))
    return (rne_int(v) + zero_point).astype(dtype)


def requantize_reference(acc, scale, zero_point: int, dtype: str) -> np.ndarray:
    """onnx.reference QLinearConv / QLinearMatMul (op_qlinear_conv.py, op_qlinear_matmul.py):
        R = int32 acc * (x_scale * w_scale / y_scale)   (NumPy promotes to float64: the
                                                         float32 ratio times the exact acc)
        y = round_half_even(clip(R + zp, qmin, qmax))"""
    lo, hi = QRANGE[dtype]
    r = np.asarray(acc).astype(np.int32).astype(np.float64) * np.asarray(scale, dtype=np.float32).astype(np.float64)
    r = np.clip(r + zero_point, lo, hi)
    return np.rint(r).astype(dtype)


# -- QLinearAdd / QLinearMul --------------------------------------------------------------------------
def qlinear_add_x86(a, a_scale, a_zp, b, b_scale, b_zp, c_scale, c_zp, dtype: str) -> np.ndarray:
    """MlasQLinearAddKernelAvx2Helper (mlas/lib/intrinsics/avx2/qladd_avx2.cpp), the x86 kernel
    (AVX2 and up):
        rA = sA / sC, rB = sB / sC                            (float32)
        F  = float(zC) - (rA * zA + rB * zB)                  (float32, left to right)
        c  = fma(a, rA, fma(b, rB, F))                        (both inputs vectors)
        scalar A: F += float(a) * rA; c = fma(b, rB, F)       (mul, add: two roundings)
        scalar B: F += float(b) * rB; c = fma(a, rA, F)
        y  = saturate(cvtps2dq(c))                            (packs_epi32, then packus / packs)
    a, b already broadcast to the output shape; a_is_scalar / b_is_scalar chosen by size."""
    lo, hi = QRANGE[dtype]
    ra = np.float32(a_scale) / np.float32(c_scale)
    rb = np.float32(b_scale) / np.float32(c_scale)
    fixed = np.float32(c_zp) - (ra * np.float32(a_zp) + rb * np.float32(b_zp))
    a = np.asarray(a)
    b = np.asarray(b)
    if a.size == 1 and b.size != 1:
        fixed = np.float32(fixed + np.float32(a.reshape(-1)[0]) * ra)
        c = fma32(b.astype(np.float32), rb, fixed)
    elif b.size == 1 and a.size != 1:
        fixed = np.float32(fixed + np.float32(b.reshape(-1)[0]) * rb)
        c = fma32(a.astype(np.float32), ra, fixed)
    else:
        c = fma32(a.astype(np.float32), ra, fma32(b.astype(np.float32), rb, fixed))
    return np.clip(rne_int(c), lo, hi).astype(dtype)


def qlinear_add_neon(a, a_scale, a_zp, b, b_scale, b_zp, c_scale, c_zp, dtype: str) -> np.ndarray:
    """MlasQLinearAddKernelHelper, NEON (mlas/lib/qladd.cpp), arm64: fixed point when
    MlasCalcQLinearAddParameters accepts the ratios rA = sA/sC, rB = sB/sC (float32):
        both in [2**-14, 256); E = exponent of max(rA, rB); S = 21 - E in [13, 31];
        MA = lrintf(rA * 2**S), MB = lrintf(rB * 2**S); both < 2**22 and one >= 2**21
        acc = (a - zA) * MA + (b - zB) * MB                      (int32)
        acc += acc >> 31; acc = (acc + 2**(S-1)) >> S            (vsraq, vrshlq)
        y = sat8(sat16(sat16(acc) + zC))                         (vqmovn, vqaddq, vqmovun/vqmovn)
    otherwise MlasQLinearAddKernelRawHelper:
        v = (sA * (a - zA) + sB * (b - zB)) / sC; v = clamp(v, qmin - zC, qmax - zC)
        y = nearbyintf(v + zC)                                  (all float32)"""
    lo, hi = QRANGE[dtype]
    ra = np.float32(a_scale) / np.float32(c_scale)
    rb = np.float32(b_scale) / np.float32(c_scale)
    da = np.asarray(a).astype(np.int64) - int(a_zp)
    db = np.asarray(b).astype(np.int64) - int(b_zp)
    lo_r, hi_r = np.float32(2.0**-14), np.float32(256.0)
    ok = lo_r <= ra < hi_r and lo_r <= rb < hi_r
    if ok:
        e = int(np.asarray(max(ra, rb), np.float32).view(np.uint32) >> 23) - 127
        shift = 21 - e
        ok = 13 <= shift <= 31
    if ok:
        m = np.float32(2.0 ** shift)
        ma, mb = int(np.rint(ra * m)), int(np.rint(rb * m))
        ok = ma < 0x400000 and mb < 0x400000 and (ma >= 0x200000 or mb >= 0x200000)
    if ok:
        acc = (da * ma + db * mb).astype(np.int64)
        acc = ((acc + (acc >> 31)) + (1 << (shift - 1))) >> shift
        v = np.clip(np.clip(acc, -32768, 32767) + int(c_zp), -32768, 32767)
        return np.clip(v, lo, hi).astype(dtype)
    va = np.float32(a_scale) * da.astype(np.float32)
    vb = np.float32(b_scale) * db.astype(np.float32)
    v = (va + vb) / np.float32(c_scale)
    v = np.minimum(np.maximum(v, np.float32(lo - int(c_zp))), np.float32(hi - int(c_zp)))
    return np.clip(rne_int(v + np.float32(c_zp)), lo, hi).astype(dtype)


def qlinear_mul(a, a_scale, a_zp, b, b_scale, b_zp, c_scale, c_zp, dtype: str) -> np.ndarray:
    """MlasQLinearMulKernel (mlas/lib/qlmul.cpp, SSE2 and NEON paths):
        p = (a - zA) * (b - zB)                    (exact int32)
        r = (sA * sB) / sC                         (float32, left to right)
        y = saturate(round_half_even(float32(p) * r + float(zC)))   (mul then add, two roundings)"""
    lo, hi = QRANGE[dtype]
    r = (np.float32(a_scale) * np.float32(b_scale)) / np.float32(c_scale)
    p = (np.asarray(a).astype(np.int64) - a_zp) * (np.asarray(b).astype(np.int64) - b_zp)
    v = p.astype(np.float32) * r + np.float32(c_zp)
    return np.clip(rne_int(v), lo, hi).astype(dtype)


# -- QLinearGlobalAveragePool ---------------------------------------------------------------------
def global_average_pool_scale(x_scale, y_scale, image_size: int) -> np.float32:
    """CheckQLinearGlobalAveragePoolScaleAndSize (mlas/lib/qlgavgpool.cpp):
    scale = sX / (sY * float(N)); ORT refuses N >= 2**24 or scale outside [2**-32, 256)."""
    s = np.float32(x_scale) / (np.float32(y_scale) * np.float32(image_size))
    if image_size >= 0x1000000 or s < np.float32(2.0**-32) or s >= np.float32(256.0):
        raise ValueError("QLinearGlobalAveragePool parameter out of computation range (ORT refuses it)")
    return np.float32(s)


def global_average_pool(sums, image_size: int, x_scale, x_zp: int, y_scale, y_zp: int, dtype: str,
                        fixed_point: bool) -> np.ndarray:
    """MlasQLinearGlobalAveragePool (mlas/lib/qlgavgpool.cpp) on the exact int32 sums:
        acc = Σ x - zX * N
    x86 (SSE2 path): y = saturate(cvtps2dq(float32(acc) * scale) + zY), the float requantization.
    NEON (fixed_point): the scale's 24-bit mantissa M and shift S = 150 - exponent bits:
        y = saturate(((acc * M + (acc < 0 ? -1 : 0)) + 2**(S-1)) >> S) + zY)   (vrshlq_s64)."""
    lo, hi = QRANGE[dtype]
    acc = np.asarray(sums, dtype=np.int64) - int(x_zp) * int(image_size)
    s = global_average_pool_scale(x_scale, y_scale, image_size)
    if not fixed_point:
        return requantize_output(acc, s, int(y_zp), dtype)
    bits = int(np.asarray(s, dtype=np.float32).view(np.uint32))
    mult = (bits & 0x007FFFFF) | 0x00800000
    shift = 127 + 23 - (bits >> 23)
    prod = acc * mult + np.where(acc < 0, -1, 0)
    scaled = (prod + (1 << (shift - 1))) >> shift
    v = np.clip(np.clip(scaled, -(1 << 31), (1 << 31) - 1), -32768, 32767) + int(y_zp)
    return np.clip(np.clip(v, -32768, 32767), lo, hi).astype(dtype)


# -- lookup tables (QLinearSigmoid, QLinearLeakyRelu) -----------------------------------------------
LOGISTIC = dict(lower=-18.0, upper=18.0,
                alpha=(4.37031012579801e-11, 1.15627324459942e-07, 6.08574864600143e-05,
                       8.51377133304701e-03, 2.48287947061529e-01),
                beta=(6.10247389755681e-13, 5.76102136993427e-09, 6.29106785017040e-06,
                      1.70198817374094e-03, 1.16817656904453e-01, 9.93151921023180e-01))


def mlas_logistic(x, fused: bool, clamp_one: bool = True) -> np.ndarray:
    """MlasComputeLogistic (mlas/lib/logistic.cpp; Eigen's rational approximation):
        v = clamp(x, -18, 18); v2 = v*v
        p = ((((v2*a9 + a7)*v2 + a5)*v2 + a3)*v2 + a1) * v
        q = (((((v2*b10 + b8)*v2 + b6)*v2 + b4)*v2 + b2)*v2 + b0)
        y = clamp(p / q + 0.5, 0, 1)       (x86's FMA3 kernel: max(p / q + 0.5, 0) only: clamp_one False)
    fused: each `*v2 +` is one fused multiply-add (x86's FMA3 kernel, NEON's vfmaq)."""
    v = f32(x)
    v = np.minimum(np.maximum(v, np.float32(LOGISTIC["lower"])), np.float32(LOGISTIC["upper"]))
    v2 = v * v

    def mad(a, b, c):
        return fma32(a, b, c) if fused else (f32(a) * f32(b) + f32(c)).astype(np.float32)

    al = [np.float32(c) for c in LOGISTIC["alpha"]]
    be = [np.float32(c) for c in LOGISTIC["beta"]]
    p = mad(v2, al[0], al[1])
    for c in al[2:]:
        p = mad(p, v2, c)
    p = p * v
    q = mad(v2, be[0], be[1])
    for c in be[2:]:
        q = mad(q, v2, c)
    y = np.maximum(p / q + np.float32(0.5), np.float32(0.0))
    return (np.minimum(y, np.float32(1.0)) if clamp_one else y).astype(np.float32)


def lookup_table(fn: str, x_scale, x_zp: int, y_scale, y_zp: int, dtype: str, alpha: float = 0.01,
                 fused: bool = True, clamp_one: bool = True) -> np.ndarray:
    """QlinearBuildLookupTable (contrib_ops/cpu/quantization/qlinear_lookup_table.cc): for each of
    the 256 byte values b (read as `dtype`):
        d = X_scale * (int(b) - zX)             (float32)
        e = sigmoid: MlasComputeLogistic(d);   leaky_relu: d >= 0 ? d : alpha * d;   identity: d
        table[b] = MlasQuantizeLinear(e, Y_scale, zY)
    Indexed by the input's byte (uint8 view)."""
    b = np.arange(256, dtype=np.uint8).view(np.dtype(dtype)).astype(np.int64)
    d = np.float32(x_scale) * (b - int(x_zp)).astype(np.float32)
    if fn == "sigmoid":
        e = mlas_logistic(d, fused, clamp_one)
    elif fn == "leaky_relu":
        e = np.where(d >= 0, d, np.float32(alpha) * d).astype(np.float32)
    elif fn == "identity":  # QLinearConcat's requantization of an input with other qparams (qlinear_concat.cc)
        e = d
    else:
        raise ValueError(f"no lookup table for {fn!r}")
    return quantize_linear(e, y_scale, y_zp, dtype)
