"""Build the explanation of a program on one input, from the engine's trace.

Every number placed in the document is a `Val` read from the trace (`prog.run(..., trace=)`),
the engine's tensors, or the program's parameters; the only numbers computed here are "what
another engine would do" (`other_engine_value`, from qgolden.numerics), marked as such.
"""
from __future__ import annotations

import numpy as np

from ..numerics.profile import conv_backend, gemm_saturates, linear_backend
from . import texts
from .access import memory_order, trace_index
from .doc import Code, Document, Hist, Section, Table, Val
from .facts import layer_facts
from .glossary import glossary, scale_names
from .near_tie import NEAR_TIE_REL, float64_pre_round, half_boundary, is_near_tie, near_tie_mask, rne, tie_mask

MAX_SHOWN = 8  # elements of one tensor shown before eliding

# callables (node, program) -> list of Extra (or None): extra blocks per op section, e.g. the
# integer-only parameters (M0, shift, int32 bias) of the certification. Callers may
# also pass `extra=` to build_document.
EXTRA_PROVIDERS: list = []


def runtime_name(engine) -> str:
    """Whose integers a program reproduces, for the reader: PyTorch, or an ONNX runtime and its kernels."""
    if engine == "onnxruntime":
        return "ONNX Runtime's CPU provider (MLAS kernels)"
    if engine == "onnx-reference":
        return "the ONNX reference evaluator"
    return "PyTorch"


def register_extra(provider) -> None:
    """Add a provider of extra per-node blocks to every explanation built afterwards."""
    if provider not in EXTRA_PROVIDERS:
        EXTRA_PROVIDERS.append(provider)


class ExplainError(ValueError):
    """Bad request (no such layer, sample out of range...)."""


def run_traced(program, inputs):
    """(trace, env): the engine's own intermediates, and every tensor's value."""
    trace = {}
    _, env = program.run(*inputs, trace=trace, keep=True)
    return trace, env


class Ctx:
    def __init__(self, program, trace, env, sample):
        self.program = program
        self.trace = trace
        self.env = env
        self.sample = sample
        first = env[program.inputs[0]] if program.inputs else None
        self.batch = int(np.shape(first)[0]) if first is not None and np.ndim(first) >= 1 else None
        self.snames = scale_names(program)
        self.producers = program.producers()

    def batched(self, shape) -> bool:
        return self.batch is not None and len(shape) >= 1 and shape[0] == self.batch

    def sample_indices(self, shape):
        """All indices of the shown sample (C order)."""
        shape = tuple(shape)
        if self.batched(shape):
            rest = shape[1:]
            return [(self.sample,) + tuple(i) for i in np.ndindex(*rest)] if rest else [(self.sample,)]
        return [tuple(i) for i in np.ndindex(*shape)]


# ---------------------------------------------------------------------------------------------
# elided views

def view_indices(ctx, shape):
    """(indices to show, note): the sample, its first channel if it has several dims, a few
    elements (first 6 and last 2 when there are more than 8)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0:
        return [()], ""
    fixed = []
    rest = shape
    note = []
    if ctx.batched(shape) and len(shape) >= 2:
        fixed.append(ctx.sample)
        rest = shape[1:]
        note.append(f"sample {ctx.sample}")
    if len(rest) >= 2 and int(np.prod(rest)) > MAX_SHOWN:
        fixed.append(0)
        rest = rest[1:]
        note.append("channel 0")
    n = int(np.prod(rest)) if rest else 1
    flat = list(range(n)) if n <= MAX_SHOWN else list(range(6)) + [n - 2, n - 1]
    idx = [tuple(fixed) + (tuple(np.unravel_index(f, rest)) if rest else ()) for f in flat]
    idx = [tuple(int(i) for i in t) for t in idx]
    if n > MAX_SHOWN:
        note.append(f"{len(flat)} of {n} values")
    return idx, ", ".join(note)


def elided_line(ctx, arr, src_of, shape_label=True):
    """A Line '[a, b, …, y, z]  (shape (…), sample s, channel 0, 8 of 36 values)'."""
    arr = np.asarray(arr)
    idx, note = view_indices(ctx, arr.shape)
    line = ["["]
    total = _count_after_fixed(ctx, arr.shape)
    for j, i in enumerate(idx):
        if j:
            line.append(", ")
        if total > MAX_SHOWN and j == 6:
            line.append("…, ")
        line.append(Val(_item(arr[i]), src_of(i)))
    line.append("]")
    if shape_label:
        line.append(f"  shape {tuple(arr.shape)}" + (f"; {note}" if note else ""))
    return line


def _count_after_fixed(ctx, shape):
    shape = tuple(shape)
    rest = shape[1:] if ctx.batched(shape) and len(shape) >= 2 else shape
    if len(rest) >= 2 and int(np.prod(rest)) > MAX_SHOWN:
        rest = rest[1:]
    return int(np.prod(rest)) if rest else 1


def _item(v):
    v = np.asarray(v)[()]
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def label(idx) -> str:
    return "[" + ",".join(str(i) for i in idx) + "]"


# ---------------------------------------------------------------------------------------------
# document

def float_reference_of(program, env, float_reference, node):
    """The float model's output of node from float_reference (keyed by node name or output tensor
    name), checked against the layer's output shape; None when it holds none for node."""
    if not float_reference:
        return None
    ref = float_reference.get(node.name, float_reference.get(node.output))
    if ref is None:
        return None
    ref = np.asarray(ref)
    out_shape = np.shape(env[node.output])
    if ref.shape != out_shape or ref.dtype.kind not in "fiu":
        raise ExplainError(f"float reference of layer {node.name!r}: {ref.dtype} {tuple(ref.shape)}, but the "
                           f"layer's output is {tuple(out_shape)}")
    return ref


