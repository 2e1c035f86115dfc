"""The explanation as data: sections of lines, tables and histograms whose numbers are `Val`s.

A `Val` is one printed number together with where it came from (`src`): the engine's trace
of the real computation, the engine's tensors, a parameter of the program, or (for "what
another engine would do") a named formula from `qgolden.numerics`. Renderers (text,
markdown, html) only format these objects, so every printed number can be checked
against its source (tests/test_explain*.py do).

src forms:
    ("trace", node_name, key, index)   trace[node_name][key][index]
    ("env", tensor_name, index)        the engine's value of a tensor
    ("attr", node_name, key)           node.attrs[key]
    ("const", node_name, key, index)   node.consts[key][index]
    ("tensor", tensor_name, field)     program.tensors[tensor_name].scale / .zero_point
    ("other", formula, node_name, index)  another engine's value (see build.other_engine_value)
    ("float64", node_name, index)      the pre-round value in float64 arithmetic (near_tie.float64_pre_round)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Union

import numpy as np


def fmt(v) -> str:
    """The one way a number is printed: integers as integers, float32 with the shortest
    text that reads back to the same float32, float64 likewise (Python repr)."""
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, np.float32):
        return _clean(np.format_float_positional(v, unique=True, trim="-")
                      if 1e-5 <= abs(float(v)) < 1e9 or v == 0 else np.format_float_scientific(v, unique=True, trim="-"))
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    return str(v)


def _clean(s: str) -> str:
    return s[:-1] if s.endswith(".") else s


@dataclass
class Val:
    value: Any
    src: tuple
    style: str = ""  # "", clamp, relu, sat, tie, near_tie: how renderers highlight it

    @property
    def text(self) -> str:
        return fmt(self.value)


class Code(str):
    """A command or identifier quoted in running text: markdown `code`, HTML <code>, plain in text."""


Part = Union[str, Val]
Line = List[Part]


def plain(line) -> str:
    """A line as plain text."""
    if isinstance(line, str):
        return line
    return "".join(p.text if isinstance(p, Val) else str(p) for p in line)


def vals_of(line) -> list:
    if isinstance(line, str):
        return []
    return [p for p in line if isinstance(p, Val)]


@dataclass
class Table:
    header: list
    rows: list  # list of list of cells; a cell is a str or a Line
    caption: str = ""


@dataclass
class Hist:
    """Integer values of one tensor (the shown sample) in bins over the dtype's range."""
    label: str
    counts: list
    lo: int
    hi: int
    n: int
    clamped_lo: int  # how many were clamped at the low end (incl. ReLU)
    clamped_hi: int
    clamp_note: str = "clamped"
    vmin: int = 0
    vmax: int = 0


@dataclass
class Extra:
    """An extra block a caller attaches to a node's section (e.g. integer-only parameters:
    M0, shift, int32 bias). rows: (label, Line)."""
    title: str
    rows: list


@dataclass
class LayerFacts:
    """One layer's numbers for the HTML summary and pictures (explain/facts.py), read from the
    engine's trace and tensors over the whole input batch.

    scales / zero_points: (symbol, value) pairs; out_used: observed (min, max) of the output
    integers, out_avail: the dtype's (qmin, qmax); out_counts: how many outputs take each integer
    of out_avail; sqnr_db against sqnr_ref ("float model" or "dequantized inputs"); acc_*: the
    accumulator (linear/conv), observed and worst case over every input; stair: the
    requantization staircase of one channel (Staircase)."""
    key: str
    number: int
    name: str
    op: str
    inputs: list  # (tensor name, shape)
    out_name: str
    out_shape: tuple
    out_dtype: str
    scales: list = field(default_factory=list)
    zero_points: list = field(default_factory=list)
    out_used: tuple | None = None
    out_avail: tuple | None = None
    out_counts: list | None = None
    n_values: int = 0
    sqnr_db: float | None = None
    sqnr_ref: str = ""
    acc_observed: tuple | None = None
    acc_worst: tuple | None = None
    acc_bits: int | None = None
    acc_worst_bits: int | None = None
    stair: Any = None
    dead_channels: list | None = None  # linear/conv channels at their clamp floor for every value of this input
    near_ties: int | None = None  # values before rounding within a relative 1e-4 of .5 (near_tie.near_tie_mask)


@dataclass
class Staircase:
    """Accumulator -> output integer of one output channel over its observed accumulators:
    the engine's (acc, out) pairs (one per distinct accumulator, sorted), the float line (acc, real value in output units)
    at both ends, and the near-ties / exact .5 ties (acc, out, pre-round value) of that channel."""
    channel: int
    acc: list
    out: list
    line: list
    near_ties: list
    ties: list
    n_near_ties_layer: int
    clamp: tuple
    standard_out: list | None = None  # the TFLite/CMSIS-NN pipeline's output at each acc (None: no such form)
    standard_params: str = ""  # its constants (M0, shift, int32 bias)


@dataclass
class Section:
    key: str  # node name ("" for non-node sections)
    title: str
    what: str = ""
    formula: list = field(default_factory=list)  # symbolic lines (str)
    where: Table | None = None  # symbol -> model name -> value
    numbers: list = field(default_factory=list)  # the formula with this input's numbers (Lines)
    tables: list = field(default_factory=list)
    marks: list = field(default_factory=list)  # Lines
    engine: list = field(default_factory=list)  # Lines: what another engine / CPU would do
    hists: list = field(default_factory=list)
    extra: list = field(default_factory=list)  # Extra
    notes: list = field(default_factory=list)  # Lines
    facts: LayerFacts | None = None


@dataclass
class Document:
    title: str
    intro: list = field(default_factory=list)  # Lines
    glossary: Table | None = None
    glossary_intro: list = field(default_factory=list)  # Lines
    sections: list = field(default_factory=list)
    closing: list = field(default_factory=list)  # Lines
    model: str = ""  # what the user gave (a path or builder), for the HTML summary
    engine: str = ""
    isa: str = ""
    input_desc: str = ""
    graph: list = field(default_factory=list)  # (node key, number, name, op, [producer keys]) in order
    edge_labels: dict = field(default_factory=dict)  # (producer key, consumer key) -> "s=… z=…" of the tensor
    integer_summary: str = ""  # the integer-only form of the program (certified methods), for the HTML summary

    def all_vals(self):
        """Every Val in the document, in order."""
        out = []

        def line_vals(x):
            if isinstance(x, list):
                out.extend(vals_of(x))

        def table_vals(t):
            if t is None:
                return
            for row in t.rows:
                for cell in row:
                    line_vals(cell)

        for l in self.intro + self.glossary_intro + self.closing:
            line_vals(l)
        table_vals(self.glossary)
        for s in self.sections:
            table_vals(s.where)
            for l in s.numbers + s.marks + s.engine + s.notes:
                line_vals(l)
            for t in s.tables:
                table_vals(t)
            for e in s.extra:
                for _, l in e.rows:
                    line_vals(l)
        return out
