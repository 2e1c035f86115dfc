"""The engine's quantize of a float32 input, computed in integers on its IEEE-754 bit pattern.

The runtimes quantize a float32 x with one of three float formulas (s: the scale, z: the zero point):

    fma  q = clamp(rne(f32(x * c + z)))          c = f32(1/s) (float32 division), one rounding of
                                                 x*c + z: FBGEMM's QuantizeAvx2 (fbgemm
                                                 src/QuantUtilsAvx2.cc, _mm256_fmadd_ps), called by
                                                 ATen's quantize_tensor_per_tensor_affine_cpu
    mul  q = clamp(rne(f32(x * c)) + z)          c = f32(1.0 / s) (division in double): torchao's
                                                 reference quantize_affine (PT2E Q/DQ, mode mul)
    div  q = clamp(rne(f32(x / c)) + z)          c = f32(s): MlasQuantizeLinear (onnxruntime mlas
                                                 quantize.cpp), PT2E Q/DQ mode div

rne rounds half to even (cvtps2dq / nearbyint in the default rounding mode). `quantize_bits`
computes the same integers with integer arithmetic only, exactly:

    x = (-1)^sign * mx * 2^ex,  c = mc * 2^ec               (mantissa and exponent of the bits)
    fma/mul: A = mx * mc, E = ex + ec                        |x*c| = A * 2^E exactly (A < 2^48)
    div:     A = floor(mx * 2^38 / mc), sticky = remainder   (mx, mc normalised to 24 bits:
             E = ex - ec - 38                                 A >= 2^37, so A rounds to 24 bits
                                                              with the sticky bit deciding ties)
    |x*c| < 1/4 (bitlen(A) + E <= -2):  r = z (fma) or 0: the float32 value is within 1/4 + ulp of
                                        z, which rounds to z (|z| <= 2^12)
    |x*c| >= 2^40:                       r = +-2^40: saturates (the engine's own out-of-range rules
                                        for the largest floats are the table's wrap, kept)
    otherwise, with F = max(0, -E):      S = +-A * 2^max(E,0) + z_pre * 2^F    (exact, < 2^63)
                                         M = S rounded to 24 significant bits, half to even
                                         (the float32 value M * 2^(k-F); never subnormal)
                                         r = M * 2^(k-F) rounded to an integer, half to even
    q = clamp(r + z_post, qmin, qmax)    (z_pre = z for fma, z_post = z for mul/div)

NaN gives the table's NaN value; keys from the table's wrap key on give its wrap value.

Why this is exact for all 2^32 inputs: each step of the float formula (multiply or divide by a
positive constant, round to float32, add a constant, round to an integer, clamp) is monotone
non-decreasing in x, and so is each step here; both are step functions of the order-preserving
key of the bits. The threshold table of the same op (integer/lut.py) lists every key where the
engine's output steps. Two monotone step functions that agree on both sides of every step of one
of them, and at both ends of the domain, agree everywhere: on each interval between consecutive
steps the table is constant, and a monotone function equal to that constant at both ends of the
interval is that constant inside it. `check_boundaries` evaluates exactly those keys.
"""
from __future__ import annotations

import numpy as np

from .fixedpoint import float32_keys, key_to_float32

KEY_LO = int(float32_keys(np.array([np.float32(-np.inf)]).view(np.int32))[0])
KEY_HI = int(float32_keys(np.array([np.float32(np.inf)]).view(np.int32))[0])
DIV_BITS = 38        # quotient bits of the division: A = mx * 2^38 / mc >= 2^37
HUGE_BITS = 40       # |x*c| >= 2^40 saturates
MAX_PRE_ZERO_POINT = 1 << 12  # z_pre * 2^F stays below 2^62 (F <= 50)


def float32_bits(v) -> int:
    """The int32 bit pattern of float32(v) as a Python int (two's complement)."""
    return int(np.array([v], np.float32).view(np.int32)[0])


def formula_of(op: str, attrs: dict):
    """The float formula of a quantize node as a dict (mode, const_bits, zero points, range), or None
    when the op is not one of the formulas above (then only the threshold table is exact)."""
    from ..numerics.quantize import QRANGE

    dtype = attrs.get("dtype", "uint8")
    if dtype not in ("uint8", "int8") or attrs.get("axis") is not None:
        return None
    scale, zp = attrs.get("scale"), attrs.get("zero_point")
    if np.asarray(scale).size != 1 or np.asarray(zp).size != 1:
        return None
    scale = float(np.asarray(scale).reshape(-1)[0])
    zp = int(np.asarray(zp).reshape(-1)[0])
    lo, hi = QRANGE[dtype]
    if op == "quantize":
        f = {"mode": "fma", "const_bits": float32_bits(np.float32(1.0) / np.float32(scale)), "zp_pre": zp,
             "zp_post": 0, "qmin": lo, "qmax": hi}
    elif op == "qdq_quantize":
        lo, hi = int(attrs.get("quant_min", lo)), int(attrs.get("quant_max", hi))
        if attrs.get("mode", "mul") == "div":
            f = {"mode": "div", "const_bits": float32_bits(scale), "zp_pre": 0, "zp_post": zp, "qmin": lo, "qmax": hi}
        else:
            f = {"mode": "mul", "const_bits": float32_bits(1.0 / scale), "zp_pre": 0, "zp_post": zp,
                 "qmin": lo, "qmax": hi}
    elif op == "onnx_quantize":
        f = {"mode": "div", "const_bits": float32_bits(scale), "zp_pre": 0, "zp_post": zp, "qmin": lo, "qmax": hi}
    else:
        return None
    c = f["const_bits"]
    if c <= 0 or c >= 0x7F800000 or abs(f["zp_pre"]) > MAX_PRE_ZERO_POINT:
        return None  # a non-positive, zero, infinite or NaN constant, or a zero point too wide
    return f


