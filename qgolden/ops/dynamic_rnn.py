"""Dynamic quantized recurrent layers (quantize_dynamic's nnqd.LSTM, GRU, LSTMCell, GRUCell, RNNCell):
float32 in and out, int8 weights, every input of every int8 GEMM quantized per call with a scale
and zero point chosen from that input's own min and max (ops/dynamic_linear.py).

What PyTorch runs (aten/src/ATen/native/RNN.cpp):
    QuantizedCellParamsDynamic   linear_ih(x) = packed_w_ih->apply_dynamic(x, reduce_range),
                                 linear_hh(h) likewise: quantized::linear_dynamic with the bias packed in.
                                 reduce_range: nnqd.LSTM/GRU pass True from module version 2 on
                                 (make_quantized_cell_params_dynamic); the cells always True
                                 (DEFINE_QUANTIZED_RNN_CELL_DYNAMIC). qnnpack ignores it.
    FullLayer (CPU)              the input GEMM runs once over the whole sequence [T, B, K]: ONE scale
                                 for the sequence; then per step t the hidden GEMM on h[t-1] [B, H]:
                                 one scale per step
    FullBidirectionalLayer       the reverse direction: its own input GEMM over the whole sequence, the
                                 steps in reverse order; outputs concatenated [fw, rev] on the last dim
    layers                       layer l+1 reads layer l's output (both directions concatenated)
    LSTMCell                     g = linear_hh(h) + x_w;  chunks i, f, g, o of H (strided views):
                                 i, f, o = sigmoid_, g = tanh_;  c' = f*c + i*g;  h' = o * tanh(c')
    GRUCell                      r = sigmoid_(h_r + x_r), z = sigmoid_(h_z + x_z),
                                 n = tanh_(x_n + h_n*r);  h' = (h - n)*z + n
    SimpleCell                   h' = tanh(linear_hh(h) + x_w)  or  relu(...)
Every float op is one IEEE operation (no contraction); sigmoid and tanh are ATen's kernels
(numerics/float_unary.py): which elements take the vector path depends on the strided layout.
"""
from __future__ import annotations

import numpy as np

from ..numerics.float_unary import aten_sigmoid, aten_tanh
from .dynamic_linear import dynamic_linear
from .float_ops import float_clamp
from .spec import OpSpec

GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}
STATES = {"lstm": 2, "gru": 1, "rnn_tanh": 1, "rnn_relu": 1}


def _add(a, b):
    return np.add(a, b, dtype=np.float32)


def _mul(a, b):
    return np.multiply(a, b, dtype=np.float32)


def _linear(x, w, sw, zw, b, per_channel, reduce_range, profile, trace):
    return dynamic_linear(x, weight=w, weight_scale=sw, weight_zero_point=zw, bias=b, per_channel=per_channel,
                          reduce_range=reduce_range, profile=profile, trace=trace)


def cell_step(mode, x_w, h, c, lin_hh, profile, trace=None):
    """One step of LSTMCell / GRUCell / SimpleCell given x_w = linear_ih(x) [B, G*H] and the hidden
    GEMM lin_hh(h) -> [B, G*H]. Returns (h', c') (c' None but for the LSTM)."""
    hh = lin_hh(h)
    H = h.shape[-1]
    if mode == "lstm":
        g = _add(hh, x_w)
        i = aten_sigmoid(g[:, 0:H], profile)
        f = aten_sigmoid(g[:, H:2 * H], profile)
        gg = aten_tanh(g[:, 2 * H:3 * H], profile)
        o = aten_sigmoid(g[:, 3 * H:4 * H], profile)
        c2 = _add(_mul(f, c), _mul(i, gg))
        h2 = _mul(o, aten_tanh(c2, profile))
        if trace is not None:
            trace.update(gates=g, input_gate=i, forget_gate=f, cell_gate=gg, output_gate=o, c=c2, h=h2)
        return h2, c2
    if mode == "gru":
        r = aten_sigmoid(_add(hh[:, 0:H], x_w[:, 0:H]), profile)
        z = aten_sigmoid(_add(hh[:, H:2 * H], x_w[:, H:2 * H]), profile)
        n = aten_tanh(_add(x_w[:, 2 * H:], _mul(hh[:, 2 * H:], r)), profile)
        h2 = _add(_mul(np.subtract(h, n, dtype=np.float32), z), n)
        if trace is not None:
            trace.update(hidden_gates=hh, reset_gate=r, update_gate=z, new_gate=n, h=h2)
        return h2, None
    pre = _add(hh, x_w)
    h2 = aten_tanh(pre, profile) if mode == "rnn_tanh" else float_clamp(pre, "relu", profile=profile)
    if trace is not None:
        trace.update(pre_activation=pre, h=h2)
    return h2, None


