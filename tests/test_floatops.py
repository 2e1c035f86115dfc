"""fma32 (one rounding) against its exact route, on random data and on the double-rounding
cases that make the plain float64 sum wrong."""
import numpy as np
import pytest

from qgolden.numerics.floatops import _fma32_exact, fma32


def _same(x, y):
    return bool(((x.view(np.int32) == y.view(np.int32)) | (np.isnan(x) & np.isnan(y))).all())


def test_fma32_double_rounding_midpoint():
    """v = 1 + 3*2**-24 - 2**-70: float64 rounds it onto the float32 midpoint, which then ties
    to even (1 + 2**-22); the single rounding gives 1 + 2**-23."""
    a, b, c = np.float32(2.0**-24 * (1 + 2.0**-23)), np.float32(1 - 2.0**-23), np.float32(1 + 2.0**-23)
    assert np.float32(np.float64(a) * np.float64(b) + np.float64(c)) == np.float32(1 + 2.0**-22)
    assert fma32(a, b, c) == np.float32(1 + 2.0**-23)
    n = 1000  # the same construction at other scales and signs
    e = np.random.default_rng(0).integers(-20, 20, n).astype(np.float64)
    sign = np.where(np.arange(n) % 2, 1.0, -1.0)
    a = (sign * 2.0 ** (e - 24) * (1 + 2.0**-23)).astype(np.float32)
    c = (sign * 2.0**e * (1 + 2.0**-23)).astype(np.float32)
    want = (sign * 2.0**e * (1 + 2.0**-23)).astype(np.float32)
    assert np.array_equal(fma32(a, b, c), want)
    assert np.array_equal(_fma32_exact(a, b, c), want)


@pytest.mark.parametrize("seed", range(10))
def test_fma32_matches_exact_route(seed):
    rng = np.random.default_rng(seed)
    n = 50_000
    a = (rng.standard_normal(n) * 10 ** rng.uniform(-3, 3)).astype(np.float32)
    a[::97] = 0
    a[::101] = np.float32(1e-41)  # subnormal
    a[::103] = np.inf
    a[::107] = np.nan
    a[::109] = np.float32(3e38)
    b = np.float32(rng.uniform(0.5, 300))
    c = np.float32(rng.integers(0, 256))
    k = rng.integers(-300, 300, n) + 0.5  # near the ties quantization rounds at
    near = ((k - c) / b).astype(np.float32)
    for x in (a, near, np.nextafter(near, np.float32(np.inf)), np.nextafter(near, np.float32(-np.inf))):
        assert _same(fma32(x, b, c), _fma32_exact(x, b, c))
    bb = (rng.standard_normal(n) * 1e-20).astype(np.float32)
    cc = (rng.standard_normal(n) * 1e-38).astype(np.float32)
    assert _same(fma32(a, bb, cc), _fma32_exact(a, bb, cc))
    assert _same(fma32(np.float32(2), np.float32(3), cc), _fma32_exact(np.float32(2), np.float32(3), cc))
