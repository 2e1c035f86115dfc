"""Engine profiles: which kernel runs each op, and the CPU class whose arithmetic it replays.

A profile is a plain dict stored inside every program, so a `.qgp` built on one
machine replays the arithmetic of the machine it was built *for*:

    engine        x86 | fbgemm | qnnpack | onednn    (torch.backends.quantized.engine), or a PT2E runtime
    isa           the CPU class tag (qgolden/cpu: avx2 | avx512 | avx512_vnni | avx512_amx | arm64)
    vector_width  bytes of Vectorized<quint8> under ATen's dispatch capability (64 under avx512,
                  32 under avx2/default); ATEN_CPU_CAPABILITY can lower it on a host
    num_threads   torch's intra-op threads (large elementwise ops are chunked per thread)

Derived facts (functions below and the CpuClass, not stored, so they cannot disagree):
    linear_backend(p)   fbgemm | qnnpack | onednn
    conv_backend(p)     fbgemm | qnnpack | onednn
    gemm_saturates(p)   FBGEMM u8*s8 pair sums saturate to int16 (vpmaddubsw) without VNNI
    aten_vector_width(p, stub)  the Vectorized<quint8> width of one ATen quantized kernel
"""
from __future__ import annotations

import os

from ..cpu import TAGS, cpu_class, cpu_flags, detect

ENGINES = ("x86", "fbgemm", "qnnpack", "onednn")
# runtimes of PT2E / torchao Q/DQ graphs (importers/pt2e.py), and the kernel family each uses
PT2E_BACKENDS = {"pt2e-reference": "pt2e_reference", "x86-inductor": "onednn_inductor", "xnnpack": "xnnpack"}
# runtimes of ONNX models (importers/onnx.py), and the kernel family each uses
ONNX_RUNTIMES = {"onnxruntime": "mlas", "onnx-reference": "onnx_reference"}
# every engine a profile can name
ALL_ENGINES = ENGINES + tuple(PT2E_BACKENDS) + tuple(ONNX_RUNTIMES)
ISAS = TAGS


def detect_isa() -> str:
    """This machine's CPU class tag (cpu.detect)."""
    return detect()


def detect_isa_cpu_only() -> str:
    """This machine's CPU class from its flags alone (no environment caps)."""
    from ..cpu import detect_from_flags
    import platform

    return detect_from_flags(cpu_flags(), platform.machine())


def detect_vector_width() -> int:
    """Vectorized<quint8>::size() under ATen's dispatch capability on this machine
    (ATEN_CPU_CAPABILITY honoured: it can only lower the capability)."""
    cap = os.environ.get("ATEN_CPU_CAPABILITY", "").lower()
    if cap in ("default", "avx2"):
        return 32
    return 64 if cpu_class(detect()).aten_capability == "avx512" else 32


def make_profile(engine: str | None = None, isa: str | None = None, num_threads: int | None = None) -> dict:
    """Profile for `engine` on `isa`; None means what this machine and torch do by default.

    num_threads: torch's intra-op threads. ATen splits elementwise kernels over more than
    32768 elements into per-thread chunks, each with its own scalar tail.
    """
    if engine is None:
        engine = "x86"
    if engine not in ALL_ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of "
                         f"{', '.join(ALL_ENGINES)}")
    if isa is None:
        isa = detect_isa()
        width = detect_vector_width()
    else:
        width = 64 if cpu_class(isa).aten_capability == "avx512" else 32
    if num_threads is None:
        import sys

        torch = sys.modules.get("torch")
        num_threads = torch.get_num_threads() if torch is not None else 1
    return {"engine": engine, "isa": isa, "vector_width": width, "num_threads": int(num_threads)}


def aten_vector_width(p: dict, stub: str) -> int:
    """Bytes of Vectorized<quint8> in ATen's kernel for `stub` ('qadd', 'qmul', 'qbatch_norm',
    'qadaptive_avg_pool2d_nhwc', 'qavg_pool2d_nhwc', ...) under this profile: most quantized
    stubs run their AVX2 kernel even on AVX-512 (CpuClass.aten_vector_bytes)."""
    cap = "avx512" if int(p.get("vector_width", 32)) >= 64 else "avx2"
    return cpu_class(p).aten_vector_bytes(stub, cap)


def aten_float_lanes(p: dict, stub: str) -> int:
    """Vectorized<float>::size() in ATen's float kernel for `stub` under this profile
    (CpuClass.aten_float_lanes; ATEN_CPU_CAPABILITY=avx2 on an AVX-512 host gives 8)."""
    cap = "avx512" if int(p.get("vector_width", 32)) >= 64 else "avx2"
    return cpu_class(p).aten_float_lanes(stub, cap)


def linear_backend(p: dict) -> str:
    """x86 and fbgemm both pack linear weights for FBGEMM (qlinear_prepack.cpp).
    PT2E profiles: pt2e_reference (torchao reference representation), onednn_inductor
    (onednn::qlinear_pointwise), xnnpack (ExecuTorch XNNPACK delegate)."""
    if p["engine"] in PT2E_BACKENDS:
        return PT2E_BACKENDS[p["engine"]]
    if p["engine"] in ONNX_RUNTIMES:
        return ONNX_RUNTIMES[p["engine"]]
    return {"x86": "fbgemm", "fbgemm": "fbgemm", "qnnpack": "qnnpack", "onednn": "onednn"}[p["engine"]]


def conv_backend(p: dict, groups: int = 1, symmetric_weights: bool = True) -> str:
    """x86 conv goes to oneDNN only on a VNNI CPU with groups<=100 and symmetric weights
    (onednn_utils::should_use_onednn_quant, OnednnUtils.h); otherwise FBGEMM."""
    e = p["engine"]
    if e in PT2E_BACKENDS:
        return PT2E_BACKENDS[e]
    if e in ONNX_RUNTIMES:
        return ONNX_RUNTIMES[e]
    if e == "x86":
        if cpu_class(p).x86_conv_to_onednn and groups <= 100 and symmetric_weights:
            return "onednn"
        return "fbgemm"
    return {"fbgemm": "fbgemm", "qnnpack": "qnnpack", "onednn": "onednn"}[e]


def kernel_profile(p: dict) -> dict:
    """The profile whose integer conv/linear kernels a runtime runs: x86-inductor's
    onednn::qconv_pointwise / qlinear_pointwise are oneDNN's int8 kernels ('onednn', pair
    saturation on AVX2 included); every other profile runs its own."""
    return dict(p, engine="onednn") if p.get("engine") == "x86-inductor" else p


def gemm_saturates(p: dict) -> bool:
    """FBGEMM's and oneDNN's u8*s8 GEMMs sum adjacent products in int16 with saturation
    (vpmaddubsw) unless the CPU has VNNI (vpdpbusd, exact int32)."""
    return cpu_class(p).fbgemm_pairs_saturate
