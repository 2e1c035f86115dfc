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
    a, b = np.asarray(a), np.asarray(b)
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
    from qgolden.importers.onnx_verify import RuntimeRefused, verify_onnx

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
