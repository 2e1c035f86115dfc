"""Lowering rules for the torch.ops targets of TorchScript models (see torchscript.py).

A TorchScript graph calls ops with positional arguments in schema order and keeps the weights
of quantized linear/conv in packed-params objects; these rules adapt both to the FX rules of
fx_ops.py, which they reuse.
"""
from __future__ import annotations

from . import fx_ops
from .fx_ops import (
    CALLS, _batch_norm, _conv, _int_arith, _linear, _passthrough, _upsample, c_adaptive_avg_pool,
    c_avg_pool, c_cat, c_contiguous, c_dequantize, c_dropout, c_flatten, c_float_binary, c_getitem,
    c_hardswish, c_hardtanh, c_leaky_relu, c_max_pool, c_mean, c_permute, c_quantize_per_tensor, c_relu,
    c_relu6, c_reshape, c_sigmoid, c_size, c_squeeze, c_tanh, c_transpose, c_unsqueeze,
)

# c10::ScalarType numbering (TorchScript passes dtypes as ints)
_SCALAR_TYPES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16", 6: "float32",
                 7: "float64", 11: "bool", 12: "qint8", 13: "quint8", 14: "qint32", 15: "bfloat16",
                 16: "quint4x2", 17: "quint2x4"}


def scalar_type(dtype):
    """A TorchScript ScalarType int (or a torch.dtype) as a torch.dtype."""
    import torch

    if isinstance(dtype, int) and not isinstance(dtype, bool):
        name = _SCALAR_TYPES.get(dtype)
        return getattr(torch, name) if name else dtype
    return dtype


# -- adapters: the module objects fx_ops._linear/_conv/_batch_norm read ------------

class PackedLinear:
    """quantized::linear's packed weights and output qparams, shaped like an nnq.Linear."""

    def __init__(self, packed, scale, zero_point):
        import torch

        self._w, self._b = torch.ops.quantized.linear_unpack(packed)
        self.scale, self.zero_point = float(scale), int(zero_point)

    def weight(self):
        return self._w

    def bias(self):
        return self._b


class PackedConv:
    """quantized::conv{1,2}d's packed weights, geometry and output qparams, shaped like an nnq.ConvNd."""

    def __init__(self, packed, scale, zero_point, nd):
        import torch

        q = torch.ops.quantized
        self._w, self._b = (q.conv1d_unpack if nd == 1 else q.conv2d_unpack)(packed)
        if self._w.dim() == nd + 3:  # conv1d weights kept as conv2d weights with H == 1
            self._w = self._w.squeeze(2)
        # conv1d packed params are conv2d packed params with H == 1: keep the last nd entries
        self.stride = list(q.conv2d_stride(packed))[-nd:]
        self.padding = list(q.conv2d_padding(packed))[-nd:]
        self.dilation = list(q.conv2d_dilation(packed))[-nd:]
        self.groups = int(q.conv2d_groups(packed))
        self.kernel_size = tuple(self._w.shape[2:])
        self.padding_mode = "zeros"
        self.scale, self.zero_point = float(scale), int(zero_point)

    def weight(self):
        return self._w

    def bias(self):
        return self._b


class BatchNormArgs:
    """quantized::batch_norm2d's arguments, shaped like an nnq.BatchNorm2d."""

    def __init__(self, weight, bias, mean, var, eps, scale, zero_point):
        import torch

        def t(v):
            return None if v is None else torch.as_tensor(v, dtype=torch.float32).reshape(-1)

        self.running_mean, self.running_var = t(mean), t(var)
        c = self.running_mean.numel()
        self.weight = t(weight) if weight is not None else torch.ones(c)
        self.bias = t(bias) if bias is not None else torch.zeros(c)
        self.eps, self.scale, self.zero_point = float(eps), float(scale), int(zero_point)


def _packed(L, n, name, obj):
    import torch

    if not isinstance(obj, torch.ScriptObject):
        L.fail(n, name, f"expects packed weights, got {type(obj).__name__}")
    return obj


def c_qlinear(relu):
    def rule(L, n, name, x, packed, scale, zero_point):
        try:
            mod = PackedLinear(_packed(L, n, name, packed), scale, zero_point)
        except RuntimeError as e:
            L.fail(n, name, f"the packed weights could not be unpacked ({_first_line(e)}); "
                   "only static int8 quantized linear is supported")
        return _linear(L, n, x, mod, relu=relu, src=n.name)
    return rule


