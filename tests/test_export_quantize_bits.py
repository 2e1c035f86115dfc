"""The float input's quantize in integer arithmetic on the float32 bits (integer/quantize_bits.py and
its C in export/c.py) against the engine's quantize ops and their threshold tables: FBGEMM's fused
multiply-add, torchao's multiply and divide modes, MLAS's divide; uint8 and int8; scales whose
reciprocal is subnormal or huge. The table lists every key where the engine's output steps, and both
forms are monotone, so agreement on both sides of every step proves equality on all 2^32 inputs;
the tests check exactly that in Python and in the compiled C, plus random bit patterns against the
engine op itself. QGOLDEN_EXHAUSTIVE=1 also runs the C on every one of the 2^32 patterns."""
import os
import shutil
import subprocess

import numpy as np
import pytest

from qgolden.integer import lut as L
from qgolden.integer import quantize_bits as QB
from qgolden.integer.fixedpoint import key_to_float32
from qgolden.ir import Node

PROFILE = {"engine": "x86", "isa": "avx2", "vector_width": 32, "num_threads": 1}
CASES = [
    ("quantize", {"scale": 0.0123, "zero_point": 3, "dtype": "uint8"}),
    ("quantize", {"scale": 1.0 / 3.0, "zero_point": -5, "dtype": "int8"}),
    ("quantize", {"scale": 0.5, "zero_point": 128, "dtype": "uint8"}),      # ties at .5 everywhere
    ("quantize", {"scale": 3e-39, "zero_point": 0, "dtype": "int8"}),       # subnormal scale: huge 1/s
    ("quantize", {"scale": 7e37, "zero_point": 255, "dtype": "uint8"}),     # 1/s near the subnormals
    ("qdq_quantize", {"scale": 0.02, "zero_point": 7, "quant_min": -128, "quant_max": 127, "dtype": "int8",
                      "mode": "mul"}),
    ("qdq_quantize", {"scale": 0.037, "zero_point": -3, "quant_min": -127, "quant_max": 127, "dtype": "int8",
                      "mode": "div"}),
    ("onnx_quantize", {"scale": np.float32(0.0078125 * 3), "zero_point": 100, "dtype": "uint8"}),
    ("onnx_quantize", {"scale": np.float32(1e-40), "zero_point": -1, "dtype": "int8"}),
]


def _table(op, attrs):
    node = Node("q", op, ["x"], "y", dict(attrs), {})
    t, base, nan, _, wrap = L.quantize_thresholds(node, PROFILE)
    return node, t, base, nan, wrap


@pytest.mark.parametrize("op,attrs", CASES)
def test_bits_formula_equals_engine_quantize(op, attrs):
    from qgolden import ops

    node, t, base, nan, wrap = _table(op, attrs)
    f = QB.formula_of(op, attrs)
    assert f is not None
    wk, wv = wrap or (None, None)
    assert QB.check_boundaries(f, t, base, nan, wk, wv) == 0
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.integers(-2**31, 2**31, 3000).astype(np.int32).view(np.float32),
                        key_to_float32(QB.boundary_keys(t, wk)), np.array([np.nan, np.inf, -np.inf], np.float32)])
    with np.errstate(all="ignore"):
        want = np.asarray(ops.get(op)(x, **attrs, profile=PROFILE)).astype(np.int64)
    got = np.array([QB.quantize_bits(b, f, nan, wk, wv) for b in x.view(np.int32).tolist()])
    assert np.array_equal(got, want)


def test_a_wrong_formula_fails_the_boundary_check():
    """The check can fail: FBGEMM's fused zero point (one rounding) differs from adding it after
    rounding (two roundings) at some steps, and a shifted constant differs everywhere."""
    attrs = {"scale": 0.0123, "zero_point": 3, "dtype": "uint8"}
    _, t, base, nan, wrap = _table("quantize", attrs)
    f = QB.formula_of("quantize", attrs)
    assert QB.check_boundaries({**f, "const_bits": f["const_bits"] + 1}, t, base, nan) > 0
    assert QB.check_boundaries({**f, "mode": "mul", "zp_pre": 0, "zp_post": 3}, t, base, nan) > 0


HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
BODY
int main(int argc, char **argv)
{
    uint64_t bits, lo = strtoull(argv[1], 0, 0), hi = strtoull(argv[2], 0, 0), step = strtoull(argv[3], 0, 0);
    uint64_t bad = 0, n = 0;
    (void)argc;
    for (bits = lo; bits < hi; bits += step) {
        int32_t a = quantize_float32_bits((uint32_t)bits, &formula);
        int32_t b = quantize_bits_table((uint32_t)bits, thresholds, COUNT, OUT_MIN, NAN_VALUE, WRAP_KEY, WRAP_VALUE);
        ++n;
        if (a != b) {
            if (bad < 5) printf("bits 0x%08llx: integer %d table %d\n", (unsigned long long)bits, a, b);
            ++bad;
        }
    }
    for (n = 0; n < sizeof boundary / sizeof boundary[0]; ++n) {
        uint32_t b = boundary[n];
        if (quantize_float32_bits(b, &formula) != quantize_bits_table(b, thresholds, COUNT, OUT_MIN, NAN_VALUE,
                                                                      WRAP_KEY, WRAP_VALUE)) {
            printf("boundary 0x%08lx\n", (unsigned long)b);
            ++bad;
        }
    }
    printf("%llu\n", (unsigned long long)bad);
    return bad != 0;
}
"""


def _c_harness(tmp_path, op, attrs):
    from qgolden.export.binding import compiler
    from qgolden.export.c import QUANTIZE_BITS_C, QUANTIZE_MODES, QUANTIZE_TABLE_C, c_array, c_int

    _, t, base, nan, wrap = _table(op, attrs)
    f = QB.formula_of(op, attrs)
    wk, wv = wrap or (1 << 40, 0)
    keys = QB.boundary_keys(t, wrap[0] if wrap else None)
    bits = np.where(keys < 0, (-(keys + 1)) | 0x80000000, keys).astype(np.uint32)
    body = "\n".join([
        QUANTIZE_BITS_C, QUANTIZE_TABLE_C, c_array("int64_t", "thresholds", t)[0],
        c_array("uint32_t", "boundary", bits)[0],
        "static const quantize_formula_t formula = {" + ", ".join(str(v) for v in [
            QUANTIZE_MODES[f["mode"]], f"0x{f['const_bits'] & 0xFFFFFFFF:08x}u", f["zp_pre"], f["zp_post"], f["qmin"],
            f["qmax"], nan, c_int(wk, "int64_t"), wv]) + "};",
        f"#define COUNT {t.size}", f"#define OUT_MIN {base}", f"#define NAN_VALUE {nan}",
        f"#define WRAP_KEY {c_int(wk, 'int64_t')}", f"#define WRAP_VALUE {wv}"])
    src = tmp_path / "h.c"
    src.write_text(HARNESS.replace("BODY", body))
    exe = tmp_path / "h"
    r = subprocess.run([compiler(), "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic", "-o", str(exe),
                        str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return exe


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler")
@pytest.mark.parametrize("op,attrs", [CASES[0], CASES[1], CASES[3], CASES[5], CASES[6], CASES[8]])
def test_c_bits_formula_equals_table(tmp_path, op, attrs):
    """The generated C of both forms, compiled: equal at every boundary and on every 4099th pattern
    (QGOLDEN_EXHAUSTIVE=1: on all 2^32)."""
    exe = _c_harness(tmp_path, op, attrs)
    step = "1" if os.environ.get("QGOLDEN_EXHAUSTIVE") else "4099"
    p = subprocess.run([str(exe), "0", str(1 << 32), step], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.strip().endswith("0"), p.stdout
