"""The standard integer pipeline (TFLite / gemmlowp / CMSIS-NN): QuantizeMultiplier, the natural bias
round(b/(s_x*s_w)), SRDHM + RoundingDivideByPOT; certify reports per channel how many reachable
accumulator values it gets wrong against the engine, and the exported C of that pipeline gives the
forum thread's own integers for its seven inputs."""
import math
import shutil
import subprocess

import numpy as np
import pytest

from qgolden.integer import certify, to_integer_only
from qgolden.integer.fixedpoint import tflite_multiply
from qgolden.integer.standard import natural_bias, quantize_multiplier

# the thread's integers (a CPU that sums exactly: AVX512-VNNI / AMX), for its seven inputs
THREAD_OUT = [[255, 242, 252, 229, 249, 248, 236], [100, 246, 213, 241, 241, 244, 244],
              [248, 242, 250, 230, 249, 247, 236], [0, 249, 186, 250, 235, 241, 250],
              [221, 243, 243, 232, 247, 247, 238], [182, 244, 233, 235, 245, 246, 240],
              [52, 247, 201, 245, 238, 243, 247]]


def srdhm_reference(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul, written from fixedpoint.h with Python ints."""
    if a == b == -(1 << 31):
        return (1 << 31) - 1
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return _trunc_div(ab + nudge, 1 << 31)  # C integer division truncates toward zero


def _trunc_div(x, d):
    q = abs(x) // d
    return q if x >= 0 else -q


def rdbpot_reference(x, exponent):
    """gemmlowp RoundingDivideByPOT (ties away from zero)."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def test_quantize_multiplier_matches_tflite():
    for real in (0.0077878204, 0.5, 0.25 + 1e-12, 1e-6, 0.7499999, 2.0 ** -20):
        m0, n = quantize_multiplier(real)
        assert (1 << 30) <= m0 < (1 << 31) and n >= 31
        assert abs(m0 * 2.0 ** -n - real) <= 2.0 ** -(n + 1)
    assert quantize_multiplier(1.0) is None and quantize_multiplier(0.0) is None
    # q rounding up to 2**31: halved, exponent + 1
    m0, n = quantize_multiplier(math.ldexp(1 - 2.0 ** -40, -3))
    assert (m0, n) == (1 << 30, 33)


def test_fixed_point_multiply_is_gemmlowp():
    rng = np.random.default_rng(5)
    for _ in range(2000):
        x = int(rng.integers(-(1 << 24), 1 << 24))
        m0 = int(rng.integers(1 << 30, 1 << 31))
        n = int(rng.integers(31, 45))
        want = rdbpot_reference(srdhm_reference(x, m0), n - 31)
        assert int(tflite_multiply(np.int64(x), np.int64(m0), np.int64(n))) == want, (x, m0, n)


def test_natural_bias_rounds_half_away():
    assert natural_bias([2.5, -2.5, 1.49], 1.0, [1.0, 1.0, 1.0], 3).tolist() == [3, -3, 1]
    assert natural_bias(None, 0.1, [0.2], 2).tolist() == [0, 0]


@pytest.fixture(scope="module")
def vnni_forum(forum_model):
    from qgolden.api import lower
    from qgolden.examples import forum

    return lower(forum_model, example_inputs=(forum.INPUTS,), engine="x86", isa="avx512_vnni")


def test_certify_reports_the_standard_pipeline(vnni_forum):
    from qgolden.examples import forum

    cert = certify(vnni_forum, rounding="tflite", allow_tables=False, inputs=[forum.INPUTS])
    ops = {c.name: c for c in cert.ops}
    first, second = ops["input_layer"].details["standard"], ops["out"].details["standard"]
    # the textbook pipeline's differences, by layer, over every reachable accumulator value
    assert int(first["mismatches"].sum()) == 116 and int(second["mismatches"].sum()) == 357
    assert first["max_diff"].max() == 1 and second["max_diff"].max() == 1
    assert first["observed_hits"].sum() == 0 and second["observed_hits"].sum() == 0
    assert first["bias"].tolist() == [-2052, -1540, 33551]
    assert first["used"].all() and second["used"].all()
    assert ops["input_layer"].mismatches == 116 and ops["out"].mismatches == 357
    # channels 0 and 1 of the first layer are always 0 after ReLU
    assert ops["input_layer"].details["constant_channels"] == {0: 0, 1: 0}
    # gemmlowp and CMSIS-NN compute the same integers
    again = certify(vnni_forum, rounding="cmsis-nn", allow_tables=False)
    assert [c.mismatches for c in again.ops] == [c.mismatches for c in cert.ops]


def test_exact_solutions_keep_the_natural_bias(vnni_forum):
    """Among the exact integer forms, the one whose bias is nearest the engine's own: a channel that
    ReLU always zeroes keeps round(b/(s_x*s_w)) instead of an arbitrary feasible value."""
    cert = certify(vnni_forum)
    p = {c.name: c for c in cert.ops}["input_layer"].params
    bias = np.asarray(p["bias"]) + np.asarray(p["frac"]) / np.asarray(p["multiplier"])
    natural = np.array([-0.4747, -0.3563, 7.7603]) / (np.float32(1 / 255) * np.float32(0.05898105353116989))
    assert np.all(np.abs(bias - natural) < 1.0)


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler")
def test_exported_standard_pipeline_gives_the_threads_integers(vnni_forum, tmp_path):
    from qgolden.examples import forum
    from qgolden.export.binding import compile_and_load
    from qgolden.export.c import export_c

    ip = to_integer_only(vnni_forum, rounding="tflite", allow_tables=False, accept_standard=True)
    assert ip.meta["integer_only"]["standard_differences"] == {"input_layer": 116, "out": 357}
    _, env = ip.run(forum.INPUTS, keep=True)
    assert env["out"].tolist() == THREAD_OUT
    export_c(ip, tmp_path, "forum", [forum.INPUTS])
    r = subprocess.run(["make", "-C", str(tmp_path), "test"], capture_output=True, text=True)
    assert r.returncode == 0 and "bit-exact" in r.stdout, r.stdout + r.stderr
    model = compile_and_load(tmp_path)
    got = model(forum.INPUTS)
    want = np.float32(forum.OUT_SCALE) * (np.array(THREAD_OUT, np.float32) - forum.OUT_ZERO_POINT)
    assert np.array_equal(got, want.astype(np.float32))
    with pytest.raises(ValueError, match="not integer-only"):
        to_integer_only(vnni_forum, rounding="tflite", allow_tables=False)
