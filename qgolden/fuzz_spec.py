"""The extended random-model generator of the campaign (`make fuzz`): every op family qgolden supports.

A spec is a list of blocks (dicts) with the tensor shape tracked so that every block is valid; one
generic module runs it, in eager form (QuantStub/DeQuantStub, FloatFunctional, nnq module swaps) or
FX form (`prepare_fx`/`convert_fx` of plain torch calls). Each block carries the op families it
exercises (`tags`), which the campaign counts so that no family is skipped silently.

Where PyTorch itself leaves an op in float in one form, the generator does not build it there:
FX quantizes neither GELU nor GroupNorm (its native backend config has no pattern for them: they
run in float32 between a dequantize and a quantize), so they are eager-only; quantized matmul is
built only where the host's CPU class models its float GEMM order (qgolden refuses it elsewhere),
and counted as skipped with that reason otherwise.
"""
from __future__ import annotations

import random

# the op families the campaign reports, in print order
FAMILIES = (
    "linear", "conv1d", "conv2d", "conv3d", "depthwise", "conv_transpose1d", "conv_transpose2d",
    "conv_transpose3d", "batch_norm", "relu", "relu6", "hardtanh", "clamp", "hardswish", "hardsigmoid",
    "leaky_relu", "elu", "sigmoid", "tanh", "gelu", "prelu", "layer_norm", "group_norm", "instance_norm",
    "upsample_nearest", "upsample_bilinear", "channel_shuffle", "pixel_shuffle", "pixel_unshuffle",
    "chunk_cat", "split_cat", "cat", "softmax", "mean", "max_pool", "avg_pool", "adaptive_avg_pool",
    "add_same", "add_mismatched", "mul_same", "mul_mismatched", "add_relu", "add_scalar", "mul_scalar",
    "matmul", "dynamic_linear", "inplace_activation", "inplace_alias", "channels_last", "per_channel",
    "full_range", "odd_channels", "input_ties",
)
# where the generator does not build a family, and why (printed under the coverage counts)
NOT_BUILT = (
    ("gelu, group_norm", "eager form only: FX's native backend config has no pattern for them, so "
                         "PyTorch runs them in float32 between a dequantize and a quantize"),
    ("softmax (eager)", "swapped for nnq.Softmax through a custom mapping: eager mode has no default one"),
    ("upsample_*", "2-D only: PyTorch has no quantized 1-D upsampling; FX form through F.interpolate "
                   "(FX leaves an nn.Upsample module in float)"),
    ("channel_shuffle, pixel_(un)shuffle", "4-D only, as PyTorch's quantized kernels"),
    ("conv3d, conv_transpose3d", "not on qnnpack (no 3-D kernels there)"),
    ("adaptive_avg_pool", "1-D and 2-D: qgolden has no 3-D adaptive pool, so 3-D models end in a mean"),
    ("mean", "inputs below 32768 elements: a larger float sum on several threads is refused"),
)
ODD_WIDTHS = (15, 16, 17, 31, 32, 33, 63, 64, 65)
INPLACE_ACTS = ("relu", "relu6", "hardtanh", "hardswish", "leaky_relu", "elu", "hardsigmoid")
# eager mode swaps these activations for nnq modules, which never run in place
ALIASABLE_ACTS = ("relu", "relu6", "hardtanh")


def acts(eager: bool) -> list:
    """Activations a block may take; GELU only in eager form (FX leaves it in float)."""
    out = ["relu", "relu6", "hardtanh", "clamp", "hardswish", "hardsigmoid", "leaky_relu", "elu", "sigmoid", "tanh"]
    if eager:
        out.append("gelu")
    return out


