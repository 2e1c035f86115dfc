"""Integer-only lookup tables (no float arithmetic).

lut(x):          out = table[x - in_min]; with `scalar_table`, elements ATen computes in its scalar
                 tail (elementwise.unary_mask, walked in memory order `order`) read scalar_table.
lut2(a, b):      out = table[(a - in_min) * 256 + (b - in_min)] (b broadcast to a), same two-path rule
                 (elementwise.path_mask).
lut_channel(x):  out = table[c, x - in_min], c the index along `axis` (quantized batch_norm).
dequantize_lut:  float32 output whose BIT PATTERN is table[q - in_min] (int32): the dequantized
                 value, produced by a table of bit patterns, no float operation.
"""
from __future__ import annotations

import numpy as np

from ..numerics import elementwise as E
from .spec import OpSpec


def _ordered(fn, args, order):
    if order is None or len(order) != np.ndim(args[0]) or any(np.shape(a) != np.shape(args[0]) for a in args):
        return fn(*args)
    inv = np.argsort(order)
    moved = [np.ascontiguousarray(np.transpose(a, order)) for a in args]
    return np.transpose(fn(*moved), inv)


def lut(x, *, table, scalar_table=None, in_min=0, order=None, dtype="uint8", profile=None, trace=None):
    from ..integer.fastlut import byte_offsets, table_as  # here: qgolden.integer imports the op table

    x = np.asarray(x)

    def go(q):
        i = byte_offsets(q, in_min) if trace is None else None
        if i is not None:  # the same integers: a byte index, the tables cast to dtype once (integer/fastlut.py)
            out = np.take(table_as(table, dtype), i)
            if scalar_table is not None:
                out = np.where(E.unary_mask(q.shape, profile), out, np.take(table_as(scalar_table, dtype), i))
            return out
        i = q.astype(np.int64) - int(in_min)
        out = np.asarray(table)[i]
        if scalar_table is not None:
            out = np.where(E.unary_mask(q.shape, profile), out, np.asarray(scalar_table)[i])
        return out.astype(dtype)

    out = _ordered(go, [x], order)
    if trace is not None:
        trace.update(out=out)
    return out


def lut2(a, b, *, table, scalar_table=None, in_min=0, order=None, dtype="uint8", profile=None, trace=None):
    from ..integer.fastlut import pair_index, table_as  # here: qgolden.integer imports the op table

    a = np.asarray(a)
    b = np.asarray(b)

    def go(qa, qb):
        qbb = np.broadcast_to(qb, qa.shape)
        i = pair_index(qa, qbb, in_min) if trace is None else None
        if i is not None:  # the same integers: a uint16 index, the tables cast to dtype once (integer/fastlut.py)
            out = np.take(table_as(table, dtype), i)
            if scalar_table is not None:
                out = np.where(E.path_mask(qa.shape, [qa.shape, qb.shape], profile), out,
                               np.take(table_as(scalar_table, dtype), i))
            return out
        i = (qa.astype(np.int64) - int(in_min)) * 256 + (qbb.astype(np.int64) - int(in_min))
        out = np.asarray(table)[i]
        if scalar_table is not None:
            out = np.where(E.path_mask(qa.shape, [qa.shape, qb.shape], profile), out, np.asarray(scalar_table)[i])
        return out.astype(dtype)

    out = _ordered(go, [a, b], order)
    if trace is not None:
        trace.update(out=out)
    return out


def lut_channel(x, *, table, in_min=0, axis=1, dtype="uint8", profile=None, trace=None):
    x = np.asarray(x)
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    c = np.arange(x.shape[axis]).reshape(shape)
    out = np.asarray(table)[c, x.astype(np.int64) - int(in_min)].astype(dtype)
    if trace is not None:
        trace.update(out=out)
    return out


def dequantize_lut(q, *, table, in_min=0, profile=None, trace=None):
    out = np.asarray(table, dtype=np.int32)[np.asarray(q).astype(np.int64) - int(in_min)].view(np.float32)
    if trace is not None:
        trace.update(out=out)
    return out


SPECS = [
    OpSpec("lut", "lut", integer="integer"),
    OpSpec("lut2", "lut2", integer="integer"),
    OpSpec("lut_channel", "lut_channel", integer="integer"),
    OpSpec("dequantize_lut", "dequantize_lut", integer="integer"),
]
