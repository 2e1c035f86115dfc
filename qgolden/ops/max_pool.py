"""Quantized max_pool1d / max_pool2d (quantized_max_pool2d, qpool.cpp).

Every engine computes the same thing: the integer maximum of the stored values over the
window taps that fall inside the input (padding never wins), with the qparams of the
input passed through unchanged.

    ATen `spatial_dilated_max_pooling` (NCHW) and `qmaxpool_2d_nhwc_kernel` (channels-last)
    give the same integers.

Exception: QNNPACK (engine qnnpack, quint8, ceil_mode=False) runs `u8maxpool` through an
indirection buffer (`pytorch_qnnp_indirection_init_maxpool2d`) that CLAMPS every tap
coordinate into the input:  iy = min(max(oy*s + ky*d - p, 0), H - 1).  A padded tap
therefore reads the edge pixel. Without dilation the edge pixel is in the window anyway,
so nothing changes; with dilation > 1 and padding the edge pixel can be outside the
dilated tap set and still win. QNNPACK also rejects a 1x1 kernel and skips the
"padding <= kernel/2" check.

max_pool1d is max_pool2d on x.unsqueeze(-2) with kernel (1, k), stride (1, s),
padding (0, p), dilation (1, d).

Output size (ATen `pooling_output_shape`):
    o = floor((L + 2p - d(k-1) - 1 + (ceil_mode ? s-1 : 0)) / s) + 1
    if ceil_mode and (o-1)*s >= L + p: o -= 1
"""
from __future__ import annotations

import numpy as np

from .spec import OpSpec


def pooling_output_shape(size: int, k: int, pad: int, stride: int, dilation: int, ceil_mode: bool) -> int:
    """ATen `pooling_output_shape` (Pool.h)."""
    num = size + 2 * pad - dilation * (k - 1) - 1 + ((stride - 1) if ceil_mode else 0)
    out = num // stride + 1  # div_rtn: floor division
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return int(out)


def nhwc_written_as_nchw(y, in_h: int, in_w: int, channels_last: bool = False):
    """Reproduce a torch bug shared by the ATen channels-last kernels (max/avg/adaptive pool,
    upsample_nearest2d): they write NHWC order into an output allocated with
    input.suggest_memory_format(). An input with H*W == 1 takes the channels-last kernel
    (it is ChannelsLast-contiguous) but suggests Contiguous, so the NHWC buffer is read as
    NCHW. No effect when C == 1 or the output is 1x1."""
    if in_h * in_w != 1 or channels_last:  # a channels-last input gets a channels-last output: no bug
        return y
    N, C, oH, oW = y.shape
    return np.ascontiguousarray(y.transpose(0, 2, 3, 1)).reshape(N, C, oH, oW)


def _tup(v, n):
    if v is None:
        return None
    if isinstance(v, (int, np.integer)):
        return (int(v),) * n
    v = tuple(int(a) for a in v)
    if len(v) == 1 and n == 2:
        return v * 2
    return v


