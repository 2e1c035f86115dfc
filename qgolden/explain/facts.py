"""Per-layer facts for the HTML summary and pictures: ranges, SQNR, accumulators, the staircase.

Every number is read from the engine's trace and tensors (over the whole input batch) or from the
program's parameters; the only arithmetic here is statistics of those numbers (min, max, counts,
SQNR) and, for linear/conv, the layer's float result from its dequantized integer inputs
(`dequantized_gemm`), the reference the SQNR is measured against when no float model output is given.
"""
from __future__ import annotations

import numpy as np

from ..integer.accumulate import bits_for
from .doc import LayerFacts, Staircase
from .integer_extra import worst_case_accumulator
from .near_tie import near_tie_mask, tie_mask

SHOWN_TIES = 12  # near-ties / ties drawn on one staircase
SHOWN_POINTS = 800  # (accumulator, output) pairs kept for one staircase picture
SCALE_KEYS = ("x_scale", "a_scale", "b_scale", "scale", "out_scale")
ZERO_POINT_KEYS = ("x_zero_point", "a_zero_point", "b_zero_point", "zero_point", "out_zero_point")


def sqnr_db(reference, quantized):
    """10·log10(Σ ref² / Σ (ref − q)²) in float64 (inf when equal; None when both sums are 0)."""
    ref = np.asarray(reference, dtype=np.float64).reshape(-1)
    q = np.asarray(quantized, dtype=np.float64).reshape(-1)
    signal, noise = float(np.sum(ref * ref)), float(np.sum((ref - q) ** 2))
    if noise == 0.0:
        return None if signal == 0.0 else float("inf")
    if signal == 0.0:
        return float("-inf")
    return 10.0 * float(np.log10(signal / noise))


def dtype_range(dtype):
    """(qmin, qmax) of an integer numpy dtype, None for other dtypes."""
    dt = np.dtype(dtype)
    if dt.kind not in "iu":
        return None
    info = np.iinfo(dt)
    return int(info.min), int(info.max)


def channel_rows(node, arr):
    """An output-layout array of a linear ([..., O]) or conv ([N, O, spatial...]) node as rows [M, O],
    in the order the requantization traces keep (output channel last)."""
    a = np.asarray(arr)
    if node.op == "conv":
        a = np.moveaxis(a, 1, -1)
    return a.reshape(-1, a.shape[-1])


def gemm_rows(node, trace, env):
    """(acc as the kernel summed, exact acc, pre-round, output integers) as [M, O] rows, or None when
    the trace is laid out otherwise."""
    t = trace.get(node.name) or {}
    out = np.asarray(env[node.output])
    if out.ndim < 1 or "acc" not in t or "pre_round" not in t:
        return None
    o = out.shape[-1] if node.op == "linear" else out.shape[1]
    acc = np.asarray(t["acc"])
    exact = np.asarray(t.get("acc_exact", acc))
    pre = np.asarray(t["pre_round"])
    if not (acc.size == exact.size == pre.size == out.size and acc.shape[-1] == o and pre.shape[-1] == o):
        return None
    return (acc.reshape(-1, o).astype(np.int64), exact.reshape(-1, o).astype(np.int64), pre.reshape(-1, o),
            channel_rows(node, out).astype(np.int64))


def dequantized_gemm(node, exact_rows):
    """The layer in float64 from its dequantized integers: acc·s_x·s_w[c] + bias[c], then ReLU if
    fused (acc = Σ (x_q − z_x)(w_q − z_w), exact, so this is the float op on the dequantized input and
    weight), as rows [M, O]."""
    a, c = node.attrs, node.consts
    o = exact_rows.shape[1]
    sw = np.broadcast_to(np.asarray(c["weight_scale"], np.float64).reshape(-1), (o,))
    y = exact_rows.astype(np.float64) * float(a["x_scale"]) * sw
    if c.get("bias") is not None:
        y = y + np.asarray(c["bias"], np.float64).reshape(-1)
    if a.get("relu"):
        y = np.maximum(y, 0.0)
    return y


