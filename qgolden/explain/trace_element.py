"""`qgolden trace`: the whole arithmetic of one output element and the input elements that fed it
(`--compare` over a whole dump: dump_compare.py)."""
from __future__ import annotations

import numpy as np

from ..numerics.accumulate import onednn_gemm_k_blocks
from ..ops.conv import fbgemm_conv_path, onednn_conv_impl
from . import texts
from .access import memory_order, trace_index
from .build import (MAX_SHOWN, Ctx, ExplainError, _gemm_numbers, _item, backend_of, can_saturate, onednn_kernel_of,
                    gemm_marks, has_gemm_trace, label, near_tie_line)
from .near_tie import is_near_tie
from .doc import Document, Section, Table, Val


def default_layer(program) -> str:
    """The last op whose output is quantized (else the last op)."""
    for n in reversed(program.nodes):
        info = program.tensors.get(n.output)
        if info is not None and info.quantized:
            return n.name
    return program.nodes[-1].name


def find_node(program, layer):
    for n in program.nodes:
        if n.name == layer or n.output == layer:
            return n
    raise ExplainError(f"no layer named {layer!r}; layers: " + ", ".join(n.name for n in program.nodes))


def parse_index(text, shape) -> tuple:
    """'4,2' (one integer per dim) or '13' (flat, C order) -> index tuple; ExplainError if bad."""
    shape = tuple(int(s) for s in shape)
    try:
        parts = [int(p) for p in str(text).replace("(", "").replace(")", "").replace("[", "").replace("]", "")
                 .split(",") if p.strip() != ""]
    except ValueError:
        raise ExplainError(f"--output-element {text!r}: expected integers like 0,2 (one per dim) or a flat index") from None
    size = int(np.prod(shape)) if shape else 1
    if len(parts) == 1 and len(shape) != 1:
        if not 0 <= parts[0] < size:
            raise ExplainError(f"--output-element {parts[0]} is out of range: the tensor has {size} elements "
                               f"(shape {shape})")
        return tuple(int(i) for i in np.unravel_index(parts[0], shape)) if shape else ()
    if len(parts) != len(shape):
        raise ExplainError(f"--output-element {text!r}: the tensor has {len(shape)} dims (shape {shape})")
    for p, s in zip(parts, shape):
        if not 0 <= p < s:
            raise ExplainError(f"--output-element {text!r} is out of range for shape {shape}")
    return tuple(parts)


# ---------------------------------------------------------------------------------------------
# the terms of one accumulator, in the order the kernel pairs them

