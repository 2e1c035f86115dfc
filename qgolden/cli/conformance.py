"""CLI commands `qgolden conformance record|check` (registered on qgolden.cli.app when cli is imported)."""
from __future__ import annotations

import json
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from ..progress import step_progress
from .common import UserError, app, err, out

conformance = typer.Typer(no_args_is_help=True, help="Record PyTorch's outputs on this CPU, or check qgolden "
                          "against a record made on any CPU (docs/conformance.md).")
app.add_typer(conformance, name="conformance")


def guarded(fn):
    """Run a command body: a bad record or option is one line and exit 2; anything unforeseen one
    line and exit 3 (QGOLDEN_DEBUG=1 shows the traceback)."""
    import os
    import warnings

    from ..conformance.records import RecordError

    warnings.filterwarnings("ignore")  # torch's deprecation chatter is not the user's problem
    try:
        return fn()
    except (typer.Exit, KeyboardInterrupt):
        raise
    except Exception as e:
        if isinstance(e, (UserError, RecordError)) or (isinstance(e, ValueError) and "unknown isa" in str(e)):
            err.print(f"[bold red]qgolden: error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(2)
        if os.environ.get("QGOLDEN_DEBUG"):
            raise
        err.print(f"[bold red]qgolden: internal error:[/] {type(e).__name__}: {e} (set QGOLDEN_DEBUG=1 for the "
                  "traceback, and please report it)", highlight=False, soft_wrap=True)
        raise typer.Exit(3)


def print_check(rep, console=None) -> None:
    """The per-family/engine table, the unsupported families by name, the unreadable cases, a verdict."""
    if console is None:
        # piped output (make conformance, CI logs): wide enough that no family name is cut
        console = out if out.is_terminal else Console(width=max(out.width, 110))
    t = Table(title=f"qgolden conformance check: {rep.root} (isa {rep.isa}, {rep.num_threads} threads)",
              title_justify="left")
    cols = ("op family", "engine", "cases", "elements", "mismatching\ncases", "mismatching\nelements",
            "unsupported", "other")
    for c in cols:
        t.add_column(c, justify="left" if c in ("op family", "engine") else "right", no_wrap=c == "op family")
    for r in rep.table():
        other = r["unreadable"] + r["errors"] + r["skipped"]
        style = "red" if (r["mismatching_cases"] or r["unreadable"] or r["errors"]) else \
            ("yellow" if r["unsupported"] == r["cases"] else None)
        t.add_row(r["family"], r["engine"], str(r["cases"]), str(r["elements"]), str(r["mismatching_cases"]),
                  str(r["mismatching_elements"]), str(r["unsupported"]), str(other), style=style)
    console.print(t)
    unsup = rep.unsupported()
    if unsup:
        console.print(f"unsupported op families ({len(unsup)}), listed, not checked:")
        for fam, ops in unsup.items():
            console.print(f"  {fam}: {'; '.join(ops)}", highlight=False)
    skipped = [r for r in rep.results if r.status == "skipped"]
    if skipped:
        console.print(f"skipped {len(skipped)} case(s): " + "; ".join(sorted({r.reason for r in skipped})),
                      highlight=False)
    for r in rep.problems():
        console.print(f"[red]{r.status}[/] {r.name} ({r.engine}): {r.reason}", highlight=False)
    tot = rep.totals()
    summary = (f"{tot['match']} of {tot['match'] + tot['mismatch']} checked cases match "
               f"({tot['elements']} elements, {tot['mismatching_elements']} differ); "
               f"{tot['unsupported']} unsupported")
    if rep.ok:
        console.print(f"[bold green]conforms:[/] {summary}", highlight=False)
    else:
        console.print(f"[bold red]DIFFERS:[/] {summary}; {tot['mismatch']} mismatching, "
                      f"{tot['unreadable']} unreadable, {tot['error']} failed", highlight=False)


@conformance.command("check")
def check_cmd(record_dir: str = typer.Argument(..., metavar="DIR", help="a record folder (ops/ and/or inductor/)"),
              isa: Optional[str] = typer.Option(None, "--isa", help="CPU class to lower for (default: the "
                                                "recording CPU's, from the manifest)"),
              engine: Optional[str] = typer.Option(None, "--engine", help="only cases of this engine "
                                                   "(x86, fbgemm, qnnpack, onednn, x86-inductor, pt2e-reference)"),
              op: Optional[str] = typer.Option(None, "--op", help="only cases of this op family"),
              as_json: bool = typer.Option(False, "--json", help="print the report as JSON")):
    """Check qgolden against a record: exit 1 on any difference, 0 when every supported case matches.

    The record's models are loaded as trusted (TorchScript and .pt2 run code at load): pass only
    records you made or trust."""
    def go():
        from ..conformance.check import check_record, select_cases
        from ..conformance.records import load_record

        record = load_record(record_dir)
        n = len(select_cases(record, engine, op))
        if n == 0:
            raise UserError(f"{record_dir}: no case matches"
                            + (f" --engine {engine}" if engine else "") + (f" --op {op}" if op else ""))
        with step_progress(n, "checking") as advance:
            rep = check_record(record, isa=isa, engine=engine, op=op,
                               on_case=lambda c, r: advance(f"{c.name} {r.status}"))
        if as_json:
            print(json.dumps(rep.to_json()))
        else:
            print_check(rep)
        return rep
    rep = guarded(go)
    raise typer.Exit(0 if rep.ok else 1)


@conformance.command("record")
def record_cmd(out_dir: str = typer.Argument(..., metavar="OUT", help="folder to write the record to (new or empty)"),
               seed: int = typer.Option(0, "--seed", help="seed of the generated suite"),
               cases_per_op: int = typer.Option(3, "--cases-per-op", help="cases per op family and engine"),
               op: Optional[list[str]] = typer.Option(None, "--op", help="only these op families (repeatable)"),
               engine: Optional[list[str]] = typer.Option(None, "--engine", help="only these engines (repeatable; "
                                                          "default: every quantized engine this torch has)"),
               inductor: bool = typer.Option(True, "--inductor/--no-inductor",
                                             help="also record PT2E models run by torch.compile")):
    """Run PyTorch on this machine over a generated suite and write a record (docs/conformance.md)."""
    def go():
        from ..conformance.record import plan_suite, write_record

        try:
            plan = plan_suite(seed, cases_per_op, ops=op, engines=engine, inductor=inductor)
            with step_progress(len(plan), "recording") as advance:
                summary = write_record(out_dir, plan, seed, on_case=lambda name: advance(name))
        except ValueError as e:  # a bad option or a non-empty OUT (each case's own errors are recorded)
            raise UserError(str(e)) from None
        out.print(f"wrote {out_dir}: {summary['cases']} op cases, {summary['inductor']} PT2E models, "
                  f"{summary['pytorch_errors']} configurations PyTorch refused; CPU class {summary['isa']}",
                  highlight=False)
        out.print(f"send it: tar czf {out_dir.rstrip('/')}.tar.gz {out_dir} and attach the tarball to a "
                  "GitHub issue of the project (docs/conformance.md)", highlight=False)
    guarded(go)