def c_qconv(nd, relu):
    def rule(L, n, name, x, packed, scale, zero_point):
        try:
            mod = PackedConv(_packed(L, n, name, packed), scale, zero_point, nd)
        except RuntimeError as e:
            L.fail(n, name, f"the packed weights could not be unpacked ({_first_line(e)})")
        return _conv(L, n, x, mod, relu=relu, src=n.name)
    return rule


def c_qbatch_norm(relu):
    def rule(L, n, name, x, weight, bias, mean, var, eps, output_scale, output_zero_point):
        mod = BatchNormArgs(weight, bias, mean, var, eps, output_scale, output_zero_point)
        return _batch_norm(L, n, x, mod, relu=relu, src=n.name)
    return rule


def _first_line(e) -> str:
    s = str(e).strip().splitlines()
    return s[0] if s else type(e).__name__


# -- aten ops in schema order ----------------------------------------------------

def c_aten_quantize_per_tensor(L, n, name, x, scale, zero_point, dtype):
    return c_quantize_per_tensor(L, n, name, x, scale, zero_point, scalar_type(dtype))


def c_aten_elu(L, n, name, x, alpha=1.0, scale=1.0, input_scale=1.0):
    if float(scale) != 1.0 or float(input_scale) != 1.0:
        L.fail(n, name, "elu with scale/input_scale other than 1 is not supported")
    return fx_ops._unary(L, n, x, "elu", n.name, name, {"alpha": float(alpha)}) if L.is_q(x) else \
        fx_ops._float_or_fail(L, n, x, "elu", n.name, name, {"alpha": float(alpha)})


def c_aten_hardswish(L, n, name, x):
    return c_hardswish(L, n, name, x)


def c_aten_leaky_relu(L, n, name, x, negative_slope=0.01):
    return c_leaky_relu(L, n, name, x, negative_slope)


def c_quantized_relu6(L, n, name, x, inplace=False):
    return c_relu6(L, n, name, x)


def c_aten_contiguous(L, n, name, x, memory_format=None):
    return c_contiguous(L, n, name, x)


def c_aten_dropout(L, n, name, x, p=0.5, train=False):
    return c_dropout(L, n, name, x, p, train)


def c_aten_mean(L, n, name, x, dim=None, keepdim=False, dtype=None):
    if dtype is not None:
        L.fail(n, name, "mean with a dtype is not supported")
    if isinstance(dim, (list, tuple)) and len(dim) == 0:
        dim = None
    return c_mean(L, n, name, x, dim, keepdim)


def c_aten_squeeze(L, n, name, x, dim=None):
    return c_squeeze(L, n, name, x, dim)


def c_aten_upsample_nearest(nd):
    def rule(L, n, name, x, output_size=None, *scales):
        # upsample_nearest{1,2}d.vec(input, output_size?, scale_factors?) or
        # upsample_nearest{1,2}d(input, output_size, scales_h?, scales_w?)
        if len(scales) == 1 and (scales[0] is None or isinstance(scales[0], (list, tuple))):
            scale_factor = scales[0]
        else:
            scale_factor = None if not scales or all(s is None for s in scales) else list(scales)
        if output_size is not None and scale_factor is not None:
            L.fail(n, name, "upsample with both an output size and scale factors is not supported")
        if isinstance(scale_factor, list) and any(s is None for s in scale_factor):
            L.fail(n, name, "upsample with partial scale factors is not supported")
        return _upsample(L, n, x, output_size, scale_factor, n.name)
    return rule


def _index_rule(L, n, name, x, dim, item):
    i = L.info(x)
    if i is None:
        L.fail(n, name, f"expects a tensor input, got {x!r}")
    if any(isinstance(v, str) for v in item[1:]):
        L.fail(n, name, "indices computed at run time are not supported")
    dim = int(dim)
    full = ["slice", None, None, None]
    index = [list(full) for _ in range(dim)] + [item] if dim >= 0 else \
        [["ellipsis"], item] + [list(full) for _ in range(-dim - 1)]
    return _passthrough(L, n, x, "index", n.name, name, attrs={"index": index})


