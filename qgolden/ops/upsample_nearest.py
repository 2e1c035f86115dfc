"""Quantized upsample_nearest2d (F.interpolate(mode='nearest'|'nearest-exact') on a 4-D
quantized tensor; UpSampleNearest2d.cpp). A pure index copy: values and qparams unchanged.
(Quantized upsample_nearest1d does not exist in torch: 3-D quantized inputs raise.)

Output size (F.interpolate + upsample .vec):
    size given                  -> out = size, scales = None
    scale_factor sf             -> out = int(n * sf)  (double product, truncated), scale = sf
    recompute_scale_factor=True -> out = int(n * sf), scales = None
Source index per axis (compute_scales_value<float>, nearest_neighbor_compute_source_index):
    r   = f32(1.0 / sf) if a scale is passed (and > 0) else f32(f32(n) / f32(out))
    src = min(floor(f32(f32(dst) * r)), n - 1)                       mode 'nearest'
    src = min(floor(f32((dst + 0.5) * double(r))), n - 1)            mode 'nearest-exact'
Same on every engine. The channels-last kernel writes NHWC order into an output allocated
with input.suggest_memory_format(): an input with H*W == 1 and C > 1 gets the NHWC buffer read
as NCHW (max_pool.nhwc_written_as_nchw). When out == in on both axes it is a plain copy.
"""
from __future__ import annotations

import numpy as np

from .max_pool import nhwc_written_as_nchw
from .spec import OpSpec


def _pair(v):
    if v is None:
        return None
    if isinstance(v, (int, float, np.integer, np.floating)):
        return (v, v)
    v = tuple(v)
    return v * 2 if len(v) == 1 else v


def nearest_source_index(n: int, out: int, scale, exact: bool = False) -> np.ndarray:
    if scale is not None and float(scale) > 0.0:
        r = np.float32(1.0 / float(scale))
    else:
        r = np.float32(np.float32(n) / np.float32(out))
    dst = np.arange(out, dtype=np.int64)
    if exact:
        t = ((dst.astype(np.float64) + 0.5) * np.float64(r)).astype(np.float32)
    else:
        t = (dst.astype(np.float32) * r).astype(np.float32)
    return np.minimum(np.floor(t).astype(np.int64), n - 1)


def upsample_nearest(x, *, size, scale_factor, profile, trace=None, recompute_scale_factor=None,
                     mode="nearest", channels_last=False):
    """x: [N,C,H,W] stored values (uint8 / int8). Returns the same dtype."""
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError("quantized upsample_nearest supports 4-D (NCHW) input only")
    if mode not in ("nearest", "nearest-exact"):
        raise ValueError(f"unsupported mode {mode!r}")
    N, C, H, W = x.shape
    if (size is None) == (scale_factor is None):
        raise ValueError("give exactly one of size and scale_factor")
    if size is not None:
        oH, oW = (int(v) for v in _pair(size))
        scales = (None, None)
    else:
        sf = tuple(float(v) for v in _pair(scale_factor))
        oH, oW = int(H * sf[0]), int(W * sf[1])
        scales = (None, None) if recompute_scale_factor else sf
    exact = mode == "nearest-exact"
    if oH == H and oW == W:
        y = x.copy()
        hi = np.arange(H)
        wi = np.arange(W)
    else:
        hi = nearest_source_index(H, oH, scales[0], exact)
        wi = nearest_source_index(W, oW, scales[1], exact)
        y = x[:, :, hi[:, None], wi[None, :]]
        # the layout quirk is the quantized kernel's; float upsampling (FX leaves it in float) has none
        if x.dtype.kind in "ui" and (channels_last or C == 1 or H * W == 1):
            y = nhwc_written_as_nchw(y, H, W, channels_last)
    if trace is not None:
        trace["output_size"] = (oH, oW)
        trace["src_h"] = hi
        trace["src_w"] = wi
    return y


SPECS = [
    OpSpec("upsample_nearest", "upsample_nearest", integer="upsample", passes_range=True, moves_data=True, summary='nearest-neighbour upsampling (copies integers)', formula=('y_q[h, w] = x_q[src_h[h], src_w[w]]', ),
           torch=("nn.Upsample(mode='nearest')", 'nn.UpsamplingNearest2d', "F.interpolate(mode='nearest')", 'F.upsample', 'F.upsample_nearest', 'aten::upsample_nearest1d/2d')),
]
