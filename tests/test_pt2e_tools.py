"""explain, certify / integer-only, C export and vectors on PT2E (torchao Q/DQ) programs, as on FX ones:
every printed number is the engine's trace, every integer op certified and the integer-only program
bit-exact against the engine, float regions reported per op (not integer, why) and refused by C export.
"""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("TORCHAO_FORCE_SKIP_LOADING_SO_FILES", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("torchao", reason="torchao==0.18.0 not installed (pip install 'qgolden[pt2e]')")

from qgolden import api  # noqa: E402
from qgolden.explain import explain  # noqa: E402
from qgolden.explain.check import problems  # noqa: E402
from qgolden.integer import certify  # noqa: E402
from qgolden.integer.transform import FLOAT_OPS, INTEGER_OPS  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAS_CC = shutil.which("cc") is not None or shutil.which("gcc") is not None
EXTREME = [3e38, -3e38, np.inf, -np.inf, 1e20, -0.0, np.nan]  # the quantize's whole float domain: wrap, NaN


def random_mlp(seed):
    """A random per-tensor XNNPACKQuantizer model of the ops torchao's reference representation runs
    with integers (linear, add), and of data movement and per-value float ops between dq and q
    (flatten, hardswish, relu6, cat of differently quantized tensors): all integer under pt2e-reference."""
    import torch.nn.functional as F
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.testing.pt2e._xnnpack_quantizer import XNNPACKQuantizer, get_symmetric_quantization_config

    rng = np.random.default_rng(seed)
    c_in, width = int(rng.choice([8, 16, 27])), int(rng.choice([6, 12]))
    kinds = [str(k) for k in rng.choice(["linear", "add", "cat", "hardswish", "relu6"], int(rng.integers(2, 5)))]

    class MLP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = torch.nn.Linear(c_in, width)
            self.mods = torch.nn.ModuleList()
            w = width
            for k in kinds:
                self.mods.append(torch.nn.Linear(w, w) if k in ("linear", "add", "cat") else torch.nn.Identity())
                w = 2 * w if k == "cat" else w
            self.out = torch.nn.Linear(w, int(rng.choice([3, 5])))

        def forward(self, x):
            y = self.inp(x.flatten(1))
            for k, m in zip(kinds, self.mods):
                y = {"linear": lambda: m(y), "add": lambda: y + m(y), "cat": lambda: torch.cat([y, m(y)], 1),
                     "hardswish": lambda: F.hardswish(y), "relu6": lambda: F.relu6(y)}[k]()
            return self.out(y)

    torch.manual_seed(seed)
    m, x = MLP().eval(), torch.randn(2, 1, c_in) * float(rng.choice([1.0, 3.0]))
    q = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=False))
    p = prepare_pt2e(torch.export.export(m, (x,)).module(), q)
    p(x)
    return convert_pt2e(p), x, kinds


def _extreme(x):
    x = np.array(x, np.float32, copy=True)
    x.reshape(-1)[:len(EXTREME)] = EXTREME
    return x


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind == "f":
        a, b = a.view(np.int32), np.asarray(b, np.float32).view(np.int32)
    return a.shape == b.shape and np.array_equal(a, b)


def _check_certificate(prog, xs):
    """certify: every op either certified or a float region saying so; the program certify returns
    (integer forms where there are, float ops kept) gives the engine's outputs bit for bit."""
    cert = certify(prog)
    float_nodes = {n.name for n in prog.nodes if n.op in FLOAT_OPS or n.attrs.get("out_dtype") == "float32"}
    floats = {c.name for c in cert.ops if not c.certified}  # float chains ending in a quantize are folded
    for c in cert.ops:
        assert c.certified or c.method.startswith("none: float region, not integer: "), (c.name, c.method)
    assert floats <= float_nodes and cert.certified == (not floats)
    for x in xs:
        assert _same(prog.run(x), cert.program.run(x))
    return cert, floats


def _c_test(ip, x, tmp_path):
    """Export the integer-only program as C, build it strict and float-free, run its golden test."""
    from qgolden.export.binding import compiler
    from qgolden.export.c import export_c

    export_c(ip, tmp_path, "m", [x])
    srcs = [str(tmp_path / "test_m.c"), str(tmp_path / "m.c"), str(tmp_path / "m_float.c")]
    exe = tmp_path / "test_m"
    r = subprocess.run([compiler(), "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1", "-o", str(exe),
                        *srcs], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(exe)], capture_output=True, text=True)
    assert r.returncode == 0 and "bit-exact" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("seed", [0, 16])  # 16: cat of differently quantized tensors -> hardswish -> q
