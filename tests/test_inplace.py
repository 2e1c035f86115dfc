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
