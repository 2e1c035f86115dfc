"""Random quantized models for the bit-exact campaign: `make fuzz N=...`, and a subset in the tests.

A model is a random spec (a list of blocks) run by one generic module, quantized with FX
(`prepare_fx`/`convert_fx`) or eager mode (QuantStub/DeQuantStub, FloatFunctional,
fused modules), on a random engine, with per-tensor or per-channel weights and reduced
or full-range activations. Inputs include values that clamp and exact .5 ties.
"""
from __future__ import annotations

import argparse
import random
import sys
import time

import numpy as np

ENGINES = ("x86", "fbgemm", "qnnpack", "onednn")


def _spec(rng: random.Random, kind: str, eager: bool):
    """A random list of blocks. Shapes are tracked so every block is valid."""
    blocks = []
    if kind == "mlp":
        f = rng.randint(1, 40)
        shape = ("f", f)
        for _ in range(rng.randint(1, 4)):
            choice = rng.choice(["linear", "linear", "act", "add", "cat", "mul"])
            if choice == "linear":
                o = rng.randint(1, 48)
                blocks.append({"t": "linear", "i": shape[1], "o": o, "relu": rng.random() < 0.4,
                               "bias": rng.random() < 0.85})
                shape = ("f", o)
            elif choice == "act":
                blocks.append({"t": "act", "a": rng.choice(_acts(eager))})
            elif choice in ("add", "mul"):
                blocks.append({"t": "skip", "op": choice, "relu": rng.random() < 0.3, "c": shape[1], "nd": 0})
            elif choice == "cat":
                blocks.append({"t": "cat", "c": shape[1], "nd": 0})
                shape = ("f", shape[1] * 2)
        blocks.append({"t": "linear", "i": shape[1], "o": rng.randint(1, 10), "relu": False, "bias": True})
        return blocks, ("f", f)
    nd = 1 if kind == "cnn1d" else 2
    c = rng.randint(1, 12)
    size = rng.randint(5, 14)
    inshape = ("c", c, size, nd)
    for _ in range(rng.randint(2, 5)):
        choice = rng.choice(["conv", "conv", "dw", "act", "skip", "pool", "cat", "bn", "up"])
        if choice in ("conv", "dw"):
            k = rng.choice([1, 3, 5]) if choice == "conv" else rng.choice([3, 3, 5])
            stride = rng.choice([1, 1, 2])
            pad = rng.choice([0, k // 2, k // 2])
            dil = rng.choice([1, 1, 1, 2])
            if size + 2 * pad - dil * (k - 1) < 1:
                pad, dil = k // 2, 1
            if choice == "dw":
                groups = c
                o = c * rng.choice([1, 1, 2])
                if rng.random() < 0.5 and nd == 2:  # the FBGEMM depthwise fast path shape
                    pad, dil = k // 2, 1
            else:
                groups = rng.choice([1, 1, 1, 2, 3]) if c % 2 == 0 or c % 3 == 0 else 1
                if c % groups:
                    groups = 1
                o = rng.randint(1, 12) * groups
            blocks.append({"t": "conv", "i": c, "o": o, "k": k, "s": stride, "p": pad, "d": dil, "g": groups,
                           "nd": nd, "bias": rng.random() < 0.8, "bn": rng.random() < 0.3 and nd == 2,
                           "relu": rng.random() < 0.5})
            size = (size + 2 * pad - dil * (k - 1) - 1) // stride + 1
            c = o
        elif choice == "bn" and nd == 2 and eager:  # FX leaves conv -> bn unfused in float
            blocks.append({"t": "bn", "c": c})
        elif choice == "act":
            blocks.append({"t": "act", "a": rng.choice(_acts(eager))})
        elif choice == "skip":
            blocks.append({"t": "skip", "op": rng.choice(["add", "add", "mul"]), "relu": rng.random() < 0.4,
                           "c": c, "nd": nd})
        elif choice == "cat":
            blocks.append({"t": "cat", "c": c, "nd": nd})
            c = 2 * c
        elif choice == "pool" and size >= 2:
            p = rng.choice(["max", "avg", "adaptive"])
            if p == "adaptive":
                o = rng.randint(1, size)
                blocks.append({"t": "pool", "p": p, "o": o, "nd": nd})
                size = o
            else:
                k = rng.choice([2, 3]) if size >= 3 else 2
                s = rng.choice([1, 2])
                pad = rng.choice([0, 0, 1]) if k > 2 else 0
                ceil = rng.random() < 0.3
                cip = rng.random() < 0.7
                blocks.append({"t": "pool", "p": p, "k": k, "s": s, "pad": pad, "ceil": ceil, "cip": cip, "nd": nd})
                size = _pool_out(size, k, s, pad, ceil)
        elif choice == "up" and size <= 10 and nd == 2:  # torch has no quantized upsample 1d
            blocks.append({"t": "up", "f": 2, "nd": nd})
            size *= 2
    blocks.append({"t": "pool", "p": "adaptive", "o": 1, "nd": nd})
    blocks.append({"t": "flatten"})
    blocks.append({"t": "linear", "i": c, "o": rng.randint(1, 10), "relu": False, "bias": True})
    return blocks, inshape


def _pool_out(size, k, s, pad, ceil):
    import math

    num = size + 2 * pad - k
    out = (math.ceil(num / s) if ceil else num // s) + 1
    if ceil and (out - 1) * s >= size + pad:
        out -= 1
    return out


def _acts(eager):
    return ["relu", "relu6", "hardtanh", "hardswish", "leaky_relu", "elu", "sigmoid", "tanh"]


def build_module(blocks, eager: bool):
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = blocks
            self.quant = torch.ao.quantization.QuantStub()
            self.dequant = torch.ao.quantization.DeQuantStub()
            self.layers = nn.ModuleList()
            for b in blocks:
                self.layers.append(self._make(b))

        def _make(self, b):
            t = b["t"]
            if t == "linear":
                m = nn.Sequential(nn.Linear(b["i"], b["o"], bias=b["bias"]))
                if b["relu"]:
                    m.append(nn.ReLU())
                return m
            if t == "conv":
                Conv = nn.Conv1d if b["nd"] == 1 else nn.Conv2d
                m = nn.Sequential(Conv(b["i"], b["o"], b["k"], stride=b["s"], padding=b["p"], dilation=b["d"],
                                       groups=b["g"], bias=b["bias"]))
                if b["bn"]:
                    m.append(nn.BatchNorm2d(b["o"]))
                if b["relu"]:
                    m.append(nn.ReLU())
                return m
            if t == "bn":
                return nn.BatchNorm2d(b["c"])
            if t == "act":
                return {"relu": nn.ReLU(), "relu6": nn.ReLU6(), "hardtanh": nn.Hardtanh(-0.5, 1.5),
                        "hardswish": nn.Hardswish(), "leaky_relu": nn.LeakyReLU(0.1), "elu": nn.ELU(0.7),
                        "sigmoid": nn.Sigmoid(), "tanh": nn.Tanh()}[b["a"]]
            if t in ("skip", "cat"):
                # eager mode needs FloatFunctional; FX mode quantizes torch.add/mul/cat itself
                return torch.ao.nn.quantized.FloatFunctional() if eager else nn.Identity()
            if t == "pool":
                nd = b["nd"]
                if b["p"] == "adaptive":
                    return (nn.AdaptiveAvgPool1d if nd == 1 else nn.AdaptiveAvgPool2d)(b["o"])
                if b["p"] == "max":
                    return (nn.MaxPool1d if nd == 1 else nn.MaxPool2d)(b["k"], b["s"], b["pad"], ceil_mode=b["ceil"])
                return (nn.AvgPool1d if nd == 1 else nn.AvgPool2d)(b["k"], b["s"], b["pad"], ceil_mode=b["ceil"],
                                                                   count_include_pad=b["cip"])
            if t == "up":
                return nn.Upsample(scale_factor=b["f"], mode="nearest")
            if t == "flatten":
                return nn.Flatten()
            raise ValueError(t)

        def forward(self, x):
            x = self.quant(x)
            for b, m in zip(self.blocks, self.layers):
                t = b["t"]
                if t == "skip" and eager:
                    y = x
                    if b["op"] == "add":
                        x = m.add_relu(x, y) if b["relu"] else m.add(x, y)
                    else:
                        x = m.mul(x, y)
                elif t == "skip":
                    y = x
                    x = torch.add(x, y) if b["op"] == "add" else torch.mul(x, y)
                    if b["relu"]:
                        x = torch.nn.functional.relu(x)
                elif t == "cat" and eager:
                    x = m.cat([x, x], dim=1)
                elif t == "cat":
                    x = torch.cat([x, x], dim=1)
                else:
                    x = m(x)
            return self.dequant(x)

    return Net().eval()


def random_case(seed: int, engine: str | None = None, mode: str | None = None):
    """(quantized model, list of float32 inputs, description) for one seed."""
    import torch
    from torch.ao.quantization import QConfig, get_default_qconfig_mapping
    from torch.ao.quantization.observer import HistogramObserver, MinMaxObserver, PerChannelMinMaxObserver

    rng = random.Random(seed)
    engine = engine or rng.choice(ENGINES)
    mode = mode or rng.choice(["fx", "eager"])
    kind = rng.choice(["mlp", "cnn2d", "cnn2d", "cnn1d"])
    eager = mode == "eager"
    blocks, inshape = _spec(rng, kind, eager)
    torch.manual_seed(seed)
    model = build_module(blocks, eager)
    # random, non-trivial BN statistics
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
    per_channel = rng.random() < 0.5 and engine != "qnnpack" or engine == "onednn"
    reduce_range = engine in ("x86", "fbgemm") and rng.random() < 0.6
    act = (HistogramObserver if rng.random() < 0.3 else MinMaxObserver).with_args(
        dtype=torch.quint8, reduce_range=reduce_range)
    if per_channel:
        wobs = PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
    else:
        wobs = MinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
    qconfig = QConfig(activation=act, weight=wobs)
    batch = rng.randint(1, 3)
    if inshape[0] == "f":
        shape = (batch, inshape[1])
    else:
        shape = (batch, inshape[1]) + (inshape[2],) * inshape[3]
    calib = torch.randn(*((8,) + shape[1:])) * rng.choice([0.5, 1.0, 3.0])
    old = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine
    try:
        if eager:
            model.qconfig = qconfig
            _fuse(model, blocks)
            prepared = torch.ao.quantization.prepare(model)
            prepared(calib)
            q = torch.ao.quantization.convert(prepared)
        else:
            from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

            # the default mapping gives sigmoid/tanh/hardsigmoid their fixed output quantization
            qmap = get_default_qconfig_mapping(engine).set_global(qconfig)
            prepared = prepare_fx(model, qmap, example_inputs=(calib,))
            prepared(calib)
            q = convert_fx(prepared)
    finally:
        torch.backends.quantized.engine = old
    # inputs: beyond the calibrated range (clamps), and exact ties of the input quantization
    x = (torch.randn(*shape) * 4).numpy().astype(np.float32)
    scale = _input_scale(q)
    if scale is not None and x.size > 2:
        flat = x.reshape(-1)
        idx = np.arange(0, flat.size, 3)
        flat[idx] = ((np.round(flat[idx] / scale) + 0.5) * scale).astype(np.float32)
    desc = f"seed={seed} engine={engine} mode={mode} kind={kind} per_channel={per_channel} " \
           f"reduce_range={reduce_range} blocks={[b['t'] + ('/' + b.get('a', b.get('p', b.get('op', ''))) if b['t'] in ('act', 'pool', 'skip') else '') for b in blocks]}"
    return q, [x], desc, engine


def _input_scale(q):
    for name, buf in list(q.named_buffers()) + list(q.named_parameters()):
        if name.endswith("input_scale_0") or name.endswith("quant.scale"):
            return float(buf.reshape(-1)[0])
    for m in q.modules():
        if type(m).__name__ == "Quantize":
            return float(m.scale)
    return None


def _fuse(model, blocks):
    import torch

    for i, b in enumerate(blocks):
        if b["t"] in ("conv", "linear"):
            names = [f"layers.{i}.{j}" for j in range(len(model.layers[i]))]
            if len(names) > 1:
                torch.ao.quantization.fuse_modules(model, [names], inplace=True)


def check(seed: int, engine=None, mode=None, script=False):
    """Verify one random model; returns (report, description)."""
    import torch

    from .api import verify

    q, xs, desc, engine = random_case(seed, engine, mode)
    with torch.no_grad():
        if script:
            old = torch.backends.quantized.engine
            torch.backends.quantized.engine = engine
            try:
                # the generic eager Net is not scriptable (its forward walks a list of dicts): trace it
                if script == "script" and isinstance(q, torch.fx.GraphModule):
                    q = torch.jit.script(q)
                else:
                    script = "trace"
                    q = torch.jit.trace(q, torch.from_numpy(xs[0]))
            finally:
                torch.backends.quantized.engine = old
            desc += f" {script}"
        rep = verify(q, *xs, engine=engine)
    return rep, desc


def main(argv=None):
    import warnings

    warnings.filterwarnings("ignore")
    ap = argparse.ArgumentParser(description="qgolden bit-exact campaign on random quantized models")
    ap.add_argument("--models", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0, help="first seed")
    ap.add_argument("--engine", default=None)
    ap.add_argument("--accumulate", choices=("numpy", "torch"), default="numpy",
                    help="who computes the linear/conv sums of the program (Program.run(accumulate=))")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    from .numerics.accumulate import set_backend

    set_backend(a.accumulate)
    t0 = time.time()
    models = elements = mismatches = bad = 0
    for s in range(a.seed, a.seed + a.models):
        script = [False, False, "script", "trace"][s % 4]
        try:
            rep, desc = check(s, engine=a.engine, script=script)
        except Exception as e:  # a crash is a failure too, reported with its seed
            print(f"ERROR seed={s}: {type(e).__name__}: {e}")
            bad += 1
            models += 1
            continue
        models += 1
        el = sum(l.elements for l in rep.layers)
        mm = sum(l.mismatches for l in rep.layers) + sum(o["mismatches"] for o in rep.outputs)
        elements += el
        mismatches += mm
        if mm:
            bad += 1
            first = rep.first_mismatch
            print(f"MISMATCH {desc}: {mm} elements, first at {first.name if first else 'output'}")
        elif a.verbose:
            print(f"ok {desc}")
    print(f"models {models}  elements {elements}  mismatches {mismatches}  failing models {bad}  "
          f"({time.time() - t0:.0f} s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
