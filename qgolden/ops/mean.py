"""Quantized torch.mean (mean_out_quantized_cpu, ReduceOps.cpp), e.g. x.mean((2, 3)).

Output qparams are the input's.

1. QNNPACK (engine qnnpack, quint8, 4-D input, dim given literally as [2, 3]): global average
   pooling (`pytorch_qnnp_setup_global_average_pooling_nwc_q8`, q8gavgpool), over n = H*W:
       S = sum(q - zp) ; scale = f32(f32(s) / f32(f32(s) * f32(n)))
       y = clamp(rne(f32(f32(S) * scale)) + zp, 0, 255)
2. ATen fast path (NCHW-contiguous input, reduced dims innermost, `qmean_inner_dim_kernel`):
       y = rne(f32(f32(sum q) / f32(n)))          (raw stored values, float DIVISION, no clamp)
3. Anything else (channels-last input, non-innermost dims) dequantizes (fbgemm::Dequantize,
   f32(s) * f32(q - zp), keeping the layout), takes the float mean and quantizes the result with
   the input's qparams (quantize_per_tensor):
       y = quantize(f32(sum / f32(n)))
   where `sum` is ATen's float32 cascade sum (SumKernel.cpp through TensorIterator's dim order:
   numerics.floatsum.aten_sum) and mean_out divides it by the count (at::sum_out(...).div_(n)).
"""
from __future__ import annotations

import numpy as np

from ..numerics import elementwise as E
from ..numerics import quantize as Q
from ..numerics.floatops import f32
from ..numerics.floatsum import aten_sum
from ..numerics.profile import aten_float_lanes
from .avg_pool import qnnpack_avgpool_requant
from .spec import OpSpec


def mean(x, *, x_scale, x_zero_point, dim, keepdim, profile, trace=None, channels_last=False):
    x = np.asarray(x)
    nd = x.ndim
    if dim is None or (not isinstance(dim, (int, np.integer)) and len(dim) == 0):
        dims_lit = list(range(nd))
    elif isinstance(dim, (int, np.integer)):
        dims_lit = [int(dim)]
    else:
        dims_lit = [int(d) for d in dim]
    dims = sorted(d % nd for d in dims_lit)
    zp = int(x_zero_point)
    engine = profile["engine"]
    n = int(np.prod([x.shape[d] for d in dims])) if dims else 1

    if engine == "qnnpack" and x.dtype == np.uint8 and nd == 4 and dims_lit == [2, 3]:
        S = (x.astype(np.int64) - zp).sum(axis=(2, 3))
        y = qnnpack_avgpool_requant(S, n, x_scale, zp).astype(np.uint8)
        if keepdim:
            y = y[:, :, None, None]
        kernel = "qnnpack_gavgpool"
    else:
        innermost = dims == list(range(nd - len(dims), nd))
        nchw_contig = not channels_last or (nd == 4 and (x.shape[1] == 1 or x.shape[2] * x.shape[3] == 1))
        if not (innermost and nchw_contig):
            return _float_mean(x, dims, keepdim, x_scale, zp, profile, trace, channels_last)
        S = x.astype(np.int64).sum(axis=tuple(dims), keepdims=keepdim)
        t = (S.astype(np.float32) / np.float32(n)).astype(np.float32)
        y = np.rint(t).astype(np.int64).astype(x.dtype)
        kernel = "aten_inner_dim"
    if trace is not None:
        trace["kernel"] = kernel
        trace["sum"] = S
        trace["count"] = n
    return y


def dequantized_order(ndim: int, channels_last: bool):
    """Memory order of `self.dequantize()` (PerTensorAffineQuantizer::dequantize, quantized/Quantizer.cpp):
    at::empty(sizes, memory_format=qtensor.suggest_memory_format()), channels-last only for a 4-D
    (ChannelsLast) or 5-D (ChannelsLast3d) tensor. A 3-D tensor held channels-last (a conv1d output,
    computed as a 2-D conv and squeezed) dequantizes contiguous, so its float sum runs in NCL order."""
    if channels_last and ndim in (4, 5):
        return [0] + list(range(2, ndim)) + [1]
    return None


def _float_mean(x, dims, keepdim, x_scale, zp, profile, trace, channels_last):
    """mean_out_quantized_cpu off its fast paths: dequantize, float mean, quantize_per_tensor."""
    dtype = {np.dtype(np.uint8): "uint8", np.dtype(np.int8): "int8"}[x.dtype]
    xf = Q.dequantize_per_tensor(x, x_scale, zp)
    order = dequantized_order(x.ndim, channels_last)
    S = aten_sum(xf, dims, order, aten_float_lanes(profile, "sum"), E.num_threads(profile))
    n = int(np.prod([x.shape[d] for d in dims], dtype=np.int64)) if dims else 1
    m = f32(S.astype(np.float64) / float(np.float32(n)))
    y = Q.quantize_per_tensor(m, x_scale, zp, dtype)
    if keepdim:
        y = y.reshape([1 if d in dims else s for d, s in enumerate(x.shape)])
    if trace is not None:
        trace.update(kernel="aten_dequantize_float_mean", float_sum=S, count=n, float_mean=m)
    return y


SPECS = [
    OpSpec("mean", "mean", integer="pool", summary='mean over dims', formula=('y_q = clamp(rne(Σ (x_q − z) / n) + z)', ),
           torch=('torch.mean', 'x.mean', 'aten::mean')),
]