def act_block(rng: random.Random, eager: bool, engine: str) -> dict:
    a = rng.choice(acts(eager))
    b = {"t": "act", "a": a, "tags": [a]}
    if a == "gelu":
        b["approximate"] = rng.choice(["none", "tanh"])
    if a == "clamp":
        lo, hi = rng.choice([(-0.5, 1.0), (0.0, 0.75), (-1.25, 0.25), (None, 0.5), (-0.25, None)])
        if engine == "qnnpack" and (lo is None or hi is None):  # QNNPACK's clamp takes both bounds
            lo, hi = -0.5, 0.5
        b["lo"], b["hi"] = lo, hi
    if a in INPLACE_ACTS and rng.random() < 0.35:
        b["inplace"] = True
        b["tags"].append("inplace_activation")
        if a in ALIASABLE_ACTS and rng.random() < 0.6:
            # y = act_(x); x + y: the add reads x after the activation overwrote it
            b["alias"] = True
            b["tags"] += ["inplace_alias", "add_same"]
    return b


def pick_channels(rng: random.Random, lo: int = 1, hi: int = 12) -> int:
    """Small channel counts, and now and then one around a vector width (odd widths included)."""
    if rng.random() < 0.2:
        return rng.choice(ODD_WIDTHS)
    return rng.randint(lo, hi)


