"""The HTML explanation: a summary whose numbers are the program's, a table of contents whose links
resolve, the first (or asked-for) layer open, inline SVG pictures that parse, hostile names inert in
HTML and SVG, a complete page without matplotlib, and a page that renders in headless Chromium
(Debian's `chromium`, installed by .ci/run) with no console errors and visible pictures."""
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import numpy as np
import pytest
import torch

import qgolden
from qgolden.examples import forum
from qgolden.explain import ExplainError, explain, render
from qgolden.explain.doc import fmt
from qgolden.explain.render_html import layer_id

sys.path.insert(0, os.path.dirname(__file__))
from test_hostile import HOSTILE, renamed  # noqa: E402
from test_resnet_bottleneck import _quantized  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SVG = re.compile(r"<svg\b.*?</svg>", re.S)


class Page(HTMLParser):
    """Tags, ids, fragment links, open <details> ids, text per summary-table row, title attributes."""

    def __init__(self, html):
        super().__init__(convert_charrefs=True)
        self.tags, self.ids, self.links, self.open, self.rows, self.titles = [], set(), [], [], {}, {}
        self._row = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if "id" in a:
            self.ids.add(a["id"])
        for k in ("href", "xlink:href"):
            if (a.get(k) or "").startswith("#"):
                self.links.append(a[k][1:])
        if tag == "details" and "open" in a:
            self.open.append(a.get("id"))
        if tag == "tr" and (a.get("id") or "").startswith("row-"):
            self._row = a["id"]
            self.rows[self._row] = []
        if tag == "td" and self._row:
            self.rows[self._row].append("")
        if tag == "span" and self._row and "title" in a:
            self.titles.setdefault(self._row, []).append(a["title"])

    def handle_endtag(self, tag):
        if tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._row and self.rows[self._row]:
            self.rows[self._row][-1] += data


def svgs(html):
    """Every inline <svg> element, parsed as XML (an error here is a broken picture)."""
    return [ET.fromstring(s) for s in SVG.findall(html)]


@pytest.fixture(scope="module")
def resnet():
    """The tests' ResNet-like model (4 bottlenecks, per-channel weights), a batch of 2, explained and
    rendered once with every picture."""
    q = _quantized("fx", True, seed=11)
    x = (np.random.default_rng(3).standard_normal((2, 3, 32, 32)) * 1.5).astype(np.float32)
    prog = qgolden.lower(q, example_inputs=(torch.from_numpy(x),), engine="x86")
    doc, trace, env = explain(prog, [x], model="resnet")
    return prog, doc, trace, env, render(doc, "html")


def test_every_layer_in_toc_summary_and_sections_and_links_resolve(resnet):
    prog, doc, _, _, html = resnet
    page = Page(html)
    ids = [layer_id(i + 1) for i in range(len(prog.nodes))]
    assert set(ids) <= page.ids and {"summary", "toc", "graph", "glossary"} <= page.ids
    assert page.links and all(link in page.ids for link in page.links), set(page.links) - page.ids
    for i in ids:  # the contents, the summary table and the graph all link every layer
        assert page.links.count(i) >= 4, i
    assert [r for r in page.rows] == [f"row-{i + 1}" for i in range(len(prog.nodes))]
    for n, i in zip(prog.nodes, range(len(prog.nodes))):
        assert page.rows[f"row-{i + 1}"][1] == n.name and page.rows[f"row-{i + 1}"][2] == n.op
    assert page.open == ["graph", layer_id(1)]  # the first layer open, the others collapsed
    assert "`" not in html  # the intro's `qgolden run` is a <code> now
    assert "<code>qgolden run</code>" in html
    assert "script" not in page.tags


