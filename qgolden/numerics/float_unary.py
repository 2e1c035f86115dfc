"""float32 sigmoid and tanh of ATen's eager float kernels, reproduced bit for bit (the gates of the
dynamic quantized RNNs: aten/src/ATen/native/RNN.cpp LSTMCell / GRUCell / SimpleCell).

    aten_sigmoid(x, rows, profile)   sigmoid_kernel (native/cpu/UnaryOpsKernel.cpp) through cpu_kernel_vec:
                                     vector op 1 / (Sleef_expf_u10(0 - x) + 1) on whole pairs of vectors
                                     of each contiguous row, scalar op 1 / (1 + expf(-x)) (the C library's
                                     expf) on the rest (vectorized_loop, ATen/native/cpu/Loops.h)
    aten_tanh(x, profile)            tanh_kernel: at::vml::vtanh, MKL's vmsTanh(VML_HA) where torch links
                                     MKL (CpuClass.float_tanh), called, not imitated: MKL's tanh is not
                                     correctly rounded and its algorithm is not public
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import importlib.util
import os
from pathlib import Path

import numpy as np

from .elementwise import GRAIN_SIZE, num_threads
from .expf import libm_expf, sleef_expf_u10
from .profile import aten_float_lanes

# mkl_vml_defines.h: VML_HA | VML_FTZDAZ_OFF | VML_ERRMODE_IGNORE, the mode ATen passes (ATen/cpu/vml.h)
VML_MODE_ATEN = 0x2 | 0x140000 | 0x100


def sigmoid_vector(x) -> np.ndarray:
    """sigmoid_kernel's vector op: a = 0 - x; a = a.exp() (Sleef_expf8_u10 / expf16_u10);
    a = a + 1; a.reciprocal() (a correctly rounded 1/a)."""
    x = np.asarray(x, dtype=np.float32)
    with np.errstate(all="ignore"):
        e = sleef_expf_u10(np.subtract(np.float32(0), x, dtype=np.float32))
        return np.divide(np.float32(1), np.add(e, np.float32(1), dtype=np.float32), dtype=np.float32)


def sigmoid_scalar(x) -> np.ndarray:
    """sigmoid_kernel's scalar op: 1 / (1 + std::exp(-x)), std::exp(float) the C library's expf."""
    x = np.asarray(x, dtype=np.float32)
    with np.errstate(all="ignore"):
        return np.divide(np.float32(1), np.add(np.float32(1), libm_expf(np.negative(x)), dtype=np.float32),
                         dtype=np.float32)


def row_vector_mask(rows: int, cols: int, contiguous: bool, profile) -> np.ndarray:
    """Boolean [rows, cols]: True where cpu_kernel_vec runs the vector op on a [rows, cols] float32
    tensor whose rows are contiguous (a chunk of a wider tensor, contiguous=False) or which is
    contiguous as a whole (its rows coalesce into one). Each contiguous run gets vectors in pairs
    (2 * Vectorized<float>::size() elements at a time), the remainder the scalar op; above
    GRAIN_SIZE elements at::parallel_for splits the run between threads, each with its own tail.
    A run of one element per row (cols == 1 in a chunk) has a stride: all scalar."""
    lanes = aten_float_lanes(profile, "sigmoid_kernel")
    if not contiguous and cols == 1 and rows > 1:
        return np.zeros((rows, cols), dtype=bool)
    size0 = rows * cols if (contiguous or rows == 1) else cols
    numel = rows * cols
    mask = np.zeros(numel, dtype=bool)
    nt = num_threads(profile)
    if numel <= GRAIN_SIZE or nt <= 1:
        chunks = [(0, numel)]
    else:
        nt = min(nt, -(-numel // GRAIN_SIZE))
        step = -(-numel // nt)
        chunks = [(b, min(numel, b + step)) for b in range(0, numel, step)]
    for b, e in chunks:
        i = b
        while i < e:
            row_end = min(e, (i // size0 + 1) * size0)
            nv = ((row_end - i) // (2 * lanes)) * (2 * lanes)
            mask[i:i + nv] = True
            i = row_end
    return mask.reshape(rows, cols)


def unsupported(fact: str, profile) -> str:
    return (f"PyTorch's float32 {fact} on the {profile.get('isa')} CPU class is not modelled bit for bit "
            "(no verified rule: docs/numerics.md, 'Dynamic quantized RNNs')")


def aten_sigmoid(x, profile, contiguous: bool = False) -> np.ndarray:
    """torch.sigmoid / sigmoid_ of a float32 [rows, cols] (see row_vector_mask for the layout)."""
    from ..cpu import cpu_class

    if cpu_class(profile).float_sigmoid != "sleef_exp":
        raise NotImplementedError(unsupported("sigmoid", profile))
    x = np.asarray(x, dtype=np.float32)
    x2 = x.reshape(-1, x.shape[-1]) if x.ndim else x.reshape(1, 1)
    m = row_vector_mask(x2.shape[0], x2.shape[1], contiguous, profile)
    out = np.where(m, sigmoid_vector(x2), np.float32(0))
    if not m.all():
        out[~m] = sigmoid_scalar(x2[~m])
    return out.reshape(x.shape)


def mkl_library_path() -> str | None:
    """The MKL that PyTorch itself runs: QGOLDEN_MKL_LIB if set, else torch's libtorch_cpu (MKL is
    linked into it; found without importing torch), else the system's libmkl_rt."""
    env = os.environ.get("QGOLDEN_MKL_LIB")
    if env:
        return env
    spec = importlib.util.find_spec("torch")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            p = Path(loc) / "lib" / "libtorch_cpu.so"
            if p.is_file():
                return str(p)
    return ctypes.util.find_library("mkl_rt")


@functools.lru_cache(maxsize=4)
def _mkl_vmstanh(path: str):
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise NotImplementedError(f"cannot load MKL from {path} for PyTorch's float32 tanh "
                                  f"({str(e).splitlines()[0][:120]}); set QGOLDEN_MKL_LIB to torch's "
                                  "libtorch_cpu.so or a libmkl_rt") from None
    for name in ("VMSTANH_64_", "vmsTanh_64", "VMSTANH_"):
        fn = getattr(lib, name, None)
        if fn is not None:
            return fn, name.endswith("64_") or name.endswith("_64")
    raise NotImplementedError(f"{path} has no MKL vmsTanh")


def mkl_tanh(x) -> np.ndarray:
    """MKL vmsTanh(n, x, y, VML_HA | VML_FTZDAZ_OFF | VML_ERRMODE_IGNORE) over x (each element
    alone: its result does not depend on its position, measured)."""
    path = mkl_library_path()
    if path is None:
        raise NotImplementedError("PyTorch's float32 tanh on x86-64 is MKL's vmsTanh; running it needs that "
                                  "library: install torch (libtorch_cpu carries it) or set QGOLDEN_MKL_LIB")
    fn, ilp64 = _mkl_vmstanh(path)
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.empty_like(x)
    if x.size:
        it = ctypes.c_int64 if ilp64 else ctypes.c_int32
        n, mode = it(x.size), it(VML_MODE_ATEN)
        fn(ctypes.byref(n), x.ctypes.data_as(ctypes.c_void_p), y.ctypes.data_as(ctypes.c_void_p), ctypes.byref(mode))
    return y


def aten_tanh(x, profile) -> np.ndarray:
    """torch.tanh / tanh_ of float32 x under the profile's CPU class (CpuClass.float_tanh)."""
    from ..cpu import cpu_class

    if cpu_class(profile).float_tanh != "mkl_vml_ha":
        raise NotImplementedError(unsupported("tanh", profile))
    return mkl_tanh(x)
