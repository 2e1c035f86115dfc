"""docs/hardware-checklist.md quotes the generated C of the forum model: every C line it quotes is in
the export it names, and its table of widths and constants matches the comment blocks."""
import re
from pathlib import Path

import numpy as np

DOC = Path(__file__).resolve().parents[1] / "docs" / "hardware-checklist.md"


def _forum_tflite_c(tmp_path):
    import torch

    from qgolden.api import lower
    from qgolden.examples import forum
    from qgolden.export.c import export_c
    from qgolden.integer import to_integer_only
    from qgolden.torch_side import engine

    with engine("x86"):
        prog = lower(forum.build(), example_inputs=(torch.from_numpy(forum.INPUTS),), engine="x86", isa="avx512_vnni")
    ip = to_integer_only(prog, rounding="tflite", allow_tables=False, accept_standard=True)
    export_c(ip, tmp_path, "forum", [forum.INPUTS], source=prog)
    return (tmp_path / "forum.c").read_text()


def test_checklist_quotes_the_generated_c(tmp_path):
    c = _forum_tflite_c(tmp_path)
    doc = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```c\n(.*?)```", doc, re.S)
    assert len(blocks) >= 3
    c_lines = set(c.splitlines())
    quoted = [l for b in blocks for l in b.splitlines() if l.strip()]
    missing = [l for l in quoted if l not in c_lines]
    assert not missing, missing[:5]
    # the table's constants are those of the comment block
    for s in ("B -2052, F 0, M0 2140699743, n 38", "s_w 0.0589810535, bias -0.474700004, b' -2052.32844",
              "in [-46920, 510]: 17-bit signed", "48-bit signed", "in [-32385, 2805]: 16-bit signed",
              "46-bit signed", "RoundingDivideByPOT the other 7..7", "RoundingDivideByPOT the other 6..6",
              "fused ReLU: out_min = z_y = 0"):
        assert s in c, s
    for s in ("| B | -2052, -1540, 33551 |", "| M0, n | 2140699743, 38 |", "17-bit signed | 48-bit signed | 38 | 7 |",
              "16-bit signed | 46-bit signed | 37 | 6 |"):
        assert s in doc, s


def test_generated_c_has_only_the_kernels_it_calls(tmp_path):
    c = _forum_tflite_c(tmp_path)
    assert "qg_linear(" in c and "qg_requantize(" in c
    for unused in ("qg_conv(", "qg_window(", "qg_lut(", "qg_mul(", "qg_cat(", "qg_gather("):
        assert unused not in c, unused
    assert ".rounding = QG_TFLITE" in c and ".rounding = 3" not in c
    assert len(c.splitlines()) < 420


def test_comment_lines_cannot_end_or_nest_the_comment():
    from qgolden.export.c import c_comment_line, comment_block

    for hostile in ("a*/b", "/*/", "**/", "x/**/y", "line\nbreak", "back\\slash", "tri??/graph", "é*/"):
        t = c_comment_line(hostile)
        assert "*/" not in t and "/*" not in t and "\n" not in t and "\\" not in t and "?" not in t, t
    block = comment_block(["s_x*s_w/s_y", "end */ here"])
    assert block.count("*/") == 1 and block.endswith(" */\n")


def test_acc_range_is_exact_on_every_input_byte():
    from qgolden.export.provenance import acc_range, signed_bits

    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, size=(5, 3))
    zw = rng.integers(-3, 4, size=5)
    for zx, signed in ((0, 0), (128, 0), (-5, 1)):
        lo, hi = acc_range(w, zw, zx, signed)
        xs = np.array(np.meshgrid(*[np.array([-128, 127] if signed else [0, 255])] * 3)).reshape(3, -1).T
        acc = (xs - zx) @ (w - zw[:, None]).T
        assert np.array_equal(acc.min(axis=0), lo) and np.array_equal(acc.max(axis=0), hi)
    assert signed_bits(-46920, 510) == 17 and signed_bits(-32768, 32767) == 16 and signed_bits(0, 0) == 1