def test_pictures_are_inline_svg_that_parse(resnet):
    prog, doc, _, _, html = resnet
    pics = svgs(html)
    gemm = [s for s in doc.sections if s.facts.stair is not None]
    hist = [s for s in doc.sections if s.facts.out_counts is not None]
    acc = [s for s in doc.sections if s.facts.acc_observed is not None]
    assert len(gemm) == sum(n.op == "conv" for n in prog.nodes) + 1  # every conv and the fc
    assert len(pics) == 1 + len(gemm) + len(hist) + len(acc)
    assert html.count("requantization staircase") == len(gemm)
    ids = [e.get("id") for p in pics for e in p.iter() if e.get("id")]
    assert len(ids) == len(set(ids)), "inline SVGs share an element id"
    for p in pics:
        assert not [e for e in p.iter() if e.tag.endswith("script") or any(k.startswith("on") for k in e.attrib)]
    # the graph: one box per node, named
    graph = SVG.findall(html)[0]
    for i, n in enumerate(prog.nodes):
        assert f"{i + 1}. {n.name}" in graph and f'"#{layer_id(i + 1)}"' in graph


def test_summary_numbers_are_the_programs(resnet):
    """Every number of the summary table, recomputed here from the engine's tensors and the program."""
    from qgolden.integer.accumulate import analyse, bits_for

    prog, doc, trace, env, html = resnet
    page = Page(html)
    for i, n in enumerate(prog.nodes):
        cells, titles = page.rows[f"row-{i + 1}"], page.titles.get(f"row-{i + 1}", [])  # titles[0]: the range bar
        out = env[n.output]
        info = prog.tensors[n.output]
        if info.quantized:
            assert cells[5] == f"[{out.min()}, {out.max()}] / [0, 255]"
        if n.op in ("conv", "linear"):
            t = trace[n.name]
            acc = np.asarray(t.get("acc_exact", t["acc"]))
            rep = analyse(n, prog.profile, 0, 255)
            lo, hi = int(rep["lo"].min()), int(rep["hi"].max())
            assert cells[7] == (f"[{acc.min()}, {acc.max()}] {bits_for(acc.min(), acc.max())} bits"
                                f"[{lo}, {hi}] {bits_for(lo, hi)} bits")
            # SQNR against the layer in float64 from its dequantized input and weight (torch's conv here)
            x = (env[n.inputs[0]].astype(np.float64) - n.attrs["x_zero_point"]) * n.attrs["x_scale"]
            ws = np.asarray(n.consts["weight_scale"], np.float64).reshape(-1)
            w = n.consts["weight"].astype(np.float64) * ws.reshape((-1,) + (1,) * (n.consts["weight"].ndim - 1))
            xt, wt, b = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(n.consts["bias"].astype(np.float64))
            if n.op == "conv":
                ref = torch.nn.functional.conv2d(xt, wt, b, n.attrs["stride"], n.attrs["padding"],
                                                 n.attrs["dilation"], n.attrs["groups"]).numpy()
            else:
                ref = torch.nn.functional.linear(xt, wt, b).numpy()
            if n.attrs.get("relu"):
                ref = np.maximum(ref, 0)
            got = (out.astype(np.float64) - info.zero_point) * info.scale
            want = 10 * np.log10(np.sum(ref ** 2) / np.sum((ref - got) ** 2))
            assert abs(doc.sections[i].facts.sqnr_db - want) < 1e-6 * abs(want)
            assert cells[6] == f"{doc.sections[i].facts.sqnr_db:.1f}dequantized inputs"
            sw = np.asarray(n.consts["weight_scale"]).reshape(-1)
            assert titles[1:5] == [fmt(n.attrs["x_scale"]), fmt(sw.min()), fmt(sw.max()), fmt(n.attrs["out_scale"])]
        else:
            assert cells[6] == "—" and cells[7] == "—"


