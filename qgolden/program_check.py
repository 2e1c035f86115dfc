"""The `.qgp` verifier: what a program file must be before qgolden runs, exports or explains it.

`ir.load` runs it on every load and `qgolden check F.qgp` runs it alone. It guarantees:
  - schema: the keys and JSON types of program.json, format and version (ir.FORMAT, ir.VERSION);
  - a known profile: engine (numerics.profile.ALL_ENGINES), CPU class (cpu.TAGS);
  - known ops whose attributes and constants match the op's signature: every op in qgolden/ops is
    a function `op(*inputs, **attrs, **consts, profile, trace)`, so its parameters are its schema
    (the count of inputs, the names allowed, the names required);
  - a well-formed graph: unique node names, every tensor defined once and before it is used,
    every program output defined;
  - constants of the dtype, range and shape their op needs: int8 weights (integral, in
    [-128, 127]), scales finite and > 0, zero points integers in their tensor's dtype range,
    every float finite, geometry (kernel, stride, padding, dilation, groups, sizes) in bounds;
  - names (nodes, tensors) from [A-Za-z0-9_.:/-], descriptive text printable ASCII without
    quotes, backslashes, backticks, '$' or '<';
  - sizes within ir.LIMITS (checked while reading, ir.read_program_file).
Each failure is a ProgramError of one line: the file, the node and op when it is about one, what is wrong.
"""
from __future__ import annotations

import inspect
import math
import re

import numpy as np

from . import ops
from .cpu import TAGS
from .ir import FORMAT, VERSION, ProgramError
from .numerics.profile import ALL_ENGINES

NAME = re.compile(r"[A-Za-z0-9_.:/\-]{1,200}")  # "/" for ONNX names (/conv1/Conv_output_0)
TEXT = re.compile(r"[ !#%&()*+,\-./0-9:;=>?@A-Z\[\]^_a-z{|}~]{0,400}")
TENSOR_DTYPES = ("uint8", "int8", "int32", "int64", "float32", "int", "list", "bool")
DTYPE_RANGE = {"uint8": (0, 255), "int8": (-128, 127), "int32": (-(1 << 31), (1 << 31) - 1)}
ATTR_DTYPES = ("uint8", "int8", "int32", "float32")
MAX_RANK = 8
MAX_ELEMENTS = 1 << 31
GEOMETRY = {"kernel_size": 1, "stride": 1, "dilation": 1, "groups": 1, "padding": 0, "output_size": 0,
            "size": 0}  # parameter -> smallest value allowed
MAX_GEOMETRY = 1 << 20
MAX_SCALE_FACTOR = 1024.0
# flags without a default in some op's signature (so the signature cannot say they are bool)
BOOL_PARAMS = frozenset({"relu", "ceil_mode", "count_include_pad", "keepdim", "per_channel", "channels_last"})
INT8_WEIGHT_OPS = ("linear", "conv", "linear_acc", "conv_acc")
DOC_KEYS = {"format", "version", "inputs", "outputs", "profile", "meta", "tensors", "nodes"}
NODE_KEYS = {"name", "op", "inputs", "output", "attrs", "consts", "source", "torch_op", "names"}
TENSOR_KEYS = {"name", "dtype", "scale", "zero_point", "shape", "layout"}


def _fail(where, msg):
    raise ProgramError(f"{where}: {msg}")


# -- the document (program.json) --------------------------------------------------------------------