def max_pool(x, *, kernel_size, stride, padding, dilation, ceil_mode, profile, trace=None, channels_last=False):
    """Quantized max pool over the last 1 (x [N,C,L]) or 2 (x [N,C,H,W]) dims.

    x: numpy uint8 (quint8) or int8 (qint8) stored values. Returns the same dtype.
    stride None/empty means stride = kernel_size (as torch).
    channels_last: the torch input is channels-last (only matters through the H*W == 1 quirk,
    see nhwc_written_as_nchw).
    """
    x = np.asarray(x)
    nd = len(kernel_size) if not isinstance(kernel_size, (int, np.integer)) else (x.ndim - 2)
    ks = _tup(kernel_size, nd)
    st = _tup(stride, nd) if stride not in (None, (), []) else ks
    pd = _tup(padding, nd)
    dl = _tup(dilation, nd)
    if nd == 1:
        y = max_pool(x[..., None, :], kernel_size=(1, ks[0]), stride=(1, st[0]), padding=(0, pd[0]),
                     dilation=(1, dl[0]), ceil_mode=ceil_mode, profile=profile, trace=trace,
                     channels_last=channels_last)
        return y[..., 0, :]
    if nd != 2:
        raise ValueError("max_pool supports 1d and 2d")
    kH, kW = ks
    sH, sW = st
    pH, pW = pd
    dH, dW = dl
    H, W = x.shape[-2:]
    oH = pooling_output_shape(H, kH, pH, sH, dH, ceil_mode)
    oW = pooling_output_shape(W, kW, pW, sW, dW, ceil_mode)
    if oH <= 0 or oW <= 0:
        raise ValueError("output size is too small")
    if profile["engine"] == "qnnpack" and x.dtype == np.uint8 and not ceil_mode:
        if kH * kW == 1:
            raise ValueError("QNNPACK max pooling rejects 1x1 pooling")
        acc = None
        for i in range(kH):
            rows = np.clip(np.arange(oH) * sH + i * dH - pH, 0, H - 1)
            for j in range(kW):
                cols = np.clip(np.arange(oW) * sW + j * dW - pW, 0, W - 1)
                tap = x[..., rows[:, None], cols[None, :]]
                acc = tap.copy() if acc is None else np.maximum(acc, tap)
        if trace is not None:
            trace["output_size"] = (oH, oW)
            trace["kernel"] = "qnnpack u8maxpool (clamped taps)"
        return acc
    if not (kH // 2 >= pH and kW // 2 >= pW):
        raise ValueError("padding should be smaller than half of kernel_size")
    # pad with the dtype's lowest value (the kernel's initial max, which is also what a
    # window with no valid tap returns), far enough for every (ceil-mode) window
    need_h = (oH - 1) * sH + (kH - 1) * dH + 1
    need_w = (oW - 1) * sW + (kW - 1) * dW + 1
    ph_r = max(0, need_h - pH - H)
    pw_r = max(0, need_w - pW - W)
    low = np.iinfo(x.dtype).min
    # work in x's memory order: an NCHW view of NHWC memory (conv outputs) pools as NHWC
    nhwc_memory = x.ndim == 4 and x.shape[1] > 1 and x.strides[1] < x.strides[3]
    xs = x.transpose(0, 2, 3, 1) if nhwc_memory else x  # spatial axes (1, 2) or (-2, -1)
    hax = 1 if nhwc_memory else x.ndim - 2

    def spatial(a_h, a_w):
        idx = [slice(None)] * xs.ndim
        idx[hax], idx[hax + 1] = a_h, a_w
        return tuple(idx)

    pshape = list(xs.shape)
    pshape[hax], pshape[hax + 1] = pH + H + ph_r, pW + W + pw_r
    if pH or pW or ph_r or pw_r:
        xp = np.full(pshape, low, dtype=x.dtype)
        xp[spatial(slice(pH, pH + H), slice(pW, pW + W))] = xs
    else:
        xp = xs
    acc = None
    for i in range(kH):
        for j in range(kW):
            h0 = i * dH
            w0 = j * dW
            tap = xp[spatial(slice(h0, h0 + (oH - 1) * sH + 1, sH), slice(w0, w0 + (oW - 1) * sW + 1, sW))]
            if acc is None:
                acc = tap.copy()
            else:
                np.maximum(acc, tap, out=acc)
    if nhwc_memory:
        acc = acc.transpose(0, 3, 1, 2)
    # the layout quirk belongs to the quantized kernel; float max pooling has none
    nhwc = x.dtype.itemsize == 1 and (bool(channels_last) or x.shape[1] == 1 or H * W == 1)
    if nhwc:
        acc = nhwc_written_as_nchw(acc, H, W, channels_last)
    if trace is not None:
        trace["output_size"] = (oH, oW)
        trace["kernel"] = "aten_nhwc" if nhwc else "aten_nchw"
    return acc


SPECS = [
    OpSpec("max_pool", "max_pool", integer="keep", passes_range=True, summary='maximum over each window, on the integers (qparams unchanged)', formula=('y_q = max over the window of x_q', ),
           torch=('nn.MaxPool1d/2d', 'F.max_pool1d/2d', 'torch.max_pool1d/2d', 'aten::max_pool1d/2d')),
]
