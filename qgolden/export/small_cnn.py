"""A small quantized CNN (conv, depthwise conv on FBGEMM's depthwise fast path, max pool, adaptive
average pool, linear) used by the export benchmark and tests: build(engine) -> (model, [x])."""
from __future__ import annotations

import numpy as np


def build(engine: str = "x86", seed: int = 0, size: int = 16):
    import torch
    from torch import nn
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    from ..torch_side import engine as use_engine

    torch.manual_seed(seed)

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
            self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
            self.pool = nn.MaxPool2d(2)
            self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
            self.gap = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(16, 10)
            self.r1, self.r2, self.r3 = nn.ReLU(), nn.ReLU(), nn.ReLU()

        def forward(self, x):
            x = self.r1(self.conv1(x))
            x = self.r2(self.dw(x))
            x = self.pool(x)
            x = self.r3(self.conv2(x))
            return self.fc(torch.flatten(self.gap(x), 1))

    m = CNN().eval()
    calib = torch.randn(16, 3, size, size)
    with use_engine(engine):
        prepared = prepare_fx(m, get_default_qconfig_mapping(engine), example_inputs=(calib,))
        prepared(calib)
        q = convert_fx(prepared)
    x = (np.random.default_rng(seed).standard_normal((1, 3, size, size)) * 1.5).astype(np.float32)
    return q, [x]