def test_reference_mlp_all_integer_explained_certified_exported(seed, tmp_path):
    gm, x, kinds = random_mlp(seed)
    prog = api.lower(gm, (x,), engine="pt2e-reference")
    assert api.verify(gm, x, program=prog).bit_exact, kinds
    xn = x.numpy()
    cert, floats = _check_certificate(prog, [xn, _extreme(xn)])
    assert cert.certified and not floats, kinds
    assert all(n.op in INTEGER_OPS for n in cert.program.nodes)
    # explain: a section per op, glossary by graph node, every number is the engine's
    doc, tr, env = explain(prog, [xn])
    assert [s.key for s in doc.sections] == [n.name for n in prog.nodes]
    assert problems(doc, prog, tr, env) == []
    names = [row[0] for row in doc.glossary.rows]
    q_nodes = [n.output for n in prog.nodes if prog.tensors[n.output].quantized]
    assert all(f"{q}.scale" in names and f"{q}.zero_point" in names for q in q_nodes)
    lin = next(s for s, n in zip(doc.sections, prog.nodes) if n.op == "linear")
    assert "trunc" in " ".join(lin.formula) and "_reference_quantized_linear" in lin.what
    # vectors and C: the golden test binary matches, also on floats the quantize maps to int8 extremes
    if HAS_CC:
        _c_test(cert.program, _extreme(xn), tmp_path)
    from qgolden.export.vectors import write_vectors

    vec = tmp_path / "vec"
    m = write_vectors(cert.program, [xn], vec, "mem")
    acts = [e for e in m["files"] if e.get("kind") == "activation"]
    assert m["layers"] and all((vec / e["npy"]).exists() and (vec / e["mem"]).exists() for e in m["files"])
    for e in acts:  # every quantized tensor of the engine, as its golden vector (folded tensors: new names)
        if e["tensor"] in env and prog.tensors[e["tensor"]].quantized:
            assert np.array_equal(np.load(vec / e["npy"]), env[e["tensor"]]), e["tensor"]


def _x86_model():
    from test_pt2e import convert

    return convert("x86")


def test_x86_inductor_float_regions_said_per_op_and_refused_by_c_export(tmp_path):
    from qgolden.cli import UserError
    from qgolden.cli.common import integer_program
    from qgolden.integer import to_integer_only

    gm, x = _x86_model()
    pt2 = tmp_path / "m.pt2"
    torch.export.save(torch.export.export(gm, (x,)), str(pt2))
    prog = api.lower(gm, (x,), engine="x86-inductor")
    xn = x.numpy()
    cert, floats = _check_certificate(prog, [xn, _extreme(xn)])
    assert not cert.certified and floats
    by = {c.name: c for c in cert.ops}
    assert "int8 kernel with a float32 output" in by["linear"].method  # the classifier: int8 in, float out
    assert {c.op for c in cert.ops if c.certified} >= {"qdq_quantize", "conv", "qdq_dequantize"}
    with pytest.raises(ValueError, match=r"node \w+ \(op \w+\): float region, not integer"):
        to_integer_only(prog)
    with pytest.raises(UserError, match=r"m.pt2: C export .*integer-only.*node \w+ \(op \w+\): float region"):
        integer_program(str(pt2), "x86-inductor", None, True, [xn])
    doc, tr, env = explain(prog, [xn])
    assert problems(doc, prog, tr, env) == []
    for s, n in zip(doc.sections, prog.nodes):
        if n.name in floats:
            assert s.what.startswith("float region, not integer"), (n.name, s.what)


def test_x86_inductor_float_output_conv_relu_pool_quantize_is_integer():
    """oneDNN int8 conv with a float32 output -> relu -> max pool -> quantize: per channel a non-decreasing
    function of the accumulator, so one certified integer requantization, then the max pool on integers."""
    import torch.nn.functional as F
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    class CNN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 8, 3, padding=1, groups=8)
            self.c = torch.nn.Conv2d(8, 16, 1)

        def forward(self, x):
            y = F.max_pool2d(F.relu(self.b(F.relu(self.a(x)))), 2)
            return F.max_pool2d(F.relu(self.c(y)), 2)

    torch.manual_seed(0)
    m, x = CNN().eval(), torch.randn(2, 3, 8, 8)
    q = xiq.X86InductorQuantizer().set_global(xiq.get_default_x86_inductor_quantization_config())
    p = prepare_pt2e(torch.export.export(m, (x,)).module(), q)
    p(x)
    prog = api.lower(convert_pt2e(p), (x,), engine="x86-inductor")
    xn = x.numpy()
    cert, floats = _check_certificate(prog, [xn, _extreme(xn), xn * 8])
    by = {c.name: c for c in cert.ops}
    folded = by["conv2d_1"]  # conv (float32 out) -> relu -> max pool -> quantize
    assert folded.certified and folded.op == "conv" and folded.domain > 0
    assert "max_pool" in {n.op for n in cert.program.nodes}
    assert floats == {"conv2d_2", "relu_2", "max_pool2d_1"}  # the model's float output stays float