def gemm_terms(program, node, env, idx):
    """(terms, pairing): terms = [(x_index or None for padding, w_index, x, w)], pairing: list of
    lists of term positions summed together in saturating int16 (empty if the kernel is exact)."""
    a, c = node.attrs, node.consts
    w = np.asarray(c["weight"])
    x = np.asarray(env[node.inputs[0]])
    zx = int(a["x_zero_point"])
    backend = backend_of(program, node)
    if node.op == "linear":
        lead, n = idx[:-1], idx[-1]
        k = w.shape[1]
        terms = [(lead + (j,), (n, j), int(x[lead + (j,)]), int(w[n, j])) for j in range(k)]
        path = backend
        sat = can_saturate(program, node, path)
        if not sat:
            return terms, []
        starts = onednn_gemm_k_blocks(k, program.profile["isa"]) if backend == "onednn" else [0]
        return terms, _pairs_in_blocks(len(terms), starts)
    conv1d = x.ndim == 3
    x4 = x[:, :, None, :] if conv1d else x
    w4 = w[:, :, None, :] if conv1d else w
    st, pd, dl = _hw(a["stride"], conv1d, 1), _hw(a["padding"], conv1d, 0), _hw(a["dilation"], conv1d, 1)
    b, o = idx[0], idx[1]
    oh, ow = (0, idx[2]) if conv1d else (idx[2], idx[3])
    g = int(a["groups"])
    c_out, cpg, kh, kw = w4.shape
    kpg = c_out // g
    gi = o // kpg
    _, c_in, h, wd = x4.shape
    path = backend
    if backend == "fbgemm":
        path = fbgemm_conv_path(c_in, c_out, g, (kh, kw), st, pd, dl, conv1d)
    elif backend == "onednn":
        path = onednn_conv_impl(cpg, kpg, g)

    def tap(cc, r, s):
        ih, iw = oh * st[0] + r * dl[0] - pd[0], ow * st[1] + s * dl[1] - pd[1]
        xi = (b, gi * cpg + cc, iw) if conv1d else (b, gi * cpg + cc, ih, iw)
        wi = (o, cc, s) if conv1d else (o, cc, r, s)
        inside = 0 <= ih < h and 0 <= iw < wd
        return (xi if inside else None, wi, int(x4[b, gi * cpg + cc, ih, iw]) if inside else None, int(w4[o, cc, r, s]))

    sat = can_saturate(program, node, path)
    terms, pairs = [], []
    if path == "depthwise":
        for r in range(kh):
            for s in range(kw):
                xi, wi, xv, wv = tap(0, r, s)
                terms.append((xi, wi, zx if xv is None else xv, wv))
        return terms, (_pairs_in_blocks(len(terms), [0]) if sat else [])
    if backend == "onednn" and path == "jit":
        for r in range(kh):
            for s in range(kw):
                start = len(terms)
                for cc in range(cpg):
                    xi, wi, xv, wv = tap(cc, r, s)
                    if xi is None:
                        continue  # oneDNN skips taps in the padding
                    terms.append((xi, wi, xv, wv))
                if sat:
                    pairs += [list(range(p, min(p + 2, len(terms)))) for p in range(start, len(terms), 2)]
        return terms, pairs
    for r in range(kh):
        for s in range(kw):
            for cc in range(cpg):
                xi, wi, xv, wv = tap(cc, r, s)
                terms.append((xi, wi, zx if xv is None else xv, wv))
    if backend == "onednn":
        terms = [t for t in terms if t[0] is not None]
    pairs = _pairs_in_blocks(len(terms), [0]) if sat else []
    return terms, pairs


def kernel_acc(terms, pairs, zx, zw):
    """(Σ over pairs of int16-saturated u8·s8 pair sums, the accumulator the kernel forms from
    them and its zero-point corrections); with no pairs, the exact Σ (x − z_x)(w − z_w)."""
    if not pairs:
        e = sum((tt[2] - zx) * (tt[3] - zw) for tt in terms)
        return e, e
    raw = sum(min(max(sum(terms[q][2] * terms[q][3] for q in p), -32768), 32767) for p in pairs)
    k = len(terms)
    acc = raw - zx * sum(tt[3] for tt in terms) - zw * sum(tt[2] for tt in terms) + k * zx * zw
    return raw, acc


def _hw(v, conv1d, one):
    """(h, w) of a conv attribute as conv.conv uses it (conv1d: H = 1, `one` on the H axis)."""
    v = (int(v),) if np.ndim(v) == 0 else tuple(int(i) for i in v)
    if conv1d:
        return (one, v[0])
    return v if len(v) == 2 else v * 2


def _pairs_in_blocks(n, starts):
    bounds = list(starts) + [n]
    out = []
    for b0, b1 in zip(bounds[:-1], bounds[1:]):
        out += [list(range(p, min(p + 2, b1))) for p in range(b0, b1, 2)]
    return out


# ---------------------------------------------------------------------------------------------

