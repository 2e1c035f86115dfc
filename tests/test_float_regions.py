"""Float ops that PT2E runtimes leave in float32, reproduced bit for bit where qgolden claims it."""
import itertools

import numpy as np
import pytest
import torch

from qgolden.numerics.profile import make_profile
from qgolden.ops.qdq import float_conv, onednn_f32_1x1_kernel


@pytest.mark.parametrize("c,k,stride,pad,dil,bias", list(itertools.product([1, 3, 8, 13], [1, 3, 5], [1, 2], [0, 2], [1, 2], [True, False])))
@pytest.mark.parametrize("h", [11, 12])
def test_float_depthwise_conv_bit_exact(c, k, stride, pad, dil, bias, h):
    """Live torch on this host, with this host's CPU class (one channel: oneDNN's plain or 1x1 kernel)."""
    if k == 1 and c > 1 and pad:
        pytest.skip("a padded 1x1 depthwise conv does not run oneDNN's depthwise kernel: not modelled")
    g = torch.Generator().manual_seed(c * 100 + k * 10 + stride + pad + dil + h)
    x = torch.randint(-60, 60, (2, c, h, h), generator=g).float() * 0.0173
    w = torch.randint(-127, 127, (c, 1, k, k), generator=g).float() * 0.0091
    b = torch.randn(c, generator=g) * 0.3 if bias else None
    ref = torch.nn.functional.conv2d(x, w, b, stride, pad, dil, c).numpy()
    ours = float_conv(x.numpy(), weight=w.numpy(), bias=None if b is None else b.numpy(), stride=[stride] * 2,
                      padding=[pad] * 2, dilation=[dil] * 2, groups=c, profile=make_profile("pt2e-reference"))
    assert ours.dtype == np.float32 and np.array_equal(ours.view(np.int32), ref.view(np.int32))


def test_onednn_f32_1x1_kernel_rule():
    assert onednn_f32_1x1_kernel((12, 12), (1, 1), (2, 2), (0, 0))
    assert not onednn_f32_1x1_kernel((11, 12), (1, 1), (2, 2), (0, 0))  # 11 rows: no unit-stride copy
    assert not onednn_f32_1x1_kernel((12, 12), (1, 1), (1, 1), (1, 1))  # padded
    assert not onednn_f32_1x1_kernel((12, 12), (3, 3), (1, 1), (0, 0))


@pytest.mark.parametrize("h,w", [(1, 1), (2, 3), (3, 3), (4, 4), (5, 7), (7, 7), (8, 8), (11, 13), (14, 14),
                                 (28, 28), (56, 56), (3, 100)])
def test_float_mean_and_global_pool_bit_exact(h, w):
    from qgolden.ops.qdq import float_adaptive_avg_pool, float_mean

    g = torch.Generator().manual_seed(h * 1000 + w)
    x = torch.randn(2, 5, h, w, generator=g) * 3
    ref = x.mean((-1, -2), keepdim=True).numpy()
    assert np.array_equal(float_mean(x.numpy(), dim=[-2, -1], keepdim=True), ref)
    assert np.array_equal(float_adaptive_avg_pool(x.numpy(), output_size=[1, 1]),
                          torch.nn.functional.adaptive_avg_pool2d(x, 1).numpy())
    assert np.array_equal(float_mean(x.numpy(), dim=[3], keepdim=False), x.mean(3).numpy())