def model_graph(program) -> list:
    """(key, number, name, op, producer keys) per node in program order: the graph the HTML draws."""
    producers = program.producers()
    out = []
    for i, n in enumerate(program.nodes):
        srcs = []
        for ref in n.inputs:
            for r in (ref if isinstance(ref, list) else [ref]):
                p = producers.get(r) if isinstance(r, str) else None
                if p is not None and p.name not in srcs:
                    srcs.append(p.name)
        out.append((n.name, i + 1, n.name, n.op, srcs))
    return out


def edge_labels(program) -> dict:
    """{(producer, consumer): "s=SCALE z=ZERO_POINT"} for every quantized tensor between two nodes
    (the graph's edge labels), scales in 4 significant digits."""
    producers = program.producers()
    labels = {}
    for n in program.nodes:
        for ref in n.inputs:
            for r in (ref if isinstance(ref, list) else [ref]):
                p = producers.get(r) if isinstance(r, str) else None
                info = program.tensors.get(r) if isinstance(r, str) else None
                if p is not None and info is not None and info.quantized and np.size(info.scale) == 1:
                    labels[(p.name, n.name)] = f"s={float(info.scale):.4g} z={int(info.zero_point)}"
    return labels


def integer_summary(program) -> str:
    """One line on the program's integer-only form (integer_params, certified per op): how many
    requantizing layers, and their channels by method; or why there is none."""
    from .integer_extra import cached_integer_params

    params = cached_integer_params(program)
    if "__error__" in params:
        return f"no integer-only form: {params['__error__']}"
    methods = {}
    layers = 0
    for p in params.values():
        chans = p.get("channels") or []
        if chans:
            layers += 1
        for ch in chans:
            m = ch.get("method", "?") + (" (binade segments)" if ch.get("segment_starts") else "")
            methods[m] = methods.get(m, 0) + 1
    if not layers:
        return "integer-only: no requantizing layer"
    return (f"certified integer-only (32-bit multipliers, round half up), {layers} requantizing layers: "
            + ", ".join(f"{n} {m} channels" for m, n in sorted(methods.items())))


def build_document(program, trace, env, sample=0, layer=None, extra=None, state_dict_keys=None,
                   title=None, float_reference=None, model="") -> Document:
    """The explanation; float_reference: the float model's layer outputs {node or tensor name: array}
    (the HTML summary's SQNR is measured against them where given); model: what the user gave."""
    ctx = Ctx(program, trace, env, sample)
    if ctx.batch is not None and not (0 <= sample < ctx.batch):
        raise ExplainError(f"--sample {sample} is out of range: the input holds {ctx.batch} sample(s) (0..{ctx.batch - 1})")
    nodes = program.nodes
    if layer is not None:
        nodes = [n for n in program.nodes if n.name == layer or n.output == layer]
        if not nodes:
            raise ExplainError(f"no layer named {layer!r}; layers: " + ", ".join(n.name for n in program.nodes))
    if float_reference:
        known = {n.name for n in program.nodes} | {n.output for n in program.nodes}
        unknown = sorted(k for k in float_reference if k not in known)
        if unknown:
            raise ExplainError(f"float reference for {', '.join(map(repr, unknown[:5]))}: no such layer; layers: "
                               + ", ".join(n.name for n in program.nodes))
    prof = program.profile
    doc = Document(title or f"qgolden explain: engine {prof.get('engine')} ({prof.get('isa')})")
    xin = env[program.inputs[0]] if program.inputs else None
    if xin is not None:
        doc.intro.append([f"Input {program.inputs[0]}: "] + elided_line(
            ctx, xin, lambda i: ("env", program.inputs[0], i)))
    doc.intro.append([f"{len(program.nodes)} ops; engine {prof.get('engine')}, CPU {prof.get('isa')}; "
                      "every number below is the engine's own intermediate (the same computation as ",
                      Code("qgolden run"), f", bit-exact with {runtime_name(prof.get('engine'))})."])
    doc.model, doc.engine, doc.isa = model, str(prof.get("engine")), str(prof.get("isa"))
    doc.input_desc = "; ".join(f"{name}: {np.asarray(env[name]).dtype} {tuple(np.shape(env[name]))}"
                               for name in program.inputs if name in env)
    doc.graph = model_graph(program)
    doc.edge_labels = edge_labels(program)
    doc.integer_summary = integer_summary(program)
    doc.glossary_intro, doc.glossary = glossary(program, state_dict_keys)
    providers = list(EXTRA_PROVIDERS) + ([extra] if callable(extra) else list(extra or []))
    for i, node in enumerate(program.nodes):
        if node not in nodes:
            continue
        sec = section(ctx, node, i + 1)
        backend = backend_of(program, node) if has_gemm_trace(program, node, trace) else None
        sec.facts = layer_facts(ctx, node, i + 1, float_reference_of(program, env, float_reference, node), backend)
        for p in providers:
            got = p(node, program)
            if got:
                sec.extra.extend(got)
        doc.sections.append(sec)
    return doc


GEMM_KEYS = {"acc", "multiplier", "pre_round", "rounded", "out"}


def has_gemm_trace(program, node, trace) -> bool:
    """A linear/conv run by one of the PyTorch engine kernels, with their intermediates traced
    (other runtimes, e.g. PT2E ones, get the generic section of their own trace)."""
    return (node.op in ("linear", "conv") and backend_of(program, node) in ("fbgemm", "qnnpack", "onednn")
            and GEMM_KEYS <= set(trace.get(node.name) or {}))


def section(ctx, node, number) -> Section:
    if has_gemm_trace(ctx.program, node, ctx.trace):
        return gemm_section(ctx, node, number)
    if node.op == "quantize":
        return quantize_section(ctx, node, number)
    if node.op in ("dynamic_rnn_layer", "dynamic_rnn_cell"):
        from .rnn import rnn_section

        return rnn_section(ctx, node, number, _title(node, number))
    if node.op == "embedding_bag" and (ctx.trace.get(node.name) or {}).get("running") is not None:
        return embedding_section(ctx, node, number)
    return generic_section(ctx, node, number)