@pytest.mark.parametrize("isa", ["avx2", "avx512_vnni", "avx512_amx"])
def test_folded_float_output_stage_scales_as_the_cpu_class_says(isa):
    """The integer-only plan of a folded float-output conv uses the float scaling of the oneDNN kernel
    the CPU class runs for that conv's shape (AMX: one combined scale, except depthwise: in turn), the
    same function ops/qdq.py applies at run time; shapes come from the program (no live torch)."""
    import torch.nn.functional as F
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from qgolden.integer.transform import _float_out_requant, apply_steps, fold_float_out_gemm, kernel_node
    from qgolden.ops import get as op_kernel
    from qgolden.ops.qdq import _onednn_float_out, conv_shape, onednn_combined_scale

    class CNN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 8, 3, padding=1, groups=8)
            self.c = torch.nn.Conv2d(8, 4, 1)

        def forward(self, x):
            return self.c(F.max_pool2d(F.relu(self.b(F.relu(self.a(x)))), 2))

    torch.manual_seed(1)
    m, x = CNN().eval(), torch.randn(2, 3, 8, 8)
    q = xiq.X86InductorQuantizer().set_global(xiq.get_default_x86_inductor_quantization_config())
    p = prepare_pt2e(torch.export.export(m, (x,)).module(), q)
    p(x)
    prog = api.lower(convert_pt2e(p), (x,), engine="x86-inductor", isa=isa)
    folded = [n for n in fold_float_out_gemm(prog).nodes if "_then" in n.attrs]
    assert [n.attrs["groups"] for n in folded] == [8]  # the depthwise conv -> relu -> max pool -> quantize
    node, kp = kernel_node(folded[0], prog.profile)
    ref = _float_out_requant(node, kp)[0]
    a, k, then = node.attrs, node.consts, node.attrs["_then"]
    x_shape = prog.tensors[node.inputs[0]].shape
    combined = onednn_combined_scale(kp, "conv", conv_shape(x_shape, k["weight"].shape, a["stride"], a["padding"],
                                                            a["groups"], x_shape[2:]))
    q_op, q_attrs = then["q"]
    # every accumulator value whose output is not clamped, in each channel
    step = float(a["x_scale"]) * np.asarray(k["weight_scale"], np.float64) / float(q_attrs["scale"])
    lo, hi = np.floor(-k["bias"] / (float(a["x_scale"]) * k["weight_scale"]) - 1), np.ceil(256 / step) + 1
    acc = np.arange(int(lo.min()), int(hi.max()), dtype=np.int64)[:, None].repeat(8, 1)

    def quantized(comb):
        f = apply_steps(_onednn_float_out(acc, a["x_scale"], k["weight_scale"], k["bias"], a["relu"], combined=comb),
                        then["steps"], kp)
        return np.asarray(op_kernel(q_op)(np.asarray(f, np.float32), **q_attrs, profile=kp)).astype(np.int64)

    assert combined == (isa == "avx2")  # depthwise: brdgmm on AVX-512 (in turn), jit AVX2 kernel (at once)
    assert np.array_equal(ref(acc), quantized(combined))
    assert not np.array_equal(quantized(True), quantized(False))  # the grid tells the two orders apart


def test_cli_export_refuses_float_regions_by_name(tmp_path):
    """From the command line, on a .pt2 file: export refuses a model with float regions (exit 2)."""
    gm, x = _x86_model()
    pt2, xs = tmp_path / "m.pt2", tmp_path / "x.npy"
    torch.export.save(torch.export.export(gm, (x,)), str(pt2))
    np.save(xs, x.numpy())
    r = subprocess.run([sys.executable, "-m", "qgolden", "export", str(pt2), "--trust-code", "--engine", "x86-inductor", "--input",
                        str(xs), "--out", str(tmp_path / "c")], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "float region, not integer" in r.stderr and "(op " in r.stderr and str(pt2) in r.stderr


# CI subset of the random PT2E campaign (qgolden.fuzz_pt2e): verify, certify, integer-only, C export
# (fixed seeds, chosen for time: `make fuzz-pt2e` runs the campaign)
REFERENCE_SEEDS = [2, 6, 8, 16]
INDUCTOR_SEEDS = [1]


@pytest.mark.parametrize("engine,seed", [("pt2e-reference", s) for s in REFERENCE_SEEDS]
                         + [("x86-inductor", s) for s in INDUCTOR_SEEDS])
def test_random_pt2e_verify_certify_export(engine, seed, tmp_path):
    from qgolden.fuzz_pt2e import make_model, quantize

    rng = np.random.default_rng(seed)
    model, shape = make_model(rng)
    per_channel = bool(rng.integers(0, 2))
    qat = rng.random() < 0.15
    try:
        gm, x = quantize(model, shape, "xnnpack" if engine == "pt2e-reference" else "x86", per_channel, qat, rng)
    except ValueError as e:  # the quantizer quantized nothing in this model
        pytest.skip(str(e))
    prog = api.lower(gm, (x,), engine=engine)
    rep = api.verify(gm, x, program=prog)
    assert rep.bit_exact, (seed, model.kinds)
    xn = x.numpy()
    cert, floats = _check_certificate(prog, [xn, _extreme(xn)])
    if cert.certified and HAS_CC:
        _c_test(cert.program, xn, tmp_path)


def test_missing_pt2_file_is_named(tmp_path):
    from qgolden.importers import ImportErrorQ

    with pytest.raises(ImportErrorQ, match=r"missing\.pt2: no such file"):
        api.lower(str(tmp_path / "missing.pt2"), engine="pt2e-reference")
