"""Dynamic quantized recurrent layers (quantize_dynamic of nn.LSTM, GRU, LSTMCell, GRUCell, RNNCell):
float32 in and out, bit for bit (equal float32 bit patterns of the output, h_n and c_n) against PyTorch
under every engine of this host (the shared `engine` fixture: the host's profile), random models with
fixed seeds; ATen's float sigmoid and tanh alone; explain; the integer-only refusals; and an LSTM
keyword spotter (static conv front end + dynamic 2-layer LSTM + classifier)."""
from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from qgolden import api, load  # noqa: E402
from qgolden.explain import explain, render  # noqa: E402
from qgolden.explain.check import problems  # noqa: E402
from qgolden.numerics.dynamic_quant import choose_qparams  # noqa: E402
from qgolden.numerics.float_unary import aten_sigmoid, aten_tanh, row_vector_mask  # noqa: E402

warnings.filterwarnings("ignore")
QCONFIGS = {"per_tensor": torch.ao.quantization.default_dynamic_qconfig,
            "per_channel": torch.ao.quantization.per_channel_dynamic_qconfig}
RNN_TYPES = {nn.LSTM, nn.GRU, nn.LSTMCell, nn.GRUCell, nn.RNNCell}


def differing(a, b) -> int:
    """Number of elements whose float32 bit patterns differ (shapes must agree)."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    b = np.ascontiguousarray(b.detach().numpy() if isinstance(b, torch.Tensor) else b, dtype=np.float32)
    assert a.shape == b.shape, (a.shape, b.shape)
    return int(np.count_nonzero(a.view(np.int32) != b.view(np.int32)))


class Seq(nn.Module):
    """A recurrent layer called as people call it: on x alone, or on (x, initial states)."""

    def __init__(self, rnn, states: bool):
        super().__init__()
        self.rnn = rnn
        self.states = states

    def forward(self, x, h0, c0):
        if not self.states:
            return self.rnn(x)
        if isinstance(self.rnn, (nn.LSTM, nn.LSTMCell)) or type(self.rnn).__name__ in ("LSTM", "LSTMCell"):
            return self.rnn(x, (h0, c0))
        return self.rnn(x, h0)


def _quantized(module, qconfig):
    return torch.ao.quantization.quantize_dynamic(module.eval(), {t: QCONFIGS[qconfig] for t in RNN_TYPES},
                                                  dtype=torch.qint8)


def _sequence_case(seed):
    """A random LSTM / GRU configuration: hidden sizes around the vector widths (8 and 16 floats, pairs
    of 16 for sigmoid's vector loop), 1-3 layers, one or two directions, batch_first or not."""
    rng = np.random.default_rng(seed)
    return dict(kind=("LSTM", "GRU")[seed % 2], input_size=int(rng.choice([1, 3, 8, 13, 16, 40])),
                hidden_size=int(rng.choice([1, 5, 8, 15, 16, 17, 31, 32, 33, 48, 65])),
                num_layers=int(rng.integers(1, 4)), bidirectional=bool(rng.random() < 0.5),
                batch_first=bool(rng.random() < 0.5), T=int(rng.choice([1, 2, 7, 16, 33])),
                B=int(rng.integers(1, 6)), states=bool(rng.random() < 0.5),
                qconfig=("per_tensor", "per_channel")[int(rng.random() < 0.3)], scale=float(rng.uniform(0.05, 4)))


def _run_sequence(case, seed, engine):
    torch.manual_seed(seed)
    cls = getattr(nn, case["kind"])
    rnn = cls(case["input_size"], case["hidden_size"], case["num_layers"], batch_first=case["batch_first"],
              bidirectional=case["bidirectional"])
    model = _quantized(Seq(rnn, case["states"]), case["qconfig"])
    D, T, B, H = 1 + case["bidirectional"], case["T"], case["B"], case["hidden_size"]
    x = torch.randn((B, T, case["input_size"]) if case["batch_first"] else (T, B, case["input_size"])) * case["scale"]
    h0, c0 = torch.randn(case["num_layers"] * D, B, H), torch.randn(case["num_layers"] * D, B, H) * 2
    program = api.lower(model, example_inputs=(x, h0, c0), engine=engine["engine"])
    assert sum(nd.op == "dynamic_rnn_layer" for nd in program.nodes) == case["num_layers"] * D
    want = model(x, h0, c0)
    got = program.run(x.numpy(), h0.numpy(), c0.numpy())
    pairs = [(got[0], want[0])]
    if case["kind"] == "LSTM":
        pairs += [(got[1][0], want[1][0]), (got[1][1], want[1][1])]
    else:
        pairs += [(got[1], want[1])]
    return sum(differing(g, w) for g, w in pairs), sum(w.numel() for _, w in pairs)


def test_dynamic_lstm_gru_random_models_match_pytorch(engine):
    """12 random LSTM / GRU models (multi-layer, bidirectional, batch_first, initial states given or
    zero, per-tensor and per-channel weights, hidden sizes around the vector widths): output, h_n and
    c_n have PyTorch's float32 bit patterns."""
    bad = total = 0
    for seed in range(12):
        case = _sequence_case(seed)
        b, n = _run_sequence(case, seed, engine)
        assert b == 0, f"seed {seed} {case}: {b} of {n} float32 outputs differ"
        bad, total = bad + b, total + n
    assert total > 5000


def test_a_second_input_gets_its_own_scale(engine):
    """One program, inputs of very different ranges and sequence lengths: every input GEMM's scale is
    chosen from that call's own min and max, as PyTorch does."""
    torch.manual_seed(3)
    model = _quantized(Seq(nn.LSTM(12, 20, 2), False), "per_tensor")
    zeros = torch.zeros(1, 1, 1)
    x0 = torch.randn(6, 3, 12)
    program = api.lower(model, example_inputs=(x0, zeros, zeros), engine=engine["engine"])
    for k, scale in enumerate((0.01, 1.0, 30.0)):
        x = torch.randn(4 + 5 * k, 3, 12) * scale
        want = model(x, zeros, zeros)
        got = program.run(x.numpy(), zeros.numpy(), zeros.numpy())
        assert differing(got[0], want[0]) == 0 and differing(got[1][0], want[1][0]) == 0
        assert differing(got[1][1], want[1][1]) == 0


CELLS = [(nn.LSTMCell, {}), (nn.GRUCell, {}), (nn.RNNCell, {"nonlinearity": "tanh"}),
         (nn.RNNCell, {"nonlinearity": "relu"})]


@pytest.mark.parametrize("cell,kw", CELLS, ids=["LSTMCell", "GRUCell", "RNNCell-tanh", "RNNCell-relu"])
def test_dynamic_cells_match_pytorch(engine, cell, kw):
    """nnqd.LSTMCell / GRUCell / RNNCell (torch requires their bias) over random sizes, with and without an initial
    state, per-tensor and per-channel weights; run as a loop over time steps (a program per step)."""
    checked = 0
    for seed in range(8):
        rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        k, h, b = int(rng.choice([1, 4, 16, 33])), int(rng.choice([1, 7, 16, 17, 32, 40])), int(rng.integers(1, 5))
        model = _quantized(Seq(cell(k, h, **kw), bool(seed % 2)),
                           ("per_tensor", "per_channel")[seed % 4 == 3])
        h0, c0 = torch.randn(b, h), torch.randn(b, h)
        x = torch.randn(b, k) * float(rng.uniform(0.1, 3))
        program = api.lower(model, example_inputs=(x, h0, c0), engine=engine["engine"])
        for _ in range(3):
            want = model(x, h0, c0)
            got = program.run(x.numpy(), h0.numpy(), c0.numpy())
            if cell is nn.LSTMCell:
                assert differing(got[0], want[0]) == 0 and differing(got[1], want[1]) == 0
                h0, c0 = want
            else:
                assert differing(got, want) == 0
                h0 = want
            checked += h0.numel()
            x = torch.randn(b, k)
    assert checked > 100


class StatesGiven(nn.Module):
    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x, h0):
        return self.rnn(x, h0)


