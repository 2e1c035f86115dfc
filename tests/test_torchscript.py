"""TorchScript models (torch.jit.script / torch.jit.trace, live or saved): lowered through FX, bit-exact."""
import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.ao.nn.quantized import FloatFunctional
from torch.ao.quantization import DeQuantStub, QuantStub, fuse_modules, get_default_qconfig, \
    get_default_qconfig_mapping, prepare
from torch.ao.quantization import convert as eager_convert
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

import qgolden
from qgolden.importers import ImportErrorQ
from qgolden.importers.torchscript import script_to_graph_module


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant, self.dequant = QuantStub(), DeQuantStub()
        self.input_layer = nn.Linear(16, 32)
        self.relu = nn.ReLU()
        self.hidden = nn.Linear(32, 24)
        self.act = nn.Hardswish()
        self.out = nn.Linear(24, 5)

    def forward(self, x):
        x = self.quant(x)
        x = self.relu(self.input_layer(x))
        x = self.act(self.hidden(x))
        return self.dequant(self.out(x))


class CNN(nn.Module):
    """conv2d+relu, maxpool, add (FloatFunctional), hardswish, cat, avgpool, reshape, slice, conv1d,
    flatten, linear."""

    def __init__(self):
        super().__init__()
        self.quant, self.dequant = QuantStub(), DeQuantStub()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.skip = FloatFunctional()
        self.join = FloatFunctional()
        self.hs = nn.Hardswish()
        self.avg = nn.AvgPool2d(2)
        self.conv1d = nn.Conv1d(8, 4, 3, padding=1, stride=2)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = self.quant(x)
        y = self.pool(self.relu1(self.conv1(x)))          # [N, 8, 4, 4]
        z = self.relu2(self.conv2(y))
        y = self.hs(self.skip.add(y, z))
        y = self.avg(self.join.cat([y, z], 1))             # [N, 16, 2, 2]
        y = y.reshape(y.size(0), 16, -1)[:, :8]            # [N, 8, 4]
        y = torch.flatten(self.conv1d(y), 1)               # [N, 8]
        y = torch.cat([y, y], 1)
        return self.dequant(self.fc(y))


def _calib(shape):
    g = torch.Generator().manual_seed(1)
    return [torch.randn(*shape, generator=g) for _ in range(4)]


def _eager(model, shape):
    m = model.eval()
    m.qconfig = get_default_qconfig(torch.backends.quantized.engine)
    if isinstance(m, CNN):
        fuse_modules(m, [["conv1", "relu1"], ["conv2", "relu2"]], inplace=True)
    p = prepare(m)
    for x in _calib(shape):
        p(x)
    return eager_convert(p)


class _NoStubs(nn.Module):
    """The same network for FX quantization: no stubs, FloatFunctional -> plain ops."""

    def __init__(self, inner):
        super().__init__()
        self.m = inner

    def forward(self, x):
        m = self.m
        if isinstance(m, MLP):
            x = m.relu(m.input_layer(x))
            return m.out(m.act(m.hidden(x)))
        y = m.pool(m.relu1(m.conv1(x)))
        z = m.relu2(m.conv2(y))
        y = m.hs(y + z)
        y = m.avg(torch.cat([y, z], 1))
        y = y.reshape(y.size(0), 16, -1)[:, :8]
        y = torch.flatten(m.conv1d(y), 1)
        return m.fc(torch.cat([y, y], 1))


def _fx(model, shape):
    m = _NoStubs(model).eval()
    x = _calib(shape)[0]
    p = prepare_fx(m, get_default_qconfig_mapping(torch.backends.quantized.engine), (x,))
    for x in _calib(shape):
        p(x)
    return convert_fx(p)


SHAPES = {"mlp": (6, 16), "cnn": (2, 3, 8, 8)}
BUILD = {"mlp": MLP, "cnn": CNN}
_cache = {}


