"""`qgolden explain` / `qgolden trace`: a quantized model step by step, with the engine's own numbers.

    doc = explain(program, [x], sample=0)          # a Document (see doc.py)
    render(doc, "text" | "markdown" | "html")       # a string

Extra blocks per op (e.g. integer-only parameters) come from `register_extra(provider)` or
`explain(..., extra=provider)`, provider(node, program) -> [Extra(title, [(label, Line)])].
"""
from __future__ import annotations

from .build import ExplainError, build_document, register_extra, run_traced
from .doc import Document, Extra, Section, Val, plain

FORMATS = ("text", "markdown", "html")

# every explanation shows the certified integer-only parameters and accumulator widths
from .integer_extra import integer_form  # noqa: E402

register_extra(integer_form)


def explain(program, inputs, sample=0, layer=None, extra=None, state_dict_keys=None, title=None):
    """(Document, trace, env) for `program` run on `inputs` (a list of arrays)."""
    trace, env = run_traced(program, inputs)
    doc = build_document(program, trace, env, sample=sample, layer=layer, extra=extra,
                         state_dict_keys=state_dict_keys, title=title)
    return doc, trace, env


def render(doc, fmt: str = "markdown") -> str:
    if fmt == "markdown":
        from .render_markdown import render as r
    elif fmt == "html":
        from .render_html import render as r
    elif fmt == "text":
        from .render_text import render as r
    else:
        raise ExplainError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    return r(doc)


__all__ = ["explain", "render", "register_extra", "build_document", "run_traced", "ExplainError",
           "Document", "Section", "Extra", "Val", "plain", "FORMATS"]
