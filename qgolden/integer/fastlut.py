"""The integer-only program's lookups at full speed: the same integers as their reference
definitions (ops/lut.py, ops/quantize_thr.py), with narrow index arithmetic, tables cast once per
program, and threshold counts from a bucket table. No float operation anywhere.

  byte_offsets(q, in_min) = q - in_min as uint8, for 8-bit q whose lowest value is in_min
      (uint8: q itself; int8: its byte with the top bit flipped, q + 128)
  pair_index(a, b, in_min) = (a - in_min)*256 + (b - in_min) as uint16 (the lut2 index)
  float32 keys (fixedpoint.float32_keys) in int32: key = bits ^ ((bits >> 31) & 0x7fffffff)
      (bits >= 0: bits; bits < 0: -(bits & 0x7fffffff) - 1 = ~(bits & 0x7fffffff))
  count of sorted thresholds t <= key (quantize_thr): bucket = key >> 16; below[bucket] =
      #{t < bucket << 16}; then j += [key >= t[j]] as many times as the most thresholds one bucket
      holds (each step adds the next threshold of the key's bucket when it is <= key).
"""
from __future__ import annotations

import numpy as np

from .blocked import cached_for

BUCKET_SHIFT = 16
# a bucket holding more thresholds than this: the count is taken by searchsorted instead
MAX_BUCKET_STEPS = 8
_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1


def byte_offsets(q, in_min):
    """q - in_min as uint8 (a view or one pass), or None when q is not 8-bit with lowest value in_min."""
    q = np.asarray(q)
    if q.dtype == np.uint8 and int(in_min) == 0:
        return q
    if q.dtype == np.int8 and int(in_min) == -128:
        return q.view(np.uint8) ^ np.uint8(0x80)
    return None


def pair_index(a, b, in_min):
    """(a - in_min)*256 + (b - in_min) as uint16 for 8-bit a, b (b broadcast to a), or None."""
    ua, ub = byte_offsets(a, in_min), byte_offsets(b, in_min)
    if ua is None or ub is None:
        return None
    i = ua.astype(np.uint16)
    i <<= 8
    i |= ub
    return i


def table_as(table, dtype):
    """The table cast to the op's output dtype (as the reference casts its gathered values), once
    per table array."""
    return cached_for([table], ("as", str(np.dtype(dtype))), lambda: np.asarray(table).astype(dtype))


def float32_keys32(bits):
    """fixedpoint.float32_keys in int32 (the keys of float32 bit patterns all fit)."""
    bits = np.asarray(bits, np.int32)
    return bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))


def bucket_counts_plan(thresholds):
    """(below int32 [65536], ends int32 [len + 1], steps) for sorted int64 thresholds, or None when
    they are not sorted or one bucket holds more than MAX_BUCKET_STEPS of them. Thresholds are
    clamped into int32: every non-NaN key lies in [-2**31, 0x7f800000], so a threshold above
    2**31 - 1 is reached by no key and one below -2**31 by every key, as after clamping (the NaN
    keys are replaced by the caller)."""
    t = np.asarray(thresholds, np.int64).reshape(-1)
    if t.size and np.any(np.diff(t) < 0):
        return None
    t32 = np.clip(t, _I32_MIN, _I32_MAX).astype(np.int32)
    starts = (np.arange(1 << (32 - BUCKET_SHIFT), dtype=np.int64) - (1 << (31 - BUCKET_SHIFT))) << BUCKET_SHIFT
    below = np.searchsorted(t32.astype(np.int64), starts, side="left").astype(np.int32)
    per_bucket = np.diff(np.append(below, t32.size))
    steps = int(per_bucket.max(initial=0))
    if steps > MAX_BUCKET_STEPS:
        return None
    ends = np.append(t32, np.int32(_I32_MAX))  # the sentinel: no non-NaN key reaches it
    return below, ends, steps


def count_thresholds32(key, plan):
    """#{k : key >= t[k]} for int32 keys (float32_keys32) and bucket_counts_plan(t); NaN keys
    give some count (the caller replaces them)."""
    below, ends, steps = plan
    j = np.take(below, (key >> BUCKET_SHIFT).astype(np.intp) + (1 << (31 - BUCKET_SHIFT)))
    for _ in range(steps):
        j += key >= np.take(ends, j, mode="clip")  # clip: only the NaN key 0x7fffffff passes the sentinel
    return j


def cached_bucket_plan(thresholds):
    return cached_for([thresholds], ("buckets",), lambda: bucket_counts_plan(thresholds))
