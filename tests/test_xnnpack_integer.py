"""--engine xnnpack: integer-only forms and certificates. Every integer op of a random
XNNPACKQuantizer PT2E model lowered for ExecuTorch's XNNPACK delegate certifies (conv / linear:
exact int32 accumulator + integer requantization; qs8 add: table of every pair; qs8 clamp; the input
Convert: thresholds; qs8 global mean: exact sum + integer requantization), the float regions are
named, the integer-only program runs bit-exact against the engine program, and an all-integer MLP
exports to strict, float-free C whose test binary matches. No executorch needed (the engine program
is checked against the .pte in test_pt2e_xnnpack.py)."""
import os

import numpy as np
import pytest

os.environ.setdefault("TORCHAO_FORCE_SKIP_LOADING_SO_FILES", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("torchao", reason="torchao==0.18.0 not installed (pip install 'qgolden[pt2e]')")

from test_pt2e_tools import HAS_CC, _c_test, _check_certificate, _extreme  # noqa: E402

from qgolden import api  # noqa: E402
from qgolden.integer.transform import INTEGER_OPS  # noqa: E402

XNNPACK_INTEGER = {"conv", "linear", "xnnpack_add", "xnnpack_clamp", "xnnpack_quantize",
                   "xnnpack_quantized_global_mean"}


def relu_mlp(seed):
    """A random per-tensor XNNPACKQuantizer MLP of linear, add and relu / hardtanh (qs8 clamp):
    every op of it is an integer op on the XNNPACK delegate."""
    import torch.nn.functional as F
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.testing.pt2e._xnnpack_quantizer import XNNPACKQuantizer, get_symmetric_quantization_config

    rng = np.random.default_rng(seed)
    c_in, width = int(rng.choice([8, 16])), int(rng.choice([6, 12]))
    kinds = [str(k) for k in rng.choice(["linear", "add", "relu", "hardtanh"], 4)]

    class MLP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = torch.nn.Linear(c_in, width)
            self.mods = torch.nn.ModuleList(torch.nn.Linear(width, width) for _ in kinds)
            self.out = torch.nn.Linear(width, 5)

        def forward(self, x):
            y = self.inp(x)
            for k, m in zip(kinds, self.mods):
                y = {"linear": lambda: m(y), "add": lambda: y + m(y), "relu": lambda: F.relu(y),
                     "hardtanh": lambda: F.hardtanh(y, -0.5, 0.5)}[k]()
            return self.out(y)

    torch.manual_seed(seed)
    m, x = MLP().eval(), torch.randn(3, c_in) * 2.0
    q = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=bool(seed % 2)))
    p = prepare_pt2e(torch.export.export(m, (x,)).module(), q)
    p(x)
    return convert_pt2e(p), x, kinds


@pytest.mark.parametrize("seed", [0, 3])
def test_xnnpack_mlp_all_integer_certified_exported(seed, tmp_path):
    gm, x, kinds = relu_mlp(seed)
    prog = api.lower(gm, (x,), engine="xnnpack")
    ops = {n.op for n in prog.nodes}
    assert {"xnnpack_quantize", "linear"} <= ops and ops & {"xnnpack_add", "xnnpack_clamp"}, (kinds, ops)
    xn = x.numpy()
    cert, floats = _check_certificate(prog, [xn, _extreme(xn)])
    assert cert.certified and not floats, [(c.name, c.method) for c in cert.ops if not c.certified]
    assert all(n.op in INTEGER_OPS for n in cert.program.nodes)
    methods = {c.op: c.method for c in cert.ops}
    assert methods["xnnpack_quantize"].startswith("thresholds") and "exact" not in methods["linear"]
    if HAS_CC:
        _c_test(cert.program, _extreme(xn), tmp_path)


# 0: dw, add, conv, conv (all-integer); 3: dw, dw, global mean, linear (all-integer);
# 9, 11, 15: with add, cat, max pools, hardswish (float regions)
@pytest.mark.parametrize("seed", [0, 3, 9, 11, 15])
def test_random_xnnpack_integer_ops_certified(seed, tmp_path):
    from qgolden.fuzz_pt2e import make_model, quantize

    rng = np.random.default_rng(seed)
    model, shape = make_model(rng)
    per_channel, qat = bool(rng.integers(0, 2)), rng.random() < 0.15
    gm, x = quantize(model, shape, "xnnpack", per_channel, qat, rng)
    prog = api.lower(gm, (x,), engine="xnnpack")
    xn = x.numpy()
    cert, floats = _check_certificate(prog, [xn, _extreme(xn)])
    ops = {c.name: c.op for c in cert.ops}
    assert all(c.certified for c in cert.ops if c.op in XNNPACK_INTEGER), model.kinds
    assert {ops[f] for f in floats} <= {"xnnpack_hardswish", "xnnpack_global_mean", "float_unary", "float_cat",
                                        "float_max_pool", "xnnpack_avg_pool", "float_op"}
    if seed in (0, 3):  # int8 conv (qg_conv reads x ^ 0x80), qs8 global mean, add table: strict C
        assert cert.certified and "conv_acc" in {n.op for n in cert.program.nodes}
        if HAS_CC:
            _c_test(cert.program, _extreme(xn), tmp_path)


def test_integer_form_follows_the_engine_formula(monkeypatch):
    """The integer requantization is derived from the engine's float formula, not fixed: certified
    against a formula with 1% larger scales it gives other outputs than the real engine."""
    from qgolden.integer import certify
    from qgolden.ops import xnnpack

    gm, x, kinds = relu_mlp(0)
    prog = api.lower(gm, (x,), engine="xnnpack")
    xn = x.numpy()
    real = xnnpack.requantize_fp32
    monkeypatch.setattr(xnnpack, "requantize_fp32",
                        lambda acc, scale, zo, lo, hi: real(acc, np.asarray(scale) * 1.01, zo, lo, hi))
    wrong = certify(prog)
    assert all(c.certified for c in wrong.ops if c.op == "linear")  # consistent with the formula it was given
    monkeypatch.setattr(xnnpack, "requantize_fp32", real)
    assert not np.array_equal(np.asarray(prog.run(xn)), np.asarray(wrong.program.run(xn)))
