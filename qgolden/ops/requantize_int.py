"""Integer-only requantization of an accumulator, per channel (no float anywhere).

requantize_int, channel c = index along `axis`:
    multiplier channels:  out = clamp(round_shift((acc + bias[c]) * multiplier[c] + frac[c], shift[c])
                                      + out_zero_point, out_min, out_max)
                          round_shift: divide by 2**shift with `rounding` (integer/fixedpoint.py)
    binade channels (use_segments[c]): the same with bias/frac taken from seg_bias/seg_frac[c, s],
                          s = #{i : acc >= seg_bounds[c, i]} (the power-of-two segment of acc; the
                          engines round their float bias on a grid that changes per binade)
    table channels (use_table[c]): out = out_min + #{k : acc >= thresholds[c, k]}
threshold_table: every channel by its thresholds.
int64 arithmetic throughout; the result is cast to `dtype`. Without a trace, the same integers come
from integer/blocked.py (per-channel constants prepared once, row blocks on every core).
"""
from __future__ import annotations

import numpy as np

from ..integer.blocked import cached_prepare, requantize_rows
from ..integer.requant import apply_plan
from .spec import OpSpec


def _cls(acc, axis):
    shape = [1] * acc.ndim
    shape[axis] = acc.shape[axis]
    return np.arange(acc.shape[axis], dtype=np.int64).reshape(shape)


def _channels_last(acc, p, axis, dtype):
    """requantize_int by integer/blocked.py (the same integers, channel last, in row blocks on
    every core); the result keeps the accumulator's memory order (a conv's NHWC memory behind its
    NCHW view). None where the fast path does not apply."""
    acc = np.asarray(acc)
    if acc.ndim == 0 or acc.dtype.kind not in "iu" or np.dtype(dtype).kind not in "iub":
        return None
    moved = np.moveaxis(acc, axis, -1)
    k = cached_prepare(p, moved.shape[-1])
    if k is None:
        return None
    out = requantize_rows(np.ascontiguousarray(moved).reshape(-1, moved.shape[-1]), k, dtype)
    return None if out is None else np.moveaxis(out.reshape(moved.shape), -1, axis)


def requantize_int(acc, *, multiplier, shift, bias, frac, use_table, thresholds, out_zero_point,
                   out_min=0, out_max=255, rounding="half_up", bits=32, axis=-1, dtype="uint8",
                   use_segments=None, seg_bounds=None, seg_bias=None, seg_frac=None,
                   profile=None, trace=None) -> np.ndarray:
    p = dict(multiplier=multiplier, shift=shift, bias=bias, frac=frac, use_table=use_table,
             thresholds=thresholds, out_zero_point=out_zero_point, out_min=out_min, out_max=out_max,
             rounding=rounding, bits=bits, use_segments=use_segments, seg_bounds=seg_bounds,
             seg_bias=seg_bias, seg_frac=seg_frac)
    out = None if trace is not None else _channels_last(acc, p, axis, dtype)
    if out is None:  # the reference: per-element parameters (a trace takes this path)
        acc = np.asarray(acc, dtype=np.int64)
        out = apply_plan(acc, p, _cls(acc, axis)).astype(dtype)
    if trace is not None:
        trace.update(acc=acc, out=out)
    return out


def threshold_table(acc, *, thresholds, out_min=0, axis=-1, dtype="uint8", profile=None, trace=None):
    from ..integer.fixedpoint import threshold_values

    acc = np.asarray(acc, dtype=np.int64)
    out = (threshold_values(acc, thresholds, _cls(acc, axis)) + int(out_min)).astype(dtype)
    if trace is not None:
        trace.update(acc=acc, out=out)
    return out


SPECS = [
    OpSpec("requantize_int", "requantize_int", integer="integer"),
    OpSpec("threshold_table", "threshold_table", integer="integer"),
]
