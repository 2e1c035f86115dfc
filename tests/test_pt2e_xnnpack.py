"""--engine xnnpack: PT2E models against ExecuTorch's XNNPACK delegate (the .pte run by ExecuTorch).

Every test here runs the real .pte, so the module skips where executorch is absent
(pip install 'qgolden[xnnpack]'; `make test-xnnpack` builds a venv with it).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("TORCHAO_FORCE_SKIP_LOADING_SO_FILES", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("torchao", reason="torchao==0.18.0 not installed (pip install 'qgolden[pt2e]')")
pytest.importorskip("executorch", reason="executorch not installed: pip install 'qgolden[xnnpack]'")

from qgolden import api  # noqa: E402
from qgolden.fuzz_pt2e import make_model, one, quantize  # noqa: E402
from qgolden.importers import ImportErrorQ  # noqa: E402
from qgolden.importers.pt2e import XNN_CANNOT_RUN  # noqa: E402
from qgolden.verifiers.pt2e import run_xnnpack  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from test_pt2e import convert  # noqa: E402


@pytest.mark.parametrize("per_channel", [True, False])
def test_xnnpack_every_quantized_tensor_bit_exact(per_channel):
    gm, x = convert("xnnpack", per_channel)
    prog = api.lower(gm, (x,), engine="xnnpack")
    ops = {n.op for n in prog.nodes}
    assert {"xnnpack_quantize", "conv", "xnnpack_add", "max_pool", "xnnpack_hardswish", "xnnpack_global_mean",
            "linear"} <= ops
    rep = api.verify(gm, x, program=prog)
    assert rep.engine == "xnnpack" and "XNNPACK" in rep.reference
    # every quantize node of the graph is compared (tapped as an extra .pte output), and the output
    assert len(rep.layers) == sum(1 for n in prog.nodes if prog.tensors[n.output].quantized)
    assert rep.bit_exact, ([(l.name, l.mismatches) for l in rep.layers], rep.outputs)


# 3, 8: qs8 global average pooling at .5 ties; 0, 10: QAT; 1, 2, 9: per-tensor; 5, 24: hardswish, cat
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 5, 8, 9, 10, 24])
def test_random_xnnpack(seed):
    rep, desc = one(seed, "xnnpack")
    assert rep.layers and rep.bit_exact, (desc, [(l.name, l.mismatches) for l in rep.layers if l.mismatches])


def test_a_wrong_formula_is_caught(monkeypatch):
    """The comparison is sharp: XNNPACK's qs8 mean adds the output zero point before rounding;
    adding it after (as the conv requantization does) moves a .5 tie in this model, and verify
    reports the layer."""
    from qgolden.ops import xnnpack

    rep, desc = one(3, "xnnpack")
    assert rep.bit_exact, desc
    measured = xnnpack.quantized_global_mean

    def zero_point_after_rounding(x, *, out_zero_point, **kw):
        q = measured(x, out_zero_point=0, **kw).astype(np.int64) + int(out_zero_point)
        return np.clip(q, -128, 127).astype(np.int8)

    monkeypatch.setattr(xnnpack, "quantized_global_mean", zero_point_after_rounding)
    rep, desc = one(3, "xnnpack")
    assert not rep.bit_exact
    assert [l.op for l in rep.layers if l.mismatches][0] == "xnnpack_quantized_global_mean"


def test_cat_the_delegate_cannot_run_is_reported():
    """XNNPACKQuantizer can give a cat whose inputs are quantized unlike its output; the partitioner
    takes it and XNNPACK refuses it when the .pte loads. qgolden says so instead of a program."""
    rng = np.random.default_rng(16)
    model, shape = make_model(rng)
    pc, qat = bool(rng.integers(0, 2)), rng.random() < 0.15
    gm, x = quantize(model, shape, "xnnpack", pc, qat, rng)
    with pytest.raises(ImportErrorQ, match=XNN_CANNOT_RUN):
        api.lower(gm, (x,), engine="xnnpack")
    with pytest.raises(RuntimeError):
        run_xnnpack(gm, [x])


def _qg(*args):
    return subprocess.run([sys.executable, "-m", "qgolden", *args], capture_output=True, text=True, cwd=ROOT)


def test_cli_verify_pt2_xnnpack_contract(tmp_path):
    pt2, xs, bad = tmp_path / "m.pt2", tmp_path / "x.npy", tmp_path / "bad.npy"
    gm, x = convert("xnnpack", per_channel=True)
    torch.export.save(torch.export.export(gm, (x,)), str(pt2))
    np.save(xs, x.numpy())
    np.save(bad, x.numpy()[0])  # 3-D: not the model's input
    r = _qg("verify", str(pt2), "--trust-code", "--input", str(xs), "--engine", "xnnpack", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    d = json.loads(r.stdout[r.stdout.index("{"):])
    assert d["bit_exact"] and d["engine"] == "xnnpack" and d["layers"]
    assert all(l["mismatches"] == 0 for l in d["layers"]) and d["outputs"][0]["mismatches"] == 0
    r = _qg("verify", str(pt2), "--trust-code", "--input", str(xs), "--engine", "xnnpack")
    assert r.returncode == 0 and "bit-exact" in r.stdout
    r = _qg("verify", str(pt2), "--trust-code", "--input", str(bad), "--engine", "xnnpack")
    assert r.returncode == 2 and "input" in r.stderr


@pytest.mark.parametrize("kernel,stride,padding,count_include_pad",
                         [((2, 2), 2, 0, True), ((3, 3), 2, 1, False), ((4, 4), 1, 0, True), ((2, 3), 1, 0, True)])
def test_avg_pool_float_output_bit_exact(kernel, stride, padding, count_include_pad):
    """avg_pool2d stays float (XNNPACKQuantizer does not annotate it): XNNPACK's f32 kernel sums the
    taps column by column, 9 at a time, and multiplies by 1/count; the .pte's float output is
    compared bit for bit (a row-major tap order differs on ~half of these elements)."""
    import torch.nn.functional as F

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c = torch.nn.Conv2d(3, 16, 3, padding=1)

        def forward(self, x):
            return F.avg_pool2d(self.c(x), kernel, stride, padding, count_include_pad=count_include_pad)

    torch.manual_seed(0)
    gm, x = quantize(M().eval(), (2, 3, 9, 9), "xnnpack", True, False, np.random.default_rng(0))
    prog = api.lower(gm, (x,), engine="xnnpack")
    assert "xnnpack_avg_pool" in {n.op for n in prog.nodes}
    rep = api.verify(gm, x, program=prog)
    assert rep.outputs[0]["elements"] > 500 and rep.bit_exact, rep.outputs


def test_avg_pool_left_to_portable_kernel_is_reported():
    import torch.nn.functional as F

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c = torch.nn.Conv2d(3, 8, 3, padding=1)

        def forward(self, x):
            return F.avg_pool2d(self.c(x), 3, 1, 1)  # count_include_pad with padding: not delegated

    gm, x = quantize(M().eval(), (1, 3, 6, 6), "xnnpack", True, False, np.random.default_rng(0))
    with pytest.raises(ImportErrorQ, match="portable kernel"):
        api.lower(gm, (x,), engine="xnnpack")


def test_activations_clamp_and_fused_relu():
    """hardtanh after a conv (XNNPACK qs8 clamp, bounds from xnn_qs8_quantize), relu6 in float,
    linear + relu fused (output bounds)."""
    import torch.nn.functional as F

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c, self.c2 = torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 8, 1)
            self.l = torch.nn.Linear(8 * 36, 10)

        def forward(self, x):
            y = F.relu6(self.c2(F.hardtanh(self.c(x), -0.5, 1.5)))
            return F.relu(self.l(y.flatten(1)))

    torch.manual_seed(1)
    gm, x = quantize(M().eval(), (4, 3, 6, 6), "xnnpack", False, False, np.random.default_rng(1))
    prog = api.lower(gm, (x,), engine="xnnpack")
    assert "xnnpack_clamp" in {n.op for n in prog.nodes}
    rep = api.verify(gm, x, program=prog)
    assert rep.bit_exact, ([(l.name, l.mismatches) for l in rep.layers], rep.outputs)


def test_hardswish_float_output_is_xnnpack_fma_kernel(monkeypatch):
    """A hardswish left in float (XNNPACKQuantizer does not annotate it) as the model's output: the
    .pte's float32 values equal XNNPACK's FMA3 kernel bit for bit, and ATen's formula
    (x * relu6(x + 3) / 6) differs on many of them."""
    import torch.nn.functional as F

    from qgolden.ops import qdq, xnnpack

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c = torch.nn.Conv2d(3, 16, 3, padding=1)

        def forward(self, x):
            return F.hardswish(self.c(x))

    torch.manual_seed(0)
    gm, x = quantize(M().eval(), (2, 3, 9, 9), "xnnpack", True, False, np.random.default_rng(0))
    x = x * 3
    prog = api.lower(gm, (x,), engine="xnnpack")
    rep = api.verify(gm, x, program=prog)
    assert rep.bit_exact and rep.outputs[0]["elements"] == 2592, rep.outputs
    monkeypatch.setattr(xnnpack, "hardswish", lambda v, **k: qdq.float_unary(v, fn="hardswish"))
    rep = api.verify(gm, x, program=prog)
    assert rep.outputs[0]["mismatches"] > 100
