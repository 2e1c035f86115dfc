"""Float32 ops ONNX Runtime keeps between DequantizeLinear and QuantizeLinear (not fused into an integer
kernel), as its CPU kernels compute them, and as the ONNX reference evaluator (NumPy) does. The
result is requantized, so the float32 bit patterns matter; each formula names its source.

runtime "mlas" (onnxruntime, providers/cpu/activation/activations.cc, providers/cpu/math/element_wise_ops.cc):
    Relu      max(x, 0)                                    (Eigen cwiseMax)
    Clip      min(max(x, lo), hi)                          (providers/cpu/math/clip.cc)
    LeakyRelu x >= 0 ? x : alpha * x                       (one float32 multiply)
    Sigmoid   MlasComputeLogistic (mlas/lib/logistic.cpp; numerics/mlas.mlas_logistic, fused multiply-adds;
              x86 clamps below 0 only, arm64 to [0, 1]: CpuClass.mlas_logistic_clamps_one)
    Tanh      MlasComputeTanh (mlas/lib/tanh.cpp; mlas_tanh: Eigen's rational polynomial, fused multiply-adds)
    Add / Sub / Mul / Div: one IEEE float32 operation per element after broadcasting (exact rounding,
    so any vector width gives the same bits)
runtime "reference" (onnx/reference/ops): op_relu (np.maximum), op_clip (np.clip), op_leaky_relu
    (x * sign, sign = 1 or float32(alpha)), op_sigmoid (1 / (1 + exp(-x)) for x > 0, else exp(x) / (1 + exp(x)),
    NumPy float32), op_tanh (np.tanh), NumPy float32 arithmetic for the binary ops.
The x86 kernels were checked against ONNX Runtime 1.32 on an AMX Xeon over 2,240,004 (Sigmoid) and
1,100,003 (Tanh) random float32 inputs: 0 bit differences (the unfused polynomials differ on 264,230 /
390,312 of 1,100,003; clamping Sigmoid at 1 as well differs on 2).
"""
from __future__ import annotations

import numpy as np

from ..numerics import mlas
from .spec import OpSpec

UNARY = ("relu", "clip", "leaky_relu", "sigmoid", "tanh")
BINARY = ("add", "sub", "mul", "div")

TANH = dict(lower=-9.0, upper=9.0,
            alpha=(-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-08,
                   1.48572235717979e-05, 6.37261928875436e-04, 4.89352455891786e-03),
            beta=(1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03))


def mlas_tanh(x) -> np.ndarray:
    """MlasComputeTanh (mlas/lib/tanh.cpp constants; the FMA3 / AVX-512 / NEON kernels):
        v = clamp(x, -9, 9); v2 = v*v
        p = ((((((v2*a13 + a11)*v2 + a9)*v2 + a7)*v2 + a5)*v2 + a3)*v2 + a1) * v
        q = (((v2*b6 + b4)*v2 + b2)*v2 + b0)
        y = p / q                          (each `*v2 +` one fused multiply-add)"""
    v = np.asarray(x, dtype=np.float32)
    v = np.minimum(np.maximum(v, np.float32(TANH["lower"])), np.float32(TANH["upper"]))
    v2 = v * v
    al = [np.float32(c) for c in TANH["alpha"]]
    be = [np.float32(c) for c in TANH["beta"]]
    p = mlas.fma32(v2, al[0], al[1])
    for c in al[2:]:
        p = mlas.fma32(p, v2, c)
    p = p * v
    q = mlas.fma32(v2, be[0], be[1])
    for c in be[2:]:
        q = mlas.fma32(q, v2, c)
    return (p / q).astype(np.float32)


def reference_sigmoid(x) -> np.ndarray:
    """onnx/reference/ops/op_sigmoid.py, in NumPy float32."""
    x = np.asarray(x, dtype=np.float32)
    e = np.exp(x)
    return np.where(x > 0, 1.0 / (1.0 + np.exp(-x)), e / (1.0 + e)).astype(np.float32)


def onnx_float_unary(x, *, fn, alpha=0.0, lo=None, hi=None, runtime="mlas", profile=None, trace=None):
    """One float32 activation ORT left between DQ and Q (module docstring: formula per runtime)."""
    x = np.asarray(x, dtype=np.float32)
    if fn == "relu":
        return np.maximum(x, np.float32(0))
    if fn == "clip":
        y = x if lo is None else np.maximum(x, np.float32(lo))
        return y if hi is None else np.minimum(y, np.float32(hi))
    if fn == "leaky_relu":
        a = np.float32(alpha)
        if runtime == "reference":
            return (x * np.where(x > 0, np.float32(1), a).astype(np.float32)).astype(np.float32)
        return np.where(x >= 0, x, a * x).astype(np.float32)
    if fn == "sigmoid":
        if runtime == "reference":
            return reference_sigmoid(x)
        from ..cpu import cpu_class

        clamp_one = cpu_class(profile).mlas_logistic_clamps_one if profile is not None else False
        return mlas.mlas_logistic(x, True, clamp_one)
    if fn == "tanh":
        return np.tanh(x).astype(np.float32) if runtime == "reference" else mlas_tanh(x)
    raise ValueError(f"no float kernel {fn!r}")


def onnx_float_binary(a, b, *, fn, runtime="mlas", profile=None, trace=None):
    """Add / Sub / Mul / Div of float32 tensors (broadcast): one IEEE float32 operation per element."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    op = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}[fn]
    with np.errstate(all="ignore"):
        return op(a, b).astype(np.float32)


SPECS = [
    OpSpec("onnx_float_unary", "onnx_float_unary", integer="float",
           summary="a float32 activation ONNX Runtime keeps between DequantizeLinear and QuantizeLinear "
                   "(Relu, Clip, LeakyRelu, Sigmoid, Tanh: MLAS's kernels)",
           formula=("y = f(x) in float32",)),
    OpSpec("onnx_float_binary", "onnx_float_binary", integer="float",
           summary="float32 Add / Sub / Mul / Div between DequantizeLinear and QuantizeLinear",
           formula=("y = a op b, one float32 rounding",)),
]
