"""Bit-exact checks of the newer quantized ops against live torch on this host's profile:
hardsigmoid, gelu, prelu, layer/group/instance norm, bilinear upsampling, clamp, and their
import from eager (nnq modules), FX-style functional calls and TorchScript.

Every engine; uint8 and int8; random stored values (ties and clamps included), lengths around the
vector widths, channels-last inputs, random affine parameters. Comparisons are on int_repr."""
import warnings
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.ao.nn.quantized as nnq  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import qgolden  # noqa: E402
from qgolden.ops.gelu import gelu  # noqa: E402
from qgolden.ops.hardsigmoid import hardsigmoid  # noqa: E402
from qgolden.ops.hardtanh import hardtanh  # noqa: E402
from qgolden.ops.normalize import group_norm, layer_norm  # noqa: E402
from qgolden.ops.prelu import prelu  # noqa: E402
from qgolden.ops.upsample_bilinear import upsample_bilinear  # noqa: E402

warnings.filterwarnings("ignore")
RANGE = {"uint8": (0, 255), "int8": (-128, 127)}
NPD = {"uint8": np.uint8, "int8": np.int8}
TQD = {"uint8": torch.quint8, "int8": torch.qint8}


def seed(key) -> int:
    """A seed fixed across runs (str hashes are randomized per process)."""
    return zlib.crc32(repr(key).encode())


def mkq(q, s, z, channels_last=False):
    t = torch._make_per_tensor_quantized_tensor(torch.from_numpy(np.ascontiguousarray(q)), s, z)
    return t.contiguous(memory_format=torch.channels_last) if channels_last else t


def rq(rng, shape, dt):
    lo, hi = RANGE[dt]
    return rng.integers(lo, hi + 1, shape).astype(NPD[dt])


def rzp(rng, dt):
    lo, hi = RANGE[dt]
    return int(rng.integers(lo + 20, hi - 20))


def same(mine, ref_q):
    ref = ref_q.int_repr().numpy()
    assert mine.shape == ref.shape
    bad = int((np.asarray(mine).astype(np.int64) != ref.astype(np.int64)).sum())
    assert bad == 0, f"{bad} of {ref.size} elements differ"


SHAPES = [(31,), (64,), (65,), (129,), (2, 3, 5, 7), (2, 16, 9, 9), (1, 33, 4, 4)]


@pytest.mark.parametrize("dt", ["uint8", "int8"])
@pytest.mark.parametrize("shape", SHAPES)
def test_hardsigmoid(engine, dt, shape):
    rng = np.random.default_rng(seed((dt, shape)))
    for s in (0.05, 3.0 / 128, 0.5):  # 3/128: x + 3 lands on exact ties of the 1/256 output grid
        q, z = rq(rng, shape, dt), rzp(rng, dt)
        cl = len(shape) == 4 and shape[1] > 1
        for layout in ((False, True) if cl else (False,)):
            x = mkq(q, s, z, layout)
            mine = qgolden.ops.get("hardsigmoid")(q, x_scale=s, x_zero_point=z, dtype=dt, profile=engine) \
                if not layout else _in_layout(hardsigmoid, q, engine, x_scale=s, x_zero_point=z, dtype=dt)
            same(mine, F.hardsigmoid(x))


def _in_layout(fn, q, profile, **kw):
    """An elementwise op on a channels-last tensor, walked in memory order as the engine runs it."""
    order = (0, 2, 3, 1)
    out = fn(np.ascontiguousarray(np.transpose(q, order)), profile=profile, **kw)
    return np.transpose(out, np.argsort(order))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dt", ["uint8", "int8"])
@pytest.mark.parametrize("shape", SHAPES)
def test_gelu(engine, dt, shape, approximate):
    rng = np.random.default_rng(seed((dt, shape, approximate)))
    for s in (0.02, 0.1, 0.7):
        q, z = rq(rng, shape, dt), rzp(rng, dt)
        mine = gelu(q, x_scale=s, x_zero_point=z, approximate=approximate, dtype=dt, profile=engine)
        same(mine, F.gelu(mkq(q, s, z), approximate=approximate))


