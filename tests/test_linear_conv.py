"""qgolden linear / conv vs torch quantized kernels, bit for bit (np.array_equal on int_repr).

Every case builds the torch layer under its engine (engine set before packing) and
compares our NumPy result with `int_repr()`. Profiles are the ones of this machine
(make_profile(engine)), so the tests hold on any CPU torch runs on.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import warnings
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.ao.nn.intrinsic.quantized as nniq  # noqa: E402
import torch.ao.nn.quantized as nnq  # noqa: E402

from qgolden.numerics.accumulate import (  # noqa: E402
    matmul_exact, matmul_pair_saturated, matmul_pair_saturated_blocked, onednn_gemm_k_blocks)
from qgolden.numerics.floatops import f32  # noqa: E402
from qgolden.numerics.profile import detect_isa, gemm_saturates, make_profile  # noqa: E402
from qgolden.ops.conv import conv  # noqa: E402
from qgolden.ops.linear import linear  # noqa: E402

warnings.filterwarnings("ignore", category=UserWarning)

ENGINES = [e for e in ("x86", "fbgemm", "qnnpack", "onednn")
           if e in torch.backends.quantized.supported_engines]


@pytest.fixture(autouse=True)
def _restore_engine():
    saved = torch.backends.quantized.engine
    yield
    torch.backends.quantized.engine = saved


# ----------------------------------------------------------------------------- helpers

def _qweight(w, sw, zw, per_channel):
    if per_channel:
        return torch._make_per_channel_quantized_tensor(
            torch.from_numpy(w), torch.tensor(sw, dtype=torch.float64),
            torch.tensor(zw, dtype=torch.int64), 0)
    return torch._make_per_tensor_quantized_tensor(torch.from_numpy(w), float(sw[0]), int(zw[0]))


def _qx(x, sx, zx):
    return torch._make_per_tensor_quantized_tensor(torch.from_numpy(x), sx, zx)


def torch_linear(engine, c):
    torch.backends.quantized.engine = engine
    n, k = c["w"].shape
    m = (nniq.LinearReLU if c["relu"] else nnq.Linear)(k, n)
    m.set_weight_bias(_qweight(c["w"], c["sw"], c["zw"], c["pc"]),
                      None if c["bias"] is None else torch.from_numpy(c["bias"]))
    m.scale, m.zero_point = c["so"], c["zo"]
    return m(_qx(c["x"], c["sx"], c["zx"])).int_repr().numpy()


def our_linear(engine, c, trace=None, profile=None):
    return linear(c["x"], x_scale=c["sx"], x_zero_point=c["zx"], weight=c["w"],
                  weight_scale=c["sw"], weight_zero_point=c["zw"], bias=c["bias"],
                  out_scale=c["so"], out_zero_point=c["zo"], relu=c["relu"],
                  per_channel=c["pc"], profile=profile or make_profile(engine), trace=trace)


def linear_case(rng, engine, *, pc, relu, bias, xr=255, adv=False, m=None, k=None, n=None):
    m = m or int(rng.integers(1, 9))
    k = k or int(rng.integers(1, 80))
    n = n or int(rng.integers(1, 70))
    x = rng.integers(0, xr + 1, (m, k)).astype(np.uint8)
    w = rng.integers(-128, 128, (n, k)).astype(np.int8)
    if adv:  # all-255 inputs against -128 / 127 weights: every pair saturates
        x[:] = 255
        w[:] = rng.choice(np.array([-128, 127], np.int8), (n, k))
    sx = float(np.exp(rng.uniform(np.log(1e-3), np.log(0.1))))
    zx = int(rng.integers(0, xr + 1))
    ns = n if pc else 1
    sw = np.exp(rng.uniform(np.log(1e-3), np.log(0.05), ns))
    sym = engine == "onednn" or rng.random() < 0.5
    zw = np.zeros(ns, np.int64) if sym else rng.integers(-20, 21, ns).astype(np.int64)
    b = (rng.standard_normal(n) * rng.uniform(0.1, 20)).astype(np.float32) if bias else None
    so = float(sx * np.mean(sw) * np.sqrt(k) * rng.uniform(20, 300))
    return dict(x=x, sx=sx, zx=zx, w=w, sw=sw, zw=zw, bias=b, so=so,
                zo=int(rng.integers(0, 256)), relu=relu, pc=pc)


def torch_conv(engine, c):
    torch.backends.quantized.engine = engine
    w = c["w"]
    is1d = c["x"].ndim == 3
    if is1d:
        cls = nniq.ConvReLU1d if c["relu"] else nnq.Conv1d
        ks = w.shape[2]
    else:
        cls = nniq.ConvReLU2d if c["relu"] else nnq.Conv2d
        ks = tuple(w.shape[2:])
    m = cls(c["x"].shape[1], w.shape[0], ks, stride=c["stride"], padding=c["padding"],
            dilation=c["dilation"], groups=c["groups"], bias=c["bias"] is not None)
    m.set_weight_bias(_qweight(w, c["sw"], c["zw"], c["pc"]),
                      None if c["bias"] is None else torch.from_numpy(c["bias"]))
    m.scale, m.zero_point = c["so"], c["zo"]
    return m(_qx(c["x"], c["sx"], c["zx"])).int_repr().numpy()


def our_conv(engine, c, trace=None, profile=None):
    return conv(c["x"], x_scale=c["sx"], x_zero_point=c["zx"], weight=c["w"],
                weight_scale=c["sw"], weight_zero_point=c["zw"], bias=c["bias"],
                out_scale=c["so"], out_zero_point=c["zo"], stride=c["stride"],
                padding=c["padding"], dilation=c["dilation"], groups=c["groups"],
                relu=c["relu"], per_channel=c["pc"], profile=profile or make_profile(engine),
                trace=trace)


def conv_case(rng, engine, *, c_in, c_out, groups, k, stride=1, padding=0, dilation=1,
              pc=False, relu=False, bias=True, xr=255, adv=False, is1d=False, hw=None):
    nb = int(rng.integers(1, 3))
    h, w_ = hw or (int(rng.integers(6, 12)), int(rng.integers(6, 12)))
    x = rng.integers(0, xr + 1, (nb, c_in, w_) if is1d else (nb, c_in, h, w_)).astype(np.uint8)
    ks = (k,) if is1d else ((k, k) if np.ndim(k) == 0 else tuple(k))
    w = rng.integers(-128, 128, (c_out, c_in // groups) + ks).astype(np.int8)
    if adv:
        x[:] = 255
        w[:] = rng.choice(np.array([-128, 127, -128], np.int8), w.shape)
    sx = float(np.exp(rng.uniform(np.log(1e-3), np.log(0.1))))
    zx = int(rng.integers(0, xr + 1))
    ns = c_out if pc else 1
    sw = np.exp(rng.uniform(np.log(1e-3), np.log(0.05), ns))
    sym = engine == "onednn" or rng.random() < 0.5
    zw = np.zeros(ns, np.int64) if sym else rng.integers(-20, 21, ns).astype(np.int64)
    b = (rng.standard_normal(c_out) * rng.uniform(0.1, 20)).astype(np.float32) if bias else None
    kk = (c_in // groups) * int(np.prod(ks))
    so = float(sx * np.mean(sw) * np.sqrt(kk) * rng.uniform(20, 300))
    return dict(x=x, sx=sx, zx=zx, w=w, sw=sw, zw=zw, bias=b, so=so, zo=int(rng.integers(0, 256)),
                relu=relu, pc=pc, stride=stride, padding=padding, dilation=dilation, groups=groups)


def _seed(*key) -> int:
    """Stable across processes (hash() of str is salted); QGOLDEN_TEST_SALT varies the data."""
    return zlib.crc32(repr(key + (os.environ.get("QGOLDEN_TEST_SALT", ""),)).encode())


def _assert_equal(ref, got, what):
    assert ref.shape == got.shape, (what, ref.shape, got.shape)
    bad = int((ref != got).sum())
    assert bad == 0, f"{what}: {bad}/{ref.size} mismatches"


# ----------------------------------------------------------------------------- accumulate

def test_matmul_exact_and_pair_saturated_against_loop():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (7, 23)).astype(np.uint8)
    w = rng.choice(np.array([-128, 127, -5, 100], np.int8), (5, 23))
    ref = np.zeros((7, 5), np.int64)
    for i in range(7):
        for j in range(5):
            p = x[i].astype(np.int64) * w[j].astype(np.int64)
            p = np.append(p, 0)
            ref[i, j] = np.clip(p[0:-1:2] + p[1::2], -32768, 32767).sum()
    assert np.array_equal(matmul_pair_saturated(x, w), ref)
    assert np.array_equal(matmul_exact(x.astype(np.int64), w.T.astype(np.int64)),
                          x.astype(np.int64) @ w.T.astype(np.int64))
    # blocked pairing: an odd block start shifts the pairs after it
    got = matmul_pair_saturated_blocked(x, w, [0, 11])
    assert np.array_equal(got, matmul_pair_saturated(x[:, :11], w[:, :11])
                          + matmul_pair_saturated(x[:, 11:], w[:, 11:]))
    assert onednn_gemm_k_blocks(200, "avx2") == [0]
    assert onednn_gemm_k_blocks(757, "avx2") == [0, 379]
    assert onednn_gemm_k_blocks(1000, "avx2") == [0, 384, 768]


# ----------------------------------------------------------------------------- linear

@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("pc", [False, True])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_linear_random(engine, pc, relu, bias):
    rng = np.random.default_rng(_seed(engine, pc, relu, bias))
    for xr, adv in [(255, False), (127, False), (255, True), (255, False)]:
        c = linear_case(rng, engine, pc=pc, relu=relu, bias=bias, xr=xr, adv=adv)
        _assert_equal(torch_linear(engine, c), our_linear(engine, c), (engine, xr, adv))


@pytest.mark.parametrize("engine", ENGINES)
def test_linear_large_and_odd_k(engine):
    """Large K (FBGEMM K blocks, oneDNN's K split at ceil(K/2) for 256 < K < 768),
    batched leading dims, M = 1 / N = 1 (gemv shapes)."""
    rng = np.random.default_rng(42)
    for m, k, n in [(150, 757, 40), (30, 465, 17), (1, 2999, 9), (9, 301, 1), (64, 1537, 33), (3, 64, 5)]:
        c = linear_case(rng, engine, pc=bool(k % 2), relu=False, bias=True, m=m, k=k, n=n)
        _assert_equal(torch_linear(engine, c), our_linear(engine, c), (engine, m, k, n))
    c = linear_case(rng, engine, pc=True, relu=True, bias=True, m=6, k=33, n=7)
    c["x"] = c["x"].reshape(2, 3, 33)
    _assert_equal(torch_linear(engine, c), our_linear(engine, c), (engine, "3d input"))


def test_linear_saturation_is_real_here():
    """FBGEMM and oneDNN saturate int16 pairs on a CPU without VNNI and sum exactly with it: on
    adversarial data the host's profile agrees with torch and the other kind of CPU's disagrees."""
    host_saturates = gemm_saturates(make_profile("fbgemm"))
    other = "avx512_vnni" if host_saturates else "avx2"
    rng = np.random.default_rng(3)
    for engine in ("fbgemm", "onednn"):
        c = linear_case(rng, engine, pc=False, relu=False, bias=False, adv=True, m=4, k=64, n=16)
        c["so"] = c["sx"] * c["sw"][0] * 64 * 128  # keep the accumulator on scale
        ref = torch_linear(engine, c)
        _assert_equal(ref, our_linear(engine, c), engine)
        assert (our_linear(engine, c, profile=make_profile(engine, other)) != ref).any()


def test_linear_fbgemm_scale_is_float_product():
    """act_times_w_scale = f32(f32(sx) * f32(sw)): crafted bias ties where the double
    product f32(f32(sx) * sw) would round the other way."""
    rng = np.random.default_rng(0)
    done = 0
    while done < 3:
        sx = float(rng.uniform(0.001, 0.1))
        sw = float(rng.uniform(0.001, 0.05))
        ad = f32(np.float64(np.float32(sx)) * sw)
        af = f32(np.float64(np.float32(sx)) * np.float64(np.float32(sw)))
        if ad == af:
            continue
        n = 256
        ks = rng.integers(-200, 200, n)
        b = f32((ks + 0.5) / np.float64(f32(1.0 / np.float64(ad))))
        c = dict(x=np.full((1, 4), 7, np.uint8), sx=sx, zx=7, w=np.zeros((n, 4), np.int8),
                 sw=np.array([sw]), zw=np.array([0]), bias=b, so=float(ad), zo=128,
                 relu=False, pc=False)
        for engine in ("fbgemm", "x86"):
            _assert_equal(torch_linear(engine, c), our_linear(engine, c), engine)
        done += 1


@pytest.mark.parametrize("pc", [False, True])
def test_linear_qnnpack_bias_scale_is_double_product(pc):
    """QNNPACK quantizes the float bias with scale (double)sw * (double)sx; crafted ties."""
    if "qnnpack" not in ENGINES:
        pytest.skip("no qnnpack")
    rng = np.random.default_rng(1)
    for _ in range(4):
        n = 128
        sx = float(rng.uniform(0.001, 0.1))
        sw = rng.uniform(0.001, 0.05, n if pc else 1)
        swn = np.broadcast_to(sw, (n,))
        b = f32((rng.integers(-100, 100, n) + 0.5) * swn * sx)
        so = float(f32(f32(np.float64(np.float32(swn[0]))) * np.float64(np.float32(sx))))
        c = dict(x=np.full((1, 4), 7, np.uint8), sx=sx, zx=7, w=np.zeros((n, 4), np.int8),
                 sw=sw, zw=np.zeros(len(sw), np.int64), bias=b, so=so, zo=128, relu=False, pc=pc)
        _assert_equal(torch_linear("qnnpack", c), our_linear("qnnpack", c), pc)


def test_linear_trace():
    rng = np.random.default_rng(5)
    for engine in ENGINES:
        c = linear_case(rng, engine, pc=True, relu=True, bias=True)
        tr = {}
        out = our_linear(engine, c, trace=tr)
        for key in ("acc", "bias_term", "multiplier", "pre_round", "rounded", "out"):
            assert key in tr, (engine, key)
        assert np.array_equal(tr["out"], out)


def test_fbgemm_enable_instructions_irrelevant_here():
    """On an AVX2-only CPU FBGEMM cannot use AVX512 whatever FBGEMM_ENABLE_INSTRUCTIONS
    says: the same saturating layer gives the same bytes, and the profile stays avx2."""
    if detect_isa() != "avx2":
        pytest.skip("only meaningful on an AVX2-only machine")
    code = (
        "import warnings,hashlib,numpy as np,torch;warnings.filterwarnings('ignore');"
        "import torch.ao.nn.quantized as nnq;torch.backends.quantized.engine='fbgemm';"
        "r=np.random.default_rng(0);m=nnq.Linear(301,40);"
        "w=torch._make_per_tensor_quantized_tensor(torch.from_numpy(r.integers(-128,128,(40,301)).astype(np.int8)),0.01,0);"
        "m.set_weight_bias(w,None);m.scale=3.0;m.zero_point=100;"
        "x=torch._make_per_tensor_quantized_tensor(torch.from_numpy(r.integers(200,256,(16,301)).astype(np.uint8)),0.05,3);"
        "print(hashlib.sha1(m(x).int_repr().numpy().tobytes()).hexdigest())")
    outs = set()
    for v in ("", "AVX2", "AVX512", "AVX512_E1"):
        env = dict(os.environ, FBGEMM_ENABLE_INSTRUCTIONS=v)
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        outs.add(r.stdout.strip())
    assert len(outs) == 1


# ----------------------------------------------------------------------------- conv

CONV_CFGS = [
    # (c_in, c_out, groups, k, stride, padding, dilation)
    (5, 7, 1, 3, 1, 0, 1),
    (6, 5, 1, 3, 2, 1, 1),
    (3, 4, 1, 5, 1, 2, 2),
    (9, 6, 1, 1, 1, 0, 1),      # FBGEMM pointwise
    (9, 6, 1, 1, 2, 0, 1),
    (4, 4, 1, (3, 2), 1, 1, 1),
    (6, 4, 2, 3, 1, 1, 1),      # grouped, 3 ch/group: oneDNN ref:any
    (9, 6, 3, 3, 2, 0, 1),
    (16, 16, 2, 3, 1, 1, 1),    # oneDNN jit with 8 ch/group
    (16, 16, 8, 3, 1, 1, 1),    # FBGEMM groupwise (2 ch/group)
    (32, 32, 8, 3, 2, 1, 1),    # FBGEMM groupwise (4 ch/group), oneDNN jit 4o4i
    (32, 32, 2, 3, 1, 1, 1),    # groupwise 16 ch/group
    (8, 8, 8, 3, 1, 1, 1),      # depthwise 3x3 fast path
    (16, 16, 16, 3, 2, 1, 1),
    (8, 8, 8, 5, 1, 2, 1),      # depthwise 5x5 fast path
    (16, 16, 16, 5, 2, 2, 1),
    (8, 16, 8, 3, 1, 1, 1),     # depthwise, multiplier 2
    (8, 8, 8, 3, 1, 0, 1),      # depthwise, pad 0: not the fast path
    (12, 12, 12, 3, 1, 1, 1),   # depthwise, C % 8 != 0
    (3, 3, 3, 3, 1, 1, 1),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("xr,adv", [(255, False), (127, False), (255, True)])
def test_conv2d(engine, xr, adv):
    rng = np.random.default_rng(_seed(engine, xr, adv))
    for i, (ci, co, g, k, s, p, d) in enumerate(CONV_CFGS):
        for pc in (False, True):
            relu = bool((i + pc) % 2)
            c = conv_case(rng, engine, c_in=ci, c_out=co, groups=g, k=k, stride=s, padding=p,
                          dilation=d, pc=pc, relu=relu, bias=bool(rng.random() < 0.7),
                          xr=xr, adv=adv)
            tr = {}
            got = our_conv(engine, c, trace=tr)
            _assert_equal(torch_conv(engine, c), got, (engine, ci, co, g, k, s, p, d, pc, tr["path"]))


@pytest.mark.parametrize("engine", ENGINES)
def test_conv1d(engine):
    rng = np.random.default_rng(7)
    for k, s, p, d, g, ci, co in [(3, 1, 1, 1, 1, 5, 6), (5, 2, 2, 2, 1, 4, 3), (1, 1, 0, 1, 1, 7, 5),
                                  (3, 1, 1, 1, 2, 4, 4), (3, 1, 1, 1, 8, 16, 16), (3, 1, 1, 1, 4, 16, 16)]:
        for xr, adv in [(255, False), (127, False), (255, True)]:
            c = conv_case(rng, engine, c_in=ci, c_out=co, groups=g, k=k, stride=s, padding=p,
                          dilation=d, pc=bool(rng.random() < 0.5), relu=bool(rng.random() < 0.5),
                          xr=xr, adv=adv, is1d=True)
            _assert_equal(torch_conv(engine, c), our_conv(engine, c), (engine, k, s, p, d, g))


@pytest.mark.parametrize("engine", ENGINES)
def test_conv_random_fuzz(engine):
    rng = np.random.default_rng(11)
    n = 0
    while n < 25:
        g = int(rng.choice([1, 1, 1, 2, 4, 8, 16]))
        if g == 1:
            cpg, kpg = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        else:
            cpg, kpg = int(rng.choice([1, 2, 3, 4, 8])), int(rng.choice([1, 2, 4, 8]))
        k = int(rng.choice([1, 2, 3, 5]))
        s, p, d = int(rng.choice([1, 1, 2, 3])), int(rng.choice([0, 1, 2])), int(rng.choice([1, 1, 2]))
        if engine == "qnnpack" and d > 1 and cpg == 1 and kpg == 1:
            continue  # torch's QNNPACK depthwise conv with dilation segfaults
        hw = (int(rng.integers(d * (k - 1) + 2, 14)), int(rng.integers(d * (k - 1) + 2, 14)))
        c = conv_case(rng, engine, c_in=cpg * g, c_out=kpg * g, groups=g, k=k, stride=s,
                      padding=p, dilation=d, pc=bool(rng.random() < 0.5),
                      relu=bool(rng.random() < 0.5), bias=bool(rng.random() < 0.7),
                      xr=int(rng.choice([255, 127])), adv=bool(rng.random() < 0.2), hw=hw)
        _assert_equal(torch_conv(engine, c), our_conv(engine, c), (engine, g, cpg, kpg, k, s, p, d))
        n += 1


def test_conv_larger_layer():
    """A realistic 3x3 layer (K = 576 > FBGEMM's KCB), full-range inputs, all engines."""
    rng = np.random.default_rng(9)
    for engine in ENGINES:
        c = conv_case(rng, engine, c_in=64, c_out=48, groups=1, k=3, stride=1, padding=1,
                      pc=True, relu=True, hw=(14, 14))
        _assert_equal(torch_conv(engine, c), our_conv(engine, c), engine)


def test_conv_trace_and_paths():
    rng = np.random.default_rng(2)
    prof = make_profile("fbgemm", "avx2")
    expect = {(16, 16, 16, 3, 1, 1): "depthwise", (32, 32, 8, 3, 1, 1): "groupwise",
              (8, 8, 1, 1, 1, 0): "pointwise", (5, 8, 1, 3, 1, 1): "im2col",
              (8, 8, 1, 3, 1, 1): "groupwise"}  # G=1, 8 ch: G >= G_together
    for (ci, co, g, k, s, p), path in expect.items():
        c = conv_case(rng, "fbgemm", c_in=ci, c_out=co, groups=g, k=k, stride=s, padding=p)
        tr = {}
        our_conv("fbgemm", c, trace=tr, profile=prof)
        assert tr["path"] == path
        for key in ("acc", "bias_term", "multiplier", "pre_round", "rounded", "out"):
            assert key in tr


def _tie_layer(rng, kind):
    """A random linear / conv layer whose output scale puts requantization on exact ties
    (s_y = c * s_x * s_w), and bias on the accumulator grid: there the order in which a kernel
    applies s_x, s_w and 1/s_y decides the rounding."""
    perch = bool(rng.random() < 0.5)
    g, k, st, pad = 1, 1, 1, 0
    if kind == "linear":
        cin, cout = int(rng.integers(1, 300)), int(rng.integers(1, 160))
    elif kind == "1x1":
        cin, cout, st = 4 * int(rng.integers(1, 20)), int(rng.integers(1, 80)), int(rng.choice([1, 2]))
    elif kind == "3x3":
        cin, cout, k, st, pad = int(rng.integers(1, 40)), int(rng.integers(1, 40)), 3, int(rng.choice([1, 2])), 1
    else:  # depthwise
        cin = int(rng.integers(2, 40))
        cout, g, k, st, pad = cin, cin, int(rng.choice([3, 5])), 1, 0
    sx = float(rng.uniform(0.005, 0.05))
    sw = np.float32(rng.uniform(0.001, 0.02)) * (rng.choice([1, 2, 0.5, 3], cout) if perch else np.ones(cout))
    sw = sw.astype(np.float32).astype(np.float64)
    so = float(sx * sw[0] * float(rng.choice([2, 4, 6, 2.5])))
    bias = (rng.integers(-500, 500, cout) * sx * sw).astype(np.float32) if rng.random() < 0.7 else None
    return dict(kind=kind, perch=perch, cin=cin, cout=cout, g=g, k=k, st=st, pad=pad, sx=sx, sw=sw, so=so,
                bias=bias, zx=int(rng.integers(0, 256)), zo=int(rng.integers(0, 256)), relu=bool(rng.random() < 0.3),
                batch=int(rng.choice([1, 2])), hw=int(rng.integers(4, 14)))


@pytest.mark.parametrize("engine", ["onednn", "x86"])
def test_requantization_ties_per_kernel_family(engine):
    """Tie-placed layers of each oneDNN kernel family (matmul, 1x1, 3x3, depthwise, batch 1 and 2)
    against PyTorch on this machine: the output stage CpuClass names for the host's kernel is the one
    PyTorch runs (here x86 conv is oneDNN on VNNI / AMX hosts, FBGEMM elsewhere)."""
    rng = np.random.default_rng(1 if engine == "onednn" else 2)
    prof = make_profile(engine)
    old = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine
    try:
        for i in range(48):
            c = _tie_layer(rng, ("linear", "1x1", "3x3", "dw")[i % 4])
            cout = c["cout"]
            sws = torch.from_numpy(c["sw"])
            shape = (cout, c["cin"]) if c["kind"] == "linear" else (cout, c["cin"] // c["g"], c["k"], c["k"])
            wq = rng.integers(-127, 128, shape).astype(np.int8)
            wt = (torch._make_per_channel_quantized_tensor(torch.from_numpy(wq), sws, torch.zeros(cout, dtype=torch.long), 0)
                  if c["perch"] else torch._make_per_tensor_quantized_tensor(torch.from_numpy(wq), float(c["sw"][0]), 0))
            tb = None if c["bias"] is None else torch.from_numpy(c["bias"])
            kw = dict(x_scale=c["sx"], x_zero_point=c["zx"], weight=wq, weight_scale=c["sw"] if c["perch"] else c["sw"][:1],
                      weight_zero_point=np.zeros(cout if c["perch"] else 1, np.int64), bias=c["bias"], out_scale=c["so"],
                      out_zero_point=c["zo"], relu=c["relu"], per_channel=c["perch"], profile=prof)
            if c["kind"] == "linear":
                xq = rng.integers(0, 256, (int(rng.integers(1, 100)), c["cin"])).astype(np.uint8)
                xt = torch._make_per_tensor_quantized_tensor(torch.from_numpy(xq), c["sx"], c["zx"])
                op = torch.ops.quantized.linear_relu if c["relu"] else torch.ops.quantized.linear
                ref = op(xt, torch.ops.quantized.linear_prepack(wt, tb), c["so"], c["zo"]).int_repr().numpy()
                got = linear(xq, **kw)
            else:
                xq = rng.integers(0, 256, (c["batch"], c["cin"], c["hw"], c["hw"])).astype(np.uint8)
                xt = torch._make_per_tensor_quantized_tensor(torch.from_numpy(xq), c["sx"], c["zx"]).contiguous(
                    memory_format=torch.channels_last)
                geo = ([c["st"]] * 2, [c["pad"]] * 2, [1, 1], c["g"])
                op = torch.ops.quantized.conv2d_relu if c["relu"] else torch.ops.quantized.conv2d
                ref = op(xt, torch.ops.quantized.conv2d_prepack(wt, tb, *geo), c["so"], c["zo"]).int_repr().numpy()
                got = conv(xq, stride=c["st"], padding=c["pad"], dilation=1, groups=c["g"], **kw)
            _assert_equal(ref, got, (engine, i, c["kind"], c["perch"], c["batch"]))
    finally:
        torch.backends.quantized.engine = old


def test_onednn_kernel_families_by_cpu_class():
    """The kernel families (and so output stages) each class's oneDNN picks, for a few shapes read
    off ONEDNN_VERBOSE on an AMX Xeon (and its AVX512_CORE_VNNI cap)."""
    from qgolden.cpu import cpu_class

    amx, vnni, avx2 = cpu_class("avx512_amx"), cpu_class("avx512_vnni"), cpu_class("avx2")
    assert amx.onednn_conv_kernel(1, 1, 32, (3, 3), (1, 1), (1, 1), 2, (14, 14), 2) == "brdgmm_dw"
    assert amx.onednn_conv_kernel(64, 256, 1, (1, 1), (1, 1), (0, 0), 2, (14, 14), 2) == "brgconv_1x1_amx"
    assert amx.onednn_conv_kernel(64, 256, 1, (1, 1), (1, 1), (0, 0), 1, (14, 14), 2) == "brgconv_1x1_amx_nouker"
    assert amx.onednn_conv_kernel(37, 17, 1, (1, 1), (1, 1), (0, 0), 2, (9, 9), 2) == "brgemm"
    assert amx.onednn_conv_kernel(16, 16, 1, (3, 3), (1, 1), (1, 1), 2, (14, 14), 2) == "brg_conv_fwd_amx"
    assert amx.onednn_conv_kernel(20, 16, 1, (3, 3), (1, 1), (0, 0), 4, (1, 1), 2) == "brgemm"  # 1 output pixel
    assert vnni.onednn_conv_kernel(16, 16, 1, (3, 3), (1, 1), (1, 1), 2, (14, 14), 2) == "brgemm"
    assert avx2.onednn_conv_kernel(3, 3, 2, (3, 3), (1, 1), (1, 1), 2, (14, 14), 2) == "ref"
    assert [amx.onednn_matmul_kernel(*s) for s in ((8, 1024, 32), (256, 8, 256), (64, 128, 64))] == [
        "brg_matmul", "brg_matmul", "brg_matmul_amx"]
    assert vnni.onednn_matmul_kernel(64, 128, 64) == "brg_matmul"
    assert [amx.onednn_output_stage(k) for k in ("brgconv_1x1_amx", "brgconv_1x1_amx_nouker", "brdgmm_dw")] == [
        "combined", "sequential", "sequential"]
    assert avx2.onednn_output_stage("jit") == "combined" and avx2.onednn_output_stage("ref") == "ref"
