"""The integer program: a graph of integer ops, their constants and parameters, as data.

A program is saved as one `.qgp` file: a zip (NumPy `.npz`) holding `program.json`
(nodes, tensors, profile) and one `.npy` array per constant. A `.qgp` is data, never code:
loading reads the zip by hand within size limits (LIMITS), parses only the `.npy` members the
program references (plain numeric dtypes, no pickles), never imports torch, and hands the
result to the verifier (program_check.py) before anyone can run it.
"""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import UserError
from .files import write_atomic

FORMAT = "qgolden-program"
VERSION = 1

# What a .qgp may hold. A real program's program.json is a few hundred kB and its largest constant
# a few MB; these bounds are far above that and far below what could exhaust a machine.
LIMITS = {
    "file_bytes": 2 << 30,         # the .qgp itself
    "json_bytes": 64 << 20,        # program.json, uncompressed
    "member_bytes": 1 << 30,       # one constant, uncompressed
    "total_bytes": 2 << 30,        # every constant read, uncompressed
    "members": 100_000,            # entries in the zip
    "ratio": 200,                  # uncompressed / compressed, for members above ratio_floor bytes
    "ratio_floor": 1 << 20,
}
ARRAY_DTYPES = ("bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
                "float16", "float32", "float64")


class ProgramError(UserError):
    """A program file is missing, corrupt, of another version, or fails the verifier."""


@dataclass
class TensorInfo:
    """What flows on an edge: a quantized tensor (dtype uint8/int8 with scale and zero point),
    a float32 tensor, or an int (shape arithmetic)."""

    name: str
    dtype: str  # uint8 | int8 | float32 | int | list
    scale: float | None = None
    zero_point: int | None = None
    shape: list | None = None  # shape seen when the program was built (batch may differ)
    layout: list | None = None  # memory order of the dims, outermost first (None: contiguous)

    @property
    def quantized(self) -> bool:
        return self.dtype in ("uint8", "int8")


@dataclass
class Node:
    """One op: `output = OPS[op](*inputs, **attrs, **consts, profile=...)`.

    `source` names where it came from in the model (module path or graph node), and
    `torch_op` what PyTorch ran, for messages and explanations.
    """

    name: str
    op: str
    inputs: list
    output: str
    attrs: dict = field(default_factory=dict)
    consts: dict = field(default_factory=dict)
    source: str = ""
    torch_op: str = ""
    names: dict = field(default_factory=dict)  # parameter -> where the model keeps it (state_dict key)


@dataclass
class Program:
    inputs: list
    outputs: list
    nodes: list
    tensors: dict
    profile: dict
    meta: dict = field(default_factory=dict)

    # -- running ---------------------------------------------------------------
    def run(self, *inputs, trace: dict | None = None, keep: bool = False, accumulate: str | None = None):
        """Run with NumPy. Returns the output (a tuple when there are several).

        `trace`, if a dict, receives per node the op's intermediates; `keep=True`
        returns (outputs, env) with every tensor's value. `accumulate="torch"` computes the
        linear/conv sums with torch's kernels (same integers, faster; see
        numerics/accumulate.py), "numpy" without torch; None keeps the current setting.
        """
        from .engine import run_program
        from .numerics.accumulate import using_backend

        with using_backend(accumulate):
            return run_program(self, inputs, trace=trace, keep=keep)

    # -- files -----------------------------------------------------------------
    def save(self, path) -> None:
        arrays = {}
        nodes = []
        for i, n in enumerate(self.nodes):
            consts = {}
            for k, v in n.consts.items():
                if v is None:
                    consts[k] = None
                    continue
                key = f"c{i}_{k}"
                arrays[key] = np.asarray(v)
                consts[k] = key
            nodes.append({"name": n.name, "op": n.op, "inputs": n.inputs, "output": n.output,
                          "attrs": n.attrs, "consts": consts, "source": n.source, "torch_op": n.torch_op,
                          "names": n.names})
        doc = {
            "format": FORMAT, "version": VERSION,
            "inputs": self.inputs, "outputs": self.outputs, "profile": self.profile, "meta": self.meta,
            "tensors": {k: vars(t) for k, t in self.tensors.items()},
            "nodes": nodes,
        }
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        with zipfile.ZipFile(buf, "a") as z:
            z.writestr("program.json", json.dumps(doc, indent=1, default=_json_default))
        write_atomic(Path(path), buf.getvalue())

    # -- inspection ------------------------------------------------------------
    def producers(self) -> dict:
        return {n.output: n for n in self.nodes}

    def summary(self) -> str:
        lines = [f"program: {len(self.nodes)} ops, engine {self.profile.get('engine')} "
                 f"({self.profile.get('isa')})"]
        for n in self.nodes:
            t = self.tensors.get(n.output)
            q = f" s={t.scale:.6g} zp={t.zero_point}" if t is not None and t.quantized else ""
            lines.append(f"  {n.output:<28} = {n.op}({', '.join(n.inputs)}){q}")
        return "\n".join(lines)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not serialisable: {type(o).__name__}")


