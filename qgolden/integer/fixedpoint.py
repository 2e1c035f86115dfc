"""Integer-only arithmetic shared by the integer ops (no float anywhere).

    requantize:  v = (acc + B) * M0 + F            (int64; B the int bias constant in accumulator
                                                    units, F in [0, M0) its fraction in product units)
                 y = round_shift(v, n, rounding)   (divide by 2**n, rounding stated below)
                 out = clamp(y + zo, out_min, out_max)
    thresholds:  out = #{k : acc >= t[k]}          (t sorted; exact by construction)

Rounding of v / 2**n (n >= 1, h = 2**(n-1)):
    half_up    floor((v + h) / 2**n)                  ties toward +inf
    half_even  ties to the even neighbour
    half_away  sign(v) * floor((|v| + h) / 2**n)      ties away from zero
    tflite     TFLite MultiplyByQuantizedMultiplier: x = acc + B (F = 0),
               SaturatingRoundingDoublingHighMul(x, M0) with M0 < 2**(b-1) read as Q(b-1)
               (ties away from zero), then RoundingDivideByPOT(., n - (b-1)) (ties away)
"""
from __future__ import annotations

import numpy as np

ROUNDINGS = ("half_up", "half_even", "half_away", "tflite")


def round_shift(v, n, rounding="half_up"):
    """v / 2**n rounded as stated (v int64, n int >= 1, both broadcastable)."""
    v = np.asarray(v, dtype=np.int64)
    n = np.asarray(n, dtype=np.int64)
    one = np.int64(1)
    h = one << (n - 1)
    if rounding == "half_up":
        return (v + h) >> n
    if rounding == "half_even":
        q = v >> n
        r = v - (q << n)
        return q + ((r > h) | ((r == h) & ((q & 1) == 1)))
    if rounding == "half_away":
        a = np.abs(v)
        return np.sign(v) * ((a + h) >> n)
    raise ValueError(f"unknown rounding {rounding!r}; choose one of {', '.join(ROUNDINGS)}")


DIV_ROUNDINGS = ("half_up", "half_even", "half_away")


def round_div(x, d, code):
    """x / d (d > 0) rounded to nearest, ties by DIV_ROUNDINGS[code] (0 up, 1 even, 2 away)."""
    x = np.asarray(x, dtype=np.int64)
    d = np.asarray(d, dtype=np.int64)
    code = np.asarray(code, dtype=np.int64)
    q = np.floor_divide(x, d)
    r2 = 2 * (x - q * d)
    tie = r2 == d
    up = (r2 > d) | (tie & ((code == 0) | ((code == 1) & ((q & 1) == 1)) | ((code == 2) & (q >= 0))))
    return q + up


def tflite_multiply(x, m0, n, bits=32):
    """TFLite MultiplyByQuantizedMultiplier for a right shift: SRDHM with a Q(bits-1) multiplier,
    then RoundingDivideByPOT by n - (bits-1). x, m0 int64; exact in int64 for |x| < 2**31."""
    x = np.asarray(x, dtype=np.int64)
    m0 = np.asarray(m0, dtype=np.int64)
    n = np.asarray(n, dtype=np.int64)
    q = bits - 1
    ab = x * m0
    nudge = np.where(ab >= 0, np.int64(1) << (q - 1), 1 - (np.int64(1) << (q - 1)))
    s = ab + nudge
    hi = np.where(s >= 0, s >> q, -((-s) >> q))  # C division truncates toward zero
    e = n - q
    mask = (np.int64(1) << e) - 1
    rem = hi & mask
    thr = (mask >> 1) + (hi < 0)
    return (hi >> e) + (rem > thr)


def requantize_values(acc, m0, n, b, f, zo, out_min, out_max, rounding="half_up", bits=32):
    """out = clamp(round_shift((acc + B)*M0 + F, n) + zo, out_min, out_max), all int64 (broadcast)."""
    acc = np.asarray(acc, dtype=np.int64)
    x = acc + np.asarray(b, dtype=np.int64)
    if rounding == "tflite":
        y = tflite_multiply(x, m0, n, bits)
    else:
        y = round_shift(x * np.asarray(m0, dtype=np.int64) + np.asarray(f, dtype=np.int64), n, rounding)
    return np.clip(y + np.asarray(zo, dtype=np.int64), out_min, out_max)


def threshold_values(acc, thresholds, cls=None):
    """out = #{k : acc >= thresholds[c, k]} with c = cls (int array broadcastable to acc; None: one
    row). thresholds int64 [C, L] sorted per row. One searchsorted over rows offset by 2**40."""
    acc = np.asarray(acc, dtype=np.int64)
    t = np.asarray(thresholds, dtype=np.int64)
    if t.ndim == 1:
        t = t[None, :]
    rows, L = t.shape
    if cls is None:
        cls = np.zeros((), np.int64)
    cls = np.broadcast_to(np.asarray(cls, dtype=np.int64), acc.shape)
    off = np.int64(1) << 40
    flat = (t + (np.arange(rows, dtype=np.int64) * off)[:, None]).reshape(-1)
    key = acc + cls * off
    return np.searchsorted(flat, key, side="right") - cls * L


def float32_keys(bits):
    """Order-preserving int64 key of float32 bit patterns (int32 view): -0.0 -> -1, +0.0 -> 0."""
    b = np.asarray(bits, dtype=np.int64)
    return np.where(b < 0, -(b & 0x7FFFFFFF) - 1, b)


def key_to_float32(key):
    """Inverse of float32_keys (used when building tables, never in a program)."""
    k = np.asarray(key, dtype=np.int64)
    b = np.where(k < 0, (-(k + 1)) | 0x80000000, k)
    return b.astype(np.uint32).view(np.float32)


def is_nan_bits(bits):
    return (np.asarray(bits, dtype=np.int64) & 0x7FFFFFFF) > 0x7F800000
