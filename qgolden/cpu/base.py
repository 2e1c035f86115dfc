"""What one CPU class makes PyTorch's quantized kernels compute.

A CPU class is a handful of facts, each read from the kernel source that consults it; every
op asks its class instead of testing tags. A new class is one subclass in this package plus
a conformance record of that CPU (docs/numerics.md, "CPU classes").
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CpuClass:
    """Facts about one CPU class (x86: the ISA extensions the kernels select on).

    tag                 the --isa name stored in every program
    arch                'x86_64' or 'arm64'
    aten_capability     ATen's dispatch capability: 'avx2', 'avx512' or 'default'
                        (torch.backends.cpu.get_cpu_capability(); arm64 runs 'default')
    fbgemm_vnni         FBGEMM's u8*s8 GEMM uses vpdpbusd (exact int32); without it vpmaddubsw
                        sums adjacent products in saturating int16 (fbgemm src/Utils.cc fbgemmHasAvx512VnniSupport)
    onednn_isa          the oneDNN ISA its jit kernels are generated for: 'avx2', 'avx512_core',
                        'avx512_core_vnni' or 'avx512_core_amx' (None: no x86 oneDNN kernels)
    inductor_lanes      float32 lanes of torch.compile's C++ vector code (VecAVX2 8, VecAVX512 16)
    baseline_fma        ATen code compiled once for the architecture's baseline (e.g.
                        quantized/cpu/UpSampleBilinear2d.cpp) has its float `a*b + c` contracted into
                        one FMA by GCC (-ffp-contract=fast): arm64's baseline has FMA, x86-64's (SSE2) not
    """

    tag: str
    summary: str
    arch: str = "x86_64"
    aten_capability: str = "avx2"
    fbgemm_vnni: bool = False
    onednn_isa: str | None = "avx2"
    inductor_lanes: int = 8
    baseline_fma: bool = False

    @property
    def kernel_fma(self) -> bool:
        """ATen's per-capability kernel files (native/cpu/, quantized/cpu/kernels/) are compiled with
        FMA on every class (AVX2/AVX512 builds use -mfma; arm64 has it in its baseline), so GCC
        contracts their scalar float `a*b + c` into one FMA."""
        return True

    # --- ATen ---------------------------------------------------------------------------
    # Stubs registered with ALSO_REGISTER_AVX512_DISPATCH get a real AVX512 kernel; every other
    # quantized stub leaves the AVX512 slot empty and DispatchStub falls back to the AVX2 kernel
    # (aten/src/ATen/native/quantized/cpu/kernels/QuantizedOpKernels.cpp, ATen/native/DispatchStub.h).
    AVX512_STUBS = frozenset({"qavg_pool2d_nhwc", "qavg_pool3d_nhwc"})

    def aten_vector_bytes(self, stub: str, capability: str | None = None) -> int:
        """Bytes of Vectorized<quint8> in ATen's kernel for `stub` (e.g. 'qadd', 'qavg_pool2d_nhwc'):
        64 only for the AVX512-registered stubs under the avx512 capability, else 32 (the AVX2
        kernel, and the 32-byte default Vectorized of the scalar build)."""
        cap = capability or self.aten_capability
        return 64 if cap == "avx512" and stub in self.AVX512_STUBS else 32

    # --- FBGEMM -------------------------------------------------------------------------
    @property
    def fbgemm_pairs_saturate(self) -> bool:
        """FBGEMM's u8*s8 GEMM sums pairs of products in saturating int16 (vpmaddubsw)."""
        return not self.fbgemm_vnni

    @property
    def x86_conv_to_onednn(self) -> bool:
        """The x86 engine sends quantized conv to oneDNN (symmetric weights, groups <= 100)
        only where cpuinfo reports AVX512-VNNI (onednn_utils::should_use_onednn_quant,
        aten/src/ATen/native/quantized/cpu/OnednnUtils.h); it reads the CPU flag itself, so
        ONEDNN_MAX_CPU_ISA does not change the routing."""
        return self.fbgemm_vnni and self.arch == "x86_64"

    # --- oneDNN -------------------------------------------------------------------------
    @property
    def onednn_pairs_saturate(self) -> bool:
        """oneDNN's int8 jit kernels pair u8*s8 products in saturating int16 below VNNI."""
        return self.onednn_isa in ("avx2", "avx512_core")

    @property
    def onednn_amx(self) -> bool:
        return self.onednn_isa == "avx512_core_amx"

    def onednn_gemm_k_blocks(self, k: int) -> list:
        """K-block starts of oneDNN's jit int8 GEMM (src/cpu/x64/gemm/gemm_driver.cpp
        get_k_padd + the Bk loop of gemm_kernel_driver; block sizes from gemm_info.cpp):
        k <= bk_traditional: one block; k < 2*bk: k_padd = (k+1)//2; else blocks of bk.
        AVX2: bk_traditional 256, bk 384; AVX512 core: 384, 768. Blocks only matter where
        pairs saturate (VNNI sums exactly)."""
        bk_trad, bk = (256, 384) if self.onednn_isa == "avx2" else (384, 768 if self.onednn_isa == "avx512_core" else 1536)
        if k <= bk_trad:
            return [0]
        kp = (k + 1) // 2 if k < 2 * bk else bk
        return list(range(0, k, kp))

    # --- Inductor -----------------------------------------------------------------------
    @property
    def inductor_vector_lanes(self) -> int:
        return self.inductor_lanes

    def describe(self) -> str:
        return f"{self.tag}: {self.summary}"
