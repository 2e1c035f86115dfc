"""The torch-accelerated accumulation gives the same integers as the NumPy path and as PyTorch."""
import numpy as np
import pytest

import qgolden
import qgolden.api
from qgolden.fuzz import random_case
from qgolden.numerics import accumulate


@pytest.fixture
def torch_backend():
    accumulate.set_backend("torch")
    yield
    accumulate.set_backend("numpy")


@pytest.mark.parametrize("seed", range(40))
def test_torch_backend_bit_exact(seed, torch_backend):
    q, xs, desc, engine = random_case(seed + 500)
    rep = qgolden.api.verify(q, *xs, engine=engine)
    assert rep.bit_exact, desc


def test_torch_backend_saturating_conv(torch_backend):
    """Full-range activations on AVX2: pairs saturate; the correction restores FBGEMM's sums."""
    from qgolden.ops.conv import conv
    from qgolden.numerics.profile import make_profile

    rng = np.random.default_rng(0)
    x = rng.integers(200, 256, (2, 6, 9, 9)).astype(np.uint8)
    w = rng.choice([-128, 127, -100, 120], (8, 6, 3, 3)).astype(np.int8)
    kw = dict(x_scale=0.02, x_zero_point=5, weight=w, weight_scale=np.array([0.01]), weight_zero_point=np.array([0]),
              bias=None, out_scale=2.0, out_zero_point=128, stride=(1, 1), padding=(1, 1), dilation=(1, 1),
              groups=1, relu=False, per_channel=False)
    prof = make_profile("fbgemm", "avx2")
    fast = conv(x, profile=prof, **kw)
    accumulate.set_backend("numpy")
    slow = conv(x, profile=prof, **kw)
    assert np.array_equal(fast, slow)
    assert accumulate.pairs_can_saturate(x, w)


