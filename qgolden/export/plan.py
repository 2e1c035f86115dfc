"""From an integer-only program to a list of C kernel calls ("steps") with their parameters.

Every step names one kernel of kernels.c, its parameter values (plain Python ints and NumPy
integer arrays), the tensors it reads and the tensor it writes. Shapes are static: they come
from running the program once on an example input. Data movement that leaves memory unchanged
(reshape, flatten, squeeze, unsqueeze, identity) becomes an alias; an accumulator op is fused
with the requantize_int that reads it (no int32 buffer).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ALIAS_OPS = {"reshape", "flatten", "squeeze", "unsqueeze", "identity", "onnx_reshape", "onnx_flatten", "onnx_identity"}
ACC_OPS = ("linear_acc", "conv_acc", "onnx_gemm_acc", "onnx_conv_acc")
ROUNDING_CODES = {"half_up": 0, "half_even": 1, "half_away": 2, "tflite": 3}


class ExportError(Exception):
    """The program cannot be exported (op without a C kernel, unsupported form)."""


@dataclass
class Step:
    kind: str            # kernel: linear | conv | window | lut | lut2 | lut_channel | mul | clamp | cat | gather | copy
    name: str            # the program node it comes from
    op: str
    inputs: list         # tensor names read
    output: str          # tensor name written
    params: dict = field(default_factory=dict)


@dataclass
class ExportPlan:
    steps: list
    shapes: dict         # tensor -> shape (static)
    dtypes: dict         # tensor -> uint8 | int8
    alias: dict          # tensor -> storage root tensor
    int_inputs: list     # integer entry point's inputs (tensor names)
    int_outputs: list    # integer entry point's outputs
    float_inputs: list   # per int input: the quantize_thr node's params (dict) or None
    float_outputs: list  # per int output: the dequantize_lut table (int32 bit patterns) or None
    env: dict            # tensor -> value on one sample (per_sample) or the whole example
    program: object = None
    batch: int = 1       # samples in the example input (dim 0 of every input)
    per_sample: bool = False  # steps are for one sample; the entry point loops over any batch N
    golden_env: dict = None   # tensor -> value on the whole example input (golden vectors)

    def root(self, t):
        while t in self.alias:
            t = self.alias[t]
        return t

    def nbytes(self, t):
        return int(np.prod(self.shapes[t], dtype=np.int64))


def example_inputs(program):
    """Zeros shaped like the program's recorded input shapes (when no --input is given)."""
    xs = []
    for name in program.inputs:
        info = program.tensors[name]
        if info.shape is None:
            raise ExportError(f"input {name}: shape unknown; pass --input X.npy")
        dt = np.float32 if info.dtype == "float32" else np.dtype(info.dtype)
        xs.append(np.zeros(info.shape, dt))
    return xs


def _flat_outputs(outputs):
    res = []
    for o in outputs:
        res.extend(_flat_outputs(o) if isinstance(o, list) else [o])
    return res


def other_sample(x) -> np.ndarray:
    """A sample unlike x[:1] (its values reversed, then rolled), to test that samples stay apart."""
    v = np.asarray(x[:1]).reshape(-1)[::-1]
    return np.roll(v, 1).reshape(np.asarray(x[:1]).shape)


def batch_separable(program, xs) -> bool:
    """Whether every integer tensor of the program is computed sample by sample along dim 0: on a
    two-sample input (the example's first sample and another one) each tensor's dim 0 has two entries
    and each equals the same tensor of that sample run alone. Then one sample's steps, looped over
    the batch, compute any batch."""
    if not xs or any(np.ndim(x) == 0 for x in xs):
        return False
    firsts = [np.asarray(x[:1]) for x in xs]
    seconds = [other_sample(x) for x in xs]
    try:
        _, e1 = program.run(*firsts, keep=True)
        _, e2 = program.run(*seconds, keep=True)
        _, both = program.run(*[np.concatenate([a, b]) for a, b in zip(firsts, seconds)], keep=True)
    except Exception:  # an op that cannot take another batch: keep the example's
        return False
    for t, v in e1.items():
        if not isinstance(v, np.ndarray) or v.dtype not in (np.uint8, np.int8):
            continue
        w, v2 = both.get(t), e2.get(t)
        if (not isinstance(w, np.ndarray) or v.ndim == 0 or v.shape[0] != 1 or w.shape != (2,) + v.shape[1:]
                or not np.array_equal(w[:1], v) or not np.array_equal(w[1:], v2)):
            return False
    return True


def build_plan(program, inputs=None) -> ExportPlan:
    """The steps of an integer-only program, shapes from one run on `inputs` (default: zeros).

    When the program is batch-separable (batch_separable), the steps are those of one sample and the
    C entry points take the batch size at run time; otherwise they are the example's, for its batch."""
    xs = inputs if inputs is not None else example_inputs(program)
    batch = int(np.shape(xs[0])[0]) if xs and np.ndim(xs[0]) > 0 else 1
    same = all(np.ndim(x) > 0 and np.shape(x)[0] == batch for x in xs)
    if same and batch_separable(program, xs):
        _, full = program.run(*xs, keep=True)
        plan = _build(program, [np.asarray(x[:1]) for x in xs])
        plan.batch, plan.per_sample, plan.golden_env = batch, True, full
        return plan
    plan = _build(program, xs)
    plan.batch, plan.golden_env = batch, plan.env
    return plan