def _initial(state, index, batch, hidden):
    if state is None:
        return np.zeros((batch, hidden), np.float32)
    s = np.asarray(state, dtype=np.float32)
    return s[index] if s.ndim == 3 else s


def dynamic_rnn_layer(x, h0=None, c0=None, *, mode, state_index, reverse, batch_first, reduce_range,
                      per_channel, w_ih, w_ih_scale, w_ih_zero_point, b_ih, w_hh, w_hh_scale, w_hh_zero_point,
                      b_hh, profile, trace=None):
    """One direction of one layer of nnqd.LSTM / GRU over a whole sequence.

    x: the module's input [T, B, K] ([B, T, K] if batch_first), or a list of the previous layer's
    results (their first T rows concatenated on the last dim). h0, c0: the module's initial states
    [layers*dirs, B, H] (None: zeros), this layer's at state_index. Returns float32
    [T + states, B, H]: the T outputs in time order, then h_n (and c_n for the LSTM)."""
    if mode not in ("lstm", "gru"):
        raise ValueError(f"unknown recurrent layer mode {mode!r}")
    if isinstance(x, list):
        T = min(np.asarray(p).shape[0] for p in x) - STATES[mode]
        seq = np.concatenate([np.asarray(p, dtype=np.float32)[:T] for p in x], axis=-1)
    else:
        seq = np.asarray(x, dtype=np.float32)
        if seq.ndim != 3:
            raise ValueError(f"a recurrent layer takes a 3-D input, got shape {seq.shape}")
        if batch_first:
            seq = seq.transpose(1, 0, 2)
    T, B = seq.shape[0], seq.shape[1]
    if T == 0:
        raise ValueError("Expected sequence length to be larger than 0 in RNN")
    H = np.asarray(w_hh).shape[1]
    h = _initial(h0, state_index, B, H)
    c = _initial(c0, state_index, B, H) if mode == "lstm" else None
    t_in = {} if trace is not None else None
    # FullLayer on CPU: the input GEMM once over the whole sequence (one per-call scale)
    xw = _linear(seq, w_ih, w_ih_scale, w_ih_zero_point, b_ih, per_channel, reduce_range, profile, t_in)
    outs = [None] * T
    steps = []
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        t_hh = {} if trace is not None and not steps else None
        t_cell = {} if t_hh is not None else None

        def lin_hh(hv, t_hh=t_hh):
            return _linear(hv, w_hh, w_hh_scale, w_hh_zero_point, b_hh, per_channel, reduce_range, profile, t_hh)

        h, c2 = cell_step(mode, xw[t], h, c, lin_hh, profile, t_cell)
        c = c2 if mode == "lstm" else c
        outs[t] = h
        if t_hh is not None:
            steps.append({"t": t, "hidden_linear": t_hh, "cell": t_cell})
    finals = [h] + ([c] if mode == "lstm" else [])
    out = np.concatenate([np.stack(outs), np.stack(finals)], axis=0)
    if trace is not None:
        trace.update(input_linear=t_in, first_step=steps[0], sequence_length=T, batch=B, hidden=H,
                     x_scale=t_in["x_scale"], x_zero_point=t_in["x_zero_point"],
                     scale_choice=t_in["scale_choice"], out=out)
    return out


def dynamic_rnn_cell(x, h0=None, c0=None, *, mode, reduce_range, per_channel, w_ih, w_ih_scale,
                     w_ih_zero_point, b_ih, w_hh, w_hh_scale, w_hh_zero_point, b_hh, profile, trace=None):
    """nnqd.LSTMCell / GRUCell / RNNCell: one step, x [B, K] (or [K]), h0/c0 [B, H] (None: zeros).
    Returns float32 [states, B, H]: h' (and c' for the LSTM cell)."""
    if mode not in GATES:
        raise ValueError(f"unknown recurrent cell mode {mode!r}")
    x = np.asarray(x, dtype=np.float32)
    unbatched = x.ndim == 1
    x2 = x[None] if unbatched else x
    if x2.ndim != 2:
        raise ValueError(f"a recurrent cell takes a 1-D or 2-D input, got shape {x.shape}")
    B, H = x2.shape[0], np.asarray(w_hh).shape[1]
    h = np.zeros((B, H), np.float32) if h0 is None else np.asarray(h0, np.float32).reshape(B, H)
    c = None
    if mode == "lstm":
        c = np.zeros((B, H), np.float32) if c0 is None else np.asarray(c0, np.float32).reshape(B, H)
    t_in = {} if trace is not None else None
    t_hh = {} if trace is not None else None
    t_cell = {} if trace is not None else None
    xw = _linear(x2, w_ih, w_ih_scale, w_ih_zero_point, b_ih, per_channel, reduce_range, profile, t_in)
    h2, c2 = cell_step(mode, xw, h, c,
                       lambda hv: _linear(hv, w_hh, w_hh_scale, w_hh_zero_point, b_hh, per_channel, reduce_range,
                                          profile, t_hh), profile, t_cell)
    out = np.stack([h2] + ([c2] if mode == "lstm" else []))
    if unbatched:
        out = out[:, 0]
    if trace is not None:
        trace.update(input_linear=t_in, first_step={"t": 0, "hidden_linear": t_hh, "cell": t_cell},
                     x_scale=t_in["x_scale"], x_zero_point=t_in["x_zero_point"],
                     scale_choice=t_in["scale_choice"], out=out)
    return out


