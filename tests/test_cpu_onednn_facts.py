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