class LstmStatesGiven(nn.Module):
    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x, h0, c0):
        return self.rnn(x, (h0, c0))


class NoStates(nn.Module):
    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        return self.rnn(x)


def test_torchscript_of_dynamic_rnns(engine, tmp_path):
    """torch.jit.script of quantize_dynamic LSTM / GRU (aten::quantized_lstm / quantized_gru with the
    packed cell parameters) and of the cells, saved and reloaded: bit for bit with the eager model."""
    torch.manual_seed(11)
    T, B = 6, 3
    cases = [(NoStates(nn.LSTM(7, 16, 2, bidirectional=True, batch_first=True)), [torch.randn(B, T, 7)]),
             (LstmStatesGiven(nn.LSTM(7, 17, 1)), [torch.randn(T, B, 7), torch.randn(1, B, 17), torch.randn(1, B, 17)]),
             (NoStates(nn.GRU(5, 33, 2)), [torch.randn(T, B, 5)]),
             (StatesGiven(nn.GRU(5, 9, 1, bidirectional=True)), [torch.randn(T, B, 5), torch.randn(2, B, 9)]),
             (LstmStatesGiven(nn.LSTMCell(5, 16)), [torch.randn(B, 5), torch.randn(B, 16), torch.randn(B, 16)]),
             (StatesGiven(nn.GRUCell(5, 18)), [torch.randn(B, 5), torch.randn(B, 18)]),
             (StatesGiven(nn.RNNCell(5, 18, nonlinearity="relu")), [torch.randn(B, 5), torch.randn(B, 18)])]
    for k, (model, xs) in enumerate(cases):
        qm = _quantized(model, "per_tensor")
        path = tmp_path / f"m{k}.pt"
        torch.jit.save(torch.jit.script(qm), path)
        scripted = torch.jit.load(path)
        program = api.lower(scripted, example_inputs=tuple(xs), engine=engine["engine"])
        assert any(nd.op in ("dynamic_rnn_layer", "dynamic_rnn_cell") for nd in program.nodes)
        want = qm(*xs)
        got = program.run(*[x.numpy() for x in xs])
        flat_w = [want] if isinstance(want, torch.Tensor) else [want[0], *want[1]] if isinstance(want[1], tuple) \
            else list(want)
        flat_g = [got] if isinstance(got, np.ndarray) else [got[0], *got[1]] if isinstance(got[1], tuple) else list(got)
        assert len(flat_g) == len(flat_w), k
        assert all(differing(g, w) == 0 for g, w in zip(flat_g, flat_w)), k


