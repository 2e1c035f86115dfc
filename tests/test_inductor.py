"""x86-inductor: what torch.compile's oneDNN kernels and generated C++ compute in float regions.

Fast checks call the oneDNN ops directly (no compile); two seeds of the random PT2E campaign that
used to mismatch are kept as regression tests (one compile each)."""
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TORCHAO_FORCE_SKIP_LOADING_SO_FILES", "1")
torch = pytest.importorskip("torch")

from qgolden.numerics.onednn_postops import onednn_dst_quantize, onednn_post_op  # noqa: E402
from qgolden.numerics.profile import make_profile  # noqa: E402
from qgolden.ops.conv import conv_accumulate  # noqa: E402
from qgolden.ops.inductor_mean import float_mean_inductor, inductor_mean_serial  # noqa: E402
from qgolden.ops.qdq import _onednn_float_out, conv_shape, onednn_combined_scale  # noqa: E402


def _qconv_case(seed, c_in, c_out, k, groups):
    g = np.random.default_rng(seed)
    xq = g.integers(0, 256, (2, c_in, 7, 7)).astype(np.uint8)
    wq = g.integers(-128, 128, (c_out, c_in // groups, k, k)).astype(np.int8)
    sx, zx = float(np.float32(g.uniform(0.01, 0.1))), int(g.integers(100, 150))
    sw = g.uniform(0.002, 0.01, c_out).astype(np.float32).astype(np.float64)
    b = (g.standard_normal(c_out) * 0.3).astype(np.float32)
    return xq, wq, sx, zx, sw, b, k // 2, groups


def _onednn_qconv(case, attr, scalars, out_dtype, so=1.0, zo=0):
    xq, wq, sx, zx, sw, b, pad, groups = case
    tx = torch.from_numpy(xq).contiguous(memory_format=torch.channels_last)
    tws, twz = torch.from_numpy(sw).float(), torch.zeros(len(sw), dtype=torch.int64)
    pw = torch.ops.onednn.qconv_prepack(torch.from_numpy(wq), tws, sx, zx, [1, 1], [pad, pad], [1, 1], groups,
                                        list(xq.shape))
    for _ in range(3):  # steady state (a fresh oneDNN primitive differs on its first calls)
        out = torch.ops.onednn.qconv_pointwise(tx, sx, zx, pw, tws, twz, torch.from_numpy(b), [1, 1], [pad, pad],
                                               [1, 1], groups, so, zo, out_dtype, attr, scalars, "")
    return out.contiguous().numpy()


@pytest.mark.parametrize("attr,scalars", [("hardswish", []), ("hardtanh", [0.0, 6.0])])
@pytest.mark.parametrize("c_in,c_out,k,groups", [(8, 8, 1, 1), (4, 16, 3, 1), (8, 8, 3, 8)])
def test_onednn_conv_post_ops(attr, scalars, c_in, c_out, k, groups):
    """qconv_pointwise with a fused post-op, float32 and uint8 output, against our formulas."""
    mism = {"float": 0, "uint8": 0, "aten_hardswish": 0}
    host = make_profile("x86-inductor")  # live torch: this machine's CPU class
    for seed in range(6):
        case = _qconv_case(seed, c_in, c_out, k, groups)
        xq, wq, sx, zx, sw, b, pad, _ = case
        acc, ctx = conv_accumulate(xq, wq, zx, np.zeros(c_out, np.int64), (1, 1), (pad, pad), (1, 1), groups,
                                   make_profile("onednn"))
        nhwc = (2, ctx["oh"], ctx["ow"], c_out)
        combined = onednn_combined_scale(host, "conv", conv_shape(xq.shape, wq.shape, (1, 1), (pad, pad), groups,
                                                                  (ctx["oh"], ctx["ow"])))
        f = _onednn_float_out(acc, sx, sw, b, False, combined=combined)
        ours = onednn_post_op(f, attr, *scalars).reshape(nhwc).transpose(0, 3, 1, 2)
        mism["float"] += int(np.sum(ours != _onednn_qconv(case, attr, scalars, torch.float32)))
        if attr == "hardswish":  # ATen's formula is not what oneDNN computes
            aten = (f * np.minimum(np.maximum(f + np.float32(3), 0), np.float32(6)) / np.float32(6)).astype(np.float32)
            mism["aten_hardswish"] += int(np.sum(aten.reshape(nhwc).transpose(0, 3, 1, 2) != ours))
        so, zo = 0.02 + 0.003 * seed, 3 * seed
        q = onednn_dst_quantize(onednn_post_op(f, attr, *scalars), so, zo).reshape(nhwc).transpose(0, 3, 1, 2)
        mism["uint8"] += int(np.sum(q != _onednn_qconv(case, attr, scalars, torch.uint8, so, zo)))
    assert mism["float"] == 0 and mism["uint8"] == 0, mism
    if attr == "hardswish":
        assert mism["aten_hardswish"] > 0  # the test can tell the two formulas apart


def test_onednn_conv_sum_into_float_is_a_float_add():
    """conv (float32 output) + dequantized other: qconv2d_pointwise.binary 'sum' = f32(f + other)."""
    mism = 0
    for seed in range(4):
        case = _qconv_case(seed, 8, 8, 1, 1)
        xq, wq, sx, zx, sw, b, pad, groups = case
        acc, ctx = conv_accumulate(xq, wq, zx, np.zeros(8, np.int64), (1, 1), (0, 0), (1, 1), 1,
                                   make_profile("onednn"))
        combined = onednn_combined_scale(make_profile("x86-inductor"), "conv",
                                         conv_shape(xq.shape, wq.shape, (1, 1), (0, 0), 1, (7, 7)))
        f = _onednn_float_out(acc, sx, sw, b, False, combined=combined).reshape(2, 7, 7, 8).transpose(0, 3, 1, 2)
        other = (np.random.default_rng(seed).integers(-100, 100, f.shape) * np.float32(0.0483)).astype(np.float32)
        tws, twz = torch.from_numpy(sw).float(), torch.zeros(8, dtype=torch.int64)
        pw = torch.ops.onednn.qconv_prepack(torch.from_numpy(wq), tws, sx, zx, [1, 1], [0, 0], [1, 1], 1, list(xq.shape))
        tx = torch.from_numpy(xq).contiguous(memory_format=torch.channels_last)
        for _ in range(3):
            accum = torch.from_numpy(other.copy()).contiguous(memory_format=torch.channels_last)
            out = torch.ops.onednn.qconv2d_pointwise.binary(tx, sx, zx, pw, tws, twz, accum, torch.from_numpy(b),
                                                            [1, 1], [0, 0], [1, 1], 1, 1.0, 0, torch.float32, 1.0, 0,
                                                            "sum", 1.0, "none", [], "")
        mism += int(np.sum(out.contiguous().numpy() != np.add(f, other, dtype=np.float32)))
    assert mism == 0


@pytest.mark.parametrize("channels_last", [True, False])
def test_inductor_mean_bit_exact(channels_last):
    """torch.compile's global average pool (Inductor's generated C++ sum), serial cases."""
    torch._dynamo.reset()
    f = torch.compile(lambda x: torch.nn.functional.adaptive_avg_pool2d(x, 1))
    for seed, (nb, c, hw) in enumerate([(2, 8, 6), (2, 13, 7), (1, 4, 9), (2, 24, 13), (1, 16, 8), (2, 5, 17)]):
        x = torch.randn(nb, c, hw, hw, generator=torch.Generator().manual_seed(seed)) * 3
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        host = make_profile("x86-inductor")  # live torch.compile: this machine's vector lanes
        assert inductor_mean_serial(x.shape, channels_last, host["isa"], torch.get_num_threads())
        ours = float_mean_inductor(x.numpy(), dim=[2, 3], keepdim=True, channels_last=channels_last, profile=host)
        assert np.array_equal(ours, f(x).numpy()), (nb, c, hw)


def test_inductor_lane_sum_16_lanes_reduce_halves():
    from qgolden.numerics.floatsum import inductor_lane_sum, vec_reduce_all

    lanes = np.float32([2.0**24, 1, 1, 1, 1, 1, 1, 1, -(2.0**24), 1, 1, 1, 1, 1, 1, 1])
    assert vec_reduce_all(lanes) == np.float32(14)  # lane 0 + lane 8 first: the big values cancel
    x = np.arange(35, dtype=np.float32)[None]      # 2 vectors and a tail of 3 into lanes 0..2
    assert inductor_lane_sum(x, 16)[0] == np.float32(sum(range(35)))


def test_inductor_mean_claims_only_serial_sums():
    assert inductor_mean_serial((2, 32, 6, 6), True, "avx2", 2)
    assert not inductor_mean_serial((2, 8, 65, 65), True, "avx2", 2)   # > 4096 terms: cascade sum
    assert not inductor_mean_serial((2, 5, 30, 30), True, "avx2", 2)   # reduction parallel over threads
    assert inductor_mean_serial((2, 5, 30, 30), True, "avx2", 1)


@pytest.mark.parametrize("seed,variants,what", [
    (1020, False, "conv -> hardswish fused into onednn::qconv_pointwise (float32 output)"),
    (1058, False, "dq -> cat -> global average pool: Inductor's channels-last sum, then a float output linear"),
    (3036, False, "NCHW input + conv(input), fused into the conv's channels-last output, then global average pool"),
    (3, True, "avg pools with padding; batch-1 8 -> 5 head: per-channel scales inlined, a scalar tail loop"),
    (49, True, "batch-1 16 -> 3 head: per-channel scales inlined, 16 products in full vectors (no tail)"),
    (33, True, "dq -> cat -> hardswish -> relu6, float output: relu6 of -0.0 is +0.0 (vmaxps picks the 0)"),
])
def test_campaign_regressions(seed, variants, what):
    pytest.importorskip("torchao", reason="torchao==0.18.0 not installed (pip install 'qgolden[pt2e]')")
    from qgolden.fuzz_pt2e import one

    rep, desc = one(seed, "x86-inductor", variants=variants)
    assert rep.bit_exact, (what, desc, rep.outputs)
    assert all(r["exact"] for r in rep.float_regions), rep.float_regions


def test_float_output_differences_in_ulps():
    from qgolden.verifiers.pt2e import _ulp_hist

    a = np.array([1.0, -1.0, 0.0, 2.0, -0.0], np.float32)
    b = a.copy()
    b[0] = np.nextafter(b[0], np.float32(2))
    b[1] = np.nextafter(np.nextafter(b[1], np.float32(0)), np.float32(0))
    b[2] = np.nextafter(np.float32(0), np.float32(-1))  # -0 and +0 are 0 apart, 0 and -tiny 1 apart
    assert _ulp_hist(a, b) == {1: 2, 2: 1}


def _qlinear(seed, m, k, n):
    g = np.random.default_rng(seed)
    xq, wq = g.integers(0, 256, (m, k)).astype(np.uint8), g.integers(-128, 128, (n, k)).astype(np.int8)
    sx, zx = float(np.float32(g.uniform(0.01, 0.1))), int(g.integers(100, 150))
    sw, b = g.uniform(0.002, 0.01, n).astype(np.float32), (g.standard_normal(n) * 0.3).astype(np.float32)
    pw = torch.ops.onednn.qlinear_prepack(torch.from_numpy(wq), [m, k])
    for _ in range(2):
        y = torch.ops.onednn.qlinear_pointwise(torch.from_numpy(xq), sx, zx, pw, torch.from_numpy(sw),
                                               torch.zeros(n, dtype=torch.int64), torch.from_numpy(b), 1.0, 0,
                                               torch.float32, "none", [], "")
    acc = (xq.astype(np.int64) - zx) @ wq.astype(np.int64).T
    return acc, sx, sw, b, y.numpy()


@pytest.mark.parametrize("m,k,n", [(1, 256, 16), (1, 255, 300), (2, 16, 200), (4, 64, 10), (8, 128, 64),
                                   (33, 17, 17), (100, 64, 16), (3, 1000, 100)])
def test_onednn_linear_float_output_scale_order(m, k, n):
    """qlinear_pointwise (float32 out) on this host: its CPU class says which scale order the kernel
    oneDNN picks for this shape uses (AMX: not for oneDNN's small shapes); the other order differs."""
    from qgolden.cpu import cpu_class

    host = make_profile("x86-inductor")
    if cpu_class(host).onednn_pairs_saturate:
        pytest.skip("int16 pair saturation: the exact sum below is not this CPU's")
    acc, sx, sw, b, ref = _qlinear(m, m, k, n)
    combined = onednn_combined_scale(host, "linear", {"m": m, "k": k, "n": n})
    assert np.array_equal(_onednn_float_out(acc, sx, sw, b, False, combined=combined), ref)
    assert not np.array_equal(_onednn_float_out(acc, sx, sw, b, False, combined=not combined), ref)


# --- avg_pool2d between dequantize and quantize (ops/float_avg_pool.py) ---------------------------
from qgolden.ops.float_avg_pool import float_avg_pool, inductor_avg_pool_kernel  # noqa: E402

AVG_CONFIGS = [  # kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
    ((2, 2), (2, 2), (0, 0), False, True, None), ((3, 3), (1, 1), (1, 1), False, True, None),
    ((3, 3), (2, 2), (1, 1), False, False, None), ((3, 3), (2, 2), (1, 1), True, True, None),
    ((3, 2), (2, 1), (1, 0), True, False, None), ((2, 2), (2, 2), (0, 0), False, True, 3),
    ((4, 4), (3, 3), (1, 1), True, False, None), ((6, 6), (2, 2), (1, 1), False, True, None),
    ((1, 1), (2, 2), (0, 0), False, True, None), ((5, 5), (1, 1), (2, 2), False, False, None),
]


def _avg_input(seed, shape, channels_last):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g) * 3
    # quarter of the values on a coarse grid: exact ties of sums and of the division
    x = torch.where(torch.rand(*shape, generator=g) < 0.25, torch.round(x * 4) / 4, x)
    x[..., 0, :] = -0.0  # a row of negative zeros: the sum's starting value shows in the sign of 0
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _same_bits(a, b):
    return a.shape == b.shape and np.array_equal(np.asarray(a, np.float32).view(np.int32),
                                                 np.asarray(b, np.float32).view(np.int32))


@pytest.mark.parametrize("channels_last", [False, True])
def test_float_avg_pool_is_atens(channels_last):
    """ATen's float32 avg_pool2d (what pt2e-reference runs, and Inductor's fallback): sum from 0."""
    for i, (k, s, p, ceil, cip, div) in enumerate(AVG_CONFIGS):
        for shape in [(2, 19, 14, 14), (1, 5, 13, 11)]:
            x = _avg_input(i, shape, channels_last)
            ref = torch.nn.functional.avg_pool2d(x, k, s, p, ceil, cip, div).contiguous().numpy()
            ours = float_avg_pool(x.numpy(), kernel_size=k, stride=s, padding=p, ceil_mode=ceil,
                                  count_include_pad=cip, divisor_override=div, sum_order="from_zero")
            assert _same_bits(ours, ref), (k, s, p, ceil, cip, div, shape)


def test_inductor_avg_pool_bit_exact():
    """torch.compile's avg_pool2d: unrolled window sums (from tap 0), the ATen fallback for big
    windows; a 1x1 window keeps a -0.0 that a sum from 0 would turn into +0.0."""
    told_apart = 0
    for i, (k, s, p, ceil, cip, div) in enumerate(AVG_CONFIGS):
        order, exact, _ = inductor_avg_pool_kernel(k, s)
        if not exact:
            continue
        torch._dynamo.reset()
        f = torch.compile(lambda x: torch.nn.functional.avg_pool2d(x, k, s, p, ceil, cip, div))
        for channels_last in (True, False):
            x = _avg_input(100 + i, (2, 19, 13, 11), channels_last)
            ref = f(x).contiguous().numpy()
            kw = dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil, count_include_pad=cip, divisor_override=div)
            assert _same_bits(float_avg_pool(x.numpy(), sum_order=order, **kw), ref), (k, s, p, channels_last)
            other = "from_zero" if order == "first_tap" else "first_tap"
            told_apart += not _same_bits(float_avg_pool(x.numpy(), sum_order=other, **kw), ref)
    assert told_apart > 0


