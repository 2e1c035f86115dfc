"""Pooling and resize ops on quantized tensors, bit-exact against torch on this machine.

Every comparison is np.array_equal of torch's int_repr() and ours, plus equal qparams.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from qgolden.numerics.profile import ENGINES, make_profile  # noqa: E402
from qgolden.ops.adaptive_avg_pool import adaptive_avg_pool  # noqa: E402
from qgolden.ops.avg_pool import avg_pool  # noqa: E402
from qgolden.ops.max_pool import max_pool  # noqa: E402
from qgolden.ops.upsample_nearest import upsample_nearest  # noqa: E402

warnings.filterwarnings("ignore", message=".*quantized tensor creation.*")
warnings.filterwarnings("ignore", message=".*torch.quantize_per_tensor.*")

DTYPES = ("uint8", "int8")


@pytest.fixture(params=ENGINES)
def engine(request):
    saved = torch.backends.quantized.engine
    torch.backends.quantized.engine = request.param
    yield request.param
    torch.backends.quantized.engine = saved


def qt(q, scale, zp, channels_last=False):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = torch._make_per_tensor_quantized_tensor(torch.from_numpy(np.ascontiguousarray(q)), scale, zp)
    if channels_last:
        t = t.contiguous(memory_format=torch.channels_last)
    return t


def strides_cl(q, cl):
    """What torch's kernels see: channels-last by strides (an [N,C,1,1] tensor made
    channels-last keeps NCHW strides, so torch treats it as contiguous)."""
    from qgolden.importers.fx import memory_order

    return bool(cl) and memory_order(qt(q, 1.0, 0, True)) == [0, 2, 3, 1]


def rand_q(rng, shape, dt, ties=False):
    lo, hi = (0, 255) if dt == "uint8" else (-128, 127)
    q = rng.integers(lo, hi + 1, shape)
    if ties:  # few distinct values: window sums land on .5 often
        q = rng.choice(np.array([lo, hi, (lo + hi) // 2, lo + 1, hi - 1]), shape)
    return q.astype(np.uint8 if dt == "uint8" else np.int8)


def rand_qparams(rng, dt):
    scale = float(10 ** rng.uniform(-3, 0.5))
    zp = int(rng.integers(0, 256)) if dt == "uint8" else int(rng.integers(-128, 128))
    return scale, zp


def check(yt, y, scale, zp, what):
    assert yt.q_scale() == scale and yt.q_zero_point() == zp, what
    r = yt.int_repr().numpy()
    assert r.shape == y.shape, (what, r.shape, y.shape)
    bad = int((r != y).sum())
    assert bad == 0, f"{what}: {bad}/{r.size} mismatches"


def _run(fn):
    """Call torch; return None when torch rejects the configuration."""
    try:
        return fn()
    except (RuntimeError, ValueError):
        return None


# ---------------------------------------------------------------- max pool

def test_max_pool_random(engine):
    rng = np.random.default_rng(11)
    prof = make_profile(engine)
    ran = 0
    for it in range(60):
        dt = DTYPES[it % 2]
        N, C = int(rng.integers(1, 3)), int(rng.choice([1, 3, 8, 13, 33, 40]))
        kH, kW = (int(v) for v in rng.integers(1, 5, 2))
        H, W = int(rng.integers(kH, 12)), int(rng.integers(kW, 12))
        if it % 10 == 0:
            H = W = 1
            kH, kW = 1, 2
        sH, sW = (int(v) for v in rng.integers(1, 4, 2))
        pH, pW = int(rng.integers(0, kH // 2 + 1)), int(rng.integers(0, kW // 2 + 1))
        dH, dW = (int(v) for v in rng.integers(1, 3, 2))
        ceil = bool(it % 3 == 0)
        cl = bool(it % 4 == 1)
        s, z = rand_qparams(rng, dt)
        q = rand_q(rng, (N, C, H, W), dt)
        yt = _run(lambda: F.max_pool2d(qt(q, s, z, cl), (kH, kW), (sH, sW), (pH, pW), (dH, dW), ceil_mode=ceil))
        if yt is None:
            continue
        y = max_pool(q, kernel_size=(kH, kW), stride=(sH, sW), padding=(pH, pW), dilation=(dH, dW),
                     ceil_mode=ceil, profile=prof, channels_last=strides_cl(q, cl))
        check(yt, y, s, z, f"max_pool2d {engine} {dt} {(N, C, H, W)} k{(kH, kW)} s{(sH, sW)} p{(pH, pW)} d{(dH, dW)} ceil={ceil} cl={cl}")
        ran += 1
        # 1d
        q1 = q[:, :, 0]
        yt = _run(lambda: F.max_pool1d(qt(q1, s, z), kW, sW, pW, dW, ceil_mode=ceil))
        if yt is not None:
            y = max_pool(q1, kernel_size=(kW,), stride=(sW,), padding=(pW,), dilation=(dW,), ceil_mode=ceil, profile=prof)
            check(yt, y, s, z, f"max_pool1d {engine} {dt} k{kW} s{sW} p{pW} d{dW} ceil={ceil}")
    assert ran > 30


def test_max_pool_qnnpack_dilation_edge_clamp():
    """QNNPACK clamps padded tap coordinates onto the edge pixel; with dilation that pixel
    need not be a tap of the window, yet it is included."""
    saved = torch.backends.quantized.engine
    torch.backends.quantized.engine = "qnnpack"
    try:
        q = np.zeros((1, 1, 1, 5), np.uint8)
        q[0, 0, 0, 0] = 200  # edge pixel, not a tap of output 0 (taps at -1, 1)
        yt = F.max_pool2d(qt(q, 0.1, 0), (1, 2), (1, 1), (0, 1), (1, 2))
        y = max_pool(q, kernel_size=(1, 2), stride=(1, 1), padding=(0, 1), dilation=(1, 2), ceil_mode=False,
                     profile=make_profile("qnnpack"))
        check(yt, y, 0.1, 0, "qnnpack dilated max pool")
        assert y[0, 0, 0, 0] == 200
        y86 = max_pool(q, kernel_size=(1, 2), stride=(1, 1), padding=(0, 1), dilation=(1, 2), ceil_mode=False,
                       profile=make_profile("x86"))
        assert y86[0, 0, 0, 0] == 0
    finally:
        torch.backends.quantized.engine = saved


# ---------------------------------------------------------------- avg pool

def test_avg_pool2d_random(engine):
    rng = np.random.default_rng(22)
    prof = make_profile(engine)
    ran = 0
    for it in range(80):
        dt = "uint8" if it % 3 else "int8"
        N, C = int(rng.integers(1, 3)), int(rng.choice([1, 3, 8, 13, 16, 19, 33, 40]))
        kH, kW = (int(v) for v in rng.integers(1, 5, 2))
        H, W = int(rng.integers(kH, 12)), int(rng.integers(kW, 12))
        if it % 13 == 0:
            H = W = 1
            kH, kW = 2, 2
        sH, sW = (int(v) for v in rng.integers(1, 4, 2))
        pH, pW = int(rng.integers(0, kH // 2 + 1)), int(rng.integers(0, kW // 2 + 1))
        ceil = bool(it % 3 == 0)
        cip = bool(it % 2 == 0)
        dov = int(rng.integers(1, 12)) if it % 5 == 0 else None
        cl = bool(it % 4 == 1)
        s, z = rand_qparams(rng, dt)
        q = rand_q(rng, (N, C, H, W), dt, ties=bool(it % 2))
        yt = _run(lambda: F.avg_pool2d(qt(q, s, z, cl), (kH, kW), (sH, sW), (pH, pW), ceil_mode=ceil,
                                       count_include_pad=cip, divisor_override=dov))
        if yt is None:
            continue
        y = avg_pool(q, x_scale=s, x_zero_point=z, out_scale=s, out_zero_point=z, kernel_size=(kH, kW),
                     stride=(sH, sW), padding=(pH, pW), ceil_mode=ceil, count_include_pad=cip,
                     divisor_override=dov, profile=prof, channels_last=strides_cl(q, cl))
        check(yt, y, s, z, f"avg_pool2d {engine} {dt} {(N, C, H, W)} k{(kH, kW)} s{(sH, sW)} p{(pH, pW)} "
                           f"ceil={ceil} cip={cip} dov={dov} cl={cl}")
        ran += 1
    assert ran > 50


def test_avg_pool1d_random(engine):
    rng = np.random.default_rng(33)
    prof = make_profile(engine)
    ran = 0
    for it in range(40):
        dt = "uint8" if it % 3 else "int8"
        N, C = int(rng.integers(1, 3)), int(rng.choice([1, 5, 8, 17, 32]))
        k = int(rng.integers(1, 6))
        L = int(rng.integers(k, 20))
        st, p = int(rng.integers(1, 4)), int(rng.integers(0, k // 2 + 1))
        ceil, cip = bool(it % 3 == 0), bool(it % 2 == 0)
        s, z = rand_qparams(rng, dt)
        q = rand_q(rng, (N, C, L), dt, ties=bool(it % 2))
        yt = _run(lambda: F.avg_pool1d(qt(q, s, z), k, st, p, ceil_mode=ceil, count_include_pad=cip))
        if yt is None:
            continue
        y = avg_pool(q, x_scale=s, x_zero_point=z, out_scale=s, out_zero_point=z, kernel_size=(k,), stride=(st,),
                     padding=(p,), ceil_mode=ceil, count_include_pad=cip, divisor_override=None, profile=prof)
        check(yt, y, s, z, f"avg_pool1d {engine} {dt} {(N, C, L)} k{k} s{st} p{p} ceil={ceil} cip={cip}")
        ran += 1
    assert ran > 20


def test_avg_pool_qnnpack_ignores_count_include_pad_and_divisor():
    saved = torch.backends.quantized.engine
    torch.backends.quantized.engine = "qnnpack"
    try:
        rng = np.random.default_rng(5)
        q = rand_q(rng, (1, 3, 5, 5), "uint8")
        a = F.avg_pool2d(qt(q, 0.1, 7), 3, 2, 1, count_include_pad=False).int_repr()
        b = F.avg_pool2d(qt(q, 0.1, 7), 3, 2, 1, count_include_pad=True, divisor_override=2).int_repr()
        assert torch.equal(a, b)
        y = avg_pool(q, x_scale=0.1, x_zero_point=7, out_scale=0.1, out_zero_point=7, kernel_size=(3, 3), stride=(2, 2),
                     padding=(1, 1), ceil_mode=False, count_include_pad=False, divisor_override=None,
                     profile=make_profile("qnnpack"))
        assert np.array_equal(a.numpy(), y)
    finally:
        torch.backends.quantized.engine = saved


# ---------------------------------------------------------------- adaptive avg pool

def test_adaptive_avg_pool_random(engine):
    rng = np.random.default_rng(44)
    prof = make_profile(engine)
    for it in range(70):
        dt = "uint8" if it % 3 else "int8"
        N, C = int(rng.integers(1, 3)), int(rng.choice([1, 2, 3, 8, 13, 16, 17, 33, 40]))
        H, W = int(rng.integers(1, 15)), int(rng.integers(1, 15))
        oH, oW = int(rng.integers(1, H + 3)), int(rng.integers(1, W + 3))
        if it % 3 == 0:  # divisible: QNNPACK's own kernel
            oH = max(1, H // int(rng.integers(1, H + 1)))
            oW = max(1, W // int(rng.integers(1, W + 1)))
        if it % 11 == 0:
            oH, oW = 1, 1
        if it % 17 == 0:
            H = W = 1
        cl = bool(it % 4 == 1)
        s, z = rand_qparams(rng, dt)
        q = rand_q(rng, (N, C, H, W), dt, ties=bool(it % 2))
        yt = F.adaptive_avg_pool2d(qt(q, s, z, cl), (oH, oW))
        y = adaptive_avg_pool(q, x_scale=s, x_zero_point=z, output_size=(oH, oW), profile=prof, channels_last=strides_cl(q, cl))
        check(yt, y, s, z, f"adaptive_avg_pool2d {engine} {dt} {(N, C, H, W)} -> {(oH, oW)} cl={cl}")
        # 1d
        q1 = q[:, :, 0]
        yt = F.adaptive_avg_pool1d(qt(q1, s, z), oW)
        y = adaptive_avg_pool(q1, x_scale=s, x_zero_point=z, output_size=(oW,), profile=prof)
        check(yt, y, s, z, f"adaptive_avg_pool1d {engine} {dt} {q1.shape} -> {oW}")


# ---------------------------------------------------------------- upsample nearest

def test_upsample_nearest_random(engine):
    rng = np.random.default_rng(55)
    prof = make_profile(engine)
    ran = 0
    for it in range(60):
        dt = DTYPES[it % 2]
        N, C = int(rng.integers(1, 3)), int(rng.choice([1, 2, 3, 8, 17, 33]))
        H, W = int(rng.integers(1, 9)), int(rng.integers(1, 9))
        if it % 10 == 0:
            H = W = 1
        cl = bool(it % 4 == 1)
        mode = "nearest" if it % 5 else "nearest-exact"
        kind = it % 4
        size = sf = rec = None
        if kind == 0:
            size = (int(rng.integers(1, 20)), int(rng.integers(1, 20)))
        elif kind == 1:
            sf = float(rng.choice([2, 3, 0.5, 1.5, 1.7, 2.3, 1 / 3, 2.999, 1.1]))
        elif kind == 2:
            sf = (float(rng.uniform(0.5, 4)), float(rng.uniform(0.5, 4)))
        else:
            sf, rec = float(rng.uniform(0.5, 4)), True
        s, z = rand_qparams(rng, dt)
        q = rand_q(rng, (N, C, H, W), dt)
        yt = _run(lambda: F.interpolate(qt(q, s, z, cl), size=size, scale_factor=sf, mode=mode,
                                        recompute_scale_factor=rec))
        if yt is None:
            continue
        y = upsample_nearest(q, size=size, scale_factor=sf, profile=prof, recompute_scale_factor=rec, mode=mode,
                             channels_last=strides_cl(q, cl))
        check(yt, y, s, z, f"interpolate {engine} {dt} {(N, C, H, W)} size={size} sf={sf} rec={rec} {mode} cl={cl}")
        ran += 1
    assert ran > 40


# ---------------------------------------------------------------- modules, as models use them

def test_modules(engine):
    rng = np.random.default_rng(66)
    prof = make_profile(engine)
    nn = torch.nn
    s, z = 0.05, 100
    q = rand_q(rng, (2, 19, 13, 11), "uint8", ties=True)
    x = qt(q, s, z)
    check(nn.MaxPool2d(3, 2, 1)(x), max_pool(q, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1),
                                             ceil_mode=False, profile=prof), s, z, "MaxPool2d")
    check(nn.MaxPool2d(2, ceil_mode=True)(x), max_pool(q, kernel_size=(2, 2), stride=None, padding=(0, 0),
                                                       dilation=(1, 1), ceil_mode=True, profile=prof), s, z, "MaxPool2d ceil")
    check(nn.AvgPool2d(3, 2, 1)(x), avg_pool(q, x_scale=s, x_zero_point=z, out_scale=s, out_zero_point=z,
                                             kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), ceil_mode=False,
                                             count_include_pad=True, divisor_override=None, profile=prof), s, z, "AvgPool2d")
    check(nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False)(x),
          avg_pool(q, x_scale=s, x_zero_point=z, out_scale=s, out_zero_point=z, kernel_size=(2, 2), stride=None,
                   padding=(0, 0), ceil_mode=True, count_include_pad=False, divisor_override=None, profile=prof),
          s, z, "AvgPool2d ceil")
    check(nn.AdaptiveAvgPool2d((1, 1))(x), adaptive_avg_pool(q, x_scale=s, x_zero_point=z, output_size=(1, 1),
                                                              profile=prof), s, z, "AdaptiveAvgPool2d 1x1")
    check(nn.AdaptiveAvgPool2d((5, 4))(x), adaptive_avg_pool(q, x_scale=s, x_zero_point=z, output_size=(5, 4),
                                                              profile=prof), s, z, "AdaptiveAvgPool2d 5x4")
    check(nn.Upsample(scale_factor=2, mode="nearest")(x),
          upsample_nearest(q, size=None, scale_factor=2, profile=prof), s, z, "Upsample x2")
    # channels-last activations (as after a channels_last conv)
    xc = qt(q, s, z, channels_last=True)
    check(nn.AvgPool2d(3, 2, 1)(xc), avg_pool(q, x_scale=s, x_zero_point=z, out_scale=s, out_zero_point=z,
                                              kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), ceil_mode=False,
                                              count_include_pad=True, divisor_override=None, profile=prof,
                                              channels_last=True), s, z, "AvgPool2d NHWC")
    check(nn.AdaptiveAvgPool2d((1, 1))(xc), adaptive_avg_pool(q, x_scale=s, x_zero_point=z, output_size=(1, 1),
                                                               profile=prof, channels_last=True), s, z, "AdaptiveAvgPool2d NHWC")
    q1 = q[:, :, 0]
    x1 = qt(q1, s, z)
    check(nn.MaxPool1d(3, 2, 1)(x1), max_pool(q1, kernel_size=(3,), stride=(2,), padding=(1,), dilation=(1,),
                                              ceil_mode=False, profile=prof), s, z, "MaxPool1d")
    check(nn.AvgPool1d(3, 2, 1)(x1), avg_pool(q1, x_scale=s, x_zero_point=z, out_scale=s, out_zero_point=z,
                                              kernel_size=(3,), stride=(2,), padding=(1,), ceil_mode=False,
                                              count_include_pad=True, divisor_override=None, profile=prof), s, z, "AvgPool1d")
    check(nn.AdaptiveAvgPool1d(4)(x1), adaptive_avg_pool(q1, x_scale=s, x_zero_point=z, output_size=4, profile=prof),
          s, z, "AdaptiveAvgPool1d")


def test_torch_layout_quirk_hw1():
    """ATen's channels-last pooling kernels write NHWC into an NCHW-allocated output when the
    input has H*W == 1 (ambiguous layout): reproduced, not 'fixed'."""
    q = (np.arange(6, dtype=np.uint8) * 10).reshape(2, 3, 1, 1)
    yt = F.adaptive_avg_pool2d(qt(q, 0.1, 0), (1, 2)).int_repr().numpy()
    assert yt.flatten().tolist() == [0, 10, 20, 0, 10, 20, 30, 40, 50, 30, 40, 50]
    y = adaptive_avg_pool(q, x_scale=0.1, x_zero_point=0, output_size=(1, 2), profile=make_profile("x86"))
    assert np.array_equal(y, yt)


# ---------------------------------------------------------------- mean

def test_mean_random(engine):
    from qgolden.ops.mean import mean

    rng = np.random.default_rng(77)
    prof = make_profile(engine)
    for it in range(40):
        dt = "uint8" if it % 3 else "int8"
        N, C = int(rng.integers(1, 3)), int(rng.choice([1, 3, 8, 17, 40]))
        H, W = int(rng.integers(1, 16)), int(rng.integers(1, 16))
        dim = [(2, 3), [2, 3], (3,), (-2, -1), (1, 2, 3)][it % 5]
        kd = bool(it % 2)
        s, z = rand_qparams(rng, dt)
        q = rand_q(rng, (N, C, H, W), dt, ties=bool(it % 3 == 1))
        yt = qt(q, s, z).mean(dim, keepdim=kd)
        y = mean(q, x_scale=s, x_zero_point=z, dim=dim, keepdim=kd, profile=prof)
        check(yt, y, s, z, f"mean {engine} {dt} {(N, C, H, W)} dim={dim} keepdim={kd}")