def test_sigmoid_and_tanh_match_aten_on_strided_chunks(engine_ctx):
    """ATen's float32 sigmoid_ / tanh_ on the LSTM's gate chunks (rows of H inside rows of 4H) and on
    contiguous tensors, rows around the vector pair width, arguments from tiny to saturating, and a
    tensor large enough to be split between threads: equal bit patterns."""
    from qgolden.numerics.profile import make_profile

    rng = np.random.default_rng(0)
    prof = make_profile()
    prof["num_threads"] = torch.get_num_threads()
    for rows, H in [(1, 1), (3, 1), (2, 15), (3, 16), (1, 31), (4, 32), (5, 33), (2, 47), (7, 64), (3, 100),
                    (700, 64)]:
        g = torch.from_numpy((rng.standard_normal((rows, 4 * H)) * rng.choice([0.01, 1, 6, 30])).astype(np.float32))
        chunk = g[:, H:2 * H]
        gs, gt = g.clone(), g.clone()
        gs[:, H:2 * H].sigmoid_()  # in place on the strided chunk, as LSTMCell does
        gt[:, H:2 * H].tanh_()
        assert differing(aten_sigmoid(chunk.numpy(), prof), gs[:, H:2 * H]) == 0, (rows, H)
        assert differing(aten_tanh(chunk.numpy(), prof), gt[:, H:2 * H]) == 0, (rows, H)
        whole = g.contiguous()
        assert differing(aten_sigmoid(whole.numpy(), prof, contiguous=True), torch.sigmoid(whole)) == 0
    big = torch.from_numpy((rng.standard_normal(70001) * 5).astype(np.float32))
    assert differing(aten_sigmoid(big.numpy()[None], prof, contiguous=True)[0], torch.sigmoid(big)) == 0
    assert row_vector_mask(2, 33, False, prof)[:, 32:].sum() == 0  # each row's tail is scalar


