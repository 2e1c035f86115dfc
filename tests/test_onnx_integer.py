"""ONNX programs downstream: `lower --integer-only` / certify (every op certified over every value it can
receive against MLAS's or the reference evaluator's arithmetic), bit-exact with the float-requantization
program and with ONNX Runtime on this host; the C export compiles and matches the golden vectors."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="ONNX support needs onnx (pip install 'qgolden[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="ONNX support needs onnxruntime (pip install 'qgolden[onnx]')")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from qgolden.api import lower  # noqa: E402
from qgolden.integer import to_integer_only  # noqa: E402
from qgolden.integer.certify import certify  # noqa: E402
from qgolden.numerics import mlas  # noqa: E402

DATA = Path(__file__).parent / "data" / "onnx"
CASES = ["cnn_qop_u8s8", "cnn_qdq_u8s8_pc", "mlp_qdq_u8u8", "mlp_qop_s8s8_pc"]
HAS_CC = shutil.which("cc") is not None or shutil.which("gcc") is not None


def _same(a, b):
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)  # outputs may be views of channels-last memory
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a.view(np.uint8), b.view(np.uint8))


def _ort(model, feeds):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(model.SerializeToString() if not isinstance(model, str) else model, so,
                             providers=["CPUExecutionProvider"])
    return s.run(None, feeds)[0]


# -- recorded models: every class's program, both graphs ORT runs --------------------------------------
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("isa", ["avx512_amx", "avx2", "avx512_vnni", "arm64"])
def test_recorded_models_integer_only(tmp_path, case, isa):
    """Certified op by op; the integer-only program gives the float-requantization program's output
    (and on the recorded class, ORT's recorded output) at ORT's `all` (NHWC) graph, and its `extended` one
    on the recorded class."""
    x = np.load(DATA / f"{case}.in.npy")
    for level in ("all", "extended") if isa == "avx512_amx" else ("all",):
        prog = lower(str(DATA / f"{case}.onnx"), engine="onnxruntime", isa=isa, ort_opt_level=level)
        cert = certify(prog)
        assert cert.certified, [(c.name, c.method, c.mismatches) for c in cert.ops if not c.certified]
        gemms = [c for c in cert.ops if c.op in ("onnx_qlinear_conv", "onnx_qgemm")]
        assert gemms and all(c.domain > 0 for c in gemms)
        ip = cert.program
        assert not any(n.op in ("onnx_qlinear_conv", "onnx_qgemm", "onnx_qlinear_add", "onnx_qlinear_mul",
                                "onnx_qlinear_global_average_pool", "onnx_lookup") for n in ip.nodes)
        y = ip.run(x)
        assert _same(y, prog.run(x))
        ip.save(str(tmp_path / f"{level}.qgp"))  # the verifier accepts the new nodes
        from qgolden.ir import load

        assert _same(load(str(tmp_path / f"{level}.qgp")).run(x), y)
        if isa == "avx512_amx":
            assert _same(y, np.load(DATA / f"{case}.ort.npy"))


def test_host_program_matches_live_ort():
    """This host's program (its own CPU class), integer-only, against ORT itself."""
    for case in CASES:
        x = np.load(DATA / f"{case}.in.npy")
        ip = to_integer_only(lower(str(DATA / f"{case}.onnx"), engine="onnxruntime"))
        assert _same(ip.run(x), _ort(str(DATA / f"{case}.onnx"), {"x": x})), case


# -- random models ---------------------------------------------------------------------------------
@pytest.mark.parametrize("form", ["qop", "qdq", "std"])
@pytest.mark.parametrize("seed", range(3))
def test_random_models_integer_only(form, seed):
    """fuzz_onnx's generators: QOperator (contrib ops), QDQ fused by ORT, standard-ops QOperator (also on
    the reference evaluator): integer-only == float-requant program == the runtime; other CPU classes'
    integer-only programs == their float-requant programs (pair saturation, NEON fixed point)."""
    from qgolden.fuzz_onnx import build, standard_only
    from qgolden.verifiers.onnx import RuntimeRefused, verify_onnx

    rng = np.random.default_rng(1000 * seed + {"qop": 1, "qdq": 2, "std": 3}[form])
    model, x, desc, _ = build(rng, form)
    runs = [("onnxruntime", None), ("onnxruntime", "avx2"), ("onnxruntime", "arm64")]
    if standard_only(model):
        runs.append(("onnx-reference", None))
    for eng, isa in runs:
        prog = lower(model, engine=eng, isa=isa)
        ip = to_integer_only(prog)
        y = ip.run(x)
        assert _same(y, prog.run(x)), (eng, isa, desc)
        if isa is None:
            try:
                rep = verify_onnx(prog, [x])
            except RuntimeRefused:
                continue  # the runtime itself cannot run it (the reference's MaxPool pads int8 with NaN)
            assert rep.bit_exact, (eng, desc)
            if eng == "onnxruntime":
                assert _same(y, _ort(model, {"x": x})), desc


# -- QLinearAdd / QLinearMul: the kernel branch each operand shape takes -----------------------------
def _qparams(name, scale, zp, dtype):
    return [numpy_helper.from_array(np.array(scale, np.float32), f"{name}_s"),
            numpy_helper.from_array(np.array(zp, dtype), f"{name}_z")]


def _binary_model(op, dtype, a_shape, b_shape, b_const=None):
    tp = TensorProto.UINT8 if dtype == "uint8" else TensorProto.INT8
    inits = _qparams("a", 0.05, 3, dtype) + _qparams("b", 0.05, -2 if dtype == "int8" else 200, dtype) + \
        _qparams("c", 0.1, 1, dtype)
    inputs = [helper.make_tensor_value_info("a", tp, list(a_shape))]
    if b_const is None:
        inputs.append(helper.make_tensor_value_info("b", tp, list(b_shape)))
    else:
        inits.append(numpy_helper.from_array(b_const, "b"))
    node = helper.make_node(op, ["a", "a_s", "a_z", "b", "b_s", "b_z", "c_s", "c_z"], ["y"], domain="com.microsoft")
    out = list(np.broadcast_shapes(tuple(a_shape), tuple(b_shape)))
    g = helper.make_graph([node], "t", inputs, [helper.make_tensor_value_info("y", tp, out)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 19), helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 9
    return m


@pytest.mark.parametrize("op", ["QLinearAdd", "QLinearMul"])
@pytest.mark.parametrize("dtype", ["uint8", "int8"])
@pytest.mark.parametrize("a_shape,b_shape", [((2, 5, 7, 33), (2, 5, 7, 33)), ((2, 5, 7, 33), (1, 5, 1, 1)),
                                             ((2, 5, 7, 33), (1,)), ((2, 5, 7, 1), (2, 5, 7, 33)),
                                             ((1,), (3, 31))])
def test_binary_tables_per_branch(op, dtype, a_shape, b_shape):
    """Full tensors, a per-channel operand, a scalar one (MLAS's scalar branch: a multiply and an add
    where the vector branch fuses), the broadcast one first: the pair table is the branch's, = ORT."""
    rng = np.random.default_rng(abs(hash((op, dtype, a_shape, b_shape))) % 2**32)
    lo, hi = mlas.QRANGE[dtype]
    a = rng.integers(lo, hi + 1, size=a_shape).astype(dtype)
    b = rng.integers(lo, hi + 1, size=b_shape).astype(dtype)
    m = _binary_model(op, dtype, a_shape, b_shape)
    prog = lower(m, engine="onnxruntime")
    cert = certify(prog)
    assert cert.certified and cert.ops[0].domain == 65536
    ip = to_integer_only(prog)
    assert [n.op for n in ip.nodes] == ["lut2"]
    assert _same(ip.run(a, b), _ort(m, {"a": a, "b": b}))


def test_binary_scalar_constant_becomes_lut_and_both_broadcast_is_named():
    a = np.random.default_rng(0).integers(0, 256, size=(2, 3, 17)).astype(np.uint8)
    m = _binary_model("QLinearAdd", "uint8", (2, 3, 17), (1,), b_const=np.array([77], np.uint8))
    ip = to_integer_only(lower(m, engine="onnxruntime"))
    assert [n.op for n in ip.nodes if n.op != "onnx_constant"] == ["lut"]
    assert _same(ip.run(a), _ort(m, {"a": a}))
    m2 = _binary_model("QLinearMul", "uint8", (4, 1), (1, 5))
    with pytest.raises(ValueError, match=r"node .* \(op onnx_qlinear_mul\): .*both operands are broadcast"):
        to_integer_only(lower(m2, engine="onnxruntime"))


# -- C export -------------------------------------------------------------------------------------------
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def _export_and_run(prog, x, d):
    from qgolden.export.binding import compile_and_load, compiler
    from qgolden.export.c import export_c

    ip = to_integer_only(prog)
    r = export_c(ip, d, "m", [x])
    exe = d / "test_m"
    srcs = [str(d / "test_m.c"), str(d / "m.c")] + ([str(d / "m_float.c")] if (d / "m_float.c").exists() else [])
    c = subprocess.run([compiler(), *STRICT, "-O1", "-o", str(exe), *srcs], capture_output=True, text=True)
    assert c.returncode == 0, c.stderr
    p = subprocess.run([str(exe)], capture_output=True, text=True)
    assert p.returncode == 0 and "bit-exact" in p.stdout, p.stdout + p.stderr
    got = compile_and_load(d)(x)
    assert _same(got, ip.run(x))
    return ip, r, got


@pytest.mark.skipif(not HAS_CC, reason="no C compiler")
@pytest.mark.parametrize("case", CASES)
def test_recorded_models_c_export(tmp_path, case):
    """The C of the host's program (ORT `all`: NHWC convs between transposes) gives ORT's recorded
    output; the golden per-layer vectors pass in the generated test."""
    x = np.load(DATA / f"{case}.in.npy")
    _, _, got = _export_and_run(lower(str(DATA / f"{case}.onnx"), engine="onnxruntime", isa="avx512_amx"), x,
                                tmp_path)
    assert _same(got, np.load(DATA / f"{case}.ort.npy"))


@pytest.mark.skipif(not HAS_CC, reason="no C compiler")
@pytest.mark.parametrize("case,isa", [("cnn_qop_u8s8", "avx2"), ("cnn_qdq_u8s8_pc", "avx2"),
                                      ("cnn_qop_u8s8", "arm64")])
def test_other_class_c_export(tmp_path, case, isa):
    """The C of another class's program: MLAS's int16 pairs (avx2: the conv kernel's pair mode is used)
    and arm64's fixed-point add / pool tables."""
    x = np.load(DATA / f"{case}.in.npy")
    _export_and_run(lower(str(DATA / f"{case}.onnx"), engine="onnxruntime", isa=isa), x, tmp_path)
    if isa == "avx2":
        assert "QG_CONV_PAIRS" in (tmp_path / "m.c").read_text()


@pytest.mark.skipif(not HAS_CC, reason="no C compiler")
@pytest.mark.parametrize("form,seed", [("qop", 0), ("qop", 1), ("qdq", 0), ("qdq", 2), ("std", 1)])
def test_random_models_c_export(tmp_path, form, seed):
    from qgolden.fuzz_onnx import build

    rng = np.random.default_rng(1000 * seed + {"qop": 1, "qdq": 2, "std": 3}[form])
    model, x, desc, _ = build(rng, form)
    _, _, got = _export_and_run(lower(model, engine="onnxruntime"), x, tmp_path)
    assert _same(got, _ort(model, {"x": x})), desc


def test_cli_certify_and_lower_integer_only(tmp_path):
    import os
    import sys

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root))
    case = DATA / "cnn_qop_u8s8"
    r = subprocess.run([sys.executable, "-m", "qgolden.cli", "certify", f"{case}.onnx"], capture_output=True,
                       text=True, cwd=root, env=env)
    assert r.returncode == 0 and "certified:" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([sys.executable, "-m", "qgolden.cli", "lower", f"{case}.onnx", "--integer-only", "-o",
                        str(tmp_path / "i.qgp")], capture_output=True, text=True, cwd=root, env=env)
    assert r.returncode == 0, r.stderr
    from qgolden.ir import load

    x = np.load(f"{case}.in.npy")
    assert _same(load(str(tmp_path / "i.qgp")).run(x), np.load(f"{case}.ort.npy"))


