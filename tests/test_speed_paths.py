"""The speed paths give the reference paths' bits: the blocked, multi-threaded output stage (the
reference: the same function with a trace, which takes the float64 route and records every step),
and the float32 GEMM in weight-sized K chunks (the reference: int64 matmul)."""
import numpy as np
import pytest

from qgolden.numerics import accumulate, parallel
from qgolden.numerics.requantize import requantize_onednn


def _case(seed):
    """Accumulators and scales placed on exact requantization ties now and then (so = c*sx*sw),
    odd channel counts around the vector and tile widths, bias or none, relu or none."""
    rng = np.random.default_rng(seed)
    n = int(rng.choice([1, 3, 7, 8, 15, 16, 17, 63, 64, 65, 100, 1000, 2049]))
    m = int(rng.choice([1, 5, 31, 64, 333, 4097]))
    acc = rng.integers(-2**20, 2**20, (m, n))
    if rng.random() < 0.3:
        acc[rng.random((m, n)) < 0.05] = rng.choice([2**31 - 1, -2**31, 2**24 + 1, -(2**24) - 3])
    sx = float(rng.uniform(0.001, 0.1))
    per_channel = bool(rng.random() < 0.5)
    sw = rng.uniform(1e-4, 1e-2, n if per_channel else 1)
    so = float(sx * sw[0] * rng.choice([0.5, 2.0, 64.0, 1000.0, rng.uniform(10, 5000)]))
    if rng.random() < 0.1:
        so = 1e-30  # everything saturates (inf after the reciprocal)
    bias = rng.normal(0, 50, n).astype(np.float32) if rng.random() < 0.6 else None
    kw = dict(x_scale=sx, weight_scale=sw, out_scale=so, out_zero_point=int(rng.integers(0, 256)), bias=bias,
              per_channel=per_channel, relu=bool(rng.random() < 0.5))
    return acc, kw


@pytest.mark.parametrize("seed", range(60))
@pytest.mark.parametrize("kernel", ["combined", "sequential", "ref"])
def test_onednn_blocked_equals_reference(seed, kernel, monkeypatch):
    acc, kw = _case(seed)
    ref = requantize_onednn(acc, kernel=kernel, trace={}, **kw)
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("QGOLDEN_NUM_THREADS", threads)
        for a in (acc, acc.astype(np.int32), acc.astype(np.float32) if np.abs(acc).max() < 2**24 else acc):
            got = requantize_onednn(a, kernel=kernel, **kw)
            assert got.dtype == np.uint8 and np.array_equal(got, ref), (seed, kernel, threads, a.dtype)


def test_row_blocks_cover_every_row_once():
    for rows, row_elems, step in ((0, 5, 1), (1, 64, 32), (100000, 64, 32), (777, 3, 682), (5, 100000, 1)):
        blocks = parallel.row_blocks(rows, row_elems, step)
        covered = np.zeros(rows, int)
        for r0, r1 in blocks:
            covered[r0:r1] += 1
            assert r0 % step == 0
        assert (covered == 1).all()


@pytest.mark.parametrize("seed", range(30))
def test_weight_chunked_float32_gemm_is_exact(seed):
    """Long K and full-range values, so one float32 GEMM could round: the chunks keep it exact."""
    rng = np.random.default_rng(seed)
    k = int(rng.choice([2304, 4608, 9000]))
    n = int(rng.choice([1, 7, 64, 129]))
    m = int(rng.choice([33, 300]))
    x = rng.integers(int(rng.choice([0, 200])), 256, (m, k)).astype(np.uint8)
    values = [127, 120, 100, 3, 0] if seed % 2 else [-128, 127, -120, 100, 3, 0]  # one sign: sums beyond 2**24
    w = rng.choice(values, (n, k)).astype(np.int8)
    got = accumulate.matmul_weight_exact(x, w)
    want = x.astype(np.int64) @ w.astype(np.int64).T
    assert got.dtype == np.int64 and np.array_equal(got, want)
    xa = int(x.max())
    assert xa * int(np.abs(w.astype(np.int64)).sum(axis=1).max()) >= 2**24  # one float32 GEMM could round
    assert len(accumulate.weight_k_chunks(w, xa)) > 2  # so the chunks ran
    if seed % 2 and k >= 4608:
        assert int(want.max()) >= 2**24  # and some sums do leave float32's exact range
