"""Runs a program with NumPy: each node calls its op function with its own parameters."""
from __future__ import annotations

import sys

import numpy as np

from . import ops
from .errors import NotModelled, UserError


class RunError(UserError):
    """A program could not run on the given input (wrong shape or dtype, bad program)."""


# What an op raises on parameters or inputs that do not fit it. For a program read from a file
# (Program.origin set), whose parameters the user handed us, more failures are the file's fault.
OP_INPUT_ERRORS = (ValueError, IndexError, NotImplementedError)
FILE_PROGRAM_ERRORS = OP_INPUT_ERRORS + (TypeError, KeyError, ZeroDivisionError, OverflowError, MemoryError)


def check_input(program, i: int, x) -> np.ndarray:
    """The i-th program input as the array the first op expects, or a RunError saying why."""
    name = program.inputs[i]
    info = program.tensors[name]
    torch = sys.modules.get("torch")  # accept torch tensors only if the caller already uses torch
    if torch is not None and isinstance(x, torch.Tensor):
        x = x.int_repr().numpy() if x.is_quantized else x.detach().numpy()
    x = np.asarray(x)
    want = info.dtype
    if want == "float32":
        # quantize_per_tensor and the quantized modules take float32 tensors only (PyTorch refuses
        # float64 and integer tensors); so does this program
        if x.dtype != np.float32:
            raise RunError(f"input {i} ({name}): expected float32 values, got dtype {x.dtype} "
                           "(convert it: x.astype(numpy.float32))")
    elif want == "int64":
        # embedding indices and offsets: torch takes int32 or int64 tensors
        if x.dtype.kind not in "iu":
            raise RunError(f"input {i} ({name}): expected integer indices, got dtype {x.dtype}")
        x = x.astype(np.int64)
    elif want in ("uint8", "int8"):
        if x.dtype != np.dtype(want):
            raise RunError(f"input {i} ({name}): expected quantized {want} values, got dtype {x.dtype}")
    if info.shape is not None:
        if len(info.shape) != x.ndim:
            raise RunError(f"input {i} ({name}): expected {len(info.shape)}-D input shaped like "
                           f"{tuple(info.shape)}, got shape {tuple(x.shape)}")
        if tuple(x.shape[1:]) != tuple(info.shape[1:]):
            raise RunError(f"input {i} ({name}): expected shape (N, {', '.join(map(str, info.shape[1:]))}) "
                           f"with any batch N (built with {tuple(info.shape)}), got {tuple(x.shape)}")
    return x


def run_program(program, inputs, trace=None, keep=False):
    if len(inputs) != len(program.inputs):
        raise RunError(f"the program takes {len(program.inputs)} input(s) "
                       f"({', '.join(program.inputs)}), got {len(inputs)}")
    env = {}
    for i, (name, x) in enumerate(zip(program.inputs, inputs)):
        env[name] = check_input(program, i, x)
    for node in program.nodes:
        t = {} if trace is not None else None
        env[node.output] = run_node(program, node, env, t)
        if trace is not None:
            trace[node.name] = t
    outs = tuple(_collect(o, env) for o in program.outputs)
    result = outs[0] if program.meta.get("returns", "tensor") == "tensor" else outs
    return (result, env) if keep else result


def run_node(program, node, env, trace=None):
    """One node's output from the tensors in `env` (its inputs by name); `trace`, a dict, receives
    the op's intermediate values. A failure the op raises on its inputs is a RunError naming the node."""
    origin = getattr(program, "origin", None)
    caught = FILE_PROGRAM_ERRORS if origin else OP_INPUT_ERRORS
    fn = ops.get(node.op)
    args = [_resolve(i, env) for i in node.inputs]
    order = _elementwise_order(program, node, args)
    try:
        if order is not None:
            return _in_memory_order(fn, args, order, node, program.profile, trace)
        return fn(*args, **node.attrs, **node.consts, profile=program.profile, trace=trace)
    except NotModelled as e:
        where = f"{origin}: " if origin else ""
        raise NotModelled(f"{where}node {node.name} (op {node.op}, from {node.source or node.torch_op}): {e}") from None
    except caught as e:
        shapes = ", ".join(str(tuple(np.shape(a))) for a in args if not isinstance(a, list))
        msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        if isinstance(e, MemoryError):
            msg = "needs more memory than this machine has"
        where = f"{origin}: " if origin else ""
        raise RunError(f"{where}node {node.name} (op {node.op}, from {node.source or node.torch_op}): "
                       f"{msg} [input shapes {shapes}]") from None


def _collect(o, env):
    if isinstance(o, list):
        return tuple(_collect(x, env) for x in o)
    return env[o]


def _resolve(ref, env):
    """A node input: a tensor name, a list of them (cat), or a literal (reshape sizes)."""
    if isinstance(ref, str):
        return env[ref]
    if isinstance(ref, list):
        return [_resolve(r, env) for r in ref]
    return ref


# Ops that treat elements one by one: ATen walks them in memory order, and its vector
# tails and thread chunks fall on the last elements *in memory*, so we run them there.
# (hardtanh is not here: an integer clamp has no tail, and it models its own QNNPACK layout quirk)
ELEMENTWISE = ops.where(elementwise=True)


def _elementwise_order(program, node, args):
    if node.op not in ELEMENTWISE or not isinstance(node.inputs[0], str):
        return None
    info = program.tensors.get(node.inputs[0])
    order = info.layout if info is not None else None
    if order is None or len(order) != np.ndim(args[0]):
        return None
    if any(np.shape(a) != np.shape(args[0]) for a in args if isinstance(a, np.ndarray)):
        return None  # broadcasting: leave to the op
    return order


def _in_memory_order(fn, args, order, node, profile, t):
    inv = np.argsort(order)
    moved = [np.ascontiguousarray(np.transpose(a, order)) if isinstance(a, np.ndarray) else a for a in args]
    out = fn(*moved, **node.attrs, **node.consts, profile=profile, trace=t)
    return np.transpose(out, inv)