def element_section(program, trace, env, node, idx, title_prefix="") -> Section:
    ctx = Ctx(program, trace, env, idx[0] if len(idx) else 0)
    out = np.asarray(env[node.output])
    t = trace.get(node.name) or {}
    sec = Section(node.name, f"{title_prefix}{node.name}{label(idx)}: {node.op}"
                  + (f" — {node.torch_op}" if node.torch_op else ""))
    sec.notes.append([f"{node.output}{label(idx)} = ", Val(_item(out[idx]), ("env", node.output, idx))])
    if has_gemm_trace(program, node, trace):
        _gemm_element(ctx, program, node, t, idx, sec)
    else:
        _generic_element(ctx, program, node, t, idx, sec)
    return sec


def _gemm_element(ctx, program, node, t, idx, sec):
    a = node.attrs
    out_shape = np.shape(ctx.env[node.output])
    backend = backend_of(program, node)
    has_bias = node.consts.get("bias") is not None
    relu = bool(a.get("relu"))
    path = t.get("path", backend)
    sat_possible = can_saturate(program, node, path)
    per_channel = bool(a.get("per_channel")) or np.asarray(node.consts["weight_scale"]).size > 1
    sec.formula = texts.gemm_formula(node.op, backend, has_bias, relu, sat_possible, per_channel, onednn_kernel_of(node, program))
    zx = int(a["x_zero_point"])
    zw_all = np.asarray(node.consts["weight_zero_point"]).reshape(-1)
    ch = idx[-1] if node.op == "linear" else idx[1]
    zw = int(zw_all[ch] if zw_all.size > 1 else zw_all[0])

    def tv(key, style=""):
        ti = trace_index(node, t[key], idx, out_shape, key=key)
        return Val(_item(np.asarray(t[key])[ti]), ("trace", node.name, key, ti), style)

    terms, pairs = gemm_terms(program, node, ctx.env, idx)
    xin = node.inputs[0]
    rows = []
    exact = 0
    for j, (xi, wi, xv, wv) in enumerate(terms):
        exact += (xv - zx) * (wv - zw)
        if j < 16 or j == len(terms) - 1:
            xcell = [Val(xv, ("env", xin, xi))] if xi is not None else [f"{xv} (padding)"]
            rows.append([str(j), f"{xin}{label(xi)}" if xi is not None else "padding", xcell,
                         [Val(wv, ("const", node.name, "weight", wi))], f"{(xv - zx) * (wv - zw)}"])
        elif j == 16:
            rows.append(["…", f"({len(terms) - 17} more terms)", "", "", ""])
    sec.tables.append(Table(["k", "input element", "x_q", "w_q", "(x_q − z_x)·(w_q − z_w)"], rows,
                            caption=f"the {len(terms)} products of acc{label(idx)} (z_x = {zx}, z_w = {zw})"))
    sec.numbers.append([f"exact Σ (x_q − z_x)·(w_q − z_w) = {exact}  (engine trace: ", tv("acc_exact"), ")"])
    if pairs:
        sat_rows = []
        for p in pairs:
            vals = [terms[q][2] * terms[q][3] for q in p]
            s = sum(vals)
            if min(max(s, -32768), 32767) != s:
                sat_rows.append([", ".join(str(q) for q in p),
                                 " + ".join(f"{terms[q][2]}·{terms[q][3]}" for q in p), f"{s}",
                                 f"{min(max(s, -32768), 32767)}", "SATURATED"])
        raw_total, derived = kernel_acc(terms, pairs, zx, zw)
        wsum = sum(tt[3] for tt in terms)
        if sat_rows:
            sec.tables.append(Table(["terms", "u8·s8 pair", "sum", "int16", ""], sat_rows,
                                    caption="pairs of raw u8·s8 products the kernel summed in int16 and clipped"))
        sec.numbers.append([f"the kernel: Σ_pairs sat16(x0·w0 + x1·w1) − z_x·Σ w = {raw_total} − {zx}·{wsum}"
                            + ("" if zw == 0 else " − z_w·Σ x + K·z_x·z_w") + f" = {derived}; engine trace acc = ",
                            tv("acc", "sat" if sat_rows else ""), ", saturated pairs: ", tv("saturated_pairs")])
    else:
        sec.numbers.append(["exact int32 accumulation: acc = ", tv("acc")])
    if has_bias and t.get("bias_term") is not None:
        sec.numbers.append(["bias term: ", tv("bias_term"),
                            {"fbgemm": "  (float bias / (s_x·s_w), kept in float)",
                             "qnnpack": "  (int32: rne(bias / (s_x·s_w)))",
                             "onednn": "  (float bias, added after scaling)"}[backend]])
    sec.numbers.append(["multiplier: ", tv("multiplier")])
    m = gemm_marks(ctx, node, [idx])[idx]
    zy = Val(a["out_zero_point"], ("attr", node.name, "out_zero_point"))
    sec.numbers.append(_gemm_numbers(node, backend, has_bias, relu, idx, tv_idx(tv), zy, m, program))
    pre = float(_item(np.asarray(t["pre_round"])[trace_index(node, t["pre_round"], idx, out_shape, key="pre_round")]))
    fl = np.floor(pre)
    if np.isfinite(pre):
        if pre - fl == 0.5:
            sec.marks.append(["rounding: ", tv("pre_round", "tie"), " is exactly halfway between "
                              f"{int(fl)} and {int(fl) + 1}: rounded half to even → ", tv("rounded")])
        else:
            sec.marks.append(["rounding: ", tv("pre_round"), f" lies between {int(fl)} and {int(fl) + 1}; "
                              "nearest → ", tv("rounded")])
        if is_near_tie(pre):
            sec.marks.append(near_tie_line(ctx, node, tv("pre_round", "near_tie")))
    if "relu" in m:
        sec.marks.append(["ReLU: the value is below z_y, so the clamp at z_y gives ", tv("out", "relu")])
    elif "clamp" in m:
        sec.marks.append(["clamped to the uint8 range: ", tv("out", "clamp")])
    else:
        sec.marks.append(["inside the clamp range: y_q = ", tv("out")])