def _title(node, number):
    src = f" — {node.torch_op}" if node.torch_op else ""
    return f"{number}. {node.name}: {node.op}{src}"


def _name(x, default):
    return x if x else default


# ---------------------------------------------------------------------------------------------
# linear / conv

def backend_of(program, node) -> str:
    if node.op == "linear":
        return linear_backend(program.profile)
    zw = np.asarray(node.consts["weight_zero_point"])
    return conv_backend(program.profile, int(node.attrs.get("groups", 1)), not np.any(zw != 0))


def onednn_kernel_of(node, program=None) -> str:
    """The oneDNN output stage of a linear or conv node (requantize_onednn): 'combined',
    'sequential' or 'ref', for the profile and input shape of `program` (onednn_node_output_stage)."""
    from ..integer.transform import onednn_node_output_stage
    from ..numerics.profile import make_profile

    profile = program.profile if program is not None else make_profile("onednn")
    xt = program.tensors.get(node.inputs[0]) if program is not None else None
    return onednn_node_output_stage(node, profile, getattr(xt, "shape", None))


def can_saturate(program, node, path) -> bool:
    b = backend_of(program, node)
    if b == "fbgemm":
        return path == "depthwise" or gemm_saturates(program.profile)
    if b == "onednn":
        return gemm_saturates(program.profile) and (node.op == "linear" or path == "jit")
    return False


def output_layout(node, arr, out_shape):
    """A linear/conv trace array kept output channel last ([..., O] rows, as the requantization
    traces are) in the output's own layout, or None when it is laid out otherwise."""
    a = np.asarray(arr)
    out_shape = tuple(out_shape)
    n_ch = out_shape[-1] if node.op == "linear" else (out_shape[1] if len(out_shape) > 1 else None)
    if n_ch is None or a.size != int(np.prod(out_shape)) or a.ndim == 0 or a.shape[-1] != n_ch:
        return None
    if node.op == "linear":
        return a.reshape(out_shape)
    return np.moveaxis(a.reshape((out_shape[0],) + out_shape[2:] + (n_ch,)), -1, 1)


def gemm_mark_masks(ctx, node):
    """{mark: bool array in the output's layout} over the whole output, computed from the trace
    arrays at once (the same rules as gemm_marks_per_element), or None when a trace array is laid
    out otherwise."""
    t = ctx.trace[node.name]
    out = np.asarray(ctx.env[node.output])
    arrays = {k: output_layout(node, t[k], out.shape) for k in ("rounded", "pre_round", "saturated_pairs") if k in t}
    if arrays.get("rounded") is None or arrays.get("pre_round") is None or (
            "saturated_pairs" in t and arrays["saturated_pairs"] is None):
        return None
    zo = int(node.attrs["out_zero_point"])
    relu = bool(node.attrs.get("relu"))
    rounded, pre = arrays["rounded"], arrays["pre_round"].astype(np.float64)
    outi = out.astype(np.int64)
    if backend_of(ctx.program, node) == "onednn":
        m_relu = (pre == float(zo)) if relu else np.zeros(out.shape, bool)
        m_clamp = rounded.astype(np.float64) != outi
    else:
        v = rounded.astype(np.int64) + zo
        m_relu = (v < zo) & (outi == (zo if relu else 0)) if relu else np.zeros(out.shape, bool)
        m_clamp = ~m_relu & (v != outi)
    m_tie = tie_mask(pre)
    masks = {"relu": m_relu, "clamp": m_clamp, "tie": m_tie, "near_tie": ~m_tie & near_tie_mask(pre)}
    if "saturated_pairs" in t:
        masks["sat"] = arrays["saturated_pairs"] > 0
    return masks


def gemm_marks(ctx, node, out_idx_list):
    """Per element: set of marks, from the trace (clamp, relu, sat, tie, near_tie)."""
    masks = gemm_mark_masks(ctx, node) if len(out_idx_list) > MAX_SHOWN else None
    if masks is None:
        return gemm_marks_per_element(ctx, node, out_idx_list)
    marks = {tuple(i): set() for i in out_idx_list}
    for kind, mask in masks.items():
        for i in zip(*np.nonzero(mask)):
            got = marks.get(tuple(int(u) for u in i))
            if got is not None:
                got.add(kind)
    return marks


def gemm_marks_per_element(ctx, node, out_idx_list):
    """Per element: set of marks, one element at a time through trace_index (any trace layout)."""
    t = ctx.trace[node.name]
    backend = backend_of(ctx.program, node)
    out_shape = np.shape(ctx.env[node.output])
    zo = int(node.attrs["out_zero_point"])
    relu = bool(node.attrs.get("relu"))
    lo = zo if relu else 0
    marks = {}
    for idx in out_idx_list:
        m = set()
        g = lambda k: _item(np.asarray(t[k])[trace_index(node, t[k], idx, out_shape, key=k)])  # noqa: E731
        rounded, pre, out = g("rounded"), g("pre_round"), int(g("out"))
        if backend == "onednn":
            if relu and float(pre) == float(zo):
                m.add("relu")
            if float(rounded) != out:
                m.add("clamp")
        else:
            v = int(rounded) + zo
            if relu and v < zo and out == lo:
                m.add("relu")
            elif v != out:
                m.add("clamp")
        p = float(pre)
        if np.isfinite(p) and p - np.floor(p) == 0.5:
            m.add("tie")
        elif is_near_tie(p):
            m.add("near_tie")
        if "saturated_pairs" in t and int(g("saturated_pairs")) > 0:
            m.add("sat")
        marks[idx] = m
    return marks


