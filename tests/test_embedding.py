"""Quantized embeddings (weight-only 8-bit quint8 and 4-bit quint4x2 tables, float32 out): the ops, eager,
FX and TorchScript models, against PyTorch with equal float32 bit patterns, on every engine (the host's
CPU class through the engine fixture's profile)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.ao.quantization import float_qparams_weight_only_qconfig as QC8
from torch.ao.quantization import float_qparams_weight_only_qconfig_4bit as QC4

from qgolden import api
from qgolden.importers.fx_ops import packed_embedding_table
from qgolden.ops.embedding import embedding_bag

DIMS = (1, 7, 8, 15, 16, 17, 31, 33, 64, 65)
DIMS_4BIT = (2, 6, 8, 14, 16, 18, 30, 32, 34, 64, 66)  # PyTorch's 4-bit kernel needs an even width


def same_bits(a, b) -> bool:
    a = np.ascontiguousarray(np.asarray(a, np.float32))
    b = np.ascontiguousarray(np.asarray(b, np.float32))
    return a.shape == b.shape and np.array_equal(a.view(np.int32), b.view(np.int32))


def _bags(rng, n_rows, n_bags):
    """Indices and offsets with empty bags, repeated indices and a long bag (more than 16 indices)."""
    lengths = rng.integers(0, 6, n_bags)
    lengths[0] = 0
    lengths[-1] = 21
    idx = rng.integers(0, n_rows, int(lengths.sum()))
    if idx.size > 3:
        idx[1] = idx[2]  # a repeated index in one bag
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return torch.from_numpy(idx.astype(np.int64)), torch.from_numpy(offsets.astype(np.int64))


@pytest.mark.parametrize("bits", [8, 4])
def test_rowwise_offsets_ops_match_pytorch(engine, bits):
    """quantized::embedding_bag_{byte,4bit}_rowwise_offsets: random tables (wide rows so rounding matters),
    every mode (PyTorch sums in all), include_last_offset, per_sample_weights, odd widths."""
    rng = np.random.default_rng(bits)
    prepack = torch.ops.quantized.embedding_bag_byte_prepack if bits == 8 else torch.ops.quantized.embedding_bag_4bit_prepack
    op = (torch.ops.quantized.embedding_bag_byte_rowwise_offsets if bits == 8
          else torch.ops.quantized.embedding_bag_4bit_rowwise_offsets)
    checked = 0
    for d in DIMS if bits == 8 else DIMS_4BIT:
        n = 37
        table = torch.from_numpy((rng.standard_normal((n, d)) * rng.uniform(0.1, 40, (n, 1))).astype(np.float32))
        packed = prepack(table)
        codes, scale, bias = packed_embedding_table(packed, bits)
        idx, off = _bags(rng, n, 7)
        for mode in (0, 1, 2):
            for last in (False, True):
                for weighted in (False, True):
                    o = torch.cat([off, torch.tensor([idx.numel()])]) if last else off
                    w = torch.from_numpy(rng.standard_normal(idx.numel()).astype(np.float32)) if weighted else None
                    want = op(packed, idx, o, False, mode, False, w, None, last)
                    got = embedding_bag(idx.numpy(), o.numpy(), *([w.numpy()] if weighted else []), codes=codes,
                                        scale_bias=np.stack([scale, bias], 1), bits=bits, has_offsets=True,
                                        weighted=weighted, include_last_offset=last,
                                        mode=("sum", "mean", "max")[mode], profile=engine)
                    assert same_bits(got, want.numpy()), (d, mode, last, weighted)
                    checked += 1
    assert checked == 12 * len(DIMS if bits == 8 else DIMS_4BIT)


class Bags(torch.nn.Module):
    """A bag and a lookup. (PyTorch 2.13's 4-bit nnq.Embedding lookup, quantized::embedding_4bit, fails or reads
    out of bounds on most inputs, so 4-bit models test the bag only: the lookup is its bags of one.)"""

    def __init__(self, d, mode="sum", last=False, lookup=True):
        super().__init__()
        self.bag = torch.nn.EmbeddingBag(50, d, mode=mode, include_last_offset=last)
        self.table = torch.nn.Embedding(50, d) if lookup else None

    def forward(self, idx, offsets, weights, idx2d):
        bag = self.bag(idx, offsets, per_sample_weights=weights)
        if self.table is not None:
            return bag, self.table(idx2d)
        # 2-D indices are bags of one row each; PyTorch refuses them with include_last_offset
        return (bag,) if self.bag.include_last_offset else (bag, self.bag(idx2d))


def _quantized_bags(d, qconfig, mode="sum", last=False, fx=False, seed=0):
    torch.manual_seed(seed)
    m = Bags(d, mode, last, lookup=qconfig is QC8).eval()
    with torch.no_grad():
        m.bag.weight.mul_(torch.rand(50, 1) * 20)
    if fx:
        from torch.ao.quantization import QConfigMapping
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

        mapping = QConfigMapping().set_object_type(torch.nn.EmbeddingBag, qconfig).set_object_type(
            torch.nn.Embedding, qconfig)
        return convert_fx(prepare_fx(m, mapping, example_inputs=_inputs(d, last, 0)))
    m.bag.qconfig = qconfig
    if m.table is not None:
        m.table.qconfig = qconfig
    return torch.ao.quantization.convert(torch.ao.quantization.prepare(m))


def _inputs(d, last, seed):
    rng = np.random.default_rng(seed)
    idx, off = _bags(rng, 50, 6)
    if last:
        off = torch.cat([off, torch.tensor([idx.numel()])])
    w = torch.from_numpy(rng.standard_normal(idx.numel()).astype(np.float32))
    idx2d = torch.from_numpy(rng.integers(0, 50, (3, 4)))
    return idx, off, w, idx2d


@pytest.mark.parametrize("bits,mode,last,fx", [(8, "sum", False, False), (8, "mean", True, True),
                                               (4, "max", False, True), (4, "sum", True, False)])
def test_eager_and_fx_modules_match_pytorch(engine, bits, mode, last, fx):
    """nnq.EmbeddingBag (with per_sample_weights, empty bags, repeated indices) and nnq.Embedding (2-D
    indices), from eager prepare/convert and prepare_fx/convert_fx with the float_qparams qconfigs."""
    for d in (1, 16, 33) if bits == 8 else (2, 16, 34):
        model = _quantized_bags(d, QC8 if bits == 8 else QC4, mode, last, fx, seed=d)
        for seed in (1, 2):
            x = _inputs(d, last, seed)
            # verify lowers, runs with NumPy and compares every output's float32 bit patterns with the model's
            report = api.verify(model, *x, engine=torch.backends.quantized.engine)
            assert report.bit_exact, (d, report.outputs)
            assert len(report.outputs) == (2 if bits == 8 or not last else 1)
            assert all(o["elements"] > 0 for o in report.outputs)


@pytest.mark.parametrize("how", ["script", "trace"])
def test_torchscript_embeddings_match_pytorch(engine, how, tmp_path):
    """A scripted / traced quantized model (quantized::embedding_bag_byte, embedding_byte via packed params),
    loaded with trust_code. (torch 2.13 cannot reload a saved quint4x2 table: its storage is saved at half size.)"""
    model = _quantized_bags(17 if how == "script" else 16, QC8, seed=3)
    x = _inputs(16, False, 4)
    sm = torch.jit.script(model) if how == "script" else torch.jit.trace(model, x)
    path = tmp_path / "m.pt"
    torch.jit.save(sm, str(path))
    program = api.lower(str(path), example_inputs=x, engine=torch.backends.quantized.engine, trust_code=True)
    got = program.run(*[t.numpy() for t in x])
    want = model(*x)
    assert all(same_bits(g, w.numpy()) for g, w in zip(got, want))
    ops = [nd.op for nd in program.nodes]
    assert ops.count("embedding_bag") == 2


BUILDER = """
import torch
from torch.ao.quantization import float_qparams_weight_only_qconfig


