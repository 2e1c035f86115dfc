"""Dynamic quantization (quantize_dynamic): float in, float out, the activation's scale chosen per call.

Every case runs PyTorch under this host's engines and compares the float32 outputs bit for bit
(equal bit patterns), with the host's profile (make_profile(engine)): the tests hold on any CPU.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from qgolden import api  # noqa: E402
from qgolden.explain import explain, render  # noqa: E402
from qgolden.numerics.dynamic_quant import choose_qparams  # noqa: E402
from qgolden.numerics.profile import make_profile  # noqa: E402
from qgolden.ops.dynamic_linear import dynamic_linear  # noqa: E402

warnings.filterwarnings("ignore")

ENGINES = [e for e in ("x86", "fbgemm", "qnnpack", "onednn") if e in torch.backends.quantized.supported_engines]


@pytest.fixture(autouse=True)
def _restore_engine():
    saved = torch.backends.quantized.engine
    yield
    torch.backends.quantized.engine = saved


def _same_bits(a, b) -> int:
    """Number of elements whose float32 bit patterns differ."""
    a, b = np.ascontiguousarray(a, np.float32), np.ascontiguousarray(b, np.float32)
    assert a.shape == b.shape
    return int(np.count_nonzero(a.view(np.int32) != b.view(np.int32)))


def _input(rng, shape, reduce_range, ties):
    """Random floats spanning a random range; with ties, half of them on exact rounding ties of the
    input quantization this range gets (x = (k + 0.5)·f32(scale)), and the extremes kept."""
    lo, hi = -float(rng.uniform(0, 3)), float(rng.uniform(0.2, 4))
    if rng.random() < 0.2:  # all positive: zero point 0; or all negative: zero point qmax
        lo, hi = (0.1, hi) if rng.random() < 0.5 else (lo - 1, -0.05)
    x = rng.uniform(lo, hi, shape).astype(np.float32)
    flat = x.reshape(-1)
    flat[0], flat[-1] = lo, hi
    if ties and flat.size > 2:
        s, z = choose_qparams(flat.min(), flat.max(), 0, 255, reduce_range)
        top = 127 if reduce_range else 255
        k = rng.integers(-z, top - z, flat.size)
        pick = rng.random(flat.size) < 0.5
        pick[0] = pick[-1] = False
        flat[pick] = ((k[pick] + 0.5) * np.float64(np.float32(s))).astype(np.float32)
        flat[pick] = np.clip(flat[pick], flat.min(), flat.max())
    return x


def _layer(rng, k, n, per_channel, bias):
    w = rng.standard_normal((n, k)).astype(np.float32) * float(rng.uniform(0.05, 2))
    if per_channel:
        sw = np.abs(w).max(axis=1).astype(np.float64) / 127 + 1e-6
        wq = torch.quantize_per_channel(torch.from_numpy(w), torch.from_numpy(sw), torch.zeros(n, dtype=torch.long),
                                        0, torch.qint8)
    else:
        wq = torch.quantize_per_tensor(torch.from_numpy(w), float(np.abs(w).max() / 127 + 1e-6), 0, torch.qint8)
    b = torch.from_numpy(rng.standard_normal(n).astype(np.float32)) if bias else None
    return wq, b


CASES = [(seed, per_channel, relu, reduce_range)
         for seed in range(6) for per_channel in (False, True) for relu in (False, True)
         for reduce_range in (True, False)]


@pytest.mark.parametrize("engine", ENGINES)
def test_dynamic_linear_kernel_matches_pytorch(engine):
    """quantized::linear_dynamic / linear_relu_dynamic with packed weights made under each engine:
    odd K and N around the vector widths, per-tensor and per-channel weights, bias or none,
    reduce_range both ways, inputs with exact rounding ties and all-positive / all-negative ranges."""
    torch.backends.quantized.engine = engine
    profile = make_profile(engine)
    checked = bad = 0
    for seed, per_channel, relu, reduce_range in CASES:
        rng = np.random.default_rng(1000 * seed + 10 * per_channel + 2 * relu + reduce_range)
        k = int(rng.choice([1, 3, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 127, 129, 255, 300]))
        n = int(rng.choice([1, 2, 7, 8, 9, 16, 31, 33, 64, 65]))
        m = int(rng.integers(1, 12))
        wq, b = _layer(rng, k, n, per_channel, bias=bool(rng.random() < 0.75))
        packed = torch.ops.quantized.linear_prepack(wq, b)
        op = torch.ops.quantized.linear_relu_dynamic if relu else torch.ops.quantized.linear_dynamic
        for ties in (False, True):
            x = _input(rng, (m, k), reduce_range and engine != "qnnpack", ties)
            want = op(torch.from_numpy(x), packed, reduce_range).numpy()
            w = wq.int_repr().numpy()
            sw = wq.q_per_channel_scales().numpy() if per_channel else np.array([wq.q_scale()])
            ours = dynamic_linear(x, weight=w, weight_scale=sw, weight_zero_point=np.zeros(sw.size, np.int64),
                                  bias=None if b is None else b.numpy(), per_channel=per_channel, relu=relu,
                                  reduce_range=reduce_range, profile=profile)
            checked += want.size
            bad += _same_bits(ours, want)
    assert checked > 2000
    assert bad == 0, f"{bad} of {checked} float32 outputs differ"


def _dynamic_model(seed, fuse_relu=False):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(37, 19), torch.nn.ReLU(), torch.nn.Linear(19, 5)).eval()
    if fuse_relu:
        model = torch.ao.quantization.fuse_modules(model, [["0", "1"]])
    qconfig = torch.ao.quantization.per_channel_dynamic_qconfig if seed % 2 else \
        torch.ao.quantization.default_dynamic_qconfig
    import torch.ao.nn.intrinsic as nni

    return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear: qconfig, nni.LinearReLU: qconfig})


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("fuse_relu", [False, True])
def test_quantize_dynamic_model_eager_and_torchscript(engine, fuse_relu):
    """A quantize_dynamic MLP (nnqd.Linear, or the fused nniqd.LinearReLU), lowered from the eager model
    and from its TorchScript, equals PyTorch's float32 output bit for bit; 3-D inputs too."""
    torch.backends.quantized.engine = engine
    model = _dynamic_model(3 + fuse_relu, fuse_relu)
    rng = np.random.default_rng(7)
    for source in (model, torch.jit.script(model)):
        for shapes in (((4, 37), (1, 37), (9, 37)), ((2, 3, 37), (5, 3, 37))):
            example = (rng.standard_normal(shapes[0]) * 3).astype(np.float32)
            program = api.lower(source, example_inputs=(torch.from_numpy(example),), engine=engine)
            assert [nd.op for nd in program.nodes].count("dynamic_linear") == 2
            for shape in shapes:
                x = (rng.standard_normal(shape) * rng.uniform(0.1, 5)).astype(np.float32)
                want = model(torch.from_numpy(x)).detach().numpy()
                assert _same_bits(program.run(x), want) == 0


