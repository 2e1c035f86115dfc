"""Check a document against the computation: every printed number equals its source."""
from __future__ import annotations

import numpy as np

from .build import backend_of, other_engine_value
from .near_tie import float64_pre_round
from .doc import fmt


def lookup(src, program, trace, env):
    kind = src[0]
    if kind == "trace":
        _, node, key, idx = src
        v = trace[node]
        for k in (key if isinstance(key, tuple) else (key,)):  # a path into a nested trace (dynamic_rnn)
            v = v[k]
        return np.asarray(v)[idx] if idx != () or isinstance(v, np.ndarray) else v
    if kind == "env":
        return np.asarray(env[src[1]])[src[2]]
    node_by = {n.name: n for n in program.nodes}
    if kind == "attr":
        return node_by[src[1]].attrs[src[2]]
    if kind == "const":
        return np.asarray(node_by[src[1]].consts[src[2]])[src[3]]
    if kind == "tensor":
        return getattr(program.tensors[src[1]], src[2])
    if kind == "other":
        _, formula, node, idx = src
        return other_engine_value(program, node_by[node], formula, idx)
    if kind == "float64":
        _, node, idx = src
        n = node_by[node]
        backend = backend_of(program, n) if n.op in ("linear", "conv") else None
        return float64_pre_round(n, trace, env, idx, backend)
    raise KeyError(kind)


def same(a, b) -> bool:
    a = np.asarray(a)[()]
    b = np.asarray(b)[()]
    if isinstance(a, (float, np.floating)) or isinstance(b, (float, np.floating)):
        fa, fb = float(a), float(b)
        return (fa == fb) or (np.isnan(fa) and np.isnan(fb))
    return a == b


def problems(doc, program, trace, env) -> list:
    """[] when every Val in `doc` equals its source and prints as its value."""
    out = []
    for v in doc.all_vals():
        try:
            ref = lookup(v.src, program, trace, env)
        except Exception as e:  # a source that does not exist is a problem too
            out.append(f"{v.src}: cannot look up ({type(e).__name__}: {e})")
            continue
        if not same(v.value, ref):
            out.append(f"{v.src}: printed {v.text}, source holds {ref!r}")
            continue
        ref_item = np.asarray(ref)[()]
        if np.asarray(ref).dtype == np.float32:
            ref_item = np.float32(ref_item)
        if fmt(ref_item) != v.text and not (isinstance(ref_item, (float, np.floating)) and float(v.text) == float(ref_item)):
            out.append(f"{v.src}: printed {v.text}, formatted source {fmt(ref_item)}")
    return out
