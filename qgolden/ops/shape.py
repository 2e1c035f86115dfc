"""Data movement: the integer values and quantization parameters pass through unchanged."""
from __future__ import annotations

import numpy as np

from .spec import OpSpec


def identity(x, *, profile=None, trace=None):
    """Dropout in eval, Identity, contiguous, clone: y = x."""
    return x


def reshape(x, *shape, profile=None, trace=None):
    """y = x.reshape(shape); shape entries may come from `size` nodes (ints)."""
    return np.reshape(x, [int(s) for s in shape])


def flatten(x, *, start_dim=0, end_dim=-1, profile=None, trace=None):
    """torch.flatten(x, start_dim, end_dim)."""
    nd = x.ndim
    if nd == 0:
        return x.reshape(1)
    s = start_dim % nd
    e = end_dim % nd
    return x.reshape(x.shape[:s] + (-1,) + x.shape[e + 1:])


def permute(x, *, dims, profile=None, trace=None):
    return np.ascontiguousarray(np.transpose(x, dims))


def transpose(x, *, dim0, dim1, profile=None, trace=None):
    return np.ascontiguousarray(np.swapaxes(x, dim0, dim1))


def squeeze(x, *, dim=None, profile=None, trace=None):
    """torch.squeeze: a dim of size != 1 is left alone (not an error, unlike NumPy)."""
    if dim is None:
        return np.squeeze(x)
    dims = [dim] if isinstance(dim, int) else list(dim)
    dims = tuple(d % x.ndim for d in dims if x.shape[d] == 1)
    return np.squeeze(x, axis=dims) if dims else x


def unsqueeze(x, *, dim, profile=None, trace=None):
    return np.expand_dims(x, dim % (x.ndim + 1))


def size(x, *, dim=None, profile=None, trace=None):
    """x.size(dim) as an int, or the whole shape as a list."""
    return list(x.shape) if dim is None else int(x.shape[dim])


_ARITH = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "floordiv": lambda a, b: a // b, "getitem": lambda a, b: a[b],
}


def int_arith(a, b=None, *, fn, const=None, profile=None, trace=None):
    """Shape arithmetic on ints (x.size(0) * 2, shape[1], ...); `const` replaces a missing b."""
    return _ARITH[fn](a, const if b is None else b)


def index(x, *, index, profile=None, trace=None):
    """x[index] with ints, slices, None and Ellipsis (index encoded as lists in the program)."""
    key = []
    for it in index:
        kind = it[0]
        if kind == "slice":
            key.append(slice(it[1], it[2], it[3]))
        elif kind == "int":
            key.append(int(it[1]))
        elif kind == "none":
            key.append(None)
        else:
            key.append(Ellipsis)
    return np.ascontiguousarray(x[tuple(key)])


SPECS = [
    OpSpec("reshape", "reshape", integer="keep", passes_range=True, moves_data=True, summary='reshapes (no arithmetic)', formula=('y_q = x_q', ),
           torch=('x.reshape', 'x.view', 'torch.reshape', 'aten::reshape', 'aten::view')),
    OpSpec("flatten", "flatten", integer="keep", passes_range=True, moves_data=True, summary='reshapes (no arithmetic)', formula=('y_q = x_q', ),
           torch=('nn.Flatten', 'torch.flatten', 'x.flatten', 'aten::flatten')),
    OpSpec("permute", "permute", integer="keep", passes_range=True, moves_data=True, summary='permutes dims (no arithmetic)', formula=('y_q = x_q', ),
           torch=('x.permute', 'torch.permute', 'aten::permute')),
    OpSpec("transpose", "transpose", integer="keep", passes_range=True, moves_data=True, summary='transposes (no arithmetic)', formula=('y_q = x_q', ),
           torch=('x.transpose', 'torch.transpose', 'aten::transpose')),
    OpSpec("squeeze", "squeeze", integer="keep", passes_range=True, moves_data=True,
           torch=('x.squeeze', 'torch.squeeze', 'aten::squeeze')),
    OpSpec("unsqueeze", "unsqueeze", integer="keep", passes_range=True, moves_data=True,
           torch=('x.unsqueeze', 'torch.unsqueeze', 'aten::unsqueeze')),
    OpSpec("identity", "identity", integer="keep", passes_range=True, moves_data=True, summary='passes its input through', formula=('y_q = x_q', ),
           torch=('nn.Identity', 'nn.Dropout (eval)', 'F.dropout (eval)', 'quantized::dropout', 'x.contiguous', 'x.detach', 'x.clone', 'aten::contiguous', 'aten::dropout')),
    OpSpec("index", "index", integer="keep", passes_range=True,
           torch=('x[...] (operator.getitem)', 'torch.chunk', 'x.chunk', 'torch.split', 'x.split', 'aten::slice', 'aten::select')),
    OpSpec("size", "size", integer="keep",
           torch=('x.size', 'aten::size')),
    OpSpec("int_arith", "int_arith", integer="keep",
           torch=('operator.add/sub/mul/floordiv on sizes', 'aten::add/sub/mul/floordiv on ints')),
]