def is_program_file(path) -> bool:
    """A qgolden program by its content (a zip holding program.json), whatever the file's name."""
    try:
        with zipfile.ZipFile(path) as z:
            return "program.json" in z.namelist()
    except Exception:  # any unreadable file is simply not a program
        return False


def load(path, verify: bool = True) -> Program:
    """Load a `.qgp` file (NumPy only; no pickle), within LIMITS, and verify it (program_check).

    Every failure is a ProgramError naming the file (and the node and op when it is about one)."""
    path = Path(path)
    if not path.exists():
        raise ProgramError(f"{path}: no such file")
    if not path.is_file():
        raise ProgramError(f"{path}: not a file")
    if path.stat().st_size > LIMITS["file_bytes"]:
        raise ProgramError(f"{path}: {path.stat().st_size} bytes, more than a program may have "
                           f"({LIMITS['file_bytes']})")
    doc, arrays = read_program_file(path)
    from .program_check import check_document

    check_document(doc, arrays, str(path))
    nodes = []
    for nd in doc["nodes"]:
        consts = {k: (None if v is None else arrays[v]) for k, v in nd["consts"].items()}
        nodes.append(Node(nd["name"], nd["op"], nd["inputs"], nd["output"], nd["attrs"], consts,
                          nd.get("source", ""), nd.get("torch_op", ""), nd.get("names", {})))
    tensors = {k: TensorInfo(**v) for k, v in doc["tensors"].items()}
    prog = Program(doc["inputs"], doc["outputs"], nodes, tensors, doc["profile"], doc.get("meta", {}))
    if verify:
        from .program_check import check_program

        check_program(prog, str(path))
    prog.origin = str(path)
    return prog


