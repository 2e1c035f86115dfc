"""verify for PT2E programs: against the runtime the profile models, and against the float Q/DQ graph.

    pt2e-reference  torchao's reference_representation_rewrite of the same graph, run by torch;
                    every quantized intermediate compared by the quantize node's name (a tap is
                    inserted after each quantize before the rewrite, so names survive it).
    x86-inductor    torch.compile with inductor freezing (onednn::qconv_pointwise /
                    qlinear_pointwise); the compiled model is opaque, so outputs only.
    xnnpack         ExecuTorch's XNNPACK delegate: the graph exported with every quantize node's
                    dequantized value as an extra output, lowered to a .pte and run by
                    ExecuTorch's runtime; outputs and every quantized tensor compared.
    float Q/DQ      the converted graph itself (float conv/linear between dq and q): differences
                    are reported per layer in quantization steps, with their cause.
"""
from __future__ import annotations

import copy

import numpy as np

WHY_QDQ = ("the Q/DQ graph computes conv/linear/reductions in float32 with its library's summation "
           "order; a float rounding can move a value across a quantization boundary (1 step)")


def _qg_tap(x):
    return x


def _step_hist(a, b):
    d = np.abs(np.asarray(a).astype(np.int64) - np.asarray(b).astype(np.int64))
    vals, counts = np.unique(d[d != 0], return_counts=True)
    return {int(v): int(c) for v, c in zip(vals, counts)}


def _ulp_hist(a, b):
    """{ULP distance: count} between two float32 arrays (distance on the ordered bit patterns)."""
    def key(x):
        i = np.ascontiguousarray(x, dtype=np.float32).view(np.int32).astype(np.int64)
        return np.where(i < 0, -(i & 0x7FFFFFFF), i)

    d = np.abs(key(a) - key(b))
    vals, counts = np.unique(d[d != 0], return_counts=True)
    return {int(v): int(c) for v, c in zip(vals, counts)}


def _tapped(gm):
    """A copy of gm with `_qg_tap` after every quantize node; {tap name: quantize name}."""
    g = copy.deepcopy(gm)
    taps = {}
    for n in list(g.graph.nodes):
        if n.op == "call_function" and str(n.target).startswith("quantized_decomposed.quantize_per_tensor"):
            with g.graph.inserting_after(n):
                t = g.graph.call_function(_qg_tap, (n,))
            n.replace_all_uses_with(t, delete_user_cb=lambda u, t=t: u is not t)
            taps[t.name] = n.name
    g.recompile()
    return g, taps


def run_reference(gm, tin):
    """torchao's reference representation of gm, run: (output, {quantize node name: int tensor})."""
    from torchao.quantization.pt2e.reference_representation_rewrite import reference_representation_rewrite

    from ..torch_side import fx_intermediates

    g, taps = _tapped(gm)
    g = reference_representation_rewrite(g)
    out, seen = fx_intermediates(g, tin)
    return out, {q: seen[t] for t, q in taps.items() if t in seen}


def run_inductor(gm, tin, calls=3):
    """torch.compile(freezing=True) of gm, as the X86InductorQuantizer flow does; steady-state output."""
    import torch
    import torch._inductor.config as ic

    old = ic.freezing
    ic.freezing = True
    try:
        torch._dynamo.reset()
        f = torch.compile(copy.deepcopy(gm))
        with torch.no_grad():
            for _ in range(calls):
                out = f(*tin)
    finally:
        ic.freezing = old
    return out


def _with_dequantized_taps(gm):
    """A copy of gm that also returns, after its own outputs, dequantize(q) of every quantize
    node q: (graph module, number of its own outputs, [(quantize name, scale, zero point)])."""
    import torch

    g = copy.deepcopy(gm)
    out = next(n for n in g.graph.nodes if n.op == "output")
    own = out.args[0]
    own = list(own) if isinstance(own, (list, tuple)) else [own]
    taps, tapped = [], []
    for n in list(g.graph.nodes):
        if n.op == "call_function" and str(n.target).startswith("quantized_decomposed.quantize_per_tensor"):
            with g.graph.inserting_after(n):
                d = g.graph.call_function(torch.ops.quantized_decomposed.dequantize_per_tensor.default,
                                          (n, *n.args[1:]))
            taps.append(d)
            tapped.append((n.name, float(n.args[1]), int(n.args[2])))
    out.args = (tuple(own + taps),)
    info = getattr(g.graph._codegen, "pytree_info", None)
    if info is not None and info.out_spec is not None:  # an exported module returns its own pytree: now a flat tuple
        from torch.utils._pytree import tree_flatten

        g.graph._codegen.pytree_info = info._replace(out_spec=tree_flatten(tuple(own + taps))[1])
    g.recompile()
    return g, len(own), tapped


