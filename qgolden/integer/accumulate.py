"""Accumulator analysis for linear / conv: the worst-case interval per output channel, the bits a
hardware accumulator needs, and where the engine itself saturates (int16 pair sums).

For input values x in [xlo, xhi] (zx included: conv padding reads zx), the exact accumulator
Σ_k (x_k - zx)(w_k - zw) of channel c lies in

    [Σ_k min((xlo-zx)(w_k-zw), (xhi-zx)(w_k-zw)),  Σ_k max(...)]

and each end is reached by an input (every x_k at an end of its range), so the interval is tight.
Where the engine sums u8*s8 products in saturating int16 pairs (FBGEMM / oneDNN jit on CPUs
without VNNI, FBGEMM's depthwise kernel everywhere) each pair P = x0 w0 + x1 w1 is replaced by
sat16(P), which lies between 0 and P: the accumulator stays inside the same interval (with zw = 0;
for zw != 0 the interval is widened to cover the separately-formed offset terms).
"""
from __future__ import annotations

import numpy as np

from ..numerics.profile import conv_backend, gemm_saturates, kernel_profile, linear_backend


def bits_for(lo, hi) -> int:
    """Signed two's-complement bits holding every integer of [lo, hi]."""
    lo, hi = int(lo), int(hi)
    b = 1
    while not (-(1 << (b - 1)) <= lo and hi <= (1 << (b - 1)) - 1):
        b += 1
    return b


def weight_rows(node):
    """Weights as [O, K] int64 and the per-row zero point [O]."""
    w = np.asarray(node.consts["weight"]).astype(np.int64)
    o = w.shape[0]
    zw = np.broadcast_to(np.asarray(node.consts["weight_zero_point"], np.int64).reshape(-1), (o,))
    return w.reshape(o, -1), zw


def interval(node, xlo, xhi, saturating=False):
    """Worst-case [lo, hi] int64 per output channel of a linear / conv node."""
    w, zw = weight_rows(node)
    zx = int(node.attrs["x_zero_point"])
    xlo, xhi = min(xlo, zx), max(xhi, zx)
    d = w - zw[:, None]
    if not saturating or not np.any(zw != 0):
        a, b = (xlo - zx) * d, (xhi - zx) * d
        return np.minimum(a, b).sum(axis=1), np.maximum(a, b).sum(axis=1)
    k = w.shape[1]
    s_lo = np.minimum(xlo * w, xhi * w).sum(axis=1)
    s_hi = np.maximum(xlo * w, xhi * w).sum(axis=1)
    base = -zx * w.sum(axis=1) + k * zx * zw
    r1, r2 = -zw * k * xlo, -zw * k * xhi
    return s_lo + base + np.minimum(r1, r2), s_hi + base + np.maximum(r1, r2)


def saturation(node, profile, xhi):
    """(kernel saturates: bool, worst pair |x0 w0 + x1 w1| of the engine's pairing, pairs that can
    leave int16) for a linear / conv node with inputs up to xhi."""
    from ..ops.conv import _pair, fbgemm_conv_path, onednn_conv_impl

    profile = kernel_profile(profile)
    w = np.asarray(node.consts["weight"]).astype(np.int64)
    zw = np.asarray(node.consts["weight_zero_point"]).reshape(-1)
    if node.op in ("linear", "linear_acc"):
        backend = linear_backend(profile)
        sat = backend in ("fbgemm", "onednn") and gemm_saturates(profile)
        rows = w
        path = backend
    else:
        g = int(node.attrs["groups"])
        backend = conv_backend(profile, g, not np.any(zw != 0))
        w4 = w if w.ndim == 4 else w[:, :, None, :]
        o, cpg, kh, kw = w4.shape
        conv1d = w.ndim == 3
        st = (1, _pair(node.attrs["stride"], 1)[0]) if conv1d else _pair(node.attrs["stride"])
        pd = (0, _pair(node.attrs["padding"], 1)[0]) if conv1d else _pair(node.attrs["padding"])
        dl = (1, _pair(node.attrs["dilation"], 1)[0]) if conv1d else _pair(node.attrs["dilation"])
        if backend == "fbgemm":
            path = fbgemm_conv_path(cpg * g, o, g, (kh, kw), st, pd, dl, conv1d)
            sat = path == "depthwise" or gemm_saturates(profile)
            rows = w4.reshape(o, -1) if path == "depthwise" else w4.transpose(0, 2, 3, 1).reshape(o, -1)
        elif backend == "onednn":
            path = onednn_conv_impl(cpg, o // g, g)
            sat = path == "jit" and gemm_saturates(profile)
            r = w4.transpose(0, 2, 3, 1)  # [O, KH, KW, Cg]: pairs of channels within a tap
            if cpg % 2:
                r = np.concatenate([r, np.zeros(r.shape[:-1] + (1,), np.int64)], axis=-1)
            rows = r.reshape(o, -1)
        else:
            path, sat, rows = backend, False, w4.reshape(o, -1)
    if rows.shape[1] % 2:
        rows = np.concatenate([rows, np.zeros((rows.shape[0], 1), np.int64)], axis=1)
    w0, w1 = rows[:, 0::2], rows[:, 1::2]
    pos = xhi * (np.maximum(w0, 0) + np.maximum(w1, 0))
    neg = xhi * (np.maximum(-w0, 0) + np.maximum(-w1, 0))
    worst = int(max(pos.max(initial=0), neg.max(initial=0)))
    risky = int(((pos > 32767) | (neg > 32768)).sum())
    return {"kernel": path, "saturates": bool(sat), "worst_pair": worst,
            "pairs_can_saturate": risky if sat else 0}


def analyse(node, profile, xlo, xhi, observed=None):
    """Per-layer accumulator report: interval per channel, bits needed, saturation, observed range."""
    saturating = False
    s = saturation(node, profile, xhi)
    saturating = s["saturates"]
    lo, hi = interval(node, xlo, xhi, saturating)
    rep = {"input_range": [int(xlo), int(xhi)], "lo": lo, "hi": hi,
           "bits_needed": bits_for(lo.min(), hi.max()), **s}
    if observed is not None and np.size(observed):
        obs = np.asarray(observed).reshape(-1, lo.shape[0])
        rep["observed_lo"], rep["observed_hi"] = obs.min(axis=0), obs.max(axis=0)
        rep["observed_bits"] = bits_for(obs.min(), obs.max())
    if saturating and s["pairs_can_saturate"]:
        rep["note"] = ("the engine sums u8*s8 product pairs in saturating int16 here "
                       f"({s['pairs_can_saturate']} weight pairs can exceed int16 with inputs up to {xhi}); "
                       "the golden model and the integer-only program reproduce that saturation")
    return rep
