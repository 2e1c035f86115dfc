"""`qgolden trace --compare DUMPS.npz`: the user's per-layer integers (their hardware or model)
against the program's, for the whole dump.

For every dumped layer, in program order: how many elements differ and by how much, and which of
those differences start there. A layer is recomputed by the program's own arithmetic from the
user's dumped inputs (every dumped tensor replaces ours; undumped tensors in between are computed
from the user's values): an element whose dump equals that recomputation only carried a difference
from earlier layers (propagated); one that does not is computed differently there (root cause).
For a root cause the hint gives the value before rounding and its distance to the nearest .5
boundary: a difference of one step next to a boundary is a rounding rule or a float order; far from
it, or by more steps, it is an arithmetic or a parameter.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..engine import run_node
from .access import trace_index
from .build import ExplainError, backend_of, label
from .doc import Document, Section, Table, Val
from .near_tie import float64_pre_round, half_boundary, is_near_tie, rne
from .trace_element import element_section, feeders_table

MAX_FIRST = 3  # first root-cause elements shown per layer


def load_dumps(path) -> dict:
    """{layer or tensor name: array} from an .npz written by the user (never unpickled)."""
    from pathlib import Path

    p = Path(path)
    if not p.exists():
        raise ExplainError(f"{path}: no such dumps file")
    try:
        with np.load(p, allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise ExplainError(f"{path}: dumps must be an .npz of arrays keyed by layer name")
            return {k: z[k] for k in z.files}
    except ExplainError:
        raise
    except Exception as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ExplainError(f"{path}: not a readable .npz of integer dumps ({why})") from None


def dumped_layers(program, env, dumps: dict) -> dict:
    """{node name: the user's array, shaped like the node's output}, checked: every key names a
    layer (node or tensor name), holds integers, and has the layer's shape (a missing batch
    dimension of 1 is added)."""
    by_name = {}
    for n in program.nodes:
        by_name[n.name] = n
        by_name.setdefault(n.output, n)
    unknown = [k for k in dumps if k not in by_name]
    if unknown:
        raise ExplainError(f"dumps name unknown layer(s) {', '.join(unknown)}; layers: "
                           + ", ".join(n.name for n in program.nodes))
    wanted = {}
    for key, value in dumps.items():
        node = by_name[key]
        theirs = np.asarray(value)
        ours = np.asarray(env[node.output])
        if theirs.dtype.kind not in "iub" and not (theirs.dtype.kind == "f" and np.all(np.mod(theirs, 1) == 0)):
            raise ExplainError(f"dump {node.name}: expected integers (the int_repr), got dtype {theirs.dtype}")
        if theirs.shape != ours.shape:
            if ours.shape[:1] == (1,) and theirs.shape == ours.shape[1:]:
                theirs = theirs[None]
            else:
                raise ExplainError(f"dump {node.name}: shape {theirs.shape}, the layer's output has shape {ours.shape}")
        wanted[node.name] = theirs.astype(ours.dtype) if ours.dtype.kind in "iu" else theirs
    return wanted


@dataclass
class FirstDiff:
    """One differing element: where, the user's value, ours, what our arithmetic gives on the user's
    inputs, and (when the op rounds a real value) the value before rounding."""
    index: tuple
    theirs: int
    ours: int
    recomputed: int
    pre_round: float | None = None
    float64: float | None = None  # the pre-round value in float64 hand arithmetic (near_tie.float64_pre_round)

    @property
    def to_boundary(self) -> float | None:
        """|pre_round − (floor(pre_round) + 0.5)|: how far the real value was from rounding the other way."""
        if self.pre_round is None or not np.isfinite(self.pre_round):
            return None
        return abs(self.pre_round - half_boundary(self.pre_round))


@dataclass
class LayerDiff:
    node: object
    elements: int
    differ: int
    max_abs: int
    root_cause: int  # differing elements the user's layer computes differently from its own inputs
    propagated: int  # differing elements explained by the user's inputs
    reads_undumped: bool  # it reads a layer's output that is not in the dump
    first: list = field(default_factory=list)  # FirstDiff of the first root-cause elements


def _pre_round(program, node, trace, env, idx) -> tuple:
    """(value before rounding at output element idx from the op's trace, the same in float64 hand
    arithmetic), each None when the op has none."""
    t = trace.get(node.name) or {}
    if "pre_round" not in t:
        return None, None
    ti = trace_index(node, t["pre_round"], idx, np.shape(env[node.output]), key="pre_round")
    if ti is None or np.ndim(np.asarray(t["pre_round"])[ti]) != 0:
        return None, None
    backend = backend_of(program, node) if node.op in ("linear", "conv") else None
    return float(np.asarray(t["pre_round"])[ti]), float64_pre_round(node, trace, env, ti, backend)


def _reads(node):
    """Tensor names a node reads (its inputs, including lists such as cat's)."""
    for ref in node.inputs:
        if isinstance(ref, str):
            yield ref
        elif isinstance(ref, list):
            yield from (r for r in ref if isinstance(r, str))


def compare_dumps(program, trace, env, dumps: dict) -> list:
    """LayerDiff for every dumped layer, in program order (see the module docstring)."""
    wanted = dumped_layers(program, env, dumps)
    undumped = {n.output for n in program.nodes if n.name not in wanted}
    theirs_env = {name: env[name] for name in program.inputs}
    from_dump = set()  # tensors whose value in theirs_env depends on a dump
    result = []
    for node in program.nodes:
        reads = list(_reads(node))
        if any(r in from_dump for r in reads):
            recomputed = run_node(program, node, theirs_env)
            from_dump.add(node.output)
        else:
            recomputed = env[node.output]
        theirs = wanted.get(node.name)
        if theirs is None:
            theirs_env[node.output] = recomputed
            continue
        theirs_env[node.output] = theirs
        from_dump.add(node.output)
        ours = np.asarray(env[node.output])
        diff = theirs.astype(np.int64) != ours.astype(np.int64)
        n_diff = int(diff.sum())
        max_abs = int(np.abs(theirs.astype(np.int64) - ours.astype(np.int64)).max()) if theirs.size else 0
        own = diff & (theirs.astype(np.int64) != np.asarray(recomputed).astype(np.int64))
        first = []
        for i in np.argwhere(own)[:MAX_FIRST]:
            idx = tuple(int(u) for u in i)
            first.append(FirstDiff(idx, int(theirs[idx]), int(ours[idx]), int(np.asarray(recomputed)[idx]),
                                   *_pre_round(program, node, trace, env, idx)))
        result.append(LayerDiff(node, int(theirs.size), n_diff, max_abs, int(own.sum()), n_diff - int(own.sum()),
                                any(r in undumped for r in reads), first))
    return result


def hint(fd: FirstDiff) -> str:
    """What the first root-cause difference of a layer suggests, from its size and its distance to
    the rounding boundary."""
    steps = abs(fd.theirs - fd.recomputed)
    d = fd.to_boundary
    if d is None:
        return (f"{steps} step(s) off our arithmetic on your inputs; this op has no value before rounding "
                "(compare its integer formula)")
    where = f"the value before rounding is {fd.pre_round:.6f}, {d:.6f} from the .5 boundary"
    if fd.float64 is not None and rne(fd.float64) != rne(fd.pre_round):
        where += f" (float64 arithmetic gives {fd.float64:.6f} → {rne(fd.float64)})"
    if steps == 1 and (d < 0.01 or is_near_tie(fd.pre_round)):
        return f"{where}: 1 step at a boundary, a rounding rule (half even/up/away) or float order flips it"
    if steps == 1:
        return f"{where}: 1 step far from a boundary, look at the multiplier, shift, bias or zero point"
    return f"{where}: {steps} steps, not a rounding: look at the accumulator width (saturation), weights or parameters"


def compare_document(program, trace, env, dumps) -> tuple:
    """(Document, differs: bool): the per-layer table with a hint for each layer's first root-cause
    elements, then the whole arithmetic of the first root-cause element."""
    layers = compare_dumps(program, trace, env, dumps)
    n = len(layers)
    bad = [l for l in layers if l.differ]
    if not bad:
        return Document(f"qgolden trace --compare: all {n} dumped layers equal the program's integers"), False
    # the first differing layer reads only tensors equal to ours, so its differences are its own
    root = next(l for l in layers if l.root_cause)
    fd = root.first[0]
    node, idx = root.node, fd.index
    doc = Document(f"qgolden trace --compare: first difference at layer {node.name}, element {label(idx)}; "
                   f"{len(bad)} of {n} dumped layers differ")
    rows = []
    for l in layers:
        if not l.differ:
            verdict = "equal"
        elif not l.root_cause:
            verdict = "propagated"
        else:
            verdict = "root cause" + (" + propagated" if l.propagated else "")
            if l.reads_undumped:
                verdict += " (or in an undumped layer before it)"
        rows.append([l.node.name, l.node.op, str(l.elements), str(l.differ), str(l.max_abs),
                     str(l.root_cause), str(l.propagated), verdict])
    doc.intro.append([f"{len(bad)} of {n} dumped layers differ. Each layer is recomputed with this program's "
                      "arithmetic from your own dumped inputs: differences it reproduces came from earlier "
                      "layers (propagated); the others start in that layer (root cause)."])
    sec = Section("", "per layer", tables=[Table(
        ["layer", "op", "elements", "differ", "max |diff|", "root cause", "propagated", "verdict"], rows)])
    for l in layers:
        for f in l.first:
            sec.marks.append([f"{l.node.name}{label(f.index)}: yours {f.theirs}, ours ",
                              Val(f.ours, ("env", l.node.output, f.index)),
                              f", ours from your inputs {f.recomputed}; {hint(f)}"])
    doc.sections.append(sec)
    doc.sections.append(Section("", f"the first root cause: {node.name}{label(idx)}", notes=[[
        f"Your dump has {fd.theirs} at {node.name}{label(idx)}; PyTorch (and this program) computes ",
        Val(fd.ours, ("env", node.output, idx)), ". Every earlier dumped layer matched. The arithmetic at that "
        "element:"]]))
    doc.sections.append(element_section(program, trace, env, node, idx))
    doc.sections.append(Section("", "followed backwards", tables=[feeders_table(program, node, idx, env)]))
    return doc, True
