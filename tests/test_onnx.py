"""ONNX models (QDQ and QOperator) against ONNX Runtime's CPU provider on this host (host profile)
and the ONNX reference evaluator, bit for bit; recorded ORT outputs of an AMX Xeon (tests/data/onnx)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="ONNX support needs onnx (pip install 'qgolden[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="ONNX support needs onnxruntime (pip install 'qgolden[onnx]')")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from qgolden.api import lower, verify  # noqa: E402
from qgolden.importers import ImportErrorQ  # noqa: E402
from qgolden.numerics import mlas  # noqa: E402

DATA = Path(__file__).parent / "data" / "onnx"
ROOT = Path(__file__).resolve().parents[1]


def _compared(rep):
    return sum(l.elements for l in rep.layers) + sum(o["elements"] for o in rep.outputs)


def _assert_exact(rep):
    bad = [(l.name, l.op, l.mismatches) for l in rep.layers if l.mismatches]
    assert rep.bit_exact, f"mismatches: {bad} outputs {rep.outputs}"
    assert rep.layers and _compared(rep) > 0


# -- recorded on an AMX Xeon (this CPU class) --------------------------------------------------------
MANIFEST = json.loads((DATA / "manifest.json").read_text())


@pytest.mark.parametrize("case", [c["name"] for c in MANIFEST["cases"]])
def test_recorded_ort_outputs(case):
    """The AMX class's program reproduces ORT's recorded output; where ORT leaves float Conv / Add /
    Sigmoid between DQ and Q (int8 activations), lowering names those nodes instead."""
    path = DATA / f"{case}.onnx"
    x = np.load(DATA / f"{case}.in.npy")
    try:
        prog = lower(str(path), engine="onnxruntime", isa="avx512_amx")
    except ImportErrorQ as e:
        assert "float32 op between DequantizeLinear and QuantizeLinear" in str(e) and "(Conv)" in str(e)
        return
    y = prog.run(x)
    want = np.load(DATA / f"{case}.ort.npy")
    assert y.dtype == want.dtype and np.array_equal(y.view(np.int32), want.view(np.int32))


def test_recorded_qdq_on_reference_names_float_nodes():
    with pytest.raises(ImportErrorQ) as e:
        lower(str(DATA / "cnn_qdq_u8s8_pc.onnx"), engine="onnx-reference")
    msg = str(e.value)
    for node in ("/c1/Conv (Conv)", "/fc/Gemm (Gemm)"):
        assert node in msg
    assert "(Sigmoid)" not in msg  # a float Sigmoid is modelled (ops/onnx_float.py); it reads a float Conv here


@pytest.mark.parametrize("case", ["cnn_qop_u8s8", "cnn_qdq_u8s8_pc", "mlp_qdq_u8u8", "mlp_qop_s8s8_pc"])
@pytest.mark.parametrize("level", ["all", "extended"])
def test_recorded_models_live_ort(case, level):
    """Every quantized tensor of the graph ORT runs on this host, at two optimization levels."""
    _assert_exact(verify(str(DATA / f"{case}.onnx"), np.load(DATA / f"{case}.in.npy"), engine="onnxruntime",
                         ort_opt_level=level))


# -- random models -----------------------------------------------------------------------------------
@pytest.mark.parametrize("form", ["qop", "qdq", "std"])
@pytest.mark.parametrize("seed", range(6))
def test_random_models(form, seed):
    from qgolden.fuzz_onnx import build, standard_only
    from qgolden.verifiers.onnx import RuntimeRefused

    rng = np.random.default_rng(1000 * seed + {"qop": 1, "qdq": 2, "std": 3}[form])
    model, x, desc, _ = build(rng, form)
    engines = ["onnxruntime"] + (["onnx-reference"] if standard_only(model) else [])
    for eng in engines:
        try:
            rep = verify(model, x, engine=eng)
        except RuntimeRefused:
            continue  # the runtime itself cannot run it (e.g. the reference's MaxPool pads int8 with NaN)
        assert rep.bit_exact, f"{eng} {desc}: {[(l.name, l.mismatches) for l in rep.layers if l.mismatches]}"


def _qparams(name, scale, zp, dtype):
    return [numpy_helper.from_array(np.array(scale, np.float32), f"{name}_s"),
            numpy_helper.from_array(np.array(zp, dtype), f"{name}_z")]


def _model(nodes, inits, inputs, out, out_type, out_shape, ms=False):
    g = helper.make_graph(nodes, "t", inputs, [helper.make_tensor_value_info(out, out_type, out_shape)], inits)
    ops = [helper.make_opsetid("", 19)] + ([helper.make_opsetid("com.microsoft", 1)] if ms else [])
    m = helper.make_model(g, opset_imports=ops)
    m.ir_version = 9
    return m


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_quantize_linear_ties_and_clamps(dtype):
    """QuantizeLinear on exact .5 ties (both parities), values beyond the range, odd lengths."""
    tp = TensorProto.UINT8 if dtype == "uint8" else TensorProto.INT8
    scale, zp = np.float32(0.0625), (7 if dtype == "uint8" else -3)
    k = np.arange(-300, 301)
    x = np.concatenate([(k + 0.5) * scale, k * scale * 1.37, [np.inf, -np.inf, 1e30]]).astype(np.float32)[:1203]
    m = _model([helper.make_node("QuantizeLinear", ["x", "q_s", "q_z"], ["y"])], _qparams("q", scale, zp, dtype),
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [x.size])], "y", tp, [x.size])
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    assert np.array_equal(s.run(None, {"x": x})[0], mlas.quantize_linear(x, scale, zp, dtype))
    from onnx.reference import ReferenceEvaluator

    fin = np.isfinite(x)
    assert np.array_equal(ReferenceEvaluator(m).run(None, {"x": x[fin]})[0], mlas.quantize_linear(x[fin], scale, zp, dtype))


@pytest.mark.parametrize("op", ["QLinearAdd", "QLinearMul"])
@pytest.mark.parametrize("dtype", ["uint8", "int8"])
@pytest.mark.parametrize("b_shape", [(2, 5, 7, 33), (1, 5, 1, 1), (1,), (2, 5, 7, 1)])
def test_qlinear_binary_broadcast(op, dtype, b_shape):
    """QLinearAdd / QLinearMul: full tensors, per-channel and scalar operands (the kernel's scalar
    branches), ties (output scale twice the input's), odd lengths around the 32-byte vectors."""
    rng = np.random.default_rng(hash((op, dtype, b_shape)) % 2**32)
    lo, hi = mlas.QRANGE[dtype]
    tp = TensorProto.UINT8 if dtype == "uint8" else TensorProto.INT8
    a_shape = (2, 5, 7, 33)
    a = rng.integers(lo, hi + 1, size=a_shape).astype(dtype)
    b = rng.integers(lo, hi + 1, size=b_shape).astype(dtype)
    inits = _qparams("a", 0.05, 3, dtype) + _qparams("b", 0.05, -2 if dtype == "int8" else 200, dtype) + \
        _qparams("c", 0.1, 1, dtype)
    node = helper.make_node(op, ["a", "a_s", "a_z", "b", "b_s", "b_z", "c_s", "c_z"], ["y"], domain="com.microsoft")
    m = _model([node], inits, [helper.make_tensor_value_info("a", tp, list(a_shape)),
                               helper.make_tensor_value_info("b", tp, list(b_shape))], "y", tp, list(a_shape), ms=True)
    prog = lower(m, engine="onnxruntime")
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    assert np.array_equal(prog.run(a, b), s.run(None, {"a": a, "b": b})[0])


# -- quantize_static models (torch -> ONNX -> onnxruntime.quantization) ----------------------------
def _export(module, example, path):
    import torch

    torch.onnx.export(module, (torch.from_numpy(example),), str(path), input_names=["x"], output_names=["y"],
                      opset_version=17, dynamo=False)


def _quantize_static(src, dst, example, fmt, act, weight, per_channel):
    from onnxruntime import quantization as oq

    class Reader(oq.CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"x": example}])

        def get_next(self):
            return next(self.it, None)

    oq.quantize_static(str(src), str(dst), Reader(),
                       quant_format=oq.QuantFormat.QDQ if fmt == "qdq" else oq.QuantFormat.QOperator,
                       activation_type=oq.QuantType.QUInt8 if act == "u8" else oq.QuantType.QInt8,
                       weight_type=oq.QuantType.QInt8 if weight == "s8" else oq.QuantType.QUInt8,
                       per_channel=per_channel)