# -- float ops ORT keeps between DQ and Q --------------------------------------------------------------
def _float_op_model(op, dtype, attrs=None, binary=False, shape=(2, 3, 5, 33)):
    tp = TensorProto.UINT8 if dtype == "uint8" else TensorProto.INT8
    inits = _qparams("a", 0.043, 7 if dtype == "uint8" else -3, dtype) + \
        _qparams("b", 0.061, 200 if dtype == "uint8" else 5, dtype) + \
        _qparams("y", 0.0371, 128 if dtype == "uint8" else 0, dtype)
    nodes = [helper.make_node("DequantizeLinear", ["a", "a_s", "a_z"], ["fa"])]
    ins = [helper.make_tensor_value_info("a", tp, list(shape))]
    if binary:
        nodes.append(helper.make_node("DequantizeLinear", ["b", "b_s", "b_z"], ["fb"]))
        ins.append(helper.make_tensor_value_info("b", tp, [1, shape[1], 1, 1]))
        nodes.append(helper.make_node(op, ["fa", "fb"], ["f"]))
    elif op == "Clip":
        inits += [numpy_helper.from_array(np.array(-1.3, np.float32), "lo"),
                  numpy_helper.from_array(np.array(2.2, np.float32), "hi")]
        nodes.append(helper.make_node(op, ["fa", "lo", "hi"], ["f"]))
    else:
        nodes.append(helper.make_node(op, ["fa"], ["f"], **(attrs or {})))
    # a float Transpose and Reshape after the op: data movement on floats, moved onto the integers
    nodes.append(helper.make_node("Transpose", ["f"], ["ft"], perm=[0, 2, 3, 1]))
    inits.append(numpy_helper.from_array(np.array([shape[0], -1], np.int64), "shp"))
    nodes.append(helper.make_node("Reshape", ["ft", "shp"], ["fr"]))
    nodes.append(helper.make_node("QuantizeLinear", ["fr", "y_s", "y_z"], ["y"]))
    out = [shape[0], int(np.prod(shape[1:]))]
    g = helper.make_graph(nodes, "t", ins, [helper.make_tensor_value_info("y", tp, out)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)])
    m.ir_version = 9
    return m


