"""A small ResNet-50-like network (torchvision's Bottleneck: 1x1 reduce, 3x3, 1x1 expand, strided 1x1
downsample, residual add + ReLU) quantized for the x86 engine, eager and FX, against PyTorch on this
machine. Batch 1 and 2 (oneDNN runs 1x1 convs of one image through another kernel on AMX), and a
variant whose output scales sit on requantization ties (s_y = 2 * s_x * s_w), so the order in which a
kernel applies the scales decides the rounding of every odd accumulator."""
import numpy as np
import pytest
import torch
from torch import nn

import qgolden


class Bottleneck(nn.Module):
    def __init__(self, cin, width, stride, eager):
        super().__init__()
        cout = width * 4
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu1, self.relu2, self.relu3 = nn.ReLU(), nn.ReLU(), nn.ReLU()
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.add = torch.ao.nn.quantized.FloatFunctional() if eager else None

    def forward(self, x):
        y = self.relu1(self.bn1(self.conv1(x)))
        y = self.relu2(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        idn = x if self.down is None else self.down(x)
        y = self.add.add(y, idn) if self.add is not None else y + idn
        return self.relu3(y)


class Net(nn.Module):
    def __init__(self, eager):
        super().__init__()
        self.quant = torch.ao.quantization.QuantStub()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.layers = nn.Sequential(Bottleneck(16, 8, 1, eager), Bottleneck(32, 8, 1, eager),
                                    Bottleneck(32, 16, 2, eager), Bottleneck(64, 16, 1, eager))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, 10)
        self.dequant = torch.ao.quantization.DeQuantStub()

    def forward(self, x):
        x = self.layers(self.stem(self.quant(x)))
        return self.dequant(self.fc(torch.flatten(self.pool(x), 1)))


def _fuse_eager(m):
    from torch.ao.quantization import fuse_modules

    fuse_modules(m.stem, [["0", "1", "2"]], inplace=True)
    for b in m.layers:
        fuse_modules(b, [["conv1", "bn1", "relu1"], ["conv2", "bn2", "relu2"], ["conv3", "bn3"]], inplace=True)
        if b.down is not None:
            fuse_modules(b.down, [["0", "1"]], inplace=True)


def _randomize(m, seed, identity_bn=False):
    """Random batch-norm statistics; identity_bn: batch norms that fold to nothing (zero bias), so the
    requantization ties of _put_convs_on_ties are not moved by a bias."""
    g = torch.Generator().manual_seed(seed)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d) and identity_bn:
            nn.init.ones_(mod.weight), nn.init.zeros_(mod.bias)
            mod.running_mean.zero_()
            mod.running_var.fill_(1.0 - mod.eps)
        elif isinstance(mod, nn.BatchNorm2d):
            mod.weight.data = torch.rand(mod.weight.shape, generator=g) + 0.5
            mod.bias.data = torch.randn(mod.bias.shape, generator=g) * 0.2
            mod.running_mean = torch.randn(mod.running_mean.shape, generator=g) * 0.1
            mod.running_var = torch.rand(mod.running_var.shape, generator=g) + 0.5


def _quantized(mode, per_channel, seed):
    from torch.ao.quantization import QConfig, get_default_qconfig
    from torch.ao.quantization.observer import MinMaxObserver

    torch.manual_seed(seed)
    model = Net(eager=mode == "eager").eval()
    _randomize(model, seed, identity_bn=not per_channel)
    qc = get_default_qconfig("x86")
    if not per_channel:
        qc = QConfig(activation=qc.activation,
                     weight=MinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric))
    calib = torch.randn(4, 3, 32, 32)
    old = torch.backends.quantized.engine
    torch.backends.quantized.engine = "x86"
    try:
        if mode == "eager":
            _fuse_eager(model)
            model.qconfig = qc
            prepared = torch.ao.quantization.prepare(model)
            prepared(calib)
            q = torch.ao.quantization.convert(prepared)
        else:
            from torch.ao.quantization import QConfigMapping
            from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

            prepared = prepare_fx(model, QConfigMapping().set_global(qc), example_inputs=(calib,))
            prepared(calib)
            q = convert_fx(prepared)
    finally:
        torch.backends.quantized.engine = old
    return q


def _put_convs_on_ties(q):
    """s_y = 2 * s_x * s_w for every per-tensor conv, in the order data flows (each conv's s_x is the
    scale its input was quantized with), so f32 scale rounding decides every odd accumulator."""
    from torch.ao.nn.intrinsic.quantized import ConvReLU2d
    from torch.ao.nn.quantized import Conv2d


    def hook(mod, inp, out):
        if isinstance(mod, (Conv2d, ConvReLU2d)) and mod.weight().qscheme() == torch.per_tensor_affine:
            mod.scale = float(2 * inp[0].q_scale() * mod.weight().q_scale())
        return None

    handles = [m.register_forward_hook(hook) for m in q.modules() if isinstance(m, (Conv2d, ConvReLU2d))]
    old = torch.backends.quantized.engine
    torch.backends.quantized.engine = "x86"
    try:
        with torch.no_grad():
            q(torch.randn(1, 3, 32, 32))  # one pass sets the scales layer by layer
    finally:
        torch.backends.quantized.engine = old
        for h in handles:
            h.remove()
    return q


@pytest.mark.parametrize("mode", ["eager", "fx"])
@pytest.mark.parametrize("per_channel", [True, False])
@pytest.mark.parametrize("batch", [1, 2])
def test_bottleneck_net_bit_exact(mode, per_channel, batch):
    q = _quantized(mode, per_channel, seed=11)
    if not per_channel:
        q = _put_convs_on_ties(q)
    x = torch.from_numpy((np.random.default_rng(batch).standard_normal((batch, 3, 32, 32)) * 1.5)
                         .astype(np.float32))
    rep = qgolden.verify(q, x, engine="x86")
    assert rep.bit_exact, [(layer.name, layer.mismatches) for layer in rep.layers if layer.mismatches]
