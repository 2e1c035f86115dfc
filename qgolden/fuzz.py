"""Random quantized models for the bit-exact campaign: `make fuzz N=...`, and a subset in the tests.

A model is a random spec (a list of blocks) run by one generic module, quantized with FX
(`prepare_fx`/`convert_fx`) or eager mode (QuantStub/DeQuantStub, FloatFunctional,
fused modules), on a random engine, with per-tensor or per-channel weights and reduced
or full-range activations. Inputs include values that clamp and exact .5 ties.

Two generators: the classic one (`random_case`: MLPs and 1-D/2-D CNNs of linear, conv, pools,
activations, add/mul/cat; the seeds the tests pin name its models) and the extended one
(`extended_case`, blocks in qgolden.fuzz_spec: every op family, 3-D and transposed convs,
norms, softmax, matmul, dynamic models, in-place activations, channels-last inputs, odd widths).
The campaign takes one seed in four from the classic generator and ends with how many models and
elements exercised each op family, naming any family it did not exercise and why.
"""
from __future__ import annotations

import argparse
import random
import sys
import time

import numpy as np

from .fuzz_spec import calibration_batch, gemm_module, pool_out

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
                size = pool_out(size, k, s, pad, ceil)
        elif choice == "up" and size <= 10 and nd == 2:  # torch has no quantized upsample 1d
            blocks.append({"t": "up", "f": 2, "nd": nd})
            size *= 2
    blocks.append({"t": "pool", "p": "adaptive", "o": 1, "nd": nd})
    blocks.append({"t": "flatten"})
    blocks.append({"t": "linear", "i": c, "o": rng.randint(1, 10), "relu": False, "bias": True})
    return blocks, inshape


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
            if t in ("linear", "conv"):
                return gemm_module(b)
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
    """(quantized model, list of float32 inputs, description, engine) for one seed, from the classic
    generator (the blocks the campaign started with; the seeds pinned in the tests name its models)."""
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
    shape, calib = calibration_batch(rng, inshape)
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


def generator_of(seed: int) -> str:
    """Which generator the campaign uses for a seed: one in four classic, the rest extended."""
    return "classic" if random.Random(f"generator {seed}").random() < 0.25 else "extended"


def _matmul_refusal(engine: str):
    """m, k, n -> None, or why quantized matmul is refused on the host's CPU class for that shape."""
    from .cpu import cpu_class
    from .numerics.profile import make_profile

    cls = cpu_class(make_profile(engine))

    def refusal(m, k, n):
        if cls.float_gemm_is_fma_chain(m, k, n):
            return None
        return (f"quantized matmul's float GEMM order is not modelled on CPU class {cls.tag} "
                f"for M={m} K={k} N={n} (qgolden refuses it)")
    return refusal


def _observers(rng, reduce_range, per_channel):
    import torch
    from torch.ao.quantization import QConfig
    from torch.ao.quantization.observer import HistogramObserver, MinMaxObserver, PerChannelMinMaxObserver

    act = (HistogramObserver if rng.random() < 0.3 else MinMaxObserver).with_args(
        dtype=torch.quint8, reduce_range=reduce_range)
    tensor_w = MinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
    if per_channel:
        wobs = PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
    else:
        wobs = tensor_w
    # transposed convs take per-tensor weights (as PyTorch's default mappings give them); PReLU's
    # slope has the input's dtype (torch refuses a qint8 slope on a quint8 input)
    return (QConfig(activation=act, weight=wobs), QConfig(activation=act, weight=tensor_w),
            QConfig(activation=act, weight=MinMaxObserver.with_args(dtype=torch.quint8)))


