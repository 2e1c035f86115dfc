"""Verify an ONNX program against the runtime it replays: every quantized tensor and every output.

onnxruntime: the ORT-optimized graph the program was imported from, with every quantized tensor
added as a graph output, run by ORT with its own optimizations off (the graph is already the
optimized one, so the same kernels run), one intra-op thread; the outputs are compared, too,
with the original model run at the program's optimization level.
onnx-reference: onnx.reference.ReferenceEvaluator on the model, intermediates added as outputs.
"""
from __future__ import annotations

import numpy as np

from ..importers import ImportErrorQ


class RuntimeRefused(ImportErrorQ):
    """The ONNX runtime itself cannot run the model on this input (so there is nothing to match)."""


def _with_outputs(model, names):
    """A copy of `model` whose graph also outputs `names` (types left to the runtime)."""
    from onnx import helper

    m = type(model)()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    for nm in names:
        if nm not in have:
            m.graph.output.append(helper.make_empty_tensor_value_info(nm))
    return m


def run_runtime(program, inputs, names):
    """({name: runtime value}, [final outputs]) for the program's runtime and inputs."""
    from ..importers.onnx import lower_onnx, ort_session_options

    onnx_models = getattr(program, "_onnx", None)
    if onnx_models is None:
        program = lower_onnx(program.meta["source"], program.profile["engine"], program.profile["isa"],
                             program.meta.get("ort_opt_level", "all"))
        onnx_models = program._onnx
    model, graph_model = onnx_models
    feeds = dict(zip(program.inputs, [np.asarray(x) for x in inputs]))
    if program.profile["engine"] == "onnxruntime":
        import onnxruntime as ort

        probe = _with_outputs(graph_model, names)
        s = ort.InferenceSession(probe.SerializeToString(), ort_session_options("disable"),
                                 providers=["CPUExecutionProvider"])
        outs = s.run(None, feeds)
        seen = dict(zip([o.name for o in s.get_outputs()], outs))
        full = ort.InferenceSession(model.SerializeToString(),
                                    ort_session_options(program.meta.get("ort_opt_level", "all")),
                                    providers=["CPUExecutionProvider"])
        finals = full.run(None, feeds)
        return seen, finals
    from onnx.reference import ReferenceEvaluator

    probe = _with_outputs(model, names)
    ref = ReferenceEvaluator(probe)
    outs = ref.run(None, feeds)
    seen = dict(zip([o.name for o in probe.graph.output], outs))
    return seen, [seen[o] for o in program.outputs]


def compare(ours, theirs):
    """(elements, mismatching elements, max |difference|): integers exactly, floats by bit pattern."""
    a, b = np.asarray(ours), np.asarray(theirs)
    if a.shape != b.shape:
        n = int(max(a.size, b.size))
        return n, n, -1
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        same = a.astype(np.float32).view(np.int32) == b.astype(np.float32).view(np.int32)
        d = np.abs(a.astype(np.float64) - b.astype(np.float64))
        return int(a.size), int((~same).sum()), float(d[~same].max()) if (~same).any() else 0
    d = np.abs(a.astype(np.int64) - b.astype(np.int64))
    return int(a.size), int((d != 0).sum()), int(d.max()) if d.size else 0


def verify_onnx(program, inputs):
    from .report import LayerResult, Report

    names = [n.output for n in program.nodes
             if n.op != "onnx_constant" and program.tensors.get(n.output) is not None
             and program.tensors[n.output].quantized]
    try:
        seen, finals = run_runtime(program, inputs, names)
    except ImportErrorQ:
        raise
    except Exception as e:  # the runtime refuses the model or the input: nothing to compare with
        raise RuntimeRefused(f"{program.profile['engine']} itself failed to run the model: "
                             f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}") from None
    out_q, env = program.run(*inputs, keep=True, accumulate="numpy")
    layers = []
    for node in program.nodes:
        if node.output in names and node.output in seen:
            n_el, mism, mad = compare(env[node.output], seen[node.output])
            layers.append(LayerResult(node.name, node.op, n_el, mism, mad, node.source))
    ours = list(out_q) if isinstance(out_q, tuple) else [out_q]
    outputs = []
    for a, b in zip(ours, finals):
        n_el, mism, _ = compare(a, b)
        outputs.append({"elements": n_el, "mismatches": mism})
    ok = all(l.mismatches == 0 for l in layers) and all(o["mismatches"] == 0 for o in outputs) \
        and len(ours) == len(finals)
    rep = Report(ok, program.profile["engine"], program.profile["isa"], layers, outputs)
    if program.profile["engine"] == "onnxruntime":
        rep.notes.append(f"onnxruntime CPU provider, graph optimization level {program.meta.get('ort_opt_level', 'all')}, "
                         "1 intra-op thread")
    return rep
