"""Turn what the user hands us (a live module, a file, a builder function) into a torch module."""
from __future__ import annotations

import importlib.util
import sys
import zipfile
from pathlib import Path

from . import ImportErrorQ

PICKLE_HELP = ("a pickled module runs code when it is loaded, so qgolden loads pickles only with "
               "--trust-pickle (trust_pickle=True in Python), for files you trust. Safer: save the model "
               "as TorchScript (torch.jit.save(torch.jit.script(model), path)) or pass a builder function "
               "'file.py:function' that returns the quantized model")


def load_module(spec, trust_pickle: bool = False):
    """Return (torch module, where) for a module or a path spec.

    Accepts: an nn.Module / ScriptModule; 'file.py:function' (calls the function, which returns the
    quantized model); a TorchScript file; a pickled module (torch.save) with trust_pickle.
    """
    import torch

    if isinstance(spec, torch.nn.Module) or isinstance(spec, torch.jit.ScriptModule):
        return spec, type(spec).__name__
    spec = str(spec)
    if ".py:" in spec or spec.endswith(".py"):
        return _from_builder(spec), spec
    path = Path(spec)
    if not path.exists():
        raise ImportErrorQ(f"{spec}: no such file")
    if path.suffix == ".onnx":  # ONNX models are lowered by importers/onnx.py, never loaded as torch modules
        raise ImportErrorQ(f"{spec}: an ONNX model; lower it with --engine onnxruntime or onnx-reference")
    if path.is_dir():
        raise ImportErrorQ(f"{spec}: is a directory, not a model file")
    if path.stat().st_size == 0:
        raise ImportErrorQ(f"{spec}: empty file, not a model")
    if _is_torchscript(path):
        try:
            m = torch.jit.load(str(path), map_location="cpu")
        except Exception as e:  # torch raises RuntimeError with long C++ traces
            raise ImportErrorQ(f"{spec}: TorchScript file could not be loaded (truncated or corrupt?): "
                               f"{_first_line(e)}") from None
        return m.eval(), spec
    if zipfile.is_zipfile(path) or _looks_like_pickle(path):
        if _is_pt2(path):  # torch.export / PT2E: importers/pt2e.py (registers quantized_decomposed first)
            from .pt2e import to_graph_module

            return to_graph_module(spec)
        if not trust_pickle:
            raise ImportErrorQ(f"{spec}: is a pickled torch file (torch.save). {PICKLE_HELP}")
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=False)
        except Exception as e:
            msg = _first_line(e)
            hint = ""
            if "conv" in msg.lower() or "packed" in msg.lower() or "setstate" in msg.lower():
                hint = (" torch 2.13 cannot unpickle quantized conv modules saved whole; save the model as "
                        "TorchScript (torch.jit.save(torch.jit.script(model), path)) or pass a builder "
                        "function 'file.py:function' that rebuilds it and loads its state_dict")
            raise ImportErrorQ(f"{spec}: the pickle could not be loaded: {msg}.{hint}") from None
        if isinstance(obj, dict):
            raise ImportErrorQ(f"{spec}: holds a state_dict, not a model. Write a builder function "
                               "'file.py:function' that builds the quantized model and loads this state_dict")
        if not isinstance(obj, torch.nn.Module):
            raise ImportErrorQ(f"{spec}: holds a {type(obj).__name__}, not a torch module")
        try:  # torch 2.13 unpickles quantized conv modules half-built (no _modules): detect it here
            for _ in obj.named_modules():
                pass
            obj.eval()
        except Exception as e:
            raise ImportErrorQ(f"{spec}: the unpickled model is broken ({_first_line(e)}). torch 2.13 cannot "
                               "reload pickled quantized conv modules; save the model as TorchScript "
                               "(torch.jit.save(torch.jit.script(model), path)) or pass a builder function "
                               "'file.py:function' that rebuilds it and loads its state_dict") from None
        return obj, spec
    with open(path, "rb") as f:
        if f.read(2) == b"PK":
            raise ImportErrorQ(f"{spec}: a zip archive that cannot be read: truncated or corrupt model file")
    raise ImportErrorQ(f"{spec}: not a model file (expected TorchScript, a torch.save pickle with "
                       "--trust-pickle, a .qgp program, or file.py:function)")


def _first_line(e) -> str:
    s = str(e).strip().splitlines()
    return s[0] if s else type(e).__name__


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.split("/", 1)[-1].startswith("code/") for n in names) or \
        any(n.endswith("constants.pkl") for n in names)


def _is_pt2(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return any("serialized_exported_program" in n or n.endswith("models/model.json") for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _looks_like_pickle(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(2)
    return head[:1] == b"\x80"


def _from_builder(spec: str):
    import torch

    file, _, fn = spec.rpartition(":") if ".py:" in spec else (spec, ":", "build")
    path = Path(file)
    if not path.exists():
        raise ImportErrorQ(f"{spec}: no such file {file}")
    name = f"_qgolden_builder_{abs(hash(str(path.resolve())))}"
    mod_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(mod_spec)
    sys.modules[name] = module
    try:
        mod_spec.loader.exec_module(module)
    except Exception as e:
        raise ImportErrorQ(f"{file}: importing it failed: {type(e).__name__}: {_first_line(e)}") from None
    f = getattr(module, fn, None)
    if f is None or not callable(f):
        raise ImportErrorQ(f"{spec}: {file} has no function {fn!r}")
    try:
        m = f()
    except Exception as e:
        raise ImportErrorQ(f"{spec}: the builder function raised {type(e).__name__}: {_first_line(e)}") from None
    if not isinstance(m, torch.nn.Module):
        raise ImportErrorQ(f"{spec}: the builder returned a {type(m).__name__}, not a torch module")
    return m.eval()