def extended_case(seed: int, engine: str | None = None, mode: str | None = None):
    """(quantized model, inputs, description, engine, tags, skipped) for one seed of the extended
    generator (qgolden.fuzz_spec): every op family, channels-last inputs, odd widths, dynamic models."""
    import torch
    from torch.ao.quantization import get_default_qconfig_mapping

    from . import fuzz_spec
    from .numerics.profile import gemm_saturates, make_profile

    rng = random.Random(f"extended {seed}")
    engine = engine or rng.choice(ENGINES)
    mode = mode or rng.choice(["fx", "eager"])
    kind = rng.choice(["mlp", "cnn1d", "cnn2d", "cnn2d", "cnn2d", "cnn3d", "cnn3d", "dynamic"])
    if kind == "cnn3d" and engine == "qnnpack":
        kind = "cnn2d"  # QNNPACK has no quantized 3-D conv
    eager = mode == "eager"
    torch.manual_seed(seed)
    if kind == "dynamic":
        return _dynamic_case(rng, seed, engine, mode)
    blocks, inshape, skipped = fuzz_spec.spec(rng, kind, eager, engine, _matmul_refusal(engine))
    model = fuzz_spec.build(blocks, eager)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # random, non-trivial BN statistics
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
        if isinstance(m, torch.nn.PReLU):
            m.weight.data.uniform_(-0.6, 0.6)
        if isinstance(m, (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.InstanceNorm1d, torch.nn.InstanceNorm2d,
                          torch.nn.InstanceNorm3d)) and m.weight is not None:
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    transposed = any(b["t"] == "convT" or (b["t"] == "conv" and b["nd"] == 3) for b in blocks)
    per_channel = rng.random() < 0.5 and engine != "qnnpack" or engine == "onednn"
    reduce_range = engine in ("x86", "fbgemm") and rng.random() < 0.5
    if transposed and engine != "qnnpack" and gemm_saturates(make_profile(engine)):
        reduce_range = True  # full range is refused there for 3-D and transposed convs (README, known limits)
    qconfig, tensor_qconfig, prelu_qconfig = _observers(rng, reduce_range, per_channel)
    shape, calib = calibration_batch(rng, inshape)
    transposes = (torch.nn.ConvTranspose1d, torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d)
    with _engine(engine):
        if eager:
            model.qconfig = qconfig
            for m in model.modules():
                if isinstance(m, transposes):
                    m.qconfig = tensor_qconfig
                elif isinstance(m, torch.nn.PReLU):
                    m.qconfig = prelu_qconfig
            _fuse(model, blocks)
            # eager mode has no default mapping for nn.Softmax: it is swapped for nnq.Softmax by hand
            from torch.ao.quantization.quantization_mappings import (
                get_default_qconfig_propagation_list, get_default_static_quant_module_mappings)

            allow = get_default_qconfig_propagation_list() | {torch.nn.Softmax}
            mapping = {**get_default_static_quant_module_mappings(), torch.nn.Softmax: torch.ao.nn.quantized.Softmax}
            prepared = torch.ao.quantization.prepare(model, allow_list=allow)
            prepared(calib)
            q = torch.ao.quantization.convert(prepared, mapping=mapping)
        else:
            from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

            # the default mapping gives sigmoid/tanh/hardsigmoid/softmax their fixed output quantization
            qmap = get_default_qconfig_mapping(engine).set_global(qconfig)
            for t in transposes:
                qmap.set_object_type(t, tensor_qconfig)
            prepared = prepare_fx(model, qmap, example_inputs=(calib,))
            prepared(calib)
            q = convert_fx(prepared)
    # inputs: beyond the calibrated range (clamps), and exact ties of the input quantization
    x = (torch.randn(*shape) * 4).numpy().astype(np.float32)
    tags = {t for b in blocks for t in b["tags"]}
    scale = _input_scale(q)
    if scale is not None and x.size > 2:
        flat = x.reshape(-1)
        idx = np.arange(0, flat.size, 3)
        flat[idx] = ((np.round(flat[idx] / scale) + 0.5) * scale).astype(np.float32)
        tags.add("input_ties")
    xin = torch.from_numpy(x)
    if len(shape) in (4, 5) and rng.random() < 0.35:
        xin = xin.contiguous(memory_format=torch.channels_last if len(shape) == 4 else torch.channels_last_3d)
        tags.add("channels_last")
    tags |= {"per_channel"} if per_channel else set()
    tags |= {"full_range"} if not reduce_range else set()
    if any(b.get("i", b.get("c")) in fuzz_spec.ODD_WIDTHS or b.get("o") in fuzz_spec.ODD_WIDTHS for b in blocks) \
            or (inshape[0] != "f" and inshape[1] in fuzz_spec.ODD_WIDTHS):
        tags.add("odd_channels")
    desc = f"seed={seed} extended engine={engine} mode={mode} kind={kind} per_channel={per_channel} " \
           f"reduce_range={reduce_range} channels_last={'channels_last' in tags} blocks={_names(blocks)}"
    return q, [xin], desc, engine, tags, skipped


