"""Golden vectors (qgolden vectors): every layer's integer input/output and every constant as .npy
and RTL memory files, a manifest listing them, and .mem / .coe files that read back to the same
integers."""
import json

import numpy as np
import pytest


def test_mem_and_coe_round_trip(tmp_path):
    from qgolden.export import memfiles as M

    rng = np.random.default_rng(0)
    for a in (rng.integers(-128, 128, (3, 5)).astype(np.int8), rng.integers(0, 256, 17).astype(np.uint8),
              rng.integers(-2**31, 2**31, 9).astype(np.int32), np.array([-(2**63), 2**62, -1], np.int64)):
        w = M.write_mem(tmp_path / "a.mem", a)
        assert w == a.dtype.itemsize * 8
        head = (tmp_path / "a.mem").read_text().splitlines()[0]
        assert head.startswith(f"// width={w}")
        assert np.array_equal(M.read_mem(tmp_path / "a.mem", shape=a.shape), a.astype(np.int64))
        M.write_coe(tmp_path / "a.coe", a)
        assert np.array_equal(M.read_coe(tmp_path / "a.coe", w, signed=a.dtype.kind == "i"), a.reshape(-1))
    assert (tmp_path / "a.mem").read_text().splitlines()[1] == "8000000000000000"


@pytest.mark.parametrize("fmt", ["mem", "coe"])
def test_cli_vectors_forum(tmp_path, fmt):
    from typer.testing import CliRunner

    from qgolden.cli import app
    from qgolden.examples import forum
    from qgolden.export import memfiles as M

    x = tmp_path / "x.npy"
    np.save(x, forum.INPUTS)
    out = tmp_path / "v"
    r = CliRunner().invoke(app, ["vectors", "qgolden/examples/forum.py:build", "--input", str(x), "--out", str(out),
                                 "--format", fmt, "--engine", "x86", "--isa", "avx2"])
    assert r.exit_code == 0, r.output
    man = json.loads((out / "manifest.json").read_text())
    ops = [l["op"] for l in man["layers"]]
    assert ops == ["quantize_thr", "linear_acc", "requantize_int", "linear_acc", "requantize_int", "dequantize_lut"]
    consts = {(f.get("node"), f.get("const")) for f in man["files"] if f["kind"] == "constant"}
    for key in [("input_layer__acc", "weight"), ("input_layer", "multiplier"), ("input_layer", "shift"),
                ("input_layer", "bias"), ("quantize_per_tensor", "thresholds")]:
        assert key in consts, key
    for f in man["files"]:
        a = np.load(out / f["npy"])
        assert list(a.shape) == f["shape"] and str(a.dtype) == f["dtype"] and f["layout"]
        assert (out / f[fmt]).exists()
        if fmt == "mem":
            back = M.read_mem(out / f[fmt], shape=a.shape)
            want = a.view(np.uint32) if f["encoding"] == "float32-bits" else a  # bit patterns read unsigned
            assert np.array_equal(back, want.astype(np.int64)), f["npy"]
    # the first linear's accumulator carries the engine's int16 pair saturation (AVX2)
    acc = np.load(out / "tensors" / "input_layer__acc.npy")
    assert acc.dtype == np.int32 and acc[0, 2] == -32768  # sat16(255*-56 + 255*-128); input zero point 0
    final = [l for l in man["layers"] if l["op"] == "requantize_int"][-1]
    assert final["attrs"]["out_zero_point"] == 243


@pytest.mark.parametrize("fmt", ["mem", "hex", "coe"])
def test_memory_files_name_their_words(tmp_path, fmt):
    """Every memory file starts with a header naming width, count, encoding and layout; float32 values
    are labelled as IEEE-754 bit patterns, quantize thresholds as float32 order keys; a requantize
    whose classes read no threshold table writes no threshold words."""
    from qgolden.api import lower
    from qgolden.examples import forum
    from qgolden.export import memfiles as M
    from qgolden.export.vectors import write_vectors
    from qgolden.integer import to_integer_only
    from qgolden.torch_side import engine

    with engine("x86"):
        q = forum.build()
    ip = to_integer_only(lower(q, example_inputs=[forum.INPUTS], engine="x86", isa="avx2"))
    man = write_vectors(ip, [forum.INPUTS], tmp_path / "v", fmt)
    by = {(f.get("tensor"), f.get("node"), f.get("const")): f for f in man["files"]}
    assert not any(f.get("const") == "thresholds" and f["node"] != "quantize_per_tensor" for f in man["files"])
    enc = {f[fmt]: f["encoding"] for f in man["files"]}
    x = by[(ip.inputs[0], None, None)]
    assert x["encoding"] == "float32-bits" and not x["signed"]
    assert by[(None, "quantize_per_tensor", "thresholds")]["encoding"] == "float32-order-key"
    assert by[(None, "dequantize_2", "table")]["encoding"] == "float32-bits"
    for rel, e in enc.items():
        text = (tmp_path / "v" / rel).read_text()
        head = text.splitlines()[0]
        assert head.startswith("; " if fmt == "coe" else "// "), rel
        fields = dict(kv.split("=", 1) for kv in head[2:].split())
        f = [f for f in man["files"] if f[fmt] == rel][0]
        assert fields["width"] == str(f["width"]) and fields["count"] == str(int(np.prod(f["shape"]))), rel
        assert fields["encoding"] == e and fields["layout"], rel
        assert "two's" not in head
        if fmt != "coe":
            back = M.read_mem(tmp_path / "v" / rel, shape=f["shape"])
            a = np.load(tmp_path / "v" / f["npy"])
            want = a.view(np.uint32) if e == "float32-bits" else a
            assert np.array_equal(back, want.astype(np.int64)), rel
    words = (tmp_path / "v" / x[fmt]).read_text().replace(",", "\n").replace(";", "\n").split()
    assert format(int(np.float32(forum.INPUTS.reshape(-1)[0]).view(np.uint32)), "08x") in words


def test_threshold_rows_only_for_classes_that_read_them():
    from qgolden.export.vectors import table_rows

    t = np.arange(12).reshape(4, 3)
    assert table_rows(np.array([False, True, False, True]), t).tolist() == [1, 3]
    assert table_rows(np.zeros(4, bool), t) is None
    assert table_rows(np.array(True), t).tolist() == [0, 1, 2, 3]
