"""The `qgolden` command line. Errors in what the user gives us exit 2 with one clear message."""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Bit-exact integer programs from quantized PyTorch models.")
out = Console()
err = Console(stderr=True)


class UserError(Exception):
    """Bad input from the user: printed as one line, exit 2."""


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
    if isinstance(y, tuple):
        np.savez(path, *[np.asarray(v) for v in y])
    else:
        np.save(path, np.asarray(y))


def get_program(model: str, engine: Optional[str], isa: Optional[str], trust_pickle: bool, inputs=None,
                ort_opt_level: str = "all"):
    """A .qgp is loaded with NumPy only; anything else is lowered from torch (or ONNX)."""
    from .ir import load

    if model.endswith(".qgp"):
        return load(model)
    _quiet_torch()
    from .api import lower

    return lower(model, example_inputs=inputs, engine=engine, isa=isa, trust_pickle=trust_pickle,
                 ort_opt_level=ort_opt_level)


def _run_guarded(fn):
    from .engine import RunError
    from .importers import ImportErrorQ
    from .ir import ProgramError

    try:
        return fn()
    except (UserError, ImportErrorQ, ProgramError, RunError) as e:
        err.print(f"[bold red]qgolden: error:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    except ValueError as e:  # bad --engine / --isa
        if any(w in str(e) for w in ("engine", "isa", "accumulate", "opt-level")):
            err.print(f"[bold red]qgolden: error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(2)
        _internal(e)
    except (typer.Exit, KeyboardInterrupt):
        raise
    except Exception as e:
        _internal(e)


def _internal(e):
    """A failure qgolden did not foresee: one line, no traceback (QGOLDEN_DEBUG=1 shows it)."""
    import os

    if os.environ.get("QGOLDEN_DEBUG"):
        raise e
    err.print(f"[bold red]qgolden: internal error:[/] {type(e).__name__}: {e} "
              "(set QGOLDEN_DEBUG=1 for the traceback, and please report it)", highlight=False, soft_wrap=True)
    raise typer.Exit(3)


EngineOpt = typer.Option(None, "--engine", help="x86 | fbgemm | qnnpack | onednn (default: torch's current); "
                         "PT2E models: pt2e-reference | x86-inductor | xnnpack; ONNX models: onnxruntime | "
                         "onnx-reference")
IsaOpt = typer.Option(None, "--isa", help="target CPU: avx2 | avx512 | avx512_vnni (default: this machine)")
TrustOpt = typer.Option(False, "--trust-pickle", help="allow loading a torch.save pickle (runs its code)")
OrtOpt = typer.Option("all", "--ort-opt-level", help="ONNX models on onnxruntime: disable | basic | extended | all")


@app.command()
def lower(model: str = typer.Argument(..., help="model: TorchScript file, file.py:function, or pickle"),
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
        inputs = load_inputs(input) if input else None
        prog = get_program(model, engine, isa, trust_pickle, inputs, ort_opt_level)
        if integer_only:
            from .integer import to_integer_only

            try:
                prog = to_integer_only(prog, multiplier_bits=multiplier_bits, rounding=rounding)
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
        xs = load_inputs(input)
        prog = get_program(model, engine, isa, trust_pickle, ort_opt_level=ort_opt_level)
        how = accumulate if accumulate != "auto" else ("numpy" if model.endswith(".qgp") else "torch")
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
        if model.endswith(".qgp"):
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
    """The forum model (../shared/seed/forum-thread.txt): lower, run, verify."""
    def go():
        from .demo import run_demo

        return run_demo(out, engine=engine, isa=isa)
    ok = _run_guarded(go)
    raise typer.Exit(0 if ok else 1)


# further commands live beside the code they drive; importing them registers them on `app`
from . import commands_certify, commands_explain, commands_export  # noqa: E402,F401


def main():
    _quiet_torch()  # torch's deprecation chatter is not the user's problem
    app()


if __name__ == "__main__":
    # `python -m qgolden.cli`: run the package's module, where every command is registered
    from qgolden.cli import main as _main

    _main()
