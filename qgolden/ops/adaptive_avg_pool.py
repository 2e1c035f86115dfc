"""Quantized adaptive_avg_pool1d / adaptive_avg_pool2d (AdaptiveAveragePooling.cpp).

Output qparams are the input's. Bins along each axis (float arithmetic, as the kernel):
    start(o) = floor(f32(f32(o*n) / f32(out)))     end(o) = ceil(f32(f32((o+1)*n) / f32(out)))
adaptive_avg_pool1d is adaptive_avg_pool2d on x.unsqueeze(-2) with output (1, out).

Three kernels, chosen like torch does:

1. QNNPACK (engine qnnpack, quint8, output != input size, H % oH == 0 and W % oW == 0):
   QNNPACK average pooling with kernel = stride = (H/oH, W/oW), no padding:
       S = sum(q - zp) ; scale = f32(f32(s) / f32(f32(s) * f32(kH*kW)))
       y = clamp(rne(f32(f32(S) * scale)) + zp, 0, 255)

2. ATen NCHW (`adaptive_avg_pool_single_out_frame`), input not channels-last: sums the RAW
   stored values (zp never subtracted) and does not clamp:
       r = f32(f32(1.0f / kH) / kW)
       y = rne(f32(f32(sum q) * r))

3. ATen NHWC (`_qadaptive_avg_pool_kernel`), input channels-last contiguous (an NCHW
   tensor with C == 1 or H*W == 1 counts as channels-last):
       S = sum(q - zp) ; m = f32(1.0f / f32(kH*kW)) ; inv = f32(1.0f / f32(1.0f / m))
       channels c < C - C % V (V = vector_width/4), quantize_vec -> fbgemm QuantizeAvx2
       (LEGACY: one FMA, zp before rounding; the same as numerics.quantize_per_tensor):
           y = clamp(rne(fma32(f32(S), inv, f32(zp))))
       channel tail, quantize_val:
           y = clamp(rne(f32(f32(f32(S) * inv) + zp)))              (zp before rounding)
       and, for an input with H*W == 1, the torch layout bug of max_pool.nhwc_written_as_nchw.
"""
from __future__ import annotations

import numpy as np

from ..numerics.floatops import fma32
from ..numerics.profile import aten_vector_width
from .avg_pool import QRANGE, is_channels_last, qnnpack_avgpool_requant
from .max_pool import nhwc_written_as_nchw
from .spec import OpSpec


def adaptive_bins(n: int, out: int):
    """start/end per output index, computed in float32 as start_index/end_index do."""
    o = np.arange(out, dtype=np.int64)
    fo = np.float32(out)
    a = (o * n).astype(np.float32) / fo
    b = ((o + 1) * n).astype(np.float32) / fo
    start = np.floor(a.astype(np.float32)).astype(np.int64)
    end = np.ceil(b.astype(np.float32)).astype(np.int64)
    return start, end


def _box_sums(v, hs, he, ws, we):
    """Sum of v[..., h, w] over [hs, he) x [ws, we) for every (oh, ow), int64, via 2-D prefix
    sums (one box over everything, a global pool, is a plain sum)."""
    if hs.size == 1 and ws.size == 1 and (hs[0], ws[0], he[0], we[0]) == (0, 0) + v.shape[-2:]:
        return v.sum(axis=(-2, -1), dtype=np.int64, keepdims=True)
    P = np.zeros(v.shape[:-2] + (v.shape[-2] + 1, v.shape[-1] + 1), dtype=np.int64)
    P[..., 1:, 1:] = v.cumsum(-2, dtype=np.int64).cumsum(-1)
    return (P[..., he[:, None], we[None, :]] - P[..., hs[:, None], we[None, :]]
            - P[..., he[:, None], ws[None, :]] + P[..., hs[:, None], ws[None, :]])


