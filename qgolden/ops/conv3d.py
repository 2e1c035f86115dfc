"""quantized::conv3d / conv3d_relu (nnq.Conv3d, nniq.ConvReLU3d), quint8 activations, qint8 weights.

aten/src/ATen/native/quantized/cpu/qconv.cpp: the same apply_impl as conv2d with kSpatialDim == 3:
    fbgemm   PackedConvWeight<3>::apply_impl -> fbgemm::fbgemmConv (im2col + GEMM), ReQuantizeOutput
    onednn   PackedConvWeightsOnednn<3>::apply_impl -> ideep convolution, oneDNN output stage
    x86      oneDNN where onednn_utils::should_use_onednn_quant holds (VNNI, groups <= 100, per-tensor
             symmetric weights: OnednnUtils.h), else FBGEMM (profile.conv_backend)
    qnnpack  PackedConvWeightsQnnp has no 3-D kernel: PyTorch refuses (qgolden too)
The integer sum is Σ (x - zx)·(w - zw[o]) over the input window (zero padding is the zero point, so
padded taps add 0); CPU classes whose u8·s8 pairs saturate in int16 (CpuClass.fbgemm_pairs_saturate,
onednn_pairs_saturate) are reproduced only on inputs where no pair can saturate.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..cpu import cpu_class
from ..numerics.profile import conv_backend, gemm_saturates
from ..numerics.quantize import dequantize_per_tensor
from ..numerics.requantize import requantize_fbgemm, requantize_onednn
from .spec import OpSpec


def _triple(v):
    v = [int(i) for i in np.atleast_1d(v)]
    return tuple(v) if len(v) == 3 else tuple(v[:1] * 3)


def conv3d_output_size(in_size, kernel, stride, padding, dilation) -> tuple:
    """out = (in + 2·padding - dilation·(kernel - 1) - 1) // stride + 1, per spatial dim (torch.nn.Conv3d)."""
    return tuple((i + 2 * p - d * (k - 1) - 1) // s + 1
                 for i, k, s, p, d in zip(in_size, kernel, stride, padding, dilation))


def conv3d_acc(x, weight, x_zero_point, weight_zero_point, stride, padding, dilation, groups) -> np.ndarray:
    """Exact Σ (x - zx)·(w - zw[o]): x uint8 [N, C, D, H, W], weight int8 [O, C/groups, KD, KH, KW]
    -> int64 [N, OD, OH, OW, O] (channel last). Per tap, a [N·out, Cg] x [Cg, Og] product in float64
    (exact: |sum| < 2**53)."""
    x = np.asarray(x)
    w = np.asarray(weight)
    nb, c_in = x.shape[:2]
    kernel = w.shape[2:]
    g = int(groups)
    cg, c_out = c_in // g, w.shape[0]
    og = c_out // g
    out = conv3d_output_size(x.shape[2:], kernel, stride, padding, dilation)
    zw = np.broadcast_to(np.asarray(weight_zero_point, dtype=np.int64).reshape(-1), (c_out,))
    xs = np.moveaxis(x.astype(np.float64) - float(x_zero_point), 1, -1)  # [N, D, H, W, C]
    xs = np.pad(xs, [(0, 0)] + [(p, p) for p in padding] + [(0, 0)])  # padding holds the zero point
    wf = w.astype(np.float64) - zw.reshape(-1, 1, 1, 1, 1)
    acc = np.zeros((nb,) + out + (c_out,), dtype=np.float64)
    for tap in itertools.product(*(range(k) for k in kernel)):
        window = xs[(slice(None),) + tuple(slice(t * d, t * d + (o - 1) * s + 1, s)
                                           for t, d, o, s in zip(tap, dilation, out, stride))]
        for gi in range(g):
            acc[..., gi * og:(gi + 1) * og] += (window[..., gi * cg:(gi + 1) * cg]
                                                 @ wf[gi * og:(gi + 1) * og, :, tap[0], tap[1], tap[2]].T)
    return acc.astype(np.int64)