def test_staircase_is_the_engines_pairs(resnet):
    """The staircase's points are (accumulator, output) pairs of one channel of the engine's trace,
    and its near-ties are the trace's pre-round values within 1e-4 of a .5 boundary."""
    from qgolden.explain.near_tie import is_near_tie

    prog, doc, trace, env, _ = resnet
    seen_near = 0
    for s in doc.sections:
        st = s.facts.stair
        if st is None:
            continue
        n = next(n for n in prog.nodes if n.name == s.key)
        out = env[n.output]
        out_rows = np.moveaxis(out, 1, -1).reshape(-1, out.shape[1]) if n.op == "conv" else out.reshape(-1, out.shape[-1])
        acc = np.asarray(trace[n.name]["acc"]).reshape(out_rows.shape)
        pre = np.asarray(trace[n.name]["pre_round"]).reshape(out_rows.shape)
        pairs = set(zip(acc[:, st.channel].tolist(), out_rows[:, st.channel].tolist()))
        assert set(zip(st.acc, st.out)) <= pairs and st.acc == sorted(st.acc)
        assert len(st.acc) == min(len({a for a, _ in pairs}), len(st.acc))
        near = {(int(a), int(o)) for a, o, p in zip(acc[:, st.channel], out_rows[:, st.channel], pre[:, st.channel])
                if is_near_tie(p)}
        assert {(a, o) for a, o, _ in st.near_ties} <= near
        assert st.n_near_ties_layer == sum(is_near_tie(p) for p in pre.reshape(-1))
        seen_near += len(st.near_ties)
    assert seen_near > 0  # this model and input have near-ties, so the marks are exercised


def test_open_layer_and_picture_cap(resnet):
    prog, doc, _, _, _ = resnet
    html = render(doc, "html", open_layer="layers_0_conv2", max_pictures=2)
    page = Page(html)
    k = next(i for i, n in enumerate(prog.nodes) if n.name == "layers_0_conv2") + 1
    assert page.open == ["graph", layer_id(k)]
    assert len(svgs(html)) - html.count('<svg xmlns="http://www.w3.org/2000/svg" width="320"') == 1 + 1 + 3 + 3
    assert f"pictures for 3 of {len(prog.nodes)} layers" in html
    assert Page(render(doc, "html", open_layer=str(k), pictures=False)).open == ["graph", layer_id(k)]
    with pytest.raises(ExplainError, match="no such layer"):
        render(doc, "html", open_layer="nope")


def test_page_without_matplotlib_is_complete(resnet, monkeypatch):
    prog, doc, _, _, with_pictures = resnet
    for key in [k for k in sys.modules if k == "matplotlib" or k.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, key)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    html = render(doc, "html")
    page = Page(html)
    assert "no pictures: matplotlib is not installed" in html
    assert "requantization staircase" not in html and "<svg" in html  # only the small hand-drawn histograms
    assert all(svg.get("width") == "320" for svg in svgs(html))
    assert {layer_id(i + 1) for i in range(len(prog.nodes))} <= page.ids
    assert page.rows == Page(with_pictures).rows
    assert all(link in page.ids for link in page.links)
    off = render(doc, "html", pictures=False)
    assert "no pictures: turned off (--no-pictures)" in off and Page(off).rows == page.rows


def test_hostile_names_stay_inert_in_html_and_svg(forum_model):
    prog = renamed(qgolden.lower(forum_model, example_inputs=(torch.from_numpy(forum.INPUTS),), engine="x86",
                                 isa="avx2"))
    doc, _, _ = explain(prog, [forum.INPUTS], model=HOSTILE[4])
    html = render(doc, "html", open_layer=prog.nodes[2].name)
    page = Page(html)
    assert "script" not in page.tags and "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    pics = svgs(html)
    assert len(pics) == 1 + 2 * 3 + 1  # graph; staircase, histogram, accumulator of both linears; quantize's histogram
    graph_text = " ".join("".join(e.itertext()) for e in pics[0].iter() if e.tag.endswith("text"))
    assert "<script>alert(1)" in graph_text  # drawn as text, escaped in the SVG source
    for p in pics:
        assert not [e for e in p.iter() if e.tag.endswith(("script", "foreignObject"))]
        assert not [k for e in p.iter() for k in e.attrib if k.lower().startswith("on")]
    assert all(link in page.ids for link in page.links)