def _names(blocks):
    return [b["t"] + ("/" + str(b.get("a", b.get("p", b.get("op", b.get("mode", b.get("how", "")))))) if b["t"] in (
        "act", "pool", "skip", "mismatched", "scalar", "up", "split") else "") + (
        f"{b['nd']}d" if b["t"] in ("conv", "convT") else "") for b in blocks]


def _dynamic_case(rng, seed, engine, mode):
    """quantize_dynamic (eager) or a dynamic qconfig through prepare_fx/convert_fx: float in, float out."""
    import torch
    import torch.ao.nn.intrinsic as nni
    from torch.ao.quantization import QConfigMapping, default_dynamic_qconfig, per_channel_dynamic_qconfig

    from . import fuzz_spec
    from .numerics.dynamic_quant import choose_qparams

    blocks, f = fuzz_spec.dynamic_spec(rng)
    model = fuzz_spec.build(blocks, mode == "eager", dynamic=True)
    per_channel = rng.random() < 0.5
    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    shape = (rng.randint(1, 9), f) if rng.random() < 0.6 else (rng.randint(1, 3), rng.randint(1, 5), f)
    x = (torch.randn(*shape) * rng.choice([0.3, 1.0, 4.0])).numpy().astype(np.float32)
    with _engine(engine):
        if mode == "eager":
            if rng.random() < 0.5:
                _fuse(model, blocks)
            q = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear: qconfig, nni.LinearReLU: qconfig})
        else:
            from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

            prepared = prepare_fx(model, QConfigMapping().set_global(qconfig), example_inputs=(torch.from_numpy(x),))
            q = convert_fx(prepared)
    # exact ties of the first layer's per-call input quantization (its scale is chosen from x's range)
    flat = x.reshape(-1)
    tags = {t for b in blocks for t in b["tags"]}
    if flat.size > 2:
        lo, hi = float(flat.min()), float(flat.max())
        s, z = choose_qparams(np.float32(min(lo, 0.0)), np.float32(max(hi, 0.0)), 0, 255, engine != "qnnpack")
        k = np.round(flat[1:-1:2] / np.float32(s))
        flat[1:-1:2] = np.clip(((k + 0.5) * np.float64(np.float32(s))).astype(np.float32), lo, hi)
        flat[0], flat[-1] = lo, hi
        tags.add("input_ties")
    tags |= {"per_channel"} if per_channel else set()
    if any(b["i"] in fuzz_spec.ODD_WIDTHS or b["o"] in fuzz_spec.ODD_WIDTHS for b in blocks):
        tags.add("odd_channels")
    desc = f"seed={seed} extended engine={engine} mode={mode} kind=dynamic per_channel={per_channel} " \
           f"shape={shape} blocks={_names(blocks)}"
    return q, [x], desc, engine, tags, {}


