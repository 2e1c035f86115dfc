"""CLI commands for export (registered on qgolden.cli.app when cli is imported):
`qgolden export MODEL --target c --out DIR` and `qgolden vectors MODEL --input X --out DIR`."""
from __future__ import annotations

from typing import Optional

import typer

from .common import EngineOpt, IsaOpt, TrustOpt, UserError, run_guarded, app, get_program, load_inputs, out

ForceOpt = typer.Option(False, "--force", help="write into a non-empty --out, replacing only the files qgolden "
                        "wrote there before (never the user's own)")


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
            r = export_c(prog, out_dir, name, xs, layers, force=force, source=source)
        except ExportError as e:
            raise UserError(str(e)) from None
        out.print(f"wrote {out_dir}: {', '.join(r.files)} ({r.steps} layers, engine {prog.profile['engine']}, "
                  f"isa {prog.profile['isa']})")
        out.print(f"arena: {r.arena_bytes} bytes (minimum possible for this graph: {r.minimum_bytes}); "
                  f"weights and constants: {r.weight_bytes} bytes")
        out.print(f"check it: make -C {out_dir} test   (nofloat, sanitize, lib: see the Makefile)")
    run_guarded(go)


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
