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
    onednn_int8_scales  how oneDNN's int8 conv/matmul kernels scale the int32 sum to float
                        (onednn_int8_combined_scale): 'combined', 'sequential' or 'amx'
    onednn_f32_conv_bias_first  oneDNN's f32 direct conv starts each sum at the bias (AVX2
                        jit_avx2_conv_fwd_kernel_f32) rather than adding it after the taps
                        (jit_avx512_common_conv_fwd_kernel_f32)
    """

    tag: str
    summary: str
    arch: str = "x86_64"
    aten_capability: str = "avx2"
    fbgemm_vnni: bool = False
    onednn_isa: str | None = "avx2"
    inductor_lanes: int = 8
    onednn_int8_scales: str = "combined"
    onednn_f32_conv_bias_first: bool = True

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

    # --- ONNX Runtime (MLAS) ----------------------------------------------------------------
    @property
    def mlas_u8s8_saturates(self) -> bool:
        """MLAS's u8*s8 int8 GEMM / conv kernels sum adjacent byte products in saturating int16
        (vpmaddubsw) on x86 without VNNI: AVX2 and AVX-512 core (onnxruntime/core/mlas/lib/
        qgemm_kernel_avx2.cpp, qgemm_kernel_avx512core.cpp; platform.cpp selects the VNNI / AMX
        kernels, which sum exactly, where cpuid reports them). u8*u8 widens to int16 first: exact."""
        return self.arch == "x86_64" and not self.fbgemm_vnni

    @property
    def mlas_fixed_point(self) -> bool:
        """MLAS's NEON kernels compute QLinearAdd and QLinearGlobalAveragePool in fixed point
        (mlas/lib/qladd.cpp, qlgavgpool.cpp, MLAS_NEON_INTRINSICS); x86 uses float32 (AVX2 FMA, SSE2)."""
        return self.arch == "arm64"

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

    # oneDNN int8 kernels with a float32 output stage (onednn::qconv_pointwise / qlinear_pointwise).
    # Their store multiplies the int32 sum by the src and weight scales either at once or in turn
    # (src/cpu/x64/brgemm/jit_brgemm_amx_uker.cpp: scale = f32(wei * src), then acc * scale;
    # jit_brgemm_kernel.cpp store_accumulators_apply_post_ops and jit_brdgmm_kernel.cpp: acc * src,
    # then * wei; jit_uni_x8s8s32x_conv_kernel.cpp and gemm_x8s8s32x_matmul (precompute_scales):
    # one combined scale).
    AMX_L1_BYTES = 48 * 1024  # brg_blocking_t::L1, the per-core L1d of the AMX Xeons (48 KiB)

    def onednn_int8_combined_scale(self, op: str, shape: dict, threads: int = 1) -> bool:
        """Whether oneDNN's int8 kernel for this op scales by one f32(sx * sw[n]) (True) or by sx,
        then sw[n] (False). op 'linear': shape {m, k, n}; op 'conv': shape {nb, c_in, c_out, kernel,
        stride, padding, groups, in_hw, out_hw}. Only the 'amx' class depends on the shape
        (onednn_amx_unrolled_kernel)."""
        if self.onednn_int8_scales != "amx":
            return self.onednn_int8_scales == "combined"
        return onednn_amx_unrolled_kernel(op, shape, threads, self.AMX_L1_BYTES)

    # --- Inductor -----------------------------------------------------------------------
    @property
    def inductor_vector_lanes(self) -> int:
        return self.inductor_lanes

    def describe(self) -> str:
        return f"{self.tag}: {self.summary}"


def onednn_amx_matmul(m: int, k: int, n: int) -> bool:
    """Whether oneDNN's brgemm matmul runs an int8 (m x k) @ (k x n) on AMX: init_brgemm_matmul_conf
    (src/cpu/x64/matmul/brgemm_matmul_utils.cpp) sends 2-D 'small shapes' to the VNNI kernel:
    (m == 1 and k == 256) or (m <= 32 and m * n <= 256) or k <= 16. PyTorch creates the primitive
    with static shapes, so no runtime-M tail kernel (brgemm_matmul.cpp backup_isa) is involved."""
    small = (m == 1 and k == 256) or (m <= 32 and m * n <= 256) or k <= 16
    return not small


def onednn_amx_unrolled_kernel(op: str, shape: dict, threads: int, l1_bytes: int) -> bool:
    """Whether oneDNN on an AMX CPU runs this int8 op with the unrolled AMX kernel
    (jit_brgemm_amx_uker, one combined scale); otherwise a VNNI brgemm/brdgmm kernel or the AMX
    kernel that is not unrolled (jit_brgemm_kernel), both of which scale in turn.

    linear: onednn_amx_matmul (every AMX matmul kernel is unrolled: brgemm_matmul.cpp use_uker).
    conv (src/cpu/x64/jit_brgemm_conv_utils.cpp, checked on 450 random shapes x 1 and 2 threads):
      depthwise (groups == c_in == c_out): brdgmm_dw, never AMX;
      small shapes go to VNNI: out_h*out_w <= 4 and c_in/g <= 512 and nb*c_in*c_out/g
        <= L1 (L1/2 for 1x1) (init_jcp is_small_shape);
      1x1 (kernel 1, padding 0) with stride 1 and c_in/g not a multiple of 4 (AMX would zero-pad
        the channels and copy the input: not taken) goes to VNNI;
      AMX 1x1 is unrolled unless oneDNN runs it as a 'small mb' problem (init_1x1_conf):
        threads > 1 and nb == 1 and c_in*out_h <= 28K and c_out*out_h <= 14K;
      other AMX convs are unrolled (init_conf: use_uker for out_w < 256)."""
    if op == "linear":
        return onednn_amx_matmul(int(shape["m"]), int(shape["k"]), int(shape["n"]))
    nb, c_in, c_out, groups = (int(shape[k]) for k in ("nb", "c_in", "c_out", "groups"))
    kh, kw = (int(v) for v in shape["kernel"])
    oh, ow = (int(v) for v in shape["out_hw"])
    if groups == c_in == c_out and groups > 1:
        return False
    cpg = c_in // groups
    is_1x1 = (kh, kw) == (1, 1) and all(int(p) == 0 for p in shape["padding"])
    limit = l1_bytes // 2 if is_1x1 else l1_bytes
    if oh * ow <= 4 and cpg <= 512 and nb * c_in * (c_out // groups) <= limit:
        return False
    if is_1x1:
        if all(int(s) == 1 for s in shape["stride"]) and cpg % 4:
            return False
        small_mb = threads > 1 and nb == 1 and cpg * oh <= 28 * 1024 and (c_out // groups) * oh <= 14 * 1024
        return not small_mb
    return ow < 256
