"""`qgolden run MODEL --input X --output Y`: the integer program on NumPy."""
from __future__ import annotations

from typing import Optional

import numpy as np
import typer

from ..files import refuse_inputs
from .common import (EngineOpt, IsaOpt, OrtOpt, TrustOpt, UserError, app, get_program, load_inputs, out,
                     run_guarded, save_outputs)


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
    run_guarded(go)
