"""The explain section of a dynamic quantized recurrent layer or cell (ops/dynamic_rnn.py): step by
step, for sample 0 and hidden unit 0, the per-call scale choice of the input GEMM (over the whole
sequence), the integer GEMM and its float epilogue, then the first computed time step: the hidden
GEMM with its own per-call scale, and the float32 gates."""
from __future__ import annotations

import numpy as np

from ..numerics.profile import linear_backend
from . import texts
from .doc import Section, Val

EPILOGUE = {
    "fbgemm": "y = fma(f32(acc), m, b),  m = f32(f32(s_x)·f32(s_w))   (FBGEMM requantizeForFloatAvx2)",
    "qnnpack": "y = f32(f32(acc)·m) + b,  m = f32(f32(s_w)·f32(s_x))   (QNNPACK q8gemm_dq)",
    "onednn": "y = f32(acc)·m + b,  oneDNN's float output stage (m: its scale)",
}
GATE_KEYS = {"lstm": ("input_gate", "forget_gate", "cell_gate", "output_gate", "c", "h"),
             "gru": ("reset_gate", "update_gate", "new_gate", "h"),
             "rnn_tanh": ("pre_activation", "h"), "rnn_relu": ("pre_activation", "h")}
GATE_TEXT = {"input_gate": "i = σ(g_i)", "forget_gate": "f = σ(g_f)", "cell_gate": "g = tanh(g_g)",
             "output_gate": "o = σ(g_o)", "c": "c = f·c + i·g", "h": "h = o·tanh(c)",
             "reset_gate": "r = σ(h_r + x_r)", "update_gate": "z = σ(h_z + x_z)",
             "new_gate": "n = tanh(x_n + h_n·r)", "pre_activation": "W_hh·h + b_hh + x_w"}


def _v(node, path, value, idx=()):
    return Val(value, ("trace", node.name, path, idx))


def _gemm_lines(node, path, t, row, cols, backend) -> list:
    """Lines for one dynamic GEMM of the trace at `path`: min/max, scale, zero point, the accumulator
    and float output of row `row` (a tuple into its lead dims) at columns `cols`."""
    lines = [["  this call's input: min = ", _v(node, path + ("x_min",), t["x_min"]), ", max = ",
              _v(node, path + ("x_max",), t["x_max"])],
             ["  ", t["scale_choice"]],
             ["  s_x = (max − min)/(qmax − qmin) = ", _v(node, path + ("x_scale",), t["x_scale"]),
              ";  z_x = nearbyint(qmin − min/s_x) (or from max, whichever end is nearer) = ",
              _v(node, path + ("x_zero_point",), t["x_zero_point"])],
             ["  integer GEMM: acc = Σ_k (x_q[k] − z_x)·w_q[n, k]; float epilogue: " + EPILOGUE[backend]]]
    m = np.asarray(t["multiplier"])
    for n in cols:
        idx = row + (n,)
        mi = (n,) if m.ndim and m.shape[0] > 1 else ((0,) if m.ndim else ())
        lines.append([f"    n = {n}: acc = ", _v(node, path + ("acc",), t["acc"][idx], idx), ", m = ",
                      _v(node, path + ("multiplier",), m[mi], mi), ", y = ", _v(node, path + ("out",), t["out"][idx], idx)])
    return lines


def rnn_section(ctx, node, number, title) -> Section:
    t = ctx.trace.get(node.name) or {}
    what, formula = texts.op_text(node.op, default=node.op)
    sec = Section(node.name, title, what=what, formula=list(formula))
    if not t:
        return sec
    mode = node.attrs["mode"]
    backend = linear_backend(ctx.program.profile)
    H = np.asarray(node.consts["w_hh"]).shape[1]
    gates = np.asarray(node.consts["w_hh"]).shape[0] // H
    cols = [k * H for k in range(gates)]  # hidden unit 0 of each gate
    step = t["first_step"]
    layer = node.op == "dynamic_rnn_layer"
    lines = [[("1. input GEMM x_w = W_ih·x + b_ih, ONE call over the whole sequence "
               f"[{t['sequence_length']} steps × {t['batch']}]: its scale is chosen once for all steps")
              if layer else "1. input GEMM x_w = W_ih·x + b_ih (its own per-call scale)"]]
    tin = t["input_linear"]
    row_in = (step["t"], 0) if layer else (0,)
    lines += _gemm_lines(node, ("input_linear",), tin, row_in, cols, backend)
    lines.append([f"2. time step t = {step['t']} (the first one computed{', backwards' if node.attrs.get('reverse') else ''}): "
                  "hidden GEMM W_hh·h[t−1] + b_hh, with a new per-call scale from h[t−1] (zeros or h_0 at the first step)"])
    lines += _gemm_lines(node, ("first_step", "hidden_linear"), step["hidden_linear"], (0,), cols, backend)
    lines.append(["3. float32 gates, sample 0, hidden unit 0 (one IEEE operation each; σ and tanh are ATen's)"])
    cell = step["cell"]
    for k in GATE_KEYS[mode]:
        if k in cell:
            lines.append([f"    {GATE_TEXT[k]} = ", _v(node, ("first_step", "cell", k), cell[k][0, 0], (0, 0))])
    sec.numbers = lines
    return sec
