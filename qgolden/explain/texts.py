"""Words and symbolic formulas per op (no numbers: those come from the trace)."""
from __future__ import annotations

from .. import ops


def gemm_formula(op, backend, has_bias, relu, sat_possible, per_channel, onednn_kernel="combined"):
    k = "k" if op == "linear" else "c,r,s"
    xk = "x_q[k]" if op == "linear" else "x_q[c, h·stride+r·dil−pad, w·stride+s·dil−pad]"
    wk = "w_q[n,k]" if op == "linear" else "w_q[n,c,r,s]"
    sw = "s_w[n]" if per_channel else "s_w"
    lo = "z_y" if relu else "0"
    sat = ("   (this CPU: u8·s8 products summed in pairs in saturating int16 first)" if sat_possible else "")
    if backend == "onednn":
        b = " + bias[n]" if has_bias else ""
        lines = [f"acc[n] = Σ_{k} x_q·w_q − z_x·Σ_{k} w_q  = Σ_{k} ({xk} − z_x)·{wk}{sat}",
                 "s_x', s_y' = f32(1/f32(1/s_x)), f32(1/f32(1/s_y))   (PyTorch hands oneDNN float reciprocals, "
                 "inverted back in float)"]
        if onednn_kernel == "ref":
            lines.append(f"v[n]   = f32(f32(f32(f32(acc[n]·s_x')·{sw}){b}) / s_y')   (ref kernel: one scale after "
                         "the other, then a division)" + ("; v = max(v, 0)" if relu else ""))
        elif onednn_kernel == "sequential":
            lines.append(f"v[n]   = f32(f32(f32(f32(acc[n]·s_x')·{sw}){b}) · f32(1/s_y'))   (this kernel: one scale "
                         "after the other)" + ("; v = max(v, 0)" if relu else ""))
        else:
            lines += [f"M[n]   = f32(s_x'·{sw})",
                      f"v[n]   = f32(f32(f32(acc[n]·M[n]){b}) · f32(1/s_y'))" + ("; v = max(v, 0)" if relu else "")]
        lines.append("y_q[n] = clamp(rne(f32(v[n] + z_y)), 0, 255)")
        return lines
    lines = [f"acc[n] = Σ_{k} ({xk} − z_x)·({wk} − z_w){sat}"]
    if backend == "fbgemm":
        if has_bias:
            lines.append(f"b'[n]  = f32(bias[n] / f32(s_x·{sw}))   (float: the bias in accumulator units)")
        lines.append(f"M[n]   = f32(f32(s_x·{sw}) / s_y)")
        lines.append("v[n]   = f32(" + ("f32(acc[n] + b'[n])" if has_bias else "acc[n]") + " · M[n])")
    else:
        if has_bias:
            lines.append(f"b_q[n] = rne(bias[n] / (s_x·{sw}))   (int32 bias)")
        lines.append(f"M[n]   = f32(f32({sw}·s_x) · f32(1/s_y))")
        lines.append("v[n]   = f32(" + ("(acc[n] + b_q[n])" if has_bias else "acc[n]") + " · M[n])")
    lines.append(f"y_q[n] = clamp(rne(v[n]) + z_y, {lo}, 255)   (rne: round half to even)"
                 + ("; ReLU is the clamp at z_y" if relu else ""))
    return lines


def op_text(op: str, default: str = ""):
    """(what it does, formula lines) of an op, from the op table (qgolden/ops SPECS); (default, []) if it
    has no text."""
    spec = ops.spec(op)
    return (spec.summary, list(spec.formula)) if spec is not None and spec.summary else (default, [])


# per-channel quantize has no op of its own (quantize with an axis)
QUANTIZE_PER_CHANNEL = ("turns floats into integers, one scale per channel", [
    "y_q = clamp(rne(f32(f32(x · f32(1/s_c)) + z_c)), qmin, qmax)"])