def test_program_file_roundtrip_and_check(tmp_path, engine_ctx):
    """A program with a bidirectional GRU and an LSTM cell saves, passes the verifier on load, runs the same."""
    torch.manual_seed(5)

    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(6, 10, 2, bidirectional=True, batch_first=True)
            self.cell = nn.LSTMCell(20, 7)

        def forward(self, x):
            y, h = self.gru(x)
            hc, cc = self.cell(y[:, -1])
            return hc, cc, h

    eng = "x86" if "x86" in torch.backends.quantized.supported_engines else "qnnpack"
    with engine_ctx(eng):
        model = _quantized(Two(), "per_tensor")
        x = torch.randn(3, 9, 6)
        program = api.lower(model, example_inputs=(x,), engine=eng)
        path = tmp_path / "rnn.qgp"
        program.save(path)
        again = load(path)
        want = model(x)
        got = again.run(x.numpy())
        assert all(differing(g, w) == 0 for g, w in zip(got, want))


def test_explain_shows_the_scale_choice_gemm_and_gates(engine_ctx):
    """explain on an LSTM: the input GEMM's per-call scale over the whole sequence, the first time
    step's hidden GEMM with its own scale, accumulators, float epilogue and gates; every printed number
    equals the computation's."""
    torch.manual_seed(2)
    eng = "x86" if "x86" in torch.backends.quantized.supported_engines else "qnnpack"
    with engine_ctx(eng):
        model = _quantized(Seq(nn.LSTM(5, 8, batch_first=True), False), "per_tensor")
        x = np.linspace(-1.5, 3.0, 2 * 4 * 5, dtype=np.float32).reshape(2, 4, 5)
        z = torch.zeros(1)
        program = api.lower(model, example_inputs=(torch.from_numpy(x), z, z), engine=eng)
        doc, trace, env = explain(program, [x, z.numpy(), z.numpy()])
    text = " ".join(render(doc, "text").split())
    layer = next(nd for nd in program.nodes if nd.op == "dynamic_rnn_layer")
    reduce = program.profile["engine"] != "qnnpack"
    s, zp = choose_qparams(np.float32(-1.5), np.float32(3.0), 0, 255, reduce)
    assert trace[layer.name]["x_scale"] == s and trace[layer.name]["x_zero_point"] == zp
    assert "ONE call over the whole sequence [4 steps × 2]" in text
    assert f"scale = {s!r}, zero point = {zp}" in text
    assert "hidden GEMM" in text and "acc = " in text and "h = o·tanh(c) = " in text
    assert problems(doc, program, trace, env) == []


def _cli(*args):
    r = subprocess.run([sys.executable, "-m", "qgolden.cli", *args], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


BUILDER = '''
import torch
from torch import nn


class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(6, 9, batch_first=True)
        self.fc = nn.Linear(9, 3)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.fc(y[:, -1])


def build():
    torch.manual_seed(0)
    return torch.ao.quantization.quantize_dynamic(M().eval(), {nn.LSTM, nn.Linear}, dtype=torch.{dtype})
'''


@pytest.mark.parametrize("command", [["lower", "--integer-only", "-o", "{d}/i.qgp"], ["certify"],
                                     ["export", "--target", "c", "--out", "{d}/c", "--input", "{d}/x.npy"]])
def test_integer_only_certify_export_refuse_in_one_line(tmp_path, command):
    """lower --integer-only, certify and export name the dynamic LSTM and say why it has no integer-only
    form; exit 2 (certify: the table says "float region, not integer", "NOT certified", exit 1)."""
    (tmp_path / "m.py").write_text(BUILDER.replace("{dtype}", "qint8"))
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((2, 5, 6)).astype(np.float32))
    args = [a.replace("{d}", str(tmp_path)) for a in command]
    code, out, err = _cli(args[0], f"{tmp_path}/m.py:build", *args[1:])
    assert "Traceback" not in err
    if command[0] == "certify":
        assert code == 1 and "NOT certified" in out and "dynamic_rnn_layer" in out
        return
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1
    assert "dynamic_rnn_layer" in err and "chooses each GEMM input's scale" in err


