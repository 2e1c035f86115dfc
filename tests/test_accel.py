"""The torch-accelerated accumulation gives the same integers as the NumPy path and as PyTorch."""
import numpy as np
import pytest
import torch

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
