"""mean / global average pool of float32 values as torch.compile's Inductor C++ kernel sums them.

Inductor does not call ATen's mean: it generates a reduction kernel (cpp_fused_..._mean_...),
fused with the dequantize before it and the quantize after it. Over the spatial dims of an
NCHW-logical tensor its order depends on the memory layout (torch/_inductor/codegen/cpp.py):

    channels-last (every conv output): the channels are the vector lanes, each (n, c) summed alone
        over h, w in memory order:  acc = 0; acc = f32(acc + x[n, c, h, w])      (sequential_sum)
    contiguous NCHW: H*W is the vector axis, summed in 8 (AVX2) or 16 (AVX-512) lanes, then
        reduced                                                              (inductor_lane_sum)

then one float32 division by H*W. Where Inductor splits the sum (inductor_sum_is_serial false:
over 4096 terms, or a reduction parallelised over threads) the program still computes the serial
order and the importer marks the float region as not reproducible.
"""
from __future__ import annotations

import numpy as np

from ..cpu import cpu_class, detect
from ..numerics.floatsum import inductor_lane_sum, inductor_sum_is_serial, sequential_sum
from .spec import OpSpec



def spatial_dims(ndim, dim) -> bool:
    """Whether `dim` are the two innermost dims of a 4-D tensor (H and W)."""
    return ndim == 4 and sorted(int(d) % 4 for d in dim) == [2, 3]


def inductor_mean_serial(shape, channels_last, isa, threads) -> bool:
    """Whether Inductor sums each output of a spatial mean of `shape` [N, C, H, W] serially
    (inductor_sum_is_serial with this layout's loop nest and vector width)."""
    n, c, h, w = (int(v) for v in shape)
    lanes = cpu_class(isa).inductor_lanes
    if channels_last:  # loops: N, C (step lanes), H*W (reduction, step 1)
        # the channel loop takes a masked vector for its tail (c < lanes included): ceil(c / lanes) steps
        return inductor_sum_is_serial(n * -(-c // lanes), h * w, h * w, n * c * h * w, threads)
    if lanes not in (8, 16):
        return False
    # loops: N*C, H*W (reduction, step lanes)
    return inductor_sum_is_serial(n * c, (h * w) // lanes, h * w, n * c * h * w, threads)


def float_mean_inductor(x, *, dim, keepdim, channels_last, profile=None, trace=None):
    """mean over H, W of float32 x [N, C, H, W], Inductor's order (module docstring)."""
    x = np.asarray(x, dtype=np.float32)
    if not spatial_dims(x.ndim, dim):
        raise NotImplementedError("Inductor's mean is modelled over the spatial dims (H, W) of a 4-D tensor")
    nb, c, h, w = x.shape
    if channels_last:
        total = sequential_sum(np.ascontiguousarray(x.transpose(2, 3, 0, 1)).reshape(h * w, nb, c))
    else:
        total = inductor_lane_sum(x.reshape(nb, c, h * w), cpu_class(profile or detect()).inductor_lanes)
    y = np.divide(total, np.float32(h * w), dtype=np.float32)
    return y.reshape(nb, c, 1, 1) if keepdim else y


SPECS = [
    OpSpec("float_mean_inductor", "float_mean_inductor", integer="float",
           torch=("aten.mean / adaptive_avg_pool2d (x86-inductor)",)),
]
