"""Terminal output with rich: tables, colour when a TTY (marks: clamp, ReLU, saturation, tie)."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table as RTable
from rich.text import Text

from .doc import Val
from .render_markdown import sparkline

STYLES = {"clamp": "bold red", "relu": "magenta", "sat": "bold red reverse", "tie": "bold yellow", "near_tie": "yellow underline", "": "cyan"}


def printable(s) -> str:
    """Text with control characters (terminal escapes, newlines) shown as spaces."""
    return "".join(ch if ch.isprintable() else " " for ch in str(s))


def markup(s) -> str:
    """Text for a rich markup string: printable, and its '[' shown as typed, not as markup."""
    return escape(printable(s))


def text_of(line) -> Text:
    t = Text()
    if isinstance(line, str):
        t.append(printable(line))
        return t
    for p in line:
        if isinstance(p, Val):
            t.append(printable(p.text), style=STYLES.get(p.style, "cyan"))
        else:
            t.append(printable(p))
    return t


def _table(t, console):
    if t.caption:
        console.print(Text(printable(t.caption), style="italic"))
    rt = RTable(show_lines=False, expand=False)
    for h in t.header:
        rt.add_column(text_of(h), overflow="fold")
    for row in t.rows:
        rt.add_row(*[text_of(c) for c in row])
    console.print(rt)


def print_brief_section(s, console):
    """The short form of a section: title, formula, the computation per element (the numbers lines, or
    the per-element table when there are none) and the marks (clamps, ReLU, ties, near-ties)."""
    console.rule(f"[bold]{markup(s.title)}", align="left")
    for f in s.formula:
        console.print(Text("    " + printable(f), style="bold"))
    if s.numbers:
        for l in s.numbers:
            console.print(Text("  ") + text_of(l), highlight=False)
    elif s.tables:
        _table(s.tables[-1], console)
    for l in s.marks:
        console.print(Text("• ") + text_of(l), highlight=False)


def print_section(s, console):
    console.rule(f"[bold]{markup(s.title)}", align="left")
    if s.what:
        console.print(Text(printable(s.what)), highlight=False)
    for f in s.formula:
        console.print(Text("    " + printable(f), style="bold"))
    if s.where is not None:
        _table(s.where, console)
    for t in s.tables:
        _table(t, console)
    if s.numbers:
        console.print("With this input's numbers:", highlight=False)
        for l in s.numbers:
            console.print(Text("  ") + text_of(l), highlight=False)
    for l in s.notes + s.marks:
        console.print(Text("• ") + text_of(l), highlight=False)
    for l in s.engine:
        console.print(Text("• engines: ", style="italic") + text_of(l), highlight=False)
    for h in s.hists:
        console.print(Text(f"• histogram of {printable(h.label)}: {sparkline(h)}"), highlight=False)
    for e in s.extra:
        console.print(Text(printable(e.title), style="bold"))
        rt = RTable(show_header=False)
        rt.add_column("")
        rt.add_column("")
        for k, v in e.rows:
            rt.add_row(text_of(k), text_of(v))
        console.print(rt)


def print_doc(doc, console: Console, full: bool = True):
    """The document on a console; full=False: the short form (print_brief_section, no glossary table),
    about a screen per two layers, with a line saying what --full adds."""
    console.print(f"[bold underline]{markup(doc.title)}[/]")
    for l in doc.intro:
        console.print(text_of(l), highlight=False)
    if not full:
        for s in doc.sections:
            print_brief_section(s, console)
        console.print(Text("(short form: --full adds the glossary of every scale and zero point, the parameter "
                           "and input tables, the other engines, histograms and the integer-only form)",
                           style="italic"), highlight=False)
        return
    if doc.glossary is not None:
        console.rule("[bold]Glossary: every scale and zero point", align="left")
        for l in doc.glossary_intro:
            console.print(text_of(l), highlight=False)
        _table(doc.glossary, console)
    for s in doc.sections:
        print_section(s, console)
    for l in doc.closing:
        console.print(text_of(l), highlight=False)


def render(doc, width=160, full=True) -> str:
    """Plain text (no colour), e.g. for -o FILE."""
    import io

    buf = io.StringIO()
    c = Console(file=buf, width=width, color_system=None, force_terminal=False)
    print_doc(doc, c, full)
    return buf.getvalue()
