"""The `qgolden` command line. Errors in what the user gives us (errors.UserError) exit 2 with one
line; exit 3 is kept for qgolden's own bugs."""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape as markup_escape
from rich.table import Table

from .errors import UserError
from .files import npy_bytes, npz_bytes, refuse_inputs, write_atomic

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


def _quiet_torch():
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
    from .ir import is_program_file

    return model.lower().endswith(".qgp") or (Path(model).is_file() and is_program_file(model))


def get_program(model: str, engine: Optional[str], isa: Optional[str], trust_pickle: bool, inputs=None,
                ort_opt_level: str = "all"):
    """A program file is loaded with NumPy only (and verified); anything else is lowered from torch
    (or ONNX). `trust_pickle` carries --trust-code (alias --trust-pickle)."""
    from .ir import load

    if is_program(model):
        from .program_check import check_request

        prog = load(model)
        check_request(prog, engine, isa, model)
        return prog
    _quiet_torch()
    from .api import lower

    return lower(model, example_inputs=inputs, engine=engine, isa=isa, trust_code=trust_pickle,
                 ort_opt_level=ort_opt_level)


def _run_guarded(fn):
    from .engine import RunError
    from .importers import ImportErrorQ
    from .ir import ProgramError

    try:
        return fn()
    except (UserError, ImportErrorQ, ProgramError, RunError) as e:
        user_error(str(e))
    except ValueError as e:  # bad --engine / --isa
        if any(w in str(e) for w in ("engine", "isa", "accumulate", "opt-level")):
            user_error(str(e))
        _internal(e)
    except SystemExit as e:  # code the user handed us (a builder, a model's own code) called sys.exit
        user_error(f"the model's code called sys.exit({e.code!r}) while qgolden was loading it")
    except (typer.Exit, KeyboardInterrupt):
        raise
    except Exception as e:
        _internal(e)


def one_line(text: str) -> str:
    """A message as one printable line: control characters (newlines, terminal escapes) shown as
    spaces, rich markup shown as typed."""
    flat = "".join(ch if ch.isprintable() else " " for ch in text.strip())
    return markup_escape(" ".join(flat.split()))


