"""qgolden explain / trace on the forum model: the issue's acceptance numbers, the glossary,
every printed number equal to the engine's trace, trace --compare, and clear errors."""
import re

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import qgolden
from qgolden.cli import app
from qgolden.examples import forum
from qgolden.explain import Extra, Val, explain, register_extra, render, run_traced
from qgolden.explain.build import EXTRA_PROVIDERS, build_document
from qgolden.explain.check import problems
from qgolden.explain.doc import plain

BUILD = "qgolden/examples/forum.py:build"
runner = CliRunner()


@pytest.fixture(scope="module")
def prog(forum_model):
    return qgolden.lower(forum_model, example_inputs=(torch.from_numpy(forum.INPUTS),), engine="x86", isa="avx2")


@pytest.fixture(scope="module")
def files(tmp_path_factory, prog):
    d = tmp_path_factory.mktemp("explain")
    np.save(d / "x.npy", forum.INPUTS)
    prog.save(d / "forum.qgp")
    return d


def qg(*args):
    r = runner.invoke(app, [str(a) for a in args])
    return r.exit_code, r.stdout, r.stderr if hasattr(r, "stderr") else ""


def _row(md, label):
    line = next(l for l in md.splitlines() if l.startswith(f"| {label} |"))
    return [c.strip() for c in line.strip("|").split("|")][1:]


def test_forum_fifth_input_acceptance(prog, forum_model):
    keys = list(forum_model.state_dict().keys())
    doc, trace, env = explain(prog, [forum.INPUTS], sample=4, state_dict_keys=keys)
    md = render(doc, "markdown")
    sec = {s.key: s for s in doc.sections}
    hidden = render(type(doc)("h", sections=[sec["input_layer"]]), "markdown")
    out = render(type(doc)("o", sections=[sec["out"]]), "markdown")
    assert _row(hidden, "y_q (output)") == ["0", "0", "33"]
    assert _row(out, "y_q (output)") == ["221", "243", "243", "232", "247", "247", "238"]
    # the glossary names every scale and zero point of the state_dict, the weight's too
    gl = "\n".join(md.split("### 1.")[0].splitlines())
    for k in keys:
        assert f"| {k}" in gl, k
    for k in ("input_layer_input_scale_0", "input_layer_input_zero_point_0", "input_layer.scale",
              "input_layer.zero_point", "out.scale", "out.zero_point"):
        assert re.search(rf"\| {re.escape(k)} \| [-0-9.]+ \|", gl), k
    assert "input_layer._packed_params._packed_params : weight scale | 0.05898105353116989" in gl
    # the engine difference, with the bias as fbgemm forms it
    assert "On qnnpack the bias would be quantized to int32: [`-2052`, `-1540`, `33551`] instead of " \
           "[`-2052.3284`, `-1540.4352`, `33551.05`]" in md
    assert "RELU: 2 of 3 elements" in md
    assert problems(doc, prog, trace, env) == []


def test_every_printed_number_equals_the_trace(prog):
    for sample in range(len(forum.INPUTS)):
        doc, trace, env = explain(prog, [forum.INPUTS], sample=sample)
        t2, e2 = run_traced(prog, [forum.INPUTS])  # an independent run
        assert problems(doc, prog, t2, e2) == []
        md = render(doc, "markdown")
        for s in doc.sections:
            for l in s.numbers:
                assert plain(l) in md
        # every number in the formula lines is a Val from the trace; the text between them holds
        # only the element's index and the uint8 clamp limits
        for s in doc.sections:
            for l in s.numbers:
                for p in l:
                    if isinstance(p, str):
                        rest = re.sub(r"int16|\[[\d,]+\]", "", p)
                        assert set(re.findall(r"\d+", rest)) <= {"0", "255"}, p


def test_saturation_is_marked_where_it_happens(prog):
    doc, trace, env = explain(prog, [forum.INPUTS], sample=0, layer="input_layer")
    md = render(doc, "markdown")
    assert "SAT: 1 of 3 elements had int16 pair saturation" in md
    assert "acc[0,2] would be `-46920` instead of `-32768`" in md
    assert _row(md, "y_q (output)") == ["0", "0", "6"]
    assert problems(doc, prog, trace, env) == []


def test_vnni_program_has_no_saturation(forum_model):
    p = qgolden.lower(forum_model, engine="x86", isa="avx512_vnni")
    doc, trace, env = explain(p, [forum.INPUTS], sample=0, layer="input_layer")
    md = render(doc, "markdown")
    assert "SAT:" not in md and _row(md, "y_q (output)") == ["0", "0", "0"]


def test_extra_sections_hook(prog):
    def provider(node, program):
        if node.op == "linear":
            return [Extra("integer-only parameters", [("M0", ["M0 = ", Val(node.attrs["out_scale"], ("attr", node.name, "out_scale"))])])]
        return None

    trace, env = run_traced(prog, [forum.INPUTS])
    base = [len(s.extra) for s in build_document(prog, trace, env, sample=4).sections]
    doc = build_document(prog, trace, env, sample=4, extra=provider)
    assert [len(s.extra) - b for s, b in zip(doc.sections, base)] == [0, 1, 1, 0]
    for fmt in ("markdown", "html", "text"):
        assert "integer-only parameters" in render(doc, fmt)
    register_extra(provider)
    try:
        assert sum(len(s.extra) for s in build_document(prog, trace, env).sections) == sum(base) + 2
    finally:
        EXTRA_PROVIDERS.remove(provider)


