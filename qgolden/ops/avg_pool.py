"""Quantized avg_pool1d / avg_pool2d (avg_pool2d_quantized_cpu, AveragePool2d.cpp).

Output qparams are always the input's (torch creates the output with input.q_scale(),
input.q_zero_point()); out_scale/out_zero_point are kept as kwargs and must equal them.

Let S = sum over the window taps inside the input of (q - zp) (exact integer; padding
contributes 0), `size` = number of those taps, `pool` = window area clipped to the padded
input (hend = min(hstart + k, H + pad)). div = divisor_override or (count_include_pad ?
pool : size).

Three kernels, chosen like torch does:

1. QNNPACK (engine qnnpack, quint8, ceil_mode=False), `pytorch_qnnp_create_average_
   pooling2d_nhwc_q8` + q8avgpool sse2 ukernels. Padding taps read a buffer filled with zp,
   and the divisor is ALWAYS kH*kW: count_include_pad=False and divisor_override are
   ignored.
       scale = f32(f32(s) / f32(f32(s) * f32(kH*kW)))
       y = clamp(rne(f32(f32(S) * scale)) + zp, 0, 255)            (zp after rounding)

2. ATen NCHW (`avg_pool2d_out_frame`), input contiguous and not channels-last:
       m = f32(1.0 / div)      (double division, cast)
       y = clamp(rne(f32(f32(f32(S) * m) + zp)))                    (zp before rounding)

3. ATen NHWC (`qavg_pool2d_nhwc_kernel`), input channels-last contiguous. Note an NCHW
   tensor with C == 1 or H*W == 1 IS channels-last contiguous, so it takes this path too.
       m = f32(1.0f / f32(div))
       channels c < C - C % V (V = vector_width/4 = 8 on AVX2, 16 on AVX512), QuantizeAvx2:
           y = clamp(rne(f32(f32(S) * m)) + zp)                     (zp after rounding)
       channel tail, quantize_val(1.0f/m, zp, S) (same formula as numerics.quantize_val):
           inv = f32(1 / f32(1/m)) ; y = clamp(rne(f32(f32(f32(S) * inv) + zp)))  (zp BEFORE)
       and, for an input with H*W == 1, the torch layout bug of max_pool.nhwc_written_as_nchw.

avg_pool1d is avg_pool2d on x.unsqueeze(-2) with kernel (1, k) (no divisor_override).
"""
from __future__ import annotations

import numpy as np

from ..numerics.profile import aten_vector_width
from .max_pool import _tup, nhwc_written_as_nchw, pooling_output_shape
from .spec import OpSpec

QRANGE = {np.dtype(np.uint8): (0, 255), np.dtype(np.int8): (-128, 127)}


def is_channels_last(shape, channels_last: bool) -> bool:
    """Does torch see this 4-D tensor as ChannelsLast-contiguous? True for real channels-last
    tensors and for NCHW-contiguous ones with C == 1 or H*W == 1."""
    if channels_last:
        return True
    _, C, H, W = shape
    return C == 1 or H * W == 1


def _window_axis(o, k, s, p, n):
    """Per-output start/end along one axis, as AveragePool2d.cpp computes them."""
    start = np.arange(o, dtype=np.int64) * s - p
    end = np.minimum(start + k, n + p)
    pool = end - start
    vs = np.maximum(start, 0)
    ve = np.minimum(end, n)
    return vs, ve, pool, ve - vs


def window_sum(d, kH, kW, sH, sW, pH, pW, oH, oW):
    """Sum of d (int64, zero outside the input) over every pooling window, tap by tap."""
    H, W = d.shape[-2:]
    need_h = (oH - 1) * sH + kH
    need_w = (oW - 1) * sW + kW
    ph_r = max(0, need_h - pH - H)
    pw_r = max(0, need_w - pW - W)
    dp = np.zeros(d.shape[:-2] + (pH + H + ph_r, pW + W + pw_r), dtype=np.int64)
    dp[..., pH:pH + H, pW:pW + W] = d
    S = np.zeros(d.shape[:-2] + (oH, oW), dtype=np.int64)
    for i in range(kH):
        for j in range(kW):
            S += dp[..., i:i + (oH - 1) * sH + 1:sH, j:j + (oW - 1) * sW + 1:sW]
    return S


def qnnpack_avgpool_requant(S, area, scale, zp):
    """QNNPACK q8avgpool output stage: rne(f32(S) * f32(s/(s*area))) + zp, clamp [0,255]."""
    s = np.float32(scale)
    sc = np.float32(s / np.float32(s * np.float32(area)))
    t = (S.astype(np.float32) * sc).astype(np.float32)
    y = np.rint(t).astype(np.int64) + int(zp)
    return np.clip(y, 0, 255)