def unpack(magnitude: int) -> tuple:
    """(mantissa, exponent) of a finite positive float32 bit pattern: value = mantissa * 2^exponent."""
    e, m = (magnitude >> 23) & 0xFF, magnitude & 0x7FFFFF
    return (m, -149) if e == 0 else (m | 0x800000, e - 150)


def normalise(m: int, e: int) -> tuple:
    """(m * 2^j, e - j) with the mantissa's top bit at bit 23 (subnormals)."""
    while m < 0x800000:
        m, e = m << 1, e - 1
    return m, e


def round_shift_even(v: int, n: int, sticky: bool = False) -> int:
    """v / 2^n (v >= 0, n >= 1) rounded half to even; `sticky`: nonzero bits below v's last one."""
    q, rem, half = v >> n, v & ((1 << n) - 1), 1 << (n - 1)
    return q + int(rem > half or (rem == half and (sticky or q & 1 == 1)))


def quantize_bits(bits: int, f: dict, nan_value: int, wrap_key=None, wrap_value=None) -> int:
    """The quantized value of the float32 with int32 bit pattern `bits` (module docstring)."""
    bits = ((int(bits) + (1 << 31)) % (1 << 32)) - (1 << 31)
    magnitude = bits & 0x7FFFFFFF
    if magnitude > 0x7F800000:
        return nan_value
    key = bits if bits >= 0 else -magnitude - 1
    if wrap_key is not None and key >= wrap_key:
        return wrap_value
    negative = bits < 0
    sticky = False
    if magnitude == 0:
        a, e = 0, 0
    elif magnitude == 0x7F800000:
        a, e = 1, HUGE_BITS
    else:
        mx, ex = unpack(magnitude)
        mc, ec = unpack(f["const_bits"])
        if f["mode"] == "div":
            mx, ex = normalise(mx, ex)
            mc, ec = normalise(mc, ec)
            a, sticky, e = (mx << DIV_BITS) // mc, (mx << DIV_BITS) % mc != 0, ex - ec - DIV_BITS
        else:
            a, e = mx * mc, ex + ec
    length = a.bit_length()
    if a == 0 or length + e <= -2:
        r = f["zp_pre"]
    elif length + e > HUGE_BITS:
        r = -(1 << HUGE_BITS) if negative else (1 << HUGE_BITS)
    else:
        frac = max(0, -e)
        u = a << max(e, 0)
        s = (-u if negative else u) + (f["zp_pre"] << frac)
        mag = abs(s)
        k = max(0, mag.bit_length() - 24)
        m = round_shift_even(mag, k, sticky) if k else mag
        shift = frac - k
        if shift <= 0:
            r = m << -shift
        elif shift > 25:
            r = 0
        else:
            r = round_shift_even(m, shift)
        r = -r if s < 0 else r
    return min(max(r + f["zp_post"], f["qmin"]), f["qmax"])


def boundary_keys(thresholds, wrap_key=None) -> np.ndarray:
    """Both sides of every step of the table, both ends of the domain, and +-0 (sorted, unique)."""
    t = np.asarray(thresholds, np.int64).reshape(-1)
    t = t[(t > KEY_LO) & (t <= KEY_HI)]
    edges = [t - 1, t, [KEY_LO, KEY_HI, -1, 0]]
    if wrap_key is not None and KEY_LO < wrap_key <= KEY_HI:
        edges.append([wrap_key - 1, wrap_key])
    return np.unique(np.concatenate([np.asarray(x, np.int64) for x in edges]))


def check_boundaries(f: dict, thresholds, out_min: int, nan_value: int, wrap_key=None, wrap_value=None) -> int:
    """Mismatches of quantize_bits against the threshold table (ops/quantize_thr.py) at every
    boundary key and at NaN: 0 proves them equal for all 2^32 inputs (module docstring)."""
    from ..ops.quantize_thr import quantize_thr

    keys = boundary_keys(thresholds, wrap_key)
    x = np.concatenate([key_to_float32(keys), np.array([np.nan], np.float32)])
    want = quantize_thr(x, thresholds=thresholds, out_min=out_min, nan_value=nan_value, dtype="int64",
                        wrap_key=wrap_key, wrap_value=wrap_value)
    bits = x.view(np.int32).tolist()
    got = [quantize_bits(b, f, nan_value, wrap_key, wrap_value) for b in bits]
    return int(sum(int(g) != int(w) for g, w in zip(got, want.tolist())))