def choose_elements(ctx, node, out_shape, marks_of):
    """Up to MAX_SHOWN output elements of the sample: the first ones, with the first element
    of each kind of mark swapped in."""
    all_idx = ctx.sample_indices(out_shape)
    if len(all_idx) <= MAX_SHOWN:
        return all_idx, {}
    idx, _ = view_indices(ctx, out_shape)
    idx = idx[:6]
    marks = marks_of(all_idx) if marks_of else {}
    for kind in ("sat", "tie", "near_tie", "clamp", "relu"):
        first = next((i for i in all_idx if kind in marks.get(i, ())), None)
        if first is not None and first not in idx:
            idx.append(first)
        if len(idx) >= MAX_SHOWN:
            break
    idx = sorted(set(idx))[:MAX_SHOWN]
    return idx, marks


def other_engine_value(program, node, formula, index):
    """What another engine would use at this place (not from the trace: labelled as such)."""
    from ..numerics.requantize import bias_fbgemm, bias_qnnpack, fbgemm_scales

    a, c = node.attrs, node.consts
    n = np.asarray(c["bias"]).shape[0]
    if formula == "bias_qnnpack":
        return _item(bias_qnnpack(c["bias"], a["x_scale"], c["weight_scale"], bool(a.get("per_channel")))[index])
    if formula == "bias_fbgemm":
        atw, _ = fbgemm_scales(a["x_scale"], c["weight_scale"], a["out_scale"], n)
        return _item(bias_fbgemm(c["bias"], atw, bool(a.get("per_channel")))[index])
    raise KeyError(formula)


def _oval(program, node, formula, index):
    return Val(other_engine_value(program, node, formula, index), ("other", formula, node.name, index))