def _cnn():
    import torch
    from torch import nn

    torch.manual_seed(0)

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 8, 3, padding=1)
            self.c2 = nn.Conv2d(8, 8, 3, padding=1, stride=2)
            self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
            self.fc = nn.Linear(8, 5)

        def forward(self, x):
            a = torch.relu(self.c1(x))
            b = torch.relu(self.c2(a))
            c = torch.sigmoid(self.dw(b)) * b
            return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(c, 1), 1))

    return CNN().eval(), np.random.default_rng(3).normal(size=(4, 3, 13, 11)).astype(np.float32)


def _mlp():
    import torch
    from torch import nn

    torch.manual_seed(1)
    m = nn.Sequential(nn.Linear(12, 33), nn.ReLU(), nn.Linear(33, 17), nn.LeakyReLU(0.1), nn.Linear(17, 6)).eval()
    return m, np.random.default_rng(4).normal(size=(9, 12)).astype(np.float32)


def _forum_float():
    """The forum model's float weights (examples/forum.py) as a float MLP."""
    import torch
    from torch import nn

    from qgolden.examples import forum

    m = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 7)).eval()
    with torch.no_grad():
        m[0].weight.copy_(torch.tensor(forum.W1, dtype=torch.float32) * forum.W1_SCALE)
        m[0].bias.copy_(torch.tensor(forum.B1))
        m[2].weight.copy_(torch.tensor(forum.W2, dtype=torch.float32) * forum.W2_SCALE)
        m[2].bias.copy_(torch.tensor(forum.B2))
    return m, forum.INPUTS