def _model(kind, flow):
    key = (kind, flow)
    if key not in _cache:
        torch.manual_seed(0)
        m = BUILD[kind]()
        _cache[key] = (_eager if flow == "eager" else _fx)(m, SHAPES[kind])
    return _cache[key]


def _script(m, how, x):
    with torch.no_grad():
        return torch.jit.script(m) if how == "script" else torch.jit.trace(m, x)


def _input(kind):
    return torch.randn(*SHAPES[kind], generator=torch.Generator().manual_seed(7)) * 1.5


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
@pytest.mark.parametrize("flow", ["eager", "fx"])
@pytest.mark.parametrize("how", ["script", "trace"])
@pytest.mark.parametrize("saved", [False, True], ids=["live", "file"])
def test_torchscript_bit_exact(kind, flow, how, saved, tmp_path):
    x = _input(kind)
    sm = _script(_model(kind, flow), how, x)
    spec = sm
    if saved:
        spec = str(tmp_path / f"{kind}_{flow}_{how}.pt")
        torch.jit.save(sm, spec)
        sm = torch.jit.load(spec)
    rep = qgolden.verify(spec, x, trust_code=saved)
    assert rep.bit_exact, [(l.name, l.mismatches) for l in rep.layers if l.mismatches]
    assert rep.layers and all(l.elements for l in rep.layers)
    prog = qgolden.lower(spec, (x,), trust_code=saved)
    with torch.no_grad():
        ref = sm(x).numpy()
    y = prog.run(x.numpy())
    assert y.dtype == ref.dtype and np.array_equal(y, ref)


@pytest.mark.parametrize("how", ["script", "trace"])
def test_torchscript_program_equals_fx_program(how):
    """The TorchScript path lowers to the same integer program as the FX path (names aside)."""
    x = _input("cnn")
    fm = _model("cnn", "fx")
    p_fx = qgolden.lower(fm, (x,))
    p_ts = qgolden.lower(_script(fm, how, x), (x,))
    # x[:, :8] is one getitem in FX and two aten::slice in TorchScript: compare everything else
    ts_nodes = [n for n in p_ts.nodes if n.op != "index"]
    fx_nodes = [n for n in p_fx.nodes if n.op != "index"]
    assert [(n.op, n.attrs) for n in ts_nodes] == [(n.op, n.attrs) for n in fx_nodes]
    for a, b in zip(ts_nodes, fx_nodes):
        assert a.consts.keys() == b.consts.keys()
        for k in a.consts:
            assert (a.consts[k] is None and b.consts[k] is None) or np.array_equal(a.consts[k], b.consts[k])


def test_layer_names_follow_modules():
    x = _input("cnn")
    em = _model("cnn", "eager")
    names = [l.name for l in qgolden.verify(_script(em, "script", x), x).layers]
    assert names[:4] == ["quant", "conv1", "pool", "conv2"]
    # FloatFunctional's methods are traced through by torch.fx, so the eager import names their ops by
    # the op (add, cat): TorchScript does the same
    eager = [n.name for n in qgolden.lower(em, (x,)).nodes if n.op != "identity"]
    assert names[4:8] == ["add", "hs", "cat", "avg"] == eager[4:8]
    assert "conv1d" in names and "fc" in names
    gm = script_to_graph_module(_script(em, "trace", x), "traced")
    gnames = [n.name for n in gm.graph.nodes if n.op == "call_function"]
    assert gnames[:4] == ["quant", "conv1", "pool", "conv2"] and "fc" in gnames
    assert all(n.isidentifier() for n in gnames) and len(set(gnames)) == len(gnames)


def test_forum_model_scripted_keeps_fx_layer_names(forum_model, tmp_path):
    from qgolden.examples import forum

    x = torch.from_numpy(forum.INPUTS)
    path = tmp_path / "forum.pt"
    torch.jit.save(torch.jit.script(forum_model), str(path))
    rep = qgolden.verify(str(path), x, engine="x86", trust_code=True)
    assert rep.bit_exact
    assert [l.name for l in rep.layers] == ["quantize_per_tensor", "input_layer", "out"]


