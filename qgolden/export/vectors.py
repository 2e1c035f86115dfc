"""Golden vectors for hardware testbenches: every layer's integer input and output on a given
input, and every constant (weights, biases, multipliers, shifts, thresholds, tables), as .npy and
as memory files (memfiles.py), with a JSON manifest (file, tensor, shape, dtype, width, layout).
"""
from __future__ import annotations

import json
import re

import numpy as np

from . import memfiles as M

FORMATS = ("npy", "mem", "hex", "coe")


def file_stem(name: str, taken: set) -> str:
    """A file name stem for a tensor or node name: [0-9A-Za-z_.-] only, no leading dot, at most
    80 characters, and distinct (ignoring case, for case-insensitive file systems) from every stem
    in `taken`, which it joins: 'a/b' and 'a_b' become 'a_b' and 'a_b~2'."""
    base = re.sub(r"[^0-9A-Za-z_.-]", "_", str(name))[:80].lstrip(".") or "_"
    stem, k = base, 1
    while stem.lower() in taken:
        k += 1
        stem = f"{base}~{k}"
    taken.add(stem.lower())
    return stem


def narrow(a) -> np.ndarray:
    """Integer arrays in the smallest of int8/uint8/int16/int32/int64 of the same signedness
    family that holds them (int64 accumulators and constants usually fit int32); bool -> uint8."""
    a = np.asarray(a)
    if a.dtype == np.bool_:
        return a.astype(np.uint8)
    if a.dtype.kind not in "iu" or a.dtype.itemsize <= 4 and a.dtype.itemsize != 8:
        return a
    lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
    for dt in (np.int32,):
        if np.iinfo(dt).min <= lo and hi <= np.iinfo(dt).max:
            return a.astype(dt)
    return a


def table_rows(use_table, thresholds):
    """Indices of the classes whose threshold row is read (use_table set), or None when none is;
    every row when the table is shared (1-D)."""
    t = np.asarray(thresholds)
    if t.ndim < 2:
        return np.arange(1) if np.any(use_table) else None
    rows = np.nonzero(np.broadcast_to(np.asarray(use_table).reshape(-1), (t.shape[0],)))[0]
    return rows if rows.size else None


def const_encoding(op, key):
    """How a constant's words read: float32 bit patterns (dequantize tables), order-preserving keys of
    float32 bit patterns (quantize thresholds), else by dtype (None)."""
    if op == "dequantize_lut" and key == "table":
        return "float32-bits"
    if op == "quantize_thr" and key == "thresholds":
        return "float32-order-key"
    return None


def _layout(shape, what):
    if what == "activation" and len(shape) == 4:
        return "NCHW row-major"
    if what == "activation" and len(shape) == 3:
        return "NCL row-major"
    return "row-major"


def write_vectors(program, inputs, out_dir, fmt="mem", force=False) -> dict:
    """Run the integer program on `inputs`, write tensors/ and consts/ files and manifest.json.

    out_dir must be empty or new; with `force`, only the files an earlier run wrote there are
    replaced (files.OutputDir). File names are derived from tensor names and never collide."""
    from ..files import OutputDir, npy_bytes

    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = OutputDir(out_dir, force)
    _, env = program.run(*inputs, keep=True)
    files, tensors, layers = [], {}, []
    pending = []  # (relative file name, array, format) written once every name is known
    taken = {"tensors": set(), "consts": set()}

    def put(rel, a, encoding=None, **info):
        a = narrow(a)
        pending.append((rel + ".npy", a, "npy", None, None))
        entry = {"npy": rel + ".npy", "shape": list(a.shape), "dtype": str(a.dtype), **info}
        if fmt != "npy":
            width = M.word_width(a)
            enc = encoding or M.encoding_of(a)
            pending.append((rel + "." + fmt, a, fmt, enc, info.get("layout", "row-major")))
            entry.update({fmt: rel + "." + fmt, "width": width, "count": int(a.size), "encoding": enc,
                          "signed": enc == "twos-complement"})
        if a.dtype.kind == "f" or encoding == "float32-bits":
            entry["note"] = "float32: memory files hold the IEEE-754 bit patterns"
        elif encoding == "float32-order-key":
            entry["note"] = ("order-preserving keys of float32 bit patterns: bits if bits >= 0, else "
                             "-(bits & 0x7fffffff) - 1, as two's-complement words")
        files.append(entry)
        return entry

    def tensor(name):
        if name in tensors:
            return tensors[name]["npy"]
        v = env.get(name)
        if not isinstance(v, np.ndarray):
            return None
        e = put(f"tensors/{file_stem(name, taken['tensors'])}", v, tensor=name, kind="activation", layout=_layout(v.shape, "activation"))
        tensors[name] = e
        return e["npy"]

    for name in program.inputs:
        tensor(name)
    for i, node in enumerate(program.nodes):
        ins = []
        for r in node.inputs:
            for t in (r if isinstance(r, list) else [r]):
                if isinstance(t, str):
                    f = tensor(t)
                    if f:
                        ins.append({"tensor": t, "file": f})
        outf = tensor(node.output)
        consts = {}
        for k, v in node.consts.items():
            if v is None:
                continue
            a = np.asarray(v)
            if a.dtype.kind not in "iub":
                continue
            extra = {}
            if k == "thresholds" and "use_table" in node.consts:
                rows = table_rows(node.consts["use_table"], a)
                if rows is None:
                    continue  # no class uses its table: no words to write
                if rows.size < a.shape[0]:
                    a, extra = a[rows], {"rows": rows.tolist()}
            e = put(f"consts/{file_stem(f'{i:03d}_{node.name}_{k}', taken['consts'])}", a,
                    encoding=const_encoding(node.op, k), node=node.name, const=k, kind="constant",
                    layout=_layout(a.shape, "constant") if not extra else "row-major, the classes listed in rows",
                    **extra)
            consts[k] = e["npy"]
        attrs = {k: v for k, v in node.attrs.items() if isinstance(v, (int, str, bool, list, type(None)))
                 and not (isinstance(v, list) and any(isinstance(x, float) for x in _flat(v)))}
        layers.append({"index": i, "name": node.name, "op": node.op, "inputs": ins,
                       "output": {"tensor": node.output, "file": outf}, "consts": consts, "attrs": attrs})
    manifest = {"format": "qgolden-vectors", "version": 1, "memory_format": fmt,
                "engine": program.profile.get("engine"), "isa": program.profile.get("isa"),
                "program_inputs": list(program.inputs),
                "notes": "hex words, one per line, row-major, after a header line naming width, count, encoding "
                         "(twos-complement, unsigned, float32-bits: IEEE-754 patterns, float32-order-key), dtype, "
                         "shape and layout; activations NCHW (NCL for 1-D) row-major as the program computes them; "
                         "threshold rows only for the classes that read them (rows)",
                "layers": layers, "files": files}
    out.plan([rel for rel, _, _, _, _ in pending] + ["manifest.json"])
    writers = {"mem": M.write_mem, "hex": M.write_hex, "coe": M.write_coe}
    for rel, a, kind, enc, layout in pending:
        if kind == "npy":
            out.write(rel, npy_bytes(a))
        else:
            (out.path / rel).parent.mkdir(parents=True, exist_ok=True)
            writers[kind](out.path / rel, a, M.word_width(a), encoding=enc, layout=layout)
            out.written.append(rel)
    out.write("manifest.json", json.dumps(manifest, indent=1, default=_jd))
    out.finish()
    return manifest


def _flat(v):
    for x in v:
        if isinstance(x, list):
            yield from _flat(x)
        else:
            yield x


def _jd(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)