@pytest.mark.parametrize("which", ["cnn", "mlp", "forum"])
@pytest.mark.parametrize("fmt,act,weight,per_channel", [("qdq", "u8", "s8", True), ("qdq", "u8", "u8", False),
                                                         ("qdq", "s8", "s8", True),
                                                         ("qop", "u8", "s8", False), ("qop", "s8", "s8", True)])
def test_quantize_static_models(tmp_path, which, fmt, act, weight, per_channel):
    pytest.importorskip("torch")
    module, x = {"cnn": _cnn, "mlp": _mlp, "forum": _forum_float}[which]()
    _export(module, x, tmp_path / "f.onnx")
    _quantize_static(tmp_path / "f.onnx", tmp_path / "q.onnx", x, fmt, act, weight, per_channel)
    try:
        rep = verify(str(tmp_path / "q.onnx"), x, engine="onnxruntime")
    except ImportErrorQ as e:  # float ops ORT left unfused on this host are named, not guessed
        assert "float32 op between DequantizeLinear and QuantizeLinear" in str(e)
        return
    _assert_exact(rep)


# -- command line, and running without onnx --------------------------------------------------------
def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "qgolden.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), **(env or {})))


def test_cli_verify_lower_run_without_onnx(tmp_path):
    case = DATA / "cnn_qop_u8s8"
    r = _cli("verify", f"{case}.onnx", "--input", f"{case}.in.npy", "--engine", "onnxruntime")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "bit-exact" in r.stdout
    r = _cli("lower", f"{case}.onnx", "-o", str(tmp_path / "p.qgp"))
    assert r.returncode == 0, r.stderr
    # the program runs with NumPy alone: onnx and onnxruntime made unimportable
    code = ("import sys; sys.modules['onnx'] = None; sys.modules['onnxruntime'] = None; sys.modules['torch'] = None\n"
            "import numpy as np; from qgolden.ir import load\n"
            f"y = load({str(tmp_path / 'p.qgp')!r}).run(np.load({str(case) + '.in.npy'!r}))\n"
            f"assert np.array_equal(y.view(np.int32), np.load({str(case) + '.ort.npy'!r}).view(np.int32))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 0, r.stderr


def test_cli_unsupported_nodes_exit_2():
    r = _cli("verify", str(DATA / "cnn_qdq_u8s8_pc.onnx"), "--input", str(DATA / "cnn_qdq_u8s8_pc.in.npy"),
             "--engine", "onnx-reference")
    assert r.returncode == 2
    assert "/c1/Conv (Conv)" in r.stderr and "cnn_qdq_u8s8_pc.onnx" in r.stderr


def test_not_an_onnx_file(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all \x00\xff")
    r = _cli("lower", str(bad), "-o", str(tmp_path / "p.qgp"))
    assert r.returncode == 2 and "bad.onnx" in r.stderr


# -- CPU classes other than this host's ----------------------------------------------------------
def _pairs_brute(a_u8, b_s8, za, zb):
    """Σ_j sat16(a[2j]b[2j] + a[2j+1]b[2j+1]) over raw bytes, minus the exact zero-point terms,
    by loops (the definition mlas_u8s8_saturates states)."""
    m, k = a_u8.shape
    n = b_s8.shape[1]
    out = np.zeros((m, n), np.int64)
    for i in range(m):
        for j in range(n):
            s = 0
            for p in range(0, k, 2):
                v = int(a_u8[i, p]) * int(b_s8[p, j]) + (int(a_u8[i, p + 1]) * int(b_s8[p + 1, j]) if p + 1 < k else 0)
                s += min(max(v, -32768), 32767)
            out[i, j] = s - za * int(b_s8[:, j].astype(np.int64).sum()) - zb[j] * int(a_u8[i].astype(np.int64).sum()) \
                + k * za * zb[j]
    return out


@pytest.mark.parametrize("a_dtype", ["uint8", "int8"])
def test_pair_saturation_of_non_vnni_classes(a_dtype):
    """avx2 / avx512 programs pair u8*s8 products in saturating int16 (int8 A biased by 128);
    avx512_vnni / avx512_amx programs sum exactly. Large same-sign products make pairs saturate."""
    from qgolden.numerics.profile import make_profile
    from qgolden.ops.onnx_qlinear import gemm_acc, onnx_qgemm

    rng = np.random.default_rng(7)
    lo, hi = mlas.QRANGE[a_dtype]
    a = rng.integers(lo, hi + 1, size=(6, 37)).astype(a_dtype)
    a[:, :8] = hi
    b = rng.integers(-128, 128, size=(37, 5)).astype(np.int8)
    b[:8, :2] = -128
    za = 3 if a_dtype == "uint8" else -5
    zb = np.array([0, 0, 0, 0, 0])
    a_u8 = (a.astype(np.int16) + (128 if a_dtype == "int8" else 0)).astype(np.uint8)
    za_u = za + (128 if a_dtype == "int8" else 0)
    sat = gemm_acc(a, b, za, zb, True)
    assert np.array_equal(sat, _pairs_brute(a_u8, b, za_u, zb))
    exact = gemm_acc(a, b, za, zb, False)
    assert (sat != exact).any()
    kw = dict(b=b, b_zero_point=zb, bias=None, scale=np.float32([0.01] * 5), a_zero_point=za, y_zero_point=0,
              dtype="int8")
    y_avx2 = onnx_qgemm(a, **kw, profile=make_profile("onnxruntime", "avx2", 1))
    y_amx = onnx_qgemm(a, **kw, profile=make_profile("onnxruntime", "avx512_amx", 1))
    assert np.array_equal(y_avx2, mlas.requantize_output(sat, np.float32(0.01), 0, "int8"))
    assert np.array_equal(y_amx, mlas.requantize_output(exact, np.float32(0.01), 0, "int8"))
