"""The README's supported-ops section is the op table as `python -m qgolden.ops` prints it."""
from __future__ import annotations

import runpy
from pathlib import Path

from qgolden.ops import table
from qgolden.ops.__main__ import markdown, readme_section

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_section_equals_the_generated_table():
    assert readme_section(README.read_text(encoding="utf-8")) == markdown()


def test_module_prints_one_row_per_op(capsys):
    runpy.run_module("qgolden.ops", run_name="__main__")
    out = capsys.readouterr().out
    assert out == markdown()
    names = [line.split("|")[1].strip().strip("`") for line in out.splitlines()[2:]]
    assert names == sorted(table())
    row = {n: line for n, line in zip(names, out.splitlines()[2:])}
    assert "`quantized::matmul`" in row["matmul"] and "`quantized::conv3d_relu`" in row["conv3d"]


def _expand(spelling):
    """'F.max_pool1d/2d' -> ['F.max_pool1d', 'F.max_pool2d']; 'operator.add/sub' -> ['operator.add', 'operator.sub']."""
    head, *alts = spelling.split("/")
    out = [head]
    for a in alts:
        if a[:1].isdigit():  # another dimension: replace the trailing '1d'
            out.append(head.rstrip("0123456789d") + a)
        else:  # another name in the same namespace
            sep = "::" if "::" in head else "."
            out.append(head.rsplit(sep, 1)[0] + sep + a)
    return out


def test_listed_call_spellings_are_accepted():
    """Every function, method, operator and op spelling the table lists is one the importers accept
    (fx_ops.CALLS, TorchScript's targets included); module and descriptive entries are not calls."""
    import re

    from qgolden.importers.fx_ops import CALLS

    checked = 0
    for name, spec in table().items():
        for spelling in spec.torch:
            if " " in spelling or "(" in spelling or not re.match(r"^(F\.|torch\.|x\.|operator\.|quantized::|aten::)",
                                                                   spelling):
                continue
            for s in _expand(spelling):
                key = "method." + s[2:] if s.startswith("x.") else s
                assert key in CALLS, (name, spelling, key)
                checked += 1
    assert checked > 100
