"""Words and symbolic formulas per op (no numbers: those come from the trace)."""
from __future__ import annotations


def gemm_formula(op, backend, has_bias, relu, sat_possible, per_channel):
    k = "k" if op == "linear" else "c,r,s"
    xk = "x_q[k]" if op == "linear" else "x_q[c, h·stride+r·dil−pad, w·stride+s·dil−pad]"
    wk = "w_q[n,k]" if op == "linear" else "w_q[n,c,r,s]"
    sw = "s_w[n]" if per_channel else "s_w"
    lo = "z_y" if relu else "0"
    sat = ("   (this CPU: u8·s8 products summed in pairs in saturating int16 first)" if sat_possible else "")
    if backend == "onednn":
        lines = [f"acc[n] = Σ_{k} x_q·w_q − z_x·Σ_{k} w_q  = Σ_{k} ({xk} − z_x)·{wk}{sat}"]
        if has_bias:
            lines += [f"M[n]   = f32(s_x·{sw})",
                      "v[n]   = f32(f32(f32(acc[n]·M[n]) + bias[n]) · f32(1/s_y))" + ("; v = max(v, 0)" if relu else ""),
                      "y_q[n] = clamp(rne(f32(v[n] + z_y)), 0, 255)"]
        else:
            lines += [f"M[n]   = f32(f32(1/s_y) / f32(f32(1/s_x)·f32(1/{sw})))   (oneDNN's reciprocal scales)",
                      "v[n]   = f32(acc[n]·M[n])" + ("; v = max(v, 0)" if relu else ""),
                      "y_q[n] = clamp(rne(f32(v[n] + z_y)), 0, 255)"]
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


OPS = {
    "quantize": ("turns floats into integers", [
        "y_q = clamp(rne(f32(x · f32(1/s) + z)), 0, 255)   (one fused multiply-add: z added before rounding)"]),
    "quantize_pc": ("turns floats into integers, one scale per channel", [
        "y_q = clamp(rne(f32(f32(x · f32(1/s_c)) + z_c)), qmin, qmax)"]),
    "dequantize": ("turns integers back into floats: the model's last step", [
        "y = f32(f32(s) · f32(x_q − z))"]),
    "relu": ("ReLU on integers: nothing below the zero point", ["y_q = max(x_q, z)   (scale and zero point unchanged)"]),
    "hardtanh": ("clamp between two integer limits", ["y_q = clamp(x_q, q(min_val), q(max_val))"]),
    "hardswish": ("hardswish through floats", [
        "x = s_x·(x_q − z_x);  y = x·min(max(x + 3, 0), 6) / 6;  y_q = clamp(rne(y/s_y) + z_y)",
        "(qnnpack: a 256-entry table indexed by x_q)"]),
    "leaky_relu": ("leaky ReLU through floats", ["y_q = clamp(rne(leaky(s_x·(x_q − z_x))/s_y) + z_y)"]),
    "elu": ("ELU through floats", ["y_q = clamp(rne(elu(s_x·(x_q − z_x))/s_y) + z_y)"]),
    "sigmoid": ("sigmoid through floats (fixed output scale 1/256)", ["y_q = clamp(rne(σ(s_x·(x_q − z_x))·256))"]),
    "tanh": ("tanh through floats (fixed output scale 2/256, zero point 128)",
             ["y_q = clamp(rne(tanh(s_x·(x_q − z_x))·128) + 128)"]),
    "add": ("adds two quantized tensors with their own scales", [
        "a = s_a·(a_q − z_a);  b = s_b·(b_q − z_b);  y_q = clamp(rne((a + b)/s_y) + z_y)   (ATen, float32)",
        "(qnnpack: fixed-point a_multiplier·a_q + b_multiplier·b_q, shifted right with rounding)"]),
    "add_scalar": ("adds a constant", ["y_q = x_q (new zero point z − round(c/s)) or requantized"]),
    "mul": ("multiplies two quantized tensors", ["y_q = clamp(rne((a_q − z_a)(b_q − z_b)·s_a·s_b/s_y) + z_y)"]),
    "mul_scalar": ("multiplies by a constant", ["y_q = x_q with a new scale (or requantized)"]),
    "cat": ("concatenates; inputs with other qparams are requantized", ["y_q = concat(requant(x_i))"]),
    "max_pool": ("maximum over each window, on the integers (qparams unchanged)", ["y_q = max over the window of x_q"]),
    "avg_pool": ("average over each window (qparams unchanged)", [
        "S = Σ_window (x_q − z);  y_q = clamp(rne(S / divisor) + z)   (order of + z and rounding depends on the kernel)"]),
    "adaptive_avg_pool": ("average over adaptive bins (qparams unchanged)", ["S = Σ_bin (x_q − z);  y_q = clamp(rne(S/|bin|) + z)"]),
    "mean": ("mean over dims", ["y_q = clamp(rne(Σ (x_q − z) / n) + z)"]),
    "upsample_nearest": ("nearest-neighbour upsampling (copies integers)", ["y_q[h, w] = x_q[src_h[h], src_w[w]]"]),
    "batch_norm": ("batch norm folded to a per-channel affine map", ["y_q = clamp(rne(alpha·x_q + beta))"]),
    "flatten": ("reshapes (no arithmetic)", ["y_q = x_q"]),
    "reshape": ("reshapes (no arithmetic)", ["y_q = x_q"]),
    "permute": ("permutes dims (no arithmetic)", ["y_q = x_q"]),
    "transpose": ("transposes (no arithmetic)", ["y_q = x_q"]),
    "identity": ("passes its input through", ["y_q = x_q"]),
}