def _build(program, xs) -> ExportPlan:
    _, env = program.run(*xs, keep=True)
    consumers = {}
    for n in program.nodes:
        for r in _refs(n.inputs):
            consumers.setdefault(r, []).append(n)
    producers = {n.output: n for n in program.nodes}
    outs = _flat_outputs(program.outputs)

    skip = set()
    int_inputs, float_inputs = [], []
    for name in program.inputs:
        v = np.asarray(env[name])
        if v.dtype in (np.uint8, np.int8):
            int_inputs.append(name)
            float_inputs.append(None)
            continue
        cs = consumers.get(name, [])
        if len(cs) != 1 or cs[0].op != "quantize_thr":
            raise ExportError(f"input {name}: a float input must be read by exactly one quantize_thr "
                              f"(found {', '.join(c.op for c in cs) or 'no reader'})")
        q = cs[0]
        skip.add(q.name)
        int_inputs.append(q.output)
        float_inputs.append({"thresholds": np.asarray(q.consts["thresholds"], np.int64),
                             "out_min": int(q.attrs["out_min"]), "nan_value": int(q.attrs["nan_value"]),
                             "dtype": q.attrs.get("dtype", "uint8"), "float_input": name,
                             "wrap_key": int(q.attrs["wrap_key"]) if q.attrs.get("wrap_key") is not None else 1 << 40,
                             "wrap_value": int(q.attrs.get("wrap_value") or 0),
                             "bits_formula": q.attrs.get("bits_formula")})
    int_outputs, float_outputs = [], []
    for name in outs:
        v = np.asarray(env[name])
        if v.dtype in (np.uint8, np.int8):
            int_outputs.append(name)
            float_outputs.append(None)
            continue
        p = producers.get(name)
        if p is None or p.op != "dequantize_lut":
            raise ExportError(f"output {name}: a float output must come from dequantize_lut")
        skip.add(p.name)
        int_outputs.append(p.inputs[0])
        float_outputs.append({"table": np.asarray(p.consts["table"], np.int64).astype(np.int32),
                              "in_min": int(p.attrs["in_min"]), "float_output": name})

    shapes, dtypes = {}, {}
    for t, v in env.items():
        if isinstance(v, np.ndarray) and v.dtype in (np.uint8, np.int8):
            shapes[t] = tuple(int(s) for s in v.shape)
            dtypes[t] = str(v.dtype)

    steps, alias = [], {}
    fused = {}
    for node in program.nodes:
        if node.name in skip:
            continue
        v = env.get(node.output)
        if not isinstance(v, np.ndarray):
            continue  # shape arithmetic (size, int_arith): static here
        if node.op in ACC_OPS:
            cs = consumers.get(node.output, [])
            if len(cs) != 1 or cs[0].op != "requantize_int" or node.output in outs:
                raise ExportError(f"node {node.name} (op {node.op}): its accumulator must be read by exactly "
                                  "one requantize_int")
            fused[cs[0].name] = node
            continue
        if v.dtype not in (np.uint8, np.int8):
            raise ExportError(f"node {node.name} (op {node.op}): produces {v.dtype} inside the integer path "
                              "(only quantize_thr on inputs and dequantize_lut on outputs may touch floats)")
        for r in _refs(node.inputs):
            rv = env.get(r)
            if isinstance(rv, np.ndarray) and rv.dtype not in (np.uint8, np.int8) and node.name not in fused:
                if node.op != "requantize_int":
                    raise ExportError(f"node {node.name} (op {node.op}): reads {rv.dtype} tensor {r}")
        if node.op in ALIAS_OPS:
            alias[node.output] = node.inputs[0]
            continue
        builder = BUILDERS.get(node.op)
        if node.op == "requantize_int":
            acc_node = fused.get(node.name)
            if acc_node is None:
                raise ExportError(f"node {node.name} (op requantize_int): no accumulator op before it")
            fuse = _fused_onnx if acc_node.op.startswith("onnx_") else _fused
            steps.append(fuse(acc_node, node, env, program.profile))
            continue
        if builder is None:
            raise ExportError(f"node {node.name}: op {node.op} has no C kernel")
        steps.append(builder(node, env, program.profile))
    return ExportPlan(steps, shapes, dtypes, alias, int_inputs, int_outputs, float_inputs, float_outputs,
                      env, program)


def _refs(inputs):
    for i in inputs:
        if isinstance(i, str):
            yield i
        elif isinstance(i, list):
            yield from _refs(i)


def _signed(v) -> int:
    return int(np.asarray(v).dtype == np.int8)


# -- requantization parameters -------------------------------------------------------------------