def test_graph_module_runs_like_the_script_module():
    x = _input("cnn")
    for flow in ("eager", "fx"):
        for how in ("script", "trace"):
            sm = _script(_model("cnn", flow), how, x)
            gm = script_to_graph_module(sm, "m")
            with torch.no_grad():
                assert torch.equal(gm(x), sm(x))


class _Branchy(nn.Module):
    def __init__(self, mode):
        super().__init__()
        self.quant, self.dequant = QuantStub(), DeQuantStub()
        self.fc = nn.Linear(4, 4)
        self.mode = mode

    def forward(self, x):
        y = self.fc(self.quant(x))
        if self.mode == 1:  # resolved at import time: attribute
            y = torch.relu(y)
        if self.mode == 2:
            if x.sum() > 0:  # depends on the input
                y = torch.relu(y)
        if self.mode == 3:
            y = torch.flip(y, [1])  # not supported
        return self.dequant(y)


def _branchy(mode):
    m = _Branchy(mode).eval()
    m.qconfig = get_default_qconfig(torch.backends.quantized.engine)
    p = prepare(m)
    p(torch.randn(8, 4))
    return torch.jit.script(eager_convert(p))


def test_branch_on_attribute_is_resolved():
    x = torch.randn(3, 4)
    assert qgolden.verify(_branchy(1), x).bit_exact


def test_control_flow_on_input_is_an_import_error(tmp_path):
    path = tmp_path / "branchy.pt"
    torch.jit.save(_branchy(2), str(path))
    with pytest.raises(ImportErrorQ) as e:
        qgolden.lower(str(path), trust_code=True)
    msg = str(e.value)
    assert str(path) in msg and "prim::If" in msg and "if x.sum() > 0" in msg and "control flow" in msg


def test_unsupported_op_is_an_import_error():
    with pytest.raises(ImportErrorQ) as e:
        qgolden.lower(_branchy(3))
    msg = str(e.value)
    assert "aten::flip" in msg and "not supported" in msg and "torch.flip" in msg


def test_truncated_torchscript_file_is_an_import_error(tmp_path):
    x = _input("mlp")
    path = tmp_path / "mlp.pt"
    torch.jit.save(_script(_model("mlp", "eager"), "trace", x), str(path))
    data = path.read_bytes()
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImportErrorQ) as e:
        qgolden.verify(str(bad), x, trust_code=True)
    assert str(bad) in str(e.value)


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.ff = FloatFunctional()

    def forward(self, x):
        return self.ff.add(self.relu(self.conv(x)), x)


