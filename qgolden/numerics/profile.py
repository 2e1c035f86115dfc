"""Engine profiles: which kernel runs each op, and the CPU features that change its arithmetic.

A profile is a plain dict stored inside every program, so a `.qgp` built on one
machine replays the arithmetic of the machine it was built *for*:

    engine        x86 | fbgemm | qnnpack | onednn    (torch.backends.quantized.engine)
    isa           avx2 | avx512 | avx512_vnni         (what the target CPU offers)
    vector_width  elements of Vectorized<quint8>: 32 on AVX2, 64 on AVX512
                  (ATen's elementwise quantized kernels treat the tail differently)
    num_threads   torch's intra-op threads (large elementwise ops are chunked per thread)

Derived facts (functions below, not stored, so they cannot disagree):
    linear_backend(p)   fbgemm | qnnpack | onednn
    conv_backend(p)     fbgemm | qnnpack | onednn
    gemm_saturates(p)   FBGEMM u8*s8 pair sums saturate to int16 (vpmaddubsw) without VNNI
"""
from __future__ import annotations

import functools

ENGINES = ("x86", "fbgemm", "qnnpack", "onednn")
# runtimes of PT2E / torchao Q/DQ graphs (importers/pt2e.py), and the kernel family each uses
PT2E_BACKENDS = {"pt2e-reference": "pt2e_reference", "x86-inductor": "onednn_inductor", "xnnpack": "xnnpack"}
ISAS = ("avx2", "avx512", "avx512_vnni")


@functools.lru_cache(maxsize=1)
def _cpu_flags() -> frozenset:
    """The first 'flags' line of /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def detect_isa() -> str:
    """The ISA FBGEMM/oneDNN use on this machine, honouring FBGEMM_ENABLE_INSTRUCTIONS."""
    import os

    forced = os.environ.get("FBGEMM_ENABLE_INSTRUCTIONS", "").upper()
    flags = _cpu_flags()
    if "avx512_vnni" in flags and "avx512f" in flags:
        isa = "avx512_vnni"
    elif "avx512f" in flags and "avx512bw" in flags:
        isa = "avx512"
    else:
        isa = "avx2"
    if forced == "AVX2":
        isa = "avx2"
    elif forced.startswith("AVX512") and isa == "avx512_vnni":
        isa = "avx512_vnni" if "E1" in forced else "avx512"
    return isa


def detect_vector_width() -> int:
    """Vectorized<quint8>::size() for ATen's dispatch on this machine (ATEN_CPU_CAPABILITY honoured)."""
    import os

    cap = os.environ.get("ATEN_CPU_CAPABILITY", "").lower()
    if cap == "default":
        return 32  # the scalar fallback Vectorized<T> still uses 32-byte vectors
    if cap == "avx2":
        return 32
    isa = detect_isa_cpu_only()
    return 64 if isa.startswith("avx512") and cap != "avx2" else 32


def detect_isa_cpu_only() -> str:
    saved = None
    import os

    saved = os.environ.pop("FBGEMM_ENABLE_INSTRUCTIONS", None)
    try:
        return detect_isa()
    finally:
        if saved is not None:
            os.environ["FBGEMM_ENABLE_INSTRUCTIONS"] = saved


def make_profile(engine: str | None = None, isa: str | None = None, num_threads: int | None = None) -> dict:
    """Profile for `engine` on `isa`; None means what this machine and torch do by default.

    num_threads: torch's intra-op threads. ATen splits elementwise kernels over more than
    32768 elements into per-thread chunks, each with its own scalar tail.
    """
    if engine is None:
        engine = "x86"
    if engine not in ENGINES and engine not in PT2E_BACKENDS:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES + tuple(PT2E_BACKENDS))}")
    if isa is None:
        isa = detect_isa()
        width = detect_vector_width()
    else:
        if isa not in ISAS:
            raise ValueError(f"unknown isa {isa!r}; choose one of {', '.join(ISAS)}")
        width = 64 if isa.startswith("avx512") else 32
    if num_threads is None:
        import sys

        torch = sys.modules.get("torch")
        num_threads = torch.get_num_threads() if torch is not None else 1
    return {"engine": engine, "isa": isa, "vector_width": width, "num_threads": int(num_threads)}


def linear_backend(p: dict) -> str:
    """x86 and fbgemm both pack linear weights for FBGEMM (qlinear_prepack.cpp).
    PT2E profiles: pt2e_reference (torchao reference representation), onednn_inductor
    (onednn::qlinear_pointwise), xnnpack (ExecuTorch XNNPACK delegate)."""
    if p["engine"] in PT2E_BACKENDS:
        return PT2E_BACKENDS[p["engine"]]
    return {"x86": "fbgemm", "fbgemm": "fbgemm", "qnnpack": "qnnpack", "onednn": "onednn"}[p["engine"]]


def conv_backend(p: dict, groups: int = 1, symmetric_weights: bool = True) -> str:
    """x86 conv goes to oneDNN only on AVX512-VNNI with groups<=100 and symmetric weights
    (onednn_utils::should_use_onednn_quant, OnednnUtils.h); otherwise FBGEMM."""
    e = p["engine"]
    if e in PT2E_BACKENDS:
        return PT2E_BACKENDS[e]
    if e == "x86":
        if p["isa"] == "avx512_vnni" and groups <= 100 and symmetric_weights:
            return "onednn"
        return "fbgemm"
    return {"fbgemm": "fbgemm", "qnnpack": "qnnpack", "onednn": "onednn"}[e]


def kernel_profile(p: dict) -> dict:
    """The profile whose integer conv/linear kernels a runtime runs: x86-inductor's
    onednn::qconv_pointwise / qlinear_pointwise are oneDNN's int8 kernels ('onednn', pair
    saturation on AVX2 included); every other profile runs its own."""
    return dict(p, engine="onednn") if p.get("engine") == "x86-inductor" else p


def gemm_saturates(p: dict) -> bool:
    """FBGEMM's u8*s8 GEMM sums adjacent products in int16 with saturation (vpmaddubsw)
    unless the CPU has VNNI (vpdpbusd, exact int32)."""
    return p["isa"] != "avx512_vnni"
