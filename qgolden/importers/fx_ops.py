"""One lowering rule per torch module type or call target, from FX node to program node."""
from __future__ import annotations

from .torch_common import dtype_name, fbias, qweight


def _channels_last(L, x) -> bool:
    """Whether torch holds this tensor channels-last (its kernels then differ)."""
    i = L.info(x)
    return bool(i is not None and i.layout is not None and i.layout[-1] == 1)


def _pair(v, n):
    return [int(x) for x in v] if isinstance(v, (list, tuple)) else [int(v)] * n


# ---------------------------------------------------------------- modules ----

def lower_module(L, n, mod):
    import torch.ao.nn.intrinsic.quantized as nniq
    import torch.ao.nn.quantized as nnq
    from torch import nn

    x = L.val(n.args[0]) if n.args else None
    tname = type(mod).__module__ + "." + type(mod).__name__
    src = n.target

    for applies, rule in MODULE_RULES:
        if applies(mod):
            return rule(L, n, x, mod, src)
    if isinstance(mod, nnq.Quantize):
        return _quantize(L, n, x, float(mod.scale), int(mod.zero_point), mod.dtype, src)
    if isinstance(mod, nnq.DeQuantize):
        return _dequantize(L, n, x, src)
    if isinstance(mod, (nniq.LinearReLU, nnq.Linear)) and not _is_dynamic(mod):
        return _linear(L, n, x, mod, relu=isinstance(mod, nniq.LinearReLU), src=src)
    conv_types = (nnq.Conv1d, nnq.Conv2d)
    if isinstance(mod, conv_types):
        return _conv(L, n, x, mod, relu=type(mod).__name__.startswith("ConvReLU"), src=src)
    if isinstance(mod, (nnq.BatchNorm2d, nnq.BatchNorm3d)):
        return _batch_norm(L, n, x, mod, relu=type(mod).__name__.startswith("BNReLU"), src=src)
    if isinstance(mod, nnq.ReLU6) or isinstance(mod, nn.ReLU6):
        return _unary(L, n, x, "hardtanh", src, "relu6", attrs={"min_val": 0.0, "max_val": 6.0})
    if isinstance(mod, nnq.Hardswish):
        return _unary(L, n, x, "hardswish", src, "quantized::hardswish",
                      out=(float(mod.scale), int(mod.zero_point)))
    if isinstance(mod, nnq.LeakyReLU):
        return _unary(L, n, x, "leaky_relu", src, "quantized::leaky_relu",
                      attrs={"negative_slope": float(mod.negative_slope)},
                      out=(float(mod.scale), int(mod.zero_point)))
    if isinstance(mod, nnq.ELU):
        return _unary(L, n, x, "elu", src, "quantized::elu", attrs={"alpha": float(mod.alpha)},
                      out=(float(mod.scale), int(mod.zero_point)))
    if isinstance(mod, nnq.Sigmoid) if hasattr(nnq, "Sigmoid") else False:
        return _unary(L, n, x, "sigmoid", src, "quantized::sigmoid",
                      out=(float(mod.output_scale), int(mod.output_zero_point)))
    if isinstance(mod, nnq.LayerNorm):
        return _layer_norm(L, n, x, list(mod.normalized_shape), mod.weight, mod.bias, mod.eps,
                           float(mod.scale), int(mod.zero_point), src)
    if isinstance(mod, nnq.GroupNorm):
        return _group_norm(L, n, x, int(mod.num_groups), mod.weight, mod.bias, mod.eps,
                           float(mod.scale), int(mod.zero_point), src, "quantized::group_norm")
    if isinstance(mod, (nnq.InstanceNorm1d, nnq.InstanceNorm2d, nnq.InstanceNorm3d)):
        return _group_norm(L, n, x, None, mod.weight, mod.bias, mod.eps, float(mod.scale),
                           int(mod.zero_point), src, "quantized::instance_norm")
    if isinstance(mod, nnq.Softmax):
        return _softmax(L, n, x, mod.dim, float(mod.scale), int(mod.zero_point), src)
    if isinstance(mod, nnq.PReLU):
        return _prelu(L, n, x, mod.weight, float(mod.scale), int(mod.zero_point), src)
    if isinstance(mod, nn.Hardsigmoid):
        return _fixed_qparams_unary(L, n, x, "hardsigmoid", src)
    if isinstance(mod, nn.GELU):
        return _unary(L, n, x, "gelu", src, "gelu", attrs={"approximate": str(mod.approximate)},
                      out=_gelu_out(L, x))
    if isinstance(mod, nn.Softmax):
        return _softmax(L, n, x, mod.dim, None, None, src)
    if isinstance(mod, nn.ChannelShuffle):
        return _channel_shuffle(L, n, x, int(mod.groups), src)
    if isinstance(mod, nn.PixelShuffle):
        return _pixel_shuffle(L, n, x, int(mod.upscale_factor), False, src)
    if isinstance(mod, nn.PixelUnshuffle):
        return _pixel_shuffle(L, n, x, int(mod.downscale_factor), True, src)
    if isinstance(mod, (nn.Dropout, nn.Identity)) or type(mod).__name__ in ("Identity", "Dropout"):
        return _passthrough(L, n, x, "identity", src, type(mod).__name__)
    if isinstance(mod, nn.ReLU):
        return _maybe_float(L, n, x, "relu", src, "relu")
    if isinstance(mod, nn.Hardtanh):
        return _maybe_float(L, n, x, "hardtanh", src, "hardtanh",
                            attrs={"min_val": float(mod.min_val), "max_val": float(mod.max_val)})
    if isinstance(mod, nn.Sigmoid):
        return _fixed_qparams_unary(L, n, x, "sigmoid", src)
    if isinstance(mod, nn.Tanh):
        return _fixed_qparams_unary(L, n, x, "tanh", src)
    if isinstance(mod, nn.Hardswish):
        return _float_only(L, n, "nn.Hardswish on a float tensor")
    if isinstance(mod, nn.LeakyReLU):
        return _unary(L, n, x, "leaky_relu", src, "leaky_relu",
                      attrs={"negative_slope": float(mod.negative_slope)})
    if isinstance(mod, nn.ELU):
        return _unary(L, n, x, "elu", src, "elu", attrs={"alpha": float(mod.alpha)})
    if isinstance(mod, (nn.MaxPool1d, nn.MaxPool2d)):
        nd = 1 if isinstance(mod, nn.MaxPool1d) else 2
        return _max_pool(L, n, x, nd, mod.kernel_size, mod.stride, mod.padding, mod.dilation, mod.ceil_mode, src)
    if isinstance(mod, (nn.AvgPool1d, nn.AvgPool2d)):
        nd = 1 if isinstance(mod, nn.AvgPool1d) else 2
        return _avg_pool(L, n, x, nd, mod.kernel_size, mod.stride, mod.padding, mod.ceil_mode,
                         mod.count_include_pad, getattr(mod, "divisor_override", None), src)
    if isinstance(mod, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
        nd = 1 if isinstance(mod, nn.AdaptiveAvgPool1d) else 2
        return _adaptive_avg_pool(L, n, x, nd, mod.output_size, src)
    if isinstance(mod, nn.Flatten):
        return _passthrough(L, n, x, "flatten", src, "flatten",
                            attrs={"start_dim": int(mod.start_dim), "end_dim": int(mod.end_dim)})
    if isinstance(mod, (nn.Upsample, nn.UpsamplingNearest2d, nn.UpsamplingBilinear2d)):
        if mod.mode == "bilinear":
            return _upsample_bilinear(L, n, x, mod.size, mod.scale_factor, bool(mod.align_corners), src)
        if mod.mode != "nearest":
            L.fail(n, f"module {src}: {tname}", f"upsample mode {mod.mode!r} is not supported (nearest, bilinear)")
        return _upsample(L, n, x, mod.size, mod.scale_factor, src)
    if ".reference." in tname:
        L.fail(n, f"module {src}: {tname}", "a reference module left in float by convert_fx (its float "
               "arithmetic is not an integer kernel and is not reproducible bit for bit). Usually its "
               "neighbour stayed in float: fuse conv+bn(+relu) before prepare_fx, or check the qconfig")
    L.fail(n, f"module {src}: {tname}", "unsupported module. " + SUPPORTED)


def _is_dynamic(mod):
    return "dynamic" in type(mod).__module__


# ------------------------------------------------- dynamic quantization ----

def _is_dynamic_linear(mod) -> bool:
    import torch.ao.nn.quantized.dynamic as nnqd

    return isinstance(mod, nnqd.Linear)


def m_dynamic_linear(L, n, x, mod, src):
    """nnqd.Linear / nniqd.LinearReLU (quantize_dynamic): the forward calls quantized::linear_dynamic
    with reduce_range=True from module version 4 on (False before), per
    torch/ao/nn/quantized/dynamic/modules/linear.py."""
    import torch

    if mod._packed_params.dtype != torch.qint8:
        L.fail(n, f"module {src}: {type(mod).__name__}", f"dynamic linear with {mod._packed_params.dtype} "
               "weights is not supported (qint8 is)")
    version = getattr(mod, "version", None)
    relu = type(mod).__name__ == "LinearReLU"
    return _dynamic_linear(L, n, x, mod.weight(), mod.bias(), relu, version is not None and version >= 4, src,
                           "quantized::linear_relu_dynamic" if relu else "quantized::linear_dynamic")


def _dynamic_linear(L, n, x, weight, bias, relu, reduce_range, src, torch_op):
    i = L.info(x)
    if i is None or i.dtype != "float32":
        L.fail(n, torch_op, "expects a float32 tensor input (dynamic quantization quantizes it per call)")
    w = qweight(weight)
    consts = {k: w[k] for k in ("weight", "weight_scale", "weight_zero_point")}
    consts["bias"] = fbias(bias)
    attrs = {"relu": bool(relu), "reduce_range": bool(reduce_range), "per_channel": w["per_channel"]}
    return L.emit(n, "dynamic_linear", [x], dtype="float32", attrs=attrs, consts=consts, torch_op=torch_op,
                  source=src)


# ------------------------------------------------------ transposed conv ----

def _is_conv_transpose(mod) -> bool:
    import torch.ao.nn.quantized as nnq

    return isinstance(mod, (nnq.ConvTranspose1d, nnq.ConvTranspose2d, nnq.ConvTranspose3d))


def m_conv_transpose(L, n, x, mod, src):
    return _conv_transpose(L, n, x, mod.weight(), mod.bias(), mod.stride, mod.padding, mod.output_padding,
                           mod.dilation, mod.groups, float(mod.scale), int(mod.zero_point), src)


def _conv_transpose(L, n, x, weight, bias, stride, padding, output_padding, dilation, groups, scale, zero_point,
                    src):
    nd = weight.dim() - 2
    op = f"quantized::conv_transpose{nd}d"
    q = L.qin(n, x, op)
    w = qweight(weight)
    consts = {k: w[k] for k in ("weight", "weight_scale", "weight_zero_point")}
    consts["bias"] = fbias(bias)
    attrs = dict(q, out_scale=float(scale), out_zero_point=int(zero_point), per_channel=w["per_channel"],
                 stride=_pair(stride, nd), padding=_pair(padding, nd), output_padding=_pair(output_padding, nd),
                 dilation=_pair(dilation, nd), groups=int(groups))
    return L.emit(n, "conv_transpose", [x], dtype="uint8", scale=scale, zero_point=zero_point, attrs=attrs,
                  consts=consts, torch_op=op, source=src)


def _is_conv3d(mod) -> bool:
    import torch.ao.nn.intrinsic.quantized as nniq
    import torch.ao.nn.quantized as nnq

    return isinstance(mod, (nnq.Conv3d, nniq.ConvReLU3d))


def m_conv3d(L, n, x, mod, src):
    import torch.ao.nn.intrinsic.quantized as nniq

    return _conv3d(L, n, x, mod.weight(), mod.bias(), mod.stride, mod.padding, mod.dilation, mod.groups,
                   float(mod.scale), int(mod.zero_point), isinstance(mod, nniq.ConvReLU3d), src)


def _conv3d(L, n, x, weight, bias, stride, padding, dilation, groups, scale, zero_point, relu, src):
    op = "quantized::conv3d" + ("_relu" if relu else "")
    q = L.qin(n, x, op)
    if isinstance(padding, str):
        L.fail(n, op, f"padding={padding!r} is not supported; give explicit padding")
    w = qweight(weight)
    consts = {k: w[k] for k in ("weight", "weight_scale", "weight_zero_point")}
    consts["bias"] = fbias(bias)
    attrs = dict(q, out_scale=float(scale), out_zero_point=int(zero_point), relu=relu, per_channel=w["per_channel"],
                 stride=_pair(stride, 3), padding=_pair(padding, 3), dilation=_pair(dilation, 3), groups=int(groups))
    return L.emit(n, "conv3d", [x], dtype="uint8", scale=scale, zero_point=zero_point, attrs=attrs,
                  consts=consts, torch_op=op, source=src)


# ------------------------------------------------------------ embeddings ----

def _is_embedding(mod) -> bool:
    import torch.ao.nn.quantized as nnq

    return isinstance(mod, nnq.Embedding)  # nnq.EmbeddingBag is a subclass


def embedding_table(qweight):
    """(codes uint8 [N, D], row scale, row bias, bits) of a quantized embedding table (quint8 or quint4x2,
    per_channel_affine_float_qparams), with scale and bias as PyTorch's prepack stores them."""
    import numpy as np
    import torch

    from ..ops.embedding import row_scale_bias

    bits = 4 if qweight.dtype == torch.quint4x2 else 8
    n, d = qweight.shape
    raw = qweight.int_repr().numpy().astype(np.uint8)
    if bits == 4:
        per_row = (d + 1) // 2
        packed = raw.reshape(n, per_row)
        codes = np.stack([packed & 15, packed >> 4], axis=-1).reshape(n, 2 * per_row)[:, :d]
    else:
        codes = raw.reshape(n, d)
    scale, bias = row_scale_bias(qweight.q_per_channel_scales().numpy(),
                                 qweight.q_per_channel_zero_points().numpy(), bits)
    return np.ascontiguousarray(codes), scale, bias, bits


def packed_embedding_table(weight, bits):
    """(codes, row scale, row bias) of a prepacked uint8 table (embedding_bag_byte_prepack /
    embedding_bag_4bit_prepack): each row is its codes then scale and bias, float32 (8-bit) or float16 (4-bit)."""
    import numpy as np

    w = weight.contiguous().numpy().astype(np.uint8)
    if bits == 8:
        d = w.shape[1] - 8
        return (np.ascontiguousarray(w[:, :d]), w[:, d:d + 4].copy().view(np.float32)[:, 0].copy(),
                w[:, d + 4:d + 8].copy().view(np.float32)[:, 0].copy())
    nb = w.shape[1] - 4
    codes = np.stack([w[:, :nb] & 15, w[:, :nb] >> 4], axis=-1).reshape(w.shape[0], 2 * nb)
    return (np.ascontiguousarray(codes), w[:, nb:nb + 2].copy().view(np.float16)[:, 0].copy(),
            w[:, nb + 2:nb + 4].copy().view(np.float16)[:, 0].copy())


def m_embedding(L, n, x, mod, src):
    """nnq.Embedding (quantized::embedding_byte / embedding_4bit) and nnq.EmbeddingBag (embedding_bag_byte /
    embedding_bag_4bit, mode 0 whatever the module's mode: torch/ao/nn/quantized/modules/embedding_ops.py)."""
    import torch.ao.nn.quantized as nnq

    codes, scale, bias, bits = embedding_table(mod.weight())
    kind = "byte" if bits == 8 else "4bit"
    if not isinstance(mod, nnq.EmbeddingBag):
        return _embedding(L, n, x, None, None, codes, scale, bias, bits, lookup=True, src=src,
                          torch_op=f"quantized::embedding_{kind}")
    args = [L.val(a) for a in n.args] + [None] * 4
    kw = {k: L.val(v) for k, v in n.kwargs.items()}
    offsets = kw.get("offsets", args[1])
    weights = kw.get("per_sample_weights", args[2])
    if kw.get("compressed_indices_mapping", args[3]) is not None:
        L.fail(n, f"module {src}: {type(mod).__name__}", "pruned tables (compressed_indices_mapping) are not supported")
    return _embedding(L, n, x, offsets, weights, codes, scale, bias, bits, lookup=False, src=src,
                      torch_op=f"quantized::embedding_bag_{kind}", include_last_offset=bool(mod.include_last_offset),
                      mode=str(mod.mode))


def _embedding(L, n, indices, offsets, weights, codes, scale, bias, bits, lookup, src, torch_op,
               include_last_offset=False, mode="sum"):
    import numpy as np

    for what, ref in (("indices", indices), ("offsets", offsets)):
        i = L.info(ref)
        if i is not None and ref in L.inputs and ref not in L.input_dtypes and not L.observed:
            i.dtype = "int64"  # no example input: a model input read as indices holds integers
        if ref is not None and (i is None or i.dtype not in ("int64", "int32")):
            L.fail(n, torch_op, f"expects {what} as an integer tensor input of the model, got "
                   + (f"a {i.dtype} tensor" if i is not None else repr(ref)[:60]))
    if weights is not None:
        i = L.info(weights)
        if i is None or i.dtype != "float32":
            L.fail(n, torch_op, "expects per_sample_weights as a float32 tensor")
    inputs = [indices] + ([offsets] if offsets is not None else []) + ([weights] if weights is not None else [])
    attrs = {"bits": int(bits), "has_offsets": offsets is not None, "weighted": weights is not None,
             "include_last_offset": bool(include_last_offset), "mode": mode, "lookup": bool(lookup)}
    L.float_regions.append({"name": n.name, "what": f"{torch_op} ({src})", "exact": True,
                            "why": "it looks up integer codes but computes scale*q + bias and the bag sums in "
                                   "float32, and its output is float32, so it has no integer-only form"})
    return L.emit(n, "embedding_bag", inputs, dtype="float32", attrs=attrs,
                  consts={"codes": codes, "scale_bias": np.stack([scale, bias], axis=1)}, torch_op=torch_op,
                  source=src)


EMBEDDING_MODES = {0: "sum", 1: "mean", 2: "max"}


def c_embedding_op(bits, lookup, packed_tensor):
    """quantized::embedding_{byte,4bit}(packed, indices, pruned_weights) and quantized::embedding_bag_{byte,4bit}
    [_rowwise_offsets](weight, indices, offsets, scale_grad_by_freq, mode, pruned_weights, per_sample_weights,
    compressed_indices_mapping, include_last_offset), in schema order (keywords too)."""
    names = (("weight", "indices", "pruned_weights") if lookup else
             ("weight", "indices", "offsets", "scale_grad_by_freq", "mode", "pruned_weights", "per_sample_weights",
              "compressed_indices_mapping", "include_last_offset"))

    def rule(L, n, name, *args, **kwargs):
        a = dict(zip(names, args))
        a.update(kwargs)
        if a.get("pruned_weights") or a.get("compressed_indices_mapping") is not None:
            L.fail(n, name, "pruned tables (pruned_weights, compressed_indices_mapping) are not supported")
        w = a.get("weight")
        try:
            if packed_tensor:
                codes, scale, bias = packed_embedding_table(w, bits)
            else:
                import torch

                codes, scale, bias, b = embedding_table(torch.ops.quantized.embedding_bag_unpack(w))
                if b != bits:
                    L.fail(n, name, f"the packed table holds {b}-bit codes, the op reads {bits}-bit ones")
        except (RuntimeError, AttributeError, TypeError) as e:
            L.fail(n, name, f"expects a quantized embedding table as its first argument ({str(e).splitlines()[0][:80]})")
        mode = a.get("mode", 0)
        return _embedding(L, n, a.get("indices"), a.get("offsets"), a.get("per_sample_weights"), codes, scale, bias,
                          bits, lookup, n.name, name, bool(a.get("include_last_offset", False)),
                          EMBEDDING_MODES.get(int(mode), str(mode)) if not lookup else "sum")
    return rule


# (applies(module), rule(L, n, x, module, src)) tried before the built-in module rules
MODULE_RULES = [(_is_dynamic_linear, m_dynamic_linear), (_is_conv_transpose, m_conv_transpose),
                (_is_conv3d, m_conv3d), (_is_embedding, m_embedding)]


# ---------------------------------------------------------------- calls -----

def lower_call(L, n):
    from .fx import target_name

    if n.op == "call_method":
        name = "method." + n.target
    else:
        name = target_name(n.target)
    fn = CALLS.get(name)
    if fn is None:
        L.fail(n, name, "unsupported op. " + SUPPORTED)
    args = [L.val(a) for a in n.args]
    kwargs = {k: L.val(v) for k, v in n.kwargs.items()}
    return fn(L, n, name, *args, **kwargs)


def _quantize(L, n, x, scale, zp, dtype, src="", torch_op="quantize_per_tensor"):
    i = L.info(x)
    if i is None or i.dtype != "float32":
        L.fail(n, torch_op, "quantizes something that is not a float tensor")
    dt = dtype_name(dtype)
    if dt not in ("uint8", "int8"):
        L.fail(n, torch_op, f"quantization to {dtype} is not supported (quint8 and qint8 are)")
    return L.emit(n, "quantize", [x], dtype=dt, scale=scale, zero_point=zp,
                  attrs={"scale": float(scale), "zero_point": int(zp), "dtype": dt},
                  torch_op=torch_op, source=src)


def _dequantize(L, n, x, src=""):
    i = L.info(x)
    if i is None or not i.quantized:
        # dequantize of a float tensor is the identity in torch
        return _passthrough(L, n, x, "identity", src, "dequantize")
    return L.emit(n, "dequantize", [x], dtype="float32",
                  attrs={"scale": i.scale, "zero_point": i.zero_point}, torch_op="dequantize", source=src)


def _linear(L, n, x, mod, relu, src):
    q = L.qin(n, x, f"module {src}: {type(mod).__name__}")
    w = qweight(mod.weight())
    consts = {k: w[k] for k in ("weight", "weight_scale", "weight_zero_point")}
    consts["bias"] = fbias(mod.bias())
    attrs = dict(q, out_scale=float(mod.scale), out_zero_point=int(mod.zero_point), relu=relu,
                 per_channel=w["per_channel"])
    return L.emit(n, "linear", [x], dtype="uint8", scale=mod.scale, zero_point=mod.zero_point,
                  attrs=attrs, consts=consts, torch_op="quantized::linear_relu" if relu else "quantized::linear",
                  source=src)


def _conv(L, n, x, mod, relu, src):
    what = f"module {src}: {type(mod).__name__}"
    q = L.qin(n, x, what)
    if getattr(mod, "padding_mode", "zeros") != "zeros":
        L.fail(n, what, f"padding_mode {mod.padding_mode!r} is not supported (zeros only)")
    if isinstance(mod.padding, str):
        L.fail(n, what, f"padding={mod.padding!r} is not supported; give explicit padding")
    nd = len(mod.kernel_size)
    w = qweight(mod.weight())
    consts = {k: w[k] for k in ("weight", "weight_scale", "weight_zero_point")}
    consts["bias"] = fbias(mod.bias())
    attrs = dict(q, out_scale=float(mod.scale), out_zero_point=int(mod.zero_point), relu=relu,
                 per_channel=w["per_channel"], stride=_pair(mod.stride, nd), padding=_pair(mod.padding, nd),
                 dilation=_pair(mod.dilation, nd), groups=int(mod.groups))
    op = f"quantized::conv{nd}d" + ("_relu" if relu else "")
    return L.emit(n, "conv", [x], dtype="uint8", scale=mod.scale, zero_point=mod.zero_point,
                  attrs=attrs, consts=consts, torch_op=op, source=src)


def _batch_norm(L, n, x, mod, relu, src):
    q = L.qin(n, x, f"module {src}: {type(mod).__name__}")
    consts = {"weight": fbias(mod.weight), "bias": fbias(mod.bias),
              "running_mean": fbias(mod.running_mean), "running_var": fbias(mod.running_var)}
    attrs = dict(q, out_scale=float(mod.scale), out_zero_point=int(mod.zero_point), eps=float(mod.eps), relu=relu,
                 dtype=L.info(x).dtype)
    return L.emit(n, "batch_norm", [x], dtype=L.info(x).dtype, scale=mod.scale, zero_point=mod.zero_point,
                  attrs=attrs, consts=consts, torch_op="quantized::batch_norm2d" + ("_relu" if relu else ""),
                  source=src)


def _unary(L, n, x, op, src, torch_op, attrs=None, out=None):
    """Quantized unary op: out qparams given (out=) or equal to the input's."""
    i = L.info(x)
    if i is None or not i.quantized:
        return _float_or_fail(L, n, x, op, src, torch_op, attrs)
    s, z = out if out is not None else (i.scale, i.zero_point)
    a = {"x_scale": i.scale, "x_zero_point": i.zero_point, "dtype": i.dtype}
    if op in OUT_QPARAM_OPS:
        a.update(out_scale=float(s), out_zero_point=int(z))
    if op == "hardtanh":
        a["channels_last"] = _channels_last(L, x)
    a.update(attrs or {})
    return L.emit(n, op, [x], dtype=i.dtype, scale=s, zero_point=z, attrs=a, torch_op=torch_op, source=src)


# unary ops whose output quantization is a parameter (the others keep the input's, or fix their own)
OUT_QPARAM_OPS = {"hardswish", "leaky_relu", "elu"}


def _fixed_qparams_unary(L, n, x, op, src):
    """sigmoid/tanh: the output quantization is fixed by torch; read it from torch itself."""
    import torch

    i = L.info(x)
    if i is None or not i.quantized:
        return _float_or_fail(L, n, x, op, src, op, None)
    qd = torch.quint8 if i.dtype == "uint8" else torch.qint8
    probe = torch._empty_affine_quantized([1], scale=i.scale, zero_point=i.zero_point, dtype=qd)
    fn = getattr(torch, op, None) or getattr(torch.nn.functional, op)
    y = fn(probe)
    return _unary(L, n, x, op, src, op, out=(y.q_scale(), y.q_zero_point()))


def _maybe_float(L, n, x, op, src, torch_op, attrs=None):
    if L.is_q(x):
        return _unary(L, n, x, op, src, torch_op, attrs)
    return _float_or_fail(L, n, x, op, src, torch_op, attrs)


FLOAT_EXACT = {"relu", "hardtanh", "relu6", "add", "sub", "mul", "neg"}


def _float_or_fail(L, n, x, op, src, torch_op, attrs):
    i = L.info(x)
    if i is None or i.dtype != "float32":
        L.fail(n, torch_op, f"input is {'not a tensor' if i is None else i.dtype}")
    if op not in FLOAT_EXACT:
        L.fail(n, torch_op, f"'{op}' runs in float32 here (between a dequantize and a quantize); "
               "only exact float ops (" + ", ".join(sorted(FLOAT_EXACT)) + ") are reproducible bit for bit. "
               "Quantize this op, or keep it outside the quantized region")
    return L.emit(n, "float_op", [x], dtype="float32", attrs=dict(fn=op, **(attrs or {})),
                  torch_op=torch_op, source=src)


def _float_only(L, n, what):
    L.fail(n, what, "float op inside the model; only exact float ops are reproducible")


def _passthrough(L, n, x, op, src, torch_op, attrs=None, extra_inputs=()):
    i = L.info(x)
    if i is None:
        L.fail(n, torch_op, f"expects a tensor input, got {x!r}")
    return L.emit(n, op, [x, *extra_inputs], dtype=i.dtype, scale=i.scale, zero_point=i.zero_point,
                  attrs=attrs, torch_op=torch_op, source=src)


def _max_pool(L, n, x, nd, k, s, p, d, ceil, src):
    i = L.info(x)
    k = _pair(k, nd)
    s = _pair(s if s not in (None, [], ()) else k, nd)
    attrs = {"kernel_size": k, "stride": s, "padding": _pair(p, nd), "dilation": _pair(d, nd),
             "ceil_mode": bool(ceil)}
    if not i.quantized:
        L.fail(n, f"max_pool{nd}d", "max pooling a float tensor inside the model is not supported")
    attrs["channels_last"] = _channels_last(L, x)
    return L.same_q(n, "max_pool", x, f"max_pool{nd}d", attrs, src)


def _avg_pool(L, n, x, nd, k, s, p, ceil, cip, div, src):
    i = L.info(x)
    if not i.quantized:
        L.fail(n, f"avg_pool{nd}d", "average pooling a float tensor inside the model is not reproducible bit for bit")
    k = _pair(k, nd)
    s = _pair(s if s not in (None, [], ()) else k, nd)
    attrs = {"x_scale": i.scale, "x_zero_point": i.zero_point, "out_scale": i.scale,
             "out_zero_point": i.zero_point, "kernel_size": k, "stride": s, "padding": _pair(p, nd),
             "ceil_mode": bool(ceil), "count_include_pad": bool(cip),
             "divisor_override": None if div is None else int(div), "channels_last": _channels_last(L, x)}
    return L.same_q(n, "avg_pool", x, f"avg_pool{nd}d", attrs, src)


def _adaptive_avg_pool(L, n, x, nd, size, src):
    i = L.info(x)
    if not i.quantized:
        L.fail(n, f"adaptive_avg_pool{nd}d", "adaptive average pooling of a float tensor is not reproducible bit for bit")
    size = [size] * nd if isinstance(size, int) else list(size)
    if any(v is None for v in size):
        L.fail(n, f"adaptive_avg_pool{nd}d", "output_size with None entries is not supported")
    attrs = {"x_scale": i.scale, "x_zero_point": i.zero_point, "output_size": [int(v) for v in size],
             "channels_last": _channels_last(L, x)}
    return L.same_q(n, "adaptive_avg_pool", x, f"adaptive_avg_pool{nd}d", attrs, src)


def _upsample(L, n, x, size, scale_factor, src):
    def norm(v):
        if v is None:
            return None
        return [float(t) for t in v] if isinstance(v, (list, tuple)) else float(v)

    attrs = {"channels_last": _channels_last(L, x), "size": None if size is None else ([int(t) for t in size] if isinstance(size, (list, tuple)) else int(size)),
             "scale_factor": norm(scale_factor)}
    return _passthrough(L, n, x, "upsample_nearest", src, "upsample_nearest", attrs)


def _fparam(t):
    """A float parameter tensor (norm weight/bias) as float32 NumPy, or None."""
    return None if t is None else fbias(t)


def _layer_norm(L, n, x, normalized_shape, weight, bias, eps, scale, zp, src):
    q = L.qin(n, x, "quantized::layer_norm")
    i = L.info(x)
    attrs = dict(q, out_scale=scale, out_zero_point=zp, normalized_ndim=len(normalized_shape), eps=float(eps),
                 dtype=i.dtype)
    return L.emit(n, "layer_norm", [x], dtype=i.dtype, scale=scale, zero_point=zp, attrs=attrs,
                  consts={"weight": _fparam(weight), "bias": _fparam(bias)}, torch_op="quantized::layer_norm",
                  source=src)


def _group_norm(L, n, x, num_groups, weight, bias, eps, scale, zp, src, torch_op):
    """group norm, and instance norm (num_groups None: one group per channel)."""
    q = L.qin(n, x, torch_op)
    i = L.info(x)
    if num_groups is None:
        if i.shape is None:
            L.fail(n, torch_op, "instance norm needs the input's channel count (lower with an example input)")
        num_groups = int(i.shape[1])
    attrs = dict(q, out_scale=scale, out_zero_point=zp, num_groups=int(num_groups), eps=float(eps),
                 channels_last=_channels_last(L, x), dtype=i.dtype)
    return L.emit(n, "group_norm", [x], dtype=i.dtype, scale=scale, zero_point=zp, attrs=attrs,
                  consts={"weight": _fparam(weight), "bias": _fparam(bias)}, torch_op=torch_op, source=src)


def _prelu(L, n, x, weight, scale, zp, src):
    q = L.qin(n, x, "quantized::prelu")
    i = L.info(x)
    if not getattr(weight, "is_quantized", False):
        L.fail(n, "quantized::prelu", "the slope is not a quantized tensor")
    attrs = dict(q, w_scale=float(weight.q_scale()), w_zero_point=int(weight.q_zero_point()), out_scale=scale,
                 out_zero_point=zp, dtype=i.dtype)
    return L.emit(n, "prelu", [x], dtype=i.dtype, scale=scale, zero_point=zp, attrs=attrs,
                  consts={"weight": weight.int_repr().numpy()}, torch_op="quantized::prelu", source=src)


def _gelu_out(L, x):
    from ..ops.gelu import out_qparams

    i = L.info(x)
    return out_qparams(i.scale, i.zero_point) if i is not None and i.quantized else None


def _softmax(L, n, x, dim, out_scale, out_zero_point, src):
    """F.softmax on a quantized tensor is not a quantized kernel; quantized::softmax is."""
    i = L.info(x)
    if i is None or not i.quantized:
        L.fail(n, "softmax", "softmax of a float tensor is not reproducible bit for bit")
    if out_scale is None:
        L.fail(n, "softmax", "softmax on a quantized tensor needs output qparams (quantized::softmax)")
    attrs = {"x_scale": i.scale, "x_zero_point": i.zero_point, "dim": int(dim), "out_scale": float(out_scale),
             "out_zero_point": int(out_zero_point), "dtype": i.dtype}
    return L.emit(n, "softmax", [x], dtype=i.dtype, scale=out_scale, zero_point=out_zero_point, attrs=attrs,
                  torch_op="quantized::softmax", source=src)


def _channel_shuffle(L, n, x, groups, src):
    return _passthrough(L, n, x, "channel_shuffle", src, "channel_shuffle", {"groups": int(groups)})


def _pixel_shuffle(L, n, x, factor, unshuffle, src):
    op = "pixel_unshuffle" if unshuffle else "pixel_shuffle"
    return _passthrough(L, n, x, op, src, op, {"factor": int(factor)})


def _upsample_bilinear(L, n, x, size, scale_factor, align_corners, src):
    i = L.info(x)
    if i is None or not i.quantized:
        L.fail(n, "upsample_bilinear2d", "bilinear upsampling of a float tensor is not reproducible bit for bit")

    def norm(v):
        if v is None:
            return None
        return [float(t) for t in v] if isinstance(v, (list, tuple)) else [float(v)] * 2

    if size is not None:
        size = [int(t) for t in size] if isinstance(size, (list, tuple)) else [int(size)] * 2
    attrs = {"x_scale": i.scale, "x_zero_point": i.zero_point, "size": size, "scale_factor": norm(scale_factor),
             "align_corners": bool(align_corners), "channels_last": _channels_last(L, x), "dtype": i.dtype}
    return L.same_q(n, "upsample_bilinear", x, "upsample_bilinear2d", attrs, src)


# -- call_function / call_method rules ----------------------------------------

def c_quantize_per_tensor(L, n, name, x, scale, zero_point, dtype):
    return _quantize(L, n, x, float(scale), int(zero_point), dtype)


def c_dequantize(L, n, name, x, *a):
    if isinstance(x, (list, tuple)):
        L.fail(n, name, "dequantize of a list is not supported")
    return _dequantize(L, n, x)


def c_binary(op, relu):
    def rule(L, n, name, a, b, scale=None, zero_point=None):
        ia, ib = L.info(a), L.info(b)
        if ia is None or not ia.quantized:
            L.fail(n, name, "first operand is not a quantized tensor")
        if ib is None:  # tensor op scalar
            return _scalar_op(L, n, name, op + "_scalar", a, b, relu)
        if not ib.quantized:
            L.fail(n, name, "second operand is not a quantized tensor")
        attrs = {"a_scale": ia.scale, "a_zero_point": ia.zero_point, "b_scale": ib.scale,
                 "b_zero_point": ib.zero_point, "out_scale": float(scale), "out_zero_point": int(zero_point),
                 "relu": relu, "dtype": ia.dtype}
        return L.emit(n, op, [a, b], dtype=ia.dtype, scale=scale, zero_point=zero_point, attrs=attrs,
                      torch_op=name)
    return rule


def c_qmatmul(L, n, name, a, b, scale, zero_point):
    """quantized::matmul(qa, qb, output_scale, output_zero_point) (QFunctional.matmul)."""
    ia, ib = L.info(a), L.info(b)
    if ia is None or not ia.quantized or ib is None or not ib.quantized:
        L.fail(n, name, "both operands must be quantized tensors")
    if ia.dtype != ib.dtype:
        L.fail(n, name, "the operands have different dtypes (PyTorch refuses them too)")
    attrs = {"a_scale": ia.scale, "a_zero_point": ia.zero_point, "b_scale": ib.scale,
             "b_zero_point": ib.zero_point, "out_scale": float(scale), "out_zero_point": int(zero_point),
             "dtype": ia.dtype}
    return L.emit(n, "matmul", [a, b], dtype=ia.dtype, scale=scale, zero_point=zero_point, attrs=attrs,
                  torch_op=name)


def _scalar_op(L, n, name, op, x, scalar, relu=False):
    """add_scalar/mul_scalar: torch picks the output quantization; read it from torch."""
    import torch

    i = L.info(x)
    if not isinstance(scalar, (int, float)):
        L.fail(n, name, f"scalar operand {scalar!r} is not a number")
    if relu:
        L.fail(n, name, "fused relu with a scalar operand is not supported")
    qd = torch.quint8 if i.dtype == "uint8" else torch.qint8
    probe = torch._empty_affine_quantized([1], scale=i.scale, zero_point=i.zero_point, dtype=qd)
    fn = torch.ops.quantized.add if op == "add_scalar" else torch.ops.quantized.mul
    y = fn(probe, float(scalar))
    attrs = {"x_scale": i.scale, "x_zero_point": i.zero_point, "scalar": float(scalar), "dtype": i.dtype}
    return L.emit(n, op, [x], dtype=i.dtype, scale=y.q_scale(), zero_point=y.q_zero_point(), attrs=attrs,
                  torch_op=name)


def c_add_scalar(op):
    def rule(L, n, name, x, scalar):
        return _scalar_op(L, n, name, op, x, scalar)
    return rule


def c_float_binary(fn):
    def rule(L, n, name, a, b, *rest, **kw):
        ia, ib = L.info(a), L.info(b)
        if all(i is None or i.dtype in ("int", "list") for i in (ia, ib)):  # int arithmetic on shapes
            return _int_arith(L, n, name, fn, a, b)
        if (ia is not None and ia.quantized) or (ib is not None and ib.quantized):
            L.fail(n, name, "float arithmetic on a quantized tensor (use FloatFunctional/QFunctional)")
        if rest or kw.get("alpha", 1) != 1:
            L.fail(n, name, "alpha/out arguments are not supported")
        ins = [v for v in (a, b) if isinstance(v, str)]
        const = None if len(ins) == 2 else (b if ia is not None else a)
        if ia is None and fn in ("sub",):
            L.fail(n, name, "scalar - tensor is not supported")
        return L.emit(n, "float_op", ins, dtype="float32", attrs={"fn": fn, "const": const}, torch_op=name)
    return rule


def _int_arith(L, n, name, fn, a, b):
    if isinstance(a, str) or isinstance(b, str):
        ins = [a] + ([b] if isinstance(b, str) else [])
        attrs = {"fn": fn} if isinstance(b, str) else {"fn": fn, "const": b}
        return L.emit(n, "int_arith", ins, dtype="int", attrs=attrs, torch_op=name)
    # both constants: fold
    from ..ops.shape import _ARITH

    L.values[n.name] = _ARITH[fn](a, b)
    return L.values[n.name]


def c_getitem(L, n, name, x, idx):
    i = L.info(x)
    if i is None:  # indexing a Python constant
        L.values[n.name] = x[idx]
        return
    if i.dtype in ("int", "list"):
        return _int_arith(L, n, name, "getitem", x, idx)
    return _passthrough(L, n, x, "index", n.name, "getitem", attrs={"index": _encode_index(L, n, idx)})


def _encode_index(L, n, idx):
    items = idx if isinstance(idx, tuple) else (idx,)
    out = []
    for it in items:
        if isinstance(it, slice):
            if any(isinstance(v, str) for v in (it.start, it.stop, it.step)):
                L.fail(n, "getitem", "slice bounds computed at run time are not supported")
            out.append(["slice", it.start, it.stop, it.step])
        elif isinstance(it, int):
            out.append(["int", it])
        elif it is None:
            out.append(["none"])
        elif it is Ellipsis:
            out.append(["ellipsis"])
        else:
            L.fail(n, "getitem", f"index {it!r} is not supported (ints, slices, None, ...)")
    return out


def c_size(L, n, name, x, dim=None):
    attrs = {} if dim is None else {"dim": int(dim)}
    L.emit(n, "size", [x], dtype="int" if dim is not None else "list", attrs=attrs, torch_op=name)


def c_getattr(L, n, name, x, attr):
    if attr != "shape":
        L.fail(n, name, f"attribute {attr!r} is not supported (shape is)")
    return c_size(L, n, name, x)


def c_reshape(L, n, name, x, *shape):
    if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
        shape = tuple(shape[0])
    ins = [s if isinstance(s, str) else int(s) for s in shape]
    i = L.info(x)
    return L.emit(n, "reshape", [x, *ins], dtype=i.dtype, scale=i.scale, zero_point=i.zero_point, torch_op=name)


def c_flatten(L, n, name, x, start_dim=0, end_dim=-1):
    return _passthrough(L, n, x, "flatten", n.name, name, {"start_dim": int(start_dim), "end_dim": int(end_dim)})


def c_permute(L, n, name, x, *dims):
    if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
        dims = dims[0]
    return _passthrough(L, n, x, "permute", n.name, name, {"dims": [int(d) for d in dims]})


def c_transpose(L, n, name, x, dim0, dim1):
    return _passthrough(L, n, x, "transpose", n.name, name, {"dim0": int(dim0), "dim1": int(dim1)})


def c_squeeze(L, n, name, x, dim=None):
    return _passthrough(L, n, x, "squeeze", n.name, name, {"dim": dim if dim is None or isinstance(dim, int) else list(dim)})


def c_unsqueeze(L, n, name, x, dim):
    return _passthrough(L, n, x, "unsqueeze", n.name, name, {"dim": int(dim)})


def c_identity(L, n, name, x, *a, **k):
    return _passthrough(L, n, x, "identity", n.name, name)


def c_dropout(L, n, name, x, p=0.5, training=False, inplace=False):
    if training:
        L.fail(n, name, "dropout in training mode (call model.eval())")
    return _passthrough(L, n, x, "identity", n.name, name)


def c_quantized_dropout(L, n, name, x, output_scale=None, output_zero_point=None, p=0.5, training=False):
    """quantized::dropout (F.dropout after convert_fx): in eval the input itself, its qparams kept (measured)."""
    return c_dropout(L, n, name, x, p, training)


def c_relu(L, n, name, x, inplace=False):
    return _maybe_float(L, n, x, "relu", n.name, name)


def c_hardtanh(L, n, name, x, min_val=-1.0, max_val=1.0, inplace=False):
    return _maybe_float(L, n, x, "hardtanh", n.name, name, {"min_val": float(min_val), "max_val": float(max_val)})


def c_relu6(L, n, name, x, inplace=False):
    return _maybe_float(L, n, x, "hardtanh", n.name, name, {"min_val": 0.0, "max_val": 6.0})


def c_hardswish(L, n, name, x, scale=None, zero_point=None, inplace=False, output_scale=None,
                output_zero_point=None):
    if output_scale is not None:  # quantized::hardswish(input, output_scale=, output_zero_point=)
        scale, zero_point = output_scale, output_zero_point
    out = None if scale is None else (float(scale), int(zero_point))
    return _unary(L, n, x, "hardswish", n.name, name, out=out)


def c_leaky_relu(L, n, name, x, negative_slope=0.01, inplace=False, output_scale=None, output_zero_point=None):
    out = None if output_scale is None else (float(output_scale), int(output_zero_point))
    return _unary(L, n, x, "leaky_relu", n.name, name, {"negative_slope": float(negative_slope)}, out=out)


def c_elu(L, n, name, x, output_scale=None, output_zero_point=None, alpha=1.0, *rest, **kw):
    if isinstance(output_scale, float) and output_zero_point is None:  # F.elu(x, alpha)
        alpha, output_scale = output_scale, None
    out = None if output_scale is None else (float(output_scale), int(output_zero_point))
    return _unary(L, n, x, "elu", n.name, name, {"alpha": float(alpha)}, out=out)


def c_sigmoid(L, n, name, x, *a, **k):
    return _fixed_qparams_unary(L, n, x, "sigmoid", n.name)


def c_tanh(L, n, name, x, *a, **k):
    return _fixed_qparams_unary(L, n, x, "tanh", n.name)


def c_cat(L, n, name, tensors, dim=0, scale=None, zero_point=None, *rest, **kw):
    import torch

    infos = [L.info(t) for t in tensors]
    if any(i is None for i in infos):
        L.fail(n, name, "cat of something that is not a tensor")
    if all(not i.quantized for i in infos):
        return L.emit(n, "float_cat", [list(tensors)], dtype="float32", attrs={"dim": int(dim)}, torch_op=name)
    if not all(i.quantized for i in infos):
        L.fail(n, name, "cat of quantized and float tensors")
    if scale is None:
        # torch.cat on quantized tensors: read the output quantization from torch itself
        qd = torch.quint8 if infos[0].dtype == "uint8" else torch.qint8
        d = int(dim)
        nd = d + 1 if d >= 0 else -d
        probes = [torch._empty_affine_quantized([1] * nd, scale=i.scale, zero_point=i.zero_point, dtype=qd)
                  for i in infos]
        y = torch.cat(probes, d)
        scale, zero_point = y.q_scale(), y.q_zero_point()
    attrs = {"dim": int(dim), "x_scales": [i.scale for i in infos], "x_zero_points": [i.zero_point for i in infos],
             "out_scale": float(scale), "out_zero_point": int(zero_point), "dtype": infos[0].dtype}
    return L.emit(n, "cat", [list(tensors)], dtype=infos[0].dtype, scale=scale, zero_point=zero_point,
                  attrs=attrs, torch_op=name)


def c_hardsigmoid(L, n, name, x, inplace=False):
    return _fixed_qparams_unary(L, n, x, "hardsigmoid", n.name)


def c_gelu(L, n, name, x, approximate="none"):
    return _unary(L, n, x, "gelu", n.name, name, {"approximate": str(approximate)}, out=_gelu_out(L, x))


def c_clamp(L, n, name, x, min=None, max=None, *rest, **kw):
    if isinstance(min, str) or isinstance(max, str):
        L.fail(n, name, "clamp bounds computed at run time are not supported")
    return _maybe_float(L, n, x, "hardtanh", n.name, name,
                        {"min_val": None if min is None else float(min), "max_val": None if max is None else float(max)})


def c_softmax(L, n, name, x, dim=None, *rest, **kw):
    if dim is None:
        L.fail(n, name, "softmax without dim is not supported")
    return _softmax(L, n, x, dim, None, None, n.name)


def c_quantized_softmax(L, n, name, x, dim, output_scale, output_zero_point):
    return _softmax(L, n, x, dim, output_scale, output_zero_point, n.name)


def c_channel_shuffle(L, n, name, x, groups):
    return _channel_shuffle(L, n, x, int(groups), n.name)


def c_pixel_shuffle(unshuffle):
    def rule(L, n, name, x, factor):
        return _pixel_shuffle(L, n, x, int(factor), unshuffle, n.name)
    return rule


def c_chunk(L, n, name, x, chunks, dim=0):
    """x.chunk(k, dim): the pieces torch.chunk makes (ceil(size/k) each, the last shorter)."""
    i = L.info(x)
    if i is None or i.shape is None:
        L.fail(n, name, "chunk needs the input's shape (lower with an example input)")
    size = int(i.shape[int(dim)])
    step = -(-size // int(chunks))
    return _split_at(L, n, name, x, int(dim), [min(step, size - b) for b in range(0, size, step)])


def c_split(L, n, name, x, split_size_or_sections, dim=0):
    i = L.info(x)
    if i is None or i.shape is None:
        L.fail(n, name, "split needs the input's shape (lower with an example input)")
    size = int(i.shape[int(dim)])
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        sizes = [min(step, size - b) for b in range(0, size, step)]
    else:
        sizes = [int(v) for v in split_size_or_sections]
    return _split_at(L, n, name, x, int(dim), sizes)


def _split_at(L, n, name, x, dim, sizes):
    """A list of slices of x along dim (index nodes), read by getitem."""
    outs, b = [], 0
    for k, sz in enumerate(sizes):
        index = [["slice", None, None, None]] * (dim % len(L.info(x).shape)) + [["slice", b, b + sz, None]]
        sub = SubNode(f"{n.name}_{k}", n)
        outs.append(_passthrough(L, sub, x, "index", sub.name, name, attrs={"index": index}))
        b += sz
    L.values[n.name] = outs
    return outs


class SubNode:
    """One output of a multi-output FX node (chunk, split), named after it."""

    def __init__(self, name, parent):
        self.name = name
        self.op = parent.op
        self.target = parent.target
        self.args = parent.args
        self.kwargs = parent.kwargs
        self.meta = parent.meta
        self.all_input_nodes = parent.all_input_nodes


def c_max_pool(nd):
    def rule(L, n, name, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
             return_indices=False):
        if return_indices:
            L.fail(n, name, "return_indices=True is not supported")
        return _max_pool(L, n, x, nd, kernel_size, stride, padding, dilation, ceil_mode, n.name)
    return rule


def c_avg_pool(nd):
    def rule(L, n, name, x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
             divisor_override=None):
        return _avg_pool(L, n, x, nd, kernel_size, stride, padding, ceil_mode, count_include_pad,
                         divisor_override, n.name)
    return rule


def c_adaptive_avg_pool(nd):
    def rule(L, n, name, x, output_size):
        return _adaptive_avg_pool(L, n, x, nd, output_size, n.name)
    return rule


def c_interpolate(L, n, name, x, size=None, scale_factor=None, mode="nearest", align_corners=None,
                  recompute_scale_factor=None, antialias=False):
    if mode == "bilinear" and not antialias:
        if recompute_scale_factor:
            L.fail(n, name, "recompute_scale_factor=True is not supported")
        return _upsample_bilinear(L, n, x, size, scale_factor, bool(align_corners), n.name)
    if mode != "nearest":
        L.fail(n, name, f"interpolate mode {mode!r} is not supported (nearest, bilinear)")
    if antialias:
        L.fail(n, name, "antialias is not supported")
    return _upsample(L, n, x, size, scale_factor, n.name)


def c_mean(L, n, name, x, dim=None, keepdim=False, dtype=None):
    i = L.info(x)
    if i is None or not i.quantized:
        L.fail(n, name, "mean of a float tensor is not reproducible bit for bit")
    if dim is None:
        L.fail(n, name, "mean over all dimensions is not supported; give dim")
    dims = [int(dim)] if isinstance(dim, int) else [int(d) for d in dim]
    return L.same_q(n, "mean", x, name, {"x_scale": i.scale, "x_zero_point": i.zero_point, "dim": dims,
                                         "keepdim": bool(keepdim), "channels_last": _channels_last(L, x)}, n.name)


def c_to(L, n, name, x, *a, **k):
    L.fail(n, name, "dtype/device conversion inside the model is not supported")


def c_contiguous(L, n, name, x, *a, **k):
    return _passthrough(L, n, x, "identity", n.name, name)


CALLS = {
    "torch.quantize_per_tensor": c_quantize_per_tensor,
    "method.dequantize": c_dequantize,
    "torch.dequantize": c_dequantize,
    "quantized::add": c_binary("add", False),
    "quantized::add_relu": c_binary("add", True),
    "quantized::mul": c_binary("mul", False),
    "quantized::mul_relu": c_binary("mul", True),
    "quantized::add_scalar": c_add_scalar("add_scalar"),
    "quantized::mul_scalar": c_add_scalar("mul_scalar"),
    "quantized::matmul": c_qmatmul,
    "quantized::cat": c_cat,
    "torch.cat": c_cat,
    "torch.concat": c_cat,
    "quantized::hardswish": c_hardswish,
    "quantized::leaky_relu": c_leaky_relu,
    "quantized::elu": c_elu,
    "quantized::sigmoid": c_sigmoid,
    "operator.add": c_float_binary("add"),
    "operator.sub": c_float_binary("sub"),
    "operator.mul": c_float_binary("mul"),
    "operator.floordiv": c_float_binary("floordiv"),
    "torch.add": c_float_binary("add"),
    "torch.mul": c_float_binary("mul"),
    "operator.getitem": c_getitem,
    "getattr": c_getattr,
    "method.size": c_size,
    "method.reshape": c_reshape,
    "method.view": c_reshape,
    "torch.reshape": c_reshape,
    "method.flatten": c_flatten,
    "torch.flatten": c_flatten,
    "method.permute": c_permute,
    "torch.permute": c_permute,
    "method.transpose": c_transpose,
    "torch.transpose": c_transpose,
    "method.squeeze": c_squeeze,
    "torch.squeeze": c_squeeze,
    "method.unsqueeze": c_unsqueeze,
    "torch.unsqueeze": c_unsqueeze,
    "method.contiguous": c_contiguous,
    "method.detach": c_contiguous,
    "method.clone": c_contiguous,
    "F.dropout": c_dropout,
    "method.relu": c_relu,
    "F.relu": c_relu,
    "torch.relu": c_relu,
    # in-place spellings: the same values; fx.writes_first_input makes later readers of x see them
    "method.relu_": c_relu,
    "torch.relu_": c_relu,
    "F.relu_": c_relu,
    "F.relu6": c_relu6,
    "F.hardtanh": c_hardtanh,
    "torch.clamp": c_clamp,
    "method.clamp": c_clamp,
    "torch.clip": c_clamp,
    "F.hardsigmoid": c_hardsigmoid,
    "F.gelu": c_gelu,
    "torch.gelu": c_gelu,
    "torch.hardsigmoid": c_hardsigmoid,
    "torch.upsample_bilinear2d": None,
    "F.softmax": c_softmax,
    "torch.softmax": c_softmax,
    "method.softmax": c_softmax,
    "quantized::softmax": c_quantized_softmax,
    "torch.channel_shuffle": c_channel_shuffle,
    "torch.native_channel_shuffle": c_channel_shuffle,
    "F.channel_shuffle": c_channel_shuffle,
    "F.native_channel_shuffle": c_channel_shuffle,
    "torch.pixel_shuffle": c_pixel_shuffle(False),
    "F.pixel_shuffle": c_pixel_shuffle(False),
    "torch.pixel_unshuffle": c_pixel_shuffle(True),
    "F.pixel_unshuffle": c_pixel_shuffle(True),
    "torch.chunk": c_chunk,
    "method.chunk": c_chunk,
    "torch.split": c_split,
    "method.split": c_split,
    "torch.avg_pool2d": c_avg_pool(2),
    "F.avg_pool3d": None,
    "operator.truediv": None,
    "torch.floor_divide": c_float_binary("floordiv"),
    "method.floor_divide": c_float_binary("floordiv"),
    "F.hardswish": c_hardswish,
    "F.leaky_relu": c_leaky_relu,
    "F.elu": c_elu,
    "torch.sigmoid": c_sigmoid,
    "method.sigmoid": c_sigmoid,
    "F.sigmoid": c_sigmoid,
    "torch.tanh": c_tanh,
    "method.tanh": c_tanh,
    "F.tanh": c_tanh,
    "F.max_pool1d": c_max_pool(1),
    "F.max_pool2d": c_max_pool(2),
    "torch.max_pool1d": c_max_pool(1),
    "torch.max_pool2d": c_max_pool(2),
    "F.avg_pool1d": c_avg_pool(1),
    "F.avg_pool2d": c_avg_pool(2),
    "torch.avg_pool1d": c_avg_pool(1),
    "F.adaptive_avg_pool1d": c_adaptive_avg_pool(1),
    "F.adaptive_avg_pool2d": c_adaptive_avg_pool(2),
    "torch.adaptive_avg_pool1d": c_adaptive_avg_pool(1),
    "F.interpolate": c_interpolate,
    "F.upsample": c_interpolate,
    "F.upsample_nearest": c_interpolate,
    "torch.mean": c_mean,
    "method.mean": c_mean,
    "method.to": c_to,
    "method.relu_": c_relu,
    "method.clip": c_clamp,
    "method.add": c_float_binary("add"),
    "method.sub": c_float_binary("sub"),
    "method.mul": c_float_binary("mul"),
    "torch.sub": c_float_binary("sub"),
    "quantized::dropout": c_quantized_dropout,
    "torch.adaptive_avg_pool2d": c_adaptive_avg_pool(2),
    "quantized::embedding_byte": c_embedding_op(8, True, False),
    "quantized::embedding_4bit": c_embedding_op(4, True, False),
    "quantized::embedding_bag_byte": c_embedding_op(8, False, False),
    "quantized::embedding_bag_4bit": c_embedding_op(4, False, False),
    "quantized::embedding_bag_byte_rowwise_offsets": c_embedding_op(8, False, True),
    "quantized::embedding_bag_4bit_rowwise_offsets": c_embedding_op(4, False, True),
}
CALLS = {k: v for k, v in CALLS.items() if v is not None}

SUPPORTED = ("Supported: Quantize/DeQuantize, quantize_per_tensor, dequantize, Linear, LinearReLU, "
             "Conv1d/Conv2d (+ReLU), BatchNorm2d (+ReLU), ReLU, ReLU6, Hardtanh, Hardswish, LeakyReLU, ELU, "
             "Sigmoid, Tanh, add/add_relu/mul/mul_relu (QFunctional, quantized::add...), add_scalar, mul_scalar, "
             "cat, MaxPool1d/2d, AvgPool1d/2d, AdaptiveAvgPool1d/2d, interpolate/Upsample nearest, mean, "
             "quantized Embedding/EmbeddingBag, dynamic Linear, LayerNorm, GroupNorm, InstanceNorm, PReLU, "
             "Softmax, GELU, Hardsigmoid, ConvTranspose, Conv3d, matmul, "
             "flatten, reshape, view, squeeze, unsqueeze, permute, transpose, contiguous, getitem, "
             "Dropout, Identity, clamp, chunk, split, channel_shuffle, pixel_shuffle, pixel_unshuffle, "
             "and exact float ops (relu, hardtanh, add, sub, mul) between dequantize and quantize.")


def _with_table(text: str) -> str:
    """SUPPORTED, and where the whole list is: the op table declares every op's PyTorch spellings
    (OpSpec.torch), printed by `python -m qgolden.ops` and in the README (too long for one error line)."""
    return text[:-1] + "; every spelling: `python -m qgolden.ops` (README, Supported ops)."


SUPPORTED = _with_table(SUPPORTED)

from . import ts_ops  # noqa: E402,F401  TorchScript (torch.ops) targets, added to CALLS
from . import rnn  # noqa: E402,F401  quantize_dynamic's recurrent modules, added to MODULE_RULES
