"""One file per integer op. Each op is a pure NumPy function

    op(*inputs, **attrs, **consts, profile, trace=None) -> np.ndarray

whose keyword arguments are exactly the node's attrs and consts in the program, so the
engine calls it with no translation. When `trace` is a dict, the op stores its named
intermediates there (accumulator, bias term, multiplier, value before rounding...),
which is what `explain` prints.
"""

from importlib import import_module

# op name in the program -> "module:function" in this package
_REGISTRY = {
    "quantize": "quantize:quantize",
    "dequantize": "dequantize:dequantize",
    "linear": "linear:linear",
    "conv": "conv:conv",
    "batch_norm": "batch_norm:batch_norm",
    "relu": "relu:relu",
    "hardtanh": "hardtanh:hardtanh",
    "hardswish": "hardswish:hardswish",
    "leaky_relu": "leaky_relu:leaky_relu",
    "elu": "elu:elu",
    "sigmoid": "sigmoid:sigmoid",
    "tanh": "tanh:tanh",
    "add": "add:add",
    "add_scalar": "add:add_scalar",
    "mul": "mul:mul",
    "mul_scalar": "mul:mul_scalar",
    "cat": "cat:cat",
    "max_pool": "max_pool:max_pool",
    "avg_pool": "avg_pool:avg_pool",
    "adaptive_avg_pool": "adaptive_avg_pool:adaptive_avg_pool",
    "upsample_nearest": "upsample_nearest:upsample_nearest",
    # data movement: same on quantized and float tensors
    "reshape": "shape:reshape",
    "flatten": "shape:flatten",
    "permute": "shape:permute",
    "transpose": "shape:transpose",
    "squeeze": "shape:squeeze",
    "unsqueeze": "shape:unsqueeze",
    "identity": "shape:identity",
    "index": "shape:index",
    "mean": "mean:mean",
    "size": "shape:size",
    "int_arith": "shape:int_arith",
    # float32 ops left between a dequantize and a quantize
    "float_op": "float_ops:float_op",
    "float_cat": "float_ops:float_cat",
    # PT2E / torchao Q/DQ graphs (ops/qdq.py)
    "qdq_quantize": "qdq:qdq_quantize",
    "qdq_dequantize": "qdq:qdq_dequantize",
    "add_reference": "qdq:add_reference",
    "concat": "qdq:concat",
    "float_unary": "qdq:float_unary",
    "float_adaptive_avg_pool": "qdq:float_adaptive_avg_pool",
    "float_mean": "qdq:float_mean",
    "float_linear": "qdq:float_linear",
    "float_conv": "qdq:float_conv",
    "float_max_pool": "qdq:float_max_pool",
    # ExecuTorch's XNNPACK delegate (ops/xnnpack.py; conv and linear go through ops.conv / ops.linear)
    "xnnpack_quantize": "xnnpack:quantize",
    "xnnpack_add": "xnnpack:add",
    "xnnpack_clamp": "xnnpack:clamp",
    "xnnpack_hardswish": "xnnpack:hardswish",
    "xnnpack_avg_pool": "xnnpack:avg_pool",
    "xnnpack_global_mean": "xnnpack:global_mean",
    "xnnpack_quantized_global_mean": "xnnpack:quantized_global_mean",
    # integer-only forms (qgolden/integer, `lower --integer-only`, `certify`)
    "linear_acc": "linear_acc:linear_acc",
    "conv_acc": "conv_acc:conv_acc",
    "requantize_int": "requantize_int:requantize_int",
    "threshold_table": "requantize_int:threshold_table",
    "lut": "lut:lut",
    "lut2": "lut:lut2",
    "lut_channel": "lut:lut_channel",
    "dequantize_lut": "lut:dequantize_lut",
    "quantize_thr": "quantize_thr:quantize_thr",
    "clamp_int": "clamp_int:clamp_int",
    "mul_int": "mul_int:mul_int",
    "cat_int": "cat_int:cat_int",
    "pool_int": "pool_int:pool_int",
    "upsample_int": "upsample_int:upsample_int",
}


def get(op: str):
    """The function implementing `op`; KeyError if qgolden has none."""
    mod, fn = _REGISTRY[op].split(":")
    return getattr(import_module(f"{__name__}.{mod}"), fn)


def names() -> list:
    return sorted(_REGISTRY)
