"""Common PyTorch spellings of supported ops (functional, method, torch.*, operator) in convert_fx models:
each lowers and is bit-exact with PyTorch on the host's engine. The op table lists these spellings
(OpSpec.torch, the README's supported-ops list); a spelling listed there must be accepted here."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.ao.quantization import get_default_qconfig_mapping
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

import qgolden

SPELLINGS = {
    "F.avg_pool2d": lambda x: F.avg_pool2d(x, 2),
    "F.avg_pool2d(ceil, no pad count)": lambda x: F.avg_pool2d(x, 3, 2, 1, True, False),
    "F.max_pool2d": lambda x: F.max_pool2d(x, 2),
    "F.adaptive_avg_pool2d": lambda x: F.adaptive_avg_pool2d(x, 1),
    "torch.flatten": lambda x: torch.flatten(x, 1),
    "x.flatten": lambda x: x.flatten(1),
    "x.mean": lambda x: x.mean([2, 3]),
    "x.mean(keepdim)": lambda x: x.mean(dim=(2, 3), keepdim=True),
    "torch.mean": lambda x: torch.mean(x, [2, 3]),
    "F.hardswish": lambda x: F.hardswish(x),
    "F.hardswish(inplace)": lambda x: F.hardswish(x, inplace=True),
    "F.relu": lambda x: F.relu(x),
    "x.relu": lambda x: x.relu(),
    "x.relu_": lambda x: x.relu_(),
    "torch.relu": lambda x: torch.relu(x),
    "F.relu6": lambda x: F.relu6(x),
    "F.hardtanh": lambda x: F.hardtanh(x),
    "torch.clamp": lambda x: torch.clamp(x, -1, 1),
    "x.clamp": lambda x: x.clamp(-1, 1),
    "x.clip": lambda x: x.clip(-1, 1),
    "torch.add": lambda x: torch.add(x, x),
    "operator.add": lambda x: x + x,
    "x.add": lambda x: x.add(x),
    "torch.mul": lambda x: torch.mul(x, x),
    "operator.mul": lambda x: x * x,
    "x.mul": lambda x: x.mul(x),
    "torch.cat": lambda x: torch.cat([x, x], 1),
    "torch.sigmoid": lambda x: torch.sigmoid(x),
    "x.sigmoid": lambda x: x.sigmoid(),
    "torch.tanh": lambda x: torch.tanh(x),
    "F.leaky_relu": lambda x: F.leaky_relu(x),
    "F.elu": lambda x: F.elu(x),
    "F.hardsigmoid": lambda x: F.hardsigmoid(x),
    "F.interpolate": lambda x: F.interpolate(x, scale_factor=2),
    "x.reshape": lambda x: x.reshape(x.shape[0], -1),
    "torch.reshape": lambda x: torch.reshape(x, (x.shape[0], -1)),
    "x.permute": lambda x: x.permute(0, 2, 3, 1),
    "x.transpose": lambda x: x.transpose(1, 2),
    "x.squeeze": lambda x: F.adaptive_avg_pool2d(x, 1).squeeze(),
    "x.unsqueeze": lambda x: x.unsqueeze(1),
    "x[:, :2]": lambda x: x[:, :2],
    "x.contiguous": lambda x: x.contiguous(),
    "F.dropout": lambda x: F.dropout(x, 0.5, False),
    "x.chunk": lambda x: x.chunk(2, 1)[0],
    "torch.chunk": lambda x: torch.chunk(x, 2, 1)[1],
    "F.pixel_shuffle": lambda x: F.pixel_shuffle(x, 2),
}


class _Model(nn.Module):
    def __init__(self, f):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)
        self.f = f

    def forward(self, x):
        return self.f(self.conv(x))


@pytest.mark.parametrize("spelling", list(SPELLINGS))
def test_spelling_is_accepted_and_exact(spelling):
    torch.manual_seed(0)
    x = torch.randn(2, 4, 7, 7) * 2
    m = _Model(SPELLINGS[spelling]).eval()
    engine = torch.backends.quantized.engine
    p = prepare_fx(m, get_default_qconfig_mapping(engine), (x,))
    p(x)
    q = convert_fx(p)
    report = qgolden.verify(q, x, engine=engine)
    assert report.bit_exact, spelling
