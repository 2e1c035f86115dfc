"""The integer program: a graph of integer ops, their constants and parameters, as data.

A program is saved as one `.qgp` file: a zip (NumPy `.npz`) holding `program.json`
(nodes, tensors, profile) and one array per constant. Loading uses
`allow_pickle=False` and never imports torch.
"""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FORMAT = "qgolden-program"
VERSION = 1


class ProgramError(Exception):
    """A program file is missing, corrupt, or of another version."""


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
        path = Path(path)
        with zipfile.ZipFile(buf, "a") as z:
            z.writestr("program.json", json.dumps(doc, indent=1, default=_json_default))
        path.write_bytes(buf.getvalue())

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


def load(path) -> Program:
    """Load a `.qgp` file (NumPy only; no pickle)."""
    path = Path(path)
    if not path.exists():
        raise ProgramError(f"{path}: no such file")
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            if "program.json" not in names:
                raise ProgramError(f"{path}: not a qgolden program (no program.json inside)")
            doc = json.loads(z.read("program.json"))
        data = np.load(path, allow_pickle=False)
        arrays = {k: data[k] for k in data.files}
    except zipfile.BadZipFile as e:
        raise ProgramError(f"{path}: not a qgolden program or truncated ({e})") from None
    except (OSError, ValueError, EOFError, KeyError) as e:
        raise ProgramError(f"{path}: corrupt program file ({e})") from None
    if doc.get("format") != FORMAT:
        raise ProgramError(f"{path}: not a qgolden program")
    if doc.get("version") != VERSION:
        raise ProgramError(f"{path}: program version {doc.get('version')}, this qgolden reads {VERSION}")
    nodes = []
    for nd in doc["nodes"]:
        consts = {k: (None if v is None else arrays[v]) for k, v in nd["consts"].items()}
        nodes.append(Node(nd["name"], nd["op"], nd["inputs"], nd["output"], nd["attrs"], consts,
                          nd.get("source", ""), nd.get("torch_op", ""), nd.get("names", {})))
    tensors = {k: TensorInfo(**v) for k, v in doc["tensors"].items()}
    return Program(doc["inputs"], doc["outputs"], nodes, tensors, doc["profile"], doc.get("meta", {}))