def test_float_reference_sqnr(forum_model):
    """With the float model's output of a layer, the SQNR is measured against it."""
    prog = qgolden.lower(forum_model, example_inputs=(torch.from_numpy(forum.INPUTS),), engine="x86", isa="avx2")
    w1 = np.asarray(forum.W1, np.float64) * forum.W1_SCALE
    ref = np.maximum(forum.INPUTS.astype(np.float64) @ w1.T + np.asarray(forum.B1), 0.0)
    doc, _, env = explain(prog, [forum.INPUTS], float_reference={"input_layer": ref})
    f = {s.key: s.facts for s in doc.sections}
    info = prog.tensors["input_layer"]
    got = (env["input_layer"].astype(np.float64) - info.zero_point) * info.scale
    want = 10 * np.log10(np.sum(ref ** 2) / np.sum((ref - got) ** 2))
    assert f["input_layer"].sqnr_ref == "float model" and abs(f["input_layer"].sqnr_db - want) < 1e-9 * want
    assert f["out"].sqnr_ref == "dequantized inputs"
    html = render(doc, "html", pictures=False)
    assert f"{want:.1f}" in Page(html).rows["row-2"][6] and "against the float model" in html
    with pytest.raises(ExplainError, match="float reference"):
        explain(prog, [forum.INPUTS], float_reference={"input_layer": ref[:, :2]})
    with pytest.raises(ExplainError, match="no such layer"):
        explain(prog, [forum.INPUTS], float_reference={"nope": ref})


def test_cli_html_options(tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, forum.INPUTS)
    np.savez(tmp_path / "ref.npz", input_layer=np.zeros((7, 3), np.float32))
    page = tmp_path / "p.html"
    qg = [sys.executable, "-m", "qgolden.cli", "explain", "qgolden/examples/forum.py:build", "--input", str(x),
          "--isa", "avx2", "-f", "html", "-o", str(page)]
    r = subprocess.run(qg + ["--no-pictures", "--open", "out", "--float-ref", str(tmp_path / "ref.npz")],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    html = page.read_text()
    assert "turned off (--no-pictures)" in html and Page(html).open == ["graph", layer_id(3)]
    assert Page(html).rows["row-2"][6] == "−∞float model"  # all-zero reference: no signal
    r = subprocess.run(qg + ["--open", "nope"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "--open 'nope'" in r.stderr


def _chromium():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        # CI installs chromium and sets QGOLDEN_REQUIRE_CHROMIUM, so the test cannot silently skip there
        assert not os.environ.get("QGOLDEN_REQUIRE_CHROMIUM"), "chromium is required here (.ci/run installs it)"
        pytest.skip("no chromium on this machine (apt-get install chromium to run this test)")
    return chromium


def screenshot(chromium, html, tmp_path, name, size=(1200, 1800)):
    """(RGB pixels as a numpy array, console lines) of html rendered headless at a fixed window size."""
    from PIL import Image

    page = tmp_path / f"{name}.html"
    page.write_text(html, encoding="utf-8")
    shot = tmp_path / f"{name}.png"
    r = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
         f"--window-size={size[0]},{size[1]}", "--enable-logging=stderr", "--v=0", page.as_uri()],
        capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)})
    console = [l for l in r.stderr.splitlines() if "CONSOLE" in l or "Uncaught" in l]
    assert shot.exists(), f"no screenshot (exit {r.returncode}): {r.stderr[-2000:]}"
    return np.asarray(Image.open(shot).convert("RGB")), console


def count(pixels, rgb) -> int:
    return int(np.all(pixels == np.array(rgb, np.uint8), axis=-1).sum())