def tv_idx(tv):
    return lambda key, _i, style="": tv(key, style)


def _generic_element(ctx, program, node, t, idx, sec):
    from .texts import op_text

    sec.formula = op_text(node.op)[1]
    out_shape = np.shape(ctx.env[node.output])
    order = memory_order(program, node, ctx.env)
    for ref in node.inputs:
        if isinstance(ref, str) and isinstance(ctx.env.get(ref), np.ndarray) and ctx.env[ref].shape == out_shape:
            sec.numbers.append([f"input {ref}{label(idx)} = ", Val(_item(ctx.env[ref][idx]), ("env", ref, idx))])
    for k, v in t.items():
        if isinstance(v, np.ndarray) and v.dtype != object:
            ti = trace_index(node, v, idx, out_shape, order, key=k)
            if ti is not None:
                x = _item(v[ti])
                near = k == "pre_round" and isinstance(x, (float, np.floating)) and is_near_tie(x)
                val = Val(x, ("trace", node.name, k, ti), "near_tie" if near else "")
                sec.numbers.append([f"{k} = ", val])
                if near:
                    sec.marks.append(near_tie_line(ctx, node, val))
        elif isinstance(v, str):
            sec.notes.append([f"{k}: {v}"])


# ---------------------------------------------------------------------------------------------
# followed backwards

