"""Integer-only linear, accumulation stage: the engine's exact int accumulator, no requantization.

    acc[..., n] = Σ_k (x[..., k] - zx)(w[n, k] - zw[n])   as the engine forms it
                  (ops.linear.accumulate_linear: FBGEMM/oneDNN int16 pair saturation on non-VNNI
                  CPUs included; a PT2E runtime's kernels: numerics.profile.kernel_profile),
                  int64, output channel last.
Followed by `requantize_int` in an integer-only program.
"""
from __future__ import annotations

import numpy as np

from ..numerics.profile import gemm_saturates, kernel_profile, linear_backend
from .linear import accumulate_linear
from .spec import OpSpec


def linear_acc(x, *, x_zero_point, weight, weight_zero_point, profile, trace=None) -> np.ndarray:
    profile = kernel_profile(profile)
    backend = linear_backend(profile)
    x = np.asarray(x)
    w = np.asarray(weight)
    lead = x.shape[:-1]
    acc = accumulate_linear(x.reshape(-1, x.shape[-1]), w, x_zero_point, weight_zero_point, backend,
                            backend != "qnnpack" and gemm_saturates(profile), profile["isa"])
    acc = acc.reshape(lead + (w.shape[0],))
    if trace is not None:
        trace["acc"] = acc
    return acc


SPECS = [
    OpSpec("linear_acc", "linear_acc", integer="integer"),
]