def rnn_result(parts, *, what, layers, directions, batch_first, states, profile=None, trace=None):
    """Assembles what nnqd.LSTM / GRU return from its layers' results (dynamic_rnn_layer, in the order
    layer 0 forward, layer 0 reverse, layer 1 ...), each [T + states, B, H]:
        output   the last layer's T outputs, directions concatenated on the last dim ([B, T, D*H] if batch_first)
        h_n      [layers*directions, B, H] of each result's row T;  c_n: row T + 1.
    Cells (layers 0): parts is [the cell's result]; h_n / c_n pick its row 0 / 1."""
    parts = [np.asarray(p, dtype=np.float32) for p in parts]
    if layers == 0:
        return parts[0][{"h_n": 0, "c_n": 1}[what]]
    if len(parts) != layers * directions:
        raise ValueError(f"rnn_result expects {layers * directions} layer results, got {len(parts)}")
    T = parts[0].shape[0] - states
    if what == "output":
        y = np.concatenate([p[:T] for p in parts[-directions:]], axis=-1)
        return np.ascontiguousarray(y.transpose(1, 0, 2)) if batch_first else y
    row = {"h_n": T, "c_n": T + 1}[what]
    return np.stack([p[row] for p in parts])


DYNAMIC_WHY = ("dynamic quantization chooses each GEMM input's scale from that input's min and max at run time "
               "and returns float32; its gates are float32 sigmoid and tanh. Only the int8 weights and the "
               "integer accumulation are integer (docs/integer-only.md, 'Dynamic quantization')")

FORMULA = ("x_w = dynamic_linear(x over the whole sequence, W_ih, b_ih): ONE per-call scale for the sequence",
           "per step t: g = dynamic_linear(h[t−1], W_hh, b_hh) + x_w[t]  (a new scale for every h[t−1])",
           "LSTM: i, f, o = σ(g_i), σ(g_f), σ(g_o); c = f·c + i·tanh(g_g); h = o·tanh(c)   (float32)",
           "GRU: r = σ(h_r + x_r); z = σ(h_z + x_z); n = tanh(x_n + h_n·r); h = (h − n)·z + n",
           "σ: ATen's 1/(exp(0 − x) + 1) (SLEEF expf on vector pairs, libm expf on tails); tanh: MKL vmsTanh")

SPECS = [
    OpSpec("dynamic_rnn_layer", "dynamic_rnn_layer", integer="float",
           summary="one direction of one layer of a dynamic quantized LSTM / GRU over the whole sequence: int8 "
                   "GEMMs on per-call quantized inputs, float32 gates (no integer-only form)",
           formula=FORMULA, float_why=DYNAMIC_WHY,
           torch=("nnqd.LSTM", "nnqd.GRU", "aten::quantized_lstm", "aten::quantized_gru")),
    OpSpec("dynamic_rnn_cell", "dynamic_rnn_cell", integer="float",
           summary="one step of a dynamic quantized LSTMCell / GRUCell / RNNCell (tanh or relu): int8 GEMMs "
                   "on per-call quantized inputs, float32 gates (no integer-only form)",
           formula=FORMULA[1:], float_why=DYNAMIC_WHY,
           torch=("nnqd.LSTMCell", "nnqd.GRUCell", "nnqd.RNNCell", "quantized::quantized_lstm_cell_dynamic",
                  "quantized::quantized_gru_cell_dynamic", "quantized::quantized_rnn_tanh_cell_dynamic",
                  "quantized::quantized_rnn_relu_cell_dynamic")),
    OpSpec("rnn_result", "rnn_result", integer="float", float_why="it gathers a dynamic recurrent layer's float32 results",
           summary="what a recurrent module returns (output sequence, h_n, c_n), gathered from its layers"),
]
