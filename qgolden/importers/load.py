"""Turn what the user hands us (a live module, a file, a builder function) into a torch module.

Trust model (README, "What runs code"): TorchScript archives (their __setstate__ methods run at
load), `.pt2` archives (torch.export.load unpickles their parts with weights_only=False) and
whole-module pickles run code when loaded, so they are loaded only with the code-trust opt-in
(errors.code_trusted). Without it a pickle is read only with torch's weights_only unpickler,
which cannot run code. A builder 'file.py:function' is Python the user names explicitly on the
command line and is run as asked; a builder is recognised by that spelling only, never by a
file's contents.
"""
from __future__ import annotations

import importlib.util
import sys
import zipfile
from pathlib import Path

from ..errors import code_trusted, require_trust
from . import ImportErrorQ

SAFER = ("Safer: a builder function 'file.py:function' that builds the quantized model and loads its "
         "state_dict, or a .qgp program")
TORCHSCRIPT_RUNS = "is a TorchScript archive; loading it runs the TorchScript code inside (its __setstate__ methods)"
PT2_RUNS = "is a torch.export (.pt2) archive; torch.export.load unpickles its parts with weights_only=False, which runs code"
PICKLE_RUNS = "is a pickled torch module (torch.save); unpickling a module runs code"


def is_builder_spec(spec: str) -> bool:
    """'file.py:function' or 'file.py': Python the user names as code to run."""
    return ".py:" in spec or spec.endswith(".py")


def load_module(spec, trust_pickle: bool = False, trust_code: bool = False):
    """Return (torch module, where) for a module or a path spec.

    Accepts: an nn.Module / ScriptModule; 'file.py:function' (calls the function, which returns the
    quantized model); with the code-trust opt-in (trust_code, or its old name trust_pickle, or
    QGOLDEN_TRUST_CODE=1): a TorchScript file, a .pt2 archive, a pickled module (torch.save).
    """
    import torch

    if isinstance(spec, torch.nn.Module) or isinstance(spec, torch.jit.ScriptModule):
        return spec, type(spec).__name__
    spec = str(spec)
    if is_builder_spec(spec):
        return _from_builder(spec), spec
    trusted = code_trusted(trust_code, trust_pickle)
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
        require_trust(spec, TORCHSCRIPT_RUNS, trusted)
        try:
            m = torch.jit.load(str(path), map_location="cpu")
        except Exception as e:  # torch raises RuntimeError with long C++ traces
            raise ImportErrorQ(f"{spec}: TorchScript file could not be loaded (truncated or corrupt?): "
                               f"{_first_line(e)}") from None
        return m.eval(), spec
    if _looks_like_pickle(path) or _is_torch_save_zip(path) or is_pt2(path):
        if is_pt2(path):  # torch.export / PT2E: importers/pt2e.py (registers quantized_decomposed first)
            require_trust(spec, PT2_RUNS, trusted)
            from .pt2e import to_graph_module

            return to_graph_module(spec)
        if not trusted:
            _refuse_pickle(spec, path)
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=False)
        except Exception as e:
            msg = _first_line(e)
            hint = ""
            if "conv" in msg.lower() or "packed" in msg.lower() or "setstate" in msg.lower():
                hint = (" torch 2.13 cannot unpickle quantized conv modules saved whole; pass a builder "
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
                               "reload pickled quantized conv modules; pass a builder function "
                               "'file.py:function' that rebuilds it and loads its state_dict") from None
        return obj, spec
    with open(path, "rb") as f:
        if f.read(2) == b"PK":
            raise ImportErrorQ(f"{spec}: a zip archive that cannot be read: truncated or corrupt model file")
    raise ImportErrorQ(f"{spec}: not a model file (expected a .qgp program, file.py:function, or with "
                       "--trust-code a TorchScript file, a .pt2 archive or a torch.save pickle)")


def _refuse_pickle(spec: str, path: Path):
    """Without trust, read the pickle with torch's weights_only unpickler (it cannot run code): a
    state_dict gets its own advice; anything else needs the opt-in."""
    import pickle

    import torch

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, ValueError, EOFError, OSError, AttributeError, TypeError):
        obj = None
    if isinstance(obj, dict):
        raise ImportErrorQ(f"{spec}: holds a state_dict, not a model. Write a builder function "
                           "'file.py:function' that builds the quantized model and loads this state_dict")
    require_trust(spec, PICKLE_RUNS, False)


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


def is_pt2(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return any("serialized_exported_program" in n or n.endswith("models/model.json") for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _is_torch_save_zip(path: Path) -> bool:
    """torch.save's zip format: one top folder holding data.pkl."""
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/data.pkl") or n == "data.pkl" for n in z.namelist())
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
    except SystemExit as e:
        raise ImportErrorQ(f"{file}: importing it called sys.exit({e.code!r}) instead of defining the builder") from None
    except Exception as e:
        raise ImportErrorQ(f"{file}: importing it failed: {type(e).__name__}: {_first_line(e)}") from None
    f = getattr(module, fn, None)
    if f is None or not callable(f):
        raise ImportErrorQ(f"{spec}: {file} has no function {fn!r}")
    try:
        m = f()
    except SystemExit as e:
        raise ImportErrorQ(f"{spec}: the builder function called sys.exit({e.code!r}) instead of returning "
                           "the quantized model") from None
    except Exception as e:
        raise ImportErrorQ(f"{spec}: the builder function raised {type(e).__name__}: {_first_line(e)}") from None
    if not isinstance(m, torch.nn.Module):
        raise ImportErrorQ(f"{spec}: the builder returned a {type(m).__name__}, not a torch module")
    return m.eval()