def test_choose_qparams_matches_pytorch():
    """The per-call scale and zero point equal torch's own ChooseQuantizationParams (exposed as
    torch._choose_qparams_per_tensor, reduce_range as given) over random and degenerate ranges."""
    rng = np.random.default_rng(5)
    ranges = [(0.0, 0.0), (0.0, 1e-9), (-1e-9, 0.0), (-3e-7, 2e-7), (1.0, 2.0), (-2.0, -1.0)]
    ranges += [tuple(sorted(rng.standard_normal(2) * 10 ** rng.uniform(-6, 3))) for _ in range(300)]
    for lo, hi in ranges:
        x = torch.tensor([lo, hi], dtype=torch.float32)
        for reduce_range in (False, True):
            s, z = torch._choose_qparams_per_tensor(x, reduce_range)
            assert choose_qparams(np.float32(lo), np.float32(hi), 0, 255, reduce_range) == (s, z), (lo, hi)


def test_explain_shows_the_per_call_scale_choice():
    """explain prints how this input's scale and zero point were chosen, with their values."""
    torch.backends.quantized.engine = "x86" if "x86" in ENGINES else ENGINES[0]
    model = _dynamic_model(4)
    x = np.linspace(-1.5, 3.0, 2 * 37, dtype=np.float32).reshape(2, 37)
    program = api.lower(model, example_inputs=(torch.from_numpy(x),), engine=torch.backends.quantized.engine)
    doc, trace, env = explain(program, [x])
    text = " ".join(render(doc, "text").split())  # the renderer wraps long lines
    first = next(nd for nd in program.nodes if nd.op == "dynamic_linear")
    s, z = choose_qparams(np.float32(-1.5), np.float32(3.0), 0, 255, program.profile["engine"] != "qnnpack")
    assert trace[first.name]["x_scale"] == s and trace[first.name]["x_zero_point"] == z
    assert "chosen again for every input" in text
    assert f"scale = {s!r}" in text and f"zero point = {z}" in text