def check_document(doc: dict, arrays: dict, where: str) -> None:
    """Schema, names, profile and graph of program.json; `arrays` are the constants read."""
    if doc.get("format") != FORMAT or doc.get("version") != VERSION:
        _fail(where, "not a qgolden program of version %d" % VERSION)
    extra = set(doc) - DOC_KEYS
    if extra:
        _fail(where, f"unknown key {sorted(extra)[0][:40]!r} in program.json")
    for k in ("inputs", "outputs", "nodes"):
        if not isinstance(doc.get(k), list):
            _fail(where, f"program.json: {k!r} is not a list")
    for k in ("profile", "tensors"):
        if not isinstance(doc.get(k), dict):
            _fail(where, f"program.json: {k!r} is not an object")
    if not isinstance(doc.get("meta", {}), dict):
        _fail(where, "program.json: 'meta' is not an object")
    check_profile(doc["profile"], where)
    _check_meta(doc.get("meta", {}), where)
    for name, t in doc["tensors"].items():
        _check_tensor(name, t, where)
    defined = set()
    for i, x in enumerate(doc["inputs"]):
        if not isinstance(x, str) or not NAME.fullmatch(x):
            _fail(where, f"program input #{i}: not a name of [A-Za-z0-9_.:/-]")
        if x in defined:
            _fail(where, f"program input {x} is listed twice")
        if x not in doc["tensors"]:
            _fail(where, f"program input {x} has no tensor entry")
        defined.add(x)
    names = set()
    for i, nd in enumerate(doc["nodes"]):
        _check_node_doc(i, nd, arrays, where)
        label = f"node {nd['name']} (op {nd['op']})"
        if nd["name"] in names:
            _fail(where, f"{label}: a second node of this name")
        names.add(nd["name"])
        for ref in _refs(nd["inputs"]):
            if ref not in defined:
                _fail(where, f"{label}: input {ref} is not defined before it is used")
        if nd["output"] in defined:
            _fail(where, f"{label}: output {nd['output']} is already defined")
        defined.add(nd["output"])
    for ref in _refs(doc["outputs"], depth_limit=4, where=where):
        if ref not in defined:
            _fail(where, f"program output {ref} is not computed by any node")
    if not doc["outputs"]:
        _fail(where, "the program has no outputs")


def check_profile(profile: dict, where: str) -> None:
    if not isinstance(profile, dict):
        _fail(where, "profile is not an object")
    engine, isa = profile.get("engine"), profile.get("isa")
    if engine not in ALL_ENGINES:
        _fail(where, f"profile: unknown engine {str(engine)[:40]!r}")
    if isa not in TAGS:
        _fail(where, f"profile: unknown CPU class {str(isa)[:40]!r}")
    if profile.get("vector_width") not in (16, 32, 64):
        _fail(where, f"profile: vector_width {str(profile.get('vector_width'))[:20]} is not 16, 32 or 64")
    nt = profile.get("num_threads")
    if not _is_int(nt) or not 1 <= nt <= 4096:
        _fail(where, "profile: num_threads is not an integer in [1, 4096]")
    extra = set(profile) - {"engine", "isa", "vector_width", "num_threads"}
    if extra:
        _fail(where, f"profile: unknown key {sorted(extra)[0][:40]!r}")


def _check_meta(meta: dict, where: str) -> None:
    if meta.get("returns", "tensor") not in ("tensor", "tuple"):
        _fail(where, "meta: 'returns' is not 'tensor' or 'tuple'")
    for v in _leaves(meta):
        if isinstance(v, float) and not math.isfinite(v):
            _fail(where, "meta: a number that is not finite")


def _check_tensor(name, t, where):
    if not isinstance(name, str) or not NAME.fullmatch(name):
        _fail(where, "a tensor name outside [A-Za-z0-9_.:/-] (or longer than 200)")
    if not isinstance(t, dict) or set(t) - TENSOR_KEYS or t.get("name") != name:
        _fail(where, f"tensor {name}: malformed entry")
    dt = t.get("dtype")
    if dt not in TENSOR_DTYPES:
        _fail(where, f"tensor {name}: unknown dtype {str(dt)[:20]!r}")
    scale, zp = t.get("scale"), t.get("zero_point")
    if dt in ("uint8", "int8"):
        if not _is_real(scale) or not (math.isfinite(scale) and scale > 0):
            _fail(where, f"tensor {name}: scale {scale!r:.40} is not a finite number > 0")
        lo, hi = DTYPE_RANGE[dt]
        if not _is_int(zp) or not lo <= zp <= hi:
            _fail(where, f"tensor {name}: zero point {zp!r:.40} is not an integer in [{lo}, {hi}] ({dt})")
    else:
        if scale is not None and (not _is_real(scale) or not math.isfinite(scale)):
            _fail(where, f"tensor {name}: scale is not a finite number")
        if zp is not None and not _is_int(zp):
            _fail(where, f"tensor {name}: zero point is not an integer")
    shape = t.get("shape")
    if shape is not None:
        if not isinstance(shape, list) or len(shape) > MAX_RANK or \
                not all(_is_int(d) and 0 <= d <= MAX_ELEMENTS for d in shape) or _prod(shape) > MAX_ELEMENTS:
            _fail(where, f"tensor {name}: shape is not a list of at most {MAX_RANK} sizes with at most "
                         f"{MAX_ELEMENTS} elements")
    layout = t.get("layout")
    if layout is not None:
        if not isinstance(layout, list) or not all(_is_int(d) for d in layout) or \
                sorted(layout) != list(range(len(layout))) or (shape is not None and len(layout) != len(shape)):
            _fail(where, f"tensor {name}: layout is not a permutation of its dims")


