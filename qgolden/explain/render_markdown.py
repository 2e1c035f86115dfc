"""Markdown: for notes, issues and docs/forum-walkthrough.md.

Names come from the model or a program file, so every piece of text is made inert: one line
(a newline could start a heading, a list or a fence), no raw HTML (`<` before a tag or autolink
becomes `&lt;`), code spans and fences longer than any backtick run inside them (CommonMark 6.1,
4.5: a shorter run cannot close them).
"""
from __future__ import annotations

import re

from .doc import Code, Val, plain

BARS = " ▁▂▃▄▅▆▇█"


def md_text(s) -> str:
    """Text as inert markdown on one line: control characters (newlines too) become spaces and a
    '<' that could open an HTML tag or autolink becomes '&lt;'."""
    t = "".join(ch if ch.isprintable() else " " for ch in str(s))
    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", t)


def _fence_for(text: str, least: int) -> str:
    """A run of backticks longer than any inside `text` (and at least `least`)."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(least, longest + 1)


def md_code(s) -> str:
    """An inline code span holding s verbatim (one line)."""
    t = "".join(ch if ch.isprintable() else " " for ch in str(s))
    f = _fence_for(t, 1)
    pad = " " if t.startswith("`") or t.endswith("`") else ""
    return f"{f}{pad}{t}{pad}{f}"


def md_block(lines) -> list:
    """A fenced code block of the lines (each made one line), with a fence no line can close."""
    body = ["".join(ch if ch.isprintable() else " " for ch in str(l)) for l in lines]
    f = _fence_for("\n".join(body), 3)
    return [f] + body + [f]


def _md_cell(cell) -> str:
    s = md_text(plain(cell) if not isinstance(cell, str) else cell)
    return s.replace("|", "\\|")


def _md_line(line) -> str:
    """A line with the engine's numbers in `code`."""
    if isinstance(line, str):
        return md_text(line)
    out = []
    for p in line:
        out.append(md_code(p.text) if isinstance(p, Val) else md_code(p) if isinstance(p, Code) else md_text(p))
    return "".join(out)


def table(t) -> list:
    out = []
    if t.caption:
        out += [f"*{md_text(t.caption)}*", ""]
    out.append("| " + " | ".join(_md_cell(h) for h in t.header) + " |")
    out.append("|" + "|".join("---" for _ in t.header) + "|")
    for row in t.rows:
        out.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
    out.append("")
    return out


def sparkline(h) -> str:
    m = max(h.counts) or 1
    bars = "".join(BARS[0 if c == 0 else max(1, round(c / m * 8))] for c in h.counts)
    return (f"{md_code(f'{h.lo} {bars} {h.hi}')}  {h.n} values, min {h.vmin}, max {h.vmax}; "
            f"{md_text(h.clamp_note)}: {h.clamped_lo} low, {h.clamped_hi} high")


def render_section(s) -> list:
    out = [f"### {md_text(s.title)}", ""]
    if s.what:
        out += [md_text(s.what), ""]
    if s.formula:
        out += md_block(s.formula) + [""]
    if s.where is not None:
        out += table(s.where)
    for t in s.tables:
        out += table(t)
    if s.numbers:
        out += ["With this input's numbers:", ""] + md_block(plain(l) for l in s.numbers) + [""]
    for l in s.notes:
        out.append(f"- {_md_line(l)}")
    for l in s.marks:
        out.append(f"- {_md_line(l)}")
    for l in s.engine:
        out.append(f"- Engines: {_md_line(l)}")
    for h in s.hists:
        out.append(f"- Histogram of {md_text(h.label)}: {sparkline(h)}")
    out.append("")
    for e in s.extra:
        out += [f"**{md_text(e.title)}**", ""]
        out += table(type("T", (), {"caption": "", "header": ["", ""], "rows": [[k, v] for k, v in e.rows]})())
    return out


def render(doc) -> str:
    out = [f"## {md_text(doc.title)}", ""]
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
