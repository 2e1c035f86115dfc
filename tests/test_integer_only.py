"""Integer-only programs: no float operation anywhere (walked), and bit-exact against PyTorch on a
subset of the random-model suite, all four engines, and on the forum model through the CLI.

The no-float rule (docs/integer-only.md): every node is an integer-only op (transform.INTEGER_OPS),
every constant is an integer or bool array, and no attribute holds a float (nested lists/dicts
included). Floats exist only at the program's edges: a float32 input is read by `quantize_thr` as
its int32 bit pattern, and a float32 output is written by `dequantize_lut` as int32 bit patterns
from a table. Neither does float arithmetic.
"""
import numpy as np
import pytest

from qgolden.integer import certify
from qgolden.integer.transform import INTEGER_OPS

FLOAT_EDGE_OPS = {"quantize_thr", "dequantize_lut"}


def _no_float(v, where):
    if isinstance(v, (float, np.floating)):
        raise AssertionError(f"{where}: float attribute {v!r}")
    if isinstance(v, dict):
        for k, x in v.items():
            _no_float(x, f"{where}.{k}")
    elif isinstance(v, (list, tuple)):
        for i, x in enumerate(v):
            _no_float(x, f"{where}[{i}]")
    elif isinstance(v, np.ndarray):
        assert v.dtype.kind in "iub", f"{where}: {v.dtype} array"


def assert_integer_only(prog):
    float_tensors = {n for n, t in prog.tensors.items() if t.dtype == "float32"}
    for node in prog.nodes:
        assert node.op in INTEGER_OPS, f"{node.name}: op {node.op} is not integer-only"
        for k, v in node.consts.items():
            if v is not None:
                _no_float(np.asarray(v), f"{node.name}.{k}")
        _no_float(node.attrs, f"{node.name}.attrs")
        ins = [i for i in node.inputs if isinstance(i, str)]
        if node.op != "quantize_thr":
            assert not any(i in float_tensors for i in ins), f"{node.name} reads a float tensor"
        if node.output in float_tensors:
            assert node.op in FLOAT_EDGE_OPS, f"{node.name} writes a float tensor"


CASES = [(0, "x86"), (3, "x86"), (1, "fbgemm"), (14, "fbgemm"), (5, "qnnpack"), (13, "qnnpack"),
         (9, "onednn"), (17, "onednn")]


@pytest.mark.parametrize("seed,engine", CASES)
def test_random_model_integer_only_bit_exact(seed, engine):
    from qgolden.api import lower, verify
    from qgolden.fuzz import random_case

    q, xs, desc, eng = random_case(seed, engine=engine)
    prog = lower(q, example_inputs=xs, engine=eng)
    cert = certify(prog, multiplier_bits=32)
    assert cert.certified, (desc, [(c.name, c.method, c.mismatches) for c in cert.ops if not c.certified])
    ip = cert.program
    assert_integer_only(ip)
    ip._torch = prog._torch
    rep = verify(q, *xs, engine=eng, program=ip)
    assert rep.bit_exact, (desc, [(l.name, l.mismatches) for l in rep.layers if l.mismatches], rep.outputs)
    # the integer-only program also survives a save/load round trip unchanged
    assert_integer_only(ip)


def test_cli_lower_integer_only_runs_bit_exact(tmp_path, forum_model):
    from typer.testing import CliRunner

    from qgolden.cli import app
    from qgolden.examples import forum
    from qgolden.ir import load
    from qgolden.torch_side import engine

    out = str(tmp_path / "forum_int.qgp")
    r = CliRunner().invoke(app, ["lower", "qgolden/examples/forum.py:build", "--engine", "x86", "--integer-only",
                                 "-o", out])
    assert r.exit_code == 0, r.output
    prog = load(out)
    assert_integer_only(prog)
    x = str(tmp_path / "x.npy")
    np.save(x, forum.INPUTS)
    y = str(tmp_path / "y.npy")
    r = CliRunner().invoke(app, ["run", out, "--input", x, "--output", y])
    assert r.exit_code == 0, r.output
    import torch

    with engine("x86"), torch.no_grad():
        want = forum_model(torch.from_numpy(forum.INPUTS)).numpy()
    got = np.load(y)
    assert got.dtype == np.float32 and np.array_equal(got.view(np.int32), want.view(np.int32))


def test_quantize_threshold_table_edges():
    from qgolden.ir import Node
    from qgolden.integer import lut as L
    from qgolden.numerics.profile import make_profile
    from qgolden.ops.quantize import quantize
    from qgolden.ops.quantize_thr import quantize_thr

    node = Node("q", "quantize", ["x"], "y", {"scale": 0.0371, "zero_point": 17, "dtype": "uint8"})
    prof = make_profile("x86", "avx2", 1)
    t, base, nan, f, wrap = L.quantize_thresholds(node, prof)
    mism, n = L.check_quantize(node, prof, t, base, nan, wrap, samples=1 << 16)
    assert mism == 0 and n > 1 << 16 and wrap is None
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e-30, 0.0371 * 4.5], np.float32)
    with np.errstate(all="ignore"):
        assert np.array_equal(quantize_thr(x, thresholds=t, out_min=base, nan_value=nan),
                              quantize(x, scale=0.0371, zero_point=17))
