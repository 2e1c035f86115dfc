"""The glossary: every scale and zero point the model holds, by its state_dict name, and
what it belongs to (the input of which op, the output of which op, which weight)."""
from __future__ import annotations

import numpy as np

from .doc import Table, Val

def consumers(program) -> dict:
    """tensor name -> [nodes reading it]"""
    out = {}
    for n in program.nodes:
        for i in _flat(n.inputs):
            if isinstance(i, str):
                out.setdefault(i, []).append(n)
    return out


def _flat(xs):
    for x in xs:
        if isinstance(x, list):
            yield from _flat(x)
        else:
            yield x


def scale_names(program) -> dict:
    """tensor name -> (state_dict name of its scale or None, of its zero point or None)."""
    prod = program.producers()
    out = {}
    for t in program.tensors:
        n = prod.get(t)
        nm = {**graph_names(program, n), **n.names} if n is not None else {}
        out[t] = (nm.get("out_scale"), nm.get("out_zero_point"))
    return out


def graph_names(program, node) -> dict:
    """Where a PT2E (Q/DQ graph) program keeps node's scales and zero points: every quantized tensor
    is named after the graph's quantize_per_tensor node whose scale and zero_point arguments set it;
    a conv/linear's weight is the int8 constant its dequantize node reads. {} for other programs."""
    if program.meta.get("format") != "pt2e":
        return {}
    out = {"out_scale": f"{node.output}.scale", "out_zero_point": f"{node.output}.zero_point"}
    if node.op in ("linear", "conv"):
        out["weight"] = f"{node.source}.weight"
    if node.consts.get("bias") is not None:
        out["bias"] = f"{node.source}.bias"
    return out


def graph_what(program, node, key) -> str:
    """The words for a graph_names entry: which graph node holds it."""
    if key in ("out_scale", "out_zero_point"):
        arg = "scale" if key == "out_scale" else "zero_point"
        return f"; the {arg} argument of graph node {node.output} (quantized_decomposed.quantize_per_tensor)"
    return ""


def _readers(program, cons, t):
    return [n.name for n in cons.get(t, []) if n.op not in ("size",)]


def glossary(program, state_dict_keys=None) -> tuple:
    """(intro lines, Table). state_dict_keys: the live model's keys (to name the ones the
    integer program does not use); None for a .qgp."""
    cons = consumers(program)
    prod = program.producers()
    rows = []
    seen = set()
    for node in program.nodes:
        info = program.tensors.get(node.output)
        readers = _readers(program, cons, node.output)
        rd = (", input of " + ", ".join(readers)) if readers else ", a model output"
        names = {**graph_names(program, node), **node.names}
        for key, field in (("out_scale", "scale"), ("out_zero_point", "zero_point")):
            name = names.get(key)
            if info is None or not info.quantized:
                continue
            v = Val(getattr(info, field), ("tensor", node.output, field))
            what = ("scale" if field == "scale" else "zero point") + f" of the output of {node.name} ({node.op})" + rd
            what += graph_what(program, node, key) if key not in node.names else ""
            if name is None:
                if field == "scale":
                    what += "; not stored in the model: " + _why_unnamed(node)
                rows.append([f"({node.name} output {field.replace('_', ' ')})", [v], what])
            elif name not in seen:
                seen.add(name)
                rows.append([name, [v], what])
        if node.op in ("linear", "conv") and "weight" in node.consts:
            name = names.get("weight") or f"({node.name} weight)"
            w = np.asarray(node.consts["weight"])
            ws = np.asarray(node.consts["weight_scale"]).reshape(-1)
            wz = np.asarray(node.consts["weight_zero_point"]).reshape(-1)
            per = "per output channel" if node.attrs.get("per_channel") or ws.size > 1 else "per tensor"
            s_line = [Val(ws[0], ("const", node.name, "weight_scale", (0,)))]
            if ws.size > 1:
                s_line += [", ", Val(ws[1], ("const", node.name, "weight_scale", (1,))), f", … ({ws.size} scales)"]
            z_line = [Val(wz[0], ("const", node.name, "weight_zero_point", (0,)))] + \
                ([f" (and {wz.size - 1} more)"] if wz.size > 1 else [])
            where = "inside the packed params, the qint8 weight's own q_scale()" if "_packed_params" in name \
                else "the weight's quantization"
            if "weight" in graph_names(program, node):
                where = f"arguments of the graph's dequantize node that feeds {node.source}"
            rows.append([name + " : weight scale", s_line,
                         f"scale of {node.name}'s weight int8{list(w.shape)}, {per} ({where})"])
            rows.append([name + " : weight zero point", z_line, f"zero point of {node.name}'s weight"])
            if node.consts.get("bias") is not None:
                rows.append([(names.get("bias") or f"({node.name} bias)") + " : bias", "float32" +
                             str(list(np.shape(node.consts["bias"]))),
                             f"{node.name}'s bias, kept in float: each engine turns it into accumulator units its own way"])
    for t in program.inputs:
        info = program.tensors[t]
        if info.quantized:
            rows.append([f"(input {t} scale)", [Val(info.scale, ("tensor", t, "scale"))], "scale of a quantized model input"])
    if state_dict_keys:
        named = set()
        for n in program.nodes:
            for v in n.names.values():
                named.update(v if isinstance(v, list) else [v])
        for k in state_dict_keys:
            if k not in named:
                rows.append([k, "", _other_key(k)])
    intro = []
    first = next((n for n in program.nodes if n.op in ("linear", "conv")), None)
    if first is not None:
        src = first.inputs[0]
        sx_name = scale_names(program).get(src, (None, None))[0] or f"the scale of {src}"
        fn = {**graph_names(program, first), **first.names}
        so_name = fn.get("out_scale") or f"the output scale of {first.name}"
        wn = fn.get("weight") or "its weight"
        intro.append(["Why several scales: a quantized ", first.op, " such as ", first.name, " involves three. ",
                      "Its input's (", sx_name, " = ", Val(first.attrs["x_scale"], ("attr", first.name, "x_scale")),
                      ", set by the op that produced the input), its weight's (",
                      Val(np.asarray(first.consts["weight_scale"]).reshape(-1)[0],
                          ("const", first.name, "weight_scale", (0,))),
                      ", stored inside ", wn, ") and its output's (", so_name, " = ",
                      Val(first.attrs["out_scale"], ("attr", first.name, "out_scale")), "). ",
                      "The integer sum Σ x_q·w_q is in units of s_x·s_w; the bias is converted to those units, "
                      "and multiplying by s_x·s_w/s_y re-expresses the sum in the output's units, rounded to "
                      "integers and offset by the output zero point. The output scale of one layer is the input "
                      "scale of the next."])
    return intro, Table(["name", "value", "what it is"], rows)


def _why_unnamed(node) -> str:
    if node.op in ("max_pool", "avg_pool", "adaptive_avg_pool", "relu", "reshape", "flatten", "cat",
                   "upsample_nearest", "mean", "identity", "hardtanh"):
        return "this op keeps its input's quantization (or derives it)"
    return "fixed by the op or not recorded in the program"


def _other_key(k: str) -> str:
    if k.endswith("dtype"):
        return "the packed weight's dtype (not a scale)"
    if k.endswith("running_mean") or k.endswith("running_var"):
        return "batch-norm statistics"
    return "other model state (not a scale or zero point used by the integer program)"
