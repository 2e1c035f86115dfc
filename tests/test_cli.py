"""The CLI contract: exact spellings, exit codes, and one clear message for every bad input."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from qgolden.examples import forum

QG = [sys.executable, "-m", "qgolden.cli"]
BUILD = "qgolden/examples/forum.py:build"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def qg(*args, cwd=ROOT):
    r = subprocess.run(QG + list(args), capture_output=True, text=True, cwd=cwd)
    return r.returncode, r.stdout, r.stderr


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    np.save(d / "x.npy", forum.INPUTS)
    return d


def test_lower_run_verify(files):
    qgp = files / "forum.qgp"
    code, out, err = qg("lower", BUILD, "-o", str(qgp), "--engine", "x86")
    assert code == 0, err
    code, out, err = qg("run", str(qgp), "--input", str(files / "x.npy"), "--output", str(files / "y.npy"))
    assert code == 0, err
    y = np.load(files / "y.npy")
    torch.backends.quantized.engine = "x86"
    ref = forum.build()(torch.from_numpy(forum.INPUTS)).numpy()
    assert y.dtype == np.float32 and np.array_equal(y, ref)
    code, out, err = qg("verify", BUILD, "--input", str(files / "x.npy"), "--json")
    assert code == 0, err
    rep = json.loads(out)
    assert rep["bit_exact"] is True and rep["engine"] == "x86"
    assert {l["name"] for l in rep["layers"]} >= {"input_layer", "out"}
    assert all(set(l) >= {"name", "op", "elements", "mismatches", "max_abs_diff"} for l in rep["layers"])
    assert rep["outputs"] == [{"elements": 49, "mismatches": 0}]
    code, out, err = qg("verify", BUILD, "--input", str(files / "x.npy"))
    assert code == 0 and "bit-exact" in out


def test_run_qgp_does_not_import_torch(files):
    qgp = files / "forum2.qgp"
    assert qg("lower", BUILD, "-o", str(qgp))[0] == 0
    code = textwrap.dedent(f"""
        import sys
        from qgolden.cli import app
        try:
            app(["run", {str(qgp)!r}, "--input", {str(files / 'x.npy')!r}, "--output", {str(files / 'y2.npy')!r}])
        except SystemExit as e:
            assert e.code in (0, None), e.code
        assert "torch" not in sys.modules, "running a .qgp imported torch"
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr


def test_run_accumulate_choices(files):
    """--accumulate numpy|torch give the same integers as PyTorch; a bad choice exits 2."""
    qgp = files / "forum3.qgp"
    assert qg("lower", BUILD, "-o", str(qgp))[0] == 0
    ref = None
    for model, how in ((BUILD, "torch"), (BUILD, "numpy"), (str(qgp), "torch"), (str(qgp), "auto")):
        y_path = files / f"y_{how}.npy"
        code, out, err = qg("run", model, "--input", str(files / "x.npy"), "--output", str(y_path),
                            "--accumulate", how)
        assert code == 0, err
        y = np.load(y_path)
        ref = y if ref is None else ref
        assert np.array_equal(y, ref), (model, how)
    code, out, err = qg("run", BUILD, "--input", str(files / "x.npy"), "--output", str(files / "z.npy"),
                        "--accumulate", "gpu")
    assert code == 2 and "--accumulate 'gpu'" in err and "Traceback" not in err


def test_verify_exit_1_on_mismatch(files, tmp_path):
    # a builder whose model is changed after lowering cannot be expressed on the CLI; use the API
    import qgolden

    torch.backends.quantized.engine = "x86"
    m = forum.build()
    prog = qgolden.lower(m, engine="x86")
    prog.nodes[1].consts["bias"] = prog.nodes[1].consts["bias"] + np.float32(0.05)
    rep = qgolden.api.verify(m, forum.INPUTS, program=prog)
    assert not rep.bit_exact and rep.first_mismatch.name == "input_layer"


# -- errors: exit 2, one message naming the file / node / op, no traceback -----------------

def _err(code, err):
    assert code == 2, err
    assert "Traceback" not in err
    return err