def nhwc_requant(S, m, zp, C, vector_width, qmin, qmax):
    """ATen NHWC avg-pool output stage (vector channels / scalar channel tail).
    S: [..., C, ...] with channels on axis 1. m: float32 multiplier per element (broadcast)."""
    m = np.asarray(m, dtype=np.float32)
    Sf = S.astype(np.float32)
    y_vec = np.rint((Sf * m).astype(np.float32)).astype(np.int64) + int(zp)
    inv = (np.float32(1.0) / (np.float32(1.0) / m)).astype(np.float32)
    # quantize_val adds zp before rounding (as numerics.quantize.quantize_val)
    y_tail = np.rint(((Sf * inv).astype(np.float32) + np.float32(zp)).astype(np.float32)).astype(np.int64)
    nvec = C - C % (vector_width // 4)
    cidx = np.arange(C).reshape((1, C) + (1,) * (S.ndim - 2))
    y = np.where(cidx < nvec, y_vec, y_tail)
    return np.clip(y, qmin, qmax)


def avg_pool(x, *, x_scale, x_zero_point, out_scale, out_zero_point, kernel_size, stride, padding,
             ceil_mode, count_include_pad, divisor_override, profile, trace=None, channels_last=False):
    """Quantized avg pool over the last 1 (x [N,C,L]) or 2 (x [N,C,H,W]) dims.

    channels_last: the torch input tensor is channels-last (memory format changes the kernel).
    """
    x = np.asarray(x)
    nd = len(kernel_size) if not isinstance(kernel_size, (int, np.integer)) else (x.ndim - 2)
    if out_scale is not None and (float(out_scale) != float(x_scale) or int(out_zero_point) != int(x_zero_point)):
        raise ValueError("quantized avg_pool keeps the input qparams; out_scale/out_zero_point must equal them")
    if nd == 1:
        ks = _tup(kernel_size, 1)
        st = _tup(stride, 1) if stride not in (None, (), []) else ks
        pd = _tup(padding, 1)
        y = avg_pool(x[..., None, :], x_scale=x_scale, x_zero_point=x_zero_point, out_scale=out_scale,
                     out_zero_point=out_zero_point, kernel_size=(1, ks[0]), stride=(1, st[0]),
                     padding=(0, pd[0]), ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                     divisor_override=divisor_override, profile=profile, trace=trace,
                     channels_last=channels_last)
        return y[..., 0, :]
    if nd != 2 or x.ndim != 4:
        raise ValueError("avg_pool expects [N,C,L] with a 1-d kernel or [N,C,H,W] with a 2-d kernel")
    kH, kW = _tup(kernel_size, 2)
    sH, sW = _tup(stride, 2) if stride not in (None, (), []) else (kH, kW)
    pH, pW = _tup(padding, 2)
    N, C, H, W = x.shape
    oH = pooling_output_shape(H, kH, pH, sH, 1, ceil_mode)
    oW = pooling_output_shape(W, kW, pW, sW, 1, ceil_mode)
    zp = int(x_zero_point)
    qmin, qmax = QRANGE[x.dtype]
    d = x.astype(np.int64) - zp
    S = window_sum(d, kH, kW, sH, sW, pH, pW, oH, oW)
    engine = profile["engine"]

    if engine == "qnnpack" and x.dtype == np.uint8 and not ceil_mode:
        if kH * kW == 1:
            raise ValueError("QNNPACK average pooling rejects 1x1 pooling")
        y = qnnpack_avgpool_requant(S, kH * kW, x_scale, zp)
        kernel = "qnnpack"
    else:
        hs, he, hpool, hsize = _window_axis(oH, kH, sH, pH, H)
        ws, we, wpool, wsize = _window_axis(oW, kW, sW, pW, W)
        pool = hpool[:, None] * wpool[None, :]
        size = hsize[:, None] * wsize[None, :]
        if divisor_override:
            div = np.full((oH, oW), int(divisor_override), dtype=np.int64)
        else:
            div = pool if count_include_pad else size
        if is_channels_last(x.shape, channels_last):
            m = (np.float32(1.0) / div.astype(np.float32)).astype(np.float32)
            y = nhwc_requant(S, m[None, None], zp, C, aten_vector_width(profile, "qavg_pool2d_nhwc"), qmin, qmax)
            y = nhwc_written_as_nchw(y, H, W, channels_last)
            kernel = "aten_nhwc"
        else:
            m = (1.0 / div.astype(np.float64)).astype(np.float32)
            t = (S.astype(np.float32) * m).astype(np.float32)
            t = (t + np.float32(zp)).astype(np.float32)
            y = np.clip(np.rint(t).astype(np.int64), qmin, qmax)
            kernel = "aten_nchw"
    if trace is not None:
        trace["kernel"] = kernel
        trace["sum"] = S
        trace["output_size"] = (oH, oW)
    return y.astype(x.dtype)


SPECS = [
    OpSpec("avg_pool", "avg_pool", integer="pool", summary='average over each window (qparams unchanged)', formula=('S = Σ_window (x_q − z);  y_q = clamp(rne(S / divisor) + z)   (order of + z and rounding depends on the kernel)', ),
           torch=('nn.AvgPool1d/2d', 'F.avg_pool1d/2d', 'torch.avg_pool1d/2d', 'aten::avg_pool1d/2d')),
]
