"""`qgolden conformance record`: run PyTorch on this machine over a generated suite, write a record.

The suite (seeded, `cases_per_op` per op family and engine):
  ops/       one eager-mode model per case, QuantStub -> op -> DeQuantStub, quantized for one engine
             (x86, fbgemm, qnnpack, onednn: those this torch has) with its default qconfig (per-channel
             weights on x86/fbgemm/onednn), calibrated on random data, scripted to TorchScript and run
             with that engine. Sizes favour odd lengths around vector widths (1, 31, 33, 63, 65, 127 ...);
             a quarter of the inputs are exact .5 ties of the input quantization and some lie beyond the
             calibration range (clamps); some unary ops are fed by a 1x1 conv (channels-last output on
             x86/fbgemm); half of the binary-op cases put both inputs on one scale and the output on the
             scale that makes requantization hit exact ties.
  inductor/  small X86InductorQuantizer CNNs (conv/bn/relu stem, residual, depthwise + relu6/hardswish,
             max pool, global mean, linear head), converted with convert_pt2e, saved with
             torch.export.save and run by torch.compile (freezing on), by the eager Q/DQ graph and by
             torchao's reference representation.
Configurations PyTorch itself refuses are listed in `pytorch_errors` (nothing to match there).
"""
from __future__ import annotations

import ast
import os
import platform
import random
from pathlib import Path

import numpy as np

from .records import ENV_VARS, OPS_ENGINES, PT2E_FAMILY, write_manifest

# lengths around the 8/16/32/64-lane vector tails of the kernels
ODD = (1, 3, 7, 15, 17, 31, 33, 63, 65, 127)
CHANNELS = (1, 3, 4, 8, 15, 16, 17, 31, 32, 33, 64)


def _mean_module():
    import torch

    class Mean(torch.nn.Module):
        """torch.mean over `dims` (quantized mean: one kernel per dims pattern)."""

        def __init__(self, dims: list, keepdim: bool):
            super().__init__()
            self.dims = dims
            self.keepdim = keepdim

        def forward(self, x):
            return torch.mean(x, self.dims, self.keepdim)

    return Mean


class SingleOp:
    """What one case builds: the float op module(s), the input shapes and the recorded params."""

    def __init__(self, op, shapes, params, binary=None, conv_fed=False, weight_per_tensor=False, ties=None):
        self.op = op
        self.shapes = shapes
        self.params = params
        self.binary = binary  # FloatFunctional method name for two-input (or scalar) ops
        self.conv_fed = conv_fed
        self.weight_per_tensor = weight_per_tensor
        self.ties = ties  # binary ops: output scale over the shared input scale ('sum' or 'product')


