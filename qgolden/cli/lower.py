"""`qgolden lower MODEL -o PROGRAM.qgp`: a quantized model as an integer program file."""
from __future__ import annotations

from typing import Optional

import typer

from ..files import refuse_inputs
from .common import (EngineOpt, IsaOpt, OrtOpt, TrustOpt, UserError, app, get_program, load_inputs, out,
                     run_guarded)


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
            from ..integer import to_integer_only
            from ..progress import op_progress

            try:
                with op_progress("lower --integer-only") as progress:
                    prog = to_integer_only(prog, multiplier_bits=multiplier_bits, rounding=rounding,
                                           progress=progress)
            except ValueError as e:
                raise UserError(f"{model}: {e}") from None
        prog.save(output)
        out.print(f"wrote {output}: {len(prog.nodes)} ops, engine {prog.profile['engine']}, isa {prog.profile['isa']}")
    run_guarded(go)
