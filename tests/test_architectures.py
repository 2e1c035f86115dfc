"""Real architectures, small: the blocks of ResNet-18/50, MobileNetV2/V3, ShuffleNetV2, GoogLeNet and a
transformer encoder, written here (no torchvision), quantized in eager mode (QuantStub/DeQuantStub,
fused modules, FloatFunctional) and with FX, then `qgolden.verify` on this host's profile for every
engine: every intermediate quantized tensor and the output must equal PyTorch's bit for bit."""
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.ao.nn.quantized import FloatFunctional  # noqa: E402
from torch.ao.quantization import DeQuantStub, QuantStub, fuse_modules  # noqa: E402

import qgolden  # noqa: E402

warnings.filterwarnings("ignore")
ENGINES = [e for e in ("x86", "fbgemm", "qnnpack", "onednn") if e in torch.backends.quantized.supported_engines]


def conv_bn(cin, cout, k=3, stride=1, groups=1, act=None):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act)
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """ResNet-18: 3x3, 3x3, identity or strided 1x1 shortcut, add, ReLU."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, cout, 3, stride, act=nn.ReLU()), conv_bn(cout, cout, 3))
        self.short = conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()
        self.add = FloatFunctional()
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.add.add(self.body(x), self.short(x)))


class Bottleneck(nn.Module):
    """ResNet-50: 1x1 reduce, 3x3 (strided), 1x1 expand, shortcut, add_relu."""

    def __init__(self, cin, width, stride):
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, width, 1, act=nn.ReLU()), conv_bn(width, width, 3, stride, act=nn.ReLU()),
                                  conv_bn(width, 4 * width, 1))
        self.short = conv_bn(cin, 4 * width, 1, stride) if stride != 1 or cin != 4 * width else nn.Identity()
        self.add = FloatFunctional()

    def forward(self, x):
        return self.add.add_relu(self.body(x), self.short(x))


class InvertedResidual(nn.Module):
    """MobileNetV2: 1x1 expand + ReLU6(inplace), depthwise 3x3 + ReLU6(inplace), 1x1 project, residual."""

    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hid = cin * expand
        self.body = nn.Sequential(conv_bn(cin, hid, 1, act=nn.ReLU6(inplace=True)),
                                  conv_bn(hid, hid, 3, stride, groups=hid, act=nn.ReLU6(inplace=True)),
                                  conv_bn(hid, cout, 1))
        self.residual = stride == 1 and cin == cout
        self.add = FloatFunctional()

    def forward(self, x):
        y = self.body(x)
        return self.add.add(x, y) if self.residual else y


class SqueezeExcite(nn.Module):
    def __init__(self, c, r=4):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, c // r, 1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(c // r, c, 1)
        self.gate = nn.Hardsigmoid()
        self.mul = FloatFunctional()

    def forward(self, x):
        return self.mul.mul(self.gate(self.fc2(self.relu(self.fc1(self.pool(x))))), x)


class MobileNetV3Block(nn.Module):
    """MobileNetV3: 1x1 expand + hardswish, depthwise + hardswish, squeeze-excitation, 1x1 project, residual."""

    def __init__(self, cin, cout, hid, stride):
        super().__init__()
        self.expand = conv_bn(cin, hid, 1)
        self.act1 = nn.Hardswish()
        self.dw = conv_bn(hid, hid, 3, stride, groups=hid)
        self.act2 = nn.Hardswish()
        self.se = SqueezeExcite(hid)
        self.project = conv_bn(hid, cout, 1)
        self.residual = stride == 1 and cin == cout
        self.add = FloatFunctional()

    def forward(self, x):
        y = self.project(self.se(self.act2(self.dw(self.act1(self.expand(x))))))
        return self.add.add(x, y) if self.residual else y


def channel_shuffle(x, groups: int):
    b, c, h, w = x.size()
    x = x.view(b, groups, c // groups, h, w)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(b, -1, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2: split (chunk), branch on one half, cat, channel shuffle (view/transpose/flatten or
    nn.ChannelShuffle); the strided unit runs both branches."""

    def __init__(self, cin, cout, stride, module_shuffle):
        super().__init__()
        half = cout // 2
        self.stride = stride
        if stride > 1:
            self.left = nn.Sequential(conv_bn(cin, cin, 3, stride, groups=cin), conv_bn(cin, half, 1, act=nn.ReLU()))
        bin_ = cin if stride > 1 else half
        self.right = nn.Sequential(conv_bn(bin_, half, 1, act=nn.ReLU()), conv_bn(half, half, 3, stride, groups=half),
                                   conv_bn(half, half, 1, act=nn.ReLU()))
        self.cat = FloatFunctional()
        self.shuffle = nn.ChannelShuffle(2) if module_shuffle else None

    def forward(self, x):
        if self.stride == 1:
            a, b = x.chunk(2, dim=1)
            y = self.cat.cat([a, self.right(b)], dim=1)
        else:
            y = self.cat.cat([self.left(x), self.right(x)], dim=1)
        if self.shuffle is not None:
            return self.shuffle(y)
        b, c, h, w = y.size()
        y = torch.transpose(y.view(b, 2, c // 2, h, w), 1, 2)
        return torch.flatten(y, 1, 2)


class Inception(nn.Module):
    """GoogLeNet: 1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 | max pool 3x3 -> 1x1, concatenated; functional pools."""

    def __init__(self, cin, c1, c3r, c3, c5r, c5, cp):
        super().__init__()
        self.b1 = conv_bn(cin, c1, 1, act=nn.ReLU())
        self.b2 = nn.Sequential(conv_bn(cin, c3r, 1, act=nn.ReLU()), conv_bn(c3r, c3, 3, act=nn.ReLU()))
        self.b3 = nn.Sequential(conv_bn(cin, c5r, 1, act=nn.ReLU()), conv_bn(c5r, c5, 3, act=nn.ReLU()))
        self.b4 = conv_bn(cin, cp, 1, act=nn.ReLU())
        self.cat = FloatFunctional()

    def forward(self, x):
        p = F.max_pool2d(x, 3, 1, 1, ceil_mode=True)
        return self.cat.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(p)], 1)