def c_aten_slice(L, n, name, x, dim=0, start=None, end=None, step=1):
    i = L.info(x)
    if i is None:  # slicing a Python list
        L.values[n.name] = x[start:end:step]
        return L.values[n.name]
    big = 2 ** 62
    end = None if end is not None and not isinstance(end, str) and end >= big else end
    start = None if start == 0 else start
    return _index_rule(L, n, name, x, dim, ["slice", start, end, None if step == 1 else step])


def c_aten_select(L, n, name, x, dim, index):
    return _index_rule(L, n, name, x, dim, ["int", index])


def c_aten_int(L, n, name, x):
    i = L.info(x)
    if i is None:
        L.values[n.name] = int(x)
        return L.values[n.name]
    if i.dtype != "int":
        L.fail(n, name, "converting a tensor to a Python int inside the model is not supported")
    L.values[n.name] = x
    return x


def c_aten_arith(fn):
    float_rule = c_float_binary(fn)

    def rule(L, n, name, a, b, alpha=1):
        ia, ib = L.info(a), L.info(b)
        if (ia is None or ia.dtype in ("int", "list")) and (ib is None or ib.dtype in ("int", "list")):
            if alpha != 1:
                L.fail(n, name, "alpha is not supported")
            return _int_arith(L, n, name, fn, a, b)
        if alpha != 1:
            return float_rule(L, n, name, a, b, alpha=alpha)
        return float_rule(L, n, name, a, b)
    return rule


def c_aten_size(L, n, name, x, dim=None):
    return c_size(L, n, name, x, dim)


def c_aten_view(L, n, name, x, shape):
    return c_reshape(L, n, name, x, shape)


def c_qlayer_norm(L, n, name, x, normalized_shape, weight, bias, eps, output_scale, output_zero_point):
    return fx_ops._layer_norm(L, n, x, list(normalized_shape), _tensor_or_none(weight), _tensor_or_none(bias), eps,
                              float(output_scale), int(output_zero_point), n.name)


def c_qgroup_norm(L, n, name, x, num_groups, weight, bias, eps, output_scale, output_zero_point):
    return fx_ops._group_norm(L, n, x, int(num_groups), _tensor_or_none(weight), _tensor_or_none(bias), eps,
                              float(output_scale), int(output_zero_point), n.name, name)


def c_qinstance_norm(L, n, name, x, weight, bias, eps, output_scale, output_zero_point):
    return fx_ops._group_norm(L, n, x, None, _tensor_or_none(weight), _tensor_or_none(bias), eps,
                              float(output_scale), int(output_zero_point), n.name, name)


def c_qprelu(L, n, name, x, weight, output_scale, output_zero_point):
    return fx_ops._prelu(L, n, x, weight, float(output_scale), int(output_zero_point), n.name)


def _tensor_or_none(v):
    """A get_attr parameter as a tensor (one-element tensors arrive as Python numbers)."""
    import torch

    if v is None or isinstance(v, torch.Tensor):
        return v
    return torch.tensor([float(v)])


def c_aten_clamp(L, n, name, x, min=None, max=None):
    return fx_ops.c_clamp(L, n, name, x, min, max)


def c_aten_gelu(L, n, name, x, approximate="none"):
    return fx_ops.c_gelu(L, n, name, x, approximate)


def c_aten_softmax(L, n, name, x, dim, dtype=None, *rest):
    return fx_ops.c_softmax(L, n, name, x, dim)


def c_aten_upsample_bilinear(L, n, name, x, output_size=None, align_corners=False, *scales):
    # upsample_bilinear2d.vec(input, output_size?, align_corners, scale_factors?) or
    # upsample_bilinear2d(input, output_size, align_corners, scales_h?, scales_w?)
    if len(scales) == 1 and (scales[0] is None or isinstance(scales[0], (list, tuple))):
        scale_factor = scales[0]
    else:
        scale_factor = None if not scales or all(v is None for v in scales) else list(scales)
    if output_size is not None and scale_factor is not None:
        # torch computes the source positions from the given scales when both are there
        pass
    if isinstance(scale_factor, list) and any(v is None for v in scale_factor):
        L.fail(n, name, "upsample with partial scale factors is not supported")
    return fx_ops._upsample_bilinear(L, n, x, output_size, scale_factor, bool(align_corners), n.name)


def c_aten_chunk(L, n, name, x, chunks, dim=0):
    return fx_ops.c_chunk(L, n, name, x, chunks, dim)


def c_aten_split(L, n, name, x, split_size, dim=0):
    return fx_ops.c_split(L, n, name, x, split_size, dim)


