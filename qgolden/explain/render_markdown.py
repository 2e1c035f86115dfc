"""Markdown: for notes, issues and docs/forum-walkthrough.md."""
from __future__ import annotations

from .doc import Val, plain

BARS = " ▁▂▃▄▅▆▇█"


def _md_cell(cell) -> str:
    s = plain(cell) if not isinstance(cell, str) else cell
    return s.replace("|", "\\|")


def _md_line(line) -> str:
    """A line with the engine's numbers in `code`."""
    if isinstance(line, str):
        return line
    out = []
    for p in line:
        out.append(f"`{p.text}`" if isinstance(p, Val) else str(p))
    return "".join(out)


def table(t) -> list:
    out = []
    if t.caption:
        out += [f"*{t.caption}*", ""]
    out.append("| " + " | ".join(t.header) + " |")
    out.append("|" + "|".join("---" for _ in t.header) + "|")
    for row in t.rows:
        out.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
    out.append("")
    return out


def sparkline(h) -> str:
    m = max(h.counts) or 1
    bars = "".join(BARS[0 if c == 0 else max(1, round(c / m * 8))] for c in h.counts)
    return (f"`{h.lo} {bars} {h.hi}`  {h.n} values, min {h.vmin}, max {h.vmax}; "
            f"{h.clamp_note}: {h.clamped_lo} low, {h.clamped_hi} high")


def render_section(s) -> list:
    out = [f"### {s.title}", ""]
    if s.what:
        out += [s.what, ""]
    if s.formula:
        out += ["```"] + list(s.formula) + ["```", ""]
    if s.where is not None:
        out += table(s.where)
    for t in s.tables:
        out += table(t)
    if s.numbers:
        out += ["With this input's numbers:", "", "```"] + [plain(l) for l in s.numbers] + ["```", ""]
    for l in s.notes:
        out.append(f"- {_md_line(l)}")
    for l in s.marks:
        out.append(f"- {_md_line(l)}")
    for l in s.engine:
        out.append(f"- Engines: {_md_line(l)}")
    for h in s.hists:
        out.append(f"- Histogram of {h.label}: {sparkline(h)}")
    out.append("")
    for e in s.extra:
        out += [f"**{e.title}**", ""]
        out += table(type("T", (), {"caption": "", "header": ["", ""], "rows": [[k, v] for k, v in e.rows]})())
    return out


def render(doc) -> str:
    out = [f"## {doc.title}", ""]
    for l in doc.intro:
        out += [_md_line(l), ""]
    if doc.glossary is not None:
        out += ["### Glossary: every scale and zero point", ""]
        for l in doc.glossary_intro:
            out += [_md_line(l), ""]
        out += table(doc.glossary)
    for s in doc.sections:
        out += render_section(s)
    for l in doc.closing:
        out += [_md_line(l), ""]
    return "\n".join(out).rstrip() + "\n"
