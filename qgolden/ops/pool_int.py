"""Integer-only average pools and mean: exact integer window sums, then per-class integer
requantization (the engine's rounding division, as multiplier/shift or thresholds).

    S   = Σ over the window of (q - zp)     (sum_zp)  or of q (raw; ATen NCHW adaptive pool, mean)
          (sums from the engine's own helpers: avg_pool.window_sum, adaptive_avg_pool._box_sums)
    out = requantize_int(S) with the parameters of class cls[c, y, x], or the exact rounding
          division round_div(S + div_offset, divisor, tie rule) + div_zero_point
          (a class = one divisor and one kernel path: vector channels / scalar channel tail)
    then torch's NHWC-written-as-NCHW layout quirk where the engine has it (nhwc_quirk).
kind: avg (kH, kW, sH, sW, pH, pW, oH, oW) | adaptive (oH, oW, blocks) | mean (dims, keepdim).
"""
from __future__ import annotations

import numpy as np

from ..integer.requant import apply_plan
from .adaptive_avg_pool import _box_sums, adaptive_bins
from .avg_pool import window_sum
from .max_pool import nhwc_written_as_nchw
from .spec import OpSpec


def pool_sums(x, kind, zero_point, sum_zp, geom):
    """The integer sums S of one pool node (x 4-D, or any rank for mean)."""
    q = np.asarray(x).astype(np.int64)
    d = q - int(zero_point) if sum_zp else q
    if kind == "avg":
        kH, kW, sH, sW, pH, pW, oH, oW = (geom[k] for k in ("kH", "kW", "sH", "sW", "pH", "pW", "oH", "oW"))
        return window_sum(d, kH, kW, sH, sW, pH, pW, oH, oW)
    if kind == "adaptive":
        N, C, H, W = d.shape
        oH, oW = geom["oH"], geom["oW"]
        if geom.get("blocks"):
            return d.reshape(N, C, oH, H // oH, oW, W // oW).sum(axis=(3, 5))
        hs, he = adaptive_bins(H, oH)
        ws, we = adaptive_bins(W, oW)
        return _box_sums(d, hs, he, ws, we)
    return d.sum(axis=tuple(geom["dims"]), keepdims=bool(geom["keepdim"]))


def pool_int(x, *, kind, zero_point, sum_zp, geom, cls, multiplier, shift, bias, frac, use_table,
             thresholds, divisor=None, div_offset=None, div_rounding=None, div_zero_point=None, out_zero_point=0, out_min=0, out_max=255, rounding="half_up", bits=32,
             nhwc_quirk=False, unsqueezed=False, dtype="uint8", profile=None, trace=None):
    x = np.asarray(x)
    if unsqueezed:
        x = x[..., None, :]
    S = pool_sums(x, kind, zero_point, sum_zp, geom)
    p = dict(multiplier=multiplier, shift=shift, bias=bias, frac=frac, use_table=use_table,
             thresholds=thresholds, out_zero_point=out_zero_point, out_min=out_min, out_max=out_max,
             rounding=rounding, bits=bits, divisor=divisor, div_offset=div_offset, div_rounding=div_rounding,
             div_zero_point=div_zero_point)
    c = np.asarray(cls, dtype=np.int64)
    if kind == "mean":
        c = c.reshape(())
    out = apply_plan(S, p, c).astype(dtype)
    if nhwc_quirk:
        out = nhwc_written_as_nchw(out, x.shape[-2], x.shape[-1])
    if unsqueezed:
        out = out[..., 0, :]
    if trace is not None:
        trace.update(sum=S, out=out)
    return out


SPECS = [
    OpSpec("pool_int", "pool_int", integer="integer"),
]