def test_html_in_headless_chromium(tmp_path, forum_model):
    """The forum page with its second linear open: not blank, no console errors, and the pictures are
    drawn (the graph's box fill and the histogram's and staircase's colours are present only then)."""
    chromium = _chromium()
    prog = qgolden.lower(forum_model, example_inputs=(torch.from_numpy(forum.INPUTS),), engine="x86", isa="avx2")
    doc, _, _ = explain(prog, [forum.INPUTS], sample=0)
    html = render(doc, "html", open_layer="out")
    assert "<script" not in html and "http://" not in re.sub(r'xmlns(:xlink)?="http://www\.w3\.org/[^"]*"', "", html)
    assert html.count("<details") == len(prog.nodes) + 2
    with_pics, console = screenshot(chromium, html, tmp_path, "pictures")
    assert console == [], "\n".join(console)
    without, console = screenshot(chromium, render(doc, "html", pictures=False, open_layer="out"), tmp_path, "plain")
    assert console == []
    assert with_pics.shape == (1800, 1200, 3)
    assert len(np.unique(with_pics.reshape(-1, 3), axis=0)) > 50, "the screenshot is blank"
    linear_box = (0xcf, 0xe0, 0xfb)  # the graph's fill of linear/conv nodes
    assert count(with_pics, linear_box) > 2000 and count(without, linear_box) == 0
    dots = (0x1f, 0x4f, 0xa8)  # the staircase's engine points
    assert count(with_pics, dots) >= 7 and count(without, dots) == 0  # 7 dots (7 output values of channel 0)
    clamp_red = (0xdd, 0x22, 0x22)  # the histogram's clamp bars and dashed range ends
    assert count(with_pics, clamp_red) > 50


def test_small_cnn_html_in_headless_chromium(tmp_path):
    """A small CNN's page (convs, pooling, a linear): every layer has its section, the summary and the
    graph render, the conv pictures are drawn, no console errors."""
    from qgolden.export.small_cnn import build

    chromium = _chromium()
    q, xs = build("x86")
    prog = qgolden.lower(q, example_inputs=tuple(torch.from_numpy(x) for x in xs), engine="x86")
    doc, _, _ = explain(prog, xs)
    html = render(doc, "html")
    page = Page(html)
    assert all(f"row-{i + 1}" in page.rows for i in range(len(prog.nodes)))
    assert {"summary", "graph", "toc"} <= page.ids and all(link in page.ids for link in page.links)
    convs = [n for n in prog.nodes if n.op == "conv"]
    assert convs and html.count("requantization staircase") >= len(convs)
    pixels, console = screenshot(chromium, html, tmp_path, "cnn")
    assert console == [], "\n".join(console)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50, "the screenshot is blank"
    assert count(pixels, (0xcf, 0xe0, 0xfb)) > 2000  # the graph's conv/linear boxes


def test_marks_at_once_equal_marks_element_by_element(resnet):
    """The explanation marks (clamp, ReLU, ties, near-ties, saturation) computed over whole trace arrays
    equal the element-by-element rule, on every element that has a mark and 1500 random others."""
    from qgolden.explain.build import Ctx, gemm_mark_masks, gemm_marks, gemm_marks_per_element, has_gemm_trace

    prog, _, trace, env, _ = resnet
    ctx = Ctx(prog, trace, env, 0)
    rng = np.random.default_rng(0)
    kinds = set()
    for n in prog.nodes:
        if not has_gemm_trace(prog, n, trace):
            continue
        masks = gemm_mark_masks(ctx, n)
        assert masks is not None, n.name
        shape = env[n.output].shape
        marked = {tuple(int(u) for u in i) for m in masks.values() for i in zip(*np.nonzero(m))}
        picks = {tuple(int(u) for u in np.unravel_index(f, shape)) for f in rng.integers(0, int(np.prod(shape)), 1500)}
        idx = sorted(marked | picks)
        fast, slow = gemm_marks(ctx, n, idx), gemm_marks_per_element(ctx, n, idx)
        assert fast == slow, n.name
        kinds |= set().union(*fast.values())
    assert {"relu", "near_tie"} <= kinds  # the rules that matter here were exercised


