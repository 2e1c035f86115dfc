"""The x86-64 classes. Each differs from the one before it by the facts listed."""
from __future__ import annotations

from .base import CpuClass

# MKL's AVX-512 sgemm (torch's x86-64 BLAS) accumulates each output in one register lane over
# k = 0..K-1 with vfmadd231ps up to this K; larger K is split into blocks (measured with torch.matmul)
MKL_AVX512_SGEMM_K = 384

AVX2 = CpuClass(
    tag="avx2",
    summary="AVX2 + FMA (Haswell .. Alder Lake client, AMD Zen 1-3): FBGEMM and oneDNN pair u8*s8 "
            "products in saturating int16; the x86 engine's conv runs on FBGEMM",
    aten_capability="avx2", fbgemm_vnni=False, onednn_isa="avx2", inductor_lanes=8)

AVX512 = CpuClass(
    tag="avx512",
    summary="AVX-512 F/BW/VL without VNNI (Skylake-SP): still int16 pair saturation; ATen's "
            "AVX512 stubs (avg pool NHWC) and Inductor use 64-byte vectors",
    aten_capability="avx512", fbgemm_vnni=False, onednn_isa="avx512_core", inductor_lanes=16,
    onednn_f32_conv_bias_first=False, float_gemm_fma_k=MKL_AVX512_SGEMM_K)

AVX512_VNNI = CpuClass(
    tag="avx512_vnni",
    summary="AVX-512 VNNI without AMX (Cascade Lake, Ice Lake, AMD Zen 4/5): exact int32 sums; "
            "the x86 engine's conv runs on oneDNN's VNNI brgemm kernels",
    aten_capability="avx512", fbgemm_vnni=True, onednn_isa="avx512_core_vnni", inductor_lanes=16,
    onednn_f32_conv_bias_first=False, float_gemm_fma_k=MKL_AVX512_SGEMM_K)

AVX512_AMX = CpuClass(
    tag="avx512_amx",
    summary="AVX-512 VNNI + AMX (Sapphire Rapids and later Xeons): as avx512_vnni, but oneDNN runs "
            "conv and larger matmuls on AMX tiles, whose float output stage multiplies by one "
            "combined scale",
    aten_capability="avx512", fbgemm_vnni=True, onednn_isa="avx512_core_amx", inductor_lanes=16,
    onednn_f32_conv_bias_first=False, float_gemm_fma_k=MKL_AVX512_SGEMM_K)

CLASSES = (AVX2, AVX512, AVX512_VNNI, AVX512_AMX)
