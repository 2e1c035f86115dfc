"""Channel and pixel shuffles (nn.ChannelShuffle / F.channel_shuffle, nn.PixelShuffle /
F.pixel_shuffle, nn.PixelUnshuffle / F.pixel_unshuffle): pure data movement, the stored values and
qparams pass through (ATen ChannelShuffle.cpp and PixelShuffle.cpp reshape/permute the tensor).

    channel_shuffle(x, g):  [N, C, *] -> view [N, g, C/g, *] -> transpose(1, 2) -> [N, C, *]
    pixel_shuffle(x, r):    [N, C·r², H, W] -> [N, C, H·r, W·r],  y[n, c, h·r+i, w·r+j] = x[n, c·r²+i·r+j, h, w]
    pixel_unshuffle(x, r):  its inverse
"""
from __future__ import annotations

import numpy as np

from .spec import OpSpec


def channel_shuffle(x, *, groups, profile=None, trace=None):
    x = np.asarray(x)
    n, c = x.shape[0], x.shape[1]
    g = int(groups)
    y = x.reshape((n, g, c // g) + x.shape[2:]).swapaxes(1, 2)
    return np.ascontiguousarray(y).reshape(x.shape)


def pixel_shuffle(x, *, factor, profile=None, trace=None):
    x = np.asarray(x)
    r = int(factor)
    *lead, c, h, w = x.shape
    y = x.reshape(*lead, c // (r * r), r, r, h, w)
    k = len(lead)
    y = y.transpose(*range(k), k, k + 3, k + 1, k + 4, k + 2)
    return np.ascontiguousarray(y).reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(x, *, factor, profile=None, trace=None):
    x = np.asarray(x)
    r = int(factor)
    *lead, c, h, w = x.shape
    y = x.reshape(*lead, c, h // r, r, w // r, r)
    k = len(lead)
    y = y.transpose(*range(k), k, k + 2, k + 4, k + 1, k + 3)
    return np.ascontiguousarray(y).reshape(*lead, c * r * r, h // r, w // r)


SPECS = [
    OpSpec("channel_shuffle", "channel_shuffle", integer="keep", passes_range=True, moves_data=True,
           summary="shuffles channels between groups (no arithmetic)", formula=("y_q[n, j·g + i] = x_q[n, i·(C/g) + j]",),
           torch=("nn.ChannelShuffle", "F.channel_shuffle", "aten::channel_shuffle")),
    OpSpec("pixel_shuffle", "pixel_shuffle", integer="keep", passes_range=True, moves_data=True,
           summary="moves channels into space (no arithmetic)", formula=("y_q[c, h·r+i, w·r+j] = x_q[c·r²+i·r+j, h, w]",),
           torch=("nn.PixelShuffle", "F.pixel_shuffle", "aten::pixel_shuffle")),
    OpSpec("pixel_unshuffle", "pixel_unshuffle", integer="keep", passes_range=True, moves_data=True,
           summary="moves space into channels (no arithmetic)", formula=("y_q[c·r²+i·r+j, h, w] = x_q[c, h·r+i, w·r+j]",),
           torch=("nn.PixelUnshuffle", "F.pixel_unshuffle", "aten::pixel_unshuffle")),
]