def _check_node_doc(i, nd, arrays, where):
    if not isinstance(nd, dict) or set(nd) - NODE_KEYS or not {"name", "op", "inputs", "output"} <= set(nd):
        _fail(where, f"node #{i}: malformed entry")
    name, op = nd["name"], nd["op"]
    if not isinstance(name, str) or not NAME.fullmatch(name):
        _fail(where, f"node #{i}: name outside [A-Za-z0-9_.:/-] (or longer than 200)")
    if not isinstance(op, str) or op not in ops.names():
        _fail(where, f"node {name}: unknown op {str(op)[:40]!r}")
    label = f"node {name} (op {op})"
    if not isinstance(nd["output"], str) or not NAME.fullmatch(nd["output"]):
        _fail(where, f"{label}: output name outside [A-Za-z0-9_.:/-]")
    if not isinstance(nd["inputs"], list):
        _fail(where, f"{label}: inputs is not a list")
    for x in _leaves(nd["inputs"], depth_limit=3, where=f"{where}: {label}"):
        if isinstance(x, str) and not NAME.fullmatch(x):
            _fail(where, f"{label}: an input name outside [A-Za-z0-9_.:/-]")
        if isinstance(x, float) and not math.isfinite(x):
            _fail(where, f"{label}: an input literal that is not finite")
        if isinstance(x, dict):
            _fail(where, f"{label}: an input that is an object")
    for k in ("attrs", "consts", "names"):
        if not isinstance(nd.get(k, {}), dict):
            _fail(where, f"{label}: {k} is not an object")
    for k in ("source", "torch_op"):
        v = nd.get(k, "")
        if not isinstance(v, str) or not TEXT.fullmatch(v):
            _fail(where, f"{label}: {k} is not printable ASCII text without quotes, backslashes, backticks, $ or <")
    for k, v in nd.get("names", {}).items():
        if not isinstance(v, str) or not TEXT.fullmatch(v) or not TEXT.fullmatch(k):
            _fail(where, f"{label}: a state_dict name that is not printable ASCII text")
    for k, v in nd.get("consts", {}).items():
        if v is not None and v not in arrays:
            _fail(where, f"{label}: constant {k} is missing from the file")
    for v in _leaves(nd.get("attrs", {}), depth_limit=6, where=f"{where}: {label}"):
        if isinstance(v, str) and not TEXT.fullmatch(v):
            _fail(where, f"{label}: an attribute string that is not printable ASCII text")
        if isinstance(v, float) and not math.isfinite(v):
            _fail(where, f"{label}: an attribute that is not a finite number")
        if _is_int(v) and abs(v) > 1 << 62:
            _fail(where, f"{label}: an attribute integer out of the int64 range")


# -- the program: ops, signatures, constants ------------------------------------------------------

def check_program(prog, where: str) -> None:
    """Every node against its op's signature, and its constants against what the op needs."""
    for node in prog.nodes:
        _check_signature(node, where)
        _check_values(prog, node, where)


