"""float32 ops that a converted model leaves between a dequantize and a quantize.

Only ops whose float32 result NumPy reproduces exactly are accepted: each IEEE
operation below is correctly rounded in both libraries (add, sub, mul, max/min; the zero that
max/min return for two zeros is the CPU's instruction's, see vec_max).
Transcendental float ops are refused at import, since their float results depend
on the library's approximation.
"""
from __future__ import annotations

import numpy as np

from .spec import OpSpec

FLOAT_FNS = {
    "add": lambda a, b: np.add(a, b, dtype=np.float32),
    "sub": lambda a, b: np.subtract(a, b, dtype=np.float32),
    "mul": lambda a, b: np.multiply(a, b, dtype=np.float32),
    "neg": lambda a: np.negative(a),
}
CLAMP_FNS = ("relu", "relu6", "hardtanh")


def vec_max(a, b, zeros="second"):
    """Vectorized<float> maximum(a, b) / clamp_min: the larger value; where both are zeros (of
    either sign) the zero the instruction picks: 'second' b (x86 vmaxps), 'ieee' +0 unless both
    are -0 (NEON vmaxq_f32). CpuClass.vec_zero_minmax says which. (NaN: not produced here.)"""
    return _zero_pick(np.maximum(a, b), a, b, zeros, positive=True)


def vec_min(a, b, zeros="second"):
    """Vectorized<float> minimum(a, b) / clamp_max: as vec_max; 'ieee' gives -0 unless both are +0."""
    return _zero_pick(np.minimum(a, b), a, b, zeros, positive=False)


def _zero_pick(r, a, b, zeros, positive):
    a, b = np.float32(a) if np.ndim(a) == 0 else a, np.float32(b) if np.ndim(b) == 0 else b
    both = (a == 0) & (b == 0)
    if zeros == "second":
        z = np.broadcast_to(b, np.shape(r))
    elif zeros == "ieee":
        neg = (np.signbit(a) & np.signbit(b)) if positive else (np.signbit(a) | np.signbit(b))
        z = np.where(neg, np.float32(-0.0), np.float32(0.0))
    else:
        raise ValueError(f"unknown zero rule {zeros!r}")
    return np.where(both, z, r).astype(np.float32)


def float_clamp(x, fn, min_val=None, max_val=None, inductor=False, profile=None):
    """relu / relu6 / hardtanh(min_val, max_val) of float32 x, with the sign of zero of the code that runs:

    inductor (torch.compile's C++, torch/_inductor/codegen/cpp.py): relu = clamp_min(x, 0)
        = max(0, x) (scalar tail std::max(x, 0)); hardtanh / relu6 decompose to clamp_min, clamp_max:
        min(max(x, lo), hi) (scalar tail max_propagate_nan / min_propagate_nan, `a > b ? a : b`:
        b on equal zeros, as the x86 vector code).
    eager ATen (native/cpu TensorCompareKernel.cpp clamp_min_scalar / clamp_scalar kernels):
        relu = clamp_min(x, 0) = max(0, x); hardtanh = clamp(x, lo, hi) = min(hi, max(lo, x))
        (vec clamp; the scalar tail std::min(std::max(x, lo), hi) keeps x on equal zeros, as x86's).
    The zero each max/min returns: CpuClass.vec_zero_minmax of the profile's class (None: this machine).
    Measured on x86: -0.0 through relu keeps -0.0 in both; through relu6 / clamp(0, ..) torch.compile
    gives +0.0, eager -0.0."""
    from ..cpu import cpu_class, detect

    zeros = cpu_class(profile or detect()).vec_zero_minmax
    x = np.asarray(x, dtype=np.float32)
    zero = np.float32(0)
    if fn == "relu":
        return vec_max(zero, x, zeros)
    lo, hi = (zero, np.float32(6)) if fn == "relu6" else (np.float32(min_val), np.float32(max_val))
    if inductor:
        return vec_min(vec_max(x, lo, zeros), hi, zeros)
    return vec_min(hi, vec_max(lo, x, zeros), zeros)


def runs_inductor(profile) -> bool:
    """Whether the float ops run as torch.compile's generated C++ (engine x86-inductor)."""
    return bool(profile) and profile.get("engine") == "x86-inductor"


def float_op(*inputs, fn, const=None, min_val=None, max_val=None, profile=None, trace=None):
    """y = fn(*inputs) in float32; `const` is a Python scalar operand (x + 1.0). relu / relu6 /
    hardtanh: float_clamp (the sign of zero of the engine's code)."""
    args = [np.asarray(a, dtype=np.float32) if isinstance(a, np.ndarray) else a for a in inputs]
    if fn in CLAMP_FNS:
        return float_clamp(args[0], fn, min_val, max_val, inductor=runs_inductor(profile), profile=profile)
    if const is not None:
        args.append(np.float32(const))
    return np.asarray(FLOAT_FNS[fn](*args), dtype=np.float32)


def float_cat(xs, *, dim, profile=None, trace=None):
    """torch.cat of float32 tensors: a copy."""
    return np.concatenate([np.asarray(x, dtype=np.float32) for x in xs], axis=dim)


SPECS = [
    OpSpec("float_op", "float_op", integer="float",
           torch=('operator.add/sub/mul', 'torch.add/sub/mul', 'x.add/sub/mul', 'F.relu, F.hardtanh, x.clamp on float tensors between dequantize and quantize (FX)')),
    OpSpec("float_cat", "float_cat", integer="float",
           torch=('torch.cat of float tensors (FX)',)),
]
