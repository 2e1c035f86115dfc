"""arm64 (NEON, dotprod): Apple silicon, Graviton, Ampere. PyTorch's quantized engine there is
qnnpack; ATen runs its 'default' capability (32-byte Vectorized, scalar-built)."""
from __future__ import annotations

from .base import CpuClass

ARM64 = CpuClass(
    tag="arm64",
    summary="arm64 NEON (Apple silicon, Graviton, Ampere): qnnpack's NEON kernels, exact int32 sums; "
            "no FBGEMM, no x86 oneDNN kernels",
    arch="arm64", aten_capability="default", fbgemm_vnni=False, onednn_isa=None, inductor_lanes=4,
    baseline_fma=True, vec_zero_minmax="ieee",
    # OpenBLAS's ARMv8 sgemm kernel accumulates along k with fmla inside one K block (GEMM_Q >= 256);
    # recorded on arm64 for K up to 227
    float_gemm_fma_k=256,
    # torch's arm64 wheels have no MKL: their float tanh and sigmoid run NEON/SLEEF code not yet
    # checked against a recording of that CPU
    float_tanh=None, float_sigmoid=None)

CLASSES = (ARM64,)
