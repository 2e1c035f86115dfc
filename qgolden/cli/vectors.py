"""`qgolden vectors MODEL --input X --out DIR`: golden vectors for RTL testbenches."""
from __future__ import annotations

from typing import Optional

import typer

from .common import (EngineOpt, ForceOpt, IsaOpt, TrustOpt, UserError, app, integer_program, load_inputs, out,
                     run_guarded)


@app.command()
def vectors(model: str = typer.Argument(..., help="model or .qgp program"),
            input: str = typer.Option(..., "--input", help="X.npy, or X.npz with several inputs"),
            out_dir: str = typer.Option(..., "--out", help="directory for the vectors and manifest.json"),
            fmt: str = typer.Option("mem", "--format", help="npy | mem | hex | coe (.npy is always written)"),
            engine: Optional[str] = EngineOpt, isa: Optional[str] = IsaOpt, trust_pickle: bool = TrustOpt,
            multiplier_bits: int = typer.Option(32, "--multiplier-bits"),
            rounding: str = typer.Option("half_up", "--rounding"),
            force: bool = ForceOpt):
    """Golden vectors: every layer's integer input and output and the constants, for RTL testbenches."""
    def go():
        from ..export.vectors import FORMATS, write_vectors

        if fmt not in FORMATS:
            raise UserError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
        xs = load_inputs(input)
        prog = integer_program(model, engine, isa, trust_pickle, xs, multiplier_bits, rounding)
        m = write_vectors(prog, xs, out_dir, fmt, force=force)
        out.print(f"wrote {out_dir}: {len(m['files'])} files ({len(m['layers'])} layers), manifest.json")
    run_guarded(go)