class _engine:
    """torch.backends.quantized.engine set for a block, restored after."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        import torch

        self.old = torch.backends.quantized.engine
        torch.backends.quantized.engine = self.name

    def __exit__(self, *exc):
        import torch

        torch.backends.quantized.engine = self.old


def check(seed: int, engine=None, mode=None, script=False, generator="classic"):
    """Verify one random model; returns (report, description).

    generator: "classic" (the blocks the campaign started with) or "extended" (every op family)."""
    rep, desc, _, _ = check_case(seed, engine, mode, script, generator)
    return rep, desc


def check_case(seed: int, engine=None, mode=None, script=False, generator="classic"):
    """Verify one random model; returns (report, description, family tags, skipped {family: reason})."""
    import torch

    from .api import verify

    if generator == "classic":
        q, xs, desc, engine = random_case(seed, engine, mode)
        tags, skipped = _classic_tags(desc), {}
    else:
        q, xs, desc, engine, tags, skipped = extended_case(seed, engine, mode)
    with torch.no_grad():
        if script:
            with _engine(engine):
                # the generic eager Net is not scriptable (its forward walks a list of dicts): trace it
                if script == "script" and isinstance(q, torch.fx.GraphModule):
                    q = torch.jit.script(q)
                else:
                    script = "trace"
                    x0 = xs[0] if isinstance(xs[0], torch.Tensor) else torch.from_numpy(xs[0])
                    q = torch.jit.trace(q, x0)
            desc += f" {script}"
            tags = tags | {"torchscript_" + script}
        rep = verify(q, *xs, engine=engine)
    return rep, desc, tags, skipped


def _classic_tags(desc):
    """The families a classic model exercises, read from its description (its blocks are not kept)."""
    tags = set()
    for name in ("linear", "conv", "act", "skip", "pool", "cat", "bn", "up"):
        if f"'{name}" in desc:
            tags.add({"linear": "linear", "conv": "conv", "act": "activation", "skip": "add_same", "pool": "pool",
                      "cat": "cat", "bn": "batch_norm", "up": "upsample_nearest"}[name])
    return tags


def main(argv=None):
    import warnings

    from .errors import NotModelled
    from .fuzz_spec import FAMILIES

    warnings.filterwarnings("ignore")
    ap = argparse.ArgumentParser(description="qgolden bit-exact campaign on random quantized models")
    ap.add_argument("--models", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0, help="first seed")
    ap.add_argument("--engine", default=None)
    ap.add_argument("--generator", choices=("mixed", "classic", "extended"), default="mixed",
                    help="classic: the first blocks only; extended: every op family; mixed: one seed in four classic")
    ap.add_argument("--accumulate", choices=("numpy", "torch"), default="numpy",
                    help="who computes the linear/conv sums of the program (Program.run(accumulate=))")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    from .numerics.accumulate import set_backend

    set_backend(a.accumulate)
    t0 = time.time()
    models = elements = mismatches = bad = refused = 0
    family = {}  # family tag -> [models, elements of those models]
    ops = {}  # program op -> [models, elements compared at that op]
    skipped = {}  # (family, reason) -> models
    for s in range(a.seed, a.seed + a.models):
        script = [False, False, "script", "trace"][s % 4]
        generator = generator_of(s) if a.generator == "mixed" else a.generator
        try:
            rep, desc, tags, skips = check_case(s, engine=a.engine, script=script, generator=generator)
        except NotModelled as e:  # a kernel this CPU runs that qgolden refuses by name (a CPU fact)
            print(f"REFUSED seed={s} {generator}: {str(e).splitlines()[0]}")
            refused += 1
            models += 1
            continue
        except Exception as e:  # a crash is a failure too, reported with its seed
            print(f"ERROR seed={s} {generator}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            bad += 1
            models += 1
            continue
        models += 1
        # compared elements: every quantized intermediate and every output (float outputs of dynamic models)
        el = sum(l.elements for l in rep.layers) + sum(o["elements"] for o in rep.outputs)
        mm = sum(l.mismatches for l in rep.layers) + sum(o["mismatches"] for o in rep.outputs)
        elements += el
        mismatches += mm
        for t in tags | {generator + "_generator"}:
            family.setdefault(t, [0, 0])
            family[t][0] += 1
            family[t][1] += el
        for op in {l.op for l in rep.layers}:
            ops.setdefault(op, [0, 0])[0] += 1
        for l in rep.layers:
            ops[l.op][1] += l.elements
        for key in skips.items():
            skipped[key] = skipped.get(key, 0) + 1
        if mm:
            bad += 1
            first = rep.first_mismatch
            print(f"MISMATCH {desc}: {mm} elements, first at {first.name if first else 'output'}"
                  f"{' (' + first.op + ')' if first else ''}")
        elif a.verbose:
            print(f"ok {desc}")
    print(coverage_table(family, ops, skipped, FAMILIES if a.generator != "classic" else ()))
    print(f"models {models}  elements {elements}  mismatches {mismatches}  failing models {bad}  "
          f"refused by a CPU fact {refused}  ({time.time() - t0:.0f} s)")
    return 1 if bad else 0


def coverage_table(family: dict, ops: dict, skipped: dict, expected=()) -> str:
    """Per op family (generator tags) and per program op: models and elements exercised; every
    expected family that no model exercised is named, and every skip with its reason."""
    lines = ["coverage by op family (models, elements of those models):"]
    for name in list(expected) + sorted(set(family) - set(expected)):
        n, el = family.get(name, (0, 0))
        lines.append(f"  {name:24s} {n:6d} {el:12d}" + ("   NOT EXERCISED" if n == 0 else ""))
    lines.append("coverage by program op (models, elements compared at the op):")
    for name in sorted(ops):
        lines.append(f"  {name:24s} {ops[name][0]:6d} {ops[name][1]:12d}")
    for (name, reason), n in sorted(skipped.items()):
        lines.append(f"skipped {name} in {n} models: {reason}")
    if expected:
        from .fuzz_spec import NOT_BUILT

        lines.append("not built by design:")
        lines += [f"  {name}: {why}" for name, why in NOT_BUILT]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