def onednn_conv3d_output_stage(profile, x_shape, w_shape, groups, stride, padding, dilation) -> str:
    """The output stage of the oneDNN 3-D conv kernel on the profile's CPU class: the kernel family of
    CpuClass.onednn_conv_kernel, given the depth folded into the rows (oneDNN's brgemm conv treats
    OD x OH as rows of one plane), then CpuClass.onednn_output_stage."""
    g = int(groups)
    cls = cpu_class(profile)
    out = conv3d_output_size(x_shape[2:], w_shape[2:], stride, padding, dilation)
    kernel = (int(w_shape[2]) * int(w_shape[3]), int(w_shape[4]))
    fam = cls.onednn_conv_kernel(int(w_shape[1]), int(w_shape[0]) // g, g, kernel, (stride[1], stride[2]),
                                 (padding[1], padding[2]), int(x_shape[0]), (out[0] * out[1], out[2]),
                                 int(profile.get("num_threads", 1)))
    return cls.onednn_output_stage(fam)


def _pairs_can_saturate(x, weight, x_zero_point) -> bool:
    """Whether two adjacent u8·s8 products could leave int16: 2·max(x)·max|w| > 32767."""
    xm = int(np.max(x)) if np.size(x) else 0
    wm = int(np.max(np.abs(np.asarray(weight, np.int64)))) if np.size(weight) else 0
    return 2 * xm * wm > 32767


def conv3d(x, *, x_scale, x_zero_point, weight, weight_scale, weight_zero_point, bias, out_scale, out_zero_point,
           stride, padding, dilation, groups, relu=False, per_channel=False, profile, trace=None):
    """x uint8 [N, C, D, H, W]; weight int8 [O, C/groups, KD, KH, KW]; weight_scale float64 [1] or [O];
    bias float32 [O] or None. Returns uint8 [N, O, OD, OH, OW] (an NCDHW view of the channels-last result)."""
    x = np.asarray(x)
    stride, padding, dilation = _triple(stride), _triple(padding), _triple(dilation)
    symmetric = not per_channel and not np.any(np.asarray(weight_zero_point) != 0)
    backend = conv_backend(profile, int(groups), symmetric)
    if backend not in ("fbgemm", "onednn"):
        raise NotImplementedError(f"quantized conv3d under {profile['engine']} ({backend}): PyTorch has no such kernel")
    if backend == "onednn" and np.any(np.asarray(weight_zero_point) != 0):
        raise ValueError("onednn conv3d requires weight zero point 0")
    if gemm_saturates(profile) and _pairs_can_saturate(x, weight, x_zero_point):
        raise NotImplementedError("quantized conv3d on a CPU class that sums u8*s8 pairs in int16 with inputs "
                                  "that can saturate (activations above 127): not reproduced")
    acc = conv3d_acc(x, weight, x_zero_point, weight_zero_point, stride, padding, dilation, groups)
    shape = acc.shape
    extra = {}
    if backend == "onednn":
        extra["kernel"] = onednn_conv3d_output_stage(profile, x.shape, np.shape(weight), groups, stride, padding,
                                                     dilation)
    req = requantize_onednn if backend == "onednn" else requantize_fbgemm
    t = {} if trace is not None else None
    out = req(acc.reshape(-1, shape[-1]), x_scale=x_scale, weight_scale=weight_scale, out_scale=out_scale,
              out_zero_point=out_zero_point, bias=bias, per_channel=per_channel, relu=relu, trace=t, **extra)
    out = np.moveaxis(out.reshape(shape), -1, 1)
    if trace is not None:
        trace.update(backend=backend, acc=np.moveaxis(acc, -1, 1), out=out,
                     out_real=dequantize_per_tensor(out, out_scale, out_zero_point))
        trace.update({k: np.moveaxis(v.reshape(shape), -1, 1) for k, v in t.items()
                      if isinstance(v, np.ndarray) and v.size == acc.size})
    return out


SPECS = [
    OpSpec("conv3d", "conv3d", integer="none",
           summary="quantized 3-D conv: int32 sum over the input window, then the engine's conv requantization",
           formula=("acc[o, z, y, x] = Σ_{c, t} (x_q[c, z·s + t_z·d − p, ...] − z_x)·(w_q[o, c, t] − z_w[o])",
                    "y_q = the engine's conv requantization of acc (fbgemm / onednn), bias as for conv"),
           torch=("quantized::conv3d", "quantized::conv3d_relu", "nnq.Conv3d", "nniq.ConvReLU3d")),
]