def gemm_section(ctx, node, number) -> Section:
    program, t = ctx.program, ctx.trace[node.name]
    a, c = node.attrs, node.consts
    out = ctx.env[node.output]
    out_shape = np.shape(out)
    backend = backend_of(program, node)
    path = t.get("path", backend)
    sat_possible = can_saturate(program, node, path)
    has_bias = c.get("bias") is not None
    relu = bool(a.get("relu"))
    xin = node.inputs[0]
    sx_name, zx_name = ctx.snames.get(xin, (None, None))
    names = node.names
    wname = names.get("weight")
    per_channel = bool(a.get("per_channel")) or np.asarray(c["weight_scale"]).size > 1
    sec = Section(node.name, _title(node, number))
    kind = "fully connected layer" if node.op == "linear" else (
        "depthwise convolution" if int(a.get("groups", 1)) > 1 and int(a.get("groups", 1)) == np.shape(ctx.env[xin])[1]
        else "convolution")
    sec.what = (f"{kind}{' + ReLU' if relu else ''} on {backend} "
                f"({'kernel path ' + path + ', ' if node.op == 'conv' else ''}"
                f"{'int16 pair saturation possible on this CPU' if sat_possible else 'exact int32 products'}): "
                f"integer sum of products, bias, one multiplier, round, add the output zero point, clamp.")
    sec.formula = texts.gemm_formula(node.op, backend, has_bias, relu, sat_possible, per_channel, onednn_kernel_of(node, program))
    zy = Val(a["out_zero_point"], ("attr", node.name, "out_zero_point"))
    rows = [
        ["x_q", f"{xin} (output of {getattr(ctx.producers.get(xin), 'name', 'the model input')})",
         f"uint8{list(np.shape(ctx.env[xin]))}"],
        ["s_x", _name(sx_name, "(input scale: not a state_dict entry)"), [Val(a["x_scale"], ("attr", node.name, "x_scale"))]],
        ["z_x", _name(zx_name, "(input zero point)"), [Val(a["x_zero_point"], ("attr", node.name, "x_zero_point"))]],
        ["w_q", _name(wname, "(weight)"), f"int8{list(np.shape(c['weight']))}"],
        ["s_w", (wname + " (the weight's q_scale)") if wname else "(weight scale)",
         [Val(np.asarray(c["weight_scale"]).reshape(-1)[0], ("const", node.name, "weight_scale", (0,)))]
         + ([f" … per channel, {np.asarray(c['weight_scale']).size} scales"] if per_channel else [])],
        ["z_w", (wname + " (the weight's q_zero_point)") if wname else "(weight zero point)",
         [Val(np.asarray(c["weight_zero_point"]).reshape(-1)[0], ("const", node.name, "weight_zero_point", (0,)))]],
    ]
    if has_bias:
        rows.append(["bias", _name(names.get("bias"), "(bias)"), f"float32{list(np.shape(c['bias']))}"])
    rows += [["s_y", _name(names.get("out_scale"), "(output scale)"), [Val(a["out_scale"], ("attr", node.name, "out_scale"))]],
             ["z_y", _name(names.get("out_zero_point"), "(output zero point)"), [zy]]]
    sec.where = Table(["symbol", "in the model", "value"], rows)

    def marks_of(idx_list):
        return gemm_marks(ctx, node, idx_list)

    shown, _ = choose_elements(ctx, node, out_shape, marks_of)
    marks = gemm_marks(ctx, node, shown)

    def tv(key, idx, style=""):
        arr = t[key]
        ti = trace_index(node, arr, idx, out_shape, key=key)
        return Val(_item(np.asarray(arr)[ti]), ("trace", node.name, key, ti), style)

    # the inputs of this op (the sample's, elided) and the weight rows of the shown channels
    xin_v = ctx.env[xin]
    inputs = Table(["tensor", "values"], [[f"x_q ({xin})", elided_line(ctx, xin_v, lambda i: ("env", xin, i))]])
    chans = []
    for idx in shown:
        ch = idx[-1] if node.op == "linear" else idx[1]
        if ch not in chans:
            chans.append(ch)
    w = np.asarray(c["weight"])
    for ch in chans[:3]:
        wr = w[ch].reshape(-1)
        k = wr.size
        sel = list(range(k)) if k <= MAX_SHOWN else list(range(6)) + [k - 2, k - 1]
        line = ["["]
        for j, f in enumerate(sel):
            if j:
                line.append(", ")
            if k > MAX_SHOWN and j == 6:
                line.append("…, ")
            wi = (ch,) + tuple(int(u) for u in np.unravel_index(f, w.shape[1:]))
            line.append(Val(_item(w[wi]), ("const", node.name, "weight", wi)))
        line.append(f"]  {k} weights" + (" (c, kh, kw flattened)" if node.op == "conv" else ""))
        inputs.rows.append([f"w_q[{ch}]", line])
    sec.tables.append(inputs)

    # per element: the engine's intermediates
    any_sat = any("sat" in marks[i] for i in shown)
    bias_label = {"fbgemm": "bias term b' (float, accumulator units)", "qnnpack": "bias term b_q (int32)",
                  "onednn": "bias (float, added after scaling)"}[backend]
    mult_label = {"fbgemm": "multiplier M = s_x·s_w/s_y", "qnnpack": "multiplier M = s_x·s_w/s_y",
                  "onednn": "weight scale s_w (after s_x')" if onednn_kernel_of(node, program) in ("ref", "sequential")
                  else "multiplier M = s_x'·s_w"}[backend]
    table = Table(["quantity"] + [label(i) for i in shown], [])
    table.rows.append(["acc (int32, as the kernel sums)"] + [[tv("acc", i, "sat" if "sat" in marks[i] else "")] for i in shown])
    if sat_possible:
        table.rows.append(["int16 pair sums saturated"] + [[tv("saturated_pairs", i, "sat" if "sat" in marks[i] else "")] for i in shown])
    if any_sat:
        table.rows.append(["exact Σ (no saturation)"] + [[tv("acc_exact", i)] for i in shown])
    if has_bias and t.get("bias_term") is not None:
        table.rows.append([bias_label] + [[tv("bias_term", i)] for i in shown])
    table.rows.append([mult_label] + [[tv("multiplier", i)] for i in shown])
    pre_label = "before rounding (+ z_y already)" if backend == "onednn" else "before rounding"
    table.rows.append([pre_label] + [[tv("pre_round", i, _tie_style(marks[i]))] for i in shown])
    table.rows.append(["rounded (half to even)"] + [[tv("rounded", i)] for i in shown])
    table.rows.append(["z_y"] + [[zy] for _ in shown])
    lo_cell = [zy] if relu else ["0"]
    table.rows.append(["clamp range"] + [["["] + lo_cell + [", 255]"] for _ in shown])
    table.rows.append(["y_q (output)"] + [[tv("out", i, _style(marks[i]))] for i in shown])
    table.rows.append(["real value (y_q − z_y)·s_y"] + [[tv("out_real", i)] for i in shown])
    n_all = len(ctx.sample_indices(out_shape))
    table.caption = (f"{node.output}: shape {tuple(out_shape)}; " +
                     (f"all {n_all} elements of sample {ctx.sample}" if len(shown) == n_all
                      else f"{len(shown)} of the sample's {n_all} elements"))
    sec.tables.append(table)

    # the formula with this input's numbers
    for i in shown if len(shown) <= MAX_SHOWN and n_all <= MAX_SHOWN else shown[:3]:
        sec.numbers.append(_gemm_numbers(node, backend, has_bias, relu, i, tv, zy, marks[i], program))

    # marks over the whole sample
    all_idx = ctx.sample_indices(out_shape)
    all_marks = marks_of(all_idx) if len(all_idx) <= 20000 else marks
    sec.marks = _mark_lines(node, all_idx, all_marks, tv, relu, zy)
    first_near = next((i for i in all_idx if "near_tie" in all_marks.get(i, ())), None)
    if first_near is not None:
        sec.marks.append(near_tie_line(ctx, node, tv("pre_round", first_near, "near_tie")))

    # engine differences, at the first shown element (with bias)
    firsts = {}
    for i in shown:
        firsts.setdefault(i[-1] if node.op == "linear" else i[1], i)
    chs = list(firsts.items())[:MAX_SHOWN]

    def listing(fn):
        line = ["["]
        for j, (ch, i) in enumerate(chs):
            line += ([", "] if j else []) + [fn(ch, i)]
        return line + ["]"]

    chl = "channel" + ("s " if len(chs) > 1 else " ") + ", ".join(str(ch) for ch, _ in chs)
    if has_bias:
        if backend == "fbgemm":
            sec.engine.append(["On qnnpack the bias would be quantized to int32: "]
                              + listing(lambda ch, i: _oval(program, node, "bias_qnnpack", (ch,))) + [" instead of "]
                              + listing(lambda ch, i: tv("bias_term", i)) + [f" ({chl}), and products are exact int32."])
            sec.engine.append(["On onednn the float bias is added after scaling: f32(acc·f32(s_x'·s_w)) + bias, bias = "]
                              + listing(lambda ch, i: Val(_item(np.asarray(c["bias"])[ch]), ("const", node.name, "bias", (ch,))))
                              + [", then multiplied by f32(1/s_y') (s_x', s_y': the float reciprocals of PyTorch's "
                                 "float reciprocals)."])
        elif backend == "qnnpack":
            sec.engine.append(["On x86/fbgemm the bias would stay float: "]
                              + listing(lambda ch, i: _oval(program, node, "bias_fbgemm", (ch,))) + [" instead of the int32 "]
                              + listing(lambda ch, i: tv("bias_term", i)) + [f" ({chl}); "
                              "and without AVX512-VNNI FBGEMM sums u8·s8 pairs in saturating int16."])
        else:
            sec.engine.append(["On x86/fbgemm the bias enters as float bias/(s_x·s_w) = "]
                              + listing(lambda ch, i: _oval(program, node, "bias_fbgemm", (ch,)))
                              + ["; on qnnpack as the int32 "]
                              + listing(lambda ch, i: _oval(program, node, "bias_qnnpack", (ch,))) + [f" ({chl})."])
    if sat_possible:
        first = next((i for i in all_idx if "sat" in all_marks.get(i, ())), None)
        if first is not None:
            sec.engine.append([f"On an AVX512-VNNI CPU (exact int32 products) acc{label(first)} would be ",
                               tv("acc_exact", first), " instead of ", tv("acc", first, "sat"),
                               "; here (" + program.profile.get("isa", "") + ") ",
                               tv("saturated_pairs", first, "sat"),
                               " pair sum(s) x0·w0 + x1·w1 left int16 and were clipped to ±32767/−32768."])
        else:
            sec.engine.append(["No int16 pair sum saturated for this sample: an AVX512-VNNI CPU gives the same acc."])
    elif backend == "fbgemm" and node.op == "linear":
        sec.engine.append(["Without AVX512-VNNI (e.g. AVX2), FBGEMM sums pairs of u8·s8 products in saturating "
                           "int16: acc can differ there when |x0·w0 + x1·w1| > 32767."])
    sec.hists.append(_hist(ctx, node, out, all_idx, all_marks))
    return sec


