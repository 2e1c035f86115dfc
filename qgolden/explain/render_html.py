"""One self-contained HTML file: a summary (model, engine, CPU class, input, a table of every layer),
a table of contents, the model graph, and a collapsible <details> section per op (the first, or the
one asked for, open) with its tables and pictures: the requantization staircase with its near-ties,
the output integers' histogram and the accumulator's range against int16/int24/int32 (inline SVG
from matplotlib, explain/pictures.py). No scripts, no external resources; every name escaped.
Without matplotlib (or with pictures=False) the page is complete without those pictures and says so."""
from __future__ import annotations

from html import escape

import numpy as np

from .build import ExplainError
from .doc import Code, Val, fmt

PICTURES_OFF = "no pictures: turned off (--no-pictures)"
MAX_PICTURE_LAYERS = 40  # layers drawn by default (about 1 s of matplotlib each): the page stays quick to make

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em;max-width:1400px;color:#222;background:#fff}
.wide{overflow-x:auto}
h1{font-size:1.5em} h2{font-size:1.2em;margin-top:1.5em}
details{border:1px solid #ccc;border-radius:6px;margin:.6em 0;padding:.3em .8em;background:#fafafa}
summary{cursor:pointer;font-weight:600;padding:.2em 0}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}
th{background:#eef}
caption{caption-side:top;text-align:left;font-style:italic;padding:2px}
pre{background:#f0f0f0;padding:.5em;overflow-x:auto}
code{font-family:ui-monospace,monospace;background:#f0f0f0;padding:0 3px;border-radius:3px}
nav ul{margin:.3em 0;padding-left:.5em;list-style:none;font-size:.9em}
.overview{display:flex;gap:1.5em;align-items:flex-start}
.overview nav{flex:1 1 auto}
.overview #graph{flex:0 1 auto}
nav li{break-inside:avoid}
a{color:#1750a8;text-decoration:none} a:hover{text-decoration:underline}
.facts td:first-child{white-space:nowrap}
table.layers td,table.layers th{font-size:.8em;white-space:nowrap}
table.layers td.params{font-size:.8em}
table.layers td.name{white-space:normal;min-width:9em;max-width:16em;overflow-wrap:anywhere}
td.num{text-align:right;font-family:ui-monospace,monospace}
.bar{display:inline-block;width:60px;height:8px;background:#e4e8f0;vertical-align:middle;margin-left:4px;position:relative}
.bar i{position:absolute;top:0;bottom:0;background:#4a74c9}
.note{color:#555;font-style:italic}
.pics{display:flex;flex-wrap:wrap;gap:.6em 1.2em;align-items:flex-start}
.pics figure{margin:.3em 0}
figure svg{max-width:100%;height:auto;display:block}
figcaption{font-size:.85em;color:#444;margin-bottom:2px}
.graph{max-height:85vh;overflow:auto;background:#fff;padding:4px}
.v{font-family:ui-monospace,monospace;color:#05a}
.clamp{color:#c00;font-weight:700}.relu{color:#a0a}.sat{background:#c00;color:#fff}.tie{background:#fd0}.near_tie{background:#ffe98a;text-decoration:underline dotted}
.legend span{margin-right:1em}
"""


def _line(line) -> str:
    if isinstance(line, str):
        return escape(line)
    out = []
    for p in line:
        if isinstance(p, Val):
            cls = "v" + (f" {p.style}" if p.style else "")
            out.append(f'<span class="{cls}" title="{escape(repr(p.src))}">{escape(p.text)}</span>')
        elif isinstance(p, Code):
            out.append(f"<code>{escape(p)}</code>")
        else:
            out.append(escape(str(p)))
    return "".join(out)


def _table(t) -> str:
    h = ["<table>"]
    if t.caption:
        h.append(f"<caption>{escape(t.caption)}</caption>")
    h.append("<tr>" + "".join(f"<th>{escape(c)}</th>" for c in t.header) + "</tr>")
    for row in t.rows:
        h.append("<tr>" + "".join(f"<td>{_line(c)}</td>" for c in row) + "</tr>")
    h.append("</table></div>")
    return "\n".join(h)


def svg_hist(h, width=320, height=80) -> str:
    """Bars of the value counts over [lo, hi]; the clamped values are drawn red at the ends."""
    n = len(h.counts)
    m = max(h.counts) or 1
    bw = width / n
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 16}" '
             f'viewBox="0 0 {width} {height + 16}" role="img">',
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="#f4f6fb"/>']
    for i, c in enumerate(h.counts):
        if c == 0:
            continue
        bh = max(1.0, c / m * (height - 4))
        parts.append(f'<rect x="{i * bw + 0.5:.1f}" y="{height - bh:.1f}" width="{bw - 1:.1f}" height="{bh:.1f}" fill="#4a74c9"/>')
    for cnt, i in ((h.clamped_lo, 0), (h.clamped_hi, n - 1)):
        if cnt:
            bh = max(2.0, cnt / m * (height - 4))
            parts.append(f'<rect x="{i * bw + 0.5:.1f}" y="{height - bh:.1f}" width="{bw - 1:.1f}" height="{bh:.1f}" fill="#d22"/>')
    frac = (h.clamped_lo + h.clamped_hi) / h.n if h.n else 0.0
    parts.append(f'<text x="2" y="{height + 13}" font-size="11" font-family="sans-serif">{h.lo}</text>')
    parts.append(f'<text x="{width - 2}" y="{height + 13}" font-size="11" text-anchor="end" font-family="sans-serif">{h.hi}</text>')
    parts.append(f'<text x="{width / 2}" y="{height + 13}" font-size="11" text-anchor="middle" font-family="sans-serif">'
                 f'{escape(h.clamp_note)}: {frac:.1%}</text>')
    parts.append("</svg>")
    return "".join(parts)


def layer_id(number) -> str:
    """The HTML id of layer `number` (1-based, program order): ids never hold a model's names."""
    return f"layer-{int(number)}"


def short_number(v) -> str:
    """A number in 4 significant digits (integers whole), for the summary table."""
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return f"{float(v):.4g}"


def value_html(v) -> str:
    """A number short, with its exact text (doc.fmt, as in the layer sections) as the title."""
    return f'<span title="{escape(fmt(v))}">{escape(short_number(v))}</span>'


def values_html(v) -> str:
    """A scale or zero point: one number, or for per-channel arrays 'min … max (n ch)'."""
    flat = np.asarray(v).reshape(-1)
    if flat.size == 1:
        return value_html(flat[0][()])
    lo, hi = flat.min()[()], flat.max()[()]
    if lo == hi:
        return f"{value_html(lo)} (all {flat.size})"
    return f"{value_html(lo)} … {value_html(hi)} ({flat.size} ch)"


SYMBOLS = {"x_scale": "s_x", "weight_scale": "s_w", "out_scale": "s_y", "a_scale": "s_a", "b_scale": "s_b",
           "scale": "s", "output scale": "s_y", "x_zero_point": "z_x", "weight_zero_point": "z_w",
           "out_zero_point": "z_y", "a_zero_point": "z_a", "b_zero_point": "z_b", "zero_point": "z",
           "output zero point": "z_y"}


def symbol(key) -> str:
    """The formula symbol of a parameter (s_x, z_y...), as the sections write them."""
    return SYMBOLS.get(key, key)


def range_text(r) -> str:
    return f"[{r[0]}, {r[1]}]" if r is not None else "—"


def sqnr_text(f) -> str:
    if f.sqnr_db is None:
        return "—"
    return f"{f.sqnr_db:.1f}" if np.isfinite(f.sqnr_db) else ("∞" if f.sqnr_db > 0 else "−∞")


def used_bar(f) -> str:
    """A small bar: which part of the available output range the layer's integers used."""
    (ulo, uhi), (alo, ahi) = f.out_used, f.out_avail
    span = ahi - alo
    left, width = 100.0 * (ulo - alo) / span, 100.0 * (uhi - ulo) / span
    return (f'<span class="bar" title="used {ulo}..{uhi} of {alo}..{ahi}">'
            f'<i style="left:{left:.1f}%;width:{max(width, 1.0):.1f}%"></i></span>')


def dead_text(f) -> str:
    """Dead channels of a layer: how many, and which (the first few)."""
    if f.dead_channels is None:
        return "—"
    if not f.dead_channels:
        return '<span class="dead">none dead</span>'
    shown = ", ".join(str(c) for c in f.dead_channels[:8]) + (", …" if len(f.dead_channels) > 8 else "")
    return f'<span class="dead">{len(f.dead_channels)} dead: {shown}</span>'


def ties_text(f) -> str:
    return "—" if f.near_ties is None else f'<span class="ties">{f.near_ties} near-ties</span>'


def summary_table(doc) -> str:
    """One row per layer: op, shapes, scales, zero points, output range used / available, SQNR and
    the accumulator's range (observed on this input and worst case, with the bits each needs)."""
    h = ['<div class="wide"><table class="layers" id="layers">',
         "<tr><th>#</th><th>layer</th><th>op</th><th>input shapes</th><th>output shape</th>"
         "<th>output used / available</th><th>SQNR dB (against)</th>"
         "<th>accumulator: this input<br>worst case</th><th>dead channels<br>near-ties</th>"
         "<th>scales</th><th>zero points</th></tr>"]
    for s in doc.sections:
        f = s.facts
        if f is None:
            continue
        shapes = "<br>".join(escape(str(list(shape))) for _, shape in f.inputs) or "—"
        scales = "<br>".join(f"{escape(symbol(k))} = {values_html(v)}" for k, v in f.scales) or "—"
        zps = "<br>".join(f"{escape(symbol(k))} = {values_html(v)}" for k, v in f.zero_points) or "—"
        used = (f"{range_text(f.out_used)} / {range_text(f.out_avail)}{used_bar(f)}" if f.out_used is not None
                else "— (" + escape(f.out_dtype) + ")")
        acc = (f'<span class="acc">{range_text(f.acc_observed)} {f.acc_bits} bits</span>'
               if f.acc_observed is not None else "—")
        worst = (f'<span class="worst">{range_text(f.acc_worst)} {f.acc_worst_bits} bits</span>'
                 if f.acc_worst is not None else "")
        h.append(f'<tr id="row-{int(f.number)}"><td class="num"><a href="#{layer_id(f.number)}">{int(f.number)}</a></td>'
                 f'<td class="name"><a href="#{layer_id(f.number)}">{escape(f.name)}</a></td><td>{escape(f.op)}</td>'
                 f"<td>{shapes}</td><td>{escape(str(list(f.out_shape)))}</td>"
                 f'<td>{used}</td><td><span class="sqnr">{sqnr_text(f)}</span>'
                 + (f'<br><small>{escape(f.sqnr_ref)}</small>' if f.sqnr_ref else "") + "</td>"
                 f'<td>{acc}<br>{worst}</td><td>{dead_text(f)}<br>{ties_text(f)}</td>'
                 f'<td class="params">{scales}</td><td class="params">{zps}</td></tr>')
    h.append("</table></div>")
    return "\n".join(h)


def summary(doc, pictures_note) -> list:
    refs = {s.facts.sqnr_ref for s in doc.sections if s.facts is not None and s.facts.sqnr_ref}
    rows = [("model", doc.model or "(given as a program object)"), ("engine", doc.engine), ("CPU class", doc.isa),
            ("input", doc.input_desc or "—"), ("layers", str(len(doc.graph)))]
    if doc.integer_summary:
        rows.append(("integer-only", doc.integer_summary))
    b = ['<section id="summary"><h2>Summary</h2><table class="facts">']
    b += [f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows]
    b.append("</table>")
    if pictures_note:
        b.append(f'<p class="note">{escape(pictures_note)}</p>')
    b.append(summary_table(doc))
    notes = ["Ranges, SQNR and accumulators are over the whole input batch; SQNR = 10·log10(Σ ref² / Σ (ref − "
             "dequantized output)²)."]
    if "float model" in refs:
        notes.append("SQNR against the float model: the given float model's output of the same layer.")
    if "dequantized inputs" in refs:
        notes.append("SQNR against dequantized inputs: the layer computed in float64 from its own dequantized "
                     "integer input and weights (acc·s_x·s_w + bias, then ReLU if fused), so it measures this "
                     "layer's output rounding and clamping only; layers without it show —.")
    notes.append("Scales and zero points in 4 digits here (hover for the exact value; each layer's section prints "
                 "them in full).")
    notes.append("Accumulator: the exact Σ (x_q − z_x)(w_q − z_w) observed, and the worst case over every input "
                 "integer, with the signed bits each needs.")
    notes.append("Dead channels: linear/conv output channels at their clamp floor (the zero point after a ReLU) "
                 "for every value of this input. Near-ties: values before rounding within a relative 1e-4 of a "
                 ".5 boundary, where float64 hand arithmetic may round the other way.")
    b += [f'<p class="note">{escape(n)}</p>' for n in notes]
    b.append("</section>")
    return b


def toc(doc, graph: bool) -> str:
    """Links to the summary, the graph (when the page has them), the glossary and every section."""
    items = [f'<li><a href="#{layer_id(section_number(s, i))}">{escape(s.title)}</a></li>' for i, s in enumerate(doc.sections)]
    heads = (['<a href="#summary">Summary</a>', '<a href="#graph">Model graph</a>'] if graph else []) + (
        ['<a href="#glossary">Glossary</a>'] if doc.glossary is not None else [])
    return ('<nav id="toc"><h2>Contents</h2>' + (f"<p>{' · '.join(heads)}</p>" if heads else "")
            + "<ul>" + "".join(items) + "</ul></nav>")


def section_number(s, i) -> int:
    """The 1-based program position of section s (the i-th of the document)."""
    return s.facts.number if s.facts is not None else i + 1


def open_index(doc, open_layer) -> int:
    """Index of the section to show open: the one named (node name, output name or number), else the first."""
    if open_layer is None:
        return 0
    for i, s in enumerate(doc.sections):
        f = s.facts
        if open_layer in (s.key, str(section_number(s, i))) or (f is not None and open_layer == f.out_name):
            return i
    raise ExplainError(f"--open {open_layer!r}: no such layer in this explanation; layers: "
                       + ", ".join(s.key for s in doc.sections))


def layer_pictures(s, number) -> str:
    from .pictures import acc_range_svg, histogram_svg, staircase_svg

    f = s.facts
    figs = []
    if f is None:
        return ""
    if f.stair is not None:
        caption = "requantization staircase (the certified integer-only form gives the engine's dots)"
        if f.stair.standard_out is not None:
            caption += f"; TFLite / CMSIS-NN pipeline: {f.stair.standard_params}"
        figs.append((caption, staircase_svg(f, f"st{number}")))
    if f.out_counts is not None:
        figs.append((f"output integers of {f.out_name}", histogram_svg(f, f"hi{number}")))
    if f.acc_observed is not None:
        figs.append(("accumulator range against int16 / int24 / int32", acc_range_svg(f, f"ac{number}")))
    if not figs:
        return ""
    return '<div class="pics">' + "".join(f"<figure><figcaption>{escape(c)}</figcaption>{svg}</figure>"
                                           for c, svg in figs) + "</div>"


def pictured_layers(n_sections, first_open, limit) -> set:
    """Indices of the sections that get pictures: the first `limit` and the open one (none if limit <= 0)."""
    if limit <= 0 or n_sections == 0:
        return set()
    return set(range(min(limit, n_sections))) | {first_open}


def render(doc, pictures: bool = True, open_layer=None, max_pictures: int = MAX_PICTURE_LAYERS) -> str:
    """The page; pictures: draw the matplotlib pictures (a note says why when they are not drawn), for
    the open layer and the first max_pictures layers (the graph always)."""
    from .pictures import matplotlib_missing

    note = PICTURES_OFF if not pictures else matplotlib_missing()
    draw = note is None
    first_open = open_index(doc, open_layer)
    drawn = pictured_layers(len(doc.sections), first_open, max_pictures) if draw else set()
    if draw and len(drawn) < len(doc.sections):
        note = (f"pictures for {len(drawn)} of {len(doc.sections)} layers (--max-pictures {max_pictures}; "
                "--open LAYER draws that one too)")
    b = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
         '<meta name="viewport" content="width=device-width, initial-scale=1">',
         f"<title>{escape(doc.title)}</title><style>{CSS}</style></head><body>",
         f"<h1>{escape(doc.title)}</h1>"]
    if doc.graph:  # an explanation of the model (a trace or a comparison has neither summary nor graph)
        b += summary(doc, note)
        b.append('<div class="overview">' + toc(doc, graph=True))
        b.append('<details id="graph" open><summary>Model graph (click a layer to go to it)</summary>')
        if draw:
            from .pictures import graph_svg

            linked = {s.key: layer_id(section_number(s, i)) for i, s in enumerate(doc.sections)}
            b.append('<div class="graph">' + graph_svg(doc.graph, linked, edge_labels=doc.edge_labels) + "</div>")
        else:
            b.append("<ol>" + "".join(f"<li>{escape(name)}: {escape(op)}"
                                      + (f" ← {escape(', '.join(srcs))}" if srcs else "") + "</li>"
                                      for _, _, name, op, srcs in doc.graph) + "</ol>")
        b.append("</details></div>")
        b.append("<h2>Layers</h2>")
    else:
        b.append(toc(doc, graph=False))
    b.append('<p class="legend"><span class="v clamp">clamped</span><span class="v relu">ReLU</span>'
             '<span class="v sat">int16 saturation</span><span class="v tie">.5 tie</span>'
             '<span class="v near_tie">near .5 tie</span></p>')
    for l in doc.intro:
        b.append(f"<p>{_line(l)}</p>")
    if doc.glossary is not None:
        b.append('<details id="glossary"><summary>Glossary: every scale and zero point</summary>')
        for l in doc.glossary_intro:
            b.append(f"<p>{_line(l)}</p>")
        b.append(_table(doc.glossary))
        b.append("</details>")
    for i, s in enumerate(doc.sections):
        number = section_number(s, i)
        b.append(f'<details id="{layer_id(number)}"{" open" if i == first_open else ""}>'
                 f"<summary>{escape(s.title)}</summary>")
        if s.what:
            b.append(f"<p>{escape(s.what)}</p>")
        if i in drawn:
            b.append(layer_pictures(s, number))
        elif draw:
            b.append(f'<p class="note">no pictures for this layer (--max-pictures {max_pictures})</p>')
        if s.formula:
            b.append("<pre>" + escape("\n".join(s.formula)) + "</pre>")
        if s.where is not None:
            b.append(_table(s.where))
        for t in s.tables:
            b.append(_table(t))
        if s.numbers:
            b.append("<p>With this input's numbers:</p><pre>" + "\n".join(_line(l) for l in s.numbers) + "</pre>")
        items = [_line(l) for l in s.notes + s.marks] + ["engines: " + _line(l) for l in s.engine]
        if items:
            b.append("<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>")
        if i not in drawn:
            for h in s.hists:
                b.append(f"<figure><figcaption>{escape(h.label)}: {h.n} values, min {h.vmin}, max {h.vmax}"
                         f"</figcaption>{svg_hist(h)}</figure>")
        for e in s.extra:
            b.append(f"<h3>{escape(e.title)}</h3><table>" + "".join(
                f"<tr><th>{escape(k)}</th><td>{_line(v)}</td></tr>" for k, v in e.rows) + "</table>")
        b.append("</details>")
    for l in doc.closing:
        b.append(f"<p>{_line(l)}</p>")
    b.append("</body></html>")
    return "\n".join(b) + "\n"