def requant_params(p: dict, n_classes: int) -> dict:
    """qg_requant_t fields from a plan dict (apply_plan's keys), arrays sized to n_classes."""
    def arr(key, dt, default=0):
        v = p.get(key)
        if v is None:
            return None
        a = np.asarray(v)
        if a.ndim == 0:
            a = np.full(n_classes, a)
        return a.astype(dt)

    out = {"rounding": ROUNDING_CODES[p.get("rounding", "half_up")], "bits": int(p.get("bits", 32)),
           "out_zero_point": int(np.asarray(p.get("out_zero_point", 0)).reshape(-1)[0]),
           "out_min": int(p.get("out_min", 0)), "out_max": int(p.get("out_max", 255))}
    if np.asarray(p.get("out_zero_point", 0)).size != 1:
        raise ExportError("per-class output zero point")
    out["multiplier"] = arr("multiplier", np.int64)
    out["shift"] = arr("shift", np.int32)
    out["bias"] = arr("bias", np.int64)
    out["frac"] = arr("frac", np.int64)
    ut = p.get("use_table")
    if ut is not None and np.any(ut):
        t = np.asarray(p["thresholds"], np.int64)
        if t.ndim == 1:
            t = t[None, :]
        out["use_table"] = np.asarray(ut).reshape(-1).astype(np.uint8)
        out["thresholds"] = t
    us = p.get("use_segments")
    if us is not None and np.any(us):
        out["use_segments"] = np.asarray(us).reshape(-1).astype(np.uint8)
        out["segment_bounds"] = np.asarray(p["seg_bounds"], np.int64)
        out["segment_bias"] = np.asarray(p["seg_bias"], np.int64)
        out["segment_frac"] = np.asarray(p["seg_frac"], np.int64)
    dv = p.get("divisor")
    if dv is not None and np.any(np.asarray(dv) > 0):
        for k in ("divisor", "div_offset", "div_rounding", "div_zero_point"):
            out[k] = np.asarray(p[k]).reshape(-1).astype(np.int64)
    return out


def _rq_from_node(rq) -> dict:
    p = dict(rq.attrs)
    p.update(rq.consts)
    return p


# -- linear / conv (fused with requantize_int) ---------------------------------------------------

def _may_saturate(w) -> bool:
    """Whether any pair x0*w0 + x1*w1 (x in 0..255) can leave int16 for these weights."""
    m = int(np.abs(np.asarray(w, np.int64)).max(initial=0))
    return 2 * 255 * m > 32767


def _fused(acc_node, rq, env, profile) -> Step:
    from ..numerics.accumulate import onednn_gemm_k_blocks
    from ..numerics.profile import gemm_saturates, kernel_profile, linear_backend

    profile = kernel_profile(profile)  # a PT2E runtime's conv/linear run another engine's kernels
    x = env[acc_node.inputs[0]]
    if x.dtype not in (np.uint8, np.int8):
        raise ExportError(f"node {acc_node.name} (op {acc_node.op}): only 8-bit activations")
    w = np.asarray(acc_node.consts["weight"]).astype(np.int8)
    o = w.shape[0]
    zw = np.broadcast_to(np.asarray(acc_node.consts["weight_zero_point"], np.int64).reshape(-1), (o,))
    zx = int(acc_node.attrs["x_zero_point"])
    n_cls = o
    rqp = requant_params(_rq_from_node(rq), n_cls)
    y = env[rq.output]
    if acc_node.op == "linear_acc":
        K = x.shape[-1]
        backend = linear_backend(profile)
        sat = backend in ("fbgemm", "onednn") and gemm_saturates(profile) and _may_saturate(w)
        if sat and x.dtype != np.uint8:
            raise ExportError(f"node {acc_node.name} (op linear_acc): int16 pair sums of int8 activations")
        blocks = onednn_gemm_k_blocks(K, profile["isa"]) if backend == "onednn" else [0]
        if int(np.abs(w.astype(np.int64) - zw[:, None]).sum(axis=1).max(initial=0)) * 255 * 2 >= 2**31:
            raise ExportError(f"node {acc_node.name}: the accumulator may leave int32")
        return Step("linear", rq.name, "linear_acc+requantize_int", [acc_node.inputs[0]], rq.output, {
            "batches": int(np.prod(x.shape[:-1], dtype=np.int64)), "input_depth": int(K), "output_depth": int(o),
            "input_zero_point": zx, "input_signed": _signed(x), "weights": w.reshape(o, -1),
            "weight_zero_points": zw.astype(np.int32),
            "weight_sums": w.astype(np.int64).sum(axis=1).astype(np.int32), "paired": int(sat),
            "block_starts": np.asarray(blocks, np.int32), "num_blocks": len(blocks), "requant": rqp,
            "backend": backend})
    # conv
    from ..integer.accumulate import saturation
    from ..ops.conv import _pair

    a = acc_node.attrs
    conv1d = x.ndim == 3
    x4 = x[:, :, None, :] if conv1d else x
    w4 = w[:, :, None, :] if conv1d else w
    if conv1d:
        st, pd, dl = (1, _pair(a["stride"], 1)[0]), (0, _pair(a["padding"], 1)[0]), (1, _pair(a["dilation"], 1)[0])
    else:
        st, pd, dl = _pair(a["stride"]), _pair(a["padding"]), _pair(a["dilation"])
    nb, c_in, H, W = x4.shape
    _, cpg, kh, kw = w4.shape
    y4 = y[:, :, None, :] if conv1d else y
    s = saturation(acc_node, profile, 255)
    path = s["kernel"]
    mode = 0
    if s["saturates"] and _may_saturate(w):
        mode = 2 if path == "jit" else 1
    flip = 0x80 if x.dtype == np.int8 else 0  # int8 read as x + 128: exact sums only
    if flip and mode:
        raise ExportError(f"node {acc_node.name} (op conv_acc): int16 pair sums of int8 activations")
    if cpg * kh * kw * 255 * 255 * 2 >= 2**31:
        raise ExportError(f"node {acc_node.name}: the accumulator may leave int32")
    wk = np.ascontiguousarray(w4.transpose(0, 2, 3, 1))  # [O][KH][KW][Cg]: FBGEMM's im2col order
    ty, tx, tc = np.meshgrid(np.arange(kh), np.arange(kw), np.arange(cpg), indexing="ij")
    offsets = (tc * H * W + ty * dl[0] * W + tx * dl[1]).reshape(-1).astype(np.int32)
    return Step("conv", rq.name, "conv_acc+requantize_int", [acc_node.inputs[0]], rq.output, {
        "batches": int(nb), "input_channels": int(c_in), "input_height": int(H), "input_width": int(W),
        "output_channels": int(o), "output_height": int(y4.shape[2]), "output_width": int(y4.shape[3]),
        "kernel_height": int(kh), "kernel_width": int(kw), "stride_height": st[0], "stride_width": st[1],
        "pad_height": pd[0], "pad_width": pd[1], "dilation_height": dl[0], "dilation_width": dl[1],
        "groups": int(a["groups"]), "input_zero_point": zx + flip, "input_flip": flip, "mode": mode, "weights": wk.reshape(o, -1),
        "weight_zero_points": zw.astype(np.int32), "weight_sums": w.astype(np.int64).reshape(o, -1).sum(axis=1).astype(np.int32),
        "input_offsets": offsets, "requant": rqp, "path": path,
        "direct": int(mode == 0 and tuple(st) == (1, 1) and not np.any(zw) and kh * kw <= DIRECT_MAX_TAPS),
        "scratch_elements": direct_scratch(c_in, H, W, pd, w4.shape[3], dl[1])})