def test_summary_names_integer_form_dead_channels_near_ties_and_edge_scales(forum_model):
    """The summary says whether the program has a certified integer-only form and with which methods;
    each linear/conv row counts the channels dead on this input (at the clamp floor for every value) and
    the near-ties; every graph edge carries its tensor's scale and zero point."""
    from qgolden.explain.near_tie import near_tie_mask

    prog = qgolden.lower(forum_model, example_inputs=(torch.from_numpy(forum.INPUTS),), engine="x86", isa="avx2")
    doc, trace, env = explain(prog, [forum.INPUTS])
    assert doc.integer_summary.startswith("certified integer-only") and "2 requantizing layers" in doc.integer_summary
    f = {s.key: s.facts for s in doc.sections}
    hidden = env["input_layer"]
    assert f["input_layer"].dead_channels == [c for c in range(3) if (hidden[:, c] == 0).all()] == [0, 1]
    assert f["out"].dead_channels == []
    for name in ("quantize_per_tensor", "input_layer", "out"):
        assert f[name].near_ties == int(near_tie_mask(trace[name]["pre_round"]).sum())
    assert f["quantize_per_tensor"].near_ties >= 1  # 0.9 * 255 = 229.49998
    html = render(doc, "html")
    page = Page(html)
    assert "2 dead: 0, 1" in page.rows["row-2"][8] and "near-ties" in page.rows["row-2"][8]
    assert "certified integer-only" in html
    x_info = prog.tensors["quantize_per_tensor"]
    assert doc.edge_labels[("quantize_per_tensor", "input_layer")] == f"s={float(x_info.scale):.4g} z=0"
    graph = next(s for s in SVG.findall(html) if "quantize_per_tensor" in s or "input_layer" in s)
    assert f"s={float(x_info.scale):.4g} z=0" in graph


def test_staircase_shows_the_standard_pipeline_where_it_differs(forum_model):
    """The staircase carries the TFLite / CMSIS-NN pipeline's outputs for the same accumulators
    (integer/standard.py's constants); the picture marks where they differ from the engine."""
    from qgolden.integer.fixedpoint import requantize_values
    from qgolden.integer.standard import natural_bias, quantize_multiplier

    prog = qgolden.lower(forum_model, example_inputs=(torch.from_numpy(forum.INPUTS),), engine="x86", isa="avx2")
    x = np.random.default_rng(2).uniform(0, 1, (400, 2)).astype(np.float32)
    doc, _, _ = explain(prog, [x])
    node = next(n for n in prog.nodes if n.name == "out")
    st = {s.key: s.facts for s in doc.sections}["out"].stair
    c = st.channel
    m0, n = quantize_multiplier(float(node.attrs["x_scale"]) * float(np.asarray(node.consts["weight_scale"]).reshape(-1)[0])
                                / float(node.attrs["out_scale"]))
    b = natural_bias(np.asarray(node.consts["bias"]).reshape(-1)[[c]], node.attrs["x_scale"],
                     float(np.asarray(node.consts["weight_scale"]).reshape(-1)[0]), 1)[0]
    want = requantize_values(np.asarray(st.acc), m0, n, int(b), 0, int(node.attrs["out_zero_point"]), *st.clamp,
                             rounding="tflite")
    assert st.standard_out == want.tolist() and f"M0 = {m0}, shift = {n}" in st.standard_params
    html = render(doc, "html")
    differ = sum(1 for a, e in zip(st.standard_out, st.out) if a != e)
    assert f"TFLite pipeline where it differs ({differ} of {len(st.acc)})" in html
    assert "TFLite / CMSIS-NN pipeline: M0 = " in html