def _style(m):
    for k in ("sat", "clamp", "relu", "tie", "near_tie"):
        if k in m:
            return k
    return ""


def _tie_style(m):
    return "tie" if "tie" in m else ("near_tie" if "near_tie" in m else "")


def near_tie_line(ctx, node, pre_val):
    """A Line for a near-tie pre-round value (a Val with a ("trace", node, key, index) src): its
    distance to the .5 boundary, and what float64 arithmetic gives there (when the op has a float64
    counterpart, near_tie.float64_pre_round)."""
    p = float(pre_val.value)
    b = half_boundary(p)
    line = [f"NEAR-TIE: before rounding ", pre_val, f" is {abs(p - b):.3g} from the .5 boundary {b:g} "
            f"(within a relative {NEAR_TIE_REL:g}); float32 rounds it to {rne(p)}"]
    ti = pre_val.src[3]
    backend = backend_of(ctx.program, node) if node.op in ("linear", "conv") else None
    v64 = float64_pre_round(node, ctx.trace, ctx.env, ti, backend)
    if v64 is not None:
        line += ["; float64 arithmetic (the input as typed, e.g. NumPy) gives ",
                 Val(v64, ("float64", node.name, ti)), f" → {rne(v64)}"]
        if rne(v64) != rne(p):
            line.append(": a hand calculation in float64 lands on the other side")
    return line


def _gemm_numbers(node, backend, has_bias, relu, i, tv, zy, m, program=None):
    line = [f"{label(i)}: "]
    if backend == "onednn":
        bias = [" + ", tv("bias_term", i)] if has_bias else []
        stage = onednn_kernel_of(node, program)
        if stage in ("ref", "sequential"):
            line += ["((", tv("acc", i), " · s_x') · ", tv("multiplier", i)] + bias
            line += [") / s_y'"] if stage == "ref" else [") · 1/s_y'"]
        else:
            line += ["(", tv("acc", i), " · ", tv("multiplier", i)] + bias + [") · 1/s_y'"]
        line += [(" → ReLU" if relu else ""), " + z_y = ", tv("pre_round", i), " → round ",
                 tv("rounded", i), " → clamp [0, 255] → ", tv("out", i, _style(m))]
    else:
        if has_bias and backend == "fbgemm":
            line += ["(", tv("acc", i), " + ", tv("bias_term", i), ") · ", tv("multiplier", i)]
        elif has_bias:
            line += ["(", tv("acc", i), " + ", tv("bias_term", i), ") · ", tv("multiplier", i)]
        else:
            line += [tv("acc", i), " · ", tv("multiplier", i)]
        line += [" = ", tv("pre_round", i, _tie_style(m)), " → round ", tv("rounded", i),
                 " → + z_y (", zy, ") → clamp [", zy if relu else "0", ", 255] → ", tv("out", i, _style(m))]
    notes = []
    if "relu" in m:
        notes.append("ReLU: below z_y, clamped to z_y")
    if "clamp" in m:
        notes.append("clamped")
    if "tie" in m:
        notes.append("exact .5 tie, rounded to even")
    if "near_tie" in m:
        notes.append("near-tie: see NEAR-TIE below")
    if "sat" in m:
        notes.append("int16 pair saturation in acc")
    if notes:
        line.append("   (" + "; ".join(notes) + ")")
    return line


def _mark_lines(node, all_idx, marks, tv, relu, zy):
    lines = []
    n = len(all_idx)
    for kind, words in (("relu", "ReLU clamped to z_y"), ("clamp", "clamped to the uint8 range"),
                        ("sat", "had int16 pair saturation in the accumulator"),
                        ("tie", "were exact .5 ties before rounding (rounded half to even)"),
                        ("near_tie", "were within a relative 1e-4 of a .5 boundary before rounding")):
        hit = [i for i in all_idx if kind in marks.get(i, ())]
        if not hit:
            continue
        i = hit[0]
        line = [f"{kind.upper()}: {len(hit)} of {n} elements {words}; e.g. {label(i)}: "]
        if kind == "sat":
            line += ["acc ", tv("acc", i, "sat"), " (exact Σ ", tv("acc_exact", i), ")"]
        elif kind in ("tie", "near_tie"):
            line += ["before rounding ", tv("pre_round", i, kind), " → ", tv("rounded", i)]
        else:
            line += ["rounded ", tv("rounded", i), " → y_q ", tv("out", i, kind)]
        lines.append(line)
    if not lines:
        lines.append([f"No clamping, ReLU, saturation or .5 tie among the sample's {n} elements."])
    return lines


