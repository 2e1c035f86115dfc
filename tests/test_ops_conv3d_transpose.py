"""Quantized transposed conv (1-D, 2-D, 3-D) vs PyTorch's kernels, bit for bit (np.array_equal on
int_repr), under this host's engines and profile (make_profile(engine)): the tests hold on any CPU."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from qgolden import api  # noqa: E402
from qgolden.numerics.profile import gemm_saturates, make_profile  # noqa: E402
from qgolden.ops.conv_transpose import conv_transpose, conv_transpose_backend  # noqa: E402

warnings.filterwarnings("ignore")

ENGINES = [e for e in ("x86", "fbgemm", "qnnpack", "onednn") if e in torch.backends.quantized.supported_engines]


@pytest.fixture(autouse=True)
def _restore_engine():
    saved = torch.backends.quantized.engine
    yield
    torch.backends.quantized.engine = saved


def _case(rng, engine, onednn):
    """A random transposed conv: 1-3 spatial dims (qnnpack: 1-2), groups, stride, padding below the
    kernel, dilation, output_padding below max(stride, dilation); 7-bit activations (the default x86 /
    fbgemm qconfigs' reduce_range) and full-range ones where the engine sums exactly."""
    nd = int(rng.choice([1, 2, 2, 3] if engine != "qnnpack" else [1, 2, 2]))
    g = int(rng.choice([1, 1, 2, 3]))
    cg = int(rng.integers(1, 6))
    og = int(rng.integers(1, 6))  # oneDNN: C_in != C_out and groups read the weights permuted
    k = tuple(int(rng.integers(1, 4)) for _ in range(nd))
    s = tuple(int(rng.integers(1, 3)) for _ in range(nd))
    d = tuple(int(rng.integers(1, 3)) for _ in range(nd))
    p = tuple(int(rng.integers(0, kk)) for kk in k)
    op = tuple(int(rng.integers(0, max(ss, dd))) if not onednn and rng.random() < 0.3 else 0
               for ss, dd in zip(s, d))
    sp = tuple(int(rng.integers(2, 7)) for _ in range(nd))
    p = tuple(min(pp, ((i - 1) * ss + dd * (kk - 1)) // 2) for pp, i, ss, dd, kk in zip(p, sp, s, d, k))
    top = 256 if engine == "qnnpack" else 128
    x = rng.integers(0, top, (2, cg * g) + sp).astype(np.uint8)
    w = rng.integers(-128, 128, (cg * g, og) + k).astype(np.int8)
    return dict(nd=nd, g=g, k=k, s=s, d=d, p=p, op=op, x=x, w=w, sx=float(rng.uniform(0.005, 0.1)),
                zx=int(rng.integers(0, top)), sw=float(rng.uniform(0.001, 0.02)), so=float(rng.uniform(0.05, 1.0)),
                zo=int(rng.integers(0, 256)),
                b=rng.standard_normal(og * g).astype(np.float32) if rng.random() < 0.7 else None)


@pytest.mark.parametrize("engine", ENGINES)
def test_conv_transpose_matches_pytorch(engine):
    torch.backends.quantized.engine = engine
    profile = make_profile(engine)
    rng = np.random.default_rng({"x86": 1, "fbgemm": 2, "qnnpack": 3, "onednn": 4}[engine])
    onednn = conv_transpose_backend(profile, 1, False, 0, (0,)) == "onednn"  # x86: where this CPU routes
    checked = bad = 0
    for _ in range(40):
        c = _case(rng, engine, onednn)
        nd = c["nd"]
        qx = torch._make_per_tensor_quantized_tensor(torch.from_numpy(c["x"]), c["sx"], c["zx"])
        qw = torch._make_per_tensor_quantized_tensor(torch.from_numpy(c["w"]), c["sw"], 0)
        bias = None if c["b"] is None else torch.from_numpy(c["b"])
        packed = getattr(torch.ops.quantized, f"conv_transpose{nd}d_prepack")(
            qw, bias, list(c["s"]), list(c["p"]), list(c["op"]), list(c["d"]), c["g"])
        want = getattr(torch.ops.quantized, f"conv_transpose{nd}d")(qx, packed, c["so"], c["zo"]).int_repr().numpy()
        ours = conv_transpose(c["x"], x_scale=c["sx"], x_zero_point=c["zx"], weight=c["w"],
                              weight_scale=np.array([c["sw"]]), weight_zero_point=np.zeros(1, np.int64), bias=c["b"],
                              out_scale=c["so"], out_zero_point=c["zo"], stride=c["s"], padding=c["p"],
                              output_padding=c["op"], dilation=c["d"], groups=c["g"], profile=profile)
        assert ours.shape == want.shape
        checked += want.size
        bad += int(np.count_nonzero(ours != want))
    assert checked > 5000
    assert bad == 0, f"{bad} of {checked} elements differ"


@pytest.mark.parametrize("engine", ENGINES)
def test_conv_transpose_module_lowered_eager_and_torchscript(engine):
    """nnq.ConvTranspose2d / 1d from eager post-training quantization, lowered from the eager model
    and from TorchScript, equals PyTorch end to end (float output of the dequantize)."""
    torch.backends.quantized.engine = engine
    torch.manual_seed(0)
    for conv in (torch.nn.ConvTranspose2d(6, 6, 3, stride=2, padding=1), torch.nn.ConvTranspose1d(5, 5, 4, stride=2)):
        model = torch.nn.Sequential(torch.ao.quantization.QuantStub(), conv, torch.ao.quantization.DeQuantStub())
        default = torch.ao.quantization.get_default_qconfig(engine)  # per-tensor weights: PyTorch's only choice
        activation = default.activation
        if engine != "qnnpack" and gemm_saturates(make_profile(engine)):
            # a CPU that sums u8*s8 pairs in int16: 7-bit activations, which cannot saturate (full range is refused)
            activation = torch.ao.quantization.MinMaxObserver.with_args(reduce_range=True)
        model.eval().qconfig = torch.ao.quantization.QConfig(activation=activation,
                                                             weight=torch.ao.quantization.default_weight_observer)
        prepared = torch.ao.quantization.prepare(model)
        shape = (2, 6, 7, 5) if isinstance(conv, torch.nn.ConvTranspose2d) else (2, 5, 9)
        for _ in range(3):
            prepared(torch.randn(shape))
        qmodel = torch.ao.quantization.convert(prepared)
        x = (torch.randn(shape) * 1.3).numpy()
        want = qmodel(torch.from_numpy(x)).numpy()
        for source in (qmodel, torch.jit.script(qmodel)):
            program = api.lower(source, example_inputs=(torch.from_numpy(x),), engine=engine)
            assert "conv_transpose" in {nd.op for nd in program.nodes}
            got = program.run(x)
            assert np.array_equal(got.view(np.int32), want.view(np.int32))


def test_saturating_class_refuses_full_range_activations():
    """On a CPU class whose FBGEMM sums u8*s8 pairs in int16 (avx2), full-range activations are refused
    (not reproduced), 7-bit ones computed; the x86 engine there routes to FBGEMM."""
    profile = make_profile("fbgemm", isa="avx2")
    assert conv_transpose_backend(make_profile("x86", isa="avx2"), 1, False, 0, (0, 0)) == "fbgemm"
    assert conv_transpose_backend(make_profile("x86", isa="avx512_vnni"), 1, False, 0, (0, 0)) == "onednn"
    assert conv_transpose_backend(make_profile("x86", isa="avx512_vnni"), 1, False, 0, (1, 0)) == "fbgemm"
    w = np.full((2, 2, 2, 2), 127, np.int8)
    kw = dict(x_scale=0.1, x_zero_point=0, weight=w, weight_scale=np.array([0.01]),
              weight_zero_point=np.zeros(1, np.int64), bias=None, out_scale=1.0, out_zero_point=0, stride=(1, 1),
              padding=(0, 0), output_padding=(0, 0), dilation=(1, 1), groups=1, profile=profile)
    with pytest.raises(NotImplementedError):
        conv_transpose(np.full((1, 2, 3, 3), 255, np.uint8), **kw)
    assert conv_transpose(np.full((1, 2, 3, 3), 127, np.uint8), **kw).shape == (1, 2, 4, 4)
