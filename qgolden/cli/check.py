"""`qgolden check PROGRAM.qgp`: verify a program file without running it."""
from __future__ import annotations

import typer

from .common import app, one_line, out, run_guarded


@app.command()
def check(program: str = typer.Argument(..., help="a .qgp program file")):
    """Verify a program file without running it: format, ops and their parameters, graph, constants,
    names and sizes (what every load checks). Exit 0 if it passes, 2 with one line if not."""
    def go():
        from ..ir import load

        prog = load(program)
        out.print(f"{one_line(program)}: ok, {len(prog.nodes)} ops, engine {prog.profile['engine']}, "
                  f"isa {prog.profile['isa']}", highlight=False)
    run_guarded(go)