def _hist(ctx, node, out, idx_list, marks, note="clamped (incl. ReLU)"):
    arr = np.asarray(out)
    vals = np.array([int(arr[i]) for i in idx_list]) if idx_list else np.zeros(0, int)
    lo, hi = (0, 255) if arr.dtype == np.uint8 else (-128, 127)
    counts = np.histogram(vals, bins=32, range=(lo, hi + 1))[0].tolist()
    if marks is None:
        clo = int((vals == lo).sum())
        chi = int((vals == hi).sum())
        note = f"at {lo} / {hi}"
    else:
        clo = sum(1 for i in idx_list if ({"clamp", "relu"} & marks.get(i, set())) and int(arr[i]) <= 128)
        chi = sum(1 for i in idx_list if "clamp" in marks.get(i, set()) and int(arr[i]) > 128)
    return Hist(f"{node.output} (sample {ctx.sample})", counts, lo, hi, int(vals.size), clo, chi, note,
                int(vals.min()) if vals.size else 0, int(vals.max()) if vals.size else 0)


# ---------------------------------------------------------------------------------------------
# quantize and every other op

def quantize_section(ctx, node, number) -> Section:
    a = node.attrs
    sec = Section(node.name, _title(node, number))
    sname, zname = node.names.get("out_scale"), node.names.get("out_zero_point")
    per_channel = a.get("axis") is not None
    sec.what = "turns the float input into integers: the model's first step, with the input scale and zero point."
    sec.formula = texts.op_text("quantize")[1] if not per_channel else texts.QUANTIZE_PER_CHANNEL[1]
    if not per_channel:
        sec.where = Table(["symbol", "in the model", "value"], [
            ["s", _name(sname, "(scale)"), [Val(a["scale"], ("attr", node.name, "scale"))]],
            ["z", _name(zname, "(zero point)"), [Val(a["zero_point"], ("attr", node.name, "zero_point"))]]])
    return _elementwise_body(ctx, node, sec)


def generic_section(ctx, node, number) -> Section:
    sec = Section(node.name, _title(node, number))
    what, formula = texts.pt2e_text(node, ctx.program) or texts.op_text(node.op, default=node.op)
    sec.what = what
    sec.formula = list(formula)
    info = ctx.program.tensors.get(node.output)
    rows = []
    for k in ("x_scale", "x_zero_point", "a_scale", "a_zero_point", "b_scale", "b_zero_point",
              "out_scale", "out_zero_point", "scale", "zero_point", "scalar", "min_val", "max_val"):
        v = node.attrs.get(k)
        if k.startswith("out_") and node.attrs.get("out_dtype") == "float32":
            continue  # a float32 output has no output quantization
        if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
            nm = _param_name(ctx, node, k)
            rows.append([k, nm, [Val(v, ("attr", node.name, k))]])
    if info is not None and info.quantized and not any(r[0] in ("out_scale", "scale") for r in rows):
        rows.append(["output scale", node.names.get("out_scale") or "(the op's rule)",
                     [Val(info.scale, ("tensor", node.output, "scale"))]])
        rows.append(["output zero point", node.names.get("out_zero_point") or "",
                     [Val(info.zero_point, ("tensor", node.output, "zero_point"))]])
    if rows:
        sec.where = Table(["symbol", "in the model", "value"], rows)
    return _elementwise_body(ctx, node, sec)


def embedding_section(ctx, node, number) -> Section:
    """A quantized embedding: which rows each bag reads, then one element's bag reduction index by index
    (the row's code, scale and bias, the per-sample weight, the running float32 sum)."""
    sec = generic_section(ctx, node, number)
    t = ctx.trace[node.name]
    rows, starts, ends, running = t["rows"], t["bag_start"], t["bag_end"], t["running"]
    a = node.attrs
    if not a.get("lookup") and a.get("mode", "sum") != "sum":
        sec.notes.append([f"built with mode {a['mode']!r}: PyTorch's quantized embedding bag ignores the mode "
                          "and sums (nnq.EmbeddingBag passes mode 0; the kernels never read it), and so does this program"])
    what = "index" if a.get("lookup") else "bag"
    listing = Table([what, "rows it reads, in order"], [])
    for m in range(min(len(starts), MAX_SHOWN)):
        b, e = int(starts[m]), int(ends[m])
        line = [] if b < e else ["none (empty): every element 0"]
        for i in range(b, min(e, b + MAX_SHOWN)):
            line += ([", "] if i > b else []) + [Val(int(rows[i]), ("trace", node.name, "rows", (i,)))]
        if e - b > MAX_SHOWN:
            line.append(f", … ({e - b} rows)")
        listing.rows.append([str(m), line])
    listing.caption = f"{len(starts)} {'lookups' if what == 'index' else 'bags'}" + (
        f", the first {MAX_SHOWN} shown" if len(starts) > MAX_SHOWN else "")
    sec.tables.insert(0, listing)
    full = [m for m in range(len(starts)) if ends[m] > starts[m]]
    if not full:
        return sec
    m, j = full[0], 0
    b, e = int(starts[m]), min(int(ends[m]), int(starts[m]) + MAX_SHOWN)
    lead = ctx.env[node.output].shape[:-1]
    out_idx = tuple(int(u) for u in np.unravel_index(m, lead)) + (j,) if lead else (j,)
    weighted = "per_sample_weights" in t
    cells = {k: [] for k in ("row r", "code q[r, j]", "scale[r]", "bias[r]", "weight w", "running sum")}
    for i in range(b, e):
        r = int(rows[i])
        cells["row r"].append([Val(r, ("trace", node.name, "rows", (i,)))])
        cells["code q[r, j]"].append([Val(_item(np.asarray(node.consts["codes"])[r, j]), ("const", node.name, "codes", (r, j)))])
        cells["scale[r]"].append([Val(_item(t["row_scale"][r]), ("trace", node.name, "row_scale", (r,)))])
        cells["bias[r]"].append([Val(_item(t["row_bias"][r]), ("trace", node.name, "row_bias", (r,)))])
        if weighted:
            cells["weight w"].append([Val(_item(t["per_sample_weights"][i]), ("trace", node.name, "per_sample_weights", (i,)))])
        cells["running sum"].append([Val(_item(running[i, j]), ("trace", node.name, "running", (i, j)))])
    tab = Table(["step"] + [f"index {i}" for i in range(b, e)],
                [[k] + v for k, v in cells.items() if v])
    tab.caption = (f"{node.output}{list(out_idx)}: {what} {m}, element j = {j}, from 0"
                   + ("" if a.get("lookup") else ", one index at a time in order")
                   + (f" (first {MAX_SHOWN} of {int(ends[m]) - b} indices)" if int(ends[m]) - b > MAX_SHOWN else ""))
    sec.tables.append(tab)
    return sec