TS_CALLS = {
    "quantized::layer_norm": c_qlayer_norm,
    "quantized::group_norm": c_qgroup_norm,
    "quantized::instance_norm": c_qinstance_norm,
    "quantized::prelu": c_qprelu,
    "aten::hardsigmoid": fx_ops.c_hardsigmoid,
    "aten::hardsigmoid_": fx_ops.c_hardsigmoid,
    "aten::gelu": c_aten_gelu,
    "aten::clamp": c_aten_clamp,
    "aten::clamp_": c_aten_clamp,
    "aten::clip": c_aten_clamp,
    "aten::softmax": c_aten_softmax,
    "aten::upsample_bilinear2d": c_aten_upsample_bilinear,
    "aten::channel_shuffle": fx_ops.c_channel_shuffle,
    "aten::native_channel_shuffle": fx_ops.c_channel_shuffle,
    "aten::pixel_shuffle": fx_ops.c_pixel_shuffle(False),
    "aten::pixel_unshuffle": fx_ops.c_pixel_shuffle(True),
    "aten::chunk": c_aten_chunk,
    "aten::split": c_aten_split,
    # torch.split(x, [sizes], dim) traces to split_with_sizes (sizes as a list)
    "aten::split_with_sizes": c_aten_split,
    "aten::floor_divide": c_aten_arith("floordiv"),
    "quantized::linear": c_qlinear(False),
    "quantized::linear_relu": c_qlinear(True),
    "quantized::conv1d": c_qconv(1, False),
    "quantized::conv1d_relu": c_qconv(1, True),
    "quantized::conv2d": c_qconv(2, False),
    "quantized::conv2d_relu": c_qconv(2, True),
    "quantized::batch_norm2d": c_qbatch_norm(False),
    "quantized::batch_norm2d_relu": c_qbatch_norm(True),
    "quantized::relu6": c_quantized_relu6,
    "aten::quantize_per_tensor": c_aten_quantize_per_tensor,
    "aten::dequantize": c_dequantize,
    "aten::relu": c_relu,
    "aten::relu_": c_relu,
    "aten::relu6": c_relu6,
    "aten::hardtanh": c_hardtanh,
    "aten::hardtanh_": c_hardtanh,
    "aten::hardswish": c_aten_hardswish,
    "aten::hardswish_": c_aten_hardswish,
    "aten::leaky_relu": c_aten_leaky_relu,
    "aten::leaky_relu_": c_aten_leaky_relu,
    "aten::elu": c_aten_elu,
    "aten::elu_": c_aten_elu,
    "aten::sigmoid": c_sigmoid,
    "aten::tanh": c_tanh,
    "aten::flatten": c_flatten,
    "aten::view": c_aten_view,
    "aten::reshape": c_aten_view,
    "aten::size": c_aten_size,
    "aten::cat": c_cat,
    "aten::concat": c_cat,
    "aten::max_pool1d": c_max_pool(1),
    "aten::max_pool2d": c_max_pool(2),
    "aten::avg_pool1d": c_avg_pool(1),
    "aten::avg_pool2d": c_avg_pool(2),
    "aten::adaptive_avg_pool1d": c_adaptive_avg_pool(1),
    "aten::adaptive_avg_pool2d": c_adaptive_avg_pool(2),
    "aten::upsample_nearest1d": c_aten_upsample_nearest(1),
    "aten::upsample_nearest2d": c_aten_upsample_nearest(2),
    "aten::mean": c_aten_mean,
    "aten::contiguous": c_aten_contiguous,
    "aten::detach": c_aten_contiguous,
    "aten::clone": c_aten_contiguous,
    "aten::dropout": c_aten_dropout,
    "aten::dropout_": c_aten_dropout,
    "aten::feature_dropout": c_aten_dropout,
    "aten::permute": c_permute,
    "aten::transpose": c_transpose,
    "aten::squeeze": c_aten_squeeze,
    "aten::unsqueeze": c_unsqueeze,
    "aten::slice": c_aten_slice,
    "aten::select": c_aten_select,
    "aten::Int": c_aten_int,
    "aten::IntImplicit": c_aten_int,
    "aten::add": c_aten_arith("add"),
    "aten::sub": c_aten_arith("sub"),
    "aten::mul": c_aten_arith("mul"),
    "aten::floordiv": c_aten_arith("floordiv"),
    "aten::__getitem__": c_getitem,
}

