"""explain / trace on a CNN with conv, depthwise conv, add, hardswish, pools and linear, on each engine:
every op gets a section and every printed number equals the engine's trace."""
import numpy as np
import pytest
import torch

import qgolden
from qgolden.explain import explain, render
from qgolden.explain.access import trace_index
from qgolden.explain.check import problems
from qgolden.explain.trace_element import gemm_terms, kernel_acc, trace_document
from qgolden.fuzz import build_module

BLOCKS = [
    {"t": "conv", "i": 3, "o": 8, "k": 3, "s": 1, "p": 1, "d": 1, "g": 1, "nd": 2, "bias": True, "bn": False, "relu": True},
    {"t": "conv", "i": 8, "o": 8, "k": 3, "s": 1, "p": 1, "d": 1, "g": 8, "nd": 2, "bias": True, "bn": False, "relu": False},
    {"t": "skip", "op": "add", "relu": False, "c": 8, "nd": 2},
    {"t": "act", "a": "hardswish"},
    {"t": "pool", "p": "max", "k": 2, "s": 2, "pad": 0, "ceil": False, "cip": True, "nd": 2},
    {"t": "pool", "p": "avg", "k": 2, "s": 1, "pad": 0, "ceil": False, "cip": True, "nd": 2},
    {"t": "pool", "p": "adaptive", "o": 1, "nd": 2},
    {"t": "flatten"},
    {"t": "linear", "i": 8, "o": 5, "relu": False, "bias": True},
]
WANT_OPS = {"quantize", "conv", "add", "hardswish", "max_pool", "avg_pool", "adaptive_avg_pool", "linear", "dequantize"}


def _cnn(engine):
    from torch.ao.quantization import QConfig, get_default_qconfig_mapping
    from torch.ao.quantization.observer import MinMaxObserver, PerChannelMinMaxObserver
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.manual_seed(3)
    model = build_module(BLOCKS, eager=False)
    if engine == "qnnpack":
        w = MinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
    else:
        w = PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
    qc = QConfig(activation=MinMaxObserver.with_args(dtype=torch.quint8), weight=w)
    calib = torch.randn(8, 3, 10, 10)
    old = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine
    try:
        qmap = get_default_qconfig_mapping(engine).set_global(qc)
        prepared = prepare_fx(model, qmap, example_inputs=(calib,))
        prepared(calib)
        q = convert_fx(prepared)
    finally:
        torch.backends.quantized.engine = old
    x = (torch.randn(2, 3, 10, 10) * 3).numpy()  # beyond the calibrated range: clamps
    return q, x


@pytest.mark.parametrize("engine", ["x86", "fbgemm", "qnnpack", "onednn"])
def test_every_op_has_a_section_and_every_number_is_the_trace(engine):
    q, x = _cnn(engine)
    prog = qgolden.lower(q, example_inputs=(x,), engine=engine)
    assert WANT_OPS <= {n.op for n in prog.nodes}
    doc, trace, env = explain(prog, [x], sample=1)
    assert [s.key for s in doc.sections] == [n.name for n in prog.nodes]
    # an independent run of the engine: the document's numbers equal its trace
    t2, e2 = qgolden.explain.run_traced(prog, [x])
    assert problems(doc, prog, t2, e2) == []
    assert len(doc.all_vals()) > 200
    md = render(doc, "markdown")
    txt = render(doc, "text")
    html = render(doc, "html")
    from qgolden.explain.doc import plain
    for s in doc.sections:
        assert s.title in md and s.title in html
        for t in s.tables:
            for row in t.rows:
                for cell in row[1:]:
                    if not isinstance(cell, str):
                        assert plain(cell).replace("|", "\\|") in md
        for l in s.numbers:
            assert plain(l) in md
    assert html.count("<details") == len(prog.nodes) + 2  # every op, the glossary and the model graph
    # the saturation rows appear where this CPU's kernels pair u8*s8 products in int16 (without VNNI,
    # and FBGEMM's depthwise kernel everywhere)
    from qgolden.explain.build import can_saturate

    pairing = any(can_saturate(prog, n, trace[n.name].get("path")) for n in prog.nodes if n.op in ("conv", "linear"))
    assert ("int16 pair sums saturated" in md) == pairing
    # the element view: its products and pairs rebuild the kernel's accumulator
    for node in prog.nodes:
        if node.op not in ("conv", "linear"):
            continue
        out = env[node.output]
        zx = int(node.attrs["x_zero_point"])
        for flat in range(0, out.size, max(1, out.size // 40)):
            idx = tuple(int(i) for i in np.unravel_index(flat, out.shape))
            terms, pairs = gemm_terms(prog, node, env, idx)
            zwa = np.asarray(node.consts["weight_zero_point"]).reshape(-1)
            zw = int(zwa[idx[-1] if node.op == "linear" else idx[1]] if zwa.size > 1 else zwa[0])
            _, acc = kernel_acc(terms, pairs, zx, zw)
            a = trace[node.name]["acc"]
            assert acc == a[trace_index(node, a, idx, out.shape, key="acc")]
        tdoc = trace_document(prog, trace, env, node.name, str(out.size - 1))
        assert problems(tdoc, prog, t2, e2) == []