DIRECT_LANES = 32  # QG_DIRECT_LANES of kernels.c
DIRECT_MAX_TAPS = 128  # QG_DIRECT_MAX_TAPS


def direct_scratch(channels, height, width, pad, kernel_width, dilation_width) -> int:
    """int16 elements of qg_conv_direct's padded input copy: channels * Hp * Wp with Wp = W + 2 pad_w and
    Hp = H + 2 pad_h + 1 + ceil(QG_DIRECT_LANES / Wp) (kernels.c)."""
    wp = width + 2 * pad[1]
    hp = height + 2 * pad[0] + 1 + (DIRECT_LANES + wp - 1) // wp
    return int(channels * hp * wp)


def _fused_onnx(acc_node, rq, env, profile) -> Step:
    """ONNX QGemm / QLinearMatMul (onnx_gemm_acc) and QLinearConv (onnx_conv_acc, NCHW) with their
    requantize_int, on the linear / conv kernels. Exact sums where MLAS sums exactly (VNNI / AMX /
    arm64, u8*u8); where its u8s8 kernel pairs products in saturating int16 (ops/onnx_qlinear.gemm_acc)
    the kernels' pair modes do the same: the flat K order (tap outer, channel inner, padding reading zx)
    is QG_CONV_PAIRS_FBGEMM's, int8 activations biased by +128 are its input_flip; the symmetric conv
    kernel's pairs within a tap are QG_CONV_PAIRS_ONEDNN's where no padded tap can saturate. uint8
    weights (exact sums only) are stored as w - 128 with zero points zw - 128."""
    from ..ops.onnx_qlinear import saturating, symmetric_channel_pad

    x = env[acc_node.inputs[0]]
    if x.dtype not in (np.uint8, np.int8):
        raise ExportError(f"node {acc_node.name} (op {acc_node.op}): only 8-bit activations")
    a, k = acc_node.attrs, acc_node.consts
    conv = acc_node.op == "onnx_conv_acc"
    w_raw = np.asarray(k["weight"] if conv else np.asarray(k["b"]).T)
    o = w_raw.shape[0]
    zw = np.broadcast_to(np.asarray(k["w_zero_point"] if conv else k["b_zero_point"], np.int64).reshape(-1), (o,))
    sat = saturating(profile, str(x.dtype), str(w_raw.dtype), a.get("runtime", "mlas")) and _may_saturate(w_raw)
    shift = 128 if w_raw.dtype == np.uint8 else 0
    w = (w_raw.astype(np.int64) - shift).astype(np.int8)
    zw = zw - shift
    zx = int(a["x_zero_point"] if conv else a["a_zero_point"])
    rqp = requant_params(_rq_from_node(rq), o)
    y = env[rq.output]
    if not conv:
        K = x.shape[-1]
        if sat and x.dtype != np.uint8:
            raise ExportError(f"node {acc_node.name} (op onnx_gemm_acc): MLAS's int16 pair sums of int8 activations "
                              "(biased to uint8) have no C kernel yet")
        if int(np.abs(w.astype(np.int64) - zw[:, None]).sum(axis=1).max(initial=0)) * 255 * 2 >= 2**31:
            raise ExportError(f"node {acc_node.name}: the accumulator may leave int32")
        return Step("linear", rq.name, "onnx_gemm_acc+requantize_int", [acc_node.inputs[0]], rq.output, {
            "batches": int(np.prod(x.shape[:-1], dtype=np.int64)), "input_depth": int(K), "output_depth": int(o),
            "input_zero_point": zx, "input_signed": _signed(x), "weights": w.reshape(o, -1),
            "weight_zero_points": zw.astype(np.int32), "weight_sums": w.astype(np.int64).sum(axis=1).astype(np.int32),
            "paired": int(sat), "block_starts": np.asarray([0], np.int32), "num_blocks": 1, "requant": rqp,
            "backend": "mlas"})
    conv1d = x.ndim == 3
    st, pads, dl = list(a["strides"]), list(a["pads"]), list(a["dilations"])
    if conv1d:
        st, pads, dl = [1] + st, [0, pads[0], 0, pads[1]], [1] + dl
    x4 = x[:, :, None, :] if conv1d else x
    w4 = w[:, :, None, :] if conv1d else w
    y4 = y[:, :, None, :] if conv1d else y
    nb, c_in, H, W = x4.shape
    _, cpg, kh, kw = w4.shape
    flip = 0x80 if x.dtype == np.int8 else 0
    mode = 0
    if sat:
        mode = 1
        if symmetric_channel_pad(True, cpg, zw, w_raw.dtype):
            mode = 2
            pair_sums = np.abs(w4[:, :-1:2].astype(np.int64) + w4[:, 1::2].astype(np.int64))
            if any(pads) and int(pair_sums.max(initial=0)) * abs(zx + flip) > 32767:
                raise ExportError(f"node {acc_node.name} (op onnx_conv_acc): MLAS's symmetric conv kernel saturates "
                                  "pairs of padding taps, which the C conv kernel does not model")
    if cpg * kh * kw * 255 * 255 * 2 >= 2**31:
        raise ExportError(f"node {acc_node.name}: the accumulator may leave int32")
    wk = np.ascontiguousarray(w4.transpose(0, 2, 3, 1))  # [O][KH][KW][Cg]: ORT's NHWC im2col order
    ty, tx, tc = np.meshgrid(np.arange(kh), np.arange(kw), np.arange(cpg), indexing="ij")
    offsets = (tc * H * W + ty * dl[0] * W + tx * dl[1]).reshape(-1).astype(np.int32)
    return Step("conv", rq.name, "onnx_conv_acc+requantize_int", [acc_node.inputs[0]], rq.output, {
        "batches": int(nb), "input_channels": int(c_in), "input_height": int(H), "input_width": int(W),
        "output_channels": int(o), "output_height": int(y4.shape[2]), "output_width": int(y4.shape[3]),
        "kernel_height": int(kh), "kernel_width": int(kw), "stride_height": int(st[0]), "stride_width": int(st[1]),
        "pad_height": int(pads[0]), "pad_width": int(pads[1]), "dilation_height": int(dl[0]),
        "dilation_width": int(dl[1]), "groups": int(a["group"]), "input_zero_point": zx + flip, "input_flip": flip,
        "mode": mode, "weights": wk.reshape(o, -1), "weight_zero_points": zw.astype(np.int32),
        "weight_sums": w.astype(np.int64).reshape(o, -1).sum(axis=1).astype(np.int32), "input_offsets": offsets,
        "requant": rqp, "path": "mlas",
        # the direct kernel pads both sides alike (qg_conv_direct): asymmetric ONNX pads take the column kernel
        "direct": int(mode == 0 and (int(st[0]), int(st[1])) == (1, 1) and not np.any(zw) and kh * kw <= DIRECT_MAX_TAPS
                      and list(pads[:2]) == list(pads[2:4])),
        "scratch_elements": direct_scratch(c_in, H, W, (int(pads[0]), int(pads[1])), kw, int(dl[1]))})


