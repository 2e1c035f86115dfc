"""quantized::conv_transpose1d / 2d / 3d (nnq.ConvTranspose1d/2d/3d), quint8 activations, qint8 weights.

The integer sum of a transposed conv: every input pixel scatters (x - zx)·(w - zw) into the output
window it reaches (out = in·stride - padding + tap·dilation), the output cropped by `padding` and
extended by `output_padding`; no input padding takes part, so the zero point only shifts x.
Engine -> kernel (aten/src/ATen/native/quantized/cpu/qconv.cpp, transposed packed weights):
    fbgemm   PackedConvWeight::apply_impl, transposed conv_param_t -> fbgemmConv, ReQuantizeOutput
    qnnpack  PackedConvWeightsQnnp::apply_impl -> pytorch_qnnp deconvolution (q8conv, exact int32)
    onednn   PackedConvWeightsOnednn::apply_impl -> ideep deconvolution
    x86      oneDNN where onednn_utils::should_use_onednn_quant holds (VNNI, groups <= 100, per-tensor
             symmetric weights, output_padding all zero: OnednnUtils.h), else FBGEMM
Weights are [C_in, C_out/groups, *kernel] (PyTorch's transposed layout), per-tensor.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..numerics.profile import conv_backend, gemm_saturates
from ..numerics.quantize import dequantize_per_tensor
from ..numerics.requantize import requantize_fbgemm, requantize_onednn, requantize_qnnpack
from .spec import OpSpec


def _tuple(v, nd):
    v = [int(i) for i in np.atleast_1d(v)]
    return tuple(v) if len(v) == nd else tuple(v[:1] * nd)


def output_size(in_size, kernel, stride, padding, output_padding, dilation) -> tuple:
    """out = (in - 1)·stride - 2·padding + dilation·(kernel - 1) + output_padding + 1, per spatial dim
    (torch.nn.ConvTranspose*d)."""
    return tuple((i - 1) * s - 2 * p + d * (k - 1) + op + 1
                 for i, k, s, p, op, d in zip(in_size, kernel, stride, padding, output_padding, dilation))


def transposed_conv_acc(x, weight, x_zero_point, weight_zero_point, stride, padding, output_padding, dilation,
                        groups) -> np.ndarray:
    """Exact Σ (x - zx)·(w - zw[o]) of a transposed conv: x uint8 [N, C, *in], weight int8
    [C, O/groups, *kernel] -> int64 [N, *out, O] (channel last). Per tap, a [N·in, Cg] x [Cg, Og] product
    (float64: exact below 2**53) scattered to out positions in·stride + tap·dilation of the uncropped
    output, which is then cropped by padding (output_padding adds rows no input reaches)."""
    x = np.asarray(x)
    w = np.asarray(weight)
    nb, c_in = x.shape[:2]
    spatial = x.shape[2:]
    nd = len(spatial)
    kernel = w.shape[2:]
    g = int(groups)
    cg, og = c_in // g, w.shape[1]
    c_out = og * g
    out = output_size(spatial, kernel, stride, padding, output_padding, dilation)
    full = tuple((i - 1) * s + d * (k - 1) + 1 + op
                 for i, k, s, d, op in zip(spatial, kernel, stride, dilation, output_padding))
    zw = np.broadcast_to(np.asarray(weight_zero_point, dtype=np.int64).reshape(-1), (c_out,))
    xs = (x.astype(np.float64) - float(x_zero_point))
    xs = np.moveaxis(xs, 1, -1)  # [N, *in, C]
    acc = np.zeros((nb,) + full + (c_out,), dtype=np.float64)
    for gi in range(g):
        xg = xs[..., gi * cg:(gi + 1) * cg]
        wg = w[gi * cg:(gi + 1) * cg].astype(np.float64) - zw[gi * og:(gi + 1) * og].reshape(1, og, *([1] * nd))
        for tap in itertools.product(*(range(k) for k in kernel)):
            contrib = xg @ wg[(slice(None), slice(None)) + tap]  # [N, *in, Og]
            at = tuple(slice(t * d, t * d + (i - 1) * s + 1, s)
                       for t, d, i, s in zip(tap, dilation, spatial, stride))
            acc[(slice(None),) + at + (slice(gi * og, (gi + 1) * og),)] += contrib
    crop = tuple(slice(p, p + o) for p, o in zip(padding, out))
    return acc[(slice(None),) + crop + (slice(None),)].astype(np.int64)


def onednn_deconv_weight_order(weight, groups) -> np.ndarray:
    """The weights [C_in, C_out/G, *kernel] as PyTorch's oneDNN transposed conv reads them.

    Per group, the [Cg, Og] blocks of kernel taps (each block the K = prod(kernel) taps of one (c, o),
    taps kept in order) are taken in a permuted order: viewing the group's Cg·Og blocks as a row-major
    [Og, Cg] matrix and transposing it twice (two reinterpretations of the same buffer, the second one
    of the transposed copy as [Og, Cg] again), block p of the effective [Cg, Og] weight is block
        r[p],  r = T(T(arange(Cg·Og), Og, Cg), Og, Cg),  T(b, a, c) = b.reshape(a, c).T.ravel()
    of the given weight. It is the identity when Cg == Og. Measured on torch 2.13 with one-hot inputs
    (onednn and x86 engines; oneDNN capped at AVX2, AVX512_CORE_VNNI and uncapped AMX alike), for
    C_in != C_out, groups and 3-D kernels: the order PyTorch's onednn prepack
    (qconv_prepack.cpp, PackedConvWeightsOnednn::prepack with transpose) hands ideep."""
    w = np.asarray(weight)
    g = int(groups)
    cg, og = w.shape[0] // g, w.shape[1]
    taps = w.shape[2:]

    def transpose_view(b, rows, cols):
        return b.reshape(rows, cols).T.reshape(-1)

    order = transpose_view(transpose_view(np.arange(cg * og), og, cg), og, cg)
    out = np.empty_like(w)
    for gi in range(g):
        blocks = w[gi * cg:(gi + 1) * cg].reshape(cg * og, *taps)
        out[gi * cg:(gi + 1) * cg] = blocks[order].reshape((cg, og) + taps)
    return out


def conv_transpose_backend(profile, groups, per_channel, weight_zero_point, output_padding) -> str:
    """fbgemm | qnnpack | onednn: conv_backend, with should_use_onednn_quant's two extra conditions for
    transposed convs under x86: per-tensor symmetric weights and output_padding all zero."""
    symmetric = not per_channel and not np.any(np.asarray(weight_zero_point) != 0) and not any(output_padding)
    return conv_backend(profile, int(groups), symmetric)


def conv_transpose(x, *, x_scale, x_zero_point, weight, weight_scale, weight_zero_point, bias, out_scale,
                   out_zero_point, stride, padding, output_padding, dilation, groups, relu=False, per_channel=False,
                   profile, trace=None):
    """x uint8 [N, C, *in] (1, 2 or 3 spatial dims); weight int8 [C, O/groups, *kernel]; weight_scale
    float64 [1]; bias float32 [O] or None. Returns uint8 [N, O, *out] (an NCHW view of the channels-last
    result the kernels write)."""
    x = np.asarray(x)
    nd = x.ndim - 2
    stride, padding, output_padding, dilation = (_tuple(v, nd) for v in (stride, padding, output_padding, dilation))
    if per_channel:
        raise NotImplementedError("per-channel weights of a quantized transposed conv (PyTorch refuses them too)")
    backend = conv_transpose_backend(profile, groups, per_channel, weight_zero_point, output_padding)
    if backend not in ("fbgemm", "qnnpack", "onednn"):
        raise NotImplementedError(f"quantized transposed conv under the {profile['engine']} runtime")
    if backend == "onednn" and np.any(np.asarray(weight_zero_point) != 0):
        raise ValueError("onednn conv_transpose requires weight zero point 0")
    w_shape = np.shape(weight)
    if backend == "onednn":
        weight = onednn_deconv_weight_order(weight, groups)
    if backend != "qnnpack" and gemm_saturates(profile) and _pairs_can_saturate(x, weight, x_zero_point):
        raise NotImplementedError("quantized transposed conv on a CPU class that sums u8*s8 pairs in int16 "
                                  "with inputs that can saturate (activations above 127): not reproduced")
    acc = transposed_conv_acc(x, weight, x_zero_point, weight_zero_point, stride, padding, output_padding,
                              dilation, groups)
    shape = acc.shape
    acc2 = acc.reshape(-1, shape[-1])
    req = {"fbgemm": requantize_fbgemm, "qnnpack": requantize_qnnpack, "onednn": requantize_onednn}[backend]
    extra = {}
    if backend == "onednn":
        # the output stage of the oneDNN conv family of the same output shape (ops/conv.py); on data
        # without exact requantization ties both stages agree, so the records cannot tell them apart yet
        from .conv import onednn_output_stage

        o_shape = (shape[0], shape[-1]) + shape[1:-1]
        g = int(groups)
        fwd_w = (w_shape[1] * g, w_shape[0] // g) + tuple(w_shape[2:])  # the forward conv's [O, C/G, *k]
        if nd == 3:
            from .conv3d import onednn_conv3d_output_stage

            extra["kernel"] = onednn_conv3d_output_stage(profile, o_shape, fwd_w, g, (1,) * 3, (0,) * 3, dilation)
        else:
            extra["kernel"] = onednn_output_stage(profile, o_shape, fwd_w, g, (1,) * nd, (0,) * nd, dilation)
    t = {} if trace is not None else None
    out = req(acc2, x_scale=x_scale, weight_scale=weight_scale, out_scale=out_scale, out_zero_point=out_zero_point,
              bias=bias, per_channel=False, relu=relu, trace=t, **extra)
    out = np.moveaxis(out.reshape(shape), -1, 1)
    if trace is not None:
        trace["backend"] = backend
        trace["acc"] = np.moveaxis(acc, -1, 1)
        trace.update({k: (np.moveaxis(v.reshape(shape), -1, 1) if isinstance(v, np.ndarray) and v.size == acc.size
                          else v) for k, v in t.items()})
        trace["out"] = out
        trace["out_real"] = dequantize_per_tensor(out, out_scale, out_zero_point)
    return out


def _pairs_can_saturate(x, weight, x_zero_point) -> bool:
    """Whether any two adjacent u8·s8 products could leave int16: 2·max(x)·max|w| > 32767."""
    xm = int(np.max(x)) if np.size(x) else 0
    wm = int(np.max(np.abs(np.asarray(weight, np.int64)))) if np.size(weight) else 0
    return 2 * xm * wm > 32767


SPECS = [
    OpSpec("conv_transpose", "conv_transpose", integer="none",
           summary="quantized transposed conv (1-D, 2-D, 3-D): each input pixel scatters x·w over its output "
                   "window, then the engine's conv requantization (no integer-only form yet)",
           formula=("acc[o, y] = Σ_{c, t : y = i·stride − pad + t·dil} (x_q[c, i] − z_x)·(w_q[c, o, t] − z_w)",
                    "y_q = the engine's conv requantization of acc (fbgemm / qnnpack / onednn), bias as for conv"),
           torch=("quantized::conv_transpose1d", "quantized::conv_transpose2d", "quantized::conv_transpose3d",
                  "nnq.ConvTranspose1d/2d/3d")),
]
