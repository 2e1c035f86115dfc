"""A subset of the random-model campaign (`make fuzz N=...` runs any number): 0 mismatching elements.

Each seed picks an engine, FX or eager mode, an MLP or a 1-D/2-D CNN of random blocks, per-tensor
or per-channel weights, reduced or full-range activations; inputs clamp and hit exact .5 ties.
Every fourth model is run as TorchScript (scripted or traced).
"""
import pytest

from qgolden.fuzz import check

# 9137: oneDNN ref:any conv (22 groups, 1 -> 2 channels each) with bias, an exact .5 tie that only the
# ref kernel's output stage (scales one after the other, division by the dst scale) rounds as PyTorch
# does (seed 61 holds a ref:any conv with 3 channels per group)
SEEDS = list(range(0, 160)) + [9137]
# (seed, engine): 16103 on onednn, a 1x1 jit conv without bias whose 129.5 tie needs oneDNN's own
# scales (requantize_onednn): the single reciprocal multiplier gave 129.49998
FORCED = [(16103, "onednn")]


@pytest.mark.parametrize("seed", SEEDS)
def test_random_model_bit_exact(seed):
    script = [False, False, "script", "trace"][seed % 4]
    rep, desc = check(seed, script=script)
    bad = [(l.name, l.op, l.mismatches, l.elements) for l in rep.layers if l.mismatches]
    assert rep.bit_exact, f"{desc}: {bad} outputs={rep.outputs}"
    assert sum(l.elements for l in rep.layers) > 0


@pytest.mark.parametrize("seed,engine", FORCED)
def test_random_model_bit_exact_on_engine(seed, engine):
    rep, desc = check(seed, engine=engine)
    bad = [(l.name, l.op, l.mismatches, l.elements) for l in rep.layers if l.mismatches]
    assert rep.bit_exact, f"{desc}: {bad} outputs={rep.outputs}"
