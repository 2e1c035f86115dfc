"""Integer-only nearest upsampling: a gather with source indices computed when the program was
built (ops/upsample_nearest.nearest_source_index), and torch's NHWC-as-NCHW layout quirk."""
from __future__ import annotations

import numpy as np

from .max_pool import nhwc_written_as_nchw
from .spec import OpSpec


def upsample_int(x, *, h_index, w_index, nhwc_quirk=False, channels_last=False, profile=None, trace=None):
    x = np.asarray(x)
    hi, wi = np.asarray(h_index), np.asarray(w_index)
    if hi.size == x.shape[2] and wi.size == x.shape[3] and not nhwc_quirk and \
            np.array_equal(hi, np.arange(hi.size)) and np.array_equal(wi, np.arange(wi.size)):
        return x.copy()
    y = x[:, :, hi[:, None], wi[None, :]]
    if nhwc_quirk:
        y = nhwc_written_as_nchw(y, x.shape[2], x.shape[3], channels_last)
    return y


SPECS = [
    OpSpec("upsample_int", "upsample_int", integer="integer"),
]