FLOAT_OPS = [("Relu", {}), ("Clip", {}), ("LeakyRelu", {"alpha": 0.13}), ("Sigmoid", {}), ("Tanh", {}),
             ("Add", None), ("Sub", None), ("Mul", None), ("Div", None)]


@pytest.mark.parametrize("op,attrs", FLOAT_OPS, ids=[o for o, _ in FLOAT_OPS])
@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_float_ops_between_dq_and_q(op, attrs, dtype):
    """DequantizeLinear -> a float32 op -> Transpose -> Reshape -> QuantizeLinear, every input value (and
    a zero divisor), at ORT's `disable` level (the float kernels run) and `all`, and on the reference
    evaluator: bit-exact. Integer-only: unary chains fold into one 256-entry table, binary ops into a
    65,536-entry pair table."""
    from onnx.reference import ReferenceEvaluator

    binary = attrs is None
    m = _float_op_model(op, dtype, attrs, binary)
    lo, hi = mlas.QRANGE[dtype]
    rng = np.random.default_rng(11)
    a = np.resize(np.arange(lo, hi + 1), 2 * 3 * 5 * 33).reshape(2, 3, 5, 33).astype(dtype)
    feeds = {"a": a}
    if binary:
        feeds["b"] = rng.integers(lo, hi + 1, size=(1, 3, 1, 1)).astype(dtype)
        feeds["b"][0, 0] = 200 if dtype == "uint8" else 5  # a zero divisor: inf / nan quantized
    for level in ("disable", "all"):
        prog = lower(m, engine="onnxruntime", ort_opt_level=level)
        y = prog.run(*feeds.values())
        so = ort.SessionOptions()
        so.graph_optimization_level = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
                                       "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]
        so.intra_op_num_threads = 1
        want = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
        assert _same(y, want), level
        ip = to_integer_only(prog)  # unary chains: one table; binary ops: a pair table
        assert not any(n.op.startswith("onnx_float") for n in ip.nodes)
        assert _same(ip.run(*feeds.values()), y)
    if binary:  # the reference evaluator's QuantizeLinear casts inf / NaN by NumPy: finite values only there
        feeds["b"][0, 0] += 1
    ref = lower(m, engine="onnx-reference")
    assert _same(ref.run(*feeds.values()), ReferenceEvaluator(m).run(None, feeds)[0])


