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
    onednn_f32_conv_bias_first  oneDNN's f32 direct conv starts each sum at the bias (AVX2
                        jit_avx2_conv_fwd_kernel_f32) rather than adding it after the taps
                        (jit_avx512_common_conv_fwd_kernel_f32)
    onednn_l1_bytes     L1 data cache per core that oneDNN's brgemm heuristics read (brg_blocking_t::L1;
                        48 KiB on Sapphire Rapids and later Xeons)
    float_gemm_fma_k    the largest K for which at::matmul's float32 GEMM (the BLAS sgemm behind
                        at::native::cpublas::gemm: MKL on x86-64, OpenBLAS on arm64) computes every
                        output of an [M, K] x [K, N] product with M, N >= 2 as one FMA chain over k
                        in order from 0.0 (measured against torch.matmul; MKL's AVX-512 sgemm splits
                        K above 384, its AVX2 sgemm and its gemv (M or N == 1) sum in other orders);
                        0: no such rule is known and qgolden refuses the float GEMM
    baseline_fma        ATen code compiled once for the architecture's baseline (e.g.
                        quantized/cpu/UpSampleBilinear2d.cpp) has its float `a*b + c` contracted into
                        one FMA by GCC (-ffp-contract=fast): arm64's baseline has FMA, x86-64's (SSE2) not
    vec_zero_minmax     which zero Vectorized<float>'s max/min return when both operands are zeros:
                        'second' (x86 vmaxps/vminps return their second source operand: Intel SDM
                        MAXPS/MINPS; ATen vec256/vec512_float.h maximum/minimum/clamp_min/clamp_max)
                        or 'ieee' (NEON vmaxq_f32/vminq_f32, FMAX/FMIN: +0 > -0; vec128_float_neon.h)
    float_tanh          the library behind ATen's float32 tanh (native/cpu/UnaryOpsKernel.cpp
                        STATIC_IMPLEMENT_COMPLEX_KERNEL(tanh) -> at::vml::vtanh, ATen/cpu/vml.h):
                        'mkl_vml_ha' where torch links MKL (x86-64 wheels: vmsTanh with VML_HA, every
                        element alike; MKL picks its code path from the CPU it runs on), None where
                        no rule is verified (qgolden refuses the float tanh)
    float_sigmoid       ATen's float32 sigmoid (sigmoid_kernel, UnaryOpsKernel.cpp): 'sleef_exp' =
                        vector 1/(Sleef_expf_u10(0 - x) + 1), scalar tail 1/(1 + expf(-x)) of the C
                        library; None where not verified
    """

    tag: str
    summary: str
    arch: str = "x86_64"
    aten_capability: str = "avx2"
    fbgemm_vnni: bool = False
    onednn_isa: str | None = "avx2"
    inductor_lanes: int = 8
    onednn_f32_conv_bias_first: bool = True
    onednn_l1_bytes: int = 48 * 1024
    baseline_fma: bool = False
    vec_zero_minmax: str = "second"
    float_gemm_fma_k: int = 0
    float_tanh: str | None = "mkl_vml_ha"
    float_sigmoid: str | None = "sleef_exp"

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
    AVX512_STUBS = frozenset({"qavg_pool2d_nhwc", "qavg_pool3d_nhwc",
                              # float kernels: aten/src/ATen/native/cpu/SoftMaxKernel.cpp
                              "softmax_lastdim_kernel", "softmax_kernel",
                              # native/cpu/UnaryOpsKernel.cpp sigmoid_kernel: measured, its vector loop
                              # takes 32 floats at a time on AVX-512 (pairs of 16-lane vectors)
                              "sigmoid_kernel"})

    def aten_vector_bytes(self, stub: str, capability: str | None = None) -> int:
        """Bytes of Vectorized<quint8> in ATen's kernel for `stub` (e.g. 'qadd', 'qavg_pool2d_nhwc'):
        64 only for the AVX512-registered stubs under the avx512 capability, else 32 (the AVX2
        kernel, and the 32-byte default Vectorized of the scalar build)."""
        cap = capability or self.aten_capability
        return 64 if cap == "avx512" and stub in self.AVX512_STUBS else 32

    def aten_float_lanes(self, stub: str, capability: str | None = None) -> int:
        """Vectorized<float>::size() in ATen's float kernel for `stub` (e.g. 'sum' of
        native/cpu/SumKernel.cpp, REGISTER_DISPATCH only: its AVX2 kernel runs on AVX-512 too;
        'softmax_lastdim_kernel', ALSO_REGISTER_AVX512_DISPATCH): 16 or 8 on x86, 4 on arm64
        (NEON Vectorized<float>, ATen/cpu/vec/vec128/vec128_float_neon.h)."""
        if self.arch == "arm64":
            return 4
        return self.aten_vector_bytes(stub, capability) // 4

    # --- FBGEMM -------------------------------------------------------------------------
    @property
    def fbgemm_pairs_saturate(self) -> bool:
        """FBGEMM's u8*s8 GEMM sums pairs of products in saturating int16 (vpmaddubsw)."""
        return not self.fbgemm_vnni

    @property
    def embedding_byte_neon(self) -> bool:
        """PyTorch's 8-bit quantized embedding bag without per_sample_weights runs ATen's NEON kernel
        (aten/src/ATen/native/quantized/cpu/qembeddingbag.cpp embedding_lookup_byte_neon_impl: biases of
        up to 16 indices summed first, then q*scale added per index) where PyTorch is built without
        FBGEMM on aarch64; x86 builds run FBGEMM's EmbeddingSpMDM (one fma per index, bias added first)."""
        return self.arch == "arm64"

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

    @property
    def mlas_logistic_clamps_one(self) -> bool:
        """MlasComputeLogistic clamps p/q + 0.5 to [0, 1] in the generic / NEON kernel
        (mlas/lib/logistic.cpp, MlasClampFloat32x4(.., 0, 1)); the x86 kernel (x86_64/LogisticKernelFma3.S,
        every x86 class here) clamps below only (vmaxps with 0), so values reach 1.0000001
        (measured: ORT 1.32 gives 1.0000001 for x = 17.844 on an AMX Xeon)."""
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

    # Output stages of oneDNN's int8 kernels (requantize_onednn), read from oneDNN 3.12:
    #   combined    f32(acc * f32(src*wei)), + bias, * 1/dst: jit_uni_x8s8s32x (AVX2 jit conv), the AMX
    #               brgemm micro-kernel (brgemm/jit_brgemm_amx_uker.cpp multiplies the two scales first),
    #               the AVX2 gemm matmul
    #   sequential  f32(f32(acc * src) * wei), + bias, * 1/dst: brgemm/jit_brgemm_kernel.cpp (every non-uker
    #               brgemm: VNNI brgemm conv / 1x1 / matmul, AMX 1x1 without the uker), brgemm/jit_brdgmm_kernel.cpp
    #               (depthwise), jit_avx512_core_x8s8s32x_conv_kernel.cpp, jit_avx512_core_amx_conv_kernel.cpp
    #   ref         one scale after the other, then a division by dst: ref:any (AVX2 grouped convs)
    ONEDNN_OUTPUT_STAGES = {"jit": "combined", "jit_dw": "combined", "ref": "ref", "gemm": "combined",
                            "brdgmm_dw": "sequential", "brgemm": "sequential", "brgconv_1x1_amx_nouker": "sequential",
                            "brgconv_1x1_amx": "combined", "brg_conv_fwd_amx": "combined",
                            "brg_conv_fwd_amx_nouker": "sequential",
                            "brg_matmul": "sequential", "brg_matmul_amx": "combined"}

    def onednn_output_stage(self, kernel: str) -> str:
        """'combined', 'sequential' or 'ref': how oneDNN kernel family `kernel` (onednn_conv_kernel,
        onednn_matmul_kernel) scales its int32 sums (see ONEDNN_OUTPUT_STAGES for the sources)."""
        return self.ONEDNN_OUTPUT_STAGES[kernel]

    def onednn_conv_kernel(self, c_per_g: int, k_per_g: int, groups: int, kernel=(1, 1), stride=(1, 1),
                           padding=(0, 0), batch: int = 1, out_hw=(1, 1), num_threads: int = 1) -> str:
        """The oneDNN u8s8u8 conv family this class runs (src/cpu/cpu_convolution_list.cpp order, first
        implementation whose init_conf accepts the shape):

        avx2           jit_dw / jit / ref (jit_uni_x8s8s32x_fwd_kernel::init_conf; ONEDNN_VERBOSE)
        avx512_core(_vnni)  depthwise (G > 1, IC/G = OC/G = 1): brdgmm_dw; else the brgemm kernels
        avx512_core_amx depthwise: brdgmm_dw (no AMX). Shapes of at most 4 output pixels whose
                        mb*G*IC*OC fits L1 (L1/2 for 1x1): the VNNI brgemm ("dispatch small shapes to
                        VNNI", jit_brgemm_conv_utils.cpp init_conf). 1x1 without padding: brgemm_1x1 on
                        AMX when IC/G is a multiple of 4, or strided with IC/G <= 64 (its blocking
                        fails otherwise, measured with ONEDNN_VERBOSE: jit_avx512_core_amx or VNNI
                        brgemm, both sequential); without its unrolled kernel (uker) when
                        nthr > 1, mb == 1, IC*OH <= 28K and OC*OH <= 14K (init_1x1_conf). Other
                        convs: brgemm on AMX (uker). Measured on a Sapphire Rapids Xeon, oneDNN 3.12:
                        1229 of 1233 random shapes (the others: IC/G <= 4 on 5x5 inputs, VNNI).
        """
        depthwise = groups > 1 and c_per_g == 1 and k_per_g == 1
        if self.onednn_isa == "avx2":
            if depthwise:
                return "jit_dw"
            return "jit" if groups == 1 or (c_per_g % 4 == 0 and k_per_g % 4 == 0) else "ref"
        if depthwise:
            return "brdgmm_dw"
        if not self.onednn_amx:
            return "brgemm"
        c4 = -(-c_per_g // 4) * 4  # IC zero-padded to the VNNI block of 4
        one_by_one = tuple(kernel) == (1, 1) and not any(padding)
        pixels = int(out_hw[0]) * int(out_hw[1])
        limit = self.onednn_l1_bytes // 2 if one_by_one else self.onednn_l1_bytes
        if pixels <= 4 and c4 <= 512 and batch * groups * c4 * k_per_g <= limit:
            return "brgemm"
        if one_by_one:
            if not (c_per_g % 4 == 0 or (max(stride) > 1 and c_per_g <= 64)):
                return "brgemm"
            oh = int(out_hw[0])
            if num_threads > 1 and batch == 1 and c4 * oh <= 28 * 1024 and k_per_g * oh <= 14 * 1024:
                return "brgconv_1x1_amx_nouker"
            return "brgconv_1x1_amx"
        if int(out_hw[1]) >= 256:
            return "brg_conv_fwd_amx_nouker"  # init_conf: use_uker only for out_w < 256
        return "brg_conv_fwd_amx"

    def onednn_conv_not_modelled(self, family: str, c_per_g: int, k_per_g: int, groups: int, kernel=(1, 1),
                                 out_hw=(1, 1)):
        """Why the integers of oneDNN conv kernel `family` (onednn_conv_kernel) for this shape are not
        reproduced, or None. The AMX brgemm conv (brg_conv_fwd_amx, with and without uker) returns
        integers that are not the conv's for grouped convs with input channels per group not a
        multiple of 4 and many output channels per group (measured, torch 2.13 / oneDNN 3.12 on a
        Sapphire Rapids Xeon: up to 204 steps from the exact sums requantized, FBGEMM within the
        rounding). Which shapes exactly depends on the kernel's blocking; every measured bad shape
        has a kernel of more than one tap and OC/G > 32, or OC/G > 16 with more than one output row
        and a kernel wider than 1, and those are refused (measured: IC/G 1-9, OC/G 1-65, kernels
        1x1-5x5, 1x3, 3x1, 2x2, maps 1x9-30x30; IC/G = 4, 8, OC/G <= 16 and, with one output row,
        OC/G <= 32 are exact; so are the full conformance records). The rule is a cover of the bad
        shapes measured, so a few exact shapes are refused too."""
        if not (family.startswith("brg_conv_fwd_amx") and groups > 1 and c_per_g % 4) or tuple(kernel) == (1, 1):
            return None  # a padded or strided 1x1 is exact (recorded: IC/G 2, OC/G 96, stride 2, pad 1)
        wide = int(kernel[1]) > 1 and int(out_hw[0]) > 1
        if k_per_g > 32 or (k_per_g > 16 and wide):
            return (f"oneDNN's AMX grouped conv ({family}) returns integers that are not the convolution's for "
                    f"{c_per_g} input and {k_per_g} output channels per group ({groups} groups, kernel "
                    f"{'x'.join(map(str, kernel))}): qgolden does not reproduce them; use --engine fbgemm, or "
                    "a multiple of 4 input channels per group")
        return None

    def onednn_int8_combined_scale(self, op: str, shape: dict, threads: int = 1) -> bool:
        """Whether oneDNN's int8 kernel for this op scales its int32 sums by one f32(sx * sw[n])
        (True) or by sx, then sw[n] (False): the output stage of its kernel family. op 'linear':
        shape {m, k, n}; op 'conv': shape {nb, c_in, c_out, kernel, stride, padding, groups, out_hw}."""
        if op == "linear":
            family = self.onednn_matmul_kernel(int(shape["m"]), int(shape["k"]), int(shape["n"]))
        else:
            groups = int(shape["groups"])
            family = self.onednn_conv_kernel(int(shape["c_in"]) // groups, int(shape["c_out"]) // groups, groups,
                                             tuple(shape["kernel"]), tuple(shape["stride"]), tuple(shape["padding"]),
                                             int(shape["nb"]), tuple(shape["out_hw"]), threads)
        return self.onednn_output_stage(family) == "combined"

    def onednn_matmul_kernel(self, m: int, k: int, n: int) -> str:
        """The oneDNN u8s8 matmul family of quantized::linear (onednn engine) for [M, K] x [K, N]:
        avx2 'gemm'; AVX-512 'brg_matmul'; AMX 'brg_matmul_amx' except the small shapes that
        brgemm_matmul_utils.cpp init_brgemm_matmul_conf sends to VNNI (int8, 2-D:
        M == 1 and K == 256, or M <= 32 and M*N <= 256, or K <= 16)."""
        if self.onednn_isa == "avx2":
            return "gemm"
        if self.onednn_amx and not ((m == 1 and k == 256) or (m <= 32 and m * n <= 256) or k <= 16):
            return "brg_matmul_amx"
        return "brg_matmul"

    def float_gemm_is_fma_chain(self, m: int, k: int, n: int) -> bool:
        """Whether at::matmul's float32 [M, K] x [K, N] GEMM on this class is one in-order FMA chain
        per output (see float_gemm_fma_k): M, N >= 2 (M or N == 1 goes to gemv) and K <= float_gemm_fma_k."""
        return m >= 2 and n >= 2 and 1 <= k <= self.float_gemm_fma_k

    # --- Inductor -----------------------------------------------------------------------
    @property
    def inductor_vector_lanes(self) -> int:
        return self.inductor_lanes

    def describe(self) -> str:
        return f"{self.tag}: {self.summary}"

