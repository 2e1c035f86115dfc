"""`qgolden explain` / `qgolden trace`: a quantized model step by step, with the engine's own numbers.

    doc = explain(program, [x], sample=0)          # a Document (see doc.py)
    render(doc, "text" | "markdown" | "html")       # a string

Extra blocks per op (e.g. integer-only parameters) come from `register_extra(provider)` or
`explain(..., extra=provider)`, provider(node, program) -> [Extra(title, [(label, Line)])].
"""
from __future__ import annotations

from .build import ExplainError, build_document, register_extra, run_traced
from .doc import Code, Document, Extra, Section, Val, plain

FORMATS = ("text", "markdown", "html")

# every explanation shows the certified integer-only parameters and accumulator widths
from .integer_extra import integer_form  # noqa: E402

register_extra(integer_form)


def explain(program, inputs, sample=0, layer=None, extra=None, state_dict_keys=None, title=None,
            float_reference=None, model=""):
    """(Document, trace, env) for `program` run on `inputs` (a list of arrays); float_reference: the
    float model's layer outputs {node or tensor name: array}, for the HTML summary's SQNR."""
    trace, env = run_traced(program, inputs)
    doc = build_document(program, trace, env, sample=sample, layer=layer, extra=extra,
                         state_dict_keys=state_dict_keys, title=title, float_reference=float_reference,
                         model=model)
    return doc, trace, env


def render(doc, fmt: str = "markdown", pictures: bool = True, open_layer=None, max_pictures=None) -> str:
    """doc as text, markdown or html; html only: pictures (inline SVG, needs matplotlib; for the open
    layer and the first max_pictures layers, default render_html.MAX_PICTURE_LAYERS) and the layer
    whose section starts open (node name, output name or number; default: the first)."""
    if fmt == "html":
        from .render_html import MAX_PICTURE_LAYERS, render as html

        return html(doc, pictures=pictures, open_layer=open_layer,
                    max_pictures=MAX_PICTURE_LAYERS if max_pictures is None else max_pictures)
    if fmt == "markdown":
        from .render_markdown import render as r
    elif fmt == "text":
        from .render_text import render as r
    else:
        raise ExplainError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    return r(doc)


__all__ = ["explain", "render", "register_extra", "build_document", "run_traced", "ExplainError",
           "Document", "Section", "Extra", "Val", "Code", "plain", "FORMATS"]
