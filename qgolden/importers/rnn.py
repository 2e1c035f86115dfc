"""quantize_dynamic's recurrent modules (nnqd.LSTM, GRU, LSTMCell, GRUCell, RNNCell) -> IR.

An LSTM / GRU becomes one dynamic_rnn_layer node per layer and direction (layer l+1 reads layer l's
results) and rnn_result nodes that assemble what the module returns: (output, (h_n, c_n)) or
(output, h_n); a cell becomes one dynamic_rnn_cell node and rnn_result nodes for h' (and c').
Weights and biases are read with the modules' own accessors (get_weight / get_bias, _weight_bias:
torch/ao/nn/quantized/dynamic/modules/rnn.py).
"""
from __future__ import annotations

from .fx_ops import CALLS, MODULE_RULES, SubNode
from .torch_common import fbias, qweight

CELL_MODES = {"LSTMCell": "lstm", "GRUCell": "gru"}


def is_dynamic_rnn(mod) -> bool:
    import torch.ao.nn.quantized.dynamic as nnqd

    return isinstance(mod, (nnqd.LSTM, nnqd.GRU, nnqd.LSTMCell, nnqd.GRUCell, nnqd.RNNCell))


def _weights(L, n, what, w_ih, w_hh, b_ih, b_hh) -> tuple:
    """(consts, per_channel) of one cell's two packed GEMMs."""
    try:
        qi, qh = qweight(w_ih), qweight(w_hh)
    except ValueError as e:
        L.fail(n, what, str(e))
    consts = {"w_ih": qi["weight"], "w_ih_scale": qi["weight_scale"], "w_ih_zero_point": qi["weight_zero_point"],
              "b_ih": fbias(b_ih),
              "w_hh": qh["weight"], "w_hh_scale": qh["weight_scale"], "w_hh_zero_point": qh["weight_zero_point"],
              "b_hh": fbias(b_hh)}
    return consts, qi["per_channel"]


def _float_input(L, n, ref, what, role):
    if ref is None:
        return None
    i = L.info(ref)
    if i is None or i.dtype != "float32":
        L.fail(n, what, f"its {role} must be a float32 tensor (a PackedSequence or a quantized tensor is not "
                        "supported)")
    return ref


def m_dynamic_rnn(L, n, x, mod, src):
    """nnqd.LSTM / GRU (forward_tensor: torch.quantized_lstm / quantized_gru with use_dynamic) and the
    cells (quantized::quantized_{lstm,gru,rnn_tanh,rnn_relu}_cell_dynamic)."""
    import torch

    kind = type(mod).__name__
    what = f"module {src}: dynamic quantized {kind}"
    dtype = getattr(mod, "dtype", None) or getattr(mod, "weight_dtype", None)
    if dtype != torch.qint8:
        L.fail(n, what, f"weights of dtype {dtype} are not supported (qint8 is; float16 dynamic "
                        "quantization runs FBGEMM's fp16 GEMM, not modelled)")
    hx = L.val(n.args[1]) if len(n.args) > 1 else L.val(n.kwargs.get("hx"))
    x = _float_input(L, n, x, what, "input")
    if kind in ("LSTM", "GRU"):
        return _layers(L, n, x, hx, mod, src, what, "lstm" if kind == "LSTM" else "gru")
    return _cell(L, n, x, hx, mod, src, what, kind)


def _states(L, n, hx, lstm, what):
    if hx is None:
        return None, None
    if lstm:
        if not isinstance(hx, (list, tuple)) or len(hx) != 2:
            L.fail(n, what, "hx must be a tuple (h_0, c_0)")
        return _float_input(L, n, hx[0], what, "h_0"), _float_input(L, n, hx[1], what, "c_0")
    return _float_input(L, n, hx, what, "h_0"), None


def _layers(L, n, x, hx, mod, src, what, mode):
    if mod.training and mod.dropout:
        L.fail(n, what, "dropout in training mode is random; call model.eval()")
    h0, c0 = _states(L, n, hx, mode == "lstm", what)
    weights, biases = mod.get_weight(), mod.get_bias()
    version = getattr(mod, "version", None)
    dirs = 2 if mod.bidirectional else 1
    cells = []
    for layer in range(mod.num_layers):
        for d in range(dirs):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            cells.append((weights["weight_ih" + sfx], weights["weight_hh" + sfx], biases["bias_ih" + sfx],
                          biases["bias_hh" + sfx], f"{src}._all_weight_values.{len(cells)}.param"))
    outs = emit_layers(L, n, x, h0, c0, cells, mode, src, what, mod.num_layers, dirs, bool(mod.batch_first),
                       version is not None and version >= 2)
    L.values[n.name] = ([outs["output"], [outs["h_n"], outs["c_n"]]] if mode == "lstm"
                        else [outs["output"], outs["h_n"]])
    return L.values[n.name]