def spec(rng: random.Random, kind: str, eager: bool, engine: str, matmul_ok):
    """(blocks, input shape descriptor, skipped {family: reason}) for one extended model.

    kind: mlp, cnn1d, cnn2d, cnn3d; matmul_ok(m, k, n) -> None or the reason it is refused here."""
    skipped = {}
    blocks = []
    if kind == "mlp":
        f = pick_channels(rng, 1, 40)
        shape = f
        for _ in range(rng.randint(1, 5)):
            choice = rng.choice(["linear", "linear", "act", "add", "mul", "mismatched", "scalar", "cat", "split",
                                 "layer_norm", "softmax"])
            if choice == "linear":
                o = pick_channels(rng, 1, 48)
                blocks.append({"t": "linear", "i": shape, "o": o, "relu": rng.random() < 0.4,
                               "bias": rng.random() < 0.85, "tags": ["linear"]})
                shape = o
            elif choice == "act":
                blocks.append(act_block(rng, eager, engine))
            elif choice in ("add", "mul"):
                relu = choice == "add" and rng.random() < 0.3
                blocks.append({"t": "skip", "op": choice, "relu": relu, "c": shape, "nd": 0,
                               "tags": [choice + "_same"] + (["add_relu"] if relu else [])})
            elif choice == "mismatched":
                blocks.append(mismatched_block(rng, shape, 0))
            elif choice == "scalar":
                blocks.append(scalar_block(rng))
            elif choice == "cat":
                blocks.append({"t": "cat", "c": shape, "nd": 0, "tags": ["cat"]})
                shape *= 2
            elif choice == "split" and shape >= 2:
                blocks.append(split_block(rng, shape))
            elif choice == "layer_norm":
                blocks.append({"t": "layer_norm", "shape": [shape], "affine": rng.random() < 0.7,
                               "tags": ["layer_norm"]})
            elif choice == "softmax":
                blocks.append({"t": "softmax", "dim": rng.choice([1, -1]), "tags": ["softmax"]})
        blocks.append({"t": "linear", "i": shape, "o": rng.randint(1, 10), "relu": False, "bias": True,
                       "tags": ["linear"]})
        return blocks, ("f", f), skipped
    nd = {"cnn1d": 1, "cnn2d": 2, "cnn3d": 3}[kind]
    c = pick_channels(rng)
    size = rng.randint(*{1: (5, 20), 2: (4, 12), 3: (3, 6)}[nd])
    cap = {1: 48, 2: 16, 3: 8}[nd]  # spatial size cap: keeps each model at a fraction of a second
    inshape = ("c", c, size, nd)
    options = ["conv", "conv", "convT", "act", "act", "skip", "mismatched", "scalar", "cat", "split", "norm",
               "prelu", "shuffle", "softmax", "mean_c"]
    if nd <= 2:
        options += ["dw", "pool"]
    if nd == 2:
        options += ["up", "up", "bn", "matmul", "pixel"]
    for _ in range(rng.randint(2, 6)):
        choice = rng.choice(options)
        if choice in ("conv", "dw"):
            b, c, size = conv_block(rng, choice, c, size, nd, eager)
            blocks.append(b)
        elif choice == "convT" and not (engine == "qnnpack" and nd == 3):  # no 3-D transposed conv in QNNPACK
            b, c, size = conv_transpose_block(rng, c, size, nd, engine, cap)
            blocks.append(b)
        elif choice == "bn" and eager:  # FX leaves a lone conv -> bn unfused in float
            blocks.append({"t": "bn", "c": c, "tags": ["batch_norm"]})
        elif choice == "act":
            blocks.append(act_block(rng, eager, engine))
        elif choice == "skip":
            op = rng.choice(["add", "add", "mul"])
            relu = op == "add" and rng.random() < 0.4
            blocks.append({"t": "skip", "op": op, "relu": relu, "c": c, "nd": nd,
                           "tags": [op + "_same"] + (["add_relu"] if relu else [])})
        elif choice == "mismatched":
            blocks.append(mismatched_block(rng, c, nd))
        elif choice == "scalar":
            blocks.append(scalar_block(rng))
        elif choice == "cat":
            blocks.append({"t": "cat", "c": c, "nd": nd, "tags": ["cat"]})
            c = 2 * c
        elif choice == "split" and c >= 2:
            blocks.append(split_block(rng, c))
        elif choice == "norm":
            b = norm_block(rng, c, size, nd, eager)
            if b is not None:
                blocks.append(b)
        elif choice == "prelu":
            blocks.append({"t": "prelu", "n": rng.choice([1, c]), "tags": ["prelu"]})
        elif choice == "shuffle" and nd == 2:  # PyTorch's quantized channel_shuffle takes 4-D tensors only
            groups = [g for g in range(2, c + 1) if c % g == 0]
            if groups:
                blocks.append({"t": "channel_shuffle", "g": rng.choice(groups), "tags": ["channel_shuffle"]})
        elif choice == "pixel":
            if c % 4 == 0 and size * 2 <= cap and rng.random() < 0.5:
                blocks.append({"t": "pixel_shuffle", "r": 2, "tags": ["pixel_shuffle"]})
                c, size = c // 4, size * 2
            elif size % 2 == 0 and c * 4 <= 80:
                blocks.append({"t": "pixel_unshuffle", "r": 2, "tags": ["pixel_unshuffle"]})
                c, size = c * 4, size // 2
        elif choice == "softmax":
            blocks.append({"t": "softmax", "dim": rng.choice(list(range(1, nd + 2)) + [-1]), "tags": ["softmax"]})
        elif choice == "mean_c" and c > 1 and small_sum(c, size, nd):  # the mean over channels, kept as a dim of size 1
            blocks.append({"t": "mean", "dims": [1], "keepdim": True, "tags": ["mean"]})
            c = 1
        elif choice == "pool" and size >= 2:
            b, size = pool_block(rng, size, nd)
            blocks.append(b)
        elif choice == "up" and size <= cap // 2:
            b, size = upsample_block(rng, size)
            blocks.append(b)
        elif choice == "matmul":
            reason = matmul_ok(size, size, size)
            if reason is None:
                blocks.append({"t": "matmul", "tags": ["matmul"]})  # x @ x^T over the last two dims
            else:
                skipped["matmul"] = reason
    # the reduction to features: an adaptive average pool or a mean over random dims
    while nd == 3 and not small_sum(c, size, nd):  # a strided 1x1x1 conv makes the mean's input small
        o = min(c, 8)
        blocks.append({"t": "conv", "i": c, "o": o, "k": 1, "s": 2, "p": 0, "d": 1, "g": 1, "nd": nd, "bias": True,
                       "bn": False, "relu": False, "tags": ["conv3d"]})
        c, size = o, (size - 1) // 2 + 1
    if nd < 3 and (rng.random() < 0.5 or not small_sum(c, size, nd)):  # qgolden has no 3-D adaptive average pool: 3-D models end in a mean
        blocks.append({"t": "pool", "p": "adaptive", "o": 1, "nd": nd, "tags": ["adaptive_avg_pool"]})
        blocks.append({"t": "flatten", "tags": []})
        features = c
    else:
        dims = sorted(rng.sample(range(1, nd + 2), rng.randint(1, nd + 1)))
        # a full reduction keeps its dims (a flattened 1-D tensor has no features dim)
        # (PyTorch's own quantized mean fails on a channels-last 5-D input with keepdim=False)
        keepdim = rng.random() < 0.5 or len(dims) == nd + 1 or nd == 3
        if keepdim and rng.random() < 0.2:
            dims = [0] + dims  # the batch too: its size 1 kept
        blocks.append({"t": "mean", "dims": dims, "keepdim": keepdim, "tags": ["mean"]})
        blocks.append({"t": "flatten", "tags": []})
        kept = [c] + [size] * nd
        features = 1
        for d, n in enumerate(kept, start=1):
            if d not in dims:
                features *= n
    blocks.append({"t": "linear", "i": features, "o": rng.randint(1, 10), "relu": False, "bias": True,
                   "tags": ["linear"]})
    return blocks, inshape, skipped