class Stem(nn.Module):
    def __init__(self, block, cout=16, pool=None):
        super().__init__()
        self.quant = QuantStub()
        self.stem = conv_bn(3, cout, 3, 2, act=nn.ReLU())
        self.block = block
        self.pool = pool
        self.dequant = DeQuantStub()

    def forward(self, x):
        y = self.block(self.stem(self.quant(x)))
        if self.pool == "avg":
            y = F.avg_pool2d(y, 2)
        elif self.pool == "avg_3x3":
            y = F.avg_pool2d(y, 3, 2, 1, count_include_pad=False)
        elif self.pool == "mean":
            y = y.mean((2, 3))
        return self.dequant(y)


class EncoderBlock(nn.Module):
    """A transformer encoder layer over [batch, tokens, dim]: layer norm, q/k/v linears, scores q k^T
    (matmul), softmax, attention @ v, output linear, residual add, layer norm, MLP (linear, ReLU, linear), add."""

    def __init__(self, d=16, hidden=32, use_matmul=True):
        super().__init__()
        self.quant = QuantStub()
        self.ln1 = nn.LayerNorm(d)
        self.q, self.k, self.v, self.o = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.softmax = nn.Softmax(dim=-1)
        self.add1, self.add2 = FloatFunctional(), FloatFunctional()
        self.mm1, self.mm2 = FloatFunctional(), FloatFunctional()
        self.ln2 = nn.LayerNorm(d)
        self.fc1, self.relu, self.fc2 = nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, d)
        self.dequant = DeQuantStub()
        self.use_matmul = use_matmul
        # FloatFunctional: eager convert turns it into QFunctional.matmul (quantized::matmul);
        # a bare torch.matmul on quantized tensors has no QuantizedCPU kernel
        self.scores_mm, self.att_mm = FloatFunctional(), FloatFunctional()

    def forward(self, x):
        x = self.quant(x)
        h = self.ln1(x)
        if self.use_matmul:
            scores = self.scores_mm.matmul(self.q(h), self.k(h).transpose(1, 2))
            att = self.att_mm.matmul(self.softmax(scores), self.v(h))
        else:  # attention over a fixed token mixing: softmax of the projected tokens themselves
            att = self.v(self.softmax(self.q(h)))
        x = self.add1.add(x, self.o(att))
        x = self.add2.add(x, self.fc2(self.relu(self.fc1(self.ln2(x)))))
        return self.dequant(x)


def _fuse(m):
    """Eager fusion of every conv_bn (+ ReLU) Sequential; ReLU6 has no fused module and stays nnq.ReLU6."""
    for mod in list(m.modules()):
        if isinstance(mod, nn.Sequential) and len(mod) >= 2 and isinstance(mod[0], nn.Conv2d) \
                and isinstance(mod[1], nn.BatchNorm2d):
            names = ["0", "1"] + (["2"] if len(mod) == 3 and isinstance(mod[2], nn.ReLU) else [])
            fuse_modules(mod, [names], inplace=True)