def emit_layers(L, n, x, h0, c0, cells, mode, src, what, num_layers, dirs, batch_first, reduce_range) -> dict:
    """One dynamic_rnn_layer node per (layer, direction) of `cells` [(w_ih, w_hh, b_ih, b_hh, where)],
    then rnn_result nodes: {'output', 'h_n'(, 'c_n')} -> IR tensor names."""
    parts, prev = [], x
    for layer in range(num_layers):
        cur = []
        for d in range(dirs):
            w_ih, w_hh, b_ih, b_hh, where = cells[len(parts)]
            consts, per_channel = _weights(L, n, what, w_ih, w_hh, b_ih, b_hh)
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            attrs = {"mode": mode, "state_index": len(parts), "reverse": bool(d),
                     "batch_first": batch_first and layer == 0, "reduce_range": bool(reduce_range),
                     "per_channel": per_channel}
            ref = L.emit(SubNode(f"{n.name}{sfx}", n), "dynamic_rnn_layer", [prev, h0, c0], dtype="float32",
                         attrs=attrs, consts=consts,
                         torch_op="aten::quantized_lstm" if mode == "lstm" else "aten::quantized_gru",
                         source=f"{src} (layer {layer}{', reverse' if d else ''})",
                         names={key: where for key in consts})
            cur.append(ref)
            parts.append(ref)
        prev = cur
    states = 2 if mode == "lstm" else 1
    outs = {}
    for what_out in ("output", "h_n") + (("c_n",) if mode == "lstm" else ()):
        outs[what_out] = L.emit(SubNode(f"{n.name}_{what_out}", n), "rnn_result", [list(parts)], dtype="float32",
                                attrs={"what": what_out, "layers": num_layers, "directions": dirs,
                                       "batch_first": batch_first, "states": states},
                                torch_op="aten::quantized_lstm" if mode == "lstm" else "aten::quantized_gru",
                                source=src, names={})
    return outs


def _cell(L, n, x, hx, mod, src, what, kind):
    mode = CELL_MODES.get(kind) or f"rnn_{mod.nonlinearity}"
    h0, c0 = _states(L, n, hx, mode == "lstm", what)
    wb = mod._weight_bias()
    consts, per_channel = _weights(L, n, what, wb["weight"]["weight_ih"], wb["weight"]["weight_hh"],
                                   wb["bias"].get("bias_ih"), wb["bias"].get("bias_hh"))
    torch_op = {"lstm": "quantized::quantized_lstm_cell_dynamic", "gru": "quantized::quantized_gru_cell_dynamic",
                "rnn_tanh": "quantized::quantized_rnn_tanh_cell_dynamic",
                "rnn_relu": "quantized::quantized_rnn_relu_cell_dynamic"}[mode]
    names = {k: f"{src}._packed_weight_{'ih' if 'ih' in k else 'hh'}" for k in consts}
    # DEFINE_QUANTIZED_RNN_CELL_DYNAMIC: reduce_range true for every cell
    cell = L.emit(SubNode(f"{n.name}_cell", n), "dynamic_rnn_cell", [x, h0, c0], dtype="float32",
                  attrs={"mode": mode, "reduce_range": True, "per_channel": per_channel}, consts=consts,
                  torch_op=torch_op, source=src, names=names)
    outs = []
    for what_out in ("h_n",) + (("c_n",) if mode == "lstm" else ()):
        outs.append(L.emit(SubNode(f"{n.name}_{'h' if what_out == 'h_n' else 'c'}", n), "rnn_result", [[cell]],
                           dtype="float32", attrs={"what": what_out, "layers": 0, "directions": 1,
                                                   "batch_first": False, "states": 2 if mode == "lstm" else 1},
                           torch_op=torch_op, source=src, names={}))
    L.values[n.name] = outs if mode == "lstm" else outs[0]
    return L.values[n.name]


MODULE_RULES.append((is_dynamic_rnn, m_dynamic_rnn))


# -- TorchScript: the ops the scripted modules call (torchscript.py makes each output a getitem) ----------

class ZeroState:
    """torch.zeros(...) of a scripted recurrent module's default hx: the zero initial state."""


def c_zeros(L, n, name, size, *a, **k):
    """aten::zeros: only as a recurrent module's default initial state (read by the rules below)."""
    L.values[n.name] = ZeroState()
    return L.values[n.name]


def _ts_state(L, n, ref, what, role):
    return None if isinstance(ref, ZeroState) else _float_input(L, n, ref, what, role)


def _cell_params(L, n, what, params) -> list:
    """[(w_ih, w_hh, b_ih, b_hh, where)] and reduce_range of torch.classes.rnn.CellParamsBase objects
    ('quantized_dynamic' state: biases, [], [reduce_range], [packed_ih, packed_hh]; RNN.cpp)."""
    import torch

    cells, reduce_range = [], None
    for k, p in enumerate(params):
        if not isinstance(p, torch.ScriptObject):
            L.fail(n, what, f"expects packed cell parameters, got {type(p).__name__}")
        state = p.__getstate__()[0]
        if state[0] != "quantized_dynamic":
            L.fail(n, what, f"cell parameters of kind {state[0]!r} are not supported (int8 'quantized_dynamic' "
                            "are; float16 dynamic quantization runs FBGEMM's fp16 GEMM, not modelled)")
        w_ih, b_ih = torch.ops.quantized.linear_unpack(state[4][0])
        w_hh, b_hh = torch.ops.quantized.linear_unpack(state[4][1])
        cells.append((w_ih, w_hh, b_ih, b_hh, f"params[{k}]"))
        reduce_range = bool(state[3][0]) if state[3] else False
    return cells, bool(reduce_range)