def float_line(acc, pre, relu, zero_point):
    """The float line at the ends of the sorted accumulators acc: the pre-round values (+ zero_point)
    are linear in acc except where a fused ReLU set them to its floor, so the line is the least-squares
    fit over the others (exact up to float32 rounding), or the end values when fewer than two
    accumulators remain."""
    p = pre + zero_point
    keep = p > p.min() if relu else np.ones(p.shape, bool)
    if np.unique(acc[keep]).size < 2:
        return [(int(acc[0]), float(p[0])), (int(acc[-1]), float(p[-1]))]
    slope, icept = np.polyfit(acc[keep].astype(np.float64), p[keep], 1)
    return [(int(acc[0]), float(slope * acc[0] + icept)), (int(acc[-1]), float(slope * acc[-1] + icept))]


def staircase(node, rows, backend, clamp, channel=None):
    """The requantization staircase of one channel (the first with a near-tie, else the widest
    observed accumulator span): its (acc, output integer) pairs, one per distinct accumulator,
    the float line (the pre-round value in output units: + z_y except on oneDNN, whose pre-round
    value holds it) at both ends, and that channel's near-ties and .5 ties."""
    acc, _, pre, out = rows
    near_all = near_tie_mask(pre)
    if channel is None:
        with_near = np.flatnonzero(near_all.any(axis=0))
        channel = int(with_near[0]) if with_near.size else int(np.argmax(acc.max(axis=0) - acc.min(axis=0)))
    a, p, o = acc[:, channel], pre[:, channel].astype(np.float64), out[:, channel]
    order = np.argsort(a, kind="stable")
    a, p, o = a[order], p[order], o[order]
    # one point per distinct accumulator; beyond SHOWN_POINTS, the output changes and an even sample
    first = np.unique(a, return_index=True)[1]
    if first.size > SHOWN_POINTS:
        change = np.flatnonzero(np.diff(o) != 0)
        spread = first[np.linspace(0, first.size - 1, SHOWN_POINTS // 2).astype(int)]
        first = np.unique(np.concatenate([[0], change, change + 1, spread, [a.size - 1]]))
    keep = first
    zy = 0.0 if backend == "onednn" else float(node.attrs["out_zero_point"])
    line = float_line(a, p, bool(node.attrs.get("relu")), zy)

    def marks(mask):
        idx = np.flatnonzero(mask)
        _, first = np.unique(a[idx], return_index=True)  # one mark per accumulator value
        return [(int(a[i]), int(o[i]), float(p[i])) for i in idx[first][:SHOWN_TIES]]

    st = Staircase(channel, [int(v) for v in a[keep]], [int(v) for v in o[keep]], line,
                   marks(near_tie_mask(p)), marks(tie_mask(p)), int(near_all.sum()), clamp)
    standard = standard_pipeline(node, channel, st.acc, clamp)
    if standard is not None:
        st.standard_out, st.standard_params = standard
    return st


def standard_pipeline(node, channel, acc, clamp):
    """(outputs, constants text) of the standard integer pipeline (TFLite / gemmlowp / CMSIS-NN:
    integer/standard.py) for one channel at accumulators `acc`: int32 bias round(b/(s_x·s_w)),
    QuantizeMultiplier(s_x·s_w/s_y), SRDHM + RoundingDivideByPOT, + z_y, clamp; None when the
    multiplier is not representable (>= 1)."""
    from ..integer.fixedpoint import requantize_values
    from ..integer.standard import natural_bias, quantize_multiplier

    a = node.attrs
    ws = np.asarray(node.consts["weight_scale"], np.float64).reshape(-1)
    w = float(ws[channel] if ws.size > 1 else ws[0])
    mq = quantize_multiplier(float(a["x_scale"]) * w / float(a["out_scale"]))
    if mq is None:
        return None
    bias = node.consts.get("bias")
    b = natural_bias(None if bias is None else np.asarray(bias).reshape(-1)[[channel if np.size(bias) > 1 else 0]],
                     a["x_scale"], w, 1)[0]
    out = requantize_values(np.asarray(acc, np.int64), mq[0], mq[1], int(b), 0, int(a["out_zero_point"]),
                            clamp[0], clamp[1], rounding="tflite")
    return [int(v) for v in out], f"M0 = {mq[0]}, shift = {mq[1]}, int32 bias = {int(b)}"


def _value_list(node, keys):
    out = []
    for k in keys:
        v = node.attrs.get(k)
        if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
            out.append((k, v))
    return out


def layer_facts(ctx, node, number, float_reference=None, backend=None) -> LayerFacts:
    """The LayerFacts of node (ctx: build.Ctx). float_reference: the float model's output of this
    layer (output layout and shape, checked by the caller), or None; backend: the linear/conv kernel family when the trace is a
    PyTorch engine's gemm trace (build.has_gemm_trace), else None."""
    program, env = ctx.program, ctx.env
    out = env[node.output]
    ins = []
    for ref in node.inputs:
        for r in (ref if isinstance(ref, list) else [ref]):
            if isinstance(r, str) and isinstance(env.get(r), np.ndarray):
                ins.append((r, tuple(env[r].shape)))
    is_arr = isinstance(out, np.ndarray)
    f = LayerFacts(node.name, number, node.name, node.op, ins, node.output,
                   tuple(out.shape) if is_arr else (), str(out.dtype) if is_arr else type(out).__name__)
    f.scales = _value_list(node, SCALE_KEYS)
    f.zero_points = _value_list(node, ZERO_POINT_KEYS)
    if backend is not None:
        f.scales.insert(1, ("weight_scale", np.asarray(node.consts["weight_scale"])))
        f.zero_points.insert(1, ("weight_zero_point", np.asarray(node.consts["weight_zero_point"])))
    info = program.tensors.get(node.output)
    if info is not None and info.quantized and not any(k in ("out_scale", "scale") for k, _ in f.scales):
        f.scales.append(("output scale", info.scale))
        f.zero_points.append(("output zero point", info.zero_point))
    if not is_arr:
        return f
    f.n_values = int(out.size)
    quantized = info is not None and info.quantized and dtype_range(out.dtype) is not None
    if quantized and out.size:
        lo, hi = dtype_range(out.dtype)
        f.out_avail = (lo, hi)
        f.out_used = (int(out.min()), int(out.max()))
        f.out_counts = np.bincount(out.reshape(-1).astype(np.int64) - lo, minlength=hi - lo + 1).tolist()
    got = out.astype(np.float64)
    if quantized:
        got = (got - float(info.zero_point)) * float(info.scale)
    if float_reference is not None:
        ref = np.asarray(float_reference)
        f.sqnr_db, f.sqnr_ref = sqnr_db(ref, got), "float model"
    rows = gemm_rows(node, ctx.trace, env) if backend is not None else None
    if rows is not None:
        exact = rows[1]
        if float_reference is None and quantized:
            f.sqnr_db, f.sqnr_ref = sqnr_db(dequantized_gemm(node, exact), channel_rows(node, got)), "dequantized inputs"
        f.acc_observed = (int(exact.min()), int(exact.max()))
        f.acc_bits = bits_for(*f.acc_observed)
        worst = worst_case_accumulator(node, program)
        if worst is not None:
            rep = worst[0]
            f.acc_worst = (int(rep["lo"].min()), int(rep["hi"].max()))
            f.acc_worst_bits = int(rep["bits_needed"])
        if f.out_avail is not None:
            zy = int(node.attrs["out_zero_point"])
            clamp = (max(zy, f.out_avail[0]) if node.attrs.get("relu") else f.out_avail[0], f.out_avail[1])
            f.stair = staircase(node, rows, backend, clamp)
            f.dead_channels = dead_channels(channel_rows(node, out), clamp[0])
    pre = (ctx.trace.get(node.name) or {}).get("pre_round")
    if pre is not None and np.asarray(pre).dtype.kind == "f":
        f.near_ties = int(near_tie_mask(pre).sum())
    return f


def dead_channels(rows, floor: int) -> list:
    """Channels (columns of rows [M, O]) whose every value is the clamp's floor (zero point after a
    ReLU): dead on this input, any bias serves them."""
    rows = np.asarray(rows)
    if rows.size == 0:
        return []
    return [int(c) for c in np.flatnonzero((rows == floor).all(axis=0))]
