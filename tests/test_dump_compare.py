"""`trace --compare` over a whole dump: per-layer counts, root cause vs propagated (each layer
recomputed from the user's own dumped inputs), and the distance-to-boundary hint."""
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import qgolden
from qgolden.cli import app
from qgolden.engine import run_node
from qgolden.examples import forum
from qgolden.explain import run_traced
from qgolden.explain.dump_compare import compare_document, compare_dumps
from qgolden.explain.check import problems

runner = CliRunner()


def integer_dumps(program, env, changes, skip=()):
    """What a user's datapath would dump: every integer layer output, with `changes` ({layer: (index,
    value)}) applied where they happen and every later layer recomputed from the changed values."""
    e = {name: env[name] for name in program.inputs}
    dumps = {}
    for node in program.nodes:
        e[node.output] = run_node(program, node, e)
        if node.name in changes:
            idx, value = changes[node.name]
            e[node.output] = e[node.output].copy()
            e[node.output][idx] = value
        if np.asarray(e[node.output]).dtype.kind in "iu" and node.name not in skip:
            dumps[node.name] = e[node.output]
    return dumps


@pytest.fixture(scope="module")
def forum_run(forum_model):
    prog = qgolden.lower(forum_model, example_inputs=(torch.from_numpy(forum.INPUTS),), engine="x86", isa="avx2")
    trace, env = run_traced(prog, [forum.INPUTS])
    return prog, trace, env


def test_forum_float64_quantize_is_the_root_cause_and_the_rest_propagates(forum_run):
    """The thread's case: float64 NumPy quantizes 0.9 to 230, not 229; the hidden layer then gives
    32 instead of 33, and the logits move. Only the quantize is a root cause."""
    prog, trace, env = forum_run
    dumps = integer_dumps(prog, env, {"quantize_per_tensor": ((4, 1), 230)})
    assert dumps["input_layer"][4].tolist() == [0, 0, 32]
    layers = {l.node.name: l for l in compare_dumps(prog, trace, env, dumps)}
    q, hidden, out = layers["quantize_per_tensor"], layers["input_layer"], layers["out"]
    assert (q.differ, q.root_cause, q.propagated) == (1, 1, 0)
    assert (hidden.differ, hidden.root_cause, hidden.propagated) == (1, 0, 1)
    assert out.differ > 0 and out.root_cause == 0 and out.propagated == out.differ
    first = q.first[0]
    assert first.index == (4, 1) and (first.theirs, first.ours) == (230, 229)
    assert abs(first.pre_round - 229.5) < 1e-4 and first.float64 == 229.5
    doc, differs = compare_document(prog, trace, env, dumps)
    assert differs and not problems(doc, prog, trace, env)
    r = runner.invoke(app, ["trace", "qgolden/examples/forum.py:build", "--input", str(_save_x()), "--isa", "avx2",
                            "--compare", str(_save(dumps)), "-f", "markdown"])
    assert r.exit_code == 1, r.output
    md = r.stdout
    assert "first difference at layer quantize_per_tensor, element [4,1]" in md
    assert "| quantize_per_tensor | quantize | 14 | 1 | 1 | 1 | 0 | root cause |" in md
    assert "| input_layer | linear | 21 | 1 | 1 | 0 | 1 | propagated |" in md
    assert "1 step at a boundary" in md and "float64 arithmetic gives 229.500000 → 230" in md


_TMP = {}


def _save_x():
    import tempfile
    from pathlib import Path

    d = _TMP.setdefault("d", Path(tempfile.mkdtemp()))
    np.save(d / "x.npy", forum.INPUTS)
    return d / "x.npy"


def _save(dumps):
    d = _TMP["d"]
    np.savez(d / "dumps.npz", **dumps)
    return d / "dumps.npz"


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.r1 = torch.nn.ReLU()
        self.c2 = torch.nn.Conv2d(8, 5, 3, stride=2)
        self.fc = torch.nn.Linear(5 * 3 * 3, 7)

    def forward(self, x):
        return self.fc(torch.flatten(self.c2(self.r1(self.c1(x))), 1))


@pytest.fixture(scope="module", params=[0, 1])
def cnn_run(request):
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.manual_seed(request.param)
    old = torch.backends.quantized.engine
    torch.backends.quantized.engine = "x86"
    x = torch.randn(2, 3, 8, 8)
    m = prepare_fx(Net().eval(), get_default_qconfig_mapping("x86"), (x,))
    m(x)
    m = convert_fx(m)
    prog = qgolden.lower(m, example_inputs=(x,), engine="x86")
    torch.backends.quantized.engine = old
    trace, env = run_traced(prog, [x.numpy()])
    return prog, trace, env


def _layers(prog):
    return [n for n in prog.nodes if n.op in ("conv", "linear")]


def test_two_root_causes_and_what_they_carry(cnn_run):
    prog, trace, env = cnn_run
    c1, c2, fc = (n.name for n in _layers(prog))
    ours_c1 = env[prog.nodes[[n.name for n in prog.nodes].index(c1)].output]
    ours_fc = env[prog.nodes[[n.name for n in prog.nodes].index(fc)].output]
    # a large change early (propagates), and one independent wrong value in the last layer
    v = int(ours_c1[1, 2, 3, 3])
    changes = {c1: ((1, 2, 3, 3), 255 if v < 128 else 0)}
    dumps = integer_dumps(prog, env, changes)
    i_fc = (0, 4)
    dumps[fc] = dumps[fc].copy()
    dumps[fc][i_fc] = ours_fc[i_fc] + (1 if ours_fc[i_fc] < 255 else -1)
    layers = {l.node.name: l for l in compare_dumps(prog, trace, env, dumps)}
    assert (layers[c1].differ, layers[c1].root_cause) == (1, 1)
    assert layers[c2].root_cause == 0 and layers[c2].propagated == layers[c2].differ
    assert layers[fc].root_cause == 1 and layers[fc].first[0].index == i_fc
    # sample 0 never saw the change in c1, so fc[0, 4] cannot be propagated
    doc, differs = compare_document(prog, trace, env, dumps)
    assert differs and not problems(doc, prog, trace, env)


def test_an_undumped_layer_is_named_as_a_possible_cause(cnn_run):
    prog, trace, env = cnn_run
    c1, c2, fc = (n.name for n in _layers(prog))
    ours_c2 = env[[n for n in prog.nodes if n.name == c2][0].output]
    v = int(ours_c2[0, 1, 1, 1])
    dumps = integer_dumps(prog, env, {c2: ((0, 1, 1, 1), 255 if v < 128 else 0)}, skip={c2})
    layers = {l.node.name: l for l in compare_dumps(prog, trace, env, dumps)}
    assert c2 not in layers and layers[c1].differ == 0
    later = [l for l in layers.values() if l.differ]
    assert later and later[0].root_cause == later[0].differ
    doc, _ = compare_document(prog, trace, env, dumps)
    from qgolden.explain import render

    md = render(doc, "markdown")
    assert "(or in an undumped layer before it)" in md


def test_equal_dumps_exit_0(forum_run):
    prog, trace, env = forum_run
    dumps = integer_dumps(prog, env, {})
    doc, differs = compare_document(prog, trace, env, dumps)
    assert not differs and f"all {len(dumps)} dumped layers equal" in doc.title