def small_sum(c, size, nd, batch=3):
    """Whether a mean over this tensor stays below ATen's parallel-reduce grain (32768 elements),
    beyond which qgolden refuses the float sum on several threads (numerics/floatsum.py)."""
    return batch * c * size ** nd < 32768


def conv_block(rng, choice, c, size, nd, eager):
    k = rng.choice([1, 3, 5]) if choice == "conv" else rng.choice([3, 3, 5])
    if nd == 3:
        k = rng.choice([1, 2, 3])
    stride = rng.choice([1, 1, 2])
    pad = rng.choice([0, k // 2, k // 2])
    dil = rng.choice([1, 1, 1, 2])
    if size + 2 * pad - dil * (k - 1) < 1:
        pad, dil = k // 2, 1
    if size + 2 * pad - dil * (k - 1) < 1:
        k, pad, dil = 1, 0, 1
    if choice == "dw":
        groups = c
        o = c * rng.choice([1, 1, 2])
        if rng.random() < 0.5 and nd == 2:  # the FBGEMM depthwise fast path shape
            pad, dil = k // 2, 1
        tags = ["depthwise", f"conv{nd}d"]
    else:
        groups = rng.choice([1, 1, 1, 2, 3])
        if c % groups:
            groups = 1
        o = pick_channels(rng) * groups if rng.random() < 0.9 else rng.choice(ODD_WIDTHS)
        if o % groups:
            o = groups * max(1, o // groups)
        tags = [f"conv{nd}d"]
    b = {"t": "conv", "i": c, "o": o, "k": k, "s": stride, "p": pad, "d": dil, "g": groups, "nd": nd,
         "bias": rng.random() < 0.8, "bn": rng.random() < 0.3 and nd == 2, "relu": rng.random() < 0.5, "tags": tags}
    if b["bn"]:
        tags.append("batch_norm")
    if b["relu"]:
        tags.append("relu")
    return b, o, (size + 2 * pad - dil * (k - 1) - 1) // stride + 1


def conv_transpose_block(rng, c, size, nd, engine, cap):
    """A transposed conv: groups, stride, padding below the kernel, dilation, output_padding below
    max(stride, dilation) (not on oneDNN, whose kernel PyTorch gives none)."""
    groups = rng.choice([1, 1, 2, 3])
    if c % groups:
        groups = 1
    o = groups * rng.randint(1, 6)
    k = rng.choice([1, 2, 3, 4] if nd < 3 else [1, 2, 3])
    s = rng.choice([1, 2])
    d = rng.choice([1, 1, 2])
    p = rng.randint(0, k - 1)
    p = min(p, ((size - 1) * s + d * (k - 1)) // 2)
    op = rng.randint(0, max(s, d) - 1) if engine != "onednn" and rng.random() < 0.3 else 0
    out = (size - 1) * s - 2 * p + d * (k - 1) + op + 1
    if out > cap:
        s, op = 1, 0
        out = (size - 1) * s - 2 * p + d * (k - 1) + op + 1
    if out > cap or out < 1:
        k, s, d, p, op = 1, 1, 1, 0, 0
        out = size
    b = {"t": "convT", "i": c, "o": o, "k": k, "s": s, "p": p, "op": op, "d": d, "g": groups, "nd": nd,
         "bias": rng.random() < 0.7, "tags": [f"conv_transpose{nd}d"]}
    return b, o, out


def mismatched_block(rng, c, nd):
    """x op branch(x): the branch (a 1x1 conv or a linear) gives the second operand its own qparams."""
    op = rng.choice(["add", "add", "mul"])
    relu = op == "add" and rng.random() < 0.3
    return {"t": "mismatched", "op": op, "relu": relu, "c": c, "nd": nd,
            "tags": [op + "_mismatched", "linear" if nd == 0 else f"conv{nd}d"] + (["add_relu"] if relu else [])}


def scalar_block(rng):
    op = rng.choice(["add", "mul"])
    v = rng.choice([0.25, -0.5, 1.5, 0.1, -2.0, 0.75])
    return {"t": "scalar", "op": op, "v": v, "tags": [op + "_scalar"]}


def split_block(rng, c):
    """chunk or split along channels, the pieces concatenated in another order."""
    if rng.random() < 0.5:
        return {"t": "split", "how": "chunk", "n": 2, "tags": ["chunk_cat", "cat"]}
    first = rng.randint(1, c - 1)
    return {"t": "split", "how": "split", "sizes": [first, c - first], "tags": ["split_cat", "cat"]}


def norm_block(rng, c, size, nd, eager):
    """layer norm over the last dims (both forms); group and instance norm (eager: FX keeps GroupNorm in
    float; InstanceNorm in both)."""
    which = rng.choice(["layer_norm", "group_norm", "instance_norm"] if eager else ["layer_norm", "instance_norm"])
    if which == "layer_norm":
        last = rng.randint(1, nd + 1)
        shape = ([c] + [size] * nd)[-last:]
        return {"t": "layer_norm", "shape": shape, "affine": rng.random() < 0.7, "tags": ["layer_norm"]}
    if which == "group_norm":
        groups = rng.choice([g for g in range(1, c + 1) if c % g == 0])
        return {"t": "group_norm", "g": groups, "c": c, "tags": ["group_norm"]}
    return {"t": "instance_norm", "c": c, "nd": nd, "tags": ["instance_norm"]}


def pool_out(size, k, s, pad, ceil):
    """Output length of a max/avg pool (PyTorch's pooling_output_shape: a ceil-mode window must
    start inside the input or its left padding)."""
    num = size + 2 * pad - k
    out = (-(-num // s) if ceil else num // s) + 1
    if ceil and (out - 1) * s >= size + pad:
        out -= 1
    return out


def pool_block(rng, size, nd):
    p = rng.choice(["max", "avg", "adaptive"])
    if p == "adaptive":
        o = rng.randint(1, size)
        return {"t": "pool", "p": p, "o": o, "nd": nd, "tags": ["adaptive_avg_pool"]}, o
    k = rng.choice([2, 3]) if size >= 3 else 2
    s = rng.choice([1, 2])
    pad = rng.choice([0, 0, 1]) if k > 2 else 0
    ceil = rng.random() < 0.3
    cip = rng.random() < 0.7
    b = {"t": "pool", "p": p, "k": k, "s": s, "pad": pad, "ceil": ceil, "cip": cip, "nd": nd,
         "tags": [p + "_pool"]}
    return b, pool_out(size, k, s, pad, ceil)


def upsample_block(rng, size):
    mode = rng.choice(["nearest", "bilinear"])
    b = {"t": "up", "mode": mode, "tags": ["upsample_" + mode]}
    if rng.random() < 0.5:
        b["f"] = 2.0  # a float: TorchScript's interpolate signature takes no int scale factor
        out = size * 2
    else:
        out = rng.randint(size, 2 * size)
        b["size"] = out
    if mode == "bilinear":
        b["align_corners"] = rng.random() < 0.4
    return b, out


def dynamic_spec(rng: random.Random):
    """A quantize_dynamic MLP: Linear (+ReLU, fused or not), odd widths, 2-D or 3-D inputs."""
    f = pick_channels(rng, 1, 40)
    blocks, shape = [], f
    for _ in range(rng.randint(1, 4)):
        o = pick_channels(rng, 1, 48)
        blocks.append({"t": "linear", "i": shape, "o": o, "relu": rng.random() < 0.4, "bias": rng.random() < 0.8,
                       "tags": ["dynamic_linear"]})
        shape = o
    return blocks, f


def gemm_module(b):
    """The module of a 'linear' or 'conv' block (conv1d/2d/3d by b["nd"]), with its BatchNorm and
    ReLU when the block asks for them; both generators build these blocks with it."""
    import torch.nn as nn

    if b["t"] == "linear":
        m = nn.Sequential(nn.Linear(b["i"], b["o"], bias=b["bias"]))
    else:
        conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[b["nd"]]
        m = nn.Sequential(conv(b["i"], b["o"], b["k"], stride=b["s"], padding=b["p"], dilation=b["d"],
                               groups=b["g"], bias=b["bias"]))
        if b["bn"]:
            m.append(nn.BatchNorm2d(b["o"]))
    if b["relu"]:
        m.append(nn.ReLU())
    return m


def calibration_batch(rng: random.Random, inshape):
    """(input shape with a batch of 1 or 2, 8 calibration samples of it at a random scale), drawing
    from rng (then torch's generator) in this order: the campaigns' seeds depend on it."""
    import torch

    batch = rng.randint(1, 3)
    if inshape[0] == "f":
        shape = (batch, inshape[1])
    else:
        shape = (batch, inshape[1]) + (inshape[2],) * inshape[3]
    return shape, torch.randn(*((8,) + shape[1:])) * rng.choice([0.5, 1.0, 3.0])


def build(blocks, eager: bool, dynamic: bool = False):
    """The generic module that runs a spec (eager or FX form)."""
    import torch
    from torch import nn

    FF = torch.ao.nn.quantized.FloatFunctional

    def act_module(b):
        inplace = b.get("inplace", False)
        a = b["a"]
        if a == "relu":
            return nn.ReLU(inplace=inplace)
        if a == "relu6":
            return nn.ReLU6(inplace=inplace)
        if a == "hardtanh":
            return nn.Hardtanh(-0.5, 1.5, inplace=inplace)
        if a == "hardswish":
            return nn.Hardswish(inplace=inplace)
        if a == "hardsigmoid":
            return nn.Hardsigmoid(inplace=inplace)
        if a == "leaky_relu":
            return nn.LeakyReLU(0.1, inplace=inplace)
        if a == "elu":
            return nn.ELU(0.7, inplace=inplace)
        if a == "sigmoid":
            return nn.Sigmoid()
        if a == "tanh":
            return nn.Tanh()
        if a == "gelu":
            return nn.GELU(approximate=b["approximate"])
        return nn.Identity()  # clamp: a call in forward

    def conv_cls(nd, transposed=False):
        if transposed:
            return {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[nd]
        return {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[nd]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = blocks
            self.quant = torch.ao.quantization.QuantStub()
            self.dequant = torch.ao.quantization.DeQuantStub()
            self.layers = nn.ModuleList([self.make(b) for b in blocks])

        def make(self, b):
            t = b["t"]
            if t in ("linear", "conv"):
                return gemm_module(b)
            if t == "convT":
                return conv_cls(b["nd"], True)(b["i"], b["o"], b["k"], stride=b["s"], padding=b["p"],
                                               output_padding=b["op"], groups=b["g"], bias=b["bias"], dilation=b["d"])
            if t == "bn":
                return nn.BatchNorm2d(b["c"])
            if t == "act":
                m = act_module(b)
                if b.get("alias"):
                    return nn.ModuleDict({"act": m, "ff": FF()})
                return m
            if t in ("skip", "cat", "scalar", "split", "matmul"):
                # eager mode needs FloatFunctional; FX mode quantizes torch.add/mul/cat/matmul itself
                return FF() if eager else nn.Identity()
            if t == "mismatched":
                nd = b["nd"]
                branch = nn.Linear(b["c"], b["c"]) if nd == 0 else conv_cls(nd)(b["c"], b["c"], 1)
                return nn.ModuleDict({"branch": branch, "ff": FF() if eager else nn.Identity()})
            if t == "layer_norm":
                return nn.LayerNorm(b["shape"], elementwise_affine=b["affine"])
            if t == "group_norm":
                return nn.GroupNorm(b["g"], b["c"])
            if t == "instance_norm":
                return {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}[b["nd"]](b["c"], affine=True)
            if t == "prelu":
                return nn.PReLU(b["n"])
            if t == "channel_shuffle":
                return nn.ChannelShuffle(b["g"])
            if t == "pixel_shuffle":
                return nn.PixelShuffle(b["r"])
            if t == "pixel_unshuffle":
                return nn.PixelUnshuffle(b["r"])
            if t == "softmax":
                return nn.Softmax(dim=b["dim"])
            if t == "pool":
                nd = b["nd"]
                if b["p"] == "adaptive":
                    return {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}[nd](b["o"])
                if b["p"] == "max":
                    return (nn.MaxPool1d if nd == 1 else nn.MaxPool2d)(b["k"], b["s"], b["pad"], ceil_mode=b["ceil"])
                return (nn.AvgPool1d if nd == 1 else nn.AvgPool2d)(b["k"], b["s"], b["pad"], ceil_mode=b["ceil"],
                                                                   count_include_pad=b["cip"])
            if t == "up":
                kw = {"align_corners": b["align_corners"]} if b["mode"] == "bilinear" else {}
                if "f" in b:
                    return nn.Upsample(scale_factor=b["f"], mode=b["mode"], **kw)
                return nn.Upsample(size=b["size"], mode=b["mode"], **kw)
            if t in ("flatten", "mean"):
                return nn.Flatten() if t == "flatten" else nn.Identity()
            raise ValueError(t)

        def binary(self, m, op, relu, x, y):
            if eager:
                if op == "add":
                    return m.add_relu(x, y) if relu else m.add(x, y)
                return m.mul(x, y)
            out = torch.add(x, y) if op == "add" else torch.mul(x, y)
            return torch.nn.functional.relu(out) if relu else out

        def apply(self, b, m, x):
            t = b["t"]
            if t == "skip":
                return self.binary(m, b["op"], b["relu"], x, x)
            if t == "mismatched":
                return self.binary(m["ff"], b["op"], b["relu"], x, m["branch"](x))
            if t == "cat":
                return m.cat([x, x], dim=1) if eager else torch.cat([x, x], dim=1)
            if t == "split":
                if b["how"] == "chunk":
                    first, second = x.chunk(2, 1)
                else:
                    first, second = torch.split(x, b["sizes"], 1)
                return m.cat([second, first], dim=1) if eager else torch.cat([second, first], dim=1)
            if t == "scalar":
                if eager:
                    return m.add_scalar(x, b["v"]) if b["op"] == "add" else m.mul_scalar(x, b["v"])
                return torch.add(x, b["v"]) if b["op"] == "add" else torch.mul(x, b["v"])
            if t == "matmul":
                xt = x.transpose(-1, -2)
                return m.matmul(x, xt) if eager else torch.matmul(x, xt)
            if t == "mean":
                return torch.mean(x, b["dims"], keepdim=b["keepdim"])
            if t == "up" and not eager:
                # FX quantizes F.interpolate; it leaves an nn.Upsample module in float
                kw = {"align_corners": b["align_corners"]} if b["mode"] == "bilinear" else {}
                return torch.nn.functional.interpolate(x, size=b.get("size"), scale_factor=b.get("f"),
                                                       mode=b["mode"], **kw)
            if t == "act" and b["a"] == "clamp":
                return torch.clamp(x, b["lo"], b["hi"])
            if t == "act" and b.get("alias"):
                y = m["act"](x)  # in place: x now holds y too
                return self.binary(m["ff"], "add", False, x, y)
            return m(x)

        def forward(self, x):
            if not dynamic:
                x = self.quant(x)
            for b, m in zip(self.blocks, self.layers):
                x = self.apply(b, m, x)
            return x if dynamic else self.dequant(x)

    return Net().eval()
