"""CPU classes: one object per class of CPU whose integers differ (cpu/x86.py, cpu/arm64.py).

    cpu_class(profile_or_tag) -> CpuClass     the facts every op consults
    detect() -> tag                           this machine's class

A program stores only the tag (profile['isa']); the facts are looked up, so a `.qgp` built on
one machine replays the CPU it was built for.
"""
from __future__ import annotations

import functools
import os
import platform

from . import arm64, x86
from .base import CpuClass

CLASSES = {c.tag: c for c in x86.CLASSES + arm64.CLASSES}
TAGS = tuple(CLASSES)


def cpu_class(profile_or_tag) -> CpuClass:
    """The CpuClass of a profile dict (its 'isa') or of a tag."""
    tag = profile_or_tag.get("isa") if isinstance(profile_or_tag, dict) else profile_or_tag
    try:
        return CLASSES[tag]
    except KeyError:
        raise ValueError(f"unknown isa {tag!r}; choose one of {', '.join(TAGS)}") from None


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset:
    """The first 'flags' line of /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags") or line.startswith("Features"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


# ONEDNN_MAX_CPU_ISA values (oneDNN's cpu_isa_traits) and the class they cap oneDNN at
_ONEDNN_CAPS = {"AVX2": "avx2", "AVX2_VNNI": "avx2", "AVX512_CORE": "avx512", "AVX512_CORE_VNNI": "avx512_vnni",
                "AVX512_CORE_BF16": "avx512_vnni", "AVX512_CORE_FP16": "avx512_vnni",
                "AVX10_1_512": "avx512_vnni", "AVX512_CORE_AMX": "avx512_amx", "AVX10_1_512_AMX": "avx512_amx"}


def detect_from_flags(flags, machine: str = "x86_64", onednn_max: str = "") -> str:
    """The class of a CPU with these cpuinfo flags, oneDNN capped by ONEDNN_MAX_CPU_ISA.

    Flags may be a subset of cpuinfo (a record keeps the relevant ones): arm64 is also told by its
    'asimd' feature; avx512_vnni implies F/BW/VL (every CPU with it has them) and amx_int8 implies
    amx_tile (oneDNN's cpu_isa_traits require both; no CPU has one without the other)."""
    flags = set(flags)
    if machine in ("aarch64", "arm64") or "asimd" in flags:
        return "arm64"
    if "avx512_vnni" in flags or ("avx512f" in flags and "avx512bw" in flags):
        if "avx512_vnni" in flags:
            tag = "avx512_amx" if "amx_int8" in flags else "avx512_vnni"
        else:
            tag = "avx512"
    else:
        tag = "avx2"
    cap = _ONEDNN_CAPS.get((onednn_max or "").strip().upper())
    order = [c.tag for c in x86.CLASSES]
    if cap and tag in order and order.index(cap) < order.index(tag) and tag in ("avx512_amx",):
        # only oneDNN's kernels follow the cap; FBGEMM and the x86 routing keep the real CPU, so a
        # cap below VNNI describes no real class and is not followed
        tag = cap if cap == "avx512_vnni" else tag
    return tag


def detect() -> str:
    """This machine's CPU class (ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI on an AMX host gives avx512_vnni)."""
    return detect_from_flags(cpu_flags(), platform.machine(), os.environ.get("ONEDNN_MAX_CPU_ISA", ""))


__all__ = ["CpuClass", "CLASSES", "TAGS", "cpu_class", "cpu_flags", "detect", "detect_from_flags"]
