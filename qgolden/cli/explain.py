"""`qgolden explain MODEL --input X`: every op with the engine's own numbers; the helpers `trace` shares."""
from __future__ import annotations

from typing import Optional

import typer

from ..files import refuse_inputs
from .common import (EngineOpt, IsaOpt, TrustOpt, UserError, app, err, get_program, load_inputs, one_line, out,
                     run_guarded)

FormatOpt = typer.Option("text", "--format", "-f", help="text | markdown | html")


def program_and_run(model, input, engine, isa, trust_pickle):
    """(program, inputs, trace, env, state_dict keys or None)."""
    from ..explain import run_traced

    xs = load_inputs(input)
    prog = get_program(model, engine, isa, trust_pickle, xs)
    keys = None
    torch_side = getattr(prog, "_torch", None)
    if torch_side is not None:
        try:
            keys = list(torch_side[0].state_dict().keys())
        except Exception:  # a model without a usable state_dict: the glossary uses the program's names
            keys = None
    trace, env = run_traced(prog, xs)
    return prog, xs, trace, env, keys


def emit(doc, fmt, output, full=True, **html):
    """Write or print doc; html: render options of the html format (pictures, open_layer, max_pictures)."""
    from ..explain import FORMATS, render
    from ..explain.render_text import print_doc
    from ..files import write_atomic

    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    opts = html if fmt == "html" else {}
    if output:
        write_atomic(output, render(doc, fmt, **opts))
        err.print(f"wrote {one_line(output)} ({fmt})", highlight=False)
    elif fmt == "text":
        print_doc(doc, out, full)
    else:
        print(render(doc, fmt, **opts), end="")


def load_float_reference(path) -> dict:
    """REF.npz: the float model's layer outputs keyed by layer (node) or tensor name."""
    from pathlib import Path

    import numpy as np

    if not Path(path).is_file():
        raise UserError(f"--float-ref {one_line(path)}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise UserError(f"--float-ref {one_line(path)}: an .npz of float arrays keyed by layer name is needed")
            return {k: z[k] for k in z.files}
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"--float-ref {one_line(path)}: not a readable .npz ({type(e).__name__})") from None


def explain_errors(fn):
    from ..explain import ExplainError

    def go():
        try:
            return fn()
        except ExplainError as e:
            raise UserError(str(e)) from None
    return go


@app.command()
def explain(model: str = typer.Argument(..., help="a model (as for `lower`) or a .qgp program"),
            input: str = typer.Option(..., "--input", help="X.npy, or X.npz with several inputs in order"),
            sample: int = typer.Option(0, "--sample", help="which sample of the batch to show"),
            layer: Optional[str] = typer.Option(None, "--layer", help="explain only this layer (node name)"),
            fmt: str = FormatOpt,
            output: Optional[str] = typer.Option(None, "-o", "--output", help="write to this file"),
            engine: Optional[str] = EngineOpt, isa: Optional[str] = IsaOpt, trust_pickle: bool = TrustOpt,
            full: bool = typer.Option(False, "--full", help="text on the terminal: also the glossary, parameter and "
                                      "input tables, other engines, histograms, integer-only form (files, markdown "
                                      "and html always hold everything)"),
            no_pictures: bool = typer.Option(False, "--no-pictures", help="html: no matplotlib pictures (faster)"),
            max_pictures: int = typer.Option(40, "--max-pictures", help="html: draw the pictures of this many "
                                             "layers (the first ones, and the --open one)"),
            open_layer: Optional[str] = typer.Option(None, "--open", help="html: the layer shown open (name or "
                                                     "number; default the first)"),
            float_ref: Optional[str] = typer.Option(None, "--float-ref", help="REF.npz: the float model's layer "
                                                    "outputs keyed by layer name (html: SQNR against them)")):
    """Every op with the engine's own numbers (--full: and every scale and zero point of the model)."""
    def go():
        from ..explain import build_document

        if output:
            refuse_inputs(output, [model, input] + ([float_ref] if float_ref else []), "--output")
        if max_pictures < 0:
            raise UserError(f"--max-pictures {max_pictures}: give 0 or more")
        ref = load_float_reference(float_ref) if float_ref else None
        prog, xs, trace, env, keys = program_and_run(model, input, engine, isa, trust_pickle)
        doc = build_document(prog, trace, env, sample=sample, layer=layer, state_dict_keys=keys,
                             float_reference=ref, model=model)
        emit(doc, fmt, output, full, pictures=not no_pictures, open_layer=open_layer, max_pictures=max_pictures)
    run_guarded(explain_errors(go))
