"""Near-ties: values just before rounding that lie within a relative 1e-4 of a .5 boundary.

Such a value rounds one way in the engine's float32 arithmetic and may round the other way
in someone's float64 hand calculation (the forum thread: float32 0.9 is 0.89999998, so
0.9·255 is 229.49998 → 229 in PyTorch, while float64 NumPy gets 229.5 → 230). The explainer
marks them and prints what float64 arithmetic gives (`float64_pre_round`).
"""
from __future__ import annotations

import numpy as np

NEAR_TIE_REL = 1e-4  # relative distance to the .5 boundary that counts as a near-tie


def half_boundary(v: float) -> float:
    """The .5 boundary nearest to v: floor(v) + 0.5."""
    return float(np.floor(v)) + 0.5


def is_near_tie(v, rel: float = NEAR_TIE_REL) -> bool:
    """True when v is finite, not exactly on a .5 boundary b, and |v − b| ≤ rel·|b|
    (an exact .5 is a tie, marked as such)."""
    v = float(v)
    if not np.isfinite(v):
        return False
    b = half_boundary(v)
    return v != b and abs(v - b) <= rel * abs(b)


def near_tie_mask(values, rel: float = NEAR_TIE_REL):
    """is_near_tie over an array (a bool array of the same shape), in float64 like is_near_tie."""
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        b = np.floor(v) + 0.5
        return np.isfinite(v) & (v != b) & (np.abs(v - b) <= rel * np.abs(b))


def tie_mask(values):
    """Exact .5 ties (v − floor(v) == 0.5) over an array, as the explainer marks them."""
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.isfinite(v) & (v - np.floor(v) == 0.5)


def decimal_float64(x) -> float:
    """The float64 of the shortest decimal that reads back as float32 x (float32 0.89999998 → 0.9):
    what a user typed and what float64 NumPy computes with."""
    return float(np.format_float_positional(np.float32(x), unique=True))


def typed_reciprocal(scale) -> float:
    """1/s as a user would write it for a float32 scale s: the integer n when f32(1/n) == s (a scale
    set as 1/255 is stored as f32(1/255), whose float reciprocal is 254.99998, not 255), otherwise
    1/(the shortest decimal of s)."""
    s32 = np.float32(scale)
    n = round(1.0 / float(s32))
    if n >= 1 and np.float32(1.0 / n) == s32:
        return float(n)
    return 1.0 / decimal_float64(s32)


def quantize_float64(x, scale, zero_point) -> float:
    """x/s + z in float64 with x and s as typed (decimal_float64, typed_reciprocal): a NumPy hand
    calculation of ops/quantize.py's f32(x·f32(1/s) + z)."""
    return decimal_float64(x) * typed_reciprocal(scale) + float(zero_point)


def gemm_float64(acc, bias, x_scale, w_scale, out_scale, plus_zero_point=0) -> float:
    """(acc + bias/(s_x·s_w))·(s_x·s_w/s_y) in float64 (+ z_y for oneDNN, whose pre-round value
    includes it): the real-number requantization of a float64 hand calculation."""
    sxw = float(x_scale) * float(w_scale)
    return (float(acc) + float(bias) / sxw) * (sxw / float(out_scale)) + float(plus_zero_point)


def float64_pre_round(node, trace, env, index, backend=None):
    """The pre-round value of node's element at trace index `index` in float64 arithmetic, or None
    for ops without a float64 counterpart here (quantize, and linear/conv run by `backend` fbgemm,
    qnnpack or onednn)."""
    a, t = node.attrs, trace.get(node.name) or {}
    if node.op == "quantize" and a.get("axis") is None and "scale" in a:
        x = np.asarray(env[node.inputs[0]])
        if x.shape != np.shape(t.get("pre_round")):
            return None
        return quantize_float64(x[index], a["scale"], a["zero_point"])
    if node.op in ("linear", "conv") and "acc" in t and "pre_round" in t:
        if backend not in ("fbgemm", "qnnpack", "onednn"):
            return None
        pre, acc_all = np.asarray(t["pre_round"]), np.asarray(t["acc_exact"] if "acc_exact" in t else t["acc"])
        n_out = np.shape(node.consts["weight"])[0]
        # requantization traces keep the output channel last ([..., O]); other layouts: no float64 here
        if pre.shape != acc_all.shape or pre.ndim < 1 or pre.shape[-1] != n_out or len(index) != pre.ndim:
            return None
        ch = index[-1]
        ws = np.asarray(node.consts["weight_scale"]).reshape(-1)
        bias = node.consts.get("bias")
        b = float(np.asarray(bias).reshape(-1)[ch]) if bias is not None else 0.0
        acc = acc_all[index]
        zy = a["out_zero_point"] if backend == "onednn" else 0
        return gemm_float64(acc, b, a["x_scale"], ws[ch if ws.size > 1 else 0], a["out_scale"], zy)
    return None


def rne(v: float) -> int:
    """Round half to even (numpy.round), as a Python int."""
    return int(np.round(v))