def _onnx_max_pool(node, env, profile):
    """ONNX MaxPool on NCHW integers (ops/onnx_qlinear.onnx_max_pool): each output's window is the taps
    inside the input (padding never wins), pads begin/end, dilations, ceil_mode's output size."""
    x = env[node.inputs[0]]
    y = env[node.output]
    a = node.attrs
    if a.get("channels_last"):
        raise ExportError(f"node {node.name} (op onnx_max_pool): channels-last (certify's integer-only form "
                          "moves it to NCHW)")
    k, s, p, d = list(a["kernel_shape"]), list(a["strides"]), list(a["pads"]), list(a["dilations"])
    if x.ndim == 3:
        k, s, p, d = [1] + k, [1] + s, [0, p[0], 0, p[1]], [1] + d
    (N, C, H, W), _ = _as4(x.shape)
    (_, _, oH, oW), _ = _as4(y.shape)
    wins = []
    for oy in range(oH):
        for ox in range(oW):
            wins.append([iy * W + ix for i in range(k[0]) for j in range(k[1])
                         for iy, ix in [(oy * s[0] + i * d[0] - p[0], ox * s[1] + j * d[1] - p[1])]
                         if 0 <= iy < H and 0 <= ix < W])
    return _window_step(node, x, y, wins, 1)


