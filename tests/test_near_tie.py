"""Near-ties (values within a relative 1e-4 of a .5 boundary before rounding) are marked in
explain and trace, with what float64 arithmetic gives; every printed number checks against its source."""
import numpy as np
import pytest

from qgolden.explain.near_tie import decimal_float64, is_near_tie, quantize_float64, typed_reciprocal


def test_is_near_tie_boundaries():
    assert is_near_tie(np.float32(229.49998))
    assert not is_near_tie(229.5)  # an exact tie is a tie, not a near-tie
    assert not is_near_tie(229.47)
    assert is_near_tie(0.50004) and not is_near_tie(0.5001)
    assert is_near_tie(-2.50002) and not is_near_tie(float("nan"))


def test_float64_of_the_forum_quantize():
    s = float(np.float32(1 / 255))
    assert typed_reciprocal(s) == 255.0
    assert decimal_float64(np.float32(0.9)) == 0.9
    assert quantize_float64(np.float32(0.9), s, 0) == 229.5
    assert typed_reciprocal(0.0297) == 1 / 0.0297


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_inputs_near_ties_are_marked_and_checkable(seed):
    import torch

    from qgolden.api import lower
    from qgolden.examples import forum
    from qgolden.explain import render_html, render_markdown, render_text
    from qgolden.explain.build import build_document, run_traced
    from qgolden.explain.check import problems
    from qgolden.explain.trace_element import trace_document
    from qgolden.torch_side import engine as engine_ctx

    rng = np.random.default_rng(seed)
    # inputs k/255 ± a few float32 ulps put x·(1/s) next to .5 boundaries (k + 0.5)/255
    k = rng.integers(0, 255, size=(16, 2))
    x = ((k + 0.5) / 255).astype(np.float32)
    x[::3] = rng.random((6, 2), dtype=np.float32)
    with engine_ctx("x86"):
        prog = lower(forum.build(), example_inputs=(torch.from_numpy(x),), engine="x86")
    trace, env = run_traced(prog, [x])
    pre = trace["quantize_per_tensor"]["pre_round"]
    near = [tuple(int(u) for u in i) for i in np.argwhere(np.vectorize(is_near_tie)(pre))]
    assert near, "the crafted inputs must produce near-ties"
    i = near[0]
    doc = build_document(prog, trace, env, sample=i[0])
    assert problems(doc, prog, trace, env) == []
    assert "NEAR-TIE" in render_text.render(doc)
    assert "NEAR-TIE" in render_markdown.render(doc)
    assert "near_tie" in render_html.render(doc)
    tdoc = trace_document(prog, trace, env, "quantize_per_tensor", f"{i[0]},{i[1]}")
    assert problems(tdoc, prog, trace, env) == []
    assert "NEAR-TIE" in render_text.render(tdoc)