def _randomize(m, seed):
    g = torch.Generator().manual_seed(seed)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.weight.data = torch.rand(mod.weight.shape, generator=g) + 0.5
            mod.bias.data = torch.randn(mod.bias.shape, generator=g) * 0.2
            mod.running_mean = torch.randn(mod.running_mean.shape, generator=g) * 0.1
            mod.running_var = torch.rand(mod.running_var.shape, generator=g) + 0.5
        elif isinstance(mod, nn.LayerNorm):
            mod.weight.data = torch.rand(mod.weight.shape, generator=g) + 0.5
            mod.bias.data = torch.randn(mod.bias.shape, generator=g) * 0.2


def quantize(build, mode, engine, calib, seed=0):
    from torch.ao.quantization import get_default_qconfig, get_default_qconfig_mapping
    from torch.ao.quantization.quantization_mappings import (get_default_qconfig_propagation_list,
                                                              get_default_static_quant_module_mappings)
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    import torch.ao.nn.quantized as nnq

    torch.manual_seed(seed)
    model = build().eval()
    _randomize(model, seed)
    old = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine
    try:
        if mode == "eager":
            _fuse(model)
            model.qconfig = get_default_qconfig(engine)
            # nn.Softmax is not in eager mode's default lists: observe it and map it to nnq.Softmax
            allow = get_default_qconfig_propagation_list() | {nn.Softmax}
            prepared = torch.ao.quantization.prepare(model, allow_list=allow)
            prepared(calib)
            mapping = dict(get_default_static_quant_module_mappings())
            mapping[nn.Softmax] = nnq.Softmax
            return torch.ao.quantization.convert(prepared, mapping=mapping)
        prepared = prepare_fx(model, get_default_qconfig_mapping(engine), example_inputs=(calib,))
        prepared(calib)
        return convert_fx(prepared)
    finally:
        torch.backends.quantized.engine = old


IMAGE = (2, 3, 17, 17)
ARCHS = {
    "resnet18_basic": (lambda: Stem(nn.Sequential(BasicBlock(16, 16, 1), BasicBlock(16, 24, 2)), pool="mean"), IMAGE),
    "resnet50_bottleneck": (lambda: Stem(nn.Sequential(Bottleneck(16, 4, 1), Bottleneck(16, 8, 2))), IMAGE),
    "mobilenet_v2": (lambda: Stem(nn.Sequential(InvertedResidual(16, 16, 1, 4), InvertedResidual(16, 24, 2, 3)),
                                  pool="avg"), IMAGE),
    "mobilenet_v3": (lambda: Stem(nn.Sequential(MobileNetV3Block(16, 16, 32, 1), MobileNetV3Block(16, 24, 40, 2))),
                     IMAGE),
    "shufflenet_v2_view": (lambda: Stem(nn.Sequential(ShuffleUnit(16, 32, 2, False), ShuffleUnit(32, 32, 1, False))),
                           IMAGE),
    "shufflenet_v2_module": (lambda: Stem(nn.Sequential(ShuffleUnit(16, 32, 2, True), ShuffleUnit(32, 32, 1, True))),
                             IMAGE),
    "googlenet_inception": (lambda: Stem(Inception(16, 8, 8, 12, 4, 6, 6), pool="avg_3x3"), IMAGE),
}


def _input(shape, seed):
    return torch.from_numpy((np.random.default_rng(seed).standard_normal(shape) * 1.5).astype(np.float32))


def _check(q, x, engine):
    rep = qgolden.verify(q, x, engine=engine)
    bad = [(layer.name, layer.mismatches) for layer in rep.layers if layer.mismatches]
    assert rep.bit_exact, bad
    assert sum(1 for layer in rep.layers) >= 5  # every intermediate was compared, not only the output


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("mode", ["eager", "fx"])
@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_architecture_bit_exact(arch, mode, engine):
    build, shape = ARCHS[arch]
    q = quantize(build, mode, engine, _input(shape, 1))
    _check(q, _input(shape, 2), engine)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("mode", ["eager", "fx"])
def test_transformer_encoder_bit_exact(mode, engine):
    from qgolden.cpu import cpu_class, detect

    if not cpu_class(detect()).float_gemm_fma_k:
        # quantized matmul runs MKL's float GEMM, whose summation order is modelled on AVX-512 and arm64 only
        pytest.skip(f"quantized matmul is not modelled on this CPU class ({detect()})")
    shape = (2, 7, 16)
    q = quantize(lambda: EncoderBlock(), mode, engine, _input(shape, 1))
    _check(q, _input(shape, 2), engine)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("mode", ["eager", "fx"])
def test_transformer_encoder_without_matmul_bit_exact(mode, engine):
    """The encoder's other ops (layer norm, linears, softmax, adds) without the attention matmuls."""
    shape = (2, 7, 16)
    q = quantize(lambda: EncoderBlock(use_matmul=False), mode, engine, _input(shape, 1))
    _check(q, _input(shape, 2), engine)