def test_mlas_float_kernels_against_ort():
    """MlasComputeLogistic and MlasComputeTanh as modelled for this host's class (fused multiply-adds; the
    logistic's upper clamp per class) against ORT's float Sigmoid / Tanh on random float32 values."""
    from qgolden.numerics.profile import make_profile
    from qgolden.ops.onnx_float import onnx_float_unary

    host = make_profile("onnxruntime", None, 1)
    x = np.concatenate([np.random.default_rng(5).normal(0, 4, 200003),
                        np.linspace(-20, 20, 40001), [17.844, 17.89196]]).astype(np.float32)
    for op in ("Sigmoid", "Tanh"):
        g = helper.make_graph([helper.make_node(op, ["x"], ["y"])], "t",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [x.size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [x.size])])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)])
        m.ir_version = 9
        assert _same(onnx_float_unary(x, fn=op.lower(), profile=host), _ort(m, {"x": x})), op


@pytest.mark.parametrize("isa,clamps", [("avx2", False), ("avx512", False), ("avx512_vnni", False),
                                        ("avx512_amx", False), ("arm64", True)])
def test_logistic_upper_clamp_per_class(isa, clamps):
    """x86's LogisticKernelFma3.S ends with vmaxps(0, p/q + 0.5) only; the NEON kernel clamps to [0, 1]:
    at x = 17.844 the polynomial gives 1.0000001 (float32 0x3F800001), which x86 keeps."""
    from qgolden.cpu import cpu_class
    from qgolden.numerics.profile import make_profile
    from qgolden.ops.onnx_float import onnx_float_unary

    prof = make_profile("onnxruntime", isa, 1)
    assert cpu_class(prof).mlas_logistic_clamps_one is clamps
    y = onnx_float_unary(np.array([17.844, -30.0], np.float32), fn="sigmoid", profile=prof)
    assert y.view(np.uint32).tolist() == [0x3F800000 if clamps else 0x3F800001, 0]