def read_program_file(path) -> tuple:
    """(program.json as a dict, {const key: array}) of a .qgp, reading only the members program.json
    references, each within LIMITS; ProgramError for anything else."""
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            if len(infos) > LIMITS["members"]:
                raise ProgramError(f"{path}: {len(infos)} zip entries, more than a program may have")
            by_name = {}
            for info in infos:
                by_name.setdefault(info.filename, info)
            if "program.json" not in by_name:
                raise ProgramError(f"{path}: not a qgolden program (no program.json inside)")
            raw = _read_member(z, by_name["program.json"], LIMITS["json_bytes"], path)
            try:
                doc = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError) as e:
                raise ProgramError(f"{path}: program.json is not valid JSON ({str(e).splitlines()[0][:120]})") from None
            if not isinstance(doc, dict):
                raise ProgramError(f"{path}: program.json is not a JSON object")
            if doc.get("format") != FORMAT:
                raise ProgramError(f"{path}: not a qgolden program (format {str(doc.get('format'))[:40]!r})")
            if doc.get("version") != VERSION:
                raise ProgramError(f"{path}: program version {str(doc.get('version'))[:20]}, this qgolden reads {VERSION}")
            arrays, total = {}, 0
            for key in _const_keys(doc, path):
                info = by_name.get(key + ".npy")
                if info is None:
                    raise ProgramError(f"{path}: constant {key!r} is referenced but not in the file")
                if key in arrays:
                    continue
                a = _parse_npy(_read_member(z, info, LIMITS["member_bytes"], path), f"{path}: constant {key!r}")
                total += a.nbytes
                if total > LIMITS["total_bytes"]:
                    raise ProgramError(f"{path}: constants larger than {LIMITS['total_bytes']} bytes in all")
                arrays[key] = a
            return doc, arrays
    except ProgramError:
        raise
    except MemoryError:
        raise ProgramError(f"{path}: too large to read into memory") from None
    except Exception as e:  # zipfile, zlib and struct raise many types on a corrupt archive
        msg = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise ProgramError(f"{path}: not a qgolden program, or truncated or corrupt ({msg})") from None


def _const_keys(doc, path) -> list:
    """The zip members the program references: node constants (strings), in node order."""
    nodes = doc.get("nodes")
    if not isinstance(nodes, list):
        raise ProgramError(f"{path}: program.json has no list of nodes")
    keys = []
    for i, nd in enumerate(nodes):
        consts = nd.get("consts") if isinstance(nd, dict) else None
        if not isinstance(consts, dict):
            raise ProgramError(f"{path}: node #{i}: 'consts' is not an object")
        for k, v in consts.items():
            if v is None:
                continue
            if not isinstance(v, str) or not v.replace("_", "").isalnum() or not v.isascii() or len(v) > 200:
                raise ProgramError(f"{path}: node #{i}: constant {str(k)[:40]!r} names no array member")
            keys.append(v)
    return keys


def _read_member(z, info, limit, path) -> bytes:
    """One member's bytes, refusing it before reading if its declared size or compression ratio
    is out of bounds (zipfile never returns more than the declared size, and checks the CRC)."""
    if info.file_size > limit:
        raise ProgramError(f"{path}: member {info.filename[:60]!r} is {info.file_size} bytes, over the limit of {limit}")
    if info.file_size > LIMITS["ratio_floor"] and info.file_size > LIMITS["ratio"] * max(info.compress_size, 1):
        raise ProgramError(f"{path}: member {info.filename[:60]!r} expands {info.file_size} / {info.compress_size} "
                           "times, more than a program's constants can")
    with z.open(info) as f:
        data = f.read(info.file_size + 1)
    if len(data) != info.file_size:
        raise ProgramError(f"{path}: member {info.filename[:60]!r} is not the size its header declares")
    return data


def _parse_npy(data: bytes, where: str) -> np.ndarray:
    """A .npy member as an array: a plain numeric dtype, a shape matching the bytes; no pickles."""
    f = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"npy version {version}")
    except ValueError as e:
        raise ProgramError(f"{where}: not a .npy array ({str(e).splitlines()[0][:100]})") from None
    if dtype.name not in ARRAY_DTYPES or dtype.hasobject or dtype.fields is not None:
        raise ProgramError(f"{where}: dtype {dtype.str} is not a plain numeric type")
    if not all(isinstance(d, int) and d >= 0 for d in shape) or len(shape) > 8:
        raise ProgramError(f"{where}: bad shape {shape}")
    count = 1
    for d in shape:
        count *= d
    body = data[f.tell():]
    if count * dtype.itemsize != len(body):
        raise ProgramError(f"{where}: shape {tuple(shape)} needs {count * dtype.itemsize} bytes, the member holds {len(body)}")
    a = np.frombuffer(body, dtype=dtype, count=count)
    a = a.reshape(shape[::-1]).T if fortran else a.reshape(shape)
    return np.array(a)  # an owned, writeable copy
