"""oneDNN int8 kernels' output stage when Inductor fuses an activation into them (post-ops).

torch.compile of an X86InductorQuantizer model fuses conv -> relu/hardtanh/hardswish (float or
uint8 output) into onednn::qconv_pointwise (torch/_inductor/fx_passes/quantization.py,
_register_qconv_unary_fusion). oneDNN's int8 conv kernels store their output as: acc to float,
times the scales, + bias, apply_postops (eltwise, sum), then the destination scale and zero point
(store_output of the x8s8s32x conv kernels in src/cpu/x64/; checked against the onednn ops in
tests/test_inductor.py).
"""
from __future__ import annotations

import numpy as np

from .floatops import f32, rne

HARDSWISH_ALPHA = np.float32(1.0 / 6.0)
HARDSWISH_BETA = np.float32(0.5)


def onednn_hardswish(x) -> np.ndarray:
    """oneDNN eltwise_hardswish (alpha = 1/6, beta = 1/2), jit_uni_eltwise_injector
    hardswish_compute_vector_fwd (src/cpu/x64/injectors/jit_uni_eltwise_injector.cpp):

        h = min(max(f32(f32(x * f32(1/6)) + 0.5), 0), 1)        vmulps, vaddps (no FMA), vminps, vmaxps
        y = f32(x * h)

    Not ATen's x * min(max(x + 3, 0), 6) / 6, which rounds differently (1 ULP)."""
    x = np.asarray(x, dtype=np.float32)
    h = np.add(np.multiply(x, HARDSWISH_ALPHA, dtype=np.float32), HARDSWISH_BETA, dtype=np.float32)
    h = np.maximum(np.minimum(h, np.float32(1)), np.float32(0))
    return np.multiply(x, h, dtype=np.float32)


def onednn_post_op(f, post_op, min_val=None, max_val=None) -> np.ndarray:
    """The fused eltwise post-op on the float32 conv value: 'relu', 'hardtanh' (clip to
    [min_val, max_val], exact) or 'hardswish' (onednn_hardswish); None leaves f."""
    f = np.asarray(f, dtype=np.float32)
    if post_op is None:
        return f
    if post_op == "relu":
        return np.maximum(f, np.float32(0))
    if post_op == "hardtanh":
        return np.clip(f, np.float32(min_val), np.float32(max_val))
    if post_op == "hardswish":
        return onednn_hardswish(f)
    raise NotImplementedError(f"oneDNN post-op {post_op}")


def onednn_dst_quantize(f, out_scale, out_zero_point, quant_min=0, quant_max=255) -> np.ndarray:
    """oneDNN's uint8 destination after the post-ops (dst scale = 1/so as PyTorch passes it):

        out = clamp(rne(f32(f32(f * f32(1/so)) + zo)), qmin, qmax)

    The zero point is added in float BEFORE rounding (Inductor's own quantize adds it after)."""
    inv = np.float32(1.0) / np.float32(out_scale)
    pre = f32(f32(np.asarray(f, np.float32).astype(np.float64) * np.float64(inv)).astype(np.float64)
              + float(out_zero_point))
    with np.errstate(invalid="ignore"):
        out = np.clip(np.nan_to_num(rne(pre.astype(np.float64)), nan=0.0), quant_min, quant_max)
    return out.astype(np.uint8)
