"""The forum model (the built-in example): bit-exact."""
import numpy as np
import torch

import qgolden
from qgolden.examples import forum

# Integers from a VNNI machine (exact int32 accumulation), as PyTorch printed them there.
VNNI_HIDDEN = [[0, 0, 0], [0, 0, 150], [0, 0, 7], [0, 0, 255], [0, 0, 33], [0, 0, 71], [0, 0, 197]]
VNNI_OUT = [[255, 242, 252, 229, 249, 248, 236], [100, 246, 213, 241, 241, 244, 244],
            [248, 242, 250, 230, 249, 247, 236], [0, 249, 186, 250, 235, 241, 250],
            [221, 243, 243, 232, 247, 247, 238], [182, 244, 233, 235, 245, 246, 240],
            [52, 247, 201, 245, 238, 243, 247]]


def test_forum_equals_pytorch_on_this_machine(forum_model):
    x = torch.from_numpy(forum.INPUTS)
    prog = qgolden.lower(forum_model, example_inputs=(x,), engine="x86")
    y = prog.run(forum.INPUTS)
    torch.backends.quantized.engine = "x86"
    ref = forum_model(x).numpy()
    assert y.dtype == np.float32 and np.array_equal(y, ref)
    rep = qgolden.verify(forum_model, x, engine="x86")
    assert rep.bit_exact
    assert [l.name for l in rep.layers] == ["quantize_per_tensor", "input_layer", "out"]


def test_forum_vnni_golden_model_gives_the_threads_argmax(forum_model):
    prog = qgolden.lower(forum_model, engine="x86", isa="avx512_vnni")
    y, env = prog.run(forum.INPUTS, keep=True)
    assert env["input_layer"].tolist() == VNNI_HIDDEN
    assert env["out"].tolist() == VNNI_OUT
    assert y.argmax(-1).tolist() == [0, 1, 2, 3, 4, 5, 1]
    # the fifth input, [0, 0.9], as in the issue
    assert env["input_layer"][4].tolist() == [0, 0, 33]
    assert env["out"][4].tolist() == [221, 243, 243, 232, 247, 247, 238]


def test_forum_avx2_saturates_first_input(forum_model):
    prog = qgolden.lower(forum_model, engine="x86", isa="avx2")
    _, env = prog.run(forum.INPUTS, keep=True)
    # 255*-56 + 255*-128 = -46920 saturates to -32768 in FBGEMM's int16 pair sum
    assert env["input_layer"][0].tolist() == [0, 0, 6]


def test_program_roundtrip(tmp_path, forum_model):
    prog = qgolden.lower(forum_model, engine="x86")
    p = tmp_path / "forum.qgp"
    prog.save(p)
    again = qgolden.load(p)
    assert np.array_equal(again.run(forum.INPUTS), prog.run(forum.INPUTS))