# PT2E / torchao Q/DQ graphs (ops/qdq.py): words and formulas per op, by runtime
PT2E_GEMM = {
    "pt2e_reference": ("integer linear of torchao's reference representation (_reference_quantized_linear)", [
        "acc[n] = Σ_k (x_q[k] − z_x)·(w_q[n,k] − z_w)   (exact int32)",
        "b[n]   = trunc(f32(bias[n] / f32(f32(s_x)·f32(s_w))))   (int32 bias, truncated)",
        "M      = f32(f32(f32(s_x)·f32(s_w)) / f32(s_y))",
        "y_q[n] = clamp(trunc(f32(f32(acc[n] + b[n])·M)) + z_y, qmin, qmax)   (trunc: toward zero)"]),
    "onednn_inductor": ("oneDNN int8 kernel of torch.compile (onednn::qconv_pointwise / qlinear_pointwise)", [
        "acc[n] = Σ (x_q − z_x)·w_q as oneDNN sums it   (without VNNI: u8·s8 pairs in saturating int16)",
        "v[n]   = f32(f32(f32(acc[n]·f32(s_x·s_w[n])) + bias[n]) · f32(1/s_y))   (bias 0 when the model has none)",
        "y_q[n] = clamp(rne(f32(max(v[n], 0) if ReLU else v[n]) + z_y), 0, 255)"]),
}
PT2E_OPS = {
    "qdq_dequantize": ("dequantize_per_tensor of the Q/DQ graph: integers to float32",
                       ["y = f32(f32(x_q − z) · f32(s))"]),
    "add_reference": ("integer add of torchao's reference representation (_reference_quantized_add)", [
        "r_a = f32(f32(s_a)/f32(s_y));  r_b = f32(f32(s_b)/f32(s_y))",
        "y_q = clamp(rne(f32(r_a·(a_q − z_a))) + rne(f32(r_b·(b_q − z_b))) + z_y, −128, 127)"]),
    "add_reference_relu": ("integer add + ReLU of torchao's reference representation (_reference_quantized_add_relu)", [
        "r_a = f32(f32(s_a)/f32(s_y));  r_b = f32(f32(s_b)/f32(s_y))",
        "y_q = clamp(trunc(f32(r_a·(a_q − z_a))) + trunc(f32(r_b·(b_q − z_b))) + z_y, z_y, qmax)",
        "(trunc: toward zero)"]),
    "concat": ("concatenates integers that share one scale and zero point (dq -> cat -> q): a copy",
               ["y_q = concat(x_q,i)"]),
    "float_conv": ("", ["y = conv(x, w) + bias in float32: depthwise as ATen's fma32 per tap (exact); "
                        "otherwise the exact sum rounded once (the library's order is not reproduced)"]),
    "float_linear": ("", ["y = f32(Σ_k x[k]·w[n,k], exact, rounded once) + bias[n]",
                          "(the library's summation order is not reproduced)"]),
    "float_unary": ("", ["hardswish: y = f32(x·min(max(x + 3, 0), 6)) / 6;  relu: max(x, 0);",
                         "hardtanh: clamp(x, lo, hi)"]),
    "float_op": ("", ["y = a + b, a − b, a·b, max(x, 0)... in float32 (each one correctly rounded)"]),
    "float_adaptive_avg_pool": ("", ["y = (Σ_window x, summed in float32 row by row) / |window|"]),
    "float_mean": ("", ["y = f32(Σ x in ATen's float32 cascade order) / n"]),
    "float_max_pool": ("", ["y = max over the window (float32, exact)"]),
    "float_mean_inductor": ("", ["y = f32(Σ_HW x, summed from 0 in Inductor's kernel order) / (H·W)",
                                 "(channels-last: each channel serially in memory order; NCHW: 8 lanes, then reduced)"]),
    "xnnpack_hardswish": ("", ["y = f32(min(max(fma(x, 0x1.555556p-3, 0.5), 0), 1) · x)  (XNNPACK f32, FMA3)"]),
    "xnnpack_avg_pool": ("", ["y = f32(Σ taps, 9 per pass in XNNPACK's kernel order · f32(1/count))"]),
    "xnnpack_global_mean": ("", ["y = f32(Σ_HW x, sequential float32 · f32(1/(H·W)))  (XNNPACK f32)"]),
    "float_cat": ("", ["y = concat(x_i) (float32 copy)"]),
}


def pt2e_text(node, program):
    """(what, formula lines) of an op of a PT2E program, or None for an op that is not PT2E-specific.
    Float ops say what they are and that they are not integer (integer.transform.float_why)."""
    from ..integer.transform import FLOAT_OPS, float_why
    from ..numerics.profile import PT2E_BACKENDS

    if program.meta.get("format") == "onnx":
        return None  # ONNX ops: their OpSpec summary and formula (ops/onnx_qlinear.py)
    backend = PT2E_BACKENDS.get(program.profile.get("engine"))
    a = node.attrs
    if node.op == "qdq_quantize":
        if a.get("mode") == "div":
            return ("quantize_per_tensor as torchao's reference representation computes it", [
                "y_q = clamp(int32(rne(f32(x / f32(s)))) + z, qmin, qmax)   (z added after rounding; beyond int32 "
                "x86 gives INT32_MIN)"])
        return ("quantize_per_tensor of the Q/DQ graph: float32 to integers", [
            "y_q = clamp(rne(f32(x · f32(1/s))) + z, qmin, qmax)   (z added after rounding)"])
    if node.op in ("linear", "conv") and backend is not None:
        if a.get("out_dtype") == "float32":
            return (float_why(program, node), [
                "acc[n] = Σ (x_q − z_x)·w_q as oneDNN sums it",
                "y[n]   = f32(f32(acc[n]·f32(s_x·s_w[n])) + bias[n])   (float32 output, ReLU if fused)"])
        return PT2E_GEMM.get(backend)
    if node.op == "add_reference":
        return PT2E_OPS["add_reference_relu" if a.get("relu") else "add_reference"]
    if node.op in FLOAT_OPS and node.op in PT2E_OPS:
        return float_why(program, node), PT2E_OPS[node.op][1]
    return PT2E_OPS.get(node.op)
