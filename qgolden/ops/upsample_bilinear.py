"""Quantized upsample_bilinear2d (F.interpolate(mode='bilinear') / nn.Upsample(mode='bilinear') on a
4-D quantized tensor). Output qparams are the input's.

Source: aten/src/ATen/native/quantized/cpu/UpSampleBilinear2d.cpp (contiguous input) and
`qupsample_bilinear2d_nhwc_kernel` in kernels/QuantizedOpKernels.cpp (channels-last input; its
AVX2 vector blocks of 8 channels compute the same float32 expression). Per axis
(area_pixel_compute_scale / area_pixel_compute_source_index, ATen/native/UpSample.h):
    align_corners: r = f32(f32(in - 1) / f32(out - 1)) (0 if out == 1);  src = f32(r · dst)
    otherwise:     r = f32(1.0 / scale) if a scale factor is given, else f32(f32(in) / f32(out));
                   src = max(f32(f32(r · f32(dst + 0.5)) - 0.5), 0)   (one fma where compiled with FMA)
    i0 = trunc(src); i1 = i0 + (i0 < in - 1); l1 = f32(src - i0); l0 = f32(1 - l1)
    y = f32(f32(h0·f32(f32(w0·p00) + f32(w1·p01))) + f32(h1·f32(f32(w0·p10) + f32(w1·p11)))) - zx
        where the code is compiled with FMA (the NHWC kernel; everything on arm64) GCC contracts each
        a*b + c*d into fma(a, b, c*d), and the NHWC kernel's AVX2 blocks of 8 channels into fma(c, d, a*b)
        (CpuClass.kernel_fma / baseline_fma)
    y_q = clamp(rne(f32(y + zx)))              (quantize_val with scale 1, zero point zx)
Output size: `size`, or trunc(in · scale_factor) (double). Equal sizes: a plain copy.
"""
from __future__ import annotations

import numpy as np

from ..cpu import cpu_class
from ..numerics import elementwise as E
from ..numerics.floatops import f32, fma32
from ..numerics.profile import aten_vector_width
from .max_pool import nhwc_written_as_nchw
from .spec import OpSpec


def _m(a, b):
    return f32(np.asarray(a, np.float32).astype(np.float64) * np.asarray(b, np.float32).astype(np.float64))


def _a(a, b):
    return f32(np.asarray(a, np.float32).astype(np.float64) + np.asarray(b, np.float32).astype(np.float64))


def source_weights(n_in: int, n_out: int, align_corners: bool, scale=None, fma=False):
    """(i0, step to i1, l0, l1) per output index along one axis; fma: the code computing
    r·(dst + 0.5) - 0.5 is compiled with FMA contraction (one rounding)."""
    dst = np.arange(n_out)
    if align_corners:
        r = np.float32(np.float32(n_in - 1) / np.float32(n_out - 1)) if n_out > 1 else np.float32(0)
        src = _m(r, dst.astype(np.float32))
    else:
        if scale is not None and float(scale) > 0:
            r = np.float32(1.0 / float(scale))
        else:
            r = np.float32(np.float32(n_in) / np.float32(n_out))
        half = _a(dst.astype(np.float32), np.float32(0.5))
        src = fma32(r, half, np.float32(-0.5)) if fma else _a(_m(r, half), np.float32(-0.5))
        src = np.where(src < 0, np.float32(0), src)
    i0 = src.astype(np.int64)  # truncation toward zero (src >= 0)
    step = (i0 < n_in - 1).astype(np.int64)
    l1 = _a(src, -i0.astype(np.float32))
    l0 = _a(np.float32(1), -l1)
    return i0, step, l0, l1


def _interpolate(p00, p01, p10, p11, W0, W1, H0, H1, fused):
    """h0·(w0·p00 + w1·p01) + h1·(w0·p10 + w1·p11) in float32. GCC contracts each `a*b + c*d` into
    one FMA: fma(a, b, c*d) in scalar code ('first'), fma(c, d, a*b) from the Vectorized operators
    of the NHWC kernel ('second'); 'none': every product and sum rounded."""
    if fused == "first":
        return fma32(H0, fma32(W0, p00, _m(W1, p01)), _m(H1, fma32(W0, p10, _m(W1, p11))))
    if fused == "second":
        return fma32(H1, fma32(W1, p11, _m(W0, p10)), _m(H0, fma32(W1, p01, _m(W0, p00))))
    return _a(_m(H0, _a(_m(W0, p00), _m(W1, p01))), _m(H1, _a(_m(W0, p10), _m(W1, p11))))


