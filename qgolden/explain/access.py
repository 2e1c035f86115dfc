"""Where one element of an op's output sits in each array of that op's trace.

Ops fill their trace with arrays laid out the way they compute: linear/conv keep the output
channel last (conv: [N, OH, OW, O], requantization [N*OH*OW, O]), per-channel values are
[O], and elementwise ops that run in memory order (engine._elementwise_order) trace their
arrays in that order. `trace_index` maps an output index to the index of the same element
in a trace array, or None if that array is not per element.
"""
from __future__ import annotations

import numpy as np

from ..engine import _elementwise_order


def memory_order(program, node, env):
    """The dim order an elementwise op ran in (None: as the output is laid out)."""
    try:
        args = [env[i] if isinstance(i, str) else i for i in node.inputs]
    except KeyError:
        return None
    return _elementwise_order(program, node, args)


def trace_index(node, arr, out_idx, out_shape, order=None, key=None):
    """Index into `arr` (trace[node.name][key]) of output element `out_idx`, or None.
    linear/conv: only `out` and `out_real` are laid out like the output."""
    arr = np.asarray(arr)
    out_idx = tuple(int(i) for i in out_idx)
    out_shape = tuple(out_shape)
    if arr.ndim == 0 or arr.dtype == object:
        return None
    if node.op in ("linear", "conv"):
        if key in ("out", "out_real") or (key is None and node.op == "linear"):
            return out_idx if arr.shape == out_shape else None
        if node.op == "linear":
            c = out_idx[-1]
            lead, lead_shape = out_idx[:-1], out_shape[:-1]
        else:
            c = out_idx[1]
        n_ch = out_shape[-1] if node.op == "linear" else out_shape[1]
        if arr.ndim == 1:
            if arr.shape[0] == n_ch:
                return (c,)
            if arr.shape[0] == 1:
                return (0,)
            return None
        if node.op == "linear":
            rows = int(np.prod(lead_shape)) if lead_shape else 1
            if arr.shape == (rows, n_ch):
                return (int(np.ravel_multi_index(lead, lead_shape)) if lead else 0, c)
            if arr.shape == tuple(lead_shape) + (n_ch,):
                return out_idx
            return None
        # conv: out [N, O, H, W] or [N, O, L]
        n = out_idx[0]
        sp = out_idx[2:]
        if len(sp) == 1:
            sp = (0,) + sp
            sp_shape = (1,) + out_shape[2:]
        else:
            sp_shape = out_shape[2:]
        if arr.shape == (out_shape[0],) + tuple(sp_shape) + (n_ch,):
            return (n,) + tuple(sp) + (c,)
        m = out_shape[0] * int(np.prod(sp_shape))
        if arr.shape == (m, n_ch):
            return ((n * sp_shape[0] + sp[0]) * sp_shape[1] + sp[1], c)
        return None
    if order is not None and len(order) == len(out_shape):
        t_shape = tuple(out_shape[d] for d in order)
        if arr.shape == t_shape:
            return tuple(out_idx[d] for d in order)
        return None
    if arr.shape == out_shape:
        return out_idx
    return None
