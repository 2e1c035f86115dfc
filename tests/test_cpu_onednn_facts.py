"""CpuClass facts about oneDNN's kernels (qgolden/cpu): the dispatch rules as read from oneDNN's
source, on shapes whose answer was measured with ONEDNN_VERBOSE on an AMX Xeon."""
import pytest

from qgolden.cpu import cpu_class


def conv(nb, c_in, c_out, k, groups, stride, pad, hw):
    out = (hw + 2 * pad - k) // stride + 1
    return {"nb": nb, "c_in": c_in, "c_out": c_out, "groups": groups, "kernel": (k, k), "stride": (stride, stride),
            "padding": (pad, pad), "out_hw": (out, out)}


@pytest.mark.parametrize("m,k,n,amx", [(1, 32, 16, False), (4, 64, 10, False), (2, 256, 16, False), (1, 256, 300, False),
                                       (256, 1, 16, False), (200, 16, 2, False), (8, 128, 64, True), (1, 255, 300, True),
                                       (33, 4096, 16, True), (500, 64, 3, True)])
def test_amx_matmul_small_shapes_go_to_vnni(m, k, n, amx):
    assert (cpu_class("avx512_amx").onednn_matmul_kernel(m, k, n) == "brg_matmul_amx") is amx
    assert cpu_class("avx512_amx").onednn_int8_combined_scale("linear", {"m": m, "k": k, "n": n}) is amx


# (shape, threads, runs AMX's unrolled kernel), each as ONEDNN_VERBOSE and the output bits showed
AMX_CONV = [
    (conv(4, 8, 64, 5, 1, 1, 2, 14), 1, True),     # brg_conv_fwd:avx10_1_512_amx
    (conv(1, 4, 32, 5, 1, 2, 0, 7), 1, False),     # 2x2 output: small shape -> brg_conv_fwd:avx512_core_vnni
    (conv(2, 3, 16, 1, 1, 1, 0, 16), 1, False),    # 1x1, 3 channels, stride 1 -> brgconv_1x1:avx512_core_vnni
    (conv(2, 24, 32, 1, 4, 1, 0, 28), 2, False),   # 6 channels per group
    (conv(1, 3, 64, 1, 1, 2, 0, 16), 1, True),     # strided 1x1 pads the channels: AMX
    (conv(1, 32, 64, 1, 1, 1, 0, 8), 1, True),     # brgconv_1x1 AMX, unrolled
    (conv(1, 32, 64, 1, 1, 1, 0, 8), 2, False),    # same, 2 threads, batch 1: 'small mb', not unrolled
    (conv(2, 64, 16, 1, 1, 1, 0, 16), 2, True),
    (conv(8, 8, 8, 3, 8, 1, 1, 7), 1, False),      # depthwise: brdgmm_dw
]


@pytest.mark.parametrize("shape,threads,unrolled", AMX_CONV)
def test_amx_conv_kernel_choice(shape, threads, unrolled):
    assert cpu_class("avx512_amx").onednn_int8_combined_scale("conv", shape, threads) is unrolled


def test_scale_order_of_the_other_classes():
    shape = conv(4, 8, 64, 3, 1, 1, 1, 14)
    assert cpu_class("avx2").onednn_int8_combined_scale("conv", shape)         # jit_uni_x8s8s32x: one scale
    assert not cpu_class("avx512_vnni").onednn_int8_combined_scale("conv", shape)  # VNNI brgemm: in turn
    assert not cpu_class("avx512_vnni").onednn_int8_combined_scale("linear", {"m": 64, "k": 512, "n": 128})
    assert cpu_class("avx2").onednn_f32_conv_bias_first
    assert not cpu_class("avx512_amx").onednn_f32_conv_bias_first