class M(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.bag = torch.nn.EmbeddingBag(20, 9)

    def forward(self, idx, offsets):
        return self.bag(idx, offsets)


def build():
    torch.manual_seed(0)
    m = M().eval()
    m.bag.qconfig = float_qparams_weight_only_qconfig
    return torch.ao.quantization.convert(torch.ao.quantization.prepare(m))
"""


def _cli(*args):
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=os.getcwd())
    return subprocess.run([sys.executable, "-m", "qgolden", *args], capture_output=True, text=True, env=env)


def test_cli_lower_run_explain_and_integer_refusal(tmp_path):
    """lower/run/verify/explain on a model with integer index inputs; lower --integer-only, certify and export
    refuse in one line (exit 2) naming the layer and why."""
    builder = tmp_path / "emb.py"
    builder.write_text(BUILDER)
    np.savez(tmp_path / "x.npz", idx=np.array([3, 3, 19, 0, 7, 1, 2], dtype=np.int64),
             offsets=np.array([0, 2, 2, 5], dtype=np.int64))
    model = f"{builder}:build"
    ins = ["--input", str(tmp_path / "x.npz")]
    r = _cli("verify", model, *ins)
    assert r.returncode == 0, r.stdout + r.stderr
    r = _cli("explain", model, *ins)
    assert r.returncode == 0, r.stderr
    assert "bag" in r.stdout and "embedding_bag" in r.stdout
    for cmd in (["lower", model, "--integer-only", "-o", str(tmp_path / "m.qgp")],
                ["export", model, "--target", "c", "--out", str(tmp_path / "c"), *ins]):
        r = _cli(*cmd)
        assert r.returncode == 2, (cmd, r.stdout, r.stderr)
        err = r.stderr.strip()
        assert "Traceback" not in err and len(err.splitlines()) == 1, (cmd, err)
        assert "bag" in err and "float32" in err and "no integer-only form" in err, (cmd, err)
    # certify: the op is reported as not integer, with why (exit 1: not certified)
    r = _cli("certify", model, "--json")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "no integer-only form" in r.stdout and "Traceback" not in r.stderr




@pytest.mark.parametrize("bits", [8, 4])
def test_explain_shows_row_lookup_and_bag_reduction(bits):
    """explain lists the rows each bag reads (empty bags too) and one element's reduction index by index;
    every printed number is the engine's own (explain.check), and the ignored mode is said."""
    from qgolden.explain import explain, render
    from qgolden.explain.check import problems

    model = _quantized_bags(10, QC8 if bits == 8 else QC4, mode="mean", seed=5)
    x = _inputs(10, False, 6)
    program = api.lower(model, example_inputs=x)
    doc, trace, env = explain(program, [t.numpy() for t in x])
    assert problems(doc, program, trace, env) == []
    text = render(doc, "markdown")
    assert "rows it reads" in text and "none (empty)" in text and "running sum" in text
    assert "ignores the mode" in text and "weight w" in text
    bag = trace["bag"]
    rows = x[0].numpy()
    assert np.array_equal(bag["rows"], rows)
    last = bag["bag_end"] - 1
    full = bag["bag_end"] > bag["bag_start"]
    assert same_bits(bag["running"][last[full]], env["bag"][full])


def test_arm64_byte_kernel_groups_biases():
    """arm64 (no FBGEMM): the 8-bit bag without weights runs ATen's NEON kernel, whose float32 order differs
    from FBGEMM's (group biases summed first); with exactly representable terms both give the exact sum,
    bags of one agree always, and on random tables the orders give different bits somewhere."""
    from qgolden.numerics.profile import make_profile

    rng = np.random.default_rng(7)
    n, d = 40, 33
    codes = rng.integers(0, 256, (n, d)).astype(np.uint8)
    idx = rng.integers(0, n, 60).astype(np.int64)
    off = np.array([0, 1, 1, 3, 20, 37], np.int64)  # bags of 1, 0, 2, 17, 17, 23 indices
    kw = dict(has_offsets=True, bits=8)
    arm, x86 = make_profile("qnnpack", "arm64"), make_profile("x86", "avx2")
    exact = np.stack([2.0 ** -rng.integers(2, 6, n), -rng.integers(0, 64, n)], 1).astype(np.float32)
    a = embedding_bag(idx, off, codes=codes, scale_bias=exact, profile=arm, **kw)
    b = embedding_bag(idx, off, codes=codes, scale_bias=exact, profile=x86, **kw)
    want = np.zeros((6, d))
    for m, (s, e) in enumerate(zip(off, list(off[1:]) + [60])):
        for r in idx[s:e]:
            want[m] += codes[r] * exact[r, 0].astype(np.float64) + exact[r, 1]
    assert same_bits(a, want) and same_bits(b, want)
    sb = np.stack([rng.uniform(0.001, 0.1, n), rng.uniform(-10, 0, n)], 1).astype(np.float32)
    a = embedding_bag(idx, off, codes=codes, scale_bias=sb, profile=arm, **kw)
    b = embedding_bag(idx, off, codes=codes, scale_bias=sb, profile=x86, **kw)
    assert same_bits(a[0], b[0]) and same_bits(a[1], b[1])
    assert not same_bits(a[3:], b[3:])


def test_verifier_refuses_a_bad_table(tmp_path):
    """A .qgp whose table is not what PyTorch's prepack makes is refused by the verifier (exit 2 on load)."""
    from qgolden.ir import ProgramError, load

    program = api.lower(_quantized_bags(8, QC4), example_inputs=_inputs(8, False, 0))
    node = next(nd for nd in program.nodes if nd.op == "embedding_bag")
    node.consts["codes"] = node.consts["codes"].copy()
    node.consts["codes"][0, 0] = 16
    program.save(tmp_path / "bad.qgp")
    with pytest.raises(ProgramError, match="above 15"):
        load(tmp_path / "bad.qgp")
    node.consts["codes"][0, 0] = 1
    node.consts["scale_bias"] = node.consts["scale_bias"].astype(np.float32)
    program.save(tmp_path / "bad2.qgp")
    with pytest.raises(ProgramError, match="scale_bias must be float16"):
        load(tmp_path / "bad2.qgp")