def _conv_spec(rng, family):
    nd = {"conv1d": 1, "conv1d_dw": 1, "conv2d": 2, "conv2d_dw": 2, "conv3d": 3}[family]
    dw = family.endswith("_dw")
    k = rng.choice([1, 3, 5]) if not dw else rng.choice([3, 5])
    s, d = rng.choice([1, 1, 2]), rng.choice([1, 1, 2])
    p = rng.choice([0, k // 2])
    c = rng.choice(CHANNELS if nd < 3 else (1, 3, 8, 16))
    if dw:
        g, o = c, c * rng.choice([1, 2])
        kind = "dw"
    else:
        g = rng.choice([g for g in (1, 1, 2, 4) if c % g == 0])
        o = g * rng.choice((1, 3, 8, 16, 17, 33) if nd < 3 else (1, 4, 8))
        kind = "std" if g == 1 else "grouped"
    size = rng.choice((5, 7, 9, 16, 17) if nd < 3 else (4, 5, 7))
    while size + 2 * p - d * (k - 1) < 1:
        size += 2
    relu = rng.random() < 0.5
    params = {"nd": nd, "kind": kind, "c": c, "o": o, "k": k, "s": s, "p": p, "d": d, "g": g, "relu": relu}
    return SingleOp(("conv", nd, c, o, k, s, p, d, g, relu), [[rng.choice([1, 2]), c] + [size] * nd], params)


def _binary_shape(rng):
    if rng.random() < 0.5:
        return [rng.choice([1, 2]), rng.choice(ODD + (1891, 4452))]
    return [rng.choice([1, 2]), rng.choice(CHANNELS), rng.choice((1, 5, 7, 8)), rng.choice(ODD[:7])]


def spec_for(family: str, rng: random.Random) -> SingleOp:
    """A random configuration of one op family (the params recorded in the manifest)."""
    img = [rng.choice([1, 2]), rng.choice(CHANNELS), rng.choice((5, 7, 8, 13)), rng.choice((5, 7, 9, 16))]
    conv_fed = rng.random() < 0.4
    cf = {"conv_fed": True} if conv_fed else {}
    if family == "linear":
        i, o = rng.choice(ODD + (8, 64, 128)), rng.choice(ODD + (8, 64, 257))
        lead, relu = rng.choice([[1], [5], [8], [2, 3]]), rng.random() < 0.4
        return SingleOp(("linear", i, o, relu), [lead + [i]], {"i": i, "o": o, "relu": relu, "lead": lead})
    if family == "dynamic_linear":
        i, o = rng.choice(ODD + (16,)), rng.choice(ODD + (64,))
        return SingleOp(("dynamic_linear", i, o), [[rng.choice([1, 4]), i]], {"i": i, "o": o})
    if family in ("conv1d", "conv1d_dw", "conv2d", "conv2d_dw", "conv3d"):
        return _conv_spec(rng, family)
    if family == "conv_transpose2d":
        c, o, k, s = rng.choice((1, 4, 8)), rng.choice((1, 4, 8)), rng.choice((2, 3)), rng.choice((1, 2))
        p = rng.choice([0, k // 2])
        return SingleOp(("conv_transpose2d", c, o, k, s, p), [[1, c, rng.choice((4, 5, 7)), rng.choice((4, 6))]],
                        {"c": c, "o": o, "k": k, "s": s, "p": p}, weight_per_tensor=True)
    if family in ("add", "add_relu", "mul", "cat"):
        shape = _binary_shape(rng)
        ties = rng.random() < 0.5
        params = {"shape": shape}
        if ties:
            params["ties"] = True
        return SingleOp(family, [shape, shape], params, binary=family,
                        ties=("product" if family == "mul" else "sum") if ties else None)
    if family == "matmul":
        m, k, n = rng.choice(ODD[:7]), rng.choice(ODD + (227,)), rng.choice(ODD[:7] + (22,))
        return SingleOp("matmul", [[m, k], [k, n]], {"m": m, "k": k, "n": n}, binary="matmul")
    if family in ("add_scalar", "mul_scalar"):
        scalar = rng.choice((-1.25, -0.003, 0.1, 0.5, 3.0))
        return SingleOp(family, [_binary_shape(rng)], {"scalar": scalar}, binary=family)
    if family == "max_pool2d":
        k = rng.choice((2, 3))
        p = {"k": k, "s": rng.choice((1, 2)), "p": rng.choice((0, k // 2)), "ceil": rng.random() < 0.3, **cf}
        return SingleOp(("max_pool2d", p["k"], p["s"], p["p"], p["ceil"]), [img], p, conv_fed=conv_fed)
    if family == "avg_pool2d":
        k = rng.choice((2, 3, 5))
        p = {"k": k, "s": rng.choice((1, 2, k)), "p": rng.choice((0, k // 2)), "ceil": rng.random() < 0.3,
             "cip": rng.random() < 0.5, "div": rng.choice((None, None, 7)), **cf}
        return SingleOp(("avg_pool2d", k, p["s"], p["p"], p["ceil"], p["cip"], p["div"]), [img], p,
                        conv_fed=conv_fed)
    if family == "adaptive_avg_pool2d":
        out = rng.choice(("1", "(1, 1)", "3", "7", "(2, 5)"))
        return SingleOp(("adaptive_avg_pool2d", out), [img], {"out": out, **cf}, conv_fed=conv_fed)
    if family == "mean":
        dims = rng.choice(([2, 3], [3], [1], [1, 2, 3]))
        return SingleOp(("mean", tuple(dims)), [img], {"dims": dims, **cf}, conv_fed=conv_fed)
    if family in ("upsample_nearest", "upsample_bilinear"):
        p = {"sf": rng.choice((2, 3)), **cf}
        if family == "upsample_bilinear":
            p["ac"] = rng.random() < 0.5
        return SingleOp((family, p["sf"], p.get("ac")), [img], p, conv_fed=conv_fed)
    if family in ("batch_norm2d", "instance_norm2d"):
        return SingleOp((family, img[1]), [img], {"c": img[1], **cf}, conv_fed=conv_fed)
    if family == "group_norm":
        g = rng.choice([g for g in (1, 2, 4) if img[1] % g == 0])
        return SingleOp(("group_norm", g, img[1]), [img], {"g": g, "c": img[1], **cf}, conv_fed=conv_fed)
    if family == "layer_norm":
        return SingleOp(("layer_norm", img[-1]), [img], {"normalized": img[-1:]})
    if family in UNARY:  # eager PReLU observes its 1-D weight: a per-channel observer cannot
        return SingleOp((family, img[1]), [img], dict(cf), conv_fed=conv_fed, weight_per_tensor=family == "prelu")
    raise ValueError(f"unknown op family {family!r}")


UNARY = ("relu", "relu6", "hardtanh", "hardswish", "tanh", "elu", "sigmoid", "hardsigmoid", "leaky_relu",
         "prelu", "gelu")
FAMILIES = ("linear", "dynamic_linear", "conv1d", "conv1d_dw", "conv2d", "conv2d_dw", "conv3d", "conv_transpose2d",
            "add", "add_relu", "mul", "cat", "matmul", "add_scalar", "mul_scalar", "max_pool2d", "avg_pool2d",
            "adaptive_avg_pool2d", "mean", "upsample_nearest", "upsample_bilinear", "batch_norm2d",
            "instance_norm2d", "group_norm", "layer_norm") + UNARY


def _op_module(op):
    """The float module of a single-op spec (eager quantization swaps it for its quantized module)."""
    import torch
    from torch import nn

    name = op[0] if isinstance(op, tuple) else op
    if name == "linear":
        _, i, o, relu = op
        return nn.Sequential(nn.Linear(i, o), *([nn.ReLU()] if relu else [])), [["0", "1"]] if relu else []
    if name == "dynamic_linear":
        return nn.Linear(op[1], op[2]), []
    if name == "conv":
        _, nd, c, o, k, s, p, d, g, relu = op
        conv = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[nd - 1](c, o, k, stride=s, padding=p, dilation=d, groups=g)
        return nn.Sequential(conv, *([nn.ReLU()] if relu else [])), [["0", "1"]] if relu else []
    if name == "conv_transpose2d":
        _, c, o, k, s, p = op
        return nn.ConvTranspose2d(c, o, k, stride=s, padding=p), []
    if name == "max_pool2d":
        return nn.MaxPool2d(op[1], op[2], op[3], ceil_mode=op[4]), []
    if name == "avg_pool2d":
        _, k, s, p, ceil, cip, div = op
        return nn.AvgPool2d(k, s, p, ceil_mode=ceil, count_include_pad=cip, divisor_override=div), []
    if name == "adaptive_avg_pool2d":
        return nn.AdaptiveAvgPool2d(ast.literal_eval(op[1])), []  # '3' or '(2, 5)': the recorded text
    if name == "mean":
        return _mean_module()(list(op[1]), True), []
    if name == "upsample_nearest":
        return nn.Upsample(scale_factor=op[1], mode="nearest"), []
    if name == "upsample_bilinear":
        return nn.Upsample(scale_factor=op[1], mode="bilinear", align_corners=op[2]), []
    if name == "batch_norm2d":
        bn = nn.BatchNorm2d(op[1])
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        return bn, []
    if name == "instance_norm2d":
        return nn.InstanceNorm2d(op[1], affine=True), []
    if name == "group_norm":
        return nn.GroupNorm(op[1], op[2]), []
    if name == "layer_norm":
        return nn.LayerNorm(op[1]), []
    acts = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hardswish": nn.Hardswish, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
            "hardsigmoid": nn.Hardsigmoid, "gelu": nn.GELU, "hardtanh": lambda: nn.Hardtanh(-0.5, 1.5),
            "elu": lambda: nn.ELU(0.7), "leaky_relu": lambda: nn.LeakyReLU(0.1)}
    if name == "prelu":
        m = nn.PReLU(op[1])
        with torch.no_grad():
            m.weight.uniform_(-0.5, 0.5)
        return m, []
    return acts[name](), []


def build_model(spec: SingleOp):
    """The float eager model QuantStub(s) -> [1x1 conv] -> op -> DeQuantStub, and its fusion list."""
    import torch
    from torch import nn
    from torch.ao.quantization import DeQuantStub, QuantStub

    body, fuse = (None, []) if spec.binary else _op_module(spec.op)
    two = len(spec.shapes) == 2

    class SingleOpModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.quant0 = QuantStub()
            self.quant1 = QuantStub() if two else nn.Identity()
            self.pre = nn.Conv2d(spec.shapes[0][1], spec.shapes[0][1], 1) if spec.conv_fed else nn.Identity()
            self.body = body if body is not None else nn.Identity()
            self.ff = torch.ao.nn.quantized.FloatFunctional()
            self.dequant = DeQuantStub()
            self.binary = spec.binary or ""
            self.scalar = float(spec.params.get("scalar", 0.0))

    if two:
        class M(SingleOpModel):
            def forward(self, a, b):
                a = self.quant0(a)
                b = self.quant1(b)
                if self.binary == "add":
                    y = self.ff.add(a, b)
                elif self.binary == "add_relu":
                    y = self.ff.add_relu(a, b)
                elif self.binary == "mul":
                    y = self.ff.mul(a, b)
                elif self.binary == "cat":
                    y = self.ff.cat([a, b], 1)
                else:
                    y = self.ff.matmul(a, b)
                return self.dequant(y)
    elif spec.binary:
        class M(SingleOpModel):
            def forward(self, x):
                x = self.quant0(x)
                if self.binary == "add_scalar":
                    x = self.ff.add_scalar(x, self.scalar)
                else:
                    x = self.ff.mul_scalar(x, self.scalar)
                return self.dequant(x)
    else:
        class M(SingleOpModel):
            def forward(self, x):
                return self.dequant(self.body(self.pre(self.quant0(x))))

    m = M().eval()
    return m, [["body." + a for a in f] for f in fuse]


def _qconfig(engine: str, spec: SingleOp):
    import torch
    from torch.ao.quantization import QConfig, get_default_qconfig
    from torch.ao.quantization.observer import default_weight_observer

    qc = get_default_qconfig(engine)
    if spec.weight_per_tensor:  # eager ConvTranspose and PReLU take no per-channel observer
        qc = QConfig(activation=qc.activation, weight=default_weight_observer)
    return qc


def _scalar_qparams(model) -> None:
    """Quantized BatchNorm's from_float can keep its output scale / zero point as 1-element tensor
    buffers, which TorchScript cannot pass to quantized::batch_norm2d (a double / int): store numbers."""
    import torch

    for m in model.modules():
        if isinstance(m, torch.ao.nn.quantized.BatchNorm2d) and isinstance(m.scale, torch.Tensor):
            scale, zero_point = float(m.scale), int(m.zero_point)
            del m.scale, m.zero_point  # buffers here; plain attributes in the scripted module
            m.scale, m.zero_point = scale, zero_point


def _set_tie_qparams(model, spec: SingleOp):
    """Both inputs on quant0's scale and zero point; the output on the scale where requantization
    of integer sums (or products) lands on halves: 2*s for add/cat, 2*s*s for mul."""
    import torch

    s = float(model.quant0.scale)
    zp = int(model.quant0.zero_point)
    model.quant1.scale = torch.tensor([s])
    model.quant1.zero_point = torch.tensor([zp])
    model.ff.scale = 2 * s * s if spec.ties == "product" else 2 * s
    model.ff.zero_point = zp


def _inputs(rng: np.random.Generator, shapes, amp: float, qparams) -> list:
    """Float32 inputs: normal values; a quarter exact .5 ties (k + 0.5) * scale of the input
    quantization; a few beyond the calibration range (clamps)."""
    xs = []
    for shape, qp in zip(shapes, qparams):
        x = (rng.standard_normal(shape) * amp).astype(np.float32)
        flat = x.reshape(-1)
        if qp is not None:
            scale, zp, qmin, qmax = qp
            ties = rng.random(flat.size) < 0.25
            k = rng.integers(qmin - zp, qmax - zp, size=flat.size)
            flat[ties] = ((k[ties] + 0.5) * scale).astype(np.float32)
        far = rng.random(flat.size) < 0.03
        flat[far] *= np.float32(4.0)
        xs.append(flat.reshape(shape))
    return xs


def _modules_of(model) -> list:
    return sorted({f"{type(m).__module__.split('.')[-1]}.{type(m).__name__}" for m in model.modules()
                   if m is not model and type(m).__name__ not in ("ModuleList", "Sequential")})


def record_op_case(folder: Path, name: str, family: str, engine: str, rng: random.Random) -> dict:
    """Build, quantize, script and run one single-op case; write NAME.ts.pt and NAME.npz."""
    import torch
    from torch.ao.quantization import convert, fuse_modules, prepare, quantize_dynamic

    from ..torch_side import engine as engine_ctx

    spec = spec_for(family, rng)
    nprng = np.random.default_rng(rng.getrandbits(32))
    torch.manual_seed(rng.getrandbits(31))
    amp = rng.choice((0.5, 1.0, 3.0))
    with engine_ctx(engine), torch.no_grad():
        if family == "dynamic_linear":
            # quantize_dynamic swaps children only: the Linear sits in a Sequential
            model = quantize_dynamic(torch.nn.Sequential(_op_module(spec.op)[0]), {torch.nn.Linear},
                                     dtype=torch.qint8)
            qparams = [None]
        else:
            model, fuse = build_model(spec)
            if fuse:
                fuse_modules(model, fuse, inplace=True)
            model.qconfig = _qconfig(engine, spec)
            prepare(model, inplace=True)
            for _ in range(3):
                model(*[torch.from_numpy((nprng.standard_normal(s) * amp).astype(np.float32)) for s in spec.shapes])
            convert(model, inplace=True)
            _scalar_qparams(model)
            if spec.ties:
                _set_tie_qparams(model, spec)
            stubs = [model.quant0] + ([model.quant1] if len(spec.shapes) == 2 else [])
            qparams = [(float(q.scale), int(q.zero_point), 0, 255) if q.dtype == torch.quint8 else
                       (float(q.scale), int(q.zero_point), -128, 127) for q in stubs]
        xs = _inputs(nprng, spec.shapes, amp, qparams)
        scripted = torch.jit.script(model)
        for _ in range(3):  # oneDNN int8 primitives can differ on their first calls: keep the steady state
            y = scripted(*[torch.from_numpy(x) for x in xs])
    torch.jit.save(scripted, str(folder / f"{name}.ts.pt"))
    arrays = {f"x{i}": x for i, x in enumerate(xs)}
    arrays["y"] = y.detach().numpy().astype(np.float32)
    np.savez(folder / f"{name}.npz", **arrays)
    return {"name": name, "engine": engine, "op": family, "inputs": len(xs), "params": spec.params,
            "modules": _modules_of(model)}


def _inductor_model(rng: random.Random):
    import torch
    from torch import nn

    c = rng.choice((8, 16, 24, 32))
    blocks = [rng.choice(("res", "dw", "pool")) for _ in range(rng.randint(1, 3))]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU())
            self.kinds = blocks
            self.blocks = nn.ModuleList()
            for b in blocks:
                if b == "res":
                    self.blocks.append(nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, c, 1)))
                elif b == "dw":
                    self.blocks.append(nn.Sequential(nn.Conv2d(c, c, 3, padding=1, groups=c), nn.ReLU6(),
                                                     nn.Conv2d(c, c, 1), nn.Hardswish()))
                else:
                    self.blocks.append(nn.MaxPool2d(2))
            self.head = nn.Linear(c, 10)

        def forward(self, x):
            x = self.stem(x)
            for kind, b in zip(self.kinds, self.blocks):
                x = torch.relu(x + b(x)) if kind == "res" else b(x)
            return self.head(x.mean((2, 3)))

    net = Net().eval()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return net, c, blocks


def record_inductor_case(folder: Path, name: str, rng: random.Random) -> dict:
    """One X86InductorQuantizer model: NAME.pt2 and NAME.npz (x; y compiled; qdq eager; ref torchao reference)."""
    import torch
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from ..importers.pt2e import register_ops
    from ..verifiers.pt2e import run_inductor, run_reference

    register_ops()
    torch.manual_seed(rng.getrandbits(31))
    net, c, blocks = _inductor_model(rng)
    hw, batch = rng.choice((8, 16, 17, 24)), rng.choice((1, 2))
    shape = (batch, 3, hw, hw)
    q = xiq.X86InductorQuantizer().set_global(xiq.get_default_x86_inductor_quantization_config())
    with torch.no_grad():
        gm = torch.export.export(net, (torch.randn(*shape),)).module()
        p = prepare_pt2e(gm, q)
        for _ in range(3):
            p(torch.randn(*shape))
        converted = convert_pt2e(p)
        x = torch.randn(*shape) * 1.5
        qdq = converted(x)
        ref, _ = run_reference(converted, [x])
        y = run_inductor(converted, [x])
        ep = torch.export.export(converted, (x,))
    torch.export.save(ep, str(folder / f"{name}.pt2"))
    as_np = lambda t: (t[0] if isinstance(t, (tuple, list)) else t).detach().numpy().astype(np.float32)  # noqa: E731
    np.savez(folder / f"{name}.npz", x=x.numpy(), y=as_np(y), qdq=as_np(qdq), ref=as_np(ref))
    return {"name": name, "c": c, "blocks": blocks, "hw": hw, "batch": batch,
            "runtimes": ["x86-inductor", "pt2e-reference"]}


def host_manifest(seed: int) -> dict:
    """The CPU and software this record is made on."""
    import torch

    from ..cpu import cpu_flags, detect

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.split(":")[0].strip() in ("model name", "CPU part", "Model"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": model, "machine": platform.machine(), "flags": sorted(cpu_flags()),
            "capability": torch.backends.cpu.get_cpu_capability(),
            "env": {k: os.environ[k] for k in ENV_VARS if k in os.environ},
            "torch": torch.__version__, "num_threads": torch.get_num_threads(), "seed": seed,
            "qgolden_isa": detect()}


def plan_suite(seed: int, cases_per_op: int, ops=None, engines=None, inductor: bool = True) -> list:
    """[(kind, name, family, engine)] for this host: each op family x each engine this torch has."""
    import torch

    if cases_per_op < 1:
        raise ValueError("--cases-per-op must be at least 1")
    unknown = sorted(set(ops or ()) - set(FAMILIES) - {PT2E_FAMILY})
    if unknown:
        raise ValueError(f"unknown op family {', '.join(unknown)}; choose from {', '.join(FAMILIES)}, {PT2E_FAMILY}")
    have = [e for e in OPS_ENGINES if e in torch.backends.quantized.supported_engines]
    bad = sorted(set(engines or ()) - set(have))
    if bad:
        raise ValueError(f"engine {', '.join(bad)} is not a quantized engine of this torch ({', '.join(have)})")
    families = [f for f in (ops or FAMILIES) if f != PT2E_FAMILY]
    plan = [("ops", f"{e}_{f}_{seed}_{i}", f, e) for e in (engines or have) for f in families
            for i in range(cases_per_op)]
    if inductor and (not ops or PT2E_FAMILY in ops) and _inductor_available():
        plan += [("inductor", f"inductor_{seed}_{i}", PT2E_FAMILY, "x86-inductor") for i in range(cases_per_op)]
    return plan


def _inductor_available() -> bool:
    """torch.compile's CPU backend with X86InductorQuantizer needs an x86 host and torchao."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    os.environ.setdefault("TORCHAO_FORCE_SKIP_LOADING_SO_FILES", "1")  # its CUDA kernels: not needed, noisy
    try:
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer  # noqa: F401
    except Exception:
        return False
    return True


def write_record(out, plan: list, seed: int, on_case=None) -> dict:
    """Run the plan, write OUT/ops and OUT/inductor. Returns counts and the CPU class."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out}: exists and is not empty; record into a new folder")
    base = host_manifest(seed)
    cases, inductor_cases, errors = [], [], []
    for kind, name, family, engine in plan:
        folder = out / kind / "cases"
        folder.mkdir(parents=True, exist_ok=True)
        rng = random.Random(f"{seed}/{name}")
        try:
            if kind == "ops":
                cases.append(record_op_case(folder, name, family, engine, rng))
            else:
                inductor_cases.append(record_inductor_case(folder, name, rng))
        except Exception as e:  # PyTorch refused this configuration: nothing to match
            msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
            errors.append({"name": name, "engine": engine, "op": family, "error": f"{type(e).__name__}: {msg}"})
            for leftover in folder.glob(f"{name}.*"):
                leftover.unlink()
        if on_case is not None:
            on_case(name)
    if any(k == "ops" for k, *_ in plan):
        write_manifest(out / "ops", dict(base, cases=cases,
                                         pytorch_errors=[e for e in errors if e["op"] != PT2E_FAMILY]))
    if any(k == "inductor" for k, *_ in plan):
        write_manifest(out / "inductor", dict(base, cases=inductor_cases,
                                              pytorch_errors=[e for e in errors if e["op"] == PT2E_FAMILY]))
    return {"cases": len(cases), "inductor": len(inductor_cases), "pytorch_errors": len(errors),
            "isa": base["qgolden_isa"]}