def test_error_unsupported_op(tmp_path, files):
    src = tmp_path / "bad.py"
    src.write_text(textwrap.dedent("""
        import torch
        from torch.ao.quantization import QConfigMapping, get_default_qconfig
        from torch.ao.quantization.quantize_fx import prepare_fx, convert_fx

        class M(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = torch.nn.Linear(2, 3)
            def forward(self, x):
                return torch.nn.functional.silu(self.fc(x))

        def build():
            m = M().eval()
            x = torch.randn(4, 2)
            p = prepare_fx(m, QConfigMapping().set_global(get_default_qconfig("x86")), (x,))
            p(x)
            return convert_fx(p)
    """))
    err = _err(*qg("lower", f"{src}:build", "-o", str(tmp_path / "o.qgp"))[::2])
    assert "silu" in err and "Supported:" in err and str(src) in err


def test_error_wrong_input_shape(files, tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((3, 5), np.float32))
    qgp = files / "forum3.qgp"
    assert qg("lower", BUILD, "-o", str(qgp), "--input", str(files / "x.npy"))[0] == 0
    err = _err(*qg("run", str(qgp), "--input", str(tmp_path / "bad.npy"), "--output", str(tmp_path / "y.npy"))[::2])
    assert "input 0 (x)" in err and "(N, 2)" in err and "(3, 5)" in err
    np.save(tmp_path / "bad3d.npy", np.zeros((3, 2, 1), np.float32))
    err = _err(*qg("run", str(qgp), "--input", str(tmp_path / "bad3d.npy"), "--output", str(tmp_path / "y.npy"))[::2])
    assert "input 0" in err and "(3, 2, 1)" in err


def test_error_wrong_input_dtype(files, tmp_path):
    np.save(tmp_path / "s.npy", np.array([["a", "b"]]))
    qgp = files / "forum4.qgp"
    assert qg("lower", BUILD, "-o", str(qgp))[0] == 0
    err = _err(*qg("run", str(qgp), "--input", str(tmp_path / "s.npy"), "--output", str(tmp_path / "y.npy"))[::2])
    assert "dtype" in err


def test_error_not_a_model(tmp_path, files):
    p = tmp_path / "notes.txt"
    p.write_text("hello")
    err = _err(*qg("lower", str(p), "-o", str(tmp_path / "o.qgp"))[::2])
    assert str(p) in err and "not a model" in err
    err = _err(*qg("run", str(p) + ".qgp", "--input", str(files / "x.npy"), "--output", str(tmp_path / "y.npy"))[::2])
    assert "no such file" in err