@pytest.mark.parametrize("dt", ["uint8", "int8"])
@pytest.mark.parametrize("shape", [(2, 5, 7, 3), (1, 1, 65), (3, 8, 33)])
def test_prelu(engine, dt, shape):
    rng = np.random.default_rng(seed((dt, shape)))
    for per_channel in (False, True):
        c = shape[1] if per_channel else 1
        # the slope has the input's dtype (torch refuses a quint8 slope on a qint8 input)
        w = torch.quantize_per_tensor(torch.randn(c) * 0.5, 0.01, rzp(rng, dt), TQD[dt])
        q, z, s = rq(rng, shape, dt), rzp(rng, dt), 0.05
        so, zo = 0.04, rzp(rng, dt)
        ref = torch.ops.quantized.prelu(mkq(q, s, z), w, so, zo)
        mine = prelu(q, x_scale=s, x_zero_point=z, weight=w.int_repr().numpy(), w_scale=w.q_scale(),
                     w_zero_point=w.q_zero_point(), out_scale=so, out_zero_point=zo, dtype=dt, profile=engine)
        same(mine, ref)


@pytest.mark.parametrize("dt", ["uint8", "int8"])
@pytest.mark.parametrize("shape,nd", [((4, 31), 1), ((2, 3, 65), 1), ((2, 3, 5, 7), 2), ((3, 100), 1), ((2, 64), 1)])
def test_layer_norm(engine, dt, shape, nd):
    rng = np.random.default_rng(seed((dt, shape)))
    ns = list(shape[-nd:])
    for affine in (False, True):
        w = torch.randn(ns) if affine else None
        b = torch.randn(ns) if affine else None
        q, z, s = rq(rng, shape, dt), rzp(rng, dt), float(rng.uniform(0.01, 0.2))
        so, zo = float(rng.uniform(0.01, 0.05)), rzp(rng, dt)
        ref = torch.ops.quantized.layer_norm(mkq(q, s, z), ns, w, b, 1e-5, so, zo)
        mine = layer_norm(q, x_scale=s, x_zero_point=z, out_scale=so, out_zero_point=zo, normalized_ndim=nd, eps=1e-5,
                          weight=None if w is None else w.numpy(), bias=None if b is None else b.numpy(), dtype=dt,
                          profile=engine)
        same(mine, ref)