def test_inductor_avg_pool_loops_are_not_claimed():
    assert inductor_avg_pool_kernel((3, 3), (1, 1), 100)[:2] == ("first_tap", True)
    assert inductor_avg_pool_kernel((6, 6), (2, 2), 100)[:2] == ("from_zero", True)   # ATen fallback
    assert not inductor_avg_pool_kernel((5, 5), (5, 5), 100)[1]   # 25 taps: a reduction loop
    assert not inductor_avg_pool_kernel((7, 7), (7, 7), 100)[1]
    assert not inductor_avg_pool_kernel((2, 2), (2, 2), 1)[1]     # one output: not unrolled


# --- batch-1 linears that Inductor decomposes into float32 C++ (ops/inductor_linear.py) -----------
@pytest.mark.parametrize("k,n,bias", [(1, 5, True), (3, 4, True), (7, 16, True), (8, 10, True), (12, 3, True),
                                      (16, 16, True), (17, 1, True), (300, 1, False), (9, 1, False)])
def test_inductor_decomposed_linear(k, n, bias):
    """F.linear(x[1, K], w, b) compiled: products, then an unrolled or lane sum, then + bias."""
    from qgolden.ops.inductor_linear import (decomposed_linear_sum_order, float_linear_inductor,
                                             inductor_decomposed_linear)

    assert inductor_decomposed_linear(1, k, n, bias) == "sum"
    g = np.random.default_rng(k * 100 + n)
    x = (g.integers(-40, 40, (1, k)) * np.float32(0.0371)).astype(np.float32)
    w = (g.integers(-127, 128, (n, k)) * g.uniform(0.002, 0.02, (n, 1))).astype(np.float32)
    b = (g.standard_normal(n) * 0.3).astype(np.float32) if bias else None
    torch._dynamo.reset()
    f = torch.compile(lambda x, w, b: torch.nn.functional.linear(x, w, b))
    ref = f(torch.from_numpy(x), torch.from_numpy(w), None if b is None else torch.from_numpy(b)).numpy()
    host = make_profile("x86-inductor")  # live torch.compile: this machine's vector lanes
    order = decomposed_linear_sum_order(k, n, n, per_channel=False)  # a float weight: nothing inlined
    assert _same_bits(float_linear_inductor(x, weight=w, bias=b, sum_order=order, profile=host), ref)


