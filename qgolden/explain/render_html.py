"""One self-contained HTML file: a collapsible <details> section per op, tables, and an inline
SVG histogram of each tensor's integer values with the clamped fraction marked. No scripts,
no external resources."""
from __future__ import annotations

from html import escape

from .doc import Val

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em;max-width:1200px;color:#222;background:#fff}
h1{font-size:1.5em} h2{font-size:1.2em;margin-top:1.5em}
details{border:1px solid #ccc;border-radius:6px;margin:.6em 0;padding:.3em .8em;background:#fafafa}
summary{cursor:pointer;font-weight:600;padding:.2em 0}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}
th{background:#eef}
caption{caption-side:top;text-align:left;font-style:italic;padding:2px}
pre{background:#f0f0f0;padding:.5em;overflow-x:auto}
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
    h.append("</table>")
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


def render(doc) -> str:
    b = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
         f"<title>{escape(doc.title)}</title><style>{CSS}</style></head><body>",
         f"<h1>{escape(doc.title)}</h1>",
         '<p class="legend"><span class="v clamp">clamped</span><span class="v relu">ReLU</span>'
         '<span class="v sat">int16 saturation</span><span class="v tie">.5 tie</span><span class="v near_tie">near .5 tie</span></p>']
    for l in doc.intro:
        b.append(f"<p>{_line(l)}</p>")
    if doc.glossary is not None:
        b.append('<details open><summary>Glossary: every scale and zero point</summary>')
        for l in doc.glossary_intro:
            b.append(f"<p>{_line(l)}</p>")
        b.append(_table(doc.glossary))
        b.append("</details>")
    for s in doc.sections:
        b.append(f'<details id="{escape(s.key)}"><summary>{escape(s.title)}</summary>')
        if s.what:
            b.append(f"<p>{escape(s.what)}</p>")
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
        for h in s.hists:
            b.append(f"<figure><figcaption>{escape(h.label)}: {h.n} values, min {h.vmin}, max {h.vmax}</figcaption>"
                     f"{svg_hist(h)}</figure>")
        for e in s.extra:
            b.append(f"<h3>{escape(e.title)}</h3><table>" + "".join(
                f"<tr><th>{escape(k)}</th><td>{_line(v)}</td></tr>" for k, v in e.rows) + "</table>")
        b.append("</details>")
    for l in doc.closing:
        b.append(f"<p>{_line(l)}</p>")
    b.append("</body></html>")
    return "\n".join(b) + "\n"
