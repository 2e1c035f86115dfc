"""qgolden certify: the forum model at 32-bit multipliers, the CLI's JSON, accumulator analysis, and an
injected wrong multiplier reported with the exact accumulator values that break."""
import json

import numpy as np
import pytest

from qgolden.integer import certify, integer_params, recheck
from qgolden.integer.fixedpoint import requantize_values, round_div, round_shift, threshold_values
from qgolden.integer.thresholds import step_thresholds


@pytest.fixture(scope="module")
def forum_program(forum_model):
    from qgolden.api import lower
    from qgolden.examples import forum

    return lower(forum_model, example_inputs=(forum.INPUTS,), engine="x86", isa="avx2")


def test_forum_certified_with_32bit_multipliers(forum_program):
    cert = certify(forum_program, multiplier_bits=32)
    assert cert.certified
    kinds = {c.name: c for c in cert.ops}
    for name in ("input_layer", "out"):
        assert kinds[name].method == "multiplier/shift"
        assert kinds[name].mismatches == 0
        assert kinds[name].domain > 50_000
        assert kinds[name].details["enumerated"] == kinds[name].domain  # every accumulator value evaluated
    params = integer_params(cert.program)
    ch = params["input_layer"]["channels"]
    assert len(ch) == 3 and all(c["method"] == "multiplier" for c in ch)
    assert all(0 < c["M0"] < 2**31 and c["n"] > 0 and -(2**31) <= c["bias"] < 2**31 for c in ch)
    assert len(params["out"]["channels"]) == 7
    # integer_params also accepts the regular program (converting it first)
    assert integer_params(forum_program)["out"] == params["out"]


def test_forum_accumulator_analysis(forum_program):
    from qgolden.examples import forum

    cert = certify(forum_program, inputs=[forum.INPUTS])
    acc = {c.name: c.details.get("accumulator") for c in cert.ops}["input_layer"]
    # 255*-56 + 255*-128 = -46920: the pair FBGEMM saturates to -32768 on AVX2
    assert int(acc["lo"].min()) == -46920 and acc["bits_needed"] == 17
    assert acc["saturates"] and acc["pairs_can_saturate"] == 1
    assert int(acc["observed_lo"].min()) == -32768  # what the engine really produced on the thread's inputs
    assert certify(forum_program, acc_bits=16).certified is False  # a 16-bit accumulator cannot hold it


def test_wrong_multiplier_reports_exact_breaking_values(forum_program):
    from qgolden.integer.transform import _engine_requant

    cert = certify(forum_program)
    node = next(n for n in cert.program.nodes if n.name == "input_layer")
    node.consts["multiplier"] = node.consts["multiplier"].copy()
    node.consts["multiplier"][2] += 1 << 20  # inject: channel 2's M0 slightly too large
    res = {r.name: r for r in recheck(forum_program, cert.program)}
    assert res["out"].mismatches == 0
    r = res["input_layer"]
    bad = r.details["breaking_values"]
    assert list(bad) == [2] and r.mismatches > 0
    # brute force over the whole reachable interval: the reported values are exactly where it breaks
    orig = next(n for n in forum_program.nodes if n.name == "input_layer")
    ref, _, _ = _engine_requant(orig, forum_program.profile)
    lo, hi = int(r.details["accumulator"]["lo"][2]), int(r.details["accumulator"]["hi"][2])
    acc = np.arange(lo, hi + 1)
    k = node.consts
    mine = requantize_values(acc, k["multiplier"][2], k["shift"][2], k["bias"][2], k["frac"][2],
                             node.attrs["out_zero_point"], node.attrs["out_min"], 255)
    want = ref(np.stack([acc] * 3, axis=1))[:, 2]
    expect = set(acc[mine != want].tolist())
    got = set(v for s, e in bad[2] for v in range(s, e))
    assert got == expect and len(got) == r.mismatches


def test_no_tables_narrow_multipliers_report_values(forum_program):
    cert = certify(forum_program, multiplier_bits=6, allow_tables=False)
    assert not cert.certified
    broken = [c for c in cert.ops if c.mismatches]
    assert broken and all(c.details.get("breaking_values") for c in broken)
    assert certify(forum_program, multiplier_bits=6, allow_tables=True).certified


@pytest.mark.parametrize("rounding", ["half_even", "half_away", "tflite"])
def test_forum_other_roundings(forum_program, rounding):
    cert = certify(forum_program, rounding=rounding)
    assert cert.certified, [(c.name, c.method, c.mismatches) for c in cert.ops]


def test_cli_certify_json_and_exit_codes(tmp_path, forum_program):
    from typer.testing import CliRunner

    from qgolden.cli import app

    model = str(tmp_path / "forum.qgp")
    forum_program.save(model)  # the CLI lowers builders the same way; a .qgp skips torch here
    r = CliRunner().invoke(app, ["certify", model, "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(doc) == {"certified", "ops"} and doc["certified"] is True
    assert all(set(o) == {"name", "op", "method", "domain", "mismatches"} for o in doc["ops"])
    r = CliRunner().invoke(app, ["certify", model, "--multiplier-bits", "6", "--no-tables"])
    assert r.exit_code == 1
    assert "differs at accumulator values" in r.stdout
    r = CliRunner().invoke(app, ["certify", model, "--rounding", "bogus"])
    assert r.exit_code == 2


def test_fixed_point_primitives():
    from fractions import Fraction

    v = np.arange(-70, 71)
    for mode in ("half_up", "half_even", "half_away"):
        got = round_shift(v, 3, mode)
        for x, g in zip(v, got):
            f = Fraction(int(x), 8)
            fl = f.numerator // f.denominator
            rem = f - fl
            if rem != Fraction(1, 2):
                want = fl + (rem > Fraction(1, 2))
            else:
                want = {"half_up": fl + 1, "half_even": fl + (fl % 2), "half_away": fl + (1 if f > 0 else 0)}[mode]
            assert g == want, (mode, x)
        code = ("half_up", "half_even", "half_away").index(mode)
        assert np.array_equal(round_div(v, 8, code), got)
    t = np.array([[1, 5, 5, 9], [0, 0, 3, 100]])
    acc = np.array([[0, 0], [5, 3], [9, 99], [100, 100]])
    assert threshold_values(acc, t, np.array([0, 1])).tolist() == [[0, 2], [3, 3], [4, 3], [4, 4]]
    f = lambda a: np.clip((a + 3) // 7, 0, 10)  # noqa: E731
    th = step_thresholds(f, np.array([-50]), np.array([100]), np.arange(1, 11))
    assert th[:, 0].tolist() == [4, 11, 18, 25, 32, 39, 46, 53, 60, 67]