def test_inductor_linear_decomposition_rule():
    from qgolden.ops.inductor_linear import decomposed_linear_sum_order, inductor_decomposed_linear

    assert inductor_decomposed_linear(1, 16, 16, True) == "sum"
    assert inductor_decomposed_linear(1, 17, 16, True) is None   # oneDNN's qlinear
    assert inductor_decomposed_linear(2, 8, 8, True) is None
    assert inductor_decomposed_linear(1, 512, 1, True) == "sum"
    assert inductor_decomposed_linear(1, 8, 4, False) is None    # mm: only a single output
    assert inductor_decomposed_linear(4, 1, 3, False) == "product"
    assert decomposed_linear_sum_order(8, 5, 5, per_channel=True) == "lanes_scalar_tail"  # scales inlined
    assert decomposed_linear_sum_order(8, 10, 10, per_channel=True) == "lanes"
    assert decomposed_linear_sum_order(8, 1, 1, per_channel=True) == "lanes"    # one scale: a constant
    assert decomposed_linear_sum_order(5, 4, 4, per_channel=True) == "unrolled"


RECORDS = Path(__file__).parent / "data" / "cpu-records"


@pytest.mark.parametrize("case,isa", [
    ("xeon-avx512-amx/inductor/cases/inductor_11_1", "avx512_amx"),   # avg_pool2d on a conv's float output
    ("xeon-avx512-amx/inductor/cases/inductor_11_3", "avx512_amx"),   # batch-1 16 -> 10 linear head
    ("xeon-avx512-vnni/inductor/cases/inductor_33_2", "avx512_vnni"),  # avg pool, max pool, 8 -> 10 head
    ("xeon-avx512-vnni/inductor/cases/inductor_33_5", "avx512_vnni"),
])
def test_recorded_inductor_models(case, isa):
    """torch.compile outputs recorded on AVX-512 Xeons, replayed with their CPU class (no live torch)."""
    pytest.importorskip("torchao", reason="torchao==0.18.0 not installed (pip install 'qgolden[pt2e]')")
    import qgolden
    from qgolden.importers.pt2e import register_ops

    register_ops()
    rec = np.load(RECORDS / f"{case}.npz")
    ep = torch.export.load(str(RECORDS / f"{case}.pt2"))
    prog = qgolden.lower(ep, example_inputs=(torch.from_numpy(rec["x"]),), engine="x86-inductor", isa=isa)
    assert all(r["exact"] for r in prog.meta["float_regions"]), prog.meta["float_regions"]
    out = prog.run(rec["x"])
    assert _same_bits(out[0] if isinstance(out, (tuple, list)) else out, rec["y"])