def output_size(h, w, size, scale_factor):
    if size is not None:
        return int(size[0]), int(size[1])
    return int(h * float(scale_factor[0])), int(w * float(scale_factor[1]))


def upsample_bilinear(x, *, x_scale, x_zero_point, size=None, scale_factor=None, align_corners=False,
                      channels_last=False, dtype="uint8", profile=None, trace=None) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError("quantized upsample_bilinear2d supports 4-D (NCHW) input only")
    n, c, h, w = x.shape
    oh, ow = output_size(h, w, size, scale_factor)
    # torch picks the NHWC kernel when the input is ChannelsLast-contiguous, as every C == 1 or
    # H·W == 1 tensor is; for H·W == 1 it then writes NHWC order into an output that
    # suggest_memory_format() makes NCHW, unless the input's strides are channels-last ones
    # ([N, C, 1, 1] with strides (C, 1, C, C), a channels-last conv's output): then the output is NHWC too
    strided_channels_last = channels_last
    channels_last = channels_last or c == 1 or h * w == 1
    if oh == h and ow == w and not channels_last:
        return x.copy()
    sf = scale_factor if (scale_factor is not None and size is None) else (None, None)
    cls = cpu_class(profile) if profile else None
    fma = (cls is None or cls.kernel_fma) if channels_last else (cls is not None and cls.baseline_fma)
    h0i, hs, hl0, hl1 = source_weights(h, oh, align_corners, sf[0], fma)
    w0i, ws, wl0, wl1 = source_weights(w, ow, align_corners, sf[1], fma)
    p = x.astype(np.float32)
    r0, r1 = p[:, :, h0i, :], p[:, :, h0i + hs, :]
    p00, p01 = r0[..., w0i], r0[..., w0i + ws]
    p10, p11 = r1[..., w0i], r1[..., w0i + ws]
    W0, W1 = wl0[None, None, None, :], wl1[None, None, None, :]
    H0, H1 = hl0[None, None, :, None], hl1[None, None, :, None]
    if channels_last:  # kernels/QuantizedOpKernels.cpp: compiled with FMA
        fused = "first" if cls is None or cls.kernel_fma else "none"
        vw = aten_vector_width(profile, "qupsample_bilinear2d_nhwc") // 4 if cls and cls.arch == "x86_64" else 0
        vector = (np.arange(c) < (c // vw) * vw) if vw else np.zeros(c, bool)
    else:  # UpSampleBilinear2d.cpp: the architecture's baseline flags
        fused = "first" if cls is not None and cls.baseline_fma else "none"
        vector = np.zeros(c, bool)
    zx = np.float32(int(x_zero_point))
    y = _a(_interpolate(p00, p01, p10, p11, W0, W1, H0, H1, fused), -zx)
    if vector.any():  # AVX2 blocks of 8 channels: Vectorized operators, contracted the other way
        yv = _a(_interpolate(p00, p01, p10, p11, W0, W1, H0, H1, "second"), -zx)
        y = np.where(vector[None, :, None, None], yv, y)
    lo, hi = E.qrange(dtype)
    out = np.clip(np.rint(_a(y, zx).astype(np.float64)), lo, hi)
    if channels_last:
        out = nhwc_written_as_nchw(out, h, w, strided_channels_last)
    if trace is not None:
        trace.update(kernel="aten_upsample_bilinear2d" + ("_nhwc" if channels_last else ""), output_size=(oh, ow),
                     src_h=h0i, src_w=w0i, lambda_h=hl1, lambda_w=wl1, pre_round=y)
    return E.to_dtype(out, dtype)


SPECS = [
    OpSpec("upsample_bilinear", "upsample_bilinear", integer="float",
           summary="bilinear upsampling through float32 weights (no integer-only form: the "
                   "interpolation weights are float32 and the sum is rounded in float32)",
           formula=("y = h0·(w0·x00 + w1·x01) + h1·(w0·x10 + w1·x11)  (float32, stored values);",
                    "y_q = clamp(rne(y))"),
           torch=("nn.Upsample(mode='bilinear')", "nn.UpsamplingBilinear2d", "F.interpolate(mode='bilinear')",
                  "aten::upsample_bilinear2d")),
]
