"""The integer-only program's fast paths give the reference paths' integers.

requantize_int without a trace runs integer/blocked.py (channel last, row blocks on every core,
per-channel constants prepared once); with a trace, the reference (requant.apply_plan, one
parameter gather per element). Random parameters cover every channel kind (multiplier, bias per
segment, thresholds), every rounding, accumulator values on the steps and at the int32 ends,
odd channel counts, NCHW views of NHWC memory, and parameters the fast path must refuse."""
import numpy as np
import pytest

from qgolden import ops
from qgolden.integer import blocked as B
from qgolden.integer.fixedpoint import ROUNDINGS

REQ = ops.get("requantize_int")


def _steps(m, n, k, zo, levels):
    """Where clamp(((acc*M0 + K) >> n) + zo) reaches each level (half_up form, exact ints)."""
    return np.array([-(((k - ((int(L) - zo) << n))) // m) for L in levels], np.int64)


def random_params(rng, channels, rounding, monotone_segments=True, near=None, log_slopes=(-4, -0.5), extra=None):
    """requantize_int parameters shaped like transform.py's: a multiplier per channel, some
    channels with thresholds (near the multiplier's steps or anywhere), some with a bias per segment."""
    out_min, out_max = [(0, 255), (-128, 127), (0, 255)][rng.integers(3)]
    zo = int(rng.integers(out_min, out_max + 1))
    slope = 10.0 ** rng.uniform(*log_slopes, channels)  # output levels per accumulator unit
    top = np.floor(np.log2((2.0**31 - 1) / slope)).astype(np.int64)
    shift = np.maximum(top - rng.integers(0, 3, channels), 31 if rounding == "tflite" else 1)
    mult = np.clip(np.round(slope * 2.0**shift), 1, 2**31 - 1).astype(np.int64)
    shift = np.minimum(shift, 62)
    bias = rng.integers(-2**20, 2**20, channels)
    frac = np.array([rng.integers(0, m) for m in mult], np.int64)
    if rounding == "tflite":
        frac[:] = 0
    levels = np.arange(out_min + 1, out_max + 1)
    if extra is None:  # thresholds per row != levels now and then
        extra = int(rng.choice([0, 0, 0, 3, -5])) if levels.size > 5 else 0
    thr = np.sort(rng.integers(-2**31, 2**31, (channels, levels.size + extra)), axis=1)
    near = rng.random() < 0.7 if near is None else near
    for c in range(channels):
        if near:
            k = int(bias[c]) * int(mult[c]) + int(frac[c]) + (1 << (int(shift[c]) - 1))
            t = _steps(int(mult[c]), int(shift[c]), k, zo, levels)
            t = t + rng.choice([0, 0, 0, -1, 1, 3], t.size)
            t = np.concatenate([t, np.full(max(extra, 0), t[-1])])[:thr.shape[1]]
            thr[c] = np.sort(np.clip(t, -2**38, 2**38))
    use_table = rng.random(channels) < rng.choice([0.0, 0.1, 0.4, 0.9])
    p = dict(multiplier=mult, shift=shift, bias=bias, frac=frac, use_table=use_table, thresholds=thr,
             out_zero_point=zo, out_min=out_min, out_max=out_max, rounding=rounding, bits=32)
    if rng.random() < 0.8:
        s = int(rng.integers(1, 14))
        bounds = np.sort(rng.integers(-2**24, 2**24, (channels, s)), axis=1)
        bounds[:, s - int(rng.integers(0, min(s, 3))):] = 1 << 38  # padding, as plan_layer writes it
        bounds = np.sort(bounds, axis=1)
        step = rng.integers(0, 3, (channels, s + 1)) if monotone_segments else rng.integers(-50, 50, (channels, s + 1))
        p.update(use_segments=rng.random(channels) < rng.choice([0.1, 0.5, 1.0]), seg_bounds=bounds,
                 seg_bias=bias[:, None] + np.cumsum(step, axis=1),
                 seg_frac=np.array([rng.integers(0, m, s + 1) for m in mult], np.int64))
    return p


def random_acc(rng, rows, p, dtype):
    """Accumulators [rows, C]: spread values, values on and next to the thresholds and segment
    starts, and the int32 ends."""
    c = p["multiplier"].size
    acc = rng.integers(-2**24, 2**24, (rows, c))
    t = p["thresholds"]
    pick = rng.random((rows, c)) < 0.3
    at = t[np.arange(c)[None, :], rng.integers(0, t.shape[1], (rows, c))] + rng.integers(-1, 2, (rows, c))
    acc = np.where(pick, at, acc)
    if "seg_bounds" in p:
        sb = p["seg_bounds"]
        at = sb[np.arange(c)[None, :], rng.integers(0, sb.shape[1], (rows, c))] + rng.integers(-1, 1, (rows, c))
        acc = np.where((rng.random((rows, c)) < 0.2) & (at < 2**31 - 1), at, acc)
    ends = rng.random((rows, c)) < rng.choice([0.0, 0.0, 0.001, 0.02])
    acc = np.where(ends, rng.choice([-2**31, 2**31 - 1, -2**31 + 1, 2**31 - 2], (rows, c)), acc)
    return np.clip(acc, -2**31, 2**31 - 1).astype(dtype)


def _both(acc, p, axis=-1, dtype="uint8"):
    kw = dict(p, axis=axis, dtype=dtype)
    return REQ(acc, **kw), REQ(acc, **kw, trace={})


@pytest.mark.parametrize("seed", range(40))
def test_requantize_int_fast_equals_reference(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    rounding = ROUNDINGS[seed % len(ROUNDINGS)]
    channels = int(rng.choice([1, 3, 7, 16, 17, 64, 65, 300]))
    p = random_params(rng, channels, rounding, monotone_segments=seed % 5 != 4)
    rows = int(rng.choice([1, 5, 33, 700, 2049]))
    out_dt = "int8" if p["out_min"] < 0 else "uint8"
    assert B.cached_prepare(p, channels) is not None  # the fast path runs: no silent fallback
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("QGOLDEN_NUM_THREADS", threads)
        for dt in (np.int32, np.int64):
            acc = random_acc(rng, rows, p, dt)
            got, want = _both(acc, p, dtype=out_dt)
            assert got.dtype == want.dtype and np.array_equal(got, want), (seed, threads, dt)


@pytest.mark.parametrize("seed", range(12))
def test_conv_layout_and_axis(seed):
    """A conv's accumulator: NCHW view of NHWC memory (conv_acc), or contiguous NCHW; channel axis 1."""
    rng = np.random.default_rng(100 + seed)
    c = int(rng.choice([3, 16, 33]))
    p = random_params(rng, c, "half_up")
    n, h, w = 2, int(rng.integers(1, 9)), int(rng.integers(1, 9))
    nhwc = random_acc(rng, n * h * w, p, np.int32).reshape(n, h, w, c)
    out_dt = "int8" if p["out_min"] < 0 else "uint8"
    for acc in (nhwc.transpose(0, 3, 1, 2), np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))):
        got, want = _both(acc, p, axis=1, dtype=out_dt)
        assert got.shape == want.shape == (n, c, h, w) and np.array_equal(got, want)


def test_out_of_range_accumulators_take_the_reference():
    """int64 values beyond the fast path's range: the reference's own integers (its offset rows included)."""
    rng = np.random.default_rng(5)
    p = random_params(rng, 9, "half_up")
    acc = random_acc(rng, 50, p, np.int64)
    acc[3, 4] = 1 << 45
    acc[7, 0] = -(1 << 41)
    dt = "int8" if p["out_min"] < 0 else "uint8"
    if "seg_bounds" in p:  # the reference's segment search leaves its rows there: both raise alike
        with pytest.raises(IndexError):
            REQ(acc, **p, dtype=dt)
        for key in ("use_segments", "seg_bounds", "seg_bias", "seg_frac"):
            p.pop(key)
    got, want = _both(acc, p, dtype=dt)
    assert np.array_equal(got, want)


def test_parameters_the_fast_path_refuses():
    """Unsorted thresholds, out-of-range shifts, mis-shaped rows: prepare() says no, the reference runs."""
    rng = np.random.default_rng(9)
    p = random_params(rng, 6, "half_up")
    p["use_table"] = np.ones(6, bool)
    bad = dict(p, thresholds=p["thresholds"][:, ::-1].copy())
    assert B.prepare(bad, 6) is None
    assert B.prepare(dict(p, shift=np.full(6, 63)), 6) is None
    assert B.prepare(dict(p, multiplier=p["multiplier"][:5]), 6) is None
    acc = random_acc(rng, 40, p, np.int32)
    for q in (bad, dict(p, shift=np.full(6, 63))):
        got, want = _both(acc, q, dtype="int8" if p["out_min"] < 0 else "uint8")
        assert np.array_equal(got, want)


@pytest.mark.parametrize("seed", range(30))
def test_segment_thresholds_against_every_value(seed):
    """The closed-form thresholds of the segment staircases, against the staircase evaluated on
    every value of a small span; a staircase that steps down is refused."""
    rng = np.random.default_rng(200 + seed)
    span = int(rng.integers(50, 3000))
    j = int(rng.integers(1, 5))
    out_min, out_max = (0, 255) if seed % 2 else (-128, 127)
    zo = int(rng.integers(out_min, out_max + 1))
    mult = rng.integers(1, 2**31 - 1, j)
    shift = np.array([int(rng.integers(20, 40)) for _ in range(j)])
    s = int(rng.integers(0, 6))
    bounds = np.sort(rng.integers(-span - 10, span + 10, (j, s)), axis=1)
    mono = seed % 3 != 0
    ks = [[int(v) for v in sorted(rng.integers(-2**50, 2**50, s + 1), reverse=not mono)] for _ in range(j)]
    got = B.segment_thresholds(mult, shift, ks, bounds, zo, out_min, out_max, span)
    acc = np.arange(-span, span + 1)
    levels = np.arange(out_min + 1, out_max + 1)
    ok = True
    for c in range(j):
        seg = np.searchsorted(bounds[c], acc, side="right")
        f = np.clip(np.array([(int(a) * int(mult[c]) + ks[c][i]) >> int(shift[c]) for a, i in zip(acc, seg)]) + zo,
                    out_min, out_max)
        if np.any(np.diff(f) < 0):
            ok = False
            continue
        if got is not None:
            count = (acc[:, None] >= got[c][None, :]).sum(axis=1)
            assert np.array_equal(out_min + count, f)
            want_t = [acc[np.argmax(f >= L)] if np.any(f >= L) else span + 1 for L in levels]
            assert np.array_equal(got[c], want_t)
    assert (got is not None) == ok


@pytest.mark.parametrize("seed", range(10))
def test_counts_from_any_guess(seed):
    """Counting from a guess: right from a good guess, a bad one, or one far off (searchsorted
    finishes); channels without thresholds never move."""
    rng = np.random.default_rng(300 + seed)
    c, L = int(rng.integers(1, 40)), int(rng.integers(1, 300))
    t = np.sort(rng.integers(-2**30, 2**30, (c, L)), axis=1)
    t[:, rng.integers(0, L):] = t[:, -1:]  # repeated thresholds (levels never reached)
    cols = np.flatnonzero(rng.random(c) < 0.7)
    width = L + int(rng.integers(1, 4))
    k = B.ChannelConstants(c, *[np.zeros(c, np.int64)] * 4, None, 0, 0, width - 1, "half_up", 32, [],
                           *[np.zeros(0, np.int64)] * 2, 0, *[np.zeros(0, np.int64)] * 2, None, width=width)
    k.low, k.high = B.wide_rows(c, width, [B.Counted(cols, B._ends(t[cols]), L)])
    x = rng.integers(-2**31, 2**31, (int(rng.integers(1, 500)), c))
    x[: x.shape[0] // 3] = t[np.arange(c), rng.integers(0, L, c)]  # on the steps
    counted = np.isin(np.arange(c), cols)
    for guess in (None, rng.integers(-1, 2, x.shape), rng.integers(0, width, x.shape)):
        want = np.stack([np.searchsorted(t[j], x[:, j], side="right") for j in range(c)], axis=1)
        start = np.clip(want + guess if guess is not None and guess.max() < 2 else
                        (want if guess is None else guess), 0, width - 1)
        idx = (start + np.arange(c) * width).astype(np.int64)
        got = B.correct_counts(x.reshape(-1).astype(np.int64), idx.reshape(-1).copy(), k.low, k.high, width,
                               lambda: B.offset_levels({}, k.high, c, width)).reshape(x.shape) - np.arange(c) * width
        assert np.array_equal(got[:, counted], want[:, counted])
        assert np.array_equal(got[:, ~counted], start[:, ~counted])


def _small_cnn(seed=0):
    """conv -> bn -> relu -> conv (stride 2) -> bn, quantized with FX (x86 qconfig, per-channel
    weights), random weights calibrated on random data, and its input."""
    import torch
    from torch import nn
    from torch.ao.quantization import QConfigMapping, get_default_qconfig
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    from qgolden.torch_side import engine

    torch.manual_seed(seed)
    m = nn.Sequential(nn.Conv2d(3, 24, 3, 1, 1, bias=False), nn.BatchNorm2d(24), nn.ReLU(),
                      nn.Conv2d(24, 40, 3, 2, 1, bias=False), nn.BatchNorm2d(40)).eval()
    x = torch.randn(2, 3, 17, 19)
    with engine("x86"):
        p = prepare_fx(m, QConfigMapping().set_global(get_default_qconfig("x86")), (x,))
        with torch.no_grad():
            p(x)
        return convert_fx(p), x


def test_certified_layers_take_the_counted_segment_path():
    """Certified conv layers with binade segments (oneDNN's AMX output stage): their staircases become
    thresholds (no per-element segment search), and the program's integers are the reference's."""
    import qgolden
    from qgolden.integer import to_integer_only

    q, x = _small_cnn()
    prog = to_integer_only(qgolden.lower(q, example_inputs=(x,), engine="x86", isa="avx512_amx"))
    seen = 0
    for n in prog.nodes:
        if n.op != "requantize_int" or n.consts.get("use_segments") is None or not np.any(n.consts["use_segments"]):
            continue
        channels = np.asarray(n.consts["multiplier"]).size
        k = B.cached_prepare(dict(n.consts, **n.attrs), channels)
        assert k is not None and k.seg_cols.size == 0 and len(k.counted) >= 1
        seen += 1
    assert seen
    xs = x.numpy()
    fast, env = prog.run(xs, keep=True)
    ref, env_ref = prog.run(xs, keep=True, trace={})
    assert np.array_equal(fast.view(np.int32), ref.view(np.int32))
    assert all(np.array_equal(env[k], env_ref[k]) for k in env)


# -- lookups: lut, lut2, quantize_thr ------------------------------------------------------------------

LUT, LUT2, QTHR = ops.get("lut"), ops.get("lut2"), ops.get("quantize_thr")


@pytest.mark.parametrize("seed", range(12))
def test_lut_ops_fast_equal_reference(seed):
    """Byte / uint16 indices and tables cast once give the reference's integers: both 8-bit dtypes,
    out-of-range table values (cast like the reference), scalar-tail tables, broadcast b, memory orders."""
    from qgolden.numerics.profile import make_profile

    rng = np.random.default_rng(400 + seed)
    dt = ["uint8", "int8"][seed % 2]
    in_min = 0 if dt == "uint8" else -128
    out_dt = ["uint8", "int8", "int32"][seed % 3]
    prof = make_profile("x86")
    shape = (2, int(rng.integers(1, 40)), int(rng.integers(1, 9)), int(rng.integers(1, 9)))
    a = rng.integers(in_min, in_min + 256, shape).astype(dt)
    b = rng.integers(in_min, in_min + 256, shape).astype(dt)
    t1 = rng.integers(-300, 300, 256)
    t2 = rng.integers(-300, 300, 65536)
    for order in (None, [0, 2, 3, 1]):
        for scalar in (False, True):
            kw = dict(in_min=in_min, order=order, dtype=out_dt, profile=prof)
            s1 = dict(scalar_table=rng.integers(0, 256, 256)) if scalar else {}
            s2 = dict(scalar_table=rng.integers(0, 256, 65536)) if scalar else {}
            got, want = LUT(a, table=t1, **s1, **kw), LUT(a, table=t1, **s1, **kw, trace={})
            assert got.dtype == want.dtype and np.array_equal(got, want)
            for bb in (b, b[:, :, :1, :1].copy()):
                got, want = LUT2(a, bb, table=t2, **s2, **kw), LUT2(a, bb, table=t2, **s2, **kw, trace={})
                assert got.dtype == want.dtype and np.array_equal(got, want)


def _float_inputs(rng, thresholds):
    """float32 values: spread over many binades, exactly on the thresholds and one ulp below, ±0,
    ±inf, NaNs (quiet, signalling, negative, 0x7fffffff), subnormals."""
    from qgolden.integer.fixedpoint import key_to_float32

    spread = (rng.standard_normal(3000) * 10.0 ** rng.integers(-6, 6, 3000)).astype(np.float32)
    t = np.asarray(thresholds)
    t = t[(t >= -(2**31)) & (t < 2**31)]
    on = key_to_float32(np.concatenate([t, t - 1, t + 1]))
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 3e38, -3e38], np.float32)
    nans = np.array([0x7FC00000, 0x7F800001, 0xFFC00000, 0x7FFFFFFF, 0xFFFFFFFF], np.uint32).view(np.float32)
    return np.concatenate([special, nans, on, spread]).astype(np.float32)


@pytest.mark.parametrize("seed", range(12))
def test_quantize_thr_fast_equals_reference(seed):
    """The bucket-table count gives the reference's integers; thresholds beyond int32 (clamped),
    wrap keys, NaN patterns; thresholds the fast path refuses (unsorted, crowded buckets) fall back."""
    from qgolden.integer import fastlut
    from qgolden.integer.fixedpoint import float32_keys

    rng = np.random.default_rng(500 + seed)
    scale = float(10.0 ** rng.uniform(-4, 1))
    levels = np.arange(0.5, 255.5) * scale * float(rng.choice([1.0, -1.0]))
    t = np.sort(float32_keys(np.asarray(levels, np.float32).view(np.int32)))
    if seed % 4 == 1:
        t[:3] = -(2**33)
        t[-2:] = 2**33
    kw = dict(thresholds=t, out_min=int(rng.integers(-128, 1)), nan_value=int(rng.integers(0, 256)), dtype="int32")
    if seed % 3 == 0:
        kw.update(wrap_key=int(t[200]), wrap_value=-(2**31))
    assert fastlut.bucket_counts_plan(t) is not None
    x = _float_inputs(rng, t)
    x = x[: x.size // 7 * 7].reshape(-1, 7)
    got, want = QTHR(x, **kw), QTHR(x, **kw, trace={})
    assert np.array_equal(got, want)
    crowded = np.sort(rng.integers(0, 1 << 12, 255))  # all in one 2**16-wide bucket
    assert fastlut.bucket_counts_plan(crowded) is None
    assert fastlut.bucket_counts_plan(t[::-1].copy()) is None
    for tt in (crowded, t[::-1].copy()):
        k2 = dict(kw, thresholds=tt)
        assert np.array_equal(QTHR(x, **k2), QTHR(x, **k2, trace={}))


@pytest.mark.parametrize("seed", range(16))
def test_line_guess_is_proved_or_checked(seed):
    """int32 accumulators (requantize_block32): the float32 line's rint is kept only where it is
    proved; on and next to every threshold of every channel, near the float32 precision edge (2**24)
    and at the int32 ends the result is the reference's, and most elements take the proved path."""
    rng = np.random.default_rng(600 + seed)
    channels = int(rng.choice([1, 5, 16, 33, 64]))
    p = random_params(rng, channels, "half_up", monotone_segments=True, near=True, log_slopes=(-4, -2),
                       extra=0)
    if seed % 4 == 0:  # thresholds reaching beyond int32 and whole rows outside it
        p["use_table"] = rng.random(channels) < 0.5
        p["thresholds"][:, :3] = -(2**35)
        p["thresholds"][0, :] = 2**34
    k = B.cached_prepare(p, channels)
    assert k is not None and k.counted32 is not None and B.checked_share(k.counted32) < B.MAX_CHECKED_SHARE
    out_dt = "int8" if p["out_min"] < 0 else "uint8"
    # every threshold of every channel (the count rows), and two values either side
    rows = k.counted32["high"].reshape(channels, k.counted32["width"])[:, :-1]
    near = (rows[:, :, None] + np.arange(-2, 3)).reshape(channels, -1)
    near = np.clip(near, -2**31, 2**31 - 1).T
    wide = rng.integers(-2**31, 2**31, (300, channels))
    edge = rng.choice([2**24 - 1, 2**24, 2**24 + 1, -(2**24) - 1, 2**31 - 1, -(2**31), 2**31 - 2], (50, channels))
    for acc in (near, wide, edge):
        acc = np.ascontiguousarray(acc).astype(np.int32)
        got, want = _both(acc, p, dtype=out_dt)
        assert np.array_equal(got, want), seed
    # the proof does the work: on values spread over the thresholds few elements are checked
    inside = np.where((rows > -2**31) & (rows < 2**31), rows, 0)
    x = rng.integers(inside.min(axis=1), inside.max(axis=1) + 1, (2048, channels)).astype(np.int32)
    flagged = []
    B.requantize_block32(x, k, np.empty(x.shape, np.dtype(out_dt)), flagged)
    assert sum(f.size for f in flagged) < x.size // 2


def test_affine_fit_bounds_and_constant_rows():
    """Counts below/above int32 go into the output bounds; a row with one output whatever x is
    needs no line; strays are measured against the line."""
    t = np.array([[-(2**40), -(2**40), 10, 20, 30, 2**40],
                  [-(2**40)] * 3 + [2**40] * 3,
                  [5, 105, 205, 300, 405, 505]], np.int64)
    f = B.affine_fit(t, 0)
    assert list(f["out_lo"]) == [2, 3, 0] and list(f["out_hi"]) == [5, 3, 6]
    assert f["stray"][1] == 0 and f["slope"][1] == 0
    assert 2.49 < f["stray"][2] < 2.51  # 300 is 5 below the line through 5 and 505: centred, 2.5 either way


def test_progress_reports_every_op_and_stays_off_the_pipe(forum_model):
    """certify / lower --integer-only report each op to a progress callback, once more at the end;
    op_progress gives no bar (None) when stderr is not a terminal, as under pytest, and a working
    callback when forced."""
    import qgolden
    from qgolden.examples.forum import INPUTS
    from qgolden.integer import certify, to_integer_only
    from qgolden.progress import op_progress

    prog = qgolden.lower(forum_model, example_inputs=(INPUTS,), engine="x86")
    seen = []
    cert = certify(prog, progress=lambda done, total, name: seen.append((done, total, name)))
    total = seen[0][1]
    assert [d for d, _, _ in seen] == list(range(total + 1)) and all(t == total for _, t, _ in seen)
    assert {n for _, _, n in seen[:-1]} >= {c.name for c in cert.ops}
    with op_progress("certify") as progress:
        assert progress is None
    with op_progress("lower --integer-only", force=True) as progress:
        ip = to_integer_only(prog, progress=progress)
    assert np.array_equal(ip.run(INPUTS), prog.run(INPUTS))


def test_rows_without_a_line_are_checked():
    """A table channel with one step inside int32 (or two at the same value) has no line: every one
    of its elements is checked, none passes on the line's word."""
    c = 12
    t = np.full((c, 255), 2**38, np.int64)
    t[:, :7] = -(2**38)
    t[0, 7] = 1000  # one step inside int32
    t[1, 7:9] = 5  # two equal steps
    t[2:, 7:] = np.arange(248) * 300  # ordinary rows
    p = dict(multiplier=np.full(c, 1 << 20), shift=np.full(c, 30), bias=np.zeros(c, np.int64),
             frac=np.zeros(c, np.int64), use_table=np.ones(c, bool), thresholds=t, out_zero_point=0,
             out_min=0, out_max=255, rounding="half_up", bits=32)
    k = B.cached_prepare(p, c)
    assert k.counted32 is not None and np.isinf(k.counted32["stray"][:2]).all()
    assert (B.safe_distance(k.counted32, 1 << 20)[:2] < 0).all()
    acc = np.repeat(np.array([-3, 0, 4, 5, 6, 999, 1000, 1001, 40000, -40000], np.int32)[:, None], c, axis=1)
    got, want = _both(np.ascontiguousarray(acc), p)
    assert np.array_equal(got, want)
