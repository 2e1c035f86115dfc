"""Float ops that PT2E runtimes leave in float32, reproduced bit for bit where qgolden claims it."""
import itertools

import numpy as np
import pytest
import torch

from qgolden.ops.qdq import float_conv


@pytest.mark.parametrize("c,k,stride,pad,dil,bias", list(itertools.product([1, 3, 8, 13], [3, 5], [1, 2], [0, 2], [1, 2], [True, False])))
def test_float_depthwise_conv_bit_exact(c, k, stride, pad, dil, bias):
    g = torch.Generator().manual_seed(c * 100 + k * 10 + stride + pad + dil)
    h = 11
    x = torch.randint(-60, 60, (2, c, h, h), generator=g).float() * 0.0173
    w = torch.randint(-127, 127, (c, 1, k, k), generator=g).float() * 0.0091
    b = torch.randn(c, generator=g) * 0.3 if bias else None
    ref = torch.nn.functional.conv2d(x, w, b, stride, pad, dil, c).numpy()
    ours = float_conv(x.numpy(), weight=w.numpy(), bias=None if b is None else b.numpy(), stride=[stride] * 2,
                      padding=[pad] * 2, dilation=[dil] * 2, groups=c)
    assert ours.dtype == np.float32 and np.array_equal(ours.view(np.int32), ref.view(np.int32))


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