def _param_name(ctx, node, k) -> str:
    """Where the model keeps parameter k of node: x_/a_/b_ scales and zero points are those of the
    input that carries them, out_ ones (and a quantize's own) are the node's output's."""
    if node.names.get(k):
        return node.names[k]
    field = 0 if k.endswith("scale") else 1
    src = {"x": 0, "a": 0, "b": 1}.get(k.split("_")[0])
    if k in ("scale", "zero_point") and node.op == "qdq_dequantize":
        src = 0
    if src is not None and len(node.inputs) > src and isinstance(node.inputs[src], str):
        return ctx.snames.get(node.inputs[src], (None, None))[field] or ""
    if k.startswith("out_") or k in ("scale", "zero_point"):
        return ctx.snames.get(node.output, (None, None))[field] or ""
    return ""


def _elementwise_body(ctx, node, sec):
    program, t = ctx.program, ctx.trace.get(node.name) or {}
    out = ctx.env[node.output]
    if not isinstance(out, np.ndarray):
        sec.notes.append([f"value: {out!r} (shape arithmetic)"])
        return sec
    out_shape = out.shape
    order = memory_order(program, node, ctx.env)
    # scalars of the trace (kernel, multipliers...)
    for k, v in t.items():
        if isinstance(v, str):
            sec.notes.append([f"{k}: {v}"])
        elif isinstance(v, (int, np.integer, float, np.floating)) and not isinstance(v, bool):
            sec.notes.append([f"{k}: ", Val(v, ("trace", node.name, k, ()))])
        elif isinstance(v, tuple) and all(isinstance(u, (int, np.integer)) for u in v):
            sec.notes.append([f"{k}: {tuple(int(u) for u in v)}"])
    if order is not None and list(order) != sorted(order):
        sec.notes.append([f"runs in memory order (dims {tuple(order)}), as ATen walks channels-last tensors"])
    # inputs (elided)
    tab = Table(["tensor", "values"], [])
    for ref in node.inputs:
        for r in (ref if isinstance(ref, list) else [ref]):
            if isinstance(r, str) and isinstance(ctx.env.get(r), np.ndarray):
                tab.rows.append([f"input {r}", elided_line(ctx, ctx.env[r], lambda i, r=r: ("env", r, i))])
    tab.rows.append([f"output {node.output}", elided_line(ctx, out, lambda i: ("env", node.output, i))])
    sec.tables.append(tab)
    # per element: inputs of the same shape, each per-element trace array, the output
    shown, _ = choose_elements(ctx, node, out_shape, None)
    table = Table(["quantity"] + [label(i) for i in shown], [])
    for ref in node.inputs:
        if isinstance(ref, str) and isinstance(ctx.env.get(ref), np.ndarray) and ctx.env[ref].shape == out_shape:
            table.rows.append([f"input {ref}"] + [[Val(_item(ctx.env[ref][i]), ("env", ref, i))] for i in shown])
    ties, near = [], []
    for k, v in sorted(t.items(), key=lambda kv: kv[0] == "out"):
        if not isinstance(v, np.ndarray) or v.dtype == object:
            continue
        tis = [trace_index(node, v, i, out_shape, order, key=k) for i in shown]
        if any(ti is None for ti in tis):
            continue
        cells = []
        for i, ti in zip(shown, tis):
            x = _item(v[ti])
            style = ""
            if k == "pre_round" and isinstance(x, (float, np.floating)) and np.isfinite(x) and x - np.floor(x) == 0.5:
                style = "tie"
                ties.append((i, ti))
            elif k == "pre_round" and isinstance(x, (float, np.floating)) and is_near_tie(x):
                style = "near_tie"
            cells.append([Val(x, ("trace", node.name, k, ti), style)])
        table.rows.append([k] + cells)
    if not any(r[0] == "out" for r in table.rows):
        table.rows.append(["output"] + [[Val(_item(out[i]), ("env", node.output, i))] for i in shown])
    n_all = len(ctx.sample_indices(out_shape))
    table.caption = (f"{node.output}: shape {tuple(out_shape)}; " +
                     (f"all {n_all} elements of sample {ctx.sample}" if len(shown) == n_all
                      else f"{len(shown)} of the sample's {n_all} elements"))
    sec.tables.append(table)
    for i, ti in ties[:2]:
        sec.marks.append([f"TIE at {label(i)}: before rounding ", Val(_item(t["pre_round"][ti]),
                                                                      ("trace", node.name, "pre_round", ti), "tie"),
                          " is exactly halfway: rounded half to even."])
    pre = t.get("pre_round")
    if isinstance(pre, np.ndarray) and pre.dtype.kind == "f":
        # near-ties anywhere in the sample, not only among the shown elements
        for i in ctx.sample_indices(out_shape):
            ti = trace_index(node, pre, i, out_shape, order, key="pre_round")
            if ti is not None and is_near_tie(pre[ti]):
                near.append((i, ti))
        for i, ti in near[:2]:
            sec.marks.append([f"at {label(i)}: "] + near_tie_line(
                ctx, node, Val(_item(pre[ti]), ("trace", node.name, "pre_round", ti), "near_tie")))
        if len(near) > 2:
            sec.marks.append([f"{len(near)} near-ties in this sample in all."])
    info = program.tensors.get(node.output)
    if info is not None and info.quantized:
        sec.hists.append(_hist(ctx, node, out, ctx.sample_indices(out_shape), None))
    return sec