def test_unmodelled_float_op_is_named():
    """A float op whose ORT kernel is not modelled (Softmax) is named with its node, not guessed."""
    from qgolden.importers import ImportErrorQ

    m = _float_op_model("Softmax", "uint8", {"axis": 1})
    with pytest.raises(ImportErrorQ, match=r"node \? \(Softmax\): a float32 op between DequantizeLinear .* \(modelled: Relu"):
        lower(m, engine="onnxruntime", ort_opt_level="disable")


@pytest.mark.parametrize("fmt,act", [("qdq", "u8"), ("qdq", "s8"), ("qop", "u8")])
def test_quantize_static_leaves_float_activations(tmp_path, fmt, act):
    """onnxruntime.quantization.quantize_static does not quantize Tanh or Div: they stay float32 between
    DQ and Q (with Add / Mul / Sigmoid, which int8 activations can leave float too); bit-exact with ORT
    (verify: every quantized tensor), and integer-only (tables) where no float kernel is left."""
    torch = pytest.importorskip("torch")
    from onnxruntime import quantization as oq
    from torch import nn

    from qgolden.api import verify

    torch.manual_seed(3)

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(12, 24), nn.Linear(24, 10)

        def forward(self, x):
            h = torch.tanh(self.a(x))
            return self.b(h * torch.sigmoid(h) + h / 3.0)

    x = np.random.default_rng(4).normal(size=(7, 12)).astype(np.float32)
    torch.onnx.export(M().eval(), (torch.from_numpy(x),), str(tmp_path / "f.onnx"), input_names=["x"],
                      output_names=["y"], opset_version=17, dynamo=False)

    class Reader(oq.CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"x": x}])

        def get_next(self):
            return next(self.it, None)

    oq.quantize_static(str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx"), Reader(),
                       quant_format=oq.QuantFormat.QDQ if fmt == "qdq" else oq.QuantFormat.QOperator,
                       activation_type=oq.QuantType.QUInt8 if act == "u8" else oq.QuantType.QInt8,
                       weight_type=oq.QuantType.QInt8)
    q = onnx.load(str(tmp_path / "q.onnx"))
    prog = lower(q, engine="onnxruntime")
    assert any(n.op == "onnx_float_unary" and n.attrs["fn"] == "tanh" for n in prog.nodes)
    rep = verify(str(tmp_path / "q.onnx"), x, engine="onnxruntime")
    assert rep.bit_exact and rep.layers, [(l.name, l.mismatches) for l in rep.layers if l.mismatches]
    y = prog.run(x)
    assert _same(y, _ort(q, {"x": x}))
    if (fmt, act) == ("qdq", "u8"):  # DQ -> Tanh -> Q and DQ -> Div by 3 -> Q fold into tables
        assert _same(to_integer_only(prog).run(x), y)


