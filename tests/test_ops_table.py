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
