"""The PyTorch side: run a model and collect every intermediate it computes, by FX node name."""
from __future__ import annotations

import contextlib

import numpy as np


@contextlib.contextmanager
def engine(name: str | None):
    """Run torch under quantized engine `name` (restored afterwards)."""
    import torch

    old = torch.backends.quantized.engine
    if name:
        torch.backends.quantized.engine = name
    try:
        yield
    finally:
        torch.backends.quantized.engine = old


def to_numpy(v):
    """A torch value as what the program computes: int_repr() for quantized tensors."""
    import torch

    if isinstance(v, torch.Tensor):
        if v.is_quantized:
            return v.int_repr().numpy()
        return v.detach().numpy()
    if isinstance(v, (list, tuple)):
        return type(v)(to_numpy(x) for x in v)
    return v


def as_tensor(x):
    """A NumPy array (or a tensor, returned as is) as a torch tensor sharing its data where it can."""
    import torch

    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))


def to_torch_inputs(program, inputs):
    """Program inputs (NumPy) as torch tensors, quantizing already-quantized inputs with their qparams."""
    import torch

    out = []
    for name, x in zip(program.inputs, inputs):
        info = program.tensors[name]
        if isinstance(x, torch.Tensor):
            out.append(x)
            continue
        x = np.asarray(x)
        if info.quantized:
            qd = torch.quint8 if info.dtype == "uint8" else torch.qint8
            t = torch._make_per_tensor_quantized_tensor(torch.from_numpy(x.copy()), info.scale, info.zero_point)
            out.append(t if t.dtype == qd else t)
        else:
            out.append(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
    return out


def snapshot(v):
    """v with every tensor in it cloned (tuples and lists kept)."""
    import torch

    if isinstance(v, torch.Tensor):
        c = v.clone()
        if c.stride() != v.stride() and v.dim() > 1:
            # a quantized clone comes back contiguous; the importer reads layouts from these strides
            # (any dim order: a conv1d output is [N, C, L] with C innermost, and mean takes another
            # kernel on it), so copy in v's memory order and view it back in v's dim order
            order = sorted(range(v.dim()), key=lambda d: (-v.stride(d), d))
            back = sorted(range(v.dim()), key=lambda d: order[d])
            c = v.permute(order).clone().permute(back)
        return c
    if isinstance(v, (list, tuple)):
        return type(v)(snapshot(x) for x in v)
    return v


def fx_intermediates(gm, inputs) -> tuple:
    """Run an FX GraphModule node by node; return (output, {node name: value})."""
    import torch.fx

    seen = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, n):
            try:
                r = super().run_node(n)
            except Exception as e:
                from .importers import ImportErrorQ

                msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise ImportErrorQ(f"PyTorch itself fails at node '{n.name}' ({n.op} {n.target}) on this input: "
                                   f"{msg} [input shapes {[tuple(getattr(i, 'shape', ())) for i in inputs]}]") from None
            # a copy: an in-place op later in the graph (ReLU6(inplace=True) after a conv) would
            # otherwise change what this node is recorded to have computed
            seen[n.name] = snapshot(r)
            return r

    out = Recorder(gm).run(*inputs)
    return out, seen
