"""avg_pool2d of float32 values (a PT2E graph's dq -> avg_pool2d -> q), as its runtime computes it.

Every kernel below sums one window per output element, tap by tap in (kh, kw) order, and divides
once by the window's count in float32 (true division, f32(sum / f32(count))):

    ATen's CPU kernel (aten/src/ATen/native/cpu/AvgPoolKernel.cpp cpu_avg_pool2d and
    cpu_avg_pool2d_channels_last; pt2e-reference runs it, and Inductor calls it as a fallback):
        sum = 0; sum += x[tap] for the taps inside the input          (order 'from_zero')
    torch.compile (torch/_inductor/lowering.py _avg_poolnd): a "sum" Reduction over the window,
    padding read as 0.0 (constant_boundary_condition), then div_prim by the count. Windows of
    fewer than 25 taps (config.unroll_reductions_threshold, strict <) are unrolled into
    functools.reduce(add) over the taps (ir.py Reduction._unroll_reduction_fn):
        sum = x[tap0] + x[tap1] + ...  (padding taps add 0.0)          (order 'first_tap')
    larger windows stay a reduction loop that starts from 0 ('from_zero' again; over a
    channels-last input the channels are the vector lanes, so each output still sums alone).

The two orders differ only in the sign of a zero sum: from 0, a sum of -0.0 taps is +0.0.
count: divisor_override, else the window clipped to the padded input (count_include_pad) or to
the input (ATen and Inductor both: hend = min(hstart + k, H + pad), then clamp to [0, H)).
"""
from __future__ import annotations

import numpy as np

from .max_pool import pooling_output_shape
from .spec import OpSpec

SUM_ORDERS = ("from_zero", "first_tap")


def window_bounds(out: int, k: int, s: int, p: int, n: int, count_include_pad: bool):
    """Per-output window [start, end) along one axis, clipped to the input, and its divisor factor
    (AvgPoolKernel.cpp: ih0 = oh*s - p; ih1 = min(ih0 + k, n + p); pool = ih1 - ih0; then clip)."""
    start = np.arange(out, dtype=np.int64) * s - p
    end = np.minimum(start + k, n + p)
    pool = end - start
    vs, ve = np.maximum(start, 0), np.minimum(end, n)
    return vs, ve, (pool if count_include_pad else ve - vs)


def float_avg_pool(x, *, kernel_size, stride, padding, ceil_mode=False, count_include_pad=True,
                   divisor_override=None, sum_order="from_zero", profile=None, trace=None):
    """avg_pool2d of float32 x [..., H, W]: each window summed in float32 tap by tap (module
    docstring: `sum_order` 'from_zero' or 'first_tap'), then f32(sum / f32(count))."""
    if sum_order not in SUM_ORDERS:
        raise ValueError(f"sum_order {sum_order!r}: one of {SUM_ORDERS}")
    x = np.asarray(x, dtype=np.float32)
    (kh, kw), (sh, sw), (ph, pw) = ([int(v) for v in a] for a in (kernel_size, stride, padding))
    h, w = x.shape[-2:]
    oh = pooling_output_shape(h, kh, ph, sh, 1, ceil_mode)
    ow = pooling_output_shape(w, kw, pw, sw, 1, ceil_mode)
    hs, he, hf = window_bounds(oh, kh, sh, ph, h, count_include_pad)
    ws, we, wf = window_bounds(ow, kw, sw, pw, w, count_include_pad)
    # zero-padded copy big enough for every tap of every window: a padding tap reads 0.0
    ext_h, ext_w = (oh - 1) * sh + kh, (ow - 1) * sw + kw
    xp = np.zeros(x.shape[:-2] + (max(ext_h, ph + h), max(ext_w, pw + w)), np.float32)
    xp[..., ph:ph + h, pw:pw + w] = x
    total = None if sum_order == "first_tap" else np.zeros(x.shape[:-2] + (oh, ow), np.float32)
    for i in range(kh):
        for j in range(kw):
            tap = xp[..., i:i + (oh - 1) * sh + 1:sh, j:j + (ow - 1) * sw + 1:sw]
            total = tap.copy() if total is None else np.add(total, tap, dtype=np.float32)
    if divisor_override:
        count = np.full((oh, ow), np.float32(int(divisor_override)))
    else:
        count = (hf[:, None] * wf[None, :]).astype(np.float32)
    y = np.divide(total, count, dtype=np.float32)
    if trace is not None:
        trace.update(sum=total, count=count, out=y)
    return y


INDUCTOR_UNROLL_BELOW = 25  # torch._inductor.config.unroll_reductions_threshold as _avg_poolnd patches it


def inductor_avg_pool_kernel(kernel_size, stride, out_numel=None):
    """What torch.compile runs for a float32 avg_pool2d (torch/_inductor/lowering.py _avg_poolnd,
    ir.py Reduction.create): (sum_order, exact, why).

    window > 25 taps and kernel != stride: aten.avg_pool2d itself (fallback)       -> from_zero
    1 tap: the tap (reduction_numel == 1)                                          -> first_tap
    < 25 taps and more than one output element: unrolled into a chain of adds      -> first_tap
    otherwise a reduction loop, which Inductor may split over threads (each sums part of the
    window, the partial sums then added): not reproduced; the serial order from 0 is computed.
    out_numel None (shape unknown) counts as more than one output element."""
    kh, kw = (int(v) for v in kernel_size)
    window = kh * kw
    if window > INDUCTOR_UNROLL_BELOW and any(int(k) != int(s) for k, s in zip(kernel_size, stride)):
        return "from_zero", True, "aten.avg_pool2d (Inductor falls back to ATen for windows over 25 taps): " \
            "float32 sum from 0 tap by tap, then / count: reproduced"
    if window == 1 or (window < INDUCTOR_UNROLL_BELOW and out_numel != 1):
        return "first_tap", True, "Inductor's unrolled window sum (tap 0 + tap 1 + ..., padding as 0.0), " \
            "then / count in float32: reproduced"
    return "from_zero", False, (f"Inductor's reduction loop over a {kh}x{kw} window, which it may split across "
                                "threads: not reproduced; qgolden sums each window from 0 in tap order")


SPECS = [
    OpSpec("float_avg_pool", "float_avg_pool", integer="float",
           summary="float32 average over each window (between a dequantize and a quantize)",
           formula=("y = f32(Σ_window x, float32 tap by tap in (kh, kw) order) / f32(count))",),
           torch=("aten.avg_pool2d (PT2E)",)),
]