@pytest.mark.parametrize("seed", range(24))
def test_torch_backend_conv_accumulator_matches_numpy(seed):
    """The torch backend's accumulator (this machine's oneDNN int8 conv, then the pairing
    corrections) equals the NumPy model's for every target kernel, on data that saturates:
    odd and even channels per group, groups, padding with a nonzero zero point, strides."""

    rng = np.random.default_rng(seed)
    g = int(rng.choice([1, 1, 2, 4]))
    cpg = int(rng.choice([1, 3, 4, 6, 8]))
    kpg = int(rng.choice([2, 4, 8]))
    k = int(rng.choice([1, 3, 5]))
    stride, pad = int(rng.integers(1, 3)), int(rng.integers(0, k // 2 + 1))
    x = rng.integers(int(rng.choice([0, 150])), 256, (2, g * cpg, 7, 8)).astype(np.uint8)
    w = rng.choice([-128, 127, -90, 110, 5, 0], (g * kpg, cpg, k, k)).astype(np.int8)
    zx = int(rng.choice([0, 0, 37, 250]))
    args = (x, w, zx, np.zeros(1, np.int64), (stride, stride), (pad, pad), (1, 1), g)
    _assert_torch_accumulator_equals_numpy(
        args, (("fbgemm", "avx2"), ("fbgemm", "avx512_vnni"), ("onednn", "avx2"), ("onednn", "avx512_vnni"),
               ("x86", "avx512_vnni"), ("qnnpack", "avx2")), (g, cpg, kpg, k, stride, pad, zx))


def _assert_torch_accumulator_equals_numpy(args, targets, label):
    """conv_accumulate(*args) with the torch backend equals the NumPy model for every (engine, isa)."""
    from qgolden.numerics.profile import make_profile
    from qgolden.ops.conv import conv_accumulate

    for engine, isa in targets:
        prof = make_profile(engine, isa)
        accumulate.set_backend("numpy")
        want, _ = conv_accumulate(*args, prof)
        accumulate.set_backend("torch")
        try:
            got, _ = conv_accumulate(*args, prof)
        finally:
            accumulate.set_backend("numpy")
        assert np.array_equal(np.asarray(got, np.int64), want), (engine, isa) + tuple(label)


@pytest.mark.parametrize("seed", range(16))
def test_sparse_saturation_accumulator_matches_numpy(seed):
    """Few values high enough to saturate a pair (spikes of 125-141 on a low background, at the
    borders too, and a zero point that makes the padding itself saturate): the corrections
    evaluated only at the output positions that read a spike equal the NumPy model's full sums."""

    rng = np.random.default_rng(seed + 100)
    g = int(rng.choice([1, 1, 2]))
    cpg = int(rng.choice([1, 3, 4, 5]))
    kpg = int(rng.choice([2, 4]))
    k = int(rng.choice([3, 5, 7]))
    stride, pad, dil = int(rng.integers(1, 3)), int(rng.integers(0, k // 2 + 1)), int(rng.choice([1, 1, 2]))
    x = rng.integers(0, 60, (2, g * cpg, 30, 31)).astype(np.uint8)
    n_spikes = int(rng.integers(3, 13))
    for _ in range(n_spikes):
        b, c = int(rng.integers(0, 2)), int(rng.integers(0, g * cpg))
        h, wd = int(rng.choice([0, 29, int(rng.integers(0, 30))])), int(rng.choice([0, 30, int(rng.integers(0, 31))]))
        x[b, c, h, wd] = rng.integers(125, 142)
        if c + 1 < g * cpg:
            x[b, c + 1, h, wd] = rng.integers(125, 142)
    w = rng.choice([-128, 127, -120, 125, 5, 0], (g * kpg, cpg, k, k)).astype(np.int8)
    zx = int(rng.choice([0, 30, 135]))  # 135: the padding itself is high enough to saturate
    args = (x, w, zx, np.zeros(1, np.int64), (stride, stride), (pad, pad), (dil, dil), g)
    _assert_torch_accumulator_equals_numpy(
        args, (("fbgemm", "avx2"), ("onednn", "avx2"), ("x86", "avx512_vnni"), ("qnnpack", "avx2")),
        (g, cpg, kpg, k, stride, pad, dil, zx))


@pytest.mark.parametrize("seed", range(12))
def test_rows_reading_and_rows_at(seed):
    """rows_reading finds exactly the output positions whose window reads a hot cell, and
    im2col_rows_at gathers exactly those rows of the full im2col; channel maxima in either
    memory order."""
    rng = np.random.default_rng(seed)
    c, k = int(rng.integers(1, 6)), (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
    x = rng.integers(0, 256, (2, c, int(rng.integers(5, 10)), int(rng.integers(5, 10)))).astype(np.uint8)
    stride, pad = (int(rng.integers(1, 3)), int(rng.integers(1, 3))), (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
    dil = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    even = bool(rng.integers(0, 2))
    xp = accumulate.padded_nhwc(x, pad, 0 if even else 9, 0, c, even_channels=even)
    full = accumulate.im2col_rows(x, k, stride, pad, dil, 0 if even else 9, 0, c, even_channels=even)
    oh = (xp.shape[1] - dil[0] * (k[0] - 1) - 1) // stride[0] + 1
    ow = (xp.shape[2] - dil[1] * (k[1] - 1) - 1) // stride[1] + 1
    hot = rng.random(xp.shape[:3]) < 0.05
    rows = accumulate.rows_reading(hot, (oh, ow), k, stride, dil)
    win = accumulate.im2col_patches(hot[:, None].astype(np.uint8), k, stride, (0, 0), dil, np.uint8(0))
    assert np.array_equal(rows, np.nonzero(win.reshape(-1, k[0] * k[1]).any(axis=1))[0])
    got = accumulate.im2col_rows_at(x, rows, (oh, ow), k, stride, pad, dil, 0 if even else 9, 0, c, even_channels=even)
    assert np.array_equal(got, full[rows])
    xl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # NHWC memory
    assert np.array_equal(accumulate.channel_max(xl, 0, c), x.max(axis=1))
    assert np.array_equal(accumulate.per_channel_max(xl), x.max(axis=(0, 2, 3)))
    assert np.array_equal(accumulate.per_channel_max(x), x.max(axis=(0, 2, 3)))


def test_onednn_host_mode_is_known():
    """This machine's oneDNN conv pairs as one of the two models (else the accelerator is off)."""
    assert accumulate.onednn_host_conv_mode() in ("saturate", "exact")


@pytest.mark.parametrize("seed", range(12))
def test_im2col_rows_equals_patch_columns(seed):
    """The direct im2col equals the patches-view one, in both kernels' column orders."""
    rng = np.random.default_rng(seed)
    c, k = int(rng.integers(1, 6)), (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    x = rng.integers(0, 256, (2, c, int(rng.integers(3, 9)), int(rng.integers(3, 9)))).astype(np.uint8)
    stride, pad = (int(rng.integers(1, 3)), int(rng.integers(1, 3))), (int(rng.integers(0, 2)), int(rng.integers(0, 2)))
    dil = (int(rng.integers(1, 3)), int(rng.choice([1, 1, 2])))
    c0, c1 = 0, int(rng.integers(1, c + 1))
    p = accumulate.im2col_patches(x, k, stride, pad, dil, np.uint8(9))
    p0 = accumulate.im2col_patches(x, k, stride, pad, dil, np.uint8(0))
    assert np.array_equal(accumulate.im2col_rows(x, k, stride, pad, dil, 9, c0, c1), accumulate.im2col_fbgemm(p, c0, c1))
    assert np.array_equal(accumulate.im2col_rows(x, k, stride, pad, dil, 0, c0, c1, even_channels=True),
                          accumulate.im2col_onednn(p0, c0, c1))


@pytest.mark.parametrize("seed", range(12))
def test_depthwise_accumulator_matches_reference(seed):
    """FBGEMM's depthwise kernel: the exact sum plus the candidate-pair correction (NumPy and
    torch backends) equals the reference model that saturates every tap pair
    (depthwise_fbgemm_acc), on data that saturates: channel multiplier 1 and 2, 3x3 and 5x5,
    strides, a nonzero zero point padding, per-channel weight zero points."""
    from qgolden.numerics.profile import make_profile
    from qgolden.ops.conv import conv_accumulate, fbgemm_conv_path

    rng = np.random.default_rng(seed + 300)
    c = int(rng.choice([8, 16]))
    mult = int(rng.choice([1, 2]))
    k = int(rng.choice([3, 5]))
    stride = int(rng.integers(1, 3))
    x = rng.integers(int(rng.choice([0, 100, 180])), 256, (2, c, 9, 10)).astype(np.uint8)
    w = rng.choice([-128, 127, -100, 120, 60, -7, 0], (c * mult, 1, k, k)).astype(np.int8)
    zx = int(rng.choice([0, 40, 250]))
    zw = np.zeros(c * mult, np.int64) if seed % 3 else rng.integers(-3, 4, c * mult)
    geo = ((stride, stride), (k // 2, k // 2), (1, 1))
    assert fbgemm_conv_path(c, c * mult, c, (k, k), *geo, False) == "depthwise"
    patches = accumulate.im2col_patches(x, (k, k), geo[0], geo[1], geo[2], np.uint8(zx))
    want = accumulate.depthwise_fbgemm_acc(patches, w, zx, zw).reshape(-1, c * mult)
    assert accumulate.depthwise_pair_correction(x, w, zx, *geo) is not None  # these data saturate
    prof = make_profile("fbgemm", "avx2")
    for backend in ("numpy", "torch"):
        accumulate.set_backend(backend)
        try:
            got, ctx = conv_accumulate(x, w, zx, zw, *geo, c, prof)
        finally:
            accumulate.set_backend("numpy")
        assert ctx["path"] == "depthwise"
        assert np.array_equal(np.asarray(got, np.int64), want), (backend, c, mult, k, stride, zx)


def test_onednn_strided_pointwise_is_stable():
    """The host accumulator of 1x1 strided convs on saturating data equals this CPU class's model
    on every call: int16 pair saturation below VNNI, exact sums with VNNI / AMX (oneDNN's own
    strided 1x1 path gave other integers about once in a hundred calls on AVX2; random seed 529)."""
    from qgolden.cpu import cpu_class, detect

    saturates = cpu_class(detect()).onednn_pairs_saturate
    rng = np.random.default_rng(5)
    w = rng.choice([-128, 127, -100, 120, 5], (7, 24, 1, 1)).astype(np.int8)
    accumulate.set_backend("torch")
    try:
        for _ in range(900):
            x = rng.integers(0, 256, (2, 24, 6, 6)).astype(np.uint8)
            got = accumulate.onednn_conv_raw(x, w, 0, (2, 2), (0, 0), (1, 1), 1)
            p0 = accumulate.im2col_patches(x, (1, 1), (2, 2), (0, 0), (1, 1), np.uint8(0))
            want = accumulate.onednn_conv_acc(p0, np.ones((p0.shape[0] * 9, 1), np.uint8), w, 0, 24, 0, 7, 0, saturates)
            assert np.array_equal(np.asarray(got, np.int64), want)
    finally:
        accumulate.set_backend("numpy")


def test_weight_cache_entries_go_with_their_weights():
    """Per-weight caches (packed oneDNN weights, 4-D views of conv1d weights, bounds) leave when
    the weight does: lowering many programs in one process does not pile them up."""
    import gc

    from qgolden.numerics.profile import make_profile
    from qgolden.ops.conv import conv_accumulate

    before = len(accumulate._WCACHE)
    accumulate.set_backend("torch")
    try:
        for i in range(20):
            rng = np.random.default_rng(i)
            w = rng.integers(-128, 128, (8, 4, 3)).astype(np.int8)  # conv1d
            x = rng.integers(0, 256, (2, 4, 10)).astype(np.uint8)
            conv_accumulate(x, w, 0, np.zeros(8, np.int64), 1, 1, 1, 1, make_profile("fbgemm", "avx2"))
            del w
    finally:
        accumulate.set_backend("numpy")
    gc.collect()
    assert len(accumulate._WCACHE) <= before