def adaptive_avg_pool(x, *, x_scale, x_zero_point, output_size, profile, trace=None, channels_last=False):
    """Quantized adaptive average pool over the last 1 (x [N,C,L]) or 2 (x [N,C,H,W]) dims.

    output_size: int or tuple (1 entry for 1d, 2 for 2d; None entries keep the input size).
    channels_last: the torch input tensor is channels-last (memory format changes the kernel).
    """
    x = np.asarray(x)
    if x.ndim == 3:
        o = output_size[0] if not isinstance(output_size, (int, np.integer)) else output_size
        o = x.shape[-1] if o is None else int(o)
        y = adaptive_avg_pool(x[..., None, :], x_scale=x_scale, x_zero_point=x_zero_point,
                              output_size=(1, o), profile=profile, trace=trace, channels_last=channels_last)
        return y[..., 0, :]
    if x.ndim != 4:
        raise ValueError("adaptive_avg_pool expects [N,C,L] or [N,C,H,W]")
    N, C, H, W = x.shape
    if isinstance(output_size, (int, np.integer)):
        output_size = (int(output_size), int(output_size))
    oH = H if output_size[0] is None else int(output_size[0])
    oW = W if output_size[1] is None else int(output_size[1])
    zp = int(x_zero_point)
    qmin, qmax = QRANGE[x.dtype]
    engine = profile["engine"]

    if (engine == "qnnpack" and x.dtype == np.uint8 and not (H == oH and W == oW)
            and H % oH == 0 and W % oW == 0):
        kH, kW = H // oH, W // oW
        d = (x.astype(np.int64) - zp).reshape(N, C, oH, kH, oW, kW)
        S = d.sum(axis=(3, 5))
        y = qnnpack_avgpool_requant(S, kH * kW, x_scale, zp)
        kernel = "qnnpack"
    else:
        hs, he = adaptive_bins(H, oH)
        ws, we = adaptive_bins(W, oW)
        kh = he - hs
        kw = we - ws
        if is_channels_last(x.shape, channels_last):
            S = _box_sums(x, hs, he, ws, we) - zp * (kh[:, None] * kw[None, :])  # Σ (q - zp)
            size = (kh[:, None] * kw[None, :]).astype(np.float32)
            m = (np.float32(1.0) / size).astype(np.float32)
            inv = (np.float32(1.0) / (np.float32(1.0) / m)).astype(np.float32)
            t = (S.astype(np.float32) * inv).astype(np.float32)
            y_vec = np.rint(fma32(S.astype(np.float32), np.broadcast_to(inv, S.shape), np.float32(zp)))
            y_vec = y_vec.astype(np.int64)
            y_tail = np.rint((t + np.float32(zp)).astype(np.float32)).astype(np.int64)
            nvec = C - C % (aten_vector_width(profile, "qadaptive_avg_pool2d_nhwc") // 4)
            cidx = np.arange(C).reshape(1, C, 1, 1)
            y = np.clip(np.where(cidx < nvec, y_vec, y_tail), qmin, qmax)
            y = nhwc_written_as_nchw(y, H, W, channels_last)
            kernel = "aten_nhwc"
        else:
            raw = _box_sums(x, hs, he, ws, we)
            r_h = (np.float32(1.0) / kh.astype(np.float32)).astype(np.float32)
            r = (r_h[:, None] / kw[None, :].astype(np.float32)).astype(np.float32)
            y = np.rint((raw.astype(np.float32) * r).astype(np.float32)).astype(np.int64)
            S = raw
            kernel = "aten_nchw"
    if trace is not None:
        trace["kernel"] = kernel
        trace["sum"] = S
        trace["output_size"] = (oH, oW)
    return y.astype(x.dtype)


SPECS = [
    OpSpec("adaptive_avg_pool", "adaptive_avg_pool", integer="pool", summary='average over adaptive bins (qparams unchanged)', formula=('S = Σ_bin (x_q − z);  y_q = clamp(rne(S/|bin|) + z)', ),
           torch=('nn.AdaptiveAvgPool1d/2d', 'F.adaptive_avg_pool1d/2d', 'torch.adaptive_avg_pool1d/2d', 'aten::adaptive_avg_pool1d/2d')),
]
