"""float32 ops that a converted model leaves between a dequantize and a quantize.

Only ops whose float32 result NumPy reproduces exactly are accepted: each IEEE
operation below is correctly rounded in both libraries (add, sub, mul, max/min).
Transcendental float ops are refused at import, since their float results depend
on the library's approximation.
"""
from __future__ import annotations

import numpy as np

from .spec import OpSpec

FLOAT_FNS = {
    "relu": lambda x: np.maximum(x, np.float32(0)),
    "relu6": lambda x: np.minimum(np.maximum(x, np.float32(0)), np.float32(6)),
    "add": lambda a, b: np.add(a, b, dtype=np.float32),
    "sub": lambda a, b: np.subtract(a, b, dtype=np.float32),
    "mul": lambda a, b: np.multiply(a, b, dtype=np.float32),
    "neg": lambda a: np.negative(a),
    "hardtanh": None,  # needs bounds: handled below
}


def float_op(*inputs, fn, const=None, min_val=None, max_val=None, profile=None, trace=None):
    """y = fn(*inputs) in float32; `const` is a Python scalar operand (x + 1.0)."""
    args = [np.asarray(a, dtype=np.float32) if isinstance(a, np.ndarray) else a for a in inputs]
    if const is not None:
        args.append(np.float32(const))
    if fn == "hardtanh":
        return np.clip(args[0], np.float32(min_val), np.float32(max_val))
    return np.asarray(FLOAT_FNS[fn](*args), dtype=np.float32)


def float_cat(xs, *, dim, profile=None, trace=None):
    """torch.cat of float32 tensors: a copy."""
    return np.concatenate([np.asarray(x, dtype=np.float32) for x in xs], axis=dim)


SPECS = [
    OpSpec("float_op", "float_op", integer="float"),
    OpSpec("float_cat", "float_cat", integer="float"),
]