# -- MLAS facts of CPU classes we cannot run here, hand-computed from the kernels' source -----------------
def test_neon_fixed_point_add_ties_against_x86_float():
    """QLinearAdd, sA = 0.25, sB = 0.125, sC = 0.5 (ratios 0.5, 0.25): NEON (qladd.cpp) takes
    S = 21 - exponent(0.5) = 22, MA = 2**21, MB = 2**20, and rounds acc + 2**21 >> 22 (ties away from
    zero through acc += acc >> 31); x86 (qladd_avx2.cpp) rounds fma(a, 0.5, fma(b, 0.25, F)) half to even."""
    from qgolden.numerics.profile import make_profile
    from qgolden.ops.onnx_qlinear import onnx_qlinear_add

    a = np.array([11, 9, 20, 8], np.uint8)   # a - zA = 1, -1, 10, -2
    b = np.array([0, 0, 7, 2], np.uint8)     # b - zB = 0, 0, 7, 2
    kw = dict(a_scale=0.25, a_zero_point=10, b_scale=0.125, b_zero_point=0, y_scale=0.5, y_zero_point=100,
              dtype="uint8")
    # exact values 0.5, -0.5, 6.75, -0.5
    arm = onnx_qlinear_add(a, b, **kw, profile=make_profile("onnxruntime", "arm64", 1))
    x86 = onnx_qlinear_add(a, b, **kw, profile=make_profile("onnxruntime", "avx2", 1))
    assert arm.tolist() == [101, 99, 107, 99]
    assert x86.tolist() == [100, 100, 107, 100]


def test_neon_fixed_point_global_average_pool_ties():
    """QLinearGlobalAveragePool over N = 4, sX = 1, sY = 0.5: scale 0.5 = 0x3F000000, NEON (qlgavgpool.cpp)
    multiplies by the mantissa 2**23 and shifts by 24 with rounding (ties away from zero); x86 rounds
    float32(acc) * 0.5 half to even. Sums - zX*N of 1, -1, 3, 5 (exact halves)."""
    from qgolden.numerics.profile import make_profile
    from qgolden.ops.onnx_qlinear import onnx_qlinear_global_average_pool

    zx = 3
    x = np.full((1, 4, 2, 2), zx, np.uint8)
    x[0, 0, 0, 0] += 1
    x[0, 1, 0, 0] -= 1
    x[0, 2, 0, 0] += 3
    x[0, 3, 0, 0] += 5
    kw = dict(x_scale=1.0, x_zero_point=zx, y_scale=0.5, y_zero_point=50, dtype="uint8")
    arm = onnx_qlinear_global_average_pool(x, **kw, profile=make_profile("onnxruntime", "arm64", 1))
    x86 = onnx_qlinear_global_average_pool(x, **kw, profile=make_profile("onnxruntime", "avx512_vnni", 1))
    assert arm.reshape(-1).tolist() == [51, 49, 52, 53]
    assert x86.reshape(-1).tolist() == [50, 50, 52, 52]


# -- the forum model as ONNX -------------------------------------------------------------------------------
def test_forum_onnx_same_numbers_as_pytorch_on_the_thread_inputs(tmp_path):
    """examples/forum.build_onnx (the thread's weights and scales as a QDQ graph, fused by ORT into QGemm):
    bit-exact with live ORT; on the thread's seven inputs its integers are PyTorch's (x86 engine) for the
    x86 classes, the AVX2 saturated first row included; explain names ONNX Runtime and QGemm."""
    torch = pytest.importorskip("torch")  # noqa: F841
    from qgolden.api import verify
    from qgolden.examples import forum

    m = forum.build_onnx()
    x = forum.INPUTS
    rep = verify(m, x, engine="onnxruntime")
    assert rep.bit_exact and rep.layers
    q = forum.build()
    for isa in ("avx2", "avx512_vnni", "avx512_amx"):
        _, e_onnx = lower(m, engine="onnxruntime", isa=isa).run(x, keep=True)
        _, e_torch = lower(q, example_inputs=(x,), engine="x86", isa=isa).run(x, keep=True)
        assert np.array_equal(e_onnx["hq"], e_torch["input_layer"]), isa
        assert np.array_equal(e_onnx["yq"], e_torch["out"]), isa
    onnx.save(m, str(tmp_path / "forum.onnx"))
    np.save(tmp_path / "x.npy", x)
    import os
    import sys

    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-m", "qgolden.cli", "explain", str(tmp_path / "forum.onnx"), "--input",
                        str(tmp_path / "x.npy"), "--sample", "0"], capture_output=True, text=True, cwd=root,
                       env=dict(os.environ, PYTHONPATH=str(root), COLUMNS="200"))
    assert r.returncode == 0, r.stderr
    assert "ONNX Runtime" in r.stdout and "QGemm" in r.stdout