# -- windows: pools, mean, max pool, upsample ------------------------------------------------------

def _csr(windows):
    start = np.zeros(len(windows) + 1, np.int32)
    start[1:] = np.cumsum([len(w) for w in windows])
    index = np.asarray([i for w in windows for i in w] or [0], np.int32)
    return start, index


def _as4(shape):
    shape = tuple(shape)
    if len(shape) == 3:
        return (shape[0], shape[1], 1, shape[2]), True
    return shape, False


def _window_step(node, x, y, windows, mode, **kw):
    shape4, _ = _as4(x.shape)
    N, C, H, W = shape4
    start, index = _csr(windows)
    p = {"outer": int(N), "channels": int(C), "input_plane": int(H * W), "output_plane": len(windows),
         "window_start": start, "window_index": index, "input_signed": _signed(x), "mode": mode,
         "sum_zero_point": 0, "classes": np.zeros(1, np.int32), "classes_per_channel": 0, "requant": None,
         "write_nhwc": 0}
    p.update(kw)
    return Step("window", node.name, node.op, [node.inputs[0]], node.output, p)


def _pool_int(node, env, profile):
    from ..ops.adaptive_avg_pool import adaptive_bins

    x = env[node.inputs[0]]
    y = env[node.output]
    a, k = node.attrs, node.consts
    kind, g = a["kind"], a["geom"]
    cls = np.asarray(k["cls"], np.int64)
    n_cls = int(np.asarray(k["multiplier"]).reshape(-1).size)
    rq = requant_params({**a, **k}, n_cls)
    zsub = int(a["zero_point"]) if a["sum_zp"] else 0
    if kind == "mean":
        dims = list(g["dims"])
        nd = x.ndim
        inner = int(np.prod([x.shape[d] for d in dims], dtype=np.int64))
        outer = int(np.prod(x.shape, dtype=np.int64)) // max(inner, 1)
        start, index = _csr([list(range(inner))])
        return Step("window", node.name, node.op, [node.inputs[0]], node.output, {
            "outer": outer, "channels": 1, "input_plane": inner, "output_plane": 1, "window_start": start,
            "window_index": index, "input_signed": _signed(x), "mode": 0, "sum_zero_point": zsub,
            "classes": np.zeros(1, np.int32), "classes_per_channel": 0, "requant": rq, "write_nhwc": 0,
            "_nd": nd})
    (N, C, H, W), _ = _as4(x.shape)
    if kind == "avg":
        kH, kW, sH, sW, pH, pW, oH, oW = (int(g[n]) for n in ("kH", "kW", "sH", "sW", "pH", "pW", "oH", "oW"))
        wins = [[iy * W + ix for iy in range(oy * sH - pH, oy * sH - pH + kH) if 0 <= iy < H
                 for ix in range(ox * sW - pW, ox * sW - pW + kW) if 0 <= ix < W]
                for oy in range(oH) for ox in range(oW)]
    else:
        oH, oW = int(g["oH"]), int(g["oW"])
        if g.get("blocks"):
            bh, bw = H // oH, W // oW
            hs, he = np.arange(oH) * bh, np.arange(oH) * bh + bh
            ws, we = np.arange(oW) * bw, np.arange(oW) * bw + bw
        else:
            hs, he = adaptive_bins(H, oH)
            ws, we = adaptive_bins(W, oW)
        wins = [[iy * W + ix for iy in range(int(hs[oy]), int(he[oy])) for ix in range(int(ws[ox]), int(we[ox]))]
                for oy in range(oH) for ox in range(oW)]
    cls2 = cls.reshape(cls.shape[0], -1) if cls.ndim == 3 else cls.reshape(1, -1)
    return _window_step(node, x, y, wins, 0, sum_zero_point=zsub, classes=cls2.astype(np.int32),
                        classes_per_channel=int(cls2.shape[0] > 1), requant=rq,
                        write_nhwc=int(bool(a.get("nhwc_quirk")) and H * W == 1))


