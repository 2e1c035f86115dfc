"""Python API: lower a model to a program, run it, verify it against PyTorch."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import code_trusted
from .importers import ImportErrorQ
from .ir import Program, load
from .numerics.profile import make_profile
from .verifiers import Report


def _graph_module(module, where, example_inputs=None):
    """The FX graph of a live model: convert_fx output as is, an eager model traced by torch.fx."""
    import torch
    import torch.fx

    if isinstance(module, torch.fx.GraphModule):
        return module
    if isinstance(module, torch.jit.ScriptModule):
        from .importers.torchscript import script_to_graph_module
        from .torch_side import as_tensor

        ex = None if example_inputs is None else [as_tensor(x) for x in example_inputs]
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
    from .torch_side import as_tensor, fx_intermediates

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
                _, seen = fx_intermediates(gm, [as_tensor(x) for x in ex])
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
    from .torch_side import as_tensor, fx_intermediates

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
            _, seen = fx_intermediates(gm, [as_tensor(x) for x in ex])
        seen = {k: v for k, v in seen.items() if isinstance(v, torch.Tensor)}
    program = lower_pt2e(gm, profile, where, observed=seen)
    program._torch = (model, gm)
    return program


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def verify(model, *inputs, engine: str | None = None, isa: str | None = None, program: Program | None = None,
           trust_pickle: bool = False, trust_code: bool = False, ort_opt_level: str = "all") -> Report:
    """Run PyTorch (or the ONNX runtime) and the program on the same inputs; compare every
    quantized tensor and every output (qgolden.verifiers)."""
    from .importers.onnx import is_onnx
    from .verifiers import verify_program

    if program is None:
        if is_onnx(model):
            program = lower(model, engine=engine, isa=isa, ort_opt_level=ort_opt_level)
        else:
            program = lower(model, example_inputs=inputs, engine=engine, isa=isa, trust_pickle=trust_pickle,
                            trust_code=trust_code)
    return verify_program(program, inputs)
