"""The op table's row type: everything qgolden knows about one op, declared once beside its kernel.

Each module of qgolden/ops declares `SPECS = [OpSpec(...), ...]` for the ops it implements;
qgolden/ops/__init__.py collects them. The engine, the integer-only transform, explain and the
README's list of supported ops read these rows instead of keeping sets of their own.
"""
from __future__ import annotations

from dataclasses import dataclass

# integer-only methods (qgolden/integer/transform.py has one handler per method)
INTEGER_METHODS = (
    "keep",        # already integer arithmetic: kept as it is
    "integer",     # an integer-only form itself (what `lower --integer-only` emits)
    "lut",         # a table over every input value (unary 8-bit ops)
    "clamp",       # an integer clamp
    "gemm",        # int32 accumulator + integer requantization (linear, conv)
    "quantize", "dequantize", "binary_lut", "mul", "cat", "concat", "batch_norm", "pool", "upsample",
    "xnnpack_quantize", "xnnpack_mean",
    "onnx_gemm",   # ONNX QLinearConv / QGemm: exact sums + integer requantization certified against MLAS
    "onnx_binary", "onnx_pool", "onnx_lut", "onnx_cat",
    "onnx_nchw",   # ONNX integer data movement; channels-last forms become NCHW between transposes
    "float",       # the runtime computes it in float32: no integer-only form, reported by name
    "none",        # not lowered (shape bookkeeping the transform never meets)
)


@dataclass(frozen=True)
class OpSpec:
    """One op of the program.

    name         the op's name in programs (`Node.op`)
    kernel       the NumPy function in the declaring module: kernel(*inputs, **attrs, **consts, profile, trace)
    elementwise  ATen walks it element by element in memory order (vector tails fall on the last
                 elements in memory, so the engine runs it in its input's memory order)
    integer      how `lower --integer-only` computes it (INTEGER_METHODS)
    passes_range its output values are a subset of its input values (certify carries ranges through)
    moves_data   pure data movement (folded through float Q/DQ chains)
    summary      what it does, one line (explain)
    formula      its arithmetic, symbolic (explain; the numbers come from the trace)
    torch        the PyTorch spellings the importers turn into it (the README's supported-ops list)
    float_why    for integer="float": why it has no integer-only form (lower --integer-only, certify, export)
    """

    name: str
    kernel: str
    elementwise: bool = False
    integer: str = "none"
    passes_range: bool = False
    moves_data: bool = False
    summary: str = ""
    formula: tuple = ()
    torch: tuple = ()
    float_why: str = ""

    def __post_init__(self):
        if self.integer not in INTEGER_METHODS:
            raise ValueError(f"op {self.name}: unknown integer method {self.integer!r}")
