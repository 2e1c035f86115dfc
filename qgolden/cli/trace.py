"""`qgolden trace MODEL --input X`: one element's whole arithmetic, or the user's dumps compared."""
from __future__ import annotations

from typing import Optional

import typer

from ..files import refuse_inputs
from .common import EngineOpt, IsaOpt, TrustOpt, UserError, app, run_guarded
from .explain import FormatOpt, emit, explain_errors, program_and_run


@app.command()
def trace(model: str = typer.Argument(..., help="a model (as for `lower`) or a .qgp program"),
          input: str = typer.Option(..., "--input", help="X.npy, or X.npz with several inputs in order"),
          output_element: Optional[str] = typer.Option(None, "--output-element",
                                                       help="element index: 0,2 (one per dim) or a flat index"),
          layer: Optional[str] = typer.Option(None, "--layer", help="layer (node name); default: the last quantized one"),
          compare: Optional[str] = typer.Option(None, "--compare",
                                                help="DUMPS.npz: your per-layer integers keyed by layer name; per layer: how many differ, root cause or propagated"),
          fmt: str = FormatOpt,
          output: Optional[str] = typer.Option(None, "-o", "--output", help="write to this file"),
          engine: Optional[str] = EngineOpt, isa: Optional[str] = IsaOpt, trust_pickle: bool = TrustOpt):
    """The whole arithmetic of one output element; --compare: your per-layer dumps against the program."""
    def go():
        from ..explain.dump_compare import compare_document, load_dumps
        from ..explain.trace_element import trace_document

        if compare is None and output_element is None:
            raise UserError("give --output-element INDEX (or --compare DUMPS.npz)")
        if output:
            refuse_inputs(output, [model, input, compare], "--output")
        dumps = load_dumps(compare) if compare is not None else None
        prog, xs, tr, env, _ = program_and_run(model, input, engine, isa, trust_pickle)
        if dumps is not None:
            doc, differs = compare_document(prog, tr, env, dumps)
            emit(doc, fmt, output)
            return 1 if differs else 0
        emit(trace_document(prog, tr, env, layer, output_element), fmt, output)
        return 0
    code = run_guarded(explain_errors(go))
    raise typer.Exit(code or 0)