def user_error(text: str):
    """Print `qgolden: error: TEXT` on one line and exit 2."""
    err.print(f"[bold red]qgolden: error:[/] {one_line(text)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _internal(e):
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
OrtOpt = typer.Option("all", "--ort-opt-level", help="ONNX models on onnxruntime: disable | basic | extended | all")


@app.command()
def lower(model: str = typer.Argument(..., help="model: file.py:function, or with --trust-code a TorchScript "
                                     "file, .pt2 or pickle"),
          output: str = typer.Option(..., "-o", "--output", help="program file to write (.qgp)"),
          engine: Optional[str] = EngineOpt, isa: Optional[str] = IsaOpt, trust_pickle: bool = TrustOpt,
          input: Optional[str] = typer.Option(None, "--input", help="example input (.npy/.npz) to record shapes"),
          ort_opt_level: str = OrtOpt,
          integer_only: bool = typer.Option(False, "--integer-only", help="no float operation anywhere (certified)"),
          multiplier_bits: int = typer.Option(32, "--multiplier-bits", help="with --integer-only: multiplier width"),
          rounding: str = typer.Option("half_up", "--rounding", help="with --integer-only: half_up | half_even | "
                                       "half_away | tflite")):
    """Lower a quantized model to an integer program file."""
    def go():
        refuse_inputs(output, [model, input], "--output")
        inputs = load_inputs(input) if input else None
        prog = get_program(model, engine, isa, trust_pickle, inputs, ort_opt_level)
        if integer_only:
            from .integer import to_integer_only
            from .progress import op_progress

            try:
                with op_progress("lower --integer-only") as progress:
                    prog = to_integer_only(prog, multiplier_bits=multiplier_bits, rounding=rounding, progress=progress)
            except ValueError as e:
                raise UserError(f"{model}: {e}") from None
        prog.save(output)
        out.print(f"wrote {output}: {len(prog.nodes)} ops, engine {prog.profile['engine']}, isa {prog.profile['isa']}")
    _run_guarded(go)


@app.command()
def run(model: str = typer.Argument(..., help="a .qgp program, or a model to lower first"),
        input: str = typer.Option(..., "--input", help="X.npy, or X.npz with several inputs in order"),
        output: str = typer.Option(..., "--output", help="where to write Y.npy (Y.npz for several outputs)"),
        engine: Optional[str] = EngineOpt, isa: Optional[str] = IsaOpt, trust_pickle: bool = TrustOpt,
        ort_opt_level: str = OrtOpt,
        accumulate: str = typer.Option("auto", "--accumulate",
                                       help="auto | numpy | torch: who computes the exact linear/conv sums "
                                            "(same integers; auto = torch when a model is given, NumPy for a "
                                            ".qgp, which then runs without torch)")):
    """Run the integer program with NumPy and save what the model's forward returns."""
    def go():
        if accumulate not in ("auto", "numpy", "torch"):
            raise UserError(f"--accumulate {accumulate!r}: choose auto, numpy or torch")
        refuse_inputs(output, [model, input], "--output")
        xs = load_inputs(input)
        prog = get_program(model, engine, isa, trust_pickle, ort_opt_level=ort_opt_level)
        how = accumulate if accumulate != "auto" else ("numpy" if getattr(prog, "origin", None) else "torch")
        y = prog.run(*xs, accumulate=how)
        save_outputs(output, y)
        shapes = ", ".join(f"{np.asarray(v).dtype}{list(np.shape(v))}" for v in (y if isinstance(y, tuple) else (y,)))
        out.print(f"wrote {output}: {shapes}")
    _run_guarded(go)


@app.command()
def verify(model: str = typer.Argument(..., help="model to check against PyTorch"),
           input: str = typer.Option(..., "--input", help="X.npy, or X.npz with several inputs"),
           engine: Optional[str] = EngineOpt, isa: Optional[str] = IsaOpt, trust_pickle: bool = TrustOpt,
           ort_opt_level: str = OrtOpt,
           as_json: bool = typer.Option(False, "--json", help="print the report as JSON")):
    """Compare every quantized intermediate and every output with PyTorch; exit 1 on any difference."""
    def go():
        if is_program(model):
            raise UserError(f"{model}: verify needs the PyTorch model, not a program file")
        _quiet_torch()
        from .api import verify as api_verify

        xs = load_inputs(input)
        rep = api_verify(model, *xs, engine=engine, isa=isa, trust_pickle=trust_pickle, ort_opt_level=ort_opt_level)
        if as_json:
            print(json.dumps(rep.to_json()))
        else:
            print_report(rep)
        return rep
    rep = _run_guarded(go)
    raise typer.Exit(0 if rep.bit_exact else 1)


def print_report(rep, console=None):
    console = console or out
    t = Table(title=f"qgolden verify: engine {rep.engine} ({rep.isa})", title_justify="left")
    for col in ("layer", "op", "elements", "mismatches", "max |diff|"):
        t.add_column(col, justify="right" if col in ("elements", "mismatches", "max |diff|") else "left")
    for l in rep.layers:
        style = "red" if l.mismatches else None
        t.add_row(l.name, l.op, str(l.elements), str(l.mismatches), str(l.max_abs_diff), style=style)
    for i, o in enumerate(rep.outputs):
        t.add_row(f"output {i}", "", str(o["elements"]), str(o["mismatches"]), "",
                  style="red" if o["mismatches"] else "bold")
    console.print(t)
    if getattr(rep, "reference", ""):
        _print_pt2e(rep, console)
    else:
        for note in getattr(rep, "notes", []):
            console.print(f"  note: {note}")
    if rep.bit_exact:
        whose = "the ONNX runtime's" if rep.engine in ("onnxruntime", "onnx-reference") else "PyTorch's int_repr()"
        console.print(f"[bold green]bit-exact:[/] every quantized tensor equals {whose}")
    else:
        first = rep.first_mismatch
        where = f" (first: layer {first.name})" if first else ""
        console.print(f"[bold red]MISMATCH{where}[/]")


def _print_pt2e(rep, console):
    """PT2E models: what was compared, and the float Q/DQ graph's per-layer step differences."""
    console.print(f"compared with: {rep.reference}")
    t = Table(title="against the float Q/DQ graph (float32 conv/linear: not an integer runtime)",
              title_justify="left")
    for col in ("layer", "op", "elements", "differ", "by steps (steps: count)"):
        t.add_column(col, justify="left" if col in ("layer", "op", "by steps (steps: count)") else "right")
    for l in rep.qdq_layers:
        steps = ", ".join(f"{k}: {v}" for k, v in sorted((l.steps or {}).items())) or "-"
        t.add_row(l.name, l.op, str(l.elements), str(l.mismatches), steps, style="yellow" if l.mismatches else None)
    console.print(t)
    if any(l.mismatches for l in rep.qdq_layers):
        console.print("  why: the Q/DQ graph sums conv/linear in float32 in its library's order, and the "
                      "runtime uses integer arithmetic; differences propagate to later layers")
    for r in rep.float_regions:
        console.print(f"  float (not integer): {r['name']} ({r['what']}): {r['why']}")
    for nte in rep.notes:
        console.print(f"  note: {nte}")


@app.command()
def demo(engine: Optional[str] = EngineOpt, isa: Optional[str] = IsaOpt):
    """The forum model (qgolden/examples/forum.py): lower, run, verify."""
    def go():
        from .demo import run_demo

        return run_demo(out, engine=engine, isa=isa)
    ok = _run_guarded(go)
    raise typer.Exit(0 if ok else 1)


@app.command()
def check(program: str = typer.Argument(..., help="a .qgp program file")):
    """Verify a program file without running it: format, ops and their parameters, graph, constants,
    names and sizes (what every load checks). Exit 0 if it passes, 2 with one line if not."""
    def go():
        from .ir import load

        prog = load(program)
        out.print(f"{one_line(program)}: ok, {len(prog.nodes)} ops, engine {prog.profile['engine']}, "
                  f"isa {prog.profile['isa']}", highlight=False)
    _run_guarded(go)


# further commands live beside the code they drive; importing them registers them on `app`
from . import commands_certify, commands_conformance, commands_explain, commands_export  # noqa: E402,F401


def main():
    _quiet_torch()  # torch's deprecation chatter is not the user's problem
    app()


if __name__ == "__main__":
    # `python -m qgolden.cli`: run the package's module, where every command is registered
    from qgolden.cli import main as _main

    _main()
