"""CLI commands for certify (registered on qgolden.cli.app when cli is imported)."""
from __future__ import annotations

import json
from typing import Optional

import numpy as np
import typer
from rich.table import Table

from .common import EngineOpt, IsaOpt, TrustOpt, UserError, run_guarded, app, get_program, load_inputs, out


def _params_text(c) -> str:
    p = c.params
    dv = np.asarray(p.get("divisor", [])).reshape(-1)
    if dv.size and (dv > 0).any():
        return "round_div by " + ", ".join(str(int(d)) for d in sorted(set(dv[dv > 0].tolist())))
    if "multiplier" in p:
        m, n, b, f = (np.asarray(p[k]).reshape(-1) for k in ("multiplier", "shift", "bias", "frac"))
        ut = np.asarray(p["use_table"]).reshape(-1)
        if m.size and not ut.all():
            i = int(np.argmin(ut))
            extra = f" (+{m.size - 1} more)" if m.size > 1 else ""
            return f"M0={m[i]} n={n[i]} bias={b[i]} frac={f[i]}{extra}"
        return "thresholds"
    if "lo" in p and "hi" in p:
        return f"clamp [{p['lo']}, {p['hi']}]"
    return ""


def print_certificate(cert, console=None, max_values=8):
    console = console or out
    o = cert.options
    t = Table(title=f"qgolden certify: {o['multiplier_bits']}-bit multipliers, rounding {o['rounding']}, "
                    f"tables {'allowed' if o['tables'] else 'forbidden'}"
                    + (f", {o['acc_bits']}-bit accumulator" if o.get("acc_bits") else ""), title_justify="left")
    for col in ("op", "kind", "method", "domain", "mismatches", "integer parameters", "accumulator"):
        t.add_column(col, justify="right" if col in ("domain", "mismatches") else "left")
    for c in cert.ops:
        acc = c.details.get("accumulator")
        acc_txt = ""
        if acc:
            acc_txt = f"[{int(acc['lo'].min())}, {int(acc['hi'].max())}] {acc['bits_needed']} bits"
            if "observed_bits" in acc:
                acc_txt += f" (seen {acc['observed_bits']})"
            if acc.get("pairs_can_saturate"):
                acc_txt += " int16-pair saturation"
        method = c.method
        if c.details.get("channels"):
            method += f" ({c.details['table_channels']}/{c.details['channels']} ch. tables)"
        t.add_row(c.name, c.op, method, str(c.domain), str(c.mismatches), _params_text(c), acc_txt,
                  style="red" if c.mismatches else None)
    console.print(t)
    for c in cert.ops:
        acc = c.details.get("accumulator") or {}
        if acc.get("note"):
            console.print(f"[yellow]{c.name}:[/] {acc['note']}", highlight=False)
        bv = c.details.get("breaking_values") or {}
        for ch, ivs in list(bv.items())[:max_values]:
            vals = ", ".join(f"{s}" if e == s + 1 else f"{s}..{e - 1}" for s, e in ivs[:max_values])
            more = " ..." if len(ivs) > max_values else ""
            console.print(f"[red]{c.name} channel {ch}:[/] integer form differs at accumulator values {vals}{more} "
                          f"(inside the reachable interval [{int(acc['lo'][ch])}, {int(acc['hi'][ch])}])",
                          highlight=False)
    print_standard(cert, console)
    t_, n_ = cert.channel_counts()
    line = f"{cert.n_certified}/{len(cert.ops)} ops certified; {t_}/{n_} linear/conv channels need threshold tables"
    console.print(("[bold green]certified:[/] " if cert.certified else "[bold red]NOT certified:[/] ") + line
                  + f" ({cert.seconds:.1f} s)")


def print_standard(cert, console):
    """Per channel of each linear/conv: the standard TFLite/gemmlowp/CMSIS-NN pipeline's constants and
    how many reachable accumulator values it gets wrong (what a DSP or NPU computes); channels whose
    output never changes are named."""
    for c in cert.ops:
        d = c.details or {}
        st = d.get("standard")
        if st and "mismatches" in st:
            console.print(f"[bold]{c.name}[/]: standard pipeline  bias_q = round(b/(s_x·s_w)),  "
                          "y = RoundingDivideByPOT(SRDHM(acc + bias_q, M0), n − 31) + z_y  "
                          "(QuantizeMultiplier(s_x·s_w/s_y) = M0·2^−n)", highlight=False)
            hits = st.get("observed_hits")
            for ch in range(len(st["mismatches"])):
                m, dom = int(st["mismatches"][ch]), int(st["domain"][ch])
                diff = (f"{m} of {dom} reachable accumulator values differ by ±{int(st['max_diff'][ch])}"
                        if m else f"equal on all {dom} reachable accumulator values")
                seen = f"; your inputs: {int(hits[ch])}" if hits is not None else ""
                kept = "" if st["used"][ch] else "  (integer form: the exact solver's instead)"
                console.print(f"  channel {ch}: bias_q {int(st['bias'][ch])}, M0 {int(st['multiplier'][ch])}, "
                              f"n {int(st['shift'][ch])}: {diff}{seen}{kept}", highlight=False)
        elif st:
            console.print(f"[yellow]{c.name}:[/] {st['note']}", highlight=False)
        for ch, value in (d.get("constant_channels") or {}).items():
            console.print(f"[yellow]{c.name} channel {ch}:[/] constant {value} on every reachable accumulator "
                          "value (dead after the clamp): its bias does not matter", highlight=False)


@app.command()
def certify(model: str = typer.Argument(..., help="model (or .qgp program) to certify"),
            as_json: bool = typer.Option(False, "--json", help="print the certificate as JSON"),
            multiplier_bits: int = typer.Option(32, "--multiplier-bits", help="signed multiplier width (M0 < 2**(B-1))"),
            rounding: str = typer.Option("half_up", "--rounding",
                                         help="half_up | half_even | half_away | tflite, gemmlowp, cmsis-nn "
                                              "(the standard pipeline: SRDHM + RoundingDivideByPOT)"),
            acc_bits: Optional[int] = typer.Option(None, "--acc-bits", help="hardware accumulator width"),
            no_tables: bool = typer.Option(False, "--no-tables", help="forbid threshold-table fallbacks"),
            engine: Optional[str] = EngineOpt, isa: Optional[str] = IsaOpt, trust_pickle: bool = TrustOpt,
            input: Optional[str] = typer.Option(None, "--input", help="example input: shapes, observed accumulators")):
    """Prove each op's integer-only form equal to the engine over every value it can receive."""
    def go():
        from ..integer import certify as do_certify

        xs = load_inputs(input) if input else None
        prog = get_program(model, engine, isa, trust_pickle, xs)
        from ..progress import op_progress

        try:
            with op_progress("certify") as progress:
                cert = do_certify(prog, multiplier_bits=multiplier_bits, rounding=rounding, acc_bits=acc_bits,
                                  allow_tables=not no_tables, inputs=xs, progress=progress)
        except ValueError as e:
            raise UserError(str(e)) from None
        if as_json:
            print(json.dumps(cert.to_json()))
        else:
            print_certificate(cert)
        return cert
    cert = run_guarded(go)
    raise typer.Exit(0 if cert.certified else 1)
