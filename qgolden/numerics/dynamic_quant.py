"""How dynamic quantization picks an activation's scale and zero point on every call.

quantize_dynamic's modules (nnqd.Linear, LSTM, ...) quantize their float input per call: the scale
and zero point come from that input's min and max, so they change with every batch.
"""
from __future__ import annotations

import numpy as np

# quant_utils::SMALL_SCALE_THRESHOLD (QuantUtils.h): fp16's smallest normal, as a float
SMALL_SCALE_THRESHOLD = np.float32(6.1e-5)


def choose_qparams(x_min, x_max, qmin: int = 0, qmax: int = 255, reduce_range: bool = False) -> tuple:
    """(scale as a Python float (C++ double), zero point int) of quant_utils::ChooseQuantizationParams
    (aten/src/ATen/native/quantized/cpu/QuantUtils.h; fbgemm::ChooseQuantizationParams is the same),
    preserve_sparsity and force_scale_power_of_two false, as every dynamic kernel calls it:

        reduce_range: qmin, qmax = qmin/2, qmax/2        (0..255 -> 0..127)
        min = min(x_min, 0), max = max(x_max, 0)          (float32)
        scale = (double(max) - min) / (qmax - qmin)       (double)
        if f32(scale) == 0 or 1/f32(scale) == inf: scale = 0.1
        if scale < 6.1e-5f: scale = 6.1e-5f and min/max widened by f32(6.1e-5f / f32(old scale))
        z_min = qmin - min/scale,  z_max = qmax - max/scale    (double)
        z = z_min if |qmin| - |min/scale| < |qmax| - |max/scale| else z_max
        zero point = clamp to [qmin, qmax] when outside, else nearbyint(z) (half to even)
    """
    if reduce_range:
        qmin, qmax = qmin // 2, qmax // 2
    lo = min(np.float32(x_min), np.float32(0.0))
    hi = max(np.float32(x_max), np.float32(0.0))
    scale = (float(hi) - float(lo)) / (qmax - qmin)
    s32 = np.float32(scale)
    with np.errstate(divide="ignore", over="ignore"):
        if s32 == 0 or np.isinf(np.float32(1.0) / s32):
            scale = 0.1
    if scale < float(SMALL_SCALE_THRESHOLD):
        org = np.float32(scale)
        scale = float(SMALL_SCALE_THRESHOLD)
        if lo == 0:
            hi = np.float32(SMALL_SCALE_THRESHOLD * np.float32(qmax - qmin))
        elif hi == 0:
            lo = np.float32(-SMALL_SCALE_THRESHOLD * np.float32(qmax - qmin))
        else:
            amplifier = np.float32(SMALL_SCALE_THRESHOLD / org)
            lo, hi = np.float32(lo * amplifier), np.float32(hi * amplifier)
    z_from_min = qmin - float(lo) / scale
    z_from_max = qmax - float(hi) / scale
    err_min = abs(qmin) - abs(float(lo) / scale)
    err_max = abs(qmax) - abs(float(hi) / scale)
    z = z_from_min if err_min < err_max else z_from_max
    if z < qmin:
        zp = qmin
    elif z > qmax:
        zp = qmax
    else:
        zp = int(np.rint(z))
    return scale, int(zp)


def choice_text(x_min, x_max, qmin: int, qmax: int, reduce_range: bool, scale: float, zero_point: int) -> str:
    """One line saying how this call's scale and zero point were chosen (explain)."""
    rq = f"0..{qmax // 2} (reduce_range: 7-bit activations)" if reduce_range else f"{qmin}..{qmax}"
    lo, hi = min(float(np.float32(x_min)), 0.0), max(float(np.float32(x_max)), 0.0)
    return (f"this input's min {float(np.float32(x_min))!r} and max {float(np.float32(x_max))!r}, widened to "
            f"include 0: [{lo!r}, {hi!r}], spread over the integers {rq}: scale = {scale!r}, "
            f"zero point = {zero_point} (chosen again for every input)")