def test_error_truncated_files(tmp_path, files):
    qgp = files / "forum5.qgp"
    assert qg("lower", BUILD, "-o", str(qgp))[0] == 0
    data = qgp.read_bytes()
    cut = tmp_path / "cut.qgp"
    cut.write_bytes(data[: len(data) // 2])
    err = _err(*qg("run", str(cut), "--input", str(files / "x.npy"), "--output", str(tmp_path / "y.npy"))[::2])
    assert str(cut) in err
    torch.backends.quantized.engine = "x86"
    ts = tmp_path / "m.pt"
    torch.jit.save(torch.jit.script(forum.build()), str(ts))
    b = ts.read_bytes()
    tcut = tmp_path / "mcut.pt"
    tcut.write_bytes(b[: len(b) // 2])
    err = _err(*qg("lower", str(tcut), "-o", str(tmp_path / "o.qgp"))[::2])
    assert str(tcut) in err


def test_error_pickle_needs_opt_in(tmp_path, files):
    torch.backends.quantized.engine = "x86"
    p = tmp_path / "whole.pt"
    torch.save(forum.build(), str(p))
    err = _err(*qg("lower", str(p), "-o", str(tmp_path / "o.qgp"))[::2])
    assert "--trust-code" in err and "QGOLDEN_TRUST_CODE=1" in err and str(p) in err
    code, out, err = qg("lower", str(p), "-o", str(tmp_path / "o.qgp"), "--trust-pickle")
    assert code == 0, err


def test_error_pickled_conv_says_what_to_do(tmp_path):
    torch.backends.quantized.engine = "x86"
    m = torch.nn.Sequential(torch.ao.quantization.QuantStub(), torch.nn.Conv2d(1, 2, 3),
                            torch.ao.quantization.DeQuantStub()).eval()
    m.qconfig = torch.ao.quantization.get_default_qconfig("x86")
    p = torch.ao.quantization.prepare(m)
    p(torch.randn(1, 1, 5, 5))
    q = torch.ao.quantization.convert(p)
    path = tmp_path / "conv.pt"
    torch.save(q, str(path))
    code, out, err = qg("lower", str(path), "-o", str(tmp_path / "o.qgp"), "--trust-pickle")
    if code == 0:
        return  # this torch reloads it: nothing to explain
    err = _err(code, err)
    assert "builder" in err and "state_dict" in err


def test_error_bad_engine(files, tmp_path):
    err = _err(*qg("lower", BUILD, "-o", str(tmp_path / "o.qgp"), "--engine", "tpu")[::2])
    assert "tpu" in err and "qnnpack" in err


def test_error_input_file(files, tmp_path):
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY garbage")
    qgp = files / "forum6.qgp"
    assert qg("lower", BUILD, "-o", str(qgp))[0] == 0
    err = _err(*qg("run", str(qgp), "--input", str(tmp_path / "junk.npy"), "--output", str(tmp_path / "y.npy"))[::2])
    assert "junk.npy" in err


def test_run_over_a_directory_and_in_batches(files):
    """A directory of inputs gives a directory of outputs (same names), each equal to its own run;
    --batch B equals running each slice of B samples."""
    import qgolden

    qgp = files / "forum_dir.qgp"
    assert qg("lower", BUILD, "-o", str(qgp), "--engine", "x86")[0] == 0
    prog = qgolden.load(str(qgp))
    rng = np.random.default_rng(5)
    d = files / "many"
    d.mkdir()
    xs = {f"s{i:02d}": rng.uniform(0, 1, (int(rng.integers(1, 6)), 2)).astype(np.float32) for i in range(4)}
    for k, v in xs.items():
        np.save(d / f"{k}.npy", v)
    code, out, err = qg("run", str(qgp), "--input", str(d), "--output", str(files / "outs"))
    assert code == 0, err
    for k, v in xs.items():
        assert np.array_equal(np.load(files / "outs" / f"{k}.npy"), prog.run(v, accumulate="numpy"))
    # a second run into the same directory needs --force and replaces only qgolden's files
    (files / "outs" / "mine.txt").write_text("keep")
    code, _, err = qg("run", str(qgp), "--input", str(d), "--output", str(files / "outs"))
    assert code == 2 and "not empty" in err
    code, _, err = qg("run", str(qgp), "--input", str(d), "--output", str(files / "outs"), "--force")
    assert code == 0, err
    assert (files / "outs" / "mine.txt").read_text() == "keep"
    big = rng.uniform(0, 1, (11, 2)).astype(np.float32)
    np.save(files / "big.npy", big)
    code, _, err = qg("run", str(qgp), "--input", str(files / "big.npy"), "--output", str(files / "ybig.npy"),
                      "--batch", "4")
    assert code == 0, err
    want = np.concatenate([prog.run(big[i:i + 4], accumulate="numpy") for i in range(0, 11, 4)])
    assert np.array_equal(np.load(files / "ybig.npy"), want)


def test_run_directory_errors(files):
    qgp = files / "forum_err.qgp"
    assert qg("lower", BUILD, "-o", str(qgp))[0] == 0
    empty = files / "empty"
    empty.mkdir()
    code, _, err = qg("run", str(qgp), "--input", str(empty), "--output", str(files / "o1"))
    assert code == 2 and "no .npy or .npz input files" in err
    twins = files / "twins"
    twins.mkdir()
    np.save(twins / "a.npy", forum.INPUTS)
    np.savez(twins / "a.npz", forum.INPUTS)
    code, _, err = qg("run", str(qgp), "--input", str(twins), "--output", str(files / "o2"))
    assert code == 2 and "same output file name" in err
    code, _, err = qg("run", str(qgp), "--input", str(files / "x.npy"), "--output", str(files / "o3.npy"),
                      "--batch", "-1")
    assert code == 2 and "--batch -1" in err
