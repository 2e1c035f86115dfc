"""PT2E / torchao Q/DQ graphs: importer, pt2e-reference and x86-inductor profiles, .pt2 files, reports."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("TORCHAO_FORCE_SKIP_LOADING_SO_FILES", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("torchao", reason="torchao==0.18.0 not installed (pip install 'qgolden[pt2e]')")

from qgolden import api  # noqa: E402
from qgolden.fuzz_pt2e import one  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.l = torch.nn.Linear(8, 5)

    def forward(self, x):
        y = torch.relu(self.c(x))
        y = y + self.c2(y)
        y = torch.nn.functional.max_pool2d(y, 2)
        y = torch.nn.functional.hardswish(y)
        y = torch.nn.functional.adaptive_avg_pool2d(y, 1).flatten(1)
        return self.l(y)


def convert(quantizer, per_channel=True):
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    torch.manual_seed(0)
    m, x = Net().eval(), torch.randn(2, 3, 8, 8)
    if quantizer == "xnnpack":
        from torchao.testing.pt2e._xnnpack_quantizer import XNNPACKQuantizer, get_symmetric_quantization_config

        q = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=per_channel))
    else:
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq

        q = xiq.X86InductorQuantizer().set_global(xiq.get_default_x86_inductor_quantization_config())
    p = prepare_pt2e(torch.export.export(m, (x,)).module(), q)
    p(x)
    return convert_pt2e(p), x


@pytest.mark.parametrize("per_channel", [False, True])
def test_reference_bit_exact_and_qdq_steps(per_channel):
    gm, x = convert("xnnpack", per_channel)
    prog = api.lower(gm, (x,))
    assert prog.profile["engine"] == "pt2e-reference"
    ops = {n.op for n in prog.nodes}
    assert {"add_reference", "max_pool", "qdq_quantize"} <= ops
    rep = api.verify(gm, x, program=prog)
    assert rep.bit_exact and rep.layers and all(l.mismatches == 0 for l in rep.layers)
    # the float Q/DQ graph: per-layer differences in steps, with the reason, not a bare mismatch
    differing = [l for l in rep.qdq_layers if l.mismatches]
    assert differing and all(l.steps and l.why for l in differing)
    assert sum(differing[0].steps.values()) == differing[0].mismatches
    names = {r["name"]: r for r in rep.float_regions}
    assert not names["conv2d"]["exact"] and "not reproducible" in names["conv2d"]["why"]
    d = rep.to_json()
    assert {"bit_exact", "engine", "isa", "layers", "outputs", "qdq_layers", "float_regions"} <= set(d)
    json.dumps(d)


def test_x86_inductor_bit_exact():
    gm, x = convert("x86")
    prog = api.lower(gm, (x,))
    assert prog.profile["engine"] == "x86-inductor"
    assert any(n.op == "conv" and n.attrs.get("out_dtype") == "uint8" for n in prog.nodes)
    rep = api.verify(gm, x, program=prog)
    assert rep.bit_exact, rep.outputs


@pytest.mark.parametrize("seed", [16])
def test_random_reference(seed):
    rep, desc = one(seed, "pt2e-reference")
    assert rep.bit_exact, desc


def test_pt2_file_across_processes(tmp_path):
    """A .pt2 written in one process is verified in another, lowered in a third and explained from
    that program in a fourth (NumPy only); every number explained is the program's engine trace."""
    from qgolden.explain import explain, render
    from qgolden.explain.check import problems
    from qgolden.ir import load

    pt2, xs, qgp, md = tmp_path / "m.pt2", tmp_path / "x.npy", tmp_path / "m.qgp", tmp_path / "m.md"
    write = f"""
import os, sys, numpy as np, torch
os.environ["TORCHAO_FORCE_SKIP_LOADING_SO_FILES"] = "1"
sys.path.insert(0, {os.path.join(ROOT, 'tests')!r})
from test_pt2e import convert
gm, x = convert("xnnpack", per_channel=False)
torch.export.save(torch.export.export(gm, (x,)), {str(pt2)!r})
np.save({str(xs)!r}, x.numpy())
"""
    subprocess.run([sys.executable, "-c", write], check=True, capture_output=True)
    r = subprocess.run([sys.executable, "-m", "qgolden", "verify", str(pt2), "--input", str(xs),
                        "--engine", "pt2e-reference", "--json", "--trust-code"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    d = json.loads(r.stdout[r.stdout.index("{"):])
    assert d["bit_exact"] and d["engine"] == "pt2e-reference" and d["layers"]
    q = [sys.executable, "-m", "qgolden"]
    r = subprocess.run(q + ["lower", str(pt2), "--trust-code", "--engine", "pt2e-reference", "--input", str(xs), "-o", str(qgp)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(q + ["explain", str(qgp), "--input", str(xs), "-f", "markdown", "-o", str(md)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    prog = load(qgp)
    doc, tr, env = explain(prog, [np.load(xs)])
    assert problems(doc, prog, tr, env) == [] and md.read_text() == render(doc, "markdown")
    text = md.read_text()
    assert all(s.title in text for s in doc.sections) and "add_reference" in text
    assert "quantize_per_tensor_3.scale" in text and "float region, not integer" in text


def test_xnnpack_program_runs_without_executorch():
    """Lowering for ExecuTorch's XNNPACK delegate needs only torch; the program runs in NumPy.
    (Verifying it against the .pte needs executorch: tests/test_pt2e_xnnpack.py.)"""
    gm, x = convert("xnnpack", per_channel=False)
    prog = api.lower(gm, (x,), engine="xnnpack")
    assert prog.profile["engine"] == "xnnpack"
    assert {"xnnpack_quantize", "conv", "xnnpack_add", "linear"} <= {n.op for n in prog.nodes}
    y = prog.run(x.numpy())
    y = y[0] if isinstance(y, tuple) else y  # convert_pt2e graphs return a tuple
    assert y.shape == (2, 5) and y.dtype == np.float32


def test_xnnpack_verify_without_executorch_says_how_to_install():
    try:
        import executorch  # noqa: F401
        pytest.skip("executorch is installed here; tests/test_pt2e_xnnpack.py verifies against it")
    except ImportError:
        pass
    from qgolden.importers import ImportErrorQ

    gm, x = convert("xnnpack", per_channel=False)
    with pytest.raises(ImportErrorQ, match=r"pip install 'qgolden\[xnnpack\]'"):
        api.verify(gm, x, engine="xnnpack")