def _max_pool(node, env, profile):
    from ..ops.max_pool import _tup, pooling_output_shape

    x = env[node.inputs[0]]
    y = env[node.output]
    a = node.attrs
    ks = a["kernel_size"]
    nd = len(ks) if not isinstance(ks, (int, np.integer)) else (x.ndim - 2)
    k = _tup(ks, nd)
    s = _tup(a["stride"], nd) if a["stride"] not in (None, (), []) else k
    p, d = _tup(a["padding"], nd), _tup(a["dilation"], nd)
    if nd == 1:
        k, s, p, d = (1, k[0]), (1, s[0]), (0, p[0]), (1, d[0])
    (N, C, H, W), _ = _as4(x.shape)
    oH = pooling_output_shape(H, k[0], p[0], s[0], d[0], a["ceil_mode"])
    oW = pooling_output_shape(W, k[1], p[1], s[1], d[1], a["ceil_mode"])
    qnnpack = profile["engine"] == "qnnpack" and x.dtype == np.uint8 and not a["ceil_mode"]
    wins = []
    for oy in range(oH):
        for ox in range(oW):
            win = []
            for i in range(k[0]):
                iy = oy * s[0] + i * d[0] - p[0]
                for j in range(k[1]):
                    ix = ox * s[1] + j * d[1] - p[1]
                    if qnnpack:
                        win.append(min(max(iy, 0), H - 1) * W + min(max(ix, 0), W - 1))
                    elif 0 <= iy < H and 0 <= ix < W:
                        win.append(iy * W + ix)
            wins.append(win)
    cl = bool(a.get("channels_last", False))
    quirk = (not qnnpack) and H * W == 1 and not cl
    return _window_step(node, x, y, wins, 1, write_nhwc=int(quirk))


def _upsample_int(node, env, profile):
    x = env[node.inputs[0]]
    y = env[node.output]
    hi = np.asarray(node.consts["h_index"]).reshape(-1)
    wi = np.asarray(node.consts["w_index"]).reshape(-1)
    (N, C, H, W), _ = _as4(x.shape)
    identity = hi.size == H and wi.size == W and np.array_equal(hi, np.arange(H)) and np.array_equal(wi, np.arange(W))
    if identity and not node.attrs.get("nhwc_quirk"):
        return Step("copy", node.name, node.op, [node.inputs[0]], node.output, {"size": int(x.size)})
    wins = [[int(hi[oy]) * W + int(wi[ox])] for oy in range(hi.size) for ox in range(wi.size)]
    quirk = bool(node.attrs.get("nhwc_quirk")) and H * W == 1 and not node.attrs.get("channels_last")
    return _window_step(node, x, y, wins, 1, write_nhwc=int(quirk))


# -- elementwise -----------------------------------------------------------------------------------

def _table_bytes(t):
    return (np.asarray(t, np.int64) & 0xFF).astype(np.uint8)


def _scalar_elements(fn, args, node, profile, big):
    """Flat indices (row-major) of the elements the op takes from its scalar_table."""
    zeros = np.zeros(big, np.int64)
    ones = np.ones(big, np.int64)
    kw = {k: v for k, v in node.attrs.items()}
    kw.update(table=zeros, scalar_table=ones, dtype="uint8")
    mask = np.asarray(fn(*args, **kw, profile=profile)).reshape(-1)
    return np.nonzero(mask == 1)[0].astype(np.int32)


