"""A hostile user's files and options: each is refused with exit 2 and one line, runs nothing,
and changes no file; or, where it is harmless, gives the right answer.

Classes: code-running formats without the opt-in; crafted .qgp files (limits, schema, ops,
graph, constants, names); generators fed hostile names (C, Makefile, markdown, HTML, text);
writes (same file, wrong suffix, non-empty directories, interruptions, name collisions);
inputs and options that disagree with the program; code that calls sys.exit; corrupted files.
"""
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from qgolden.cli import app
from qgolden.examples import forum

ROOT = Path(__file__).resolve().parent.parent
BUILD = str(ROOT / "qgolden/examples/forum.py") + ":build"
MARKER = "HOSTILE_MARKER"


def qg(*args, env=None):
    """(exit code, stderr lines, stdout) of the qgolden CLI, in this process."""
    r = CliRunner(env=env).invoke(app, [str(a) for a in args])
    return r.exit_code, [l for l in r.stderr.splitlines() if l.strip()], r.stdout


def refused(code, lines, *words):
    """Exit 2 with exactly one line `qgolden: error: ...` containing every word."""
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("qgolden: error:"), lines
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


class Pwn:
    """Unpickling it runs a shell command (the classic pickle payload)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """The forum program (x86 engine, this machine's CPU class), its input and output."""
    from qgolden import api

    d = tmp_path_factory.mktemp("hostile")
    prog = api.lower(BUILD, (forum.INPUTS,), engine="x86")
    prog.save(d / "forum.qgp")
    np.save(d / "x.npy", forum.INPUTS)
    return {"dir": d, "qgp": d / "forum.qgp", "x": d / "x.npy", "y": prog.run(forum.INPUTS), "prog": prog}


def edit(src, dst, doc_fn=None, arrays_fn=None, extra=None):
    """Write dst: src's program.json changed by doc_fn(doc), its arrays by arrays_fn(dict), and extra
    zip members {name: bytes}."""
    with zipfile.ZipFile(src) as z:
        doc = json.loads(z.read("program.json"))
        arrays = {n[:-4]: np.load(io.BytesIO(z.read(n))) for n in z.namelist() if n.endswith(".npy")}
    if doc_fn:
        doc_fn(doc)
    if arrays_fn:
        arrays_fn(arrays)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    with zipfile.ZipFile(buf, "a", zipfile.ZIP_DEFLATED) as z:
        z.writestr("program.json", json.dumps(doc))
        for k, v in (extra or {}).items():
            z.writestr(k, v)
    Path(dst).write_bytes(buf.getvalue())
    return dst


def node(doc, op):
    return next(n for n in doc["nodes"] if n["op"] == op)


# -- 1. formats that run code need --trust-code ----------------------------------------------------

def test_pickle_is_not_unpickled_without_opt_in(tmp_path):
    marker = tmp_path / MARKER
    p = tmp_path / "model.pt"
    p.write_bytes(pickle.dumps(Pwn(marker), protocol=2))
    line = refused(*qg("lower", p, "-o", tmp_path / "o.qgp")[:2], str(p), "--trust-code", "QGOLDEN_TRUST_CODE=1")
    assert "pickle" in line and not marker.exists() and not (tmp_path / "o.qgp").exists()


def test_pt2_lookalike_under_any_name_is_not_loaded(tmp_path):
    """A zip shaped like a .pt2 whose sample inputs are a hostile pickle, named .dat."""
    marker = tmp_path / MARKER
    p = tmp_path / "weights.dat"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("m/models/model.json", "{}")
        z.writestr("m/data/sample_inputs/model.pt", pickle.dumps(Pwn(marker), protocol=2))
    for cmd in (["lower", p, "-o", tmp_path / "o.qgp"], ["verify", p, "--input", tmp_path / "x.npy"],
                ["lower", p, "-o", tmp_path / "o.qgp", "--engine", "pt2e-reference"]):
        np.save(tmp_path / "x.npy", forum.INPUTS)
        refused(*qg(*cmd)[:2], str(p), "--trust-code", ".pt2")
    assert not marker.exists()


def test_torchscript_needs_opt_in_and_env_var_gives_it(tmp_path, monkeypatch):
    import torch

    from qgolden.torch_side import engine

    with engine("x86"):
        ts = tmp_path / "m.pt"
        torch.jit.save(torch.jit.script(forum.build()), str(ts))
    np.save(tmp_path / "x.npy", forum.INPUTS)
    monkeypatch.delenv("QGOLDEN_TRUST_CODE", raising=False)
    line = refused(*qg("lower", ts, "-o", tmp_path / "o.qgp", "--engine", "x86")[:2], "TorchScript", "--trust-code")
    assert "__setstate__" in line and not (tmp_path / "o.qgp").exists()
    for how in (["--trust-code"], ["--trust-pickle"]):
        assert qg("lower", ts, "-o", tmp_path / "o.qgp", "--engine", "x86", *how)[0] == 0
    (tmp_path / "o.qgp").unlink()
    monkeypatch.setenv("QGOLDEN_TRUST_CODE", "1")
    assert qg("lower", ts, "-o", tmp_path / "o.qgp", "--engine", "x86")[0] == 0
    import qgolden

    monkeypatch.delenv("QGOLDEN_TRUST_CODE")
    with pytest.raises(qgolden.UserError, match="--trust-code"):
        qgolden.lower(str(ts))
    assert qgolden.lower(str(ts), trust_code=True).nodes and qgolden.lower(str(ts), trust_pickle=True).nodes


@pytest.mark.parametrize("where", ["import", "call"])
def test_builder_calling_sys_exit_is_reported(tmp_path, where):
    b = tmp_path / "b.py"
    body = "import sys\nsys.exit(0)\ndef build():\n    return None\n" if where == "import" else \
        "import sys\ndef build():\n    sys.exit(0)\n"
    b.write_text(body)
    refused(*qg("lower", f"{b}:build", "-o", tmp_path / "o.qgp")[:2], "sys.exit(0)")
    assert not (tmp_path / "o.qgp").exists()


# -- 2. crafted .qgp files: the verifier ----------------------------------------------------------

def _scale(v):
    return lambda d: node(d, "linear")["attrs"].__setitem__("out_scale", v)


CRAFTED = {
    "weights outside int8": (None, lambda a: a.__setitem__("c1_weight", a["c1_weight"].astype(np.int16) * 300),
                             "weight must be int8"),
    "weights with fractions": (None, lambda a: a.__setitem__("c1_weight", a["c1_weight"] + 0.5),
                               "weight must be int8"),
    "scale 0": (_scale(0.0), None, "out_scale must be finite numbers > 0"),
    "negative scale": (_scale(-0.1), None, "out_scale must be finite numbers > 0"),
    "NaN scale": (_scale(float("nan")), None, "not a finite number"),
    "zero point 999": (lambda d: node(d, "linear")["attrs"].__setitem__("out_zero_point", 999), None,
                       "out_zero_point must be in [0, 255]"),
    "tensor zero point 999": (lambda d: next(t for t in d["tensors"].values() if t["dtype"] == "uint8")
                              .__setitem__("zero_point", 999), None, "zero point 999"),
    "unknown op": (lambda d: node(d, "linear").__setitem__("op", "system"), None, "unknown op 'system'"),
    "unknown attribute": (lambda d: node(d, "linear")["attrs"].__setitem__("cmd", 1), None, "no parameter 'cmd'"),
    "missing attribute": (lambda d: node(d, "linear")["attrs"].pop("out_scale"), None, "'out_scale' is missing"),
    "bool attribute": (lambda d: node(d, "linear")["attrs"].__setitem__("relu", "yes"), None, "true or false"),
    "too many inputs": (lambda d: node(d, "linear")["inputs"].append(d["inputs"][0]), None, "inputs, the op takes 1"),
    "use before definition": (lambda d: d["nodes"].reverse(), None, "not defined before it is used"),
    "duplicate node": (lambda d: d["nodes"].append(dict(d["nodes"][-1], output="zz")), None, "a second node"),
    "output never computed": (lambda d: d["outputs"].__setitem__(0, "nowhere"), None, "not computed"),
    "hostile node name": (lambda d: node(d, "linear").__setitem__("name", '*/ system("touch M"); /*'), None,
                          "name outside"),
    "hostile source": (lambda d: node(d, "linear").__setitem__("source", "$(touch M)"), None, "printable ASCII"),
    "huge tensor shape": (lambda d: next(iter(d["tensors"].values())).__setitem__("shape", [1 << 40, 1 << 40]),
                          None, "shape"),
    "bias per channel count": (None, lambda a: a.__setitem__("c1_bias", np.zeros(5, np.float32)), "bias has 5"),
    "unknown engine": (lambda d: d["profile"].__setitem__("engine", "bogus"), None, "unknown engine"),
    "unknown isa": (lambda d: d["profile"].__setitem__("isa", "z80"), None, "unknown CPU class"),
    "version": (lambda d: d.__setitem__("version", 99), None, "version 99"),
    "object constant": (lambda d: node(d, "linear")["consts"].__setitem__("bias", "../../etc/passwd"), None,
                        "names no array"),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_program_is_refused_by_every_load(base, tmp_path, case):
    doc_fn, arrays_fn, words = CRAFTED[case]
    bad = edit(base["qgp"], tmp_path / "bad.qgp", doc_fn, arrays_fn)
    before = bad.read_bytes()
    for cmd in (["check", bad], ["run", bad, "--input", base["x"], "--output", tmp_path / "y.npy"],
                ["explain", bad, "--input", base["x"], "-f", "markdown", "-o", tmp_path / "e.md"]):
        refused(*qg(*cmd)[:2], str(bad), words)
    assert not (tmp_path / "y.npy").exists() and not (tmp_path / "e.md").exists() and bad.read_bytes() == before


def test_check_passes_a_real_program_and_it_runs(base):
    code, lines, out = qg("check", base["qgp"])
    assert code == 0 and "ok" in out and not lines


def add_zeros(path, name, size):
    """Append a deflated member of `size` zero bytes (about size / 1000 on disk)."""
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "a") as z, z.open(info, "w", force_zip64=True) as f:
        for _ in range(size >> 24):
            f.write(bytes(1 << 24))


def test_compression_bomb_is_never_expanded(base, tmp_path):
    """256 MB of zeros in about 256 kB: ignored when the program does not reference it, refused by
    its compression ratio before any read when it does."""
    import resource

    unused = edit(base["qgp"], tmp_path / "unused.qgp")
    add_zeros(unused, "bomb.npy", 256 << 20)
    assert unused.stat().st_size < 2 << 20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    code, lines, _ = qg("run", unused, "--input", base["x"], "--output", tmp_path / "y.npy")
    assert code == 0, lines
    assert np.array_equal(np.load(tmp_path / "y.npy"), base["y"])
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 100_000  # kB: far below 256 MB
    used = edit(base["qgp"], tmp_path / "used.qgp", doc_fn=lambda d: node(d, "linear")["consts"].__setitem__(
        "weight", "bomb"))
    add_zeros(used, "bomb.npy", 256 << 20)
    refused(*qg("check", used)[:2], str(used), "bomb.npy", "expands")


def test_huge_declared_array_shape(base, tmp_path):
    """A .npy header declaring 2**40 elements over a few bytes of data."""
    hdr = io.BytesIO()
    np.lib.format.write_array_header_1_0(hdr, {"descr": "|i1", "fortran_order": False, "shape": (1 << 20, 1 << 20)})
    bad = edit(base["qgp"], tmp_path / "bad.qgp", doc_fn=lambda d: node(d, "linear")["consts"].__setitem__(
        "weight", "evil"), extra={"evil.npy": hdr.getvalue() + b"\0" * 16})
    refused(*qg("check", bad)[:2], str(bad), "needs 1099511627776 bytes")


def test_pickled_array_member_is_refused(base, tmp_path):
    buf = io.BytesIO()
    np.save(buf, np.array([Pwn(tmp_path / MARKER)], dtype=object), allow_pickle=True)
    bad = edit(base["qgp"], tmp_path / "bad.qgp", doc_fn=lambda d: node(d, "linear")["consts"].__setitem__(
        "bias", "evil"), extra={"evil.npy": buf.getvalue()})
    refused(*qg("run", bad, "--input", base["x"], "--output", tmp_path / "y.npy")[:2], str(bad), "plain numeric")
    assert not (tmp_path / MARKER).exists()


def test_program_recognised_by_content_whatever_its_name(base, tmp_path):
    for name in ("prog.bin", "P.QGP"):
        p = tmp_path / name
        shutil.copy(base["qgp"], p)
        code, lines, _ = qg("run", p, "--input", base["x"], "--output", tmp_path / "y.npy")
        assert code == 0, lines
        assert np.array_equal(np.load(tmp_path / "y.npy"), base["y"])
    refused(*qg("verify", tmp_path / "prog.bin", "--input", base["x"])[:2], "not a program file")


# -- 3. generators: hostile names stay inert -----------------------------------------------------

HOSTILE = ['*/ system("touch HOSTILE_MARKER"); /*', "a\nb\r\n#include <stdlib.h>", "$(touch HOSTILE_MARKER)",
           "[bold]r[/]\x1b[2J", "<script>alert(1)</script>", "x??/\nint y;", "\\", "`touch HOSTILE_MARKER`"]


def renamed(prog):
    """A copy of prog whose every node and tensor has a hostile name (in memory: no file could hold it)."""
    import copy

    p = copy.deepcopy(prog)
    names = {}
    for i, t in enumerate(list(p.tensors)):
        names[t] = f"{HOSTILE[i % len(HOSTILE)]}#{i}"

    def ren(r):
        return [ren(x) for x in r] if isinstance(r, list) else names.get(r, r) if isinstance(r, str) else r

    p.tensors = {names[k]: type(v)(**dict(vars(v), name=names[k])) for k, v in p.tensors.items()}
    p.inputs, p.outputs = ren(p.inputs), ren(p.outputs)
    for i, n in enumerate(p.nodes):
        n.name, n.inputs, n.output = f"{HOSTILE[(i + 3) % len(HOSTILE)]}@{i}", ren(n.inputs), ren(n.output)
        n.source = n.torch_op = HOSTILE[i % len(HOSTILE)]
    return p


@pytest.mark.skipif(shutil.which("make") is None or shutil.which("cc") is None, reason="needs make and cc")
def test_c_export_with_hostile_names_runs_nothing_and_is_right(base, tmp_path):
    from qgolden.export.c import export_c
    from qgolden.integer import to_integer_only

    prog = renamed(to_integer_only(base["prog"]))
    out = tmp_path / "c"
    export_c(prog, out, name='m"; rm -rf /; "', inputs=[forum.INPUTS])
    env = dict(os.environ, CFLAGS="-std=c99 -O0 -Wall -Wextra -Werror -pedantic -Wno-trigraphs")
    r = subprocess.run(["make", "-C", str(out), "test"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "bit-exact" in r.stdout
    assert not list(tmp_path.rglob(MARKER)) and not (out / MARKER).exists()
    r = subprocess.run(["make", "-C", str(out), "test"], capture_output=True, text=True, cwd=tmp_path,
                       env=dict(os.environ, CFLAGS="-std=c99 -trigraphs -O0 -Wall -Werror"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert not list(tmp_path.rglob(MARKER))


def test_explain_renderers_keep_hostile_names_inert(base):
    from qgolden.explain import explain, render

    prog = renamed(base["prog"])
    doc, _, _ = explain(prog, [forum.INPUTS])
    md = render(doc, "markdown")
    assert "<script" not in md and "\x1b" not in md
    assert not any(l.startswith("#include") for l in md.splitlines())
    html = render(doc, "html")
    assert "<script" not in html and "&lt;script&gt;" in html
    text = render(doc, "text")
    assert "\x1b" not in text and "[bold]r[/]" in text


def test_memory_file_headers_stay_one_line(tmp_path):
    from qgolden.export.memfiles import read_mem, write_mem

    write_mem(tmp_path / "a.mem", np.arange(4, dtype=np.int8), comment="x\nff\nff")
    assert np.array_equal(read_mem(tmp_path / "a.mem"), np.arange(4))


# -- 4. writes ----------------------------------------------------------------------------------

def test_lower_refuses_to_overwrite_its_input(base, tmp_path):
    p = tmp_path / "p.qgp"
    shutil.copy(base["qgp"], p)
    before = p.read_bytes()
    refused(*qg("lower", p, "-o", p)[:2], "is also an input")
    refused(*qg("run", p, "--input", base["x"], "--output", base["x"])[:2], "is also an input")
    b = tmp_path / "b.py"
    b.write_text(Path(BUILD.rpartition(":")[0]).read_text())
    refused(*qg("lower", f"{b}:build", "-o", b)[:2], "is also an input")
    assert p.read_bytes() == before and np.array_equal(np.load(base["x"]), forum.INPUTS)


def test_output_is_exactly_the_path_asked_for(base, tmp_path):
    refused(*qg("run", base["qgp"], "--input", base["x"], "--output", tmp_path / "y.bin")[:2], "y.npy")
    refused(*qg("run", base["qgp"], "--input", base["x"], "--output", tmp_path / "y.npz")[:2], "y.npy")
    assert list(tmp_path.iterdir()) == []
    assert qg("run", base["qgp"], "--input", base["x"], "--output", tmp_path / "y.npy")[0] == 0
    assert [p.name for p in tmp_path.iterdir()] == ["y.npy"]


def test_several_outputs_need_npz(base, tmp_path):
    p = edit(base["qgp"], tmp_path / "two.qgp", lambda d: (d["outputs"].append(d["outputs"][0]),
                                                           d["meta"].__setitem__("returns", "tuple")))
    refused(*qg("run", p, "--input", base["x"], "--output", tmp_path / "y.npy")[:2], "2 outputs", "y.npz")
    assert qg("run", p, "--input", base["x"], "--output", tmp_path / "y.npz")[0] == 0
    z = np.load(tmp_path / "y.npz")
    assert z.files == ["arr_0", "arr_1"] and np.array_equal(z["arr_1"], base["y"])
    assert not (tmp_path / "y.npy").exists() and not (tmp_path / "y.npz.npz").exists()


def test_interrupted_write_leaves_the_old_file(tmp_path):
    from qgolden.files import write_atomic

    p = tmp_path / "y.npy"
    p.write_bytes(b"old")

    def interrupted(f):
        f.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(p, interrupted)
    assert p.read_bytes() == b"old" and [q.name for q in tmp_path.iterdir()] == ["y.npy"]


def test_export_and_vectors_never_touch_the_users_files(base, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.c").write_text("/* mine */")
    for cmd in ("export", "vectors"):
        refused(*qg(cmd, base["qgp"], "--input", base["x"], "--out", out)[:2], "not empty", "--force")
    refused(*qg("export", base["qgp"], "--input", base["x"], "--out", out, "--force")[:2],
            "model.c", "not written by qgolden")
    assert [p.name for p in out.iterdir()] == ["model.c"] and (out / "model.c").read_text() == "/* mine */"
    fresh = tmp_path / "fresh"
    assert qg("export", base["qgp"], "--input", base["x"], "--out", fresh, "--name", "a")[0] == 0
    (fresh / "notes.txt").write_text("mine")
    assert qg("export", base["qgp"], "--input", base["x"], "--out", fresh, "--name", "b", "--force")[0] == 0
    names = {p.name for p in fresh.iterdir()}
    assert "notes.txt" in names and "b.c" in names and "a.c" not in names and "a.h" not in names
    v = tmp_path / "vec"
    assert qg("vectors", base["qgp"], "--input", base["x"], "--out", v)[0] == 0
    assert qg("vectors", base["qgp"], "--input", base["x"], "--out", v, "--force", "--format", "npy")[0] == 0
    assert not list(v.rglob("*.mem"))


def test_vector_file_names_never_collide(base, tmp_path):
    from qgolden.export.vectors import file_stem, write_vectors
    from qgolden.integer import to_integer_only

    taken = set()
    stems = [file_stem(n, taken) for n in ("a/b", "a_b", "A_B", "..", "../../x")]
    assert len(set(s.lower() for s in stems)) == 5 and all("/" not in s and not s.startswith(".") for s in stems)
    prog = renamed(to_integer_only(base["prog"]))
    m = write_vectors(prog, [forum.INPUTS], tmp_path / "v", "mem")
    files = [f["npy"] for f in m["files"]]
    assert len(files) == len(set(f.lower() for f in files))
    assert all((tmp_path / "v" / f).resolve().is_relative_to((tmp_path / "v").resolve()) for f in files)


# -- 5. inputs and options against the program ------------------------------------------------------

@pytest.mark.parametrize("x,words", [
    (np.zeros(2, np.float32), "expected 2-D"),
    (np.zeros((7, 2), np.float64), "expected float32"),
    (np.zeros((7, 2), np.int64), "expected float32"),
    (np.zeros((7, 3), np.float32), "(N, 2)"),
])
def test_inputs_the_model_refuses(base, tmp_path, x, words):
    np.save(tmp_path / "bad.npy", x)
    refused(*qg("run", base["qgp"], "--input", tmp_path / "bad.npy", "--output", tmp_path / "y.npy")[:2], words)
    assert not (tmp_path / "y.npy").exists()


def test_batch_may_vary(base, tmp_path):
    np.save(tmp_path / "x3.npy", forum.INPUTS[:3])
    assert qg("run", base["qgp"], "--input", tmp_path / "x3.npy", "--output", tmp_path / "y.npy")[0] == 0
    assert np.array_equal(np.load(tmp_path / "y.npy"), base["y"][:3])


@pytest.mark.parametrize("opt,words", [(["--engine", "bogus"], "unknown"), (["--isa", "bogus"], "unknown"),
                                       (["--engine", "qnnpack"], "built for engine x86"),
                                       (["--isa", "arm64"], "built for isa")])
def test_engine_and_isa_must_match_the_program(base, tmp_path, opt, words):
    refused(*qg("run", base["qgp"], "--input", base["x"], "--output", tmp_path / "y.npy", *opt)[:2], words)
    assert not (tmp_path / "y.npy").exists()


# -- 6. corrupted files: exit 2 or a correct run, never exit 3 -------------------------------------

def test_bit_flips_never_crash(base):
    from qgolden.fuzz_qgp import campaign
    from qgolden.integer import to_integer_only

    p2 = base["dir"] / "int.qgp"
    to_integer_only(base["prog"]).save(p2)
    r = campaign([(base["qgp"].read_bytes(), forum.INPUTS), (p2.read_bytes(), forum.INPUTS)], 102, seed=1)
    assert r["failures"] == [] and r["counts"]["exit 2"] > 50, r


def test_error_is_one_line_from_the_real_command(base, tmp_path):
    """Through the installed entry point (stderr as a user sees it): one line, no traceback."""
    bad = tmp_path / "cut.qgp"
    bad.write_bytes(base["qgp"].read_bytes()[:300])
    r = subprocess.run([sys.executable, "-m", "qgolden", "verify", str(bad), "--input", str(base["x"])],
                       capture_output=True, text=True, cwd=ROOT)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