def c_quantized_lstm(L, n, name, x, hx, params, has_biases, num_layers, dropout, train, bidirectional,
                     batch_first=None, dtype=None, use_dynamic=False):
    """aten::quantized_lstm.input (nnqd.LSTM.forward_tensor, scripted): its 3 outputs (output, h_n, c_n)."""
    what = "aten::quantized_lstm"
    if not isinstance(hx, (list, tuple)) or batch_first is None:
        L.fail(n, what, "the PackedSequence form (quantized_lstm.data) is not supported")
    if train and dropout:
        L.fail(n, what, "dropout in training mode is random; call model.eval()")
    x = _float_input(L, n, x, what, "input")
    h0, c0 = _ts_state(L, n, hx[0], what, "h_0"), _ts_state(L, n, hx[1], what, "c_0")
    cells, reduce_range = _cell_params(L, n, what, params)
    outs = emit_layers(L, n, x, h0, c0, cells, "lstm", n.name, what, int(num_layers), 2 if bidirectional else 1,
                       bool(batch_first), reduce_range)
    L.values[n.name] = [outs["output"], outs["h_n"], outs["c_n"]]
    return L.values[n.name]


def c_quantized_gru(L, n, name, x, hx, params, has_biases, num_layers, dropout, train, bidirectional,
                    batch_first=None):
    """aten::quantized_gru.input (nnqd.GRU.forward_tensor, scripted): its 2 outputs (output, h_n)."""
    what = "aten::quantized_gru"
    if isinstance(params, bool) or batch_first is None:
        L.fail(n, what, "the PackedSequence form (quantized_gru.data) is not supported")
    if train and dropout:
        L.fail(n, what, "dropout in training mode is random; call model.eval()")
    x = _float_input(L, n, x, what, "input")
    cells, reduce_range = _cell_params(L, n, what, params)
    outs = emit_layers(L, n, x, _ts_state(L, n, hx, what, "h_0"), None, cells, "gru", n.name, what,
                       int(num_layers), 2 if bidirectional else 1, bool(batch_first), reduce_range)
    L.values[n.name] = [outs["output"], outs["h_n"]]
    return L.values[n.name]


def c_cell_dynamic(mode):
    """quantized::quantized_{lstm,gru,rnn_tanh,rnn_relu}_cell_dynamic(input, hx, w_ih, w_hh, b_ih, b_hh)."""
    def rule(L, n, name, x, hx, packed_ih, packed_hh, b_ih=None, b_hh=None):
        import torch

        what = name
        w_ih, pb_ih = torch.ops.quantized.linear_unpack(packed_ih)
        w_hh, pb_hh = torch.ops.quantized.linear_unpack(packed_hh)
        if w_ih.dtype != torch.qint8:
            L.fail(n, what, f"weights of dtype {w_ih.dtype} are not supported (qint8 is)")
        if mode == "lstm":
            h0, c0 = _ts_state(L, n, hx[0], what, "h_0"), _ts_state(L, n, hx[1], what, "c_0")
        else:
            h0, c0 = _ts_state(L, n, hx, what, "h_0"), None
        x = _float_input(L, n, x, what, "input")
        consts, per_channel = _weights(L, n, what, w_ih, w_hh, pb_ih, pb_hh)
        cell = L.emit(SubNode(f"{n.name}_cell", n), "dynamic_rnn_cell", [x, h0, c0], dtype="float32",
                      attrs={"mode": mode, "reduce_range": True, "per_channel": per_channel}, consts=consts,
                      torch_op=name, source=n.name, names={})
        outs = [L.emit(SubNode(f"{n.name}_{k}", n), "rnn_result", [[cell]], dtype="float32",
                       attrs={"what": k, "layers": 0, "directions": 1, "batch_first": False,
                              "states": 2 if mode == "lstm" else 1}, torch_op=name, source=n.name, names={})
                for k in (("h_n", "c_n") if mode == "lstm" else ("h_n",))]
        L.values[n.name] = outs if mode == "lstm" else outs[0]
        return L.values[n.name]
    return rule


CALLS.update({
    "aten::zeros": c_zeros,
    "aten::quantized_lstm": c_quantized_lstm,
    "aten::quantized_gru": c_quantized_gru,
    "quantized::quantized_lstm_cell_dynamic": c_cell_dynamic("lstm"),
    "quantized::quantized_gru_cell_dynamic": c_cell_dynamic("gru"),
    "quantized::quantized_rnn_tanh_cell_dynamic": c_cell_dynamic("rnn_tanh"),
    "quantized::quantized_rnn_relu_cell_dynamic": c_cell_dynamic("rnn_relu"),
})
