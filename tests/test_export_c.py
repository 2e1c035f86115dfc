"""C99 export (qgolden/export): the generated C, compiled with the system compiler, gives PyTorch's
integers and floats exactly (forum model, and a sample of the random-model suite on all engines),
builds warning-free as strict C99, builds with -mgeneral-regs-only (no floating point), and runs
clean under ASan/UBSan. The arena equals the minimum for these graphs.
"""
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                                reason="no C compiler")

STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def _cc():
    from qgolden.export.binding import compiler

    return compiler()


def _build_and_run_test(d, name, extra=()):
    """Compile test_NAME.c with the strict flags (+ extra) and run it; (returncode, stdout)."""
    srcs = [str(d / f"test_{name}.c"), str(d / f"{name}.c")]
    if (d / f"{name}_float.c").exists():
        srcs.append(str(d / f"{name}_float.c"))
    exe = d / f"test_{name}{'_san' if extra else ''}"
    r = subprocess.run([_cc(), *STRICT, "-O1", *extra, "-o", str(exe), *srcs], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    p = subprocess.run([str(exe)], capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def _export(q, xs, eng, d, name="m", isa=None):
    from qgolden.api import lower
    from qgolden.export.c import export_c
    from qgolden.integer import to_integer_only

    prog = lower(q, example_inputs=xs, engine=eng, isa=isa)
    ip = to_integer_only(prog)
    return ip, export_c(ip, d, name, xs)


def _torch_out(q, xs, eng):
    import torch

    from qgolden.torch_side import engine

    with engine(eng), torch.no_grad():
        return q(*[torch.from_numpy(x) for x in xs]).numpy()


# PyTorch's output integers for the forum inputs with FBGEMM's AVX2 kernels (x86 engine, recorded with
# FBGEMM_ENABLE_INSTRUCTIONS=AVX2): 255*-56 + 255*-128 saturates FBGEMM's int16 pair sum in the first row
AVX2_OUT = [[249, 242, 250, 230, 249, 247, 236], [100, 246, 213, 241, 241, 244, 244],
            [248, 242, 250, 230, 249, 247, 236], [0, 249, 186, 250, 235, 241, 250],
            [221, 243, 243, 232, 247, 247, 238], [182, 244, 233, 235, 245, 246, 240],
            [52, 247, 201, 245, 238, 243, 247]]


def test_forum_c_bit_exact_nofloat_sanitized(tmp_path, forum_model):
    """The forum model on the AVX2 profile (the int16 pair saturation of its first input): the C gives
    the integer program's floats and PyTorch's recorded AVX2 integers, builds without floating point
    and runs clean under ASan/UBSan."""
    from qgolden.examples import forum
    from qgolden.export.binding import compile_and_load

    xs = [forum.INPUTS]
    ip, r = _export(forum_model, xs, "x86", tmp_path, "forum", isa="avx2")
    assert r.arena_bytes == r.minimum_bytes
    assert ".paired = 1" in (tmp_path / "forum.c").read_text()  # the saturating kernel is exercised
    rc, out = _build_and_run_test(tmp_path, "forum")
    assert rc == 0 and "bit-exact" in out, out
    if sys.platform.startswith("linux") and __import__("platform").machine() == "x86_64":
        c = subprocess.run([_cc(), *STRICT, "-O2", "-mgeneral-regs-only", "-c", str(tmp_path / "forum.c"), "-o",
                            str(tmp_path / "nofloat.o")], capture_output=True, text=True)
        assert c.returncode == 0, c.stderr
    rc, out = _build_and_run_test(tmp_path, "forum", ["-g", "-fsanitize=address,undefined",
                                                      "-fno-sanitize-recover=all"])
    assert rc == 0, out
    m = compile_and_load(tmp_path)
    got = m(forum.INPUTS)
    want = ip.run(forum.INPUTS)
    assert got.dtype == np.float32 and np.array_equal(got.view(np.int32), want.view(np.int32))
    out_q = np.rint(got.astype(np.float64) / forum.OUT_SCALE + forum.OUT_ZERO_POINT).astype(int)
    assert out_q.tolist() == AVX2_OUT
    assert list(np.argmax(got, axis=1)) == [2, 1, 2, 3, 4, 5, 1]  # the thread's saturated first row
    _, env = ip.run(forum.INPUTS, keep=True)
    for name, v in m.layers(env[r.plan.int_inputs[0]]).items():
        assert np.array_equal(v, env[[s.output for s in r.plan.steps if s.name == name][0]]), name


def test_forum_c_equals_pytorch_on_this_machine(tmp_path, forum_model):
    """The C exported for this machine's profile gives PyTorch's own floats, bit for bit."""
    from qgolden.examples import forum
    from qgolden.export.binding import compile_and_load

    xs = [forum.INPUTS]
    _export(forum_model, xs, "x86", tmp_path, "forum")
    got = compile_and_load(tmp_path)(forum.INPUTS)
    want = _torch_out(forum_model, xs, "x86")
    assert got.dtype == np.float32 and np.array_equal(got.view(np.int32), want.view(np.int32))


def test_forum_vnni_golden_model(tmp_path, forum_model):
    """--isa avx512_vnni: the C reproduces that CPU's golden model (no saturation): the thread's argmax."""
    from qgolden.examples import forum
    from qgolden.export.binding import compile_and_load

    ip, r = _export(forum_model, [forum.INPUTS], "x86", tmp_path, "forum", isa="avx512_vnni")
    got = compile_and_load(tmp_path)(forum.INPUTS)
    want = ip.run(forum.INPUTS)
    assert np.array_equal(got.view(np.int32), want.view(np.int32))
    assert list(np.argmax(got, axis=1)) == [0, 1, 2, 3, 4, 5, 1]


# linear, conv (grouped, 1-D), depthwise, add/mul, avg/adaptive/max pools, LUT ops (tanh, hardswish,
# sigmoid, leaky_relu), batch norm, cat, upsample; all four engines (45: QNNPACK max pool with clamped taps; 50: ATen max pool;
# 62: a graph where the largest-first placement alone misses the minimum arena)
SEEDS = [0, 6, 13, 14, 17, 21, 45, 50, 60, 62]


@pytest.mark.parametrize("seed", SEEDS)
def test_random_model_c_equals_pytorch(tmp_path, seed):
    from qgolden.export.binding import compile_and_load
    from qgolden.fuzz import random_case

    q, xs, desc, eng = random_case(seed)
    ip, r = _export(q, xs, eng, tmp_path)
    assert r.arena_bytes == r.minimum_bytes, desc
    rc, out = _build_and_run_test(tmp_path, "m")
    assert rc == 0, (desc, out)
    got = compile_and_load(tmp_path)(xs[0])
    want = _torch_out(q, xs, eng)
    assert np.array_equal(got.view(np.int32), want.view(np.int32)), desc


def test_harness_names_first_mismatching_layer(tmp_path, forum_model):
    from qgolden.examples import forum

    _export(forum_model, [forum.INPUTS], "x86", tmp_path, "forum", isa="avx2")
    g = tmp_path / "forum_golden.h"
    text = g.read_text()
    head, rest = text.split("golden_layer1[49] = {\n    ", 1)
    first, tail = rest.split(",", 1)
    g.write_text(head + "golden_layer1[49] = {\n    " + str((int(first) + 1) % 256) + "," + tail)
    rc, out = _build_and_run_test(tmp_path, "forum")
    assert rc == 1 and "MISMATCH layer 1 (out) sample 0 element 0" in out, out


def test_cli_export_reports_arena_and_rejects_unsupported_op(tmp_path):
    from typer.testing import CliRunner

    from qgolden.cli import app
    from qgolden.examples import forum
    from qgolden.ir import Node, Program, TensorInfo

    x = tmp_path / "x.npy"
    np.save(x, forum.INPUTS)
    r = CliRunner().invoke(app, ["export", "qgolden/examples/forum.py:build", "--target", "c", "--out",
                                 str(tmp_path / "c"), "--input", str(x), "--name", "forum", "--engine", "x86"])
    assert r.exit_code == 0, r.output
    assert "arena: 3 bytes (minimum possible for this graph: 3)" in " ".join(r.output.split())
    assert "batch: any N at run time (arena and sizes per sample)" in " ".join(r.output.split())
    assert (tmp_path / "c" / "Makefile").exists() and (tmp_path / "c" / "forum_float.c").exists()
    # an integer op with no C kernel: exit 2 naming the node and the op
    prog = Program(["x"], ["y"], [Node("thr", "threshold_table", ["x"], "y", {"out_min": 0, "axis": -1},
                                       {"thresholds": np.array([[10, 20]], np.int64)})],
                   {"x": TensorInfo("x", "uint8", 0.1, 0, [1, 4]), "y": TensorInfo("y", "uint8", 0.1, 0, [1, 4])},
                   {"engine": "x86", "isa": "avx2", "vector_width": 32, "num_threads": 1})
    prog.save(tmp_path / "p.qgp")
    r = CliRunner().invoke(app, ["export", str(tmp_path / "p.qgp"), "--out", str(tmp_path / "d")])
    assert r.exit_code == 2 and "thr" in r.output and "threshold_table" in r.output, r.output


def test_arena_planner_reaches_minimum_and_never_overlaps():
    from qgolden.export.arena import Buffer, check_plan, minimum_bytes, plan_arena

    bufs = [Buffer("a", 100, 0, 1), Buffer("b", 40, 1, 2), Buffer("c", 100, 2, 3), Buffer("d", 10, 0, 3)]
    assert minimum_bytes(bufs) == 150
    size = plan_arena(bufs)
    check_plan(bufs)
    assert size == 150


@pytest.mark.parametrize("eng", ["x86", "fbgemm", "qnnpack", "onednn"])
def test_small_cnn_depthwise_c_equals_pytorch(tmp_path, eng):
    """conv, depthwise (FBGEMM's always-saturating depthwise kernel on fbgemm/x86), max pool,
    adaptive pool, linear: C output == PyTorch's on every engine."""
    from qgolden.export.binding import compile_and_load
    from qgolden.export.small_cnn import build

    q, xs = build(eng)
    ip, r = _export(q, xs, eng, tmp_path)
    assert r.arena_bytes == r.minimum_bytes
    paths = {s.params.get("path") for s in r.plan.steps if s.kind == "conv"}
    if eng == "fbgemm":
        assert "depthwise" in paths, paths
    rc, out = _build_and_run_test(tmp_path, "m")
    assert rc == 0, out
    got = compile_and_load(tmp_path)(xs[0])
    assert np.array_equal(got.view(np.int32), _torch_out(q, xs, eng).view(np.int32))


@pytest.mark.parametrize("eng,batch", [("x86", 5), ("qnnpack", 2)])
def test_batch_is_a_runtime_argument(tmp_path, eng, batch):
    """Exported from a one-sample example, the C takes any batch: `batch` random samples (odd counts
    too) give PyTorch's floats for that batch; the arena is one sample's minimum; the harness runs
    N = 1 and N = 3 against the golden vectors."""
    from qgolden.export.binding import compile_and_load
    from qgolden.export.small_cnn import build

    q, xs = build(eng, size=13)  # 13x13: odd sizes around the vector widths
    ip, r = _export(q, xs, eng, tmp_path)
    assert r.plan.per_sample and r.arena_bytes == r.minimum_bytes
    assert "_FIXED_BATCH 0" in (tmp_path / "m.h").read_text()
    rc, out = _build_and_run_test(tmp_path, "m")
    assert rc == 0 and "batch 1, 1 and 3" in out, out
    x = (np.random.default_rng(batch).standard_normal((batch, 3, 13, 13)) * 2).astype(np.float32)
    x[0, 0, 0, :4] = [0.0, -0.0, 1e-30, 3e38]  # zero, a tiny and a huge input
    m = compile_and_load(tmp_path)
    got = m(x)
    assert got.shape[0] == batch
    assert np.array_equal(got.view(np.int32), _torch_out(q, [x], eng).view(np.int32))
    assert np.array_equal(got.view(np.int32), ip.run(x).view(np.int32))


def test_export_of_a_batch_example_takes_other_batches(tmp_path, forum_model):
    """The forum example's 7 samples: golden vectors for all 7, and the C takes 1 or 4 samples too."""
    from qgolden.examples import forum
    from qgolden.export.binding import compile_and_load

    ip, r = _export(forum_model, [forum.INPUTS], "x86", tmp_path, "forum")
    assert r.plan.batch == 7 and r.plan.per_sample
    m = compile_and_load(tmp_path)
    for n in (1, 4):
        x = forum.INPUTS[:n]
        assert np.array_equal(m(x).view(np.int32), ip.run(x).view(np.int32))


def _conv_model(eng, seed):
    import torch
    from torch import nn
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    from qgolden.torch_side import engine

    torch.manual_seed(seed)

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 6, (3, 5), padding=(1, 2), dilation=(2, 1), groups=3)
            self.b = nn.Conv2d(6, 5, 7, padding=3)      # 49 taps: an odd tap count
            self.c = nn.Conv2d(5, 4, 1)                 # 1x1
            self.d = nn.Conv2d(4, 3, 3, stride=2)       # stride 2: not the direct kernel

        def forward(self, x):
            return self.d(self.c(self.b(torch.relu(self.a(x)))))

    m = M().eval()
    calib = torch.randn(8, 3, 13, 11) * 3
    with engine(eng):
        p = prepare_fx(m, get_default_qconfig_mapping(eng), example_inputs=(calib,))
        p(calib)
        q = convert_fx(p)
    x = (np.random.default_rng(seed).standard_normal((2, 3, 13, 11)) * 3).astype(np.float32)
    return q, [x]


@pytest.mark.parametrize("eng,seed", [("x86", 1), ("qnnpack", 2)])
def test_direct_conv_odd_shapes_equals_pytorch(tmp_path, eng, seed):
    """The direct convolution (stride 1, symmetric weights): dilation, asymmetric padding, groups, a
    7x7 kernel (odd tap count), 1x1, odd sizes 13x11, two samples; C == PyTorch's floats."""
    from qgolden.export.binding import compile_and_load

    q, xs = _conv_model(eng, seed)
    ip, r = _export(q, xs, eng, tmp_path)
    kinds = [s.params.get("direct") for s in r.plan.steps if s.kind == "conv"]
    if eng == "x86":
        assert kinds == [1, 1, 1, 0], kinds
    rc, out = _build_and_run_test(tmp_path, "m")
    assert rc == 0, out
    got = compile_and_load(tmp_path, opt="-O3")(xs[0])
    assert np.array_equal(got.view(np.int32), _torch_out(q, xs, eng).view(np.int32))


def test_cli_input_quantize_integer_by_default_table_on_request(tmp_path):
    """The float input's quantize: the formula in integers by default (named in a comment), the
    threshold table with --input-quantize table, both bit-exact; an unknown form exits 2."""
    from typer.testing import CliRunner

    from qgolden.cli import app
    from qgolden.examples import forum
    from qgolden.export.binding import compile_and_load

    x = tmp_path / "x.npy"
    np.save(x, forum.INPUTS)
    outs = {}
    for form in ("integer", "table"):
        d = tmp_path / form
        args = ["export", "qgolden/examples/forum.py:build", "--out", str(d), "--input", str(x), "--name", "forum",
                "--engine", "x86", "--isa", "avx2"] + (["--input-quantize", form] if form == "table" else [])
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 0, r.output
        text = (d / "forum_float.c").read_text()
        assert ("quantize_float32_bits" in text) == (form == "integer")
        assert ("input0_thresholds" in text) == (form == "table")
        if form == "integer":
            assert "q = clamp(rne(f32(x * c + z)))" in text
        rc, out = _build_and_run_test(d, "forum")
        assert rc == 0, out
        outs[form] = compile_and_load(d)(forum.INPUTS)
    assert np.array_equal(outs["integer"].view(np.int32), outs["table"].view(np.int32))
    r = CliRunner().invoke(app, ["export", "qgolden/examples/forum.py:build", "--out", str(tmp_path / "bad"),
                                 "--input", str(x), "--input-quantize", "float"])
    assert r.exit_code == 2 and "--input-quantize" in r.output, r.output
