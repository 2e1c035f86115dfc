"""What every command shares: the app, the consoles, the common options, reading inputs and models,
and the error policy: errors in what the user gives us (errors.UserError) exit 2 with one line;
exit 3 is kept for qgolden's own bugs."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape as markup_escape

from ..errors import UserError  # noqa: F401  (re-exported: commands raise it)
from ..files import npy_bytes, npz_bytes, write_atomic

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Bit-exact integer programs from quantized PyTorch models.")


def console(stderr: bool = False) -> Console:
    """A rich console that never breaks a number across lines: on a terminal, its width; redirected
    (a file, a pipe, CI logs), lines as long as they need and tables up to 240 columns."""
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr)
    return Console(stderr=stderr, soft_wrap=True, width=240)


out = console()
err = console(stderr=True)


def quiet_torch():
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)


def load_inputs(path: str) -> list:
    """X.npy is one input; X.npz holds the inputs in order (the order they were saved in)."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{path}: no such input file")
    try:
        if p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                return [z[k] for k in z.files]
        return [np.load(p, allow_pickle=False)]
    except (ValueError, OSError, EOFError) as e:
        raise UserError(f"{path}: not a readable .npy/.npz input ({str(e).splitlines()[0]})") from None


def save_outputs(path: str, y) -> None:
    """Y.npy for one output, Y.npz (arr_0, arr_1, ... in order) for several: exactly the path
    asked for, written atomically; another suffix is an error, never a silent rename."""
    several = isinstance(y, tuple)
    want = ".npz" if several else ".npy"
    if Path(path).suffix != want:
        n = len(y) if several else 1
        raise UserError(f"--output {path}: the model returns {n} output{'s' if several else ''}, saved as "
                        f"{want}; name the file {Path(path).stem}{want}")
    if several:
        write_atomic(path, npz_bytes({f"arr_{i}": v for i, v in enumerate(y)}))
    else:
        write_atomic(path, npy_bytes(y))


def is_program(model: str) -> bool:
    """A qgolden program file, recognised by its content (or by the .qgp name, to report why a
    broken one is not)."""
    from ..ir import is_program_file

    return model.lower().endswith(".qgp") or (Path(model).is_file() and is_program_file(model))


def get_program(model: str, engine: Optional[str], isa: Optional[str], trust_pickle: bool, inputs=None,
                ort_opt_level: str = "all"):
    """A program file is loaded with NumPy only (and verified); anything else is lowered from torch
    (or ONNX). `trust_pickle` carries --trust-code (alias --trust-pickle)."""
    from ..ir import load

    if is_program(model):
        from ..program_check import check_request

        prog = load(model)
        check_request(prog, engine, isa, model)
        return prog
    quiet_torch()
    from ..api import lower

    return lower(model, example_inputs=inputs, engine=engine, isa=isa, trust_code=trust_pickle,
                 ort_opt_level=ort_opt_level)


def run_guarded(fn):
    from ..engine import RunError
    from ..importers import ImportErrorQ
    from ..ir import ProgramError

    try:
        return fn()
    except (UserError, ImportErrorQ, ProgramError, RunError) as e:
        user_error(str(e))
    except ValueError as e:  # bad --engine / --isa
        if any(w in str(e) for w in ("engine", "isa", "accumulate", "opt-level")):
            user_error(str(e))
        internal_error(e)
    except SystemExit as e:  # code the user handed us (a builder, a model's own code) called sys.exit
        user_error(f"the model's code called sys.exit({e.code!r}) while qgolden was loading it")
    except (typer.Exit, KeyboardInterrupt):
        raise
    except Exception as e:
        internal_error(e)


def one_line(text: str) -> str:
    """A message as one printable line: control characters (newlines, terminal escapes) shown as
    spaces, rich markup shown as typed."""
    flat = "".join(ch if ch.isprintable() else " " for ch in text.strip())
    return markup_escape(" ".join(flat.split()))


def user_error(text: str):
    """Print `qgolden: error: TEXT` on one line and exit 2."""
    err.print(f"[bold red]qgolden: error:[/] {one_line(text)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def internal_error(e):
    """A failure qgolden did not foresee: one line, no traceback (QGOLDEN_DEBUG=1 shows it)."""
    import os

    if os.environ.get("QGOLDEN_DEBUG"):
        raise e
    err.print(f"[bold red]qgolden: internal error:[/] {one_line(f'{type(e).__name__}: {e}')} "
              "(set QGOLDEN_DEBUG=1 for the traceback, and please report it)", highlight=False, soft_wrap=True)
    raise typer.Exit(3)


EngineOpt = typer.Option(None, "--engine", help="x86 | fbgemm | qnnpack | onednn (default: torch's current); "
                         "PT2E models: pt2e-reference | x86-inductor | xnnpack; ONNX models: onnxruntime | "
                         "onnx-reference")
IsaOpt = typer.Option(None, "--isa", help="target CPU: avx2 | avx512 | avx512_vnni | avx512_amx | arm64 "
                      "(default: this machine)")
TrustOpt = typer.Option(False, "--trust-code", "--trust-pickle",
                        help="allow loading files that run code when loaded: TorchScript, .pt2, torch.save "
                             "pickles (also QGOLDEN_TRUST_CODE=1); only for files you trust")
ForceOpt = typer.Option(False, "--force", help="write into a non-empty --out, replacing only the files qgolden "
                        "wrote there before (never the user's own)")
OrtOpt = typer.Option("all", "--ort-opt-level", help="ONNX models on onnxruntime: disable | basic | extended | all")


def integer_program(model, engine, isa, trust_pickle, inputs, multiplier_bits=32, rounding="half_up",
                    allow_tables=True, with_source=False):
    """The certified integer-only program of MODEL (a .qgp already integer-only is used as is). With a
    standard rounding (tflite, gemmlowp, cmsis-nn) and no tables, the standard pipeline is exported
    as it is, its differences from the engine stated. with_source: (integer program, the program it
    was made from, or None for an integer-only .qgp)."""
    from ..integer import to_integer_only
    from ..integer.standard import STANDARD_ROUNDINGS
    from ..integer.transform import INTEGER_OPS

    prog = get_program(model, engine, isa, trust_pickle, inputs)
    if all(n.op in INTEGER_OPS for n in prog.nodes):
        return (prog, None) if with_source else prog
    standard = rounding in STANDARD_ROUNDINGS and not allow_tables
    try:
        ip = to_integer_only(prog, multiplier_bits=multiplier_bits, rounding=rounding, allow_tables=allow_tables,
                             accept_standard=standard)
    except ValueError as e:
        raise UserError(f"{model}: C export and golden vectors are integer-only, and this program is {e}") from None
    diffs = ip.meta.get("integer_only", {}).get("standard_differences") or {}
    if any(diffs.values()):
        out.print(f"[yellow]the standard {rounding} pipeline, not certified equal to the engine:[/] "
                  + ", ".join(f"{k}: {v} accumulator values differ" for k, v in diffs.items() if v)
                  + f" (qgolden certify --rounding {rounding} --no-tables --input X says which of yours)",
                  highlight=False)
    return (ip, prog) if with_source else ip