def op_schema(op: str) -> dict:
    """The op's parameters from its function signature: positional inputs (min, max or None for
    any number), keyword parameters allowed, keyword parameters required, their defaults."""
    sig = inspect.signature(ops.get(op))
    pos = [p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    var = any(p.kind == p.VAR_POSITIONAL for p in sig.parameters.values())
    kw = {p.name: p for p in sig.parameters.values() if p.kind == p.KEYWORD_ONLY and p.name not in ("profile", "trace")}
    return {"min_inputs": sum(p.default is p.empty for p in pos), "max_inputs": None if var else len(pos),
            "allowed": set(kw), "required": {n for n, p in kw.items() if p.default is p.empty},
            "defaults": {n: p.default for n, p in kw.items() if p.default is not p.empty}}


def _check_signature(node, where):
    s = op_schema(node.op)
    label = f"node {node.name} (op {node.op})"
    n = len(node.inputs)
    if n < s["min_inputs"] or (s["max_inputs"] is not None and n > s["max_inputs"]):
        want = s["min_inputs"] if s["max_inputs"] == s["min_inputs"] else \
            f"{s['min_inputs']} to {s['max_inputs'] if s['max_inputs'] is not None else 'any'}"
        _fail(where, f"{label}: {n} inputs, the op takes {want}")
    both = set(node.attrs) & set(node.consts)
    if both:
        _fail(where, f"{label}: {sorted(both)[0]} is both an attribute and a constant")
    given = set(node.attrs) | set(node.consts)
    unknown = given - s["allowed"]
    if unknown:
        _fail(where, f"{label}: the op has no parameter {sorted(unknown)[0][:40]!r}")
    missing = s["required"] - given
    if missing:
        _fail(where, f"{label}: parameter {sorted(missing)[0]!r} is missing")
    for k, v in node.attrs.items():
        d = s["defaults"].get(k, inspect.Parameter.empty)
        if (isinstance(d, bool) or k in BOOL_PARAMS) and not isinstance(v, bool):
            _fail(where, f"{label}: {k} is not true or false")


def _check_embedding_table(node, label, where):
    """A quantized embedding table: uint8 codes [N, D] below 2**bits, one scale and bias per row, float32
    (8-bit) or float16 (4-bit) as PyTorch's prepack stores them."""
    bits = node.attrs.get("bits", 8)
    if bits not in (4, 8):
        _fail(where, f"{label}: bits must be 4 or 8")
    codes = np.asarray(node.consts.get("codes"))
    if codes.dtype != np.uint8 or codes.ndim != 2 or 0 in codes.shape:
        _fail(where, f"{label}: codes must be a non-empty 2-D uint8 table, the file holds {codes.dtype} {codes.shape}")
    if bits == 4 and codes.size and codes.max() > 15:
        _fail(where, f"{label}: a 4-bit table holds a code above 15")
    want = np.float32 if bits == 8 else np.float16
    a = np.asarray(node.consts.get("scale_bias"))
    if a.dtype != want or a.shape != (codes.shape[0], 2):
        _fail(where, f"{label}: scale_bias must be {np.dtype(want).name} [{codes.shape[0]}, 2], the file holds "
              f"{a.dtype} {a.shape}")


def _check_values(prog, node, where):
    label = f"node {node.name} (op {node.op})"
    params = dict(node.attrs)
    params.update(node.consts)
    for k, v in params.items():
        if v is None:
            continue
        a = _as_array(v)
        if a is not None and a.dtype.kind == "f" and not np.isfinite(a).all():
            _fail(where, f"{label}: {k} holds a value that is not finite")
        if a is not None and a.dtype.kind == "O":
            if not all(_is_real(x) or x is None for x in _leaves(v, depth_limit=6, where=f"{where}: {label}")
                       if not isinstance(x, (str, dict))):
                _fail(where, f"{label}: {k} is not numeric")
            continue
        if (k.endswith("scale") or k.endswith("scales")) and a is not None:
            if a.dtype.kind not in "iuf" or a.size == 0 or not (a > 0).all():
                _fail(where, f"{label}: {k} must be finite numbers > 0")
        if (k.endswith("zero_point") or k.endswith("zero_points")) and a is not None:
            lo, hi = _zero_point_range(prog, node, k)
            if a.dtype.kind not in "iuf" or (a.dtype.kind == "f" and not (a == np.round(a)).all()):
                _fail(where, f"{label}: {k} must be integers")
            if a.size and (a.min() < lo or a.max() > hi):
                _fail(where, f"{label}: {k} must be in [{lo}, {hi}], got {a.min() if a.min() < lo else a.max()}")
        if k in GEOMETRY and a is not None:
            if a.dtype.kind not in "iu" or (a.size and (a.min() < GEOMETRY[k] or a.max() > MAX_GEOMETRY)):
                _fail(where, f"{label}: {k} must be integers in [{GEOMETRY[k]}, {MAX_GEOMETRY}]")
        if k == "scale_factor" and a is not None:
            if a.dtype.kind not in "iuf" or (a.size and (a.min() <= 0 or a.max() > MAX_SCALE_FACTOR)):
                _fail(where, f"{label}: scale_factor must be in (0, {MAX_SCALE_FACTOR:g}]")
        if k in ("dtype", "out_dtype") and v not in ATTR_DTYPES:
            _fail(where, f"{label}: {k} {str(v)[:20]!r} is not one of {', '.join(ATTR_DTYPES)}")
    if node.op == "embedding_bag":
        _check_embedding_table(node, label, where)
    w = node.consts.get("weight")
    if node.op in INT8_WEIGHT_OPS:
        w = np.asarray(w)
        if w.dtype != np.int8:
            _fail(where, f"{label}: weight must be int8 integers, the file holds {w.dtype}")
        if w.ndim not in (2, 3, 4, 5) or (node.op.startswith("linear") and w.ndim != 2) or 0 in w.shape:
            _fail(where, f"{label}: weight has shape {tuple(w.shape)}, not a {'linear' if 'linear' in node.op else 'conv'} weight")
        for k in ("weight_scale", "weight_zero_point"):
            c = node.consts.get(k)
            if c is not None and np.size(c) not in (1, w.shape[0]):
                _fail(where, f"{label}: {k} has {np.size(c)} values for {w.shape[0]} output channels")
        b = node.consts.get("bias")
        if b is not None and np.size(b) != w.shape[0]:
            _fail(where, f"{label}: bias has {np.size(b)} values for {w.shape[0]} output channels")
        g = node.attrs.get("groups", 1)
        if _is_int(g) and g >= 1 and w.shape[0] % g:
            _fail(where, f"{label}: {w.shape[0]} output channels do not split into {g} groups")


def _zero_point_range(prog, node, k) -> tuple:
    """The range of a zero point: its tensor's dtype (a_/b_/x_/in_: the inputs, out_: the output),
    weights int8, quant_min..quant_max where the op has them, else [-128, 255]."""
    def dtype_of(i):
        ref = node.inputs[i] if i < len(node.inputs) else None
        t = prog.tensors.get(ref) if isinstance(ref, str) else None
        return t.dtype if t is not None else None

    if k.startswith("weight"):
        dt = "int8"
    elif k.startswith("out"):
        t = prog.tensors.get(node.output)
        dt = node.attrs.get("out_dtype") or node.attrs.get("dtype") or (t.dtype if t is not None else None)
    elif k.startswith("b_"):
        dt = dtype_of(1)
    elif k in ("zero_point",) and node.op in ("quantize", "xnnpack_quantize", "qdq_quantize"):
        dt = node.attrs.get("dtype", "uint8" if node.op == "quantize" else "int8")
    else:
        dt = dtype_of(0)
    if "quant_min" in node.attrs and "quant_max" in node.attrs and not k.startswith(("a_", "b_")):
        lo, hi = node.attrs["quant_min"], node.attrs["quant_max"]
        if _is_int(lo) and _is_int(hi):
            return lo, hi
    return DTYPE_RANGE.get(dt, (-128, 255))


def check_request(prog, engine, isa, where: str) -> None:
    """`--engine` / `--isa` given with a program file must be the program's own (a .qgp replays the
    arithmetic it was built for; it cannot be re-targeted)."""
    for what, asked, have, known in (("engine", engine, prog.profile.get("engine"), ALL_ENGINES),
                                     ("isa", isa, prog.profile.get("isa"), TAGS)):
        if asked is None:
            continue
        if asked not in known:
            raise ProgramError(f"--{what} {asked!r}: unknown; choose one of {', '.join(known)}")
        if asked != have:
            raise ProgramError(f"{where}: the program was built for {what} {have}; --{what} {asked} cannot "
                               "change it (lower the model again for another target)")


# -- helpers ----------------------------------------------------------------------------------------

def _as_array(v):
    """v as a NumPy array, or None for a dict or a string; ragged lists give an object array."""
    if isinstance(v, (dict, str)):
        return None
    try:
        return np.asarray(v)
    except (ValueError, TypeError, OverflowError):
        return np.asarray(list(_leaves(v)), dtype=object)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _prod(xs) -> int:
    p = 1
    for x in xs:
        p *= x
    return p


def _leaves(v, depth_limit=8, where="", _depth=0):
    """Every scalar inside nested lists and dicts (dict values), refusing nesting deeper than depth_limit."""
    if _depth > depth_limit:
        raise ProgramError(f"{where}: nested deeper than {depth_limit}")
    if isinstance(v, list):
        for x in v:
            yield from _leaves(x, depth_limit, where, _depth + 1)
    elif isinstance(v, dict):
        for x in v.values():
            yield from _leaves(x, depth_limit, where, _depth + 1)
    else:
        yield v


def _refs(v, depth_limit=3, where=""):
    """The tensor names a node's inputs (or the program's outputs) refer to."""
    return [x for x in _leaves(v, depth_limit, where) if isinstance(x, str)]
