"""Comment blocks of the generated C: where each layer's integer constants come from, and how wide
each datapath is.

For a linear/conv step, qg_requantize (kernels.c) computes, per output channel c,
    non-TFLite rounding:  y = round((acc + B[c])·M0[c] + F[c], 2^n[c]) + z_y, clamped to [out_min, out_max]
    TFLite rounding:      y = RoundingDivideByPOT(SRDHM(acc + B[c], M0[c]), n[c] − (bits − 1)) + z_y, clamped
so the real multiplier is M ≈ M0·2^−n and the bias in accumulator units is b′ ≈ B + F/M0. The
float model's values (s_x, s_w, s_y, float bias, b′ = bias/(s_x·s_w), M = s_x·s_w/s_y) are printed
next to them when the source program is given. Widths are exact bounds over every input byte.
"""
from __future__ import annotations

import numpy as np

ROUNDING_ENUM = ("QG_HALF_UP", "QG_HALF_EVEN", "QG_HALF_AWAY", "QG_TFLITE")  # kernels.c enum, same order as plan.ROUNDING_CODES
MAX_CHANNEL_LINES = 16


def signed_bits(lo: int, hi: int) -> int:
    """The fewest bits b of a two's complement integer holding every value in [lo, hi]:
    −2^(b−1) ≤ lo and hi ≤ 2^(b−1) − 1."""
    b = 1
    while not (-(1 << (b - 1)) <= lo and hi <= (1 << (b - 1)) - 1):
        b += 1
    return b


def acc_range(weights, weight_zero_points, input_zero_point, input_signed) -> tuple:
    """([lo], [hi]) per output channel of acc = Σ_k (x_k − z_x)·(w_k − z_w) over every input byte
    x_k (uint8 0..255, int8 −128..127): each term's extremes are at an end of the x range."""
    w = np.asarray(weights, np.int64).reshape(len(weights), -1) - np.asarray(weight_zero_points, np.int64)[:, None]
    xmin, xmax = (-128, 127) if input_signed else (0, 255)
    a, b = (xmin - input_zero_point) * w, (xmax - input_zero_point) * w
    return np.minimum(a, b).sum(axis=1), np.maximum(a, b).sum(axis=1)


def _g(v) -> str:
    return f"{float(v):.9g}"


def gemm_comment(step, source_node=None, tensors=None) -> list:
    """Lines (plain text, to be made comment-safe by the caller) of a linear/conv step's constants."""
    p, r = step.params, step.params["requant"]
    w = p["weights"]
    if step.kind == "conv" and p.get("input_flip"):
        zx = int(p["input_zero_point"])
        signed = 0
    else:
        zx, signed = int(p["input_zero_point"]), int(p.get("input_signed", 0))
    lo, hi = acc_range(w, p["weight_zero_points"], zx, signed)
    m0, n, bias, frac = (np.asarray(r[k], np.int64) for k in ("multiplier", "shift", "bias", "frac"))
    tflite = r["rounding"] == 3
    sums_lo, sums_hi = lo + bias, hi + bias
    prod_lo = np.minimum(sums_lo * m0, sums_hi * m0) + (0 if tflite else frac)
    prod_hi = np.maximum(sums_lo * m0, sums_hi * m0) + (0 if tflite else frac)
    table = np.asarray(r.get("use_table", np.zeros(len(m0), np.uint8)), bool)
    relu = bool(source_node is not None and source_node.attrs.get("relu"))
    lines = [f"{step.name}: {'fully connected' if step.kind == 'linear' else 'convolution'}"
             + (" + ReLU" if relu else "") + f", {len(m0)} output channels"]
    if tflite:
        lines.append("y[c] = RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(acc + B[c], M0[c]), "
                     f"n[c] - {r['bits'] - 1}) + z_y, clamped to [out_min, out_max]   (TFLite / gemmlowp)")
    else:
        lines.append(f"y[c] = round_{ROUNDING_ENUM[r['rounding']][3:].lower()}(((acc + B[c]) * M0[c] + F[c]) / 2^n[c]) "
                     "+ z_y, clamped to [out_min, out_max]")
    lines.append(f"  acc: sum of (x - z_x)(w - z_w), z_x = {zx}, in [{int(lo.min())}, {int(hi.max())}]: "
                 f"{signed_bits(int(lo.min()), int(hi.max()))}-bit signed (int32 register)")
    lines.append(f"  product (acc + B) * M0{'' if tflite else ' + F'} in [{int(prod_lo.min())}, {int(prod_hi.max())}]: "
                 f"{signed_bits(int(prod_lo.min()), int(prod_hi.max()))}-bit signed (int64 register); "
                 f"M0 {r['bits']}-bit, shift n in [{int(n.min())}, {int(n.max())}]"
                 + (f" (the high half drops {r['bits'] - 1} bits, RoundingDivideByPOT the other "
                    f"{int(n.min()) - r['bits'] + 1}..{int(n.max()) - r['bits'] + 1})" if tflite else ""))
    if p.get("paired") or (step.kind == "conv" and p.get("mode")):
        lines.append("  the CPU sums u8 x s8 products in pairs in saturating int16 first (vpmaddubsw, as the "
                     "engine on this CPU class): acc is that sum, not always the exact one")
    zy = int(r["out_zero_point"])
    if relu or (r["out_min"] == zy and zy > 0):
        lines.append(f"  fused ReLU: out_min = z_y = {zy} (the clamp at the output zero point is the ReLU)")
    tens = tensors or {}
    xt = tens.get(step.inputs[0]) if step.inputs else None
    yt = tens.get(step.output)
    sx = getattr(xt, "scale", None) if source_node is None else source_node.attrs.get("x_scale")
    sy = getattr(yt, "scale", None) if source_node is None else source_node.attrs.get("out_scale")
    if sx is not None and sy is not None:
        lines.append(f"  s_x = {_g(sx)}, s_y = {_g(sy)}, z_y = {zy}")
    ws = fb = None
    if source_node is not None:
        ws = np.broadcast_to(np.asarray(source_node.consts["weight_scale"], np.float64).reshape(-1), (len(m0),))
        b = source_node.consts.get("bias")
        fb = np.asarray(b, np.float64).reshape(-1) if b is not None else np.zeros(len(m0))
    head = "  c: " + ("s_w, float bias, b' = bias/(s_x*s_w), M = s_x*s_w/s_y | " if ws is not None else "")
    lines.append(head + "B, F, M0, n -> B + F/M0, M0*2^-n")
    for c in range(min(len(m0), MAX_CHANNEL_LINES)):
        parts = f"  {c}: "
        if ws is not None:
            sxw = float(sx) * float(ws[c])
            parts += (f"s_w {_g(ws[c])}, bias {_g(fb[c])}, b' {_g(fb[c] / sxw)}, M {_g(sxw / float(sy))} | ")
        if table[c]:
            parts += "threshold table (output = out_min + #thresholds <= acc)"
        else:
            eff_b = bias[c] + (0 if tflite else frac[c] / m0[c])
            parts += (f"B {int(bias[c])}, F {int(frac[c])}, M0 {int(m0[c])}, n {int(n[c])} -> "
                      f"b' {_g(eff_b)}, M {_g(m0[c] * 2.0 ** -int(n[c]))}")
        lines.append(parts)
    if len(m0) > MAX_CHANNEL_LINES:
        lines.append(f"  ... {len(m0) - MAX_CHANNEL_LINES} more channels (see the arrays below)")
    return lines