# --- the sign of zero through max/min in float regions (ops/float_ops.float_clamp) ----------------
CLAMPS = [("relu", None, None), ("relu6", None, None), ("hardtanh", -1.0, 1.0), ("hardtanh", 0.0, 1.0),
          ("hardtanh", -2.0, 0.0), ("hardtanh", 0.0, 0.0)]


def _torch_clamp(fn, lo, hi):
    F = torch.nn.functional
    return {"relu": F.relu, "relu6": F.relu6}.get(fn) or (lambda x: torch.clamp(x, lo, hi))


@pytest.mark.parametrize("fn,lo,hi", CLAMPS)
@pytest.mark.parametrize("inductor", [True, False])
def test_signed_zeros_through_clamps(fn, lo, hi, inductor):
    """-0.0 and +0.0 (and x <= -3 through hardswish, whose result is -0.0) in vector bodies and tails,
    against torch.compile (inductor) or eager ATen on this host, bit for bit."""
    from qgolden.ops.float_ops import float_clamp
    from qgolden.ops.qdq import float_unary

    host = make_profile("x86-inductor" if inductor else "pt2e-reference")
    f = _torch_clamp(fn, lo, hi)
    hs = lambda x: f(torch.nn.functional.hardswish(x))  # noqa: E731
    for n in (5, 16, 37, 67):
        g = np.random.default_rng(n)
        x = g.choice(np.float32([-0.0, 0.0, -4.0, -3.0, 0.5, 7.0, -1.0]), n).astype(np.float32)
        for torch_fn, ours in ((f, lambda v: float_clamp(v, fn, lo, hi, inductor=inductor, profile=host)),
                               (hs, lambda v: float_clamp(float_unary(v, fn="hardswish", profile=host), fn, lo, hi,
                                                          inductor=inductor, profile=host))):
            torch._dynamo.reset()
            ref = (torch.compile(torch_fn) if inductor else torch_fn)(torch.from_numpy(x)).numpy()
            assert _same_bits(ours(x), ref), (fn, lo, hi, n, x, ref)


def test_zero_rules_tell_apart():
    from qgolden.ops.float_ops import float_clamp, vec_max, vec_min

    z, nz = np.float32(0.0), np.float32(-0.0)
    assert np.signbit(vec_max(nz, z, "second")) == 0 and np.signbit(vec_max(z, nz, "second")) == 1
    assert np.signbit(vec_max(z, nz, "ieee")) == 0 and np.signbit(vec_min(z, nz, "ieee")) == 1
    x = np.float32([-0.0])
    avx2 = {"engine": "x86-inductor", "isa": "avx2"}
    assert not np.signbit(float_clamp(x, "relu6", inductor=True, profile=avx2))[0]      # max(x, 0): the 0
    assert np.signbit(float_clamp(x, "relu6", inductor=False, profile=avx2))[0]         # max(0, x): the x
    assert np.signbit(float_clamp(x, "relu", inductor=True, profile=avx2))[0]           # clamp_min(x, 0)
    assert not np.signbit(float_clamp(x, "relu", inductor=True, profile={"isa": "arm64"}))[0]  # NEON FMAX