@pytest.mark.parametrize("dt", ["uint8", "int8"])
@pytest.mark.parametrize("shape,groups", [((2, 6, 5, 7), 3), ((1, 8, 9, 9), 8), ((2, 4, 33), 2), ((1, 40, 3, 3), 4),
                                          ((1, 4, 24, 24), 2), ((1, 36, 2, 2), 1)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_group_norm(engine, dt, shape, groups, channels_last):
    if channels_last and len(shape) != 4:
        pytest.skip("channels-last is 4-D")
    rng = np.random.default_rng(seed((dt, shape, channels_last)))
    c = shape[1]
    w, b = torch.randn(c), torch.randn(c)
    q, z, s = rq(rng, shape, dt), rzp(rng, dt), float(rng.uniform(0.01, 0.2))
    so, zo = float(rng.uniform(0.01, 0.05)), rzp(rng, dt)
    ref = torch.ops.quantized.group_norm(mkq(q, s, z, channels_last), groups, w, b, 1e-5, so, zo)
    mine = group_norm(q, x_scale=s, x_zero_point=z, out_scale=so, out_zero_point=zo, num_groups=groups, eps=1e-5,
                      weight=w.numpy(), bias=b.numpy(), channels_last=channels_last, dtype=dt, profile=engine)
    same(mine, ref)


@pytest.mark.parametrize("dt", ["uint8", "int8"])
@pytest.mark.parametrize("shape,size,sf", [((2, 14, 9, 3), None, 3.0), ((1, 3, 5, 7), (11, 4), None),
                                           ((2, 20, 4, 4), None, 2.0), ((1, 9, 6, 5), (6, 5), None),
                                           ((1, 3, 1, 1), (14, 2), None), ((1, 1, 6, 6), (15, 11), None)])
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
def test_upsample_bilinear(engine, dt, shape, size, sf, align_corners, channels_last):
    rng = np.random.default_rng(seed((dt, shape, align_corners, channels_last)))
    q, z, s = rq(rng, shape, dt), rzp(rng, dt), 0.1
    from qgolden.importers.fx import memory_order

    x = mkq(q, s, z, channels_last)
    ref = F.interpolate(x, size=size, scale_factor=sf, mode="bilinear", align_corners=align_corners)
    # the flag the importer gives: channels-last by the strides' order ((C, 1, 1, 1) for [N, C, 1, 1] is not)
    order = memory_order(x)
    mine = upsample_bilinear(q, x_scale=s, x_zero_point=z, size=size, scale_factor=None if sf is None else [sf, sf],
                             align_corners=align_corners, channels_last=order is not None and order[-1] == 1,
                             dtype=dt, profile=engine)
    same(mine, ref)


@pytest.mark.parametrize("dt", ["uint8", "int8"])
def test_clamp(engine, dt):
    rng = np.random.default_rng(7)
    q, z, s = rq(rng, (3, 65), dt), rzp(rng, dt), 0.05
    bounds = [(-1.0, 2.0), (0.025, 0.075)]  # the second on ties of the grid
    if engine["engine"] != "qnnpack":  # QNNPACK's clamp takes both bounds
        bounds += [(None, 0.5), (-0.25, None)]
    for lo, hi in bounds:
        mine = hardtanh(q, x_scale=s, x_zero_point=z, min_val=lo, max_val=hi, dtype=dt, profile=engine)
        same(mine, torch.clamp(mkq(q, s, z), lo, hi))


# -- import: eager modules, functional calls, TorchScript ----------------------------------------

class QStubbed(torch.nn.Module):
    """QuantStub -> quantized body -> DeQuantStub, built directly from quantized modules."""

    def __init__(self, body, scale=0.07, zero_point=70, conv=None):
        super().__init__()
        self.q = nnq.Quantize(scale, zero_point, torch.quint8)
        self.conv = conv
        self.body = body
        self.dq = nnq.DeQuantize()

    def forward(self, x):
        x = self.q(x)
        if self.conv is not None:
            x = self.conv(x)
        return self.dq(self.body(x))


class Functional(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return torch.dequantize(self.fn(torch.quantize_per_tensor(x, 0.05, 60, torch.quint8)))


def _qconv(c):
    conv = nnq.Conv2d(c, c, 1)
    w = torch.quantize_per_tensor(torch.randn(c, c, 1, 1) * 0.3, 0.01, 0, torch.qint8)
    conv.set_weight_bias(w, torch.randn(c) * 0.1)
    conv.scale, conv.zero_point = 0.06, 64
    return conv


def _bodies():
    c = 6
    P = torch.nn.Parameter
    ln = nnq.LayerNorm([5, 7], P(torch.randn(5, 7)), P(torch.randn(5, 7)), 0.04, 61)
    gn = nnq.GroupNorm(3, c, P(torch.randn(c)), P(torch.randn(c)), 0.05, 66)
    inn = nnq.InstanceNorm2d(c, P(torch.randn(c)), P(torch.randn(c)), 0.05, 66, affine=True)
    pr = nnq.PReLU(0.05, 70, c)
    pr.set_weight(torch.quantize_per_tensor(torch.randn(c) * 0.4, 0.01, 128, torch.quint8))
    return {"layer_norm": ln, "group_norm": gn, "instance_norm": inn, "prelu": pr,
            "hardsigmoid": torch.nn.Hardsigmoid(), "gelu": torch.nn.GELU(),
            "bilinear": torch.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            "bilinear_ac": torch.nn.Upsample(scale_factor=3, mode="bilinear", align_corners=True)}


FUNCTIONAL = {
    "clamp": lambda x: torch.clamp(x, -0.5, 1.0),
    "hardsigmoid": F.hardsigmoid,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "interpolate": lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True),
}


def _check_program(model, x, engine_name, forms=("eager", "script", "trace")):
    torch.backends.quantized.engine = engine_name
    ref = model(x)
    for form in forms:
        m = model if form == "eager" else (torch.jit.script(model) if form == "script" else torch.jit.trace(model, x))
        p = qgolden.lower(m, example_inputs=(x,), engine=engine_name)
        y = p.run(x.numpy())
        assert np.array_equal(np.asarray(y).view(np.int32), ref.numpy().view(np.int32)), (form, engine_name)


@pytest.mark.parametrize("name", list(_bodies()))
@pytest.mark.parametrize("conv_fed", [False, True])
def test_import_modules(engine, name, conv_fed):
    torch.manual_seed(seed(name) % 1000)
    model = QStubbed(_bodies()[name], conv=_qconv(6) if conv_fed else None).eval()
    x = torch.randn(2, 6, 5, 7) * 2
    _check_program(model, x, engine["engine"])


@pytest.mark.parametrize("name", list(FUNCTIONAL))
def test_import_functional(engine, name):
    model = Functional(FUNCTIONAL[name]).eval()
    x = torch.randn(2, 3, 9, 33) * 3
    _check_program(model, x, engine["engine"], forms=("eager", "trace"))


class Shuffles(torch.nn.Module):
    """ShuffleNetV2's spellings: nn.ChannelShuffle, the reshape/transpose one, chunk, pixel (un)shuffle."""

    def __init__(self):
        super().__init__()
        self.shuffle = torch.nn.ChannelShuffle(2)
        self.ps = torch.nn.PixelShuffle(2)
        self.pu = torch.nn.PixelUnshuffle(2)

    def forward(self, x):
        q = torch.quantize_per_tensor(x, 0.05, 60, torch.quint8)
        q = self.shuffle(q)
        b, c, h, w = q.size()
        q = q.view(b, 2, c // 2, h, w).transpose(1, 2).contiguous().view(b, c, h, w)
        a, _ = q.chunk(2, dim=1)
        a = self.pu(self.ps(a))
        return torch.dequantize(torch.flatten(a, 1))


def test_import_shuffles(engine):
    x = torch.randn(2, 8, 6, 4)
    _check_program(Shuffles().eval(), x, engine["engine"], forms=("eager", "trace", "script"))


@pytest.mark.parametrize("strides_channels_last", [False, True])
def test_upsample_bilinear_one_pixel_input_layouts(engine, strides_channels_last):
    """[N, C, 1, 1] takes the NHWC kernel either way; its output is NHWC (right values) when the input's
    strides are channels-last ones (C, 1, C, C), as a channels-last conv's output has, and NHWC
    written into an NCHW buffer when they are (C, 1, 1, 1). The program's flag is the strides' order."""
    from qgolden.importers.fx import memory_order

    rng = np.random.default_rng(seed(("bilinear 1x1", strides_channels_last)))
    for dt in ("uint8", "int8"):
        q = rq(rng, (2, 8, 1, 1), dt)
        base = torch.from_numpy(q.reshape(-1).copy())
        base = base.as_strided(q.shape, (8, 1, 8, 8)) if strides_channels_last else base.reshape(q.shape)
        t = torch._make_per_tensor_quantized_tensor(base, 0.01, 3)
        order = memory_order(t)
        ref = F.interpolate(t, scale_factor=2.0, mode="bilinear", align_corners=False)
        mine = upsample_bilinear(q, x_scale=0.01, x_zero_point=3, size=None, scale_factor=[2.0, 2.0],
                                 align_corners=False, channels_last=order is not None and order[-1] == 1, dtype=dt,
                                 profile=engine)
        same(mine, ref)
