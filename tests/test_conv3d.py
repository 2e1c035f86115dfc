"""Quantized 3-D conv (quantized::conv3d / conv3d_relu) vs PyTorch's kernels, bit for bit (np.array_equal on
int_repr), under this host's engines and profile (make_profile(engine)): the tests hold on any CPU."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from qgolden.numerics.profile import gemm_saturates, make_profile  # noqa: E402
from qgolden.ops.conv3d import conv3d  # noqa: E402

ENGINES = [e for e in ("x86", "fbgemm", "onednn") if e in torch.backends.quantized.supported_engines]


@pytest.fixture(autouse=True)
def _restore_engine():
    saved = torch.backends.quantized.engine
    yield
    torch.backends.quantized.engine = saved


def _case(rng, engine):
    """A random conv3d: groups, kernel, stride, padding, dilation per dim, per-tensor or per-channel
    weights (not on onednn), bias, relu; 7-bit activations where the class pairs products in int16."""
    g = int(rng.choice([1, 1, 2, 3]))
    cg, og = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    k = tuple(int(rng.integers(1, 4)) for _ in range(3))
    s = tuple(int(rng.integers(1, 3)) for _ in range(3))
    d = tuple(int(rng.integers(1, 3)) for _ in range(3))
    p = tuple(int(rng.integers(0, kk + 1)) for kk in k)
    sp = tuple(int(rng.integers(dd * (kk - 1) + 1, dd * (kk - 1) + 6)) for kk, dd in zip(k, d))
    per_channel = engine != "onednn" and bool(rng.random() < 0.5)
    top = 128 if gemm_saturates(make_profile(engine)) else 256
    x = rng.integers(0, top, (2, cg * g) + sp).astype(np.uint8)
    w = rng.integers(-128, 128, (og * g, cg) + k).astype(np.int8)
    sw = rng.uniform(0.001, 0.02, og * g if per_channel else 1)
    zw = np.zeros(og * g, dtype=np.int64) if per_channel else np.zeros(1, dtype=np.int64)
    return dict(g=g, k=k, s=s, d=d, p=p, x=x, w=w, sw=sw, zw=zw, per_channel=per_channel,
                sx=float(rng.uniform(0.005, 0.1)), zx=int(rng.integers(0, top)), so=float(rng.uniform(0.05, 1.0)),
                zo=int(rng.integers(0, 256)), bias=rng.normal(0, 1, og * g).astype(np.float32) if rng.random() < 0.7
                else None, relu=bool(rng.random() < 0.5))


def _torch_conv3d(engine, c):
    torch.backends.quantized.engine = engine
    qx = torch._make_per_tensor_quantized_tensor(torch.from_numpy(c["x"]), c["sx"], c["zx"])
    wt = torch.from_numpy(c["w"])
    if c["per_channel"]:
        qw = torch._make_per_channel_quantized_tensor(wt, torch.from_numpy(c["sw"]), torch.from_numpy(c["zw"]), 0)
    else:
        qw = torch._make_per_tensor_quantized_tensor(wt, float(c["sw"][0]), 0)
    b = None if c["bias"] is None else torch.from_numpy(c["bias"])
    packed = torch.ops.quantized.conv3d_prepack(qw, b, list(c["s"]), list(c["p"]), list(c["d"]), c["g"])
    fn = torch.ops.quantized.conv3d_relu if c["relu"] else torch.ops.quantized.conv3d
    return fn(qx.contiguous(memory_format=torch.channels_last_3d), packed, c["so"], c["zo"]).int_repr().numpy()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("seed", range(6))
def test_conv3d_bit_exact(engine, seed):
    c = _case(np.random.default_rng(1000 + seed), engine)
    ref = _torch_conv3d(engine, c)
    got = conv3d(c["x"], x_scale=c["sx"], x_zero_point=c["zx"], weight=c["w"], weight_scale=c["sw"],
                 weight_zero_point=c["zw"], bias=c["bias"], out_scale=c["so"], out_zero_point=c["zo"],
                 stride=c["s"], padding=c["p"], dilation=c["d"], groups=c["g"], relu=c["relu"],
                 per_channel=c["per_channel"], profile=make_profile(engine))
    assert got.shape == ref.shape and np.array_equal(got, ref), f"{int((got != ref).sum())} of {ref.size} differ"


def test_conv3d_eager_module_lowers_and_matches():
    """nnq.Conv3d and ConvReLU3d in an eager model lower to the conv3d op and verify bit-exactly."""
    import qgolden
    from qgolden.api import verify

    engine = ENGINES[0]
    torch.backends.quantized.engine = engine

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.q, self.dq = torch.ao.quantization.QuantStub(), torch.ao.quantization.DeQuantStub()
            self.c1, self.r = torch.nn.Conv3d(3, 8, 3, padding=1), torch.nn.ReLU()
            self.c2 = torch.nn.Conv3d(8, 4, (1, 3, 3), stride=(1, 2, 2))

        def forward(self, x):
            return self.dq(self.c2(self.r(self.c1(self.q(x)))))

    m = M().eval()
    m = torch.ao.quantization.fuse_modules(m, [["c1", "r"]])
    m.qconfig = torch.ao.quantization.get_default_qconfig(engine)
    torch.ao.quantization.prepare(m, inplace=True)
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.normal(size=(1, 3, 5, 9, 9)).astype(np.float32))
    m(x)
    torch.ao.quantization.convert(m, inplace=True)
    program = qgolden.lower(m, (x,), engine=engine)
    assert sum(node.op == "conv3d" for node in program.nodes) == 2
    assert verify(m, x, engine=engine, program=program).bit_exact