def _inputs_of(program, node, idx, env):
    """{input tensor: set of indices} that output element idx of node reads."""
    res = {}
    ins = [r for r in node.inputs if isinstance(r, str) and isinstance(env.get(r), np.ndarray)]
    a = node.attrs
    out_shape = np.shape(env[node.output])
    for r in ins:
        shp = env[r].shape
        if node.op == "linear":
            res[r] = {tuple(idx[:-1]) + (k,) for k in range(shp[-1])}
        elif node.op == "conv" and "weight" in node.consts and "stride" in a:
            terms, _ = gemm_terms(program, node, env, idx)
            res[r] = {tt[0] for tt in terms if tt[0] is not None}
        elif shp == out_shape and node.op not in ("avg_pool", "max_pool", "adaptive_avg_pool", "mean", "upsample_nearest"):
            res[r] = {tuple(idx)}
        elif node.op in ("reshape", "flatten", "squeeze", "unsqueeze") and int(np.prod(shp)) == int(np.prod(out_shape)):
            flat = int(np.ravel_multi_index(idx, out_shape))
            res[r] = {tuple(int(i) for i in np.unravel_index(flat, shp))}
        elif node.op in ("max_pool", "avg_pool") and len(shp) == 4 and len(a.get("kernel_size", ())) == 2:
            k = _two(a["kernel_size"])
            s = _two(a.get("stride") or a["kernel_size"])
            p = _two(a.get("padding", 0))
            d = _two(a.get("dilation", 1)) if node.op == "max_pool" else (1, 1)
            res[r] = {(idx[0], idx[1], idx[2] * s[0] + i * d[0] - p[0], idx[3] * s[1] + j * d[1] - p[1])
                      for i in range(k[0]) for j in range(k[1])
                      if 0 <= idx[2] * s[0] + i * d[0] - p[0] < shp[2] and 0 <= idx[3] * s[1] + j * d[1] - p[1] < shp[3]}
        elif node.op in ("adaptive_avg_pool", "mean") and len(shp) >= 3 and len(idx) >= 2:
            res[r] = {(idx[0], idx[1]) + tuple(int(u) for u in rest) for rest in np.ndindex(*shp[2:])}
        else:
            res[r] = {tuple(int(u) for u in i) for i in np.ndindex(*shp)}
    return res


def _two(v):
    if np.ndim(v) == 0:
        return (int(v), int(v))
    v = tuple(int(i) for i in v)
    return v if len(v) == 2 else v * 2


def feeders_table(program, node, idx, env) -> Table:
    """Followed backwards: which elements of each earlier tensor this element depends on."""
    prod = program.producers()
    rows = []
    frontier = {node.output: {tuple(idx)}}
    seen_nodes = set()
    for n in reversed(program.nodes):
        if n.output not in frontier or n.name in seen_nodes:
            continue
        seen_nodes.add(n.name)
        want = frontier[n.output]
        if len(want) > 4096:
            want = set(list(want)[:4096])
        for i in want:
            for r, s in _inputs_of(program, n, i, env).items():
                frontier.setdefault(r, set()).update(s)
    for tname, s in frontier.items():
        if tname == node.output:
            continue
        val = env.get(tname)
        if not isinstance(val, np.ndarray):
            continue
        ordered = sorted(s)
        cells = []
        for j, i in enumerate(ordered[:MAX_SHOWN]):
            cells += ([", "] if j else []) + [f"{label(i)}=", Val(_item(val[i]), ("env", tname, i))]
        if len(ordered) > MAX_SHOWN:
            cells.append(", …")
        p = prod.get(tname)
        rows.append([tname, p.name + f" ({p.op})" if p else "model input", f"{len(ordered)} of {val.size}", cells])
    return Table(["tensor", "from", "elements feeding it", "values"], rows,
                 caption=f"followed backwards: what {node.output}{label(idx)} depends on")


# ---------------------------------------------------------------------------------------------

def trace_document(program, trace, env, layer=None, index=None) -> Document:
    node = find_node(program, layer or default_layer(program))
    out = env[node.output]
    if not isinstance(out, np.ndarray):
        raise ExplainError(f"layer {node.name} has no tensor output")
    idx = parse_index(index if index is not None else "0", out.shape)
    doc = Document(f"qgolden trace: {node.name}{label(idx)}, engine {program.profile.get('engine')} "
                   f"({program.profile.get('isa')})")
    doc.sections.append(element_section(program, trace, env, node, idx))
    doc.sections.append(Section("", "followed backwards", tables=[feeders_table(program, node, idx, env)]))
    return doc