def test_cli_explain_formats(files):
    code, out, _ = qg("explain", BUILD, "--input", files / "x.npy", "--sample", 4, "--isa", "avx2")
    assert code == 0
    # the default on a terminal is the short form: two screens for the forum model
    assert "33551.05" in out and "221" in out and "NEAR-TIE" in out and "--full adds the glossary" in out
    assert "input_layer_input_scale_0" not in out and len(out.splitlines()) <= 60
    code, out, _ = qg("explain", BUILD, "--input", files / "x.npy", "--sample", 4, "--isa", "avx2", "--full")
    assert code == 0
    assert "33551.05" in out and "221" in out and "input_layer_input_scale_0" in out and "--full adds" not in out
    code, out, _ = qg("explain", files / "forum.qgp", "--input", files / "x.npy", "--sample", 4, "--format", "markdown")
    assert code == 0 and "| y_q (output) | 221 | 243 | 243 | 232 | 247 | 247 | 238 |" in out
    assert "input_layer.scale" in out  # the program keeps the state_dict names
    code, _, _ = qg("explain", files / "forum.qgp", "--input", files / "x.npy", "-f", "html", "-o", files / "f.html")
    assert code == 0 and (files / "f.html").read_text().startswith("<!DOCTYPE html>")


def test_cli_trace_element(files):
    code, out, _ = qg("trace", files / "forum.qgp", "--input", files / "x.npy", "--layer", "input_layer",
                      "--output-element", "0,2", "-f", "markdown")
    assert code == 0
    assert "| 0, 1 | 255·-56 + 255·-128 | -46920 | -32768 | SATURATED |" in out
    assert "engine trace acc = -32768, saturated pairs: 1" in out
    assert "| quantize_per_tensor | quantize_per_tensor (quantize) | 2 of 14 |" in out
    code, out, _ = qg("trace", files / "forum.qgp", "--input", files / "x.npy", "--output-element", "34")
    assert code == 0 and "out[4,6]" in out and "238" in out


def test_cli_trace_compare(files, prog):
    _, env = prog.run(forum.INPUTS, keep=True)
    dumps = {k: env[k].copy() for k in ("quantize_per_tensor", "input_layer", "out")}
    np.savez(files / "same.npz", **dumps)
    code, out, _ = qg("trace", files / "forum.qgp", "--input", files / "x.npy", "--compare", files / "same.npz")
    assert code == 0 and "all 3 dumped layers equal" in out
    dumps["input_layer"][5, 2] += 1  # one wrong value, as from the user's hardware
    dumps["out"][0, 0] += 3          # later layers differ too: the first one is reported
    np.savez(files / "bad.npz", **dumps)
    code, out, _ = qg("trace", files / "forum.qgp", "--input", files / "x.npy", "--compare", files / "bad.npz",
                      "-f", "markdown")
    assert code == 1
    assert "first difference at layer input_layer, element [5,2]" in out
    assert "Your dump has 72 at input_layer[5,2]; PyTorch (and this program) computes `71`" in out
    assert "exact Σ" in out  # the arithmetic at that element


@pytest.mark.parametrize("args,msg", [
    (["explain", "{q}", "--input", "{x}", "--layer", "nope"], "no layer named 'nope'"),
    (["explain", "{q}", "--input", "{x}", "--sample", "7"], "--sample 7 is out of range"),
    (["explain", "{q}", "--input", "{x}", "--format", "pdf"], "--format 'pdf'"),
    (["explain", "{q}", "--input", "{d}/missing.npy"], "no such input file"),
    (["trace", "{q}", "--input", "{x}", "--output-element", "7,0"], "out of range"),
    (["trace", "{q}", "--input", "{x}", "--output-element", "49"], "out of range"),
    (["trace", "{q}", "--input", "{x}", "--output-element", "a,b"], "expected integers"),
    (["trace", "{q}", "--input", "{x}", "--output-element", "1,2,3"], "has 2 dims"),
    (["trace", "{q}", "--input", "{x}", "--layer", "zz", "--output-element", "0"], "no layer named 'zz'"),
    (["trace", "{q}", "--input", "{x}"], "--output-element"),
    (["trace", "{q}", "--input", "{x}", "--compare", "{d}/nodumps.npz"], "no such dumps file"),
    (["trace", "{q}", "--input", "{x}", "--compare", "{x}"], "dumps"),
    (["trace", "{q}", "--input", "{x}", "--compare", "{d}/wrongkey.npz"], "unknown layer(s) conv9"),
    (["trace", "{q}", "--input", "{x}", "--compare", "{d}/wrongshape.npz"], "shape (3,)"),
])
def test_cli_errors_exit_2_with_one_message(files, args, msg):
    np.savez(files / "wrongkey.npz", conv9=np.zeros(3, np.uint8))
    np.savez(files / "wrongshape.npz", out=np.zeros(3, np.uint8))
    a = [s.format(q=files / "forum.qgp", x=files / "x.npy", d=files) for s in args]
    r = runner.invoke(app, a)
    assert r.exit_code == 2, r.output
    text = " ".join(r.output.split())
    assert msg in text and "Traceback" not in text


def test_forum_explain_shows_certified_integer_parameters(prog):
    """The forum model's integer-only parameters (M0, n, int32 bias) appear in explain."""
    from qgolden.integer import integer_params

    trace, env = run_traced(prog, [forum.INPUTS])
    text = render(build_document(prog, trace, env, sample=4), "markdown")
    params = integer_params(prog)
    for layer in ("input_layer", "out"):
        for ch in params[layer]["channels"][:4]:
            assert ch["method"] == "multiplier"
            assert f"M0 = {ch['M0']}, n = {ch['n']}, int32 bias = {ch['bias']}" in text
    assert "17 bits" in text  # the first layer's worst-case accumulator