class _Nested(nn.Module):
    """Module paths several levels deep: Sequentials of blocks, modules that read nothing of `self`
    (MaxPool2d, Flatten) and same-named modules (two `conv`s, two `0`s) in different places."""

    def __init__(self):
        super().__init__()
        self.quant, self.dequant = QuantStub(), DeQuantStub()
        self.stem = nn.Conv2d(3, 4, 3)
        self.features = nn.Sequential(_Block(), _Block(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(36, 5))

    def forward(self, x):
        return self.dequant(self.classifier(self.features(self.stem(self.quant(x)))))


class _NestedFx(_Nested):
    def forward(self, x):
        return self.classifier(self.features(self.stem(x)))


def _nested(flow):
    torch.manual_seed(0)
    m = (_NestedFx if flow == "fx" else _Nested)().eval()
    if flow == "fx":
        x = _calib((2, 3, 8, 8))
        p = prepare_fx(m, get_default_qconfig_mapping(torch.backends.quantized.engine), (x[0],))
        for c in x:
            p(c)
        return convert_fx(p)
    m.qconfig = get_default_qconfig(torch.backends.quantized.engine)
    p = prepare(m)
    for x in _calib((2, 3, 8, 8)):
        p(x)
    return eager_convert(p)


@pytest.mark.parametrize("flow,how", [("eager", "script"), ("eager", "trace"), ("fx", "script"), ("fx", "trace")])
def test_scripted_and_traced_names_follow_module_paths(flow, how, tmp_path):
    """A saved scripted / traced model (--trust-code) names its layers by module path exactly as the eager /
    FX import of the same model does (node name `features_0_conv`, source `features.0.conv`), also where the
    TorchScript call frame only knows the last attribute (a scripted GraphModule calls
    `getattr(self.features, "0").conv` itself) and for modules whose code never reads `self`; explain and
    trace show them. (Traced graphs keep no names for functional ops: those are compared by module only.)"""
    from qgolden.explain import explain, render

    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    model = _nested(flow)
    ref = qgolden.lower(model, (x,))
    path = tmp_path / "m.pt"
    torch.jit.save(_script(model, how, x), str(path))
    prog = qgolden.lower(str(path), (x,), trust_code=True)
    ref_nodes = [n for n in ref.nodes if n.op != "identity"]  # eager observers TorchScript leaves out
    assert len(prog.nodes) == len(ref_nodes)
    pairs = list(zip(prog.nodes, ref_nodes))
    assert all(a.op == b.op for a, b in pairs)
    module_nodes = [(a, b) for a, b in pairs if "." in b.source or b.source in ("stem", "quant", "dequant")]
    assert len(module_nodes) >= 6
    for a, b in module_nodes:
        assert (a.name, a.source) == (b.name, b.source)
    if flow == "eager":
        assert [(a.name, a.source) for a, _ in pairs] == [(b.name, b.source) for b in ref_nodes]
    elif how == "script":
        # scripting keeps the GraphModule's own variable names for its functional ops (but not for the
        # value it returns)
        assert [(a.name, a.source) for a, _ in pairs[:-1]] == [(b.name, b.source) for b in ref_nodes[:-1]]
    assert any(a.source == "features.1.conv" for a, _ in pairs) and any(a.source == "classifier.0" for a, _ in pairs)
    doc, _, _ = explain(prog, [x.numpy()])
    text = render(doc, "markdown")
    assert "features_1_conv" in text and "classifier_1" in text
    r = qgolden.verify(str(path), x, trust_code=True)
    assert r.bit_exact and "features_0_conv" in [l.name for l in r.layers]


class SplitSizes(nn.Module):
    """torch.split with a list of sizes (traced: aten::split_with_sizes) and chunk, pieces re-concatenated."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 1)

    def forward(self, x):
        x = self.conv(x)
        a, b = torch.split(x, [3, 5], 1)
        c, d = x.chunk(2, 1)
        return torch.cat([b, a, d, c], 1)


@pytest.mark.parametrize("how", ["trace", "script"])
def test_split_with_sizes_and_list_items_of_a_converted_model(how):
    """The traced split_with_sizes was an unsupported op; in the scripted FX code (chunk = ...;
    getitem = chunk[0]) the run-time list's item read was evaluated as a constant and failed."""
    torch.manual_seed(2)
    x = torch.randn(2, 3, 5, 6)
    torch.backends.quantized.engine = "x86"
    p = prepare_fx(SplitSizes().eval(), get_default_qconfig_mapping("x86"), example_inputs=(x,))
    p(x)
    q = convert_fx(p)
    ts = torch.jit.trace(q, x) if how == "trace" else torch.jit.script(q)
    rep = qgolden.verify(ts, x, engine="x86")
    assert rep.bit_exact, [(l.name, l.op, l.mismatches) for l in rep.layers if l.mismatches]
    assert np.array_equal(qgolden.lower(ts, example_inputs=(x,), engine="x86").run(x.numpy()).view(np.int32),
                          q(x).numpy().view(np.int32))
