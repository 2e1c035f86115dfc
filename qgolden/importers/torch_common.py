"""Reading quantized torch modules' parameters into plain NumPy constants."""
from __future__ import annotations

import numpy as np

DTYPES = {"torch.quint8": "uint8", "torch.qint8": "int8", "torch.float32": "float32"}


def dtype_name(torch_dtype) -> str:
    return DTYPES.get(str(torch_dtype), str(torch_dtype))


def qweight(w) -> dict:
    """A quantized weight tensor as {weight (int8), weight_scale (f64 [N]), weight_zero_point, per_channel}."""
    import torch

    q = w.int_repr().numpy().astype(np.int8)
    if w.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric):
        scale = np.array([w.q_scale()], dtype=np.float64)
        zp = np.array([w.q_zero_point()], dtype=np.int64)
        per_channel = False
    else:
        if w.q_per_channel_axis() != 0:
            raise ValueError(f"per-channel weight quantized along axis {w.q_per_channel_axis()}, expected 0")
        scale = w.q_per_channel_scales().numpy().astype(np.float64)
        zp = w.q_per_channel_zero_points().numpy().astype(np.int64)
        per_channel = True
    return {"weight": q, "weight_scale": scale, "weight_zero_point": zp, "per_channel": per_channel}


def fbias(b):
    return None if b is None else b.detach().float().numpy().astype(np.float32)
