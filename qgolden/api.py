"""Python API: lower a model to a program, run it, verify it against PyTorch."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import code_trusted
from .importers import ImportErrorQ
from .ir import Program, load
from .numerics.profile import conv_backend, linear_backend, make_profile


def _graph_module(module, where, example_inputs=None):
    """The FX graph of a live model: convert_fx output as is, an eager model traced by torch.fx."""
    import torch
    import torch.fx

    if isinstance(module, torch.fx.GraphModule):
        return module
    if isinstance(module, torch.jit.ScriptModule):
        from .importers.torchscript import script_to_graph_module

        ex = None if example_inputs is None else [_torchify(x) for x in example_inputs]
        return script_to_graph_module(module, where, ex)
    try:
        return torch.fx.symbolic_trace(module)
    except Exception as e:
        raise ImportErrorQ(f"{where}: torch.fx could not trace the model's forward "
                           f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). Save it as "
                           "TorchScript (torch.jit.trace) or convert it with convert_fx") from None


def lower(model_or_path, example_inputs=None, engine: str | None = None, isa: str | None = None,
          trust_pickle: bool = False, trust_code: bool = False, ort_opt_level: str = "all") -> Program:
    """Lower a quantized model (or a path: file.py:function, a program file, an .onnx file, and with
    trust_code=True a TorchScript file, .pt2 archive or pickle) to a Program.

    trust_code (old name trust_pickle; or QGOLDEN_TRUST_CODE=1): allow loading files that run code.

    engine: the torch.backends.quantized.engine the model runs under (default: the current one).
    isa: the target CPU class (qgolden.cpu: avx2, avx512, avx512_vnni, avx512_amx, arm64; default: this machine).
    example_inputs: a tuple of inputs; records shapes and quantized input dtypes.
    An ONNX model (.onnx path or onnx.ModelProto) lowers for engine onnxruntime (default; at
    ORT graph optimization level `ort_opt_level`) or onnx-reference, without torch.
    """
    from .importers.onnx import is_onnx, lower_onnx

    if is_onnx(model_or_path):
        return lower_onnx(model_or_path, engine, isa, ort_opt_level)
    import torch

    from .importers.fx import lower_graph_module
    from .importers.load import load_module
    from .torch_side import engine as engine_ctx
    from .torch_side import fx_intermediates

    trusted = code_trusted(trust_code, trust_pickle)
    if isinstance(model_or_path, os.PathLike):
        model_or_path = str(model_or_path)
    if isinstance(model_or_path, str) and _is_program_path(model_or_path):
        from .program_check import check_request

        prog = load(model_or_path)
        check_request(prog, engine, isa, model_or_path)
        return prog
    if _is_pt2e(model_or_path):
        return _lower_pt2e(model_or_path, example_inputs, engine, isa, trusted)
    engine = engine or torch.backends.quantized.engine
    from .importers.pt2e import PT2E_ENGINES

    if engine in PT2E_ENGINES:
        if isinstance(model_or_path, str) and ".py:" not in model_or_path:
            from pathlib import Path

            if not Path(model_or_path).exists():
                raise ImportErrorQ(f"{model_or_path}: no such file")
        raise ValueError(f"engine {engine!r} runs PT2E (torchao Q/DQ) graphs: convert_pt2e output, an "
                         "ExportedProgram or a .pt2 file; this model is not one")
    profile = make_profile(engine, isa)
    with engine_ctx(engine):
        module, where = load_module(model_or_path, trust_code=trusted)
        ex = None if example_inputs is None else _as_tuple(example_inputs)
        gm = _graph_module(module, where, ex)
        input_dtypes = {}
        if ex is not None:
            names = [n.name for n in gm.graph.nodes if n.op == "placeholder"]
            for nm, x in zip(names, ex):
                if isinstance(x, torch.Tensor) and x.is_quantized:
                    input_dtypes[nm] = "uint8" if x.dtype == torch.quint8 else "int8"
                elif (x.dtype in (torch.int64, torch.int32) if isinstance(x, torch.Tensor)
                      else np.asarray(x).dtype in (np.int64, np.int32)):
                    input_dtypes[nm] = "int64"  # embedding indices and offsets
        seen = {}
        if ex is not None:
            with torch.no_grad():
                _, seen = fx_intermediates(gm, [_torchify(x) for x in ex])
            seen = {k: v for k, v in seen.items() if isinstance(v, torch.Tensor)}
        program = lower_graph_module(gm, profile, where, input_dtypes, observed=seen)
    program._torch = (module, gm)
    return program


def _is_pt2e(obj) -> bool:
    """A PT2E / torchao model: ExportedProgram, a convert_pt2e GraphModule, or a .pt2 file."""
    import torch

    if isinstance(obj, torch.export.ExportedProgram):
        return True
    if isinstance(obj, torch.fx.GraphModule):
        from .importers.pt2e import is_pt2e_graph

        return is_pt2e_graph(obj)
    if isinstance(obj, (str,)) and ".py:" not in obj:
        from pathlib import Path

        from .importers.load import is_pt2

        p = Path(obj)
        return p.is_file() and is_pt2(p)
    return False


def _is_program_path(spec: str) -> bool:
    """A qgolden program file: by content, or named .qgp (so that a broken one is reported as such)."""
    from .importers.load import is_builder_spec
    from .ir import is_program_file

    if is_builder_spec(spec):
        return False
    return spec.lower().endswith(".qgp") or (Path(spec).is_file() and is_program_file(spec))


def _lower_pt2e(model, example_inputs, engine, isa, trusted=False):
    """Lower a PT2E Q/DQ graph for one of its runtimes (importers/pt2e.py)."""
    import torch

    from .errors import require_trust
    from .importers.load import PT2_RUNS

    if isinstance(model, str):
        require_trust(model, PT2_RUNS, trusted)
    from .importers.pt2e import PT2E_ENGINES, lower_pt2e, to_graph_module
    from .torch_side import fx_intermediates

    gm, where = to_graph_module(model, type(model).__name__ if not isinstance(model, str) else model)
    if engine is None:
        uint8 = any("quantize_per_tensor" in str(n.target) and "torch.uint8" in str(n.args)
                    for n in gm.graph.nodes if n.op == "call_function")
        engine = "x86-inductor" if uint8 else "pt2e-reference"
    if engine not in PT2E_ENGINES:
        raise ValueError(f"engine {engine!r} does not run PT2E (Q/DQ) graphs; choose one of "
                         f"{', '.join(PT2E_ENGINES)}")
    profile = make_profile(engine, isa)
    seen = {}
    if example_inputs is not None:
        ex = _as_tuple(example_inputs)
        with torch.no_grad():
            _, seen = fx_intermediates(gm, [_torchify(x) for x in ex])
        seen = {k: v for k, v in seen.items() if isinstance(v, torch.Tensor)}
    program = lower_pt2e(gm, profile, where, observed=seen)
    program._torch = (model, gm)
    return program


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _torchify(x):
    import torch

    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))


@dataclass
class LayerResult:
    name: str
    op: str
    elements: int
    mismatches: int
    max_abs_diff: int
    source: str = ""
    steps: dict = None  # {difference in quantization steps: elements}, when there are mismatches
    why: str = ""  # why they differ, when the reference is not an integer runtime


@dataclass
class Report:
    bit_exact: bool
    engine: str
    isa: str
    layers: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    # PT2E models: what the program was compared with, the float Q/DQ graph's own per-layer
    # differences (float summation order), and the float regions left between dq and q
    reference: str = ""
    qdq_layers: list = field(default_factory=list)
    float_regions: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def to_json(self) -> dict:
        d = {"bit_exact": self.bit_exact, "engine": self.engine, "isa": self.isa,
             "layers": [{k: v for k, v in asdict(l).items() if k not in ("source", "steps", "why")}
                        for l in self.layers],
             "outputs": self.outputs}
        if self.reference:
            d["reference"] = self.reference
            d["qdq_layers"] = [{k: v for k, v in asdict(l).items() if k != "source"} for l in self.qdq_layers]
            d["float_regions"] = self.float_regions
        if self.notes:
            d["notes"] = self.notes
        return d

    @property
    def first_mismatch(self):
        return next((l for l in self.layers if l.mismatches), None)


def _compare(a, b):
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        return int(max(a.size, b.size)), int(max(a.size, b.size)), -1
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        same = (a.astype(np.float32).view(np.int32) == b.astype(np.float32).view(np.int32))
        diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
        md = float(diff[~same].max()) if (~same).any() else 0
        return int(a.size), int((~same).sum()), md
    d = np.abs(a.astype(np.int64) - b.astype(np.int64))
    return int(a.size), int((d != 0).sum()), int(d.max()) if d.size else 0


def verify(model, *inputs, engine: str | None = None, isa: str | None = None, program: Program | None = None,
           trust_pickle: bool = False, trust_code: bool = False, ort_opt_level: str = "all") -> Report:
    """Run PyTorch (or the ONNX runtime) and the program on the same inputs; compare every
    quantized tensor and every output."""
    from .importers.onnx import is_onnx

    if is_onnx(model) or (program is not None and program.meta.get("format") == "onnx"):
        from .importers.onnx_verify import verify_onnx

        if program is None:
            program = lower(model, engine=engine, isa=isa, ort_opt_level=ort_opt_level)
        return verify_onnx(program, inputs)
    import torch

    from .torch_side import engine as engine_ctx
    from .torch_side import fx_intermediates, to_numpy

    if program is None:
        program = lower(model, example_inputs=inputs, engine=engine, isa=isa, trust_pickle=trust_pickle,
                        trust_code=trust_code)
    if program.meta.get("format") == "pt2e":
        from .importers.pt2e_verify import verify_pt2e

        return verify_pt2e(program, inputs)
    module, gm = program._torch
    eng = program.profile["engine"]
    with engine_ctx(eng):
        tin = [_torchify(x) for x in inputs]
        with torch.no_grad():
            if "onednn" in (linear_backend(program.profile), conv_backend(program.profile)):
                # oneDNN's int8 conv gives other integers on the first two calls of a fresh
                # primitive than on every later call (measured, torch 2.13 on AVX2): compare
                # against the steady state, which is what a deployed model computes
                for _ in range(2):
                    gm(*tin)
            out_t, seen = fx_intermediates(gm, tin)
            direct = module(*tin) if gm is not module else out_t
    out_q, env = program.run(*[to_numpy(x) for x in tin], keep=True)
    layers, outputs, ok = _compare_all(program, env, out_q, seen, direct)
    notes = []
    if not ok and "onednn" in (linear_backend(program.profile), conv_backend(program.profile)):
        # oneDNN can hand back other integers for the same input on a later call (torch 2.13 on
        # AVX2, seen rarely under load). If PyTorch itself changed, compare with its latest answer
        # and say so; if it did not, the mismatch stands.
        with engine_ctx(eng), torch.no_grad():
            out_t2, seen2 = fx_intermediates(gm, tin)
            direct2 = module(*tin) if gm is not module else out_t2
        changed = sum(int((to_numpy(seen[k]) != to_numpy(v)).sum()) for k, v in seen2.items()
                      if isinstance(v, torch.Tensor) and isinstance(seen.get(k), torch.Tensor)
                      and seen[k].shape == v.shape)
        if changed:
            layers, outputs, ok = _compare_all(program, env, out_q, seen2, direct2)
            notes.append(f"PyTorch's oneDNN kernels returned different integers for the same input on a "
                         f"repeated call ({changed} elements changed); compared with its latest call")
    rep = Report(ok, eng, program.profile["isa"], layers, outputs)
    rep.notes.extend(notes)
    return rep


def quantized_pairs(program, env, seen):
    """(node, ours, PyTorch's) for every quantized tensor of the program that PyTorch also computed
    (`seen`: FX node name -> torch value), as integer arrays."""
    import torch

    from .torch_side import to_numpy

    for node in program.nodes:
        info = program.tensors.get(node.output)
        if info is None or not info.quantized:
            continue
        t = seen.get(node.output)
        if isinstance(t, torch.Tensor):
            yield node, env[node.output], to_numpy(t)


def _compare_all(program, env, out_q, seen, direct):
    """(layers, outputs, bit_exact): every quantized tensor and every output against PyTorch's."""
    from .torch_side import to_numpy

    layers = []
    for node, ours, theirs in quantized_pairs(program, env, seen):
        n_el, mism, mad = _compare(ours, theirs)
        layers.append(LayerResult(node.name, node.op, n_el, mism, mad, node.source))
    outs_t = _flatten_outputs(to_numpy(direct))
    outs_q = _flatten_outputs(out_q)
    outputs = []
    for a, b in zip(outs_q, outs_t):
        n_el, mism, _ = _compare(a, b)
        outputs.append({"elements": n_el, "mismatches": mism})
    if len(outs_q) != len(outs_t):
        outputs.append({"elements": 0, "mismatches": 1})
    ok = all(l.mismatches == 0 for l in layers) and all(o["mismatches"] == 0 for o in outputs)
    return layers, outputs, ok


def _flatten_outputs(o):
    if isinstance(o, (tuple, list)):
        r = []
        for x in o:
            r.extend(_flatten_outputs(x))
        return r
    return [o]