def _view(a_shape, b_shape):
    """qg_view_t of b broadcast to a's shape, or None when b has a's shape."""
    a_shape, b_shape = tuple(a_shape), tuple(b_shape)
    if a_shape == b_shape:
        return None
    if len(a_shape) > 6:
        raise ExportError("broadcast over more than 6 dims")
    base = np.arange(int(np.prod(b_shape, dtype=np.int64))).reshape(b_shape)
    v = np.broadcast_to(base, a_shape)
    return {"rank": len(a_shape), "shape": list(a_shape), "strides": [s // 8 for s in v.strides], "offset": 0}


def _lut(node, env, profile):
    from ..ops import get

    x = env[node.inputs[0]]
    p = {"size": int(x.size), "input_signed": _signed(x), "table": _table_bytes(node.consts["table"]),
         "scalar_table": None, "scalar_elements": None}
    if node.consts.get("scalar_table") is not None:
        probe = np.full(x.shape, int(node.attrs["in_min"]), x.dtype)
        idx = _scalar_elements(get("lut"), [probe], node, profile, 256)
        if idx.size:
            p["scalar_table"] = _table_bytes(node.consts["scalar_table"])
            p["scalar_elements"] = idx
    return Step("lut", node.name, node.op, [node.inputs[0]], node.output, p)


def _lut2(node, env, profile):
    from ..ops import get

    a, b = env[node.inputs[0]], env[node.inputs[1]]
    if np.broadcast_shapes(a.shape, b.shape) != a.shape:
        raise ExportError(f"node {node.name} (op lut2): the first input must have the output's shape")
    p = {"size": int(a.size), "input_signed": _signed(a), "b_view": _view(a.shape, b.shape),
         "table": _table_bytes(node.consts["table"]), "scalar_table": None, "scalar_elements": None}
    if node.consts.get("scalar_table") is not None:
        m = int(node.attrs["in_min"])
        idx = _scalar_elements(get("lut2"), [np.full(a.shape, m, a.dtype), np.full(b.shape, m, b.dtype)],
                               node, profile, 65536)
        if idx.size:
            p["scalar_table"] = _table_bytes(node.consts["scalar_table"])
            p["scalar_elements"] = idx
    return Step("lut2", node.name, node.op, list(node.inputs[:2]), node.output, p)


def _lut_channel(node, env, profile):
    x = env[node.inputs[0]]
    axis = int(node.attrs.get("axis", 1)) % x.ndim
    t = np.asarray(node.consts["table"])
    inner = int(np.prod(x.shape[axis + 1:], dtype=np.int64))
    return Step("lut_channel", node.name, node.op, [node.inputs[0]], node.output, {
        "size": int(x.size), "channels": int(x.shape[axis]), "inner": inner, "input_signed": _signed(x),
        "table": _table_bytes(t).reshape(-1)})


def _mul_int(node, env, profile):
    a, b = env[node.inputs[0]], env[node.inputs[1]]
    if a.dtype != np.uint8 or np.broadcast_shapes(a.shape, b.shape) != a.shape:
        raise ExportError(f"node {node.name} (op mul_int): uint8 inputs, the first with the output's shape")
    p = dict(node.attrs)
    p.update(node.consts)
    return Step("mul", node.name, node.op, list(node.inputs[:2]), node.output, {
        "size": int(a.size), "a_zero_point": int(p["a_zero_point"]), "b_zero_point": int(p["b_zero_point"]),
        "b_view": _view(a.shape, b.shape), "requant": requant_params(p, 1)})


def _clamp_int(node, env, profile):
    x = env[node.inputs[0]]
    a = node.attrs
    quirk = bool(a.get("nhwc_as_nchw")) and x.ndim == 4
    if x.ndim >= 2:
        N, C = x.shape[0], x.shape[1]
        plane = int(np.prod(x.shape[2:], dtype=np.int64))
    else:
        N, C, plane = 1, 1, int(x.size)
    return Step("clamp", node.name, node.op, [node.inputs[0]], node.output, {
        "batches": int(N), "channels": int(C), "plane": plane, "input_signed": _signed(x),
        "has_min": int(a.get("lo") is not None), "min_value": int(a.get("lo") or 0),
        "has_max": int(a.get("hi") is not None), "max_value": int(a.get("hi") or 0), "write_nhwc": int(quirk)})


def _cat_int(node, env, profile):
    xs = [env[r] for r in node.inputs[0]]
    y = env[node.output]
    dim = int(node.attrs.get("dim", 0)) % y.ndim
    outer = int(np.prod(y.shape[:dim], dtype=np.int64))
    out_chunk = int(np.prod(y.shape[dim:], dtype=np.int64))
    parts, off = [], 0
    for x, t in zip(xs, node.attrs["tables"]):
        chunk = int(np.prod(x.shape[dim:], dtype=np.int64))
        parts.append({"outer": outer, "chunk": chunk, "output_chunk": out_chunk, "offset": off,
                      "input_signed": _signed(x), "table": None if t is None else _table_bytes(t)})
        off += chunk
    return Step("cat", node.name, node.op, list(node.inputs[0]), node.output, {"parts": parts})


def _strided(node, env, profile):
    """permute / transpose / index: a gather through a strided view of the input."""
    from ..ops import get

    x = env[node.inputs[0]]
    y = env[node.output]
    base = np.arange(x.size, dtype=np.int64).reshape(x.shape)
    src = np.asarray(get(node.op)(base, *node.inputs[1:], **node.attrs, profile=profile))
    if src.shape != y.shape or y.ndim > 6:
        raise ExportError(f"node {node.name} (op {node.op}): unsupported view")
    if src.size == 0:
        return Step("copy", node.name, node.op, [node.inputs[0]], node.output, {"size": 0})
    off = int(src.reshape(-1)[0])
    strides = []
    for d in range(src.ndim):
        if src.shape[d] > 1:
            idx = [0] * src.ndim
            idx[d] = 1
            strides.append(int(src[tuple(idx)]) - off)
        else:
            strides.append(0)
    shape = list(src.shape) or [1]
    strides = strides or [0]
    recon = off + sum(np.arange(s).reshape([-1 if i == d else 1 for i in range(len(shape))]) * st
                      for d, (s, st) in enumerate(zip(shape, strides)))
    if not np.array_equal(np.broadcast_to(recon, tuple(shape)).reshape(-1), src.reshape(-1)):
        raise ExportError(f"node {node.name} (op {node.op}): not a strided view")
    return Step("gather", node.name, node.op, [node.inputs[0]], node.output, {
        "size": int(y.size), "view": {"rank": len(shape), "shape": shape, "strides": strides, "offset": off}})


BUILDERS = {"pool_int": _pool_int, "max_pool": _max_pool, "upsample_int": _upsample_int, "lut": _lut,
            "lut2": _lut2, "lut_channel": _lut_channel, "mul_int": _mul_int, "clamp_int": _clamp_int,
            "cat_int": _cat_int, "permute": _strided, "transpose": _strided, "index": _strided,
            "onnx_transpose": _strided, "onnx_max_pool": _onnx_max_pool}