def run_xnnpack(gm, tin):
    """ExecuTorch XNNPACK delegate: gm exported with every quantized tensor as an extra
    (dequantized) output, lowered to a .pte, run by ExecuTorch's runtime.
    Returns (gm's outputs, {quantize node name: int8 tensor})."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime

    g, n_own, tapped = _with_dequantized_taps(gm)
    ep = torch.export.export(g, tuple(tin))
    et = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()]).to_executorch()
    method = Runtime.get().load_program(et.buffer).load_method("forward")
    res = list(method.execute(list(tin)))
    seen = {}
    for (name, scale, zp), f in zip(tapped, res[n_own:]):
        # XNNPACK's qs8 -> f32 convert is f32(q - zp) * scale exactly: invert it
        seen[name] = torch.round(f.double() / np.float32(scale)).to(torch.int64) + zp
    return res[:n_own], seen


def verify_pt2e(program, inputs):
    import torch

    from ..torch_side import as_tensor, fx_intermediates, to_numpy
    from .pytorch import quantized_pairs
    from .report import LayerResult, Report, compare, flatten_outputs

    model, gm = program._torch
    eng = program.profile["engine"]
    tin = [as_tensor(x).float() for x in inputs]
    out_q, env = program.run(*[to_numpy(x) for x in tin], keep=True)
    notes = []
    with torch.no_grad():
        qdq_out, qdq_seen = fx_intermediates(gm, tin)

    def layers_against(seen, why=""):
        res = []
        for node, ours, theirs in quantized_pairs(program, env, seen):
            n_el, mism, mad = compare(ours, theirs)
            steps = _step_hist(ours, theirs) if mism and np.shape(ours) == np.shape(theirs) else None
            res.append(LayerResult(node.name, node.op, n_el, mism, mad, node.source, steps,
                                   why if mism else ""))
        return res

    qdq_layers = layers_against(qdq_seen, WHY_QDQ)
    if eng == "pt2e-reference":
        ref_out, ref_seen = run_reference(gm, tin)
        layers = layers_against(ref_seen)
        reference = "torchao reference representation (convert_pt2e use_reference_representation=True)"
    elif eng == "x86-inductor":
        ref_out = run_inductor(gm, tin)
        layers = []
        reference = "torch.compile (inductor, freezing) of the Q/DQ graph: outputs only"
        notes.append("the compiled model is opaque: only its outputs are compared")
    elif eng == "xnnpack":
        try:
            ref_out, ref_seen = run_xnnpack(gm, tin)
        except ImportError as e:
            from ..importers import ImportErrorQ

            raise ImportErrorQ("engine xnnpack needs ExecuTorch: pip install 'qgolden[xnnpack]' "
                               f"(executorch==1.5.1); not installed here ({e})") from None
        layers = layers_against(ref_seen)
        reference = ("ExecuTorch XNNPACK delegate (.pte run by ExecuTorch's runtime; every quantized tensor "
                     "compared through an extra dequantized output)")
    else:
        raise ValueError(f"engine {eng} is not a PT2E runtime")
    outputs = []
    outs_q, outs_t = flatten_outputs(out_q), [to_numpy(o) for o in flatten_outputs(ref_out)]
    for a, b in zip(outs_q, outs_t):
        n_el, mism, mad = compare(a, b)
        o = {"elements": n_el, "mismatches": mism, "max_abs_diff": float(mad)}
        if mism and np.shape(a) == np.shape(b) and np.asarray(a).dtype == np.float32:
            o["ulps"] = _ulp_hist(a, b)  # float outputs: how far apart, in float32 steps
        outputs.append(o)
    if len(outs_q) != len(outs_t):
        outputs.append({"elements": 0, "mismatches": 1})
    inexact = [r for r in program.meta.get("float_regions", []) if not r["exact"]]
    if inexact:
        notes.append("float regions not reproducible bit for bit: "
                     + "; ".join(f"{r['name']} ({r['what']}): {r['why']}" for r in inexact))
    ok = all(l.mismatches == 0 for l in layers) and all(o["mismatches"] == 0 for o in outputs)
    return Report(ok, eng, program.profile["isa"], layers, outputs, reference=reference, qdq_layers=qdq_layers,
                  float_regions=list(program.meta.get("float_regions", [])), notes=notes)