@pytest.mark.parametrize("c_per_g,k_per_g,groups,kernel,out_hw,refused", [
    (3, 31, 2, (3, 3), (9, 9), True), (1, 17, 4, (3, 3), (9, 9), True), (9, 40, 3, (3, 3), (9, 9), True),
    (5, 64, 2, (5, 5), (4, 4), True), (2, 17, 2, (1, 3), (16, 1), True), (3, 24, 2, (3, 3), (2, 16), True),
    (3, 64, 2, (1, 3), (1, 16), True), (3, 33, 2, (3, 1), (2, 16), True),
    (4, 31, 2, (3, 3), (9, 9), False), (8, 40, 2, (3, 3), (9, 9), False), (3, 16, 2, (3, 3), (9, 9), False),
    (3, 31, 2, (1, 1), (9, 9), False), (3, 31, 1, (3, 3), (9, 9), False), (2, 32, 4, (1, 5), (1, 16), False),
    (3, 24, 2, (3, 1), (2, 16), False), (3, 31, 2, (3, 1), (9, 9), False), (2, 96, 4, (1, 1), (1, 9), False)])
def test_amx_grouped_conv_not_reproduced_is_refused_by_name(c_per_g, k_per_g, groups, kernel, out_hw, refused):
    """The AMX brgemm conv's wrong integers for grouped convs with IC/G not a multiple of 4 and many
    OC/G (measured shapes, bad and exact): a fact of avx512_amx only, for that kernel family only."""
    pad = tuple(k // 2 for k in kernel)
    amx = cpu_class("avx512_amx")
    fam = amx.onednn_conv_kernel(c_per_g, k_per_g, groups, kernel, (1, 1), pad, 1, out_hw)
    assert bool(amx.onednn_conv_not_modelled(fam, c_per_g, k_per_g, groups, kernel, out_hw)) is refused
    for other in ("avx2", "avx512", "avx512_vnni", "arm64"):
        cls = cpu_class(other)
        f = cls.onednn_conv_kernel(c_per_g, k_per_g, groups, kernel, (1, 1), pad, 1, out_hw)
        assert cls.onednn_conv_not_modelled(f, c_per_g, k_per_g, groups, kernel, out_hw) is None


def test_amx_grouped_conv_refusal_holds_against_pytorch_here():
    """On an AMX host: PyTorch's oneDNN grouped conv of a refused shape is not the exact conv (so the
    refusal is still needed), one of an accepted shape is, and qgolden refuses the first with one line
    (exit 2 through the CLI's UserError) and is bit-exact on the second."""
    import torch

    import qgolden
    from qgolden.errors import NotModelled
    from qgolden.numerics.profile import make_profile

    if "onednn" not in torch.backends.quantized.supported_engines or make_profile("onednn")["isa"] != "avx512_amx":
        pytest.skip("needs an avx512_amx host (the fact is about that CPU's oneDNN kernel)")

    class Net(torch.nn.Module):
        def __init__(self, c_per_g):
            super().__init__()
            self.quant, self.dequant = torch.ao.quantization.QuantStub(), torch.ao.quantization.DeQuantStub()
            self.conv = torch.nn.Conv2d(2 * c_per_g, 62, 3, padding=1, groups=2)

        def forward(self, x):
            return self.dequant(self.conv(self.quant(x)))

    old = torch.backends.quantized.engine
    torch.backends.quantized.engine = "onednn"
    try:
        for c_per_g, refused in ((3, True), (4, False)):
            torch.manual_seed(c_per_g)
            m = Net(c_per_g).eval()
            m.qconfig = torch.ao.quantization.get_default_qconfig("onednn")
            p = torch.ao.quantization.prepare(m)
            x = torch.randn(1, 2 * c_per_g, 9, 9) * 2
            p(x)
            q = torch.ao.quantization.convert(p)
            qx = q.quant(x)
            y = q.conv(qx).int_repr().float()
            exact = torch.nn.functional.conv2d(qx.dequantize(), q.conv.weight().dequantize(), q.conv.bias(), 1, 1, 1, 2)
            want = torch.clamp(torch.round(exact / q.conv.scale) + q.conv.zero_point, 0, 255)
            assert ((y - want).abs().max().item() > 1) is refused
            if refused:
                with pytest.raises(NotModelled, match="AMX grouped conv"):
                    qgolden.verify(q, x.numpy(), engine="onednn")
            else:
                assert qgolden.verify(q, x.numpy(), engine="onednn").bit_exact
    finally:
        torch.backends.quantized.engine = old
