"""verify records a copy of every intermediate: an in-place op after it (ReLU6(inplace=True) on a
conv's output, as in MobileNetV2's inverted residuals) must not change what PyTorch is recorded
to have computed there."""
import numpy as np
import pytest
import torch
from torch.ao.quantization import get_default_qconfig_mapping
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

import qgolden
from qgolden.torch_side import engine as engine_ctx


class InvertedResidual(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.expand = torch.nn.Conv2d(8, 24, 1)
        self.act1 = torch.nn.ReLU6(inplace=True)
        self.dw = torch.nn.Conv2d(24, 24, 3, padding=1, groups=24)
        self.act2 = torch.nn.ReLU6(inplace=True)
        self.project = torch.nn.Conv2d(24, 8, 1)

    def forward(self, x):
        return self.project(self.act2(self.dw(self.act1(self.expand(x)))))


@pytest.mark.parametrize("engine", ["x86", "qnnpack"])
def test_inplace_relu6_after_conv_is_recorded_before_it_runs(engine):
    torch.manual_seed(3)
    with engine_ctx(engine):
        model = InvertedResidual().eval()
        x = torch.randn(2, 8, 9, 9) * 3  # well past 6 after the expansion: the clamp changes values
        prepared = prepare_fx(model, get_default_qconfig_mapping(engine), example_inputs=(x,))
        prepared(x)
        qmodel = convert_fx(prepared)
    rep = qgolden.verify(qmodel, x, engine=engine)
    assert rep.bit_exact, [(l.name, l.mismatches) for l in rep.layers if l.mismatches]
    convs = [l for l in rep.layers if l.op == "conv"]
    assert len(convs) == 3 and all(l.elements > 0 for l in convs)
    # the conv outputs really were overwritten in place by PyTorch: the copies are what make this pass
    prog = qgolden.lower(qmodel, example_inputs=(x,), engine=engine)
    _, env = prog.run(x.numpy(), keep=True)
    clamped = [n for n in prog.nodes if n.op in ("hardtanh", "clamp", "relu6")]
    assert clamped, [n.op for n in prog.nodes]
    assert any(not np.array_equal(env[n.inputs[0]], env[n.output]) for n in clamped)


class TwoUnsupported(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 1)
        self.conv2 = torch.nn.Conv2d(4, 4, 1)

    def forward(self, x):
        y = self.conv(x)
        a = torch.flip(y, [3])
        b = torch.roll(y, 1, 2)
        return self.conv2(a) + b.sum()


def test_every_unsupported_node_is_reported_at_once():
    x = torch.randn(1, 3, 4, 4)
    with engine_ctx("x86"):
        p = prepare_fx(TwoUnsupported().eval(), get_default_qconfig_mapping("x86"), example_inputs=(x,))
        p(x)
        q = convert_fx(p)
    with pytest.raises(Exception) as err:
        qgolden.lower(q, example_inputs=(x,), engine="x86")
    lines = str(err.value).splitlines()
    assert "2 nodes cannot be lowered" in lines[0]
    assert "'flip' (torch.flip)" in lines[1] and "test_inplace.py" in lines[1]
    assert "'roll' (torch.roll)" in lines[2] and "test_inplace.py" in lines[2]
    # nodes that only read a failed node (b.sum()) are not reported again
    assert len(lines) == 4 and lines[3].startswith("Supported: ")


class ReadAfterInPlace(torch.nn.Module):
    """y = act_(x); x + y: after the in-place activation x holds y, so the add sees it twice
    (a residual written with an in-place ReLU). form: module (inplace=True), functional
    (F.relu(x, inplace=True)) or method (x.relu_())."""

    def __init__(self, form):
        super().__init__()
        self.form = form
        self.conv = torch.nn.Conv2d(4, 6, 3, padding=1)
        self.act = torch.nn.ReLU6(inplace=True)
        self.conv2 = torch.nn.Conv2d(6, 3, 1)

    def forward(self, x):
        x = self.conv(x)
        if self.form == "module":
            y = self.act(x)
        elif self.form == "functional":
            y = torch.nn.functional.relu(x, inplace=True)
        else:
            y = x.relu_()
        return self.conv2(torch.add(x, y))


@pytest.mark.parametrize("form", ["module", "functional", "method"])
def test_a_later_reader_of_an_in_place_input_sees_the_result(form):
    """FX keeps the conv node as the add's first argument, but PyTorch hands the add the tensor
    the activation overwrote; the program read the conv output from before it (mismatching
    exactly where the activation changed values) until in-place nodes aliased their input."""
    torch.manual_seed(5)
    x = torch.randn(2, 4, 7, 7) * 3  # negative and > 6 after the conv: the activation changes values
    with engine_ctx("x86"):
        p = prepare_fx(ReadAfterInPlace(form).eval(), get_default_qconfig_mapping("x86"), example_inputs=(x,))
        p(x)
        q = convert_fx(p)
    rep = qgolden.verify(q, x, engine="x86")
    assert rep.bit_exact, [(l.name, l.op, l.mismatches) for l in rep.layers if l.mismatches]
    prog = qgolden.lower(q, example_inputs=(x,), engine="x86")
    add = next(n for n in prog.nodes if n.op == "add")
    assert add.inputs[0] == add.inputs[1]  # both operands are the activation's output


class Conv1dMean(torch.nn.Module):
    """conv1d -> mean over the length: the conv's [N, C, L] output has C innermost in memory, so
    PyTorch's mean takes its dequantize + float path, not the contiguous fast path."""

    def __init__(self):
        super().__init__()
        self.quant, self.dequant = torch.ao.quantization.QuantStub(), torch.ao.quantization.DeQuantStub()
        self.conv = torch.nn.Conv1d(7, 6, 3, stride=2)

    def forward(self, x):
        return self.dequant(torch.mean(self.conv(self.quant(x)), [2]))


class ConvToOnePixelUpsample(torch.nn.Module):
    """A conv whose output is [N, C, 1, 1] channels-last (strides that also read as contiguous), then
    nearest upsampling, whose output layout follows those strides."""

    def __init__(self):
        super().__init__()
        self.quant, self.dequant = torch.ao.quantization.QuantStub(), torch.ao.quantization.DeQuantStub()
        self.conv = torch.nn.Conv2d(3, 4, 5)
        self.up = torch.nn.Upsample(scale_factor=2.0, mode="nearest")

    def forward(self, x):
        return self.dequant(self.up(self.conv(self.quant(x))))


def _eager(model, engine, x):
    with engine_ctx(engine):
        model.eval().qconfig = torch.ao.quantization.get_default_qconfig(engine)
        prepared = torch.ao.quantization.prepare(model)
        prepared(x)
        return torch.ao.quantization.convert(prepared)


@pytest.mark.parametrize("engine", ["fbgemm", "x86"])
def test_recorded_intermediates_keep_any_dim_order(engine):
    """verify's copies of intermediates kept only 4-D/5-D channels-last strides: a conv1d output copied
    contiguous, the importer saw an NCL tensor and modelled the mean's fast path (off by one step)."""
    torch.manual_seed(410)
    x = torch.randn(3, 7, 18) * 4
    qmodel = _eager(Conv1dMean(), engine, x)
    rep = qgolden.verify(qmodel, x, engine=engine)
    assert rep.bit_exact, [(l.name, l.op, l.mismatches) for l in rep.layers if l.mismatches]
    prog = qgolden.lower(qmodel, example_inputs=(x,), engine=engine)
    assert next(n for n in prog.nodes if n.op == "mean").attrs["channels_last"]


def test_recorded_one_pixel_channels_last_keeps_its_strides():
    """[N, C, 1, 1] strides (C, 1, C, C) are contiguous both ways: the copy came back (C, 1, 1, 1), the
    upsampling was modelled in NCHW order and 12 of its 16 outputs landed in the wrong place."""
    if "qnnpack" not in torch.backends.quantized.supported_engines:
        pytest.skip("no qnnpack engine in this torch")
    torch.manual_seed(495)
    x = (torch.randn(1, 3, 5, 5) * 4).contiguous(memory_format=torch.channels_last)
    qmodel = _eager(ConvToOnePixelUpsample(), "qnnpack", x)
    rep = qgolden.verify(qmodel, x, engine="qnnpack")
    assert rep.bit_exact, [(l.name, l.op, l.mismatches) for l in rep.layers if l.mismatches]
