"""quantized relu (torch.relu / F.relu / nnq.ReLU on a quantized tensor): `qrelu_kernel`,
and QNNPACK's clamp for quint8 under engine qnnpack: both are  q' = max(q, zp), qparams unchanged."""
from __future__ import annotations

import numpy as np

from ..numerics import elementwise as E
from .spec import OpSpec


def relu(x, *, x_scale, x_zero_point, dtype="uint8", profile, trace=None) -> np.ndarray:
    out = np.maximum(np.asarray(x).astype(np.int64), int(x_zero_point))
    if trace is not None:
        trace.update(out=out)
    return E.to_dtype(out, dtype)


SPECS = [
    OpSpec("relu", "relu", elementwise=True, integer="clamp", summary='ReLU on integers: nothing below the zero point', formula=('y_q = max(x_q, z)   (scale and zero point unchanged)', ),
           torch=('nn.ReLU', 'F.relu', 'torch.relu', 'x.relu', 'x.relu_', 'aten::relu')),
]