def test_run_without_mkl_says_so_in_one_line(tmp_path):
    """The tanh of a saved LSTM program is MKL's: with no MKL to call, `run` exits 2 with one line."""
    import os

    (tmp_path / "m.py").write_text(BUILDER.replace("{dtype}", "qint8"))
    np.save(tmp_path / "x.npy", np.zeros((2, 5, 6), np.float32))
    code, _, err = _cli("lower", f"{tmp_path}/m.py:build", "--input", str(tmp_path / "x.npy"),
                        "-o", str(tmp_path / "m.qgp"))
    assert code == 0, err
    r = subprocess.run([sys.executable, "-m", "qgolden.cli", "run", str(tmp_path / "m.qgp"), "--input",
                        str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")], capture_output=True,
                       text=True, env={**os.environ, "QGOLDEN_MKL_LIB": str(tmp_path / "no-such-lib.so")})
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "MKL" in r.stderr and "tanh" in r.stderr


def test_float16_dynamic_lstm_is_refused_in_one_line(tmp_path):
    """quantize_dynamic(dtype=torch.float16): FBGEMM's fp16 GEMM is not modelled: one line, exit 2."""
    (tmp_path / "m.py").write_text(BUILDER.replace("{dtype}", "float16").replace("nn.LSTM, nn.Linear", "nn.LSTM"))
    np.save(tmp_path / "x.npy", np.zeros((2, 5, 6), np.float32))
    code, out, err = _cli("lower", f"{tmp_path}/m.py:build", "-o", str(tmp_path / "m.qgp"))
    assert code == 2 and "Traceback" not in err
    assert "float16" in err and "LSTM" in err


# ------------------------------------------------------------------------------------------------
# An LSTM keyword spotter as people build it: MFCC-like features [B, 1, T, 10], a statically quantized
# conv front end (eager: QuantStub, fused Conv+BN+ReLU, DeQuantStub), a dynamic quantized 2-layer LSTM
# over time, and a dynamic quantized linear classifier on the last step.

class KeywordSpotter(nn.Module):
    def __init__(self, n_mfcc=10, channels=8, hidden=32, classes=12):
        super().__init__()
        self.quant = torch.ao.quantization.QuantStub()
        self.conv = nn.Conv2d(1, channels, (3, 3), padding=(1, 0), bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.dequant = torch.ao.quantization.DeQuantStub()
        self.lstm = nn.LSTM(channels * (n_mfcc - 2), hidden, num_layers=2, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x):  # x: [B, 1, T, n_mfcc]
        y = self.dequant(self.relu(self.bn(self.conv(self.quant(x)))))  # [B, C, T, F]
        y = y.permute(0, 2, 1, 3).reshape(y.shape[0], y.shape[2], -1)  # [B, T, C*F]
        out, _ = self.lstm(y)
        return self.fc(out[:, -1])


def keyword_spotter(engine: str, seed: int = 0):
    torch.manual_seed(seed)
    model = KeywordSpotter().eval()
    with torch.no_grad():  # a trained-looking BN
        model.bn.running_mean.uniform_(-0.2, 0.2)
        model.bn.running_var.uniform_(0.5, 2.0)
    model = torch.ao.quantization.fuse_modules(model, [["conv", "bn", "relu"]])
    model.qconfig = torch.ao.quantization.get_default_qconfig(engine)
    model.lstm.qconfig = None
    model.fc.qconfig = None
    torch.ao.quantization.prepare(model, inplace=True)
    for _ in range(4):
        model(torch.randn(4, 1, 49, 10) * 2)
    torch.ao.quantization.convert(model, inplace=True)
    return torch.ao.quantization.quantize_dynamic(model, {nn.LSTM, nn.Linear}, dtype=torch.qint8)


def test_lstm_keyword_spotter_bit_exact(engine):
    """Static conv front end + dynamic 2-layer LSTM + dynamic classifier: logits equal PyTorch's bit for
    bit on several utterances (49 frames of 10 MFCCs), and verify agrees layer by layer."""
    model = keyword_spotter(engine["engine"])
    x = torch.randn(3, 1, 49, 10) * 2
    program = api.lower(model, example_inputs=(x,), engine=engine["engine"])
    ops = [nd.op for nd in program.nodes]
    assert ops.count("dynamic_rnn_layer") == 2 and "conv" in ops and "dynamic_linear" in ops
    for seed in range(2):
        u = torch.from_numpy(np.random.default_rng(seed).standard_normal((2 + seed, 1, 49, 10)).astype(np.float32)
                             * (0.5 + 2 * seed))
        assert differing(program.run(u.numpy()), model(u)) == 0
    report = api.verify(model, x, engine=engine["engine"])
    assert report.bit_exact
