"""CPU classes: detection from cpuinfo flags, and the facts each class gives the ops.

The facts are read from the kernels' sources (qgolden/cpu); the ops that use them are tested
against PyTorch on the host and against recorded runs of other CPUs (tests/test_conformance.py)."""
import pytest

from qgolden.cpu import CLASSES, cpu_class, detect, detect_from_flags
from qgolden.numerics.profile import aten_vector_width, conv_backend, gemm_saturates, make_profile

AVX2_FLAGS = {"sse4_2", "avx", "avx2", "fma", "f16c"}
SKX_FLAGS = AVX2_FLAGS | {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"}
CLX_FLAGS = SKX_FLAGS | {"avx512_vnni"}
SPR_FLAGS = CLX_FLAGS | {"avx512_bf16", "amx_tile", "amx_int8", "amx_bf16"}


@pytest.mark.parametrize("flags, tag", [(AVX2_FLAGS, "avx2"), (SKX_FLAGS, "avx512"), (CLX_FLAGS, "avx512_vnni"),
                                        (SPR_FLAGS, "avx512_amx"), (AVX2_FLAGS | {"avx_vnni"}, "avx2"),
                                        (SPR_FLAGS - {"amx_int8"}, "avx512_vnni")])
def test_detect_from_flags(flags, tag):
    assert detect_from_flags(frozenset(flags)) == tag


def test_detect_arm64_and_onednn_cap():
    assert detect_from_flags(frozenset({"fp", "asimd", "asimddp"}), "aarch64") == "arm64"
    # oneDNN capped at VNNI on an AMX machine: what a VNNI CPU without AMX computes
    assert detect_from_flags(frozenset(SPR_FLAGS), "x86_64", "AVX512_CORE_VNNI") == "avx512_vnni"
    assert detect_from_flags(frozenset(SPR_FLAGS), "x86_64", "avx512_core_amx") == "avx512_amx"
    assert detect() in CLASSES


def test_class_facts():
    avx2, avx512, vnni, amx, arm = (cpu_class(t) for t in ("avx2", "avx512", "avx512_vnni", "avx512_amx", "arm64"))
    assert [c.fbgemm_pairs_saturate for c in (avx2, avx512, vnni, amx)] == [True, True, False, False]
    assert [c.x86_conv_to_onednn for c in (avx2, avx512, vnni, amx, arm)] == [False, False, True, True, False]
    assert [c.inductor_lanes for c in (avx2, avx512, vnni, amx)] == [8, 16, 16, 16]
    assert amx.onednn_amx and not vnni.onednn_amx
    # ATen: only the AVX512-registered stubs get 64-byte vectors
    for c in (avx512, vnni, amx):
        assert c.aten_vector_bytes("qadd") == 32 and c.aten_vector_bytes("qadaptive_avg_pool2d_nhwc") == 32
        assert c.aten_vector_bytes("qavg_pool2d_nhwc") == 64
    assert avx2.aten_vector_bytes("qavg_pool2d_nhwc") == 32
    assert avx2.onednn_gemm_k_blocks(300) == [0, 150] and avx512.onednn_gemm_k_blocks(300) == [0]
    assert avx512.onednn_gemm_k_blocks(757) == [0, 379]
    with pytest.raises(ValueError, match="unknown isa"):
        cpu_class("bogus")


def test_profile_reads_its_class():
    for tag in CLASSES:
        p = make_profile("x86", tag, 1)
        assert gemm_saturates(p) == cpu_class(tag).fbgemm_pairs_saturate
        assert conv_backend(p) == ("onednn" if cpu_class(tag).x86_conv_to_onednn else "fbgemm")
        assert aten_vector_width(p, "qmul") == 32
    # ATEN_CPU_CAPABILITY=avx2 on an AVX-512 host lowers the stored width: avg pool NHWC follows it
    p = dict(make_profile("x86", "avx512_amx", 1), vector_width=32)
    assert aten_vector_width(p, "qavg_pool2d_nhwc") == 32
