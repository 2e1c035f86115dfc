"""`qgolden export MODEL --target c --out DIR`: the certified integer-only program as C99."""
from __future__ import annotations

from typing import Optional

import typer

from .common import (EngineOpt, ForceOpt, IsaOpt, TrustOpt, UserError, app, integer_program, load_inputs, out,
                     run_guarded)


@app.command()
def export(model: str = typer.Argument(..., help="model: .qgp, file.py:function, or with --trust-code TorchScript, .pt2 or pickle"),
           target: str = typer.Option("c", "--target", help="c (C99, integer only)"),
           out_dir: str = typer.Option(..., "--out", help="directory to write NAME.h, NAME.c, test_NAME.c, Makefile"),
           input: Optional[str] = typer.Option(None, "--input", help="example input X.npy/.npz: fixes the shapes and "
                                               "gives the golden vectors"),
           name: str = typer.Option("model", "--name", help="C name prefix"),
           engine: Optional[str] = EngineOpt, isa: Optional[str] = IsaOpt, trust_pickle: bool = TrustOpt,
           multiplier_bits: int = typer.Option(32, "--multiplier-bits", help="integer multiplier width"),
           rounding: str = typer.Option("half_up", "--rounding",
                                        help="half_up | half_even | half_away | tflite | gemmlowp | cmsis-nn"),
           no_tables: bool = typer.Option(False, "--no-tables", help="no threshold tables: with tflite/gemmlowp/"
                                          "cmsis-nn rounding, the standard pipeline as it is"),
           layers: bool = typer.Option(True, "--layers/--no-layers", help="golden vectors of every layer in the test"),
           input_quantize: str = typer.Option("integer", "--input-quantize",
                                              help="float inputs in NAME_float.c: integer (the engine's formula in "
                                                   "integer arithmetic on the float32 bits, when proved exact) | table "
                                                   "(thresholds on the bit patterns)"),
           force: bool = ForceOpt):
    """Export the certified integer-only program as C99 with no floating point (plus a golden test)."""
    def go():
        from ..export.c import export_c
        from ..export.plan import ExportError

        if target != "c":
            raise UserError(f"unknown target {target!r}; choose c")
        xs = load_inputs(input) if input else None
        prog, source = integer_program(model, engine, isa, trust_pickle, xs, multiplier_bits, rounding, not no_tables,
                                       with_source=True)
        try:
            r = export_c(prog, out_dir, name, xs, layers, force=force, source=source, input_quantize=input_quantize)
        except ExportError as e:
            raise UserError(str(e)) from None
        out.print(f"wrote {out_dir}: {', '.join(r.files)} ({r.steps} layers, engine {prog.profile['engine']}, "
                  f"isa {prog.profile['isa']})")
        out.print(f"arena: {r.arena_bytes} bytes (minimum possible for this graph: {r.minimum_bytes}); "
                  f"weights and constants: {r.weight_bytes} bytes")
        out.print("batch: any N at run time (arena and sizes per sample)" if r.plan.per_sample else
                  f"batch: {r.plan.batch} only (the model mixes samples)")
        out.print(f"check it: make -C {out_dir} test   (nofloat, sanitize, lib: see the Makefile)")
    run_guarded(go)
