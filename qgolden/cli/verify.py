"""`qgolden verify MODEL --input X`: every quantized tensor and output against the runtime."""
from __future__ import annotations

import json
from typing import Optional

import typer
from rich.table import Table

from .common import (EngineOpt, IsaOpt, OrtOpt, TrustOpt, UserError, app, is_program, load_inputs, out,
                     quiet_torch, run_guarded)


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
        quiet_torch()
        from ..api import verify as api_verify

        xs = load_inputs(input)
        rep = api_verify(model, *xs, engine=engine, isa=isa, trust_pickle=trust_pickle, ort_opt_level=ort_opt_level)
        if as_json:
            print(json.dumps(rep.to_json()))
        else:
            print_report(rep)
        return rep
    rep = run_guarded(go)
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