CALLS.update(TS_CALLS)


# -- dynamic quantization (quantize_dynamic models) --------------------------------

def c_qlinear_dynamic(relu):
    """quantized::linear_dynamic(X, W_prepack, reduce_range=False) / linear_relu_dynamic."""
    op = "quantized::linear_relu_dynamic" if relu else "quantized::linear_dynamic"

    def rule(L, n, name, x, packed, reduce_range=False):
        try:
            w, b = _dynamic_weights(L, n, name, packed)
        except RuntimeError as e:
            L.fail(n, name, f"the packed weights could not be unpacked ({_first_line(e)})")
        return fx_ops._dynamic_linear(L, n, x, w, b, relu, bool(reduce_range), n.name, op)
    return rule


def _dynamic_weights(L, n, name, packed):
    import torch

    w, b = torch.ops.quantized.linear_unpack(_packed(L, n, name, packed))
    if w.dtype != torch.qint8:
        L.fail(n, name, f"dynamic linear with {w.dtype} weights is not supported (qint8 is)")
    return w, b


CALLS.update({
    "quantized::linear_dynamic": c_qlinear_dynamic(False),
    "quantized::linear_relu_dynamic": c_qlinear_dynamic(True),
})


def c_aten_to_same_dtype(L, n, name, x, dtype=None, *rest):
    """aten::to(x, dtype, non_blocking, copy, memory_format) to the dtype x already has: the identity
    (nnqd.Linear's `Y.to(x.dtype)`); any other conversion is refused as method.to is."""
    import torch

    i = L.info(x)
    want = scalar_type(dtype)
    if i is not None and isinstance(want, torch.dtype) and str(want).replace("torch.", "") == i.dtype:
        return fx_ops._passthrough(L, n, x, "identity", n.name, name)
    return fx_ops.c_to(L, n, name, x)


CALLS.update({"aten::to": c_aten_to_same_dtype})


# -- transposed conv ---------------------------------------------------------------

def c_qconv_transpose(nd):
    """quantized::conv_transpose{1,2,3}d(x, packed, output_scale, output_zero_point); the packed params
    carry the geometry (conv{2,3}d_* accessors; conv_transpose1d keeps conv2d params with H == 1)."""
    def rule(L, n, name, x, packed, scale, zero_point):
        import torch

        q = torch.ops.quantized
        p = _packed(L, n, name, packed)
        try:
            w, b = getattr(q, f"conv_transpose{max(nd, 2)}d_unpack")(p)
        except RuntimeError as e:
            L.fail(n, name, f"the packed weights could not be unpacked ({_first_line(e)})")
        acc = "conv3d" if nd == 3 else "conv2d"
        geometry = [list(getattr(q, f"{acc}_{k}")(p))[-nd:] for k in ("stride", "padding", "output_padding",
                                                                       "dilation")]
        if nd == 1 and w.dim() == 4:
            w = w.squeeze(2)
        return fx_ops._conv_transpose(L, n, x, w, b, *geometry, int(getattr(q, f"{acc}_groups")(p)), float(scale),
                                      int(zero_point), n.name)
    return rule


CALLS.update({f"quantized::conv_transpose{nd}d": c_qconv_transpose(nd) for nd in (1, 2, 3)})


# -- 3-D conv ------------------------------------------------------------------------

def c_qconv3d(relu):
    """quantized::conv3d{,_relu}(x, packed, output_scale, output_zero_point); geometry from conv3d_* accessors."""
    def rule(L, n, name, x, packed, scale, zero_point):
        import torch

        q = torch.ops.quantized
        p = _packed(L, n, name, packed)
        try:
            w, b = q.conv3d_unpack(p)
        except RuntimeError as e:
            L.fail(n, name, f"the packed weights could not be unpacked ({_first_line(e)})")
        stride, padding, dilation = (list(getattr(q, f"conv3d_{k}")(p)) for k in ("stride", "padding", "dilation"))
        return fx_ops._conv3d(L, n, x, w, b, stride, padding, dilation, int(q.conv3d_groups(p)), float(scale),
                              int(zero_point), relu, n.name)
    return rule


CALLS.update({"quantized::conv3d": c_qconv3d(False), "quantized::conv3d_relu": c_qconv3d(True)})
