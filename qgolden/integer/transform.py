"""to_integer_only: a program -> an equivalent program with no float operation, plus its certificate.

Every op is replaced by an integer-only form (requant.py, lut.py, pools.py) and each form is
checked on every value the op can receive; the records are the certificate (certify.py).
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np

from .. import ops
from ..ir import Node, Program, TensorInfo
from ..numerics.profile import PT2E_BACKENDS, conv_backend, kernel_profile, linear_backend
from ..numerics.quantize import NP_DTYPE, QRANGE
from ..numerics.requantize import requantize_fbgemm, requantize_onednn, requantize_qnnpack
from . import accumulate as ACC
from . import lut as L
from . import quantize_bits as QB
from .fixedpoint import ROUNDINGS
from .requant import plan_layer
from .standard import (STANDARD_ROUNDINGS, constant_channels, differences, natural_bias, observed_hits, prefer_standard,
                       standard_plan)

# the op table's facts (qgolden/ops, one OpSpec per op)
KEEP = ops.where(integer="keep")  # already integer-only: kept as they are
# what an integer-only program may contain (the no-float rule, see docs/integer-only.md)
INTEGER_OPS = KEEP | ops.where(integer="integer")
PASS_RANGE = ops.where(passes_range=True)


@dataclass
class OpCert:
    """One op's certificate: how it is computed with integers, over how many input cases it was
    checked (domain), and on how many it differs from the engine (mismatches; 0 = certified)."""
    name: str
    op: str
    method: str
    domain: int
    mismatches: int
    params: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def certified(self) -> bool:
        return self.mismatches == 0


class Unsupported(Exception):
    pass


def _dtype(program, name):
    info = program.tensors.get(name)
    return info.dtype if info is not None and info.quantized else "uint8"


def _reference_requant(node):
    """(ref, monotone_ok, backend) of torchao's reference linear (ops/qdq.requantize_reference):
    ref(acc) over the exact accumulator; the float value is 0 at acc = -trunc(bias / (sx*sw))."""
    from ..ops.qdq import requantize_reference

    a, k = node.attrs, node.consts
    kw = {key: a[key] for key in ("x_scale", "out_scale", "out_zero_point", "out_quant_min", "out_quant_max",
                                  "out_dtype")}

    def ref(acc, trace=None):
        return requantize_reference(np.asarray(acc, dtype=np.int64), weight_scale=k["weight_scale"],
                                    bias=k.get("bias"), trace=trace, **kw).astype(np.int64)

    def monotone_ok(lo, hi):
        t = {}
        ref(np.stack([lo, hi]), trace=t)
        biased = np.asarray(t["acc_with_bias"], np.int64)
        return (np.all(np.abs(np.asarray(t["pre_round"], np.float64)) < 2.0**31 - 128, axis=0)
                & np.all((biased >= -(2**31)) & (biased < 2**31), axis=0))

    t = {}
    n = np.asarray(k["weight"]).shape[0]
    ref(np.zeros((1, n), np.int64), trace=t)
    ref.pivots = -np.asarray(t["acc_with_bias"], np.float64).reshape(-1)
    return ref, monotone_ok, "pt2e_reference"


def kernel_node(node, profile):
    """(node, profile) as the kernels compute a conv/linear: x86-inductor's int8 kernels are
    oneDNN's with a float bias (zeros when the model has none), as ops/qdq.py runs them."""
    if profile.get("engine") != "x86-inductor":
        return node, profile
    if node.consts.get("bias") is None:
        node = copy.copy(node)
        node.consts = dict(node.consts, bias=np.zeros(np.asarray(node.consts["weight"]).shape[0], np.float32))
    return node, kernel_profile(profile)


def _xnnpack_requant(node):
    """(ref, monotone_ok, backend) of XNNPACK's qs8 conv / fully connected (ops/xnnpack.py):
    ref(acc) = clamp(rne(f32(f32(acc + bias_int32[c]) * scale[c])) + zo, out_min, out_max) over the
    exact accumulator Σ (x - zx) w; non-decreasing while acc + bias stays in int32 (the kernel clamps
    in float before converting); the float value is 0 at acc = -bias_int32[c]."""
    from ..ops import xnnpack as X

    a, k = node.attrs, node.consts
    n = np.asarray(k["weight"]).shape[0]
    bias = np.zeros(n, np.int64) if k.get("bias") is None else \
        np.broadcast_to(X.bias_int32(k["bias"], a["x_scale"], k["weight_scale"], a.get("per_channel", False)), (n,))
    scale = np.broadcast_to(X.requantization_scale(a["x_scale"], k["weight_scale"], a["out_scale"]), (n,))
    _, out_min, out_max = out_range(node)

    def ref(acc, trace=None):
        acc = np.asarray(acc, dtype=np.int64)
        return X.requantize_fp32(acc + bias, scale, a["out_zero_point"], out_min, out_max).astype(np.int64)

    def monotone_ok(lo, hi):
        return (lo + bias >= -(2**31)) & (hi + bias < 2**31)

    ref.pivots = -bias.astype(np.float64)
    return ref, monotone_ok, "xnnpack"


def onednn_node_output_stage(node, profile, x_shape=None) -> str:
    """The oneDNN output stage of a linear / conv node for input shape x_shape (the shape seen when
    the program was built; without one, a batch of 1 and a 1x1 output)."""
    w = np.asarray(node.consts["weight"])
    if node.op == "linear":
        from ..ops.linear import onednn_linear_output_stage

        m = int(np.prod(x_shape[:-1])) if x_shape else 1
        return onednn_linear_output_stage(profile, m, w.shape[1], w.shape[0])
    from ..ops.conv import onednn_output_stage

    a = node.attrs
    if not x_shape:
        x_shape = (1, w.shape[1] * int(a["groups"])) + tuple(w.shape[2:])
    return onednn_output_stage(profile, x_shape, w.shape, int(a["groups"]), a["stride"], a["padding"],
                               a.get("dilation", 1))


def _engine_requant(node, profile, x_shape=None):
    a, k = node.attrs, node.consts
    if PT2E_BACKENDS.get(profile.get("engine")) == "pt2e_reference" and node.op == "linear":
        return _reference_requant(node)
    if PT2E_BACKENDS.get(profile.get("engine")) == "xnnpack":
        return _xnnpack_requant(node)
    if node.op == "linear":
        backend = linear_backend(profile)
    else:
        zw = np.asarray(k["weight_zero_point"])
        backend = conv_backend(profile, int(a["groups"]), not np.any(zw != 0))
    reqs = {"fbgemm": requantize_fbgemm, "qnnpack": requantize_qnnpack, "onednn": requantize_onednn}
    if backend not in reqs:
        raise Unsupported(f"no integer-only form for the {backend} kernels")
    req = reqs[backend]
    kw = dict(x_scale=a["x_scale"], weight_scale=k["weight_scale"], out_scale=a["out_scale"],
              out_zero_point=a["out_zero_point"], bias=k.get("bias"), per_channel=a.get("per_channel", False),
              relu=a["relu"])
    if backend == "onednn":  # the kernel's output stage, for the input shape the program was built with
        kw["kernel"] = onednn_node_output_stage(node, profile, x_shape)
        if node.op == "linear":
            kw["weight_scales"] = "reciprocal"

    def ref(acc, trace=None):
        return req(np.asarray(acc, dtype=np.int64), trace=trace, **kw).astype(np.int64)

    def monotone_ok(lo, hi):
        t = {}
        ref(np.stack([lo, hi]), trace=t)
        pre = np.asarray(t.get("pre_round"), dtype=np.float64)
        in32 = (lo >= -(2**31)) & (hi < 2**31)
        if backend == "onednn":
            return in32
        bq = t.get("bias_term") if backend == "qnnpack" else None
        if bq is not None:
            bq = np.abs(np.asarray(bq, np.int64))
            in32 &= (np.maximum(np.abs(lo), np.abs(hi)) + bq) < 2**31
        return in32 & np.all(np.abs(pre) < 2.0**31 - 128, axis=0)

    n = np.asarray(k["weight"]).shape[0]
    bias = k.get("bias")
    if bias is None:
        pivots = np.zeros(n)
    elif backend == "fbgemm":  # f32(acc) + b' is 0 at acc = -b'
        from ..numerics.requantize import bias_fbgemm, fbgemm_scales

        atw, _ = fbgemm_scales(a["x_scale"], k["weight_scale"], a["out_scale"], n)
        if not a.get("per_channel", False):
            atw = np.repeat(atw[:1], n)
        pivots = -bias_fbgemm(bias, atw, a.get("per_channel", False)).astype(np.float64)
    elif backend == "qnnpack":
        from ..numerics.requantize import bias_qnnpack

        pivots = -bias_qnnpack(bias, a["x_scale"], k["weight_scale"], a.get("per_channel", False)).astype(np.float64)
    else:  # onednn: f32(acc * sx*sw) + bias is 0 at acc = -bias / (sx*sw)
        sw = np.broadcast_to(np.asarray(k["weight_scale"], np.float64).reshape(-1), (n,))
        pivots = -np.asarray(bias, np.float64) / (float(a["x_scale"]) * sw)
    ref.pivots = pivots
    return ref, monotone_ok, backend


def _slope(node):
    a, k = node.attrs, node.consts
    n = np.asarray(k["weight"]).shape[0]
    sw = np.broadcast_to(np.asarray(k["weight_scale"], np.float64).reshape(-1), (n,))
    return float(a["x_scale"]) * sw / float(a["out_scale"])


def _plan_params(plan):
    p = dict(multiplier=plan.multiplier, shift=plan.shift, bias=plan.bias, frac=plan.frac,
             use_table=plan.use_table, thresholds=plan.thresholds)
    if np.any(plan.use_segments):
        p.update(use_segments=plan.use_segments, seg_bounds=plan.seg_bounds, seg_bias=plan.seg_bias,
                 seg_frac=plan.seg_frac)
    return p


def requant_certificate(ctx, node, plan, lo, hi, mism, details, bits_needed, zero_point, out_range, int32_note):
    """The OpCert of a linear/conv requantization plan over accumulators [lo, hi] per channel: the plan's
    mismatches, plus the values where int32 overflow was not ruled out (int32_note says which formula)
    and, with an accumulator width (ctx.acc_bits), the reachable values it cannot hold."""
    if not np.all(plan.monotone_ok) and not plan.enumerated:
        details["note"] = int32_note
        mism += int((~plan.monotone_ok).sum())
    if ctx.acc_bits is not None and bits_needed > ctx.acc_bits:
        amin, amax = -(1 << (ctx.acc_bits - 1)), (1 << (ctx.acc_bits - 1)) - 1
        over = int((np.maximum(0, amin - lo) + np.maximum(0, hi - amax)).sum())
        details["acc_overflow_values"] = over
        mism += over
    ctx.ranges[node.output] = out_range
    return OpCert(node.name, node.op, _method(plan), plan.domain, mism,
                  {"multiplier": plan.multiplier, "shift": plan.shift, "bias": plan.bias, "frac": plan.frac,
                   "use_table": plan.use_table, "use_segments": plan.use_segments & ~plan.use_table,
                   "rounding": ctx.rounding, "out_zero_point": zero_point}, details)


def _method(plan):
    nt = int(plan.use_table.sum())
    ns = int(np.sum(plan.use_segments & ~plan.use_table))
    nd = int(np.sum(plan.divisor > 0))
    nm = plan.use_table.size - nt - nd
    parts = ([("multiplier/shift" + ("+binade biases" if ns else ""))] if nm else []) + \
        (["exact division"] if nd else []) + (["thresholds"] if nt else [])
    return "+".join(parts)


class _Ctx:
    def __init__(self, program, bits, rounding, acc_bits, allow_tables, observed):
        self.p = program
        self.profile = program.profile
        self.bits, self.rounding, self.acc_bits, self.allow_tables = bits, rounding, acc_bits, allow_tables
        self.observed = observed or {}
        self.ranges = {}
        self.tensors = {}

    def rng(self, name, dtype="uint8"):
        return self.ranges.get(name, QRANGE.get(dtype, (0, 255)))


def out_range(node):
    """(dtype, lowest, highest) output of a linear/conv: uint8 0..255 for the PyTorch engines, the
    quantize node's dtype and quant_min..quant_max for PT2E runtimes; ReLU raises the lowest to z_y."""
    a = node.attrs
    dt = a.get("out_dtype") or "uint8"
    qmin, qmax = QRANGE[dt]
    lo = qmin if a.get("out_quant_min") is None else int(a["out_quant_min"])
    hi = qmax if a.get("out_quant_max") is None else int(a["out_quant_max"])
    if a.get("relu"):
        lo = int(np.clip(int(a["out_zero_point"]), lo, hi))
    return dt, lo, hi


def _float_out_combined_scale(node, shapes, profile) -> bool:
    """Whether the oneDNN kernel behind this float-output conv/linear scales by one f32(sx*sw[n])
    (CpuClass.onednn_int8_combined_scale, as ops/qdq.py asks it at run time). `shapes` holds the
    input and output shapes fold_float_out_gemm recorded; a class whose choice depends on the shape
    (AMX) needs them."""
    from ..cpu import cpu_class
    from ..ops.qdq import conv_shape, onednn_combined_scale

    x_shape, y_shape = shapes or (None, None)
    w = np.asarray(node.consts["weight"])
    if x_shape is None or y_shape is None:
        if cpu_class(profile).onednn_int8_scales == "amx":
            raise Unsupported(f"{node.name}: which oneDNN kernel (and so which float scaling) an AMX CPU runs "
                              "depends on the shapes; lower the model with example inputs")
        return cpu_class(profile).onednn_int8_combined_scale(node.op, {})
    if node.op == "linear":
        shape = {"m": int(np.prod(x_shape[:-1])), "k": int(x_shape[-1]), "n": int(w.shape[0])}
    else:
        a = node.attrs
        out_hw = (1, y_shape[2]) if len(y_shape) == 3 else tuple(y_shape[2:])  # a conv1d is a conv2d of height 1
        shape = conv_shape(x_shape, w.shape, a["stride"], a["padding"], a["groups"], out_hw)
    return onednn_combined_scale(profile, node.op, shape)


def _float_out_requant(node, profile):
    """(ref, monotone_ok, backend) of an int8 kernel with a float32 output (x86-inductor) followed by
    non-decreasing float ops and a quantize (fold_float_out_gemm, node.attrs["_then"]):
    ref(acc) = quantize(e_k(...e_1(f32(f32(acc)*f32(sx*sw[n])) + bias[n]))), non-decreasing in acc, with
    the scales applied at once or in turn as the CPU class's oneDNN kernel for this shape does
    (_float_out_combined_scale)."""
    from ..ops.qdq import _onednn_float_out

    a, k = node.attrs, node.consts
    then = a["_then"]
    q_op, q_attrs = then["q"]
    combined = _float_out_combined_scale(node, then.get("shapes"), profile)

    def ref(acc, trace=None):
        f = _onednn_float_out(np.asarray(acc, np.int64), a["x_scale"], k["weight_scale"], k.get("bias"), a["relu"],
                              combined=combined)
        f = apply_steps(f, then["steps"], profile)
        return np.asarray(ops.get(q_op)(np.asarray(f, np.float32), **q_attrs, profile=profile)).astype(np.int64)

    def monotone_ok(lo, hi):
        return (lo >= -(2**31)) & (hi < 2**31)

    n = np.asarray(k["weight"]).shape[0]
    sw = np.broadcast_to(np.asarray(k["weight_scale"], np.float64).reshape(-1), (n,))
    bias = np.zeros(n) if k.get("bias") is None else np.asarray(k["bias"], np.float64)
    ref.pivots = -bias / (float(a["x_scale"]) * sw)
    return ref, monotone_ok, "onednn (float32 output, then quantize)"


def _linear_conv(ctx, node):
    if node.attrs.get("out_dtype") == "float32":
        raise Unsupported(float_why(ctx.p, node))
    kn, kp = kernel_node(node, ctx.profile)
    x = node.inputs[0]
    xlo, xhi = ctx.rng(x, _dtype(ctx.p, x))
    rep = ACC.analyse(kn, kp, xlo, xhi, ctx.observed.get(node.name))
    lo, hi = rep["lo"], rep["hi"]
    xt = ctx.p.tensors.get(x) if hasattr(ctx.p, "tensors") else None
    ref, mono, backend = (_float_out_requant(kn, kp) if "_then" in node.attrs
                          else _engine_requant(kn, kp, getattr(xt, "shape", None)))
    zo = int(node.attrs["out_zero_point"])
    dtype, out_min, out_max = out_range(node)
    plan = plan_layer(ref, lo, hi, zo=zo, out_min=out_min, out_max=out_max, slope=_slope(node), bits=ctx.bits,
                      rounding=ctx.rounding, allow_tables=ctx.allow_tables, overflow_check=mono,
                      pivots=ref.pivots)
    standard = None
    if ctx.rounding == "tflite" and "_then" not in node.attrs:
        plan, standard = standard_report(node, plan, ref, lo, hi, zo, out_min, out_max, mono, ctx)
    acc_name = node.output + "__acc"
    ctx.tensors[acc_name] = TensorInfo(acc_name, "int", shape=None)
    if node.op == "linear":
        acc_node = Node(node.name + "__acc", "linear_acc", [x], acc_name,
                        {"x_zero_point": int(node.attrs["x_zero_point"])},
                        {"weight": node.consts["weight"], "weight_zero_point": node.consts["weight_zero_point"]},
                        node.source, node.torch_op, node.names)
        axis = -1
    else:
        a = node.attrs
        acc_node = Node(node.name + "__acc", "conv_acc", [x], acc_name,
                        {"x_zero_point": int(a["x_zero_point"]), "stride": a["stride"], "padding": a["padding"],
                         "dilation": a["dilation"], "groups": a["groups"]},
                        {"weight": node.consts["weight"], "weight_zero_point": node.consts["weight_zero_point"]},
                        node.source, node.torch_op, node.names)
        axis = 1
    rq = Node(node.name, "requantize_int", [acc_name], node.output,
              {"out_zero_point": zo, "out_min": out_min, "out_max": out_max, "rounding": ctx.rounding,
               "bits": ctx.bits, "axis": axis, "dtype": dtype}, _plan_params(plan), node.source, node.torch_op)
    mism = int(plan.mismatches.sum())
    details = {"accumulator": rep, "backend": backend, "channels": int(lo.size),
               "table_channels": int(plan.use_table.sum()), "enumerated": plan.enumerated,
               "monotone_checked": bool(np.all(plan.monotone_ok)),
               "breaking_values": {int(c): plan.bad[c] for c in range(lo.size) if plan.bad[c]}}
    if standard is not None:
        details["standard"] = standard
    dead = constant_channels(plan)
    if dead:
        details["constant_channels"] = dead
    cert = requant_certificate(ctx, node, plan, lo, hi, mism, details, rep["bits_needed"], zo, (out_min, out_max),
                               "the engine's float formula may overflow int32 at the interval ends")
    return [acc_node, rq], cert


def standard_report(node, plan, ref, lo, hi, zo, out_min, out_max, mono, ctx):
    """(plan, report): the TFLite/gemmlowp/CMSIS-NN pipeline (integer/standard.py) with the node's
    natural biases, kept per channel where prefer_standard says so, and per channel how many
    reachable accumulator values it gets wrong, by how much, and how many of the user's."""
    channels = int(np.asarray(lo).size)
    bias_q = natural_bias(node.consts.get("bias"), node.attrs["x_scale"], node.consts["weight_scale"], channels)
    std = standard_plan(ref, lo, hi, multiplier=_slope(node), bias_q=bias_q, zo=zo, out_min=out_min,
                        out_max=out_max, bits=ctx.bits, overflow_check=mono)
    if std is None:
        return plan, {"note": "a multiplier s_x*s_w/s_y >= 1 needs a left shift: no standard pipeline"}
    merged, used = prefer_standard(plan, std, ctx.allow_tables)
    hits = observed_hits(std, ctx.observed.get(node.name), -1)
    return merged, {"bias": std.bias, "multiplier": std.multiplier, "shift": std.shift,
                    "mismatches": std.mismatches, "max_diff": differences(std, ref),
                    "domain": (np.asarray(hi) - np.asarray(lo) + 1).astype(np.int64),
                    "observed_hits": hits, "used": used}


def _quantize(ctx, node):
    if node.attrs.get("axis") is not None:
        raise Unsupported("per-channel quantize of a float input")
    t, base, nan, f, wrap = L.quantize_thresholds(node, ctx.profile)
    mism, n = L.check_quantize(node, ctx.profile, t, base, nan, wrap)
    dtype = node.attrs.get("dtype", "uint8")
    attrs = {"out_min": int(base), "nan_value": int(nan), "dtype": dtype}
    if wrap is not None:
        attrs.update(wrap_key=int(wrap[0]), wrap_value=int(wrap[1]))
    formula = QB.formula_of(node.op, node.attrs)
    if formula is not None and QB.check_boundaries(formula, t, base, nan, *(wrap or (None, None))) == 0:
        attrs["bits_formula"] = formula  # the same integers in integer arithmetic on the bits (quantize_bits.py)
    nn = Node(node.name, "quantize_thr", list(node.inputs), node.output, attrs, {"thresholds": t},
              node.source, node.torch_op)
    return [nn], OpCert(node.name, node.op, "thresholds (float32 bits)", 2**32, mism,
                        {"thresholds": t}, {"spot_checked": n})


def _dequantize(ctx, node):
    if node.attrs.get("axis") is not None:
        raise Unsupported("per-channel dequantize")
    dt = _dtype(ctx.p, node.inputs[0])
    tab = L.dequantize_table(node, dt)
    qmin = QRANGE[dt][0]
    nn = Node(node.name, "dequantize_lut", list(node.inputs), node.output, {"in_min": qmin}, {"table": tab},
              node.source, node.torch_op)
    x = np.arange(qmin, QRANGE[dt][1] + 1).astype(dt)
    ref = ops.get(node.op)(x, **node.attrs, **node.consts)
    mine = ops.get("dequantize_lut")(x, table=tab, in_min=qmin)
    mism = int((np.asarray(ref, np.float32).view(np.int32) != mine.view(np.int32)).sum())
    return [nn], OpCert(node.name, node.op, "lut (float32 bit patterns)", int(x.size), mism, {"table": tab})


def _clamp(ctx, node):
    dt = node.attrs.get("dtype", _dtype(ctx.p, node.inputs[0]))
    tv, ts = L.unary_tables(node, ctx.profile, dt)
    qmin, qmax = QRANGE[dt]
    v = np.arange(qmin, qmax + 1)
    lo, hi = int(tv.min()), int(tv.max())
    if ts is not None or not np.array_equal(tv, np.clip(v, lo, hi)):
        return _unary(ctx, node)
    quirk = bool(ctx.profile["engine"] == "qnnpack" and dt == "uint8" and node.attrs.get("channels_last")
                 and node.op != "relu")
    nn = Node(node.name, "clamp_int", list(node.inputs), node.output,
              {"lo": lo, "hi": hi, "dtype": dt, "nhwc_as_nchw": quirk}, {}, node.source, node.torch_op)
    xlo, xhi = ctx.rng(node.inputs[0], dt)
    ctx.ranges[node.output] = (max(xlo, lo), min(xhi, hi))
    mine = ops.get("clamp_int")(v.astype(dt), lo=lo, hi=hi, dtype=dt)
    return [nn], OpCert(node.name, node.op, "exact integer (clamp)", int(v.size),
                        int((mine.astype(np.int64) != tv).sum()), {"lo": lo, "hi": hi})


def _unary(ctx, node):
    dt = node.attrs.get("dtype", _dtype(ctx.p, node.inputs[0]))
    tv, ts = L.unary_tables(node, ctx.profile, dt)
    qmin, qmax = QRANGE[dt]
    out_dt = _dtype(ctx.p, node.output)
    order = ctx.p.tensors[node.inputs[0]].layout if node.inputs[0] in ctx.p.tensors else None
    nn = Node(node.name, "lut", list(node.inputs), node.output,
              {"in_min": qmin, "order": order, "dtype": out_dt},
              {"table": tv, **({"scalar_table": ts} if ts is not None else {})}, node.source, node.torch_op)
    v = np.arange(qmin, qmax + 1).astype(dt)
    mism = 0
    fn = ops.get(node.op)
    for prof, tab in zip(L.path_profiles(ctx.profile), (tv, ts if ts is not None else tv)):
        ref = np.asarray(fn(v, **node.attrs, **node.consts, profile=prof)).astype(np.int64)
        mine = ops.get("lut")(v, table=tv, scalar_table=ts, in_min=qmin, dtype=out_dt, profile=prof)
        mism += int((mine.astype(np.int64) != ref).sum())
    return [nn], OpCert(node.name, node.op, "lut" if ts is None else "lut (vector + scalar-tail tables)",
                        int(v.size) * (1 if ts is None else 2), mism, {"table": tv})


def _binary_lut(ctx, node, note=""):
    dt = node.attrs.get("dtype", _dtype(ctx.p, node.inputs[0]))
    tv, ts = L.binary_tables(node, ctx.profile, dt)
    qmin = QRANGE[dt][0]
    order = ctx.p.tensors[node.inputs[0]].layout if node.inputs[0] in ctx.p.tensors else None
    nn = Node(node.name, "lut2", list(node.inputs), node.output, {"in_min": qmin, "order": order, "dtype": dt},
              {"table": tv, **({"scalar_table": ts} if ts is not None else {})}, node.source, node.torch_op)
    v = np.arange(qmin, QRANGE[dt][1] + 1)
    a = np.repeat(v, v.size).astype(dt)
    b = np.tile(v, v.size).astype(dt)
    mism = 0
    fn = ops.get(node.op)
    for prof in L.path_profiles(ctx.profile):
        ref = np.asarray(fn(a, b, **node.attrs, **node.consts, profile=prof)).astype(np.int64)
        mine = ops.get("lut2")(a, b, table=tv, scalar_table=ts, in_min=qmin, dtype=dt, profile=prof)
        mism += int((mine.astype(np.int64) != ref).sum())
    return [nn], OpCert(node.name, node.op, ("lut2" if ts is None else "lut2 (vector + scalar-tail tables)") + note,
                        int(a.size) * (1 if ts is None else 2), mism, {"table_entries": int(tv.size)})


def _mul(ctx, node):
    from ..numerics import elementwise as E

    a = node.attrs
    dt = a.get("dtype", "uint8")
    if dt != "uint8":
        return _binary_lut(ctx, node)
    qmin, qmax = QRANGE[dt]
    za, zb, zo = int(a["a_zero_point"]), int(a["b_zero_point"]), int(a["out_zero_point"])
    ends = [(x - za) * (y - zb) for x in (qmin, qmax) for y in (qmin, qmax)]
    lo, hi = np.array([min(ends)]), np.array([max(ends)])
    mult = np.float32(np.float32(np.float32(a["a_scale"]) * np.float32(a["b_scale"])) * E.inv_scale32(a["out_scale"]))

    def ref(c):  # ops/mul.py: requantize_from_int of the exact product (+ relu)
        out = E.requantize_from_int(c, mult, zo, dt)
        return np.maximum(out, zo) if a.get("relu") else out

    out_min = zo if a.get("relu") else qmin
    plan = plan_layer(ref, lo, hi, zo=zo, out_min=out_min, out_max=qmax, slope=float(mult), bits=ctx.bits,
                      rounding=ctx.rounding, allow_tables=ctx.allow_tables)
    attrs = {"a_zero_point": za, "b_zero_point": zb, "out_zero_point": zo, "out_min": out_min, "out_max": qmax,
             "rounding": ctx.rounding, "bits": ctx.bits, "dtype": dt}
    v = np.arange(qmin, qmax + 1)
    x = np.repeat(v, v.size).astype(dt)
    y = np.tile(v, v.size).astype(dt)
    want = np.asarray(ops.get("mul")(x, y, **a, profile=ctx.profile)).astype(np.int64)
    got = ops.get("mul_int")(x, y, **attrs, **_plan_params(plan)).astype(np.int64)
    mism = int((want != got).sum())
    if mism and ctx.allow_tables:
        return _binary_lut(ctx, node, " (integer formula failed)")
    nn = Node(node.name, "mul_int", list(node.inputs), node.output, attrs, _plan_params(plan), node.source,
              node.torch_op)
    return [nn], OpCert(node.name, node.op, "product + " + _method(plan), int(x.size), mism,
                        {"multiplier": plan.multiplier, "shift": plan.shift, "bias": plan.bias, "frac": plan.frac,
                         "use_table": plan.use_table, "rounding": ctx.rounding, "out_zero_point": zo},
                        {"product_range": [int(lo[0]), int(hi[0])]})


def _cat(ctx, node):
    a = node.attrs
    dt = a.get("dtype", "uint8")
    qmin, qmax = QRANGE[dt]
    v = np.arange(qmin, qmax + 1).astype(dt)
    tables, mism, dom = [], 0, 0
    fn = ops.get("cat")
    for s, z in zip(a["x_scales"], a["x_zero_points"]):
        if float(s) == float(a["out_scale"]) and int(z) == int(a["out_zero_point"]) and not a.get("relu"):
            tables.append(None)
            continue
        kw = dict(a, x_scales=[s], x_zero_points=[z], dim=0)
        tab = np.asarray(fn([v], **kw, profile=ctx.profile)).astype(np.int64)
        tables.append(tab.tolist())
        mine = ops.get("cat_int")([v], tables=[tab], in_min=qmin, dim=0, dtype=dt)
        mism += int((mine.astype(np.int64) != tab).sum())
        dom += v.size
    nn = Node(node.name, "cat_int", list(node.inputs), node.output,
              {"tables": tables, "in_min": qmin, "dim": a.get("dim", 0), "dtype": dt}, {}, node.source, node.torch_op)
    method = "exact integer (copy)" if dom == 0 else "lut per rescaled input"
    return [nn], OpCert(node.name, node.op, method, dom, mism)


def _batch_norm(ctx, node):
    dt = node.attrs.get("dtype", "uint8")
    if "running_var" in node.consts:
        C = np.asarray(node.consts["running_var"]).shape[0]
    else:  # another per-channel unary op (prelu): its input's channel count
        info = ctx.p.tensors.get(node.inputs[0])
        if info is None or info.shape is None or len(info.shape) < 2:
            raise Unsupported("input shape unknown (lower with an example input)")
        C = int(info.shape[1])
    tab = L.channel_table(node, ctx.profile, dt, C)
    qmin = QRANGE[dt][0]
    nn = Node(node.name, "lut_channel", list(node.inputs), node.output, {"in_min": qmin, "axis": 1, "dtype": dt},
              {"table": tab}, node.source, node.torch_op)
    v = np.broadcast_to(np.arange(qmin, QRANGE[dt][1] + 1), (1, C, tab.shape[1])).astype(dt)
    ref = np.asarray(ops.get(node.op)(np.ascontiguousarray(v), **node.attrs, **node.consts,
                                           profile=ctx.profile)).astype(np.int64)
    mine = ops.get("lut_channel")(v, table=tab, in_min=qmin, axis=1, dtype=dt).astype(np.int64)
    return [nn], OpCert(node.name, node.op, "lut per channel", int(v.size), int((ref != mine).sum()))


def _pool(ctx, node):
    from .pools import plan_pool

    info = ctx.p.tensors.get(node.inputs[0])
    if info is None or info.shape is None:
        raise Unsupported("input shape unknown (lower with an example input)")
    dt = _dtype(ctx.p, node.inputs[0])
    try:
        attrs, consts, plan, names = plan_pool(node, info.shape, ctx.profile, dt, ctx.bits, ctx.rounding,
                                               ctx.allow_tables)
    except NotImplementedError as e:
        raise Unsupported(str(e))
    nn = Node(node.name, "pool_int", list(node.inputs), node.output, attrs, consts, node.source, node.torch_op)
    return [nn], OpCert(node.name, node.op, "sum + " + _method(plan), plan.domain, int(plan.mismatches.sum()),
                        {"classes": names, "divisor": plan.divisor, "multiplier": plan.multiplier, "shift": plan.shift, "bias": plan.bias,
                         "frac": plan.frac, "use_table": plan.use_table, "rounding": ctx.rounding},
                        {"enumerated": plan.enumerated})


def _upsample(ctx, node, float_semantics=False):
    info = ctx.p.tensors.get(node.inputs[0])
    if info is None or info.shape is None or len(info.shape) != 4:
        raise Unsupported("upsample input shape unknown")
    dt = _dtype(ctx.p, node.inputs[0])
    N, C, H, W = info.shape
    t = {}
    ops.get("upsample_nearest")(np.zeros((1, C, H, W), dt), **node.attrs, **node.consts, profile=ctx.profile,
                                trace=t)
    oH, oW = t["output_size"]
    same = oH == H and oW == W
    cl = bool(node.attrs.get("channels_last", False))
    quirk = (not same) and (cl or C == 1 or H * W == 1) and not float_semantics and info.quantized
    nn = Node(node.name, "upsample_int", list(node.inputs), node.output,
              {"nhwc_quirk": bool(quirk), "channels_last": cl},
              {"h_index": np.asarray(t["src_h"], np.int64), "w_index": np.asarray(t["src_w"], np.int64)},
              node.source, node.torch_op)
    return [nn], OpCert(node.name, node.op, "exact integer (index copy)", 0, 0)


def _concat(ctx, node):
    """PT2E dq -> cat -> q with one quantization for all: a copy of the integers (cat_int, no tables)."""
    xs = node.inputs[0]
    dt = _dtype(ctx.p, node.output)
    nn = Node(node.name, "cat_int", list(node.inputs), node.output,
              {"tables": [None] * len(xs), "in_min": QRANGE[dt][0], "dim": node.attrs["dim"], "dtype": dt}, {},
              node.source, node.torch_op)
    return [nn], OpCert(node.name, node.op, "exact integer (copy)", 0, 0)


def _xnnpack_quantize(ctx, node):
    """XNNPACK's f32 -> qs8 Convert: _quantize's threshold table with int8 levels (ops/xnnpack.quantize)."""
    nn = copy.copy(node)
    nn.attrs = dict(node.attrs, dtype="int8")
    return _quantize(ctx, nn)


def _xnnpack_mean(ctx, node):
    """XNNPACK's qs8 global mean: pool_int (exact sum over H, W, then integer requantization),
    certified on every sum the input's int8 values can give."""
    from .pools import plan_xnnpack_mean

    info = ctx.p.tensors.get(node.inputs[0])
    if info is None or info.shape is None:
        raise Unsupported("input shape unknown (lower with an example input)")
    attrs, consts, plan = plan_xnnpack_mean(node, info.shape, ctx.bits, ctx.rounding, ctx.allow_tables)
    nn = Node(node.name, "pool_int", list(node.inputs), node.output, attrs, consts, node.source, node.torch_op)
    return [nn], OpCert(node.name, node.op, "sum + " + _method(plan), plan.domain, int(plan.mismatches.sum()),
                        {"multiplier": plan.multiplier, "shift": plan.shift, "bias": plan.bias, "frac": plan.frac,
                         "use_table": plan.use_table, "rounding": ctx.rounding},
                        {"enumerated": plan.enumerated})


# -- ONNX programs (ops/onnx_qlinear.py; arithmetic in integer/onnx_forms.py) ----------------------
def _nchw_perms(rank):
    """(channels-last -> channels-first, channels-first -> channels-last) permutations of a rank."""
    return [0, rank - 1] + list(range(1, rank - 1)), [0] + list(range(2, rank)) + [1]


def _nchw_wrap(ctx, node, inner, make):
    """A channels-last op as Transpose -> the op on NCHW (`make(x_nchw, out_nchw)` -> nodes) -> Transpose,
    the transposes being onnx_transpose nodes (exact data movement; the C export's gathers)."""
    x, out = node.inputs[0], node.output
    xi = ctx.p.tensors.get(x)
    oi = ctx.p.tensors.get(out)
    if xi is None or xi.shape is None or oi is None or oi.shape is None:
        raise Unsupported(f"a channels-last {inner} with unknown shapes (lower with a static input shape)")
    to_first, to_last = _nchw_perms(len(xi.shape))
    x_first, out_first = node.name + "__in_nchw", node.name + "__out_nchw"
    for name, info, perm in ((x_first, xi, to_first), (out_first, oi, to_first)):
        ctx.tensors[name] = TensorInfo(name, info.dtype, info.scale, info.zero_point,
                                       [int(info.shape[i]) for i in perm])
    t_in = Node(node.name + "__to_nchw", "onnx_transpose", [x], x_first, {"perm": to_first}, {}, node.source,
                node.torch_op)
    t_out = Node(node.name + "__to_nhwc", "onnx_transpose", [out_first], out, {"perm": to_last}, {}, node.source,
                 node.torch_op)
    return [t_in] + make(x_first, out_first) + [t_out]


def _onnx_gemm(ctx, node):
    """QLinearConv / QGemm / QLinearMatMul: the exact integer sums (onnx_conv_acc / onnx_gemm_acc, the
    runtime's pair saturation included) and requantize_int, whose parameters are certified on every
    accumulator value the inputs can give against the runtime's requantization (MLAS: float32
    multiply, round half to even, zero point; the reference evaluator: float64)."""
    from ..ops.onnx_qlinear import saturating
    from . import onnx_forms as OF

    a, k = node.attrs, node.consts
    conv = node.op == "onnx_qlinear_conv"
    x = node.inputs[0]
    x_dt = _dtype(ctx.p, x)
    w = np.asarray(k["weight"] if conv else k["b"])
    rows = w.reshape(w.shape[0], -1) if conv else w.T
    zw = np.asarray(k["w_zero_point"] if conv else k["b_zero_point"], np.int64)
    zx = int(a["x_zero_point"] if conv else a["a_zero_point"])
    runtime = a.get("runtime", "mlas")
    sat = saturating(ctx.profile, x_dt, str(w.dtype), runtime)
    xlo, xhi = ctx.rng(x, x_dt)
    lo, hi = OF.acc_interval(rows, zw, xlo, xhi, zx, x_dt, sat)
    dtype = a["dtype"]
    out_min, out_max = QRANGE[dtype]
    zy = int(a["y_zero_point"])
    n = rows.shape[0]
    ref, mono, pivots = OF.gemm_requant(k.get("bias"), k["scale"], zy, dtype, runtime, n)
    slope = np.broadcast_to(np.asarray(k["scale"], np.float64).reshape(-1), (n,))
    plan = plan_layer(ref, lo, hi, zo=zy, out_min=out_min, out_max=out_max, slope=slope, bits=ctx.bits,
                      rounding=ctx.rounding, allow_tables=ctx.allow_tables, overflow_check=mono, pivots=pivots)
    channels_last = conv and bool(a.get("channels_last"))

    def make(xin, out):
        acc_name = out + "__acc"
        shape = None
        ctx.tensors[acc_name] = TensorInfo(acc_name, "int", shape=shape)
        if conv:
            acc = Node(node.name + "__acc", "onnx_conv_acc", [xin], acc_name,
                       {"x_zero_point": zx, "strides": list(a["strides"]), "pads": list(a["pads"]),
                        "dilations": list(a["dilations"]), "group": int(a["group"]), "channels_last": False,
                        "runtime": runtime}, {"weight": k["weight"], "w_zero_point": k["w_zero_point"]},
                       node.source, node.torch_op)
        else:
            acc = Node(node.name + "__acc", "onnx_gemm_acc", [xin], acc_name,
                       {"a_zero_point": zx, "runtime": runtime}, {"b": k["b"], "b_zero_point": k["b_zero_point"]},
                       node.source, node.torch_op)
        rq = Node(node.name, "requantize_int", [acc_name], out,
                  {"out_zero_point": zy, "out_min": out_min, "out_max": out_max, "rounding": ctx.rounding,
                   "bits": ctx.bits, "axis": 1 if conv else -1, "dtype": dtype}, _plan_params(plan), node.source,
                  node.torch_op)
        return [acc, rq]

    nodes = _nchw_wrap(ctx, node, "QLinearConv", make) if channels_last else make(x, node.output)
    mism = int(plan.mismatches.sum())
    details = {"accumulator": {"input_range": [int(xlo), int(xhi)], "lo": lo, "hi": hi,
                               "bits_needed": ACC.bits_for(lo.min(), hi.max()), "saturates": bool(sat),
                               "pairs_can_saturate": int(sat)},
               "backend": "MLAS" if runtime == "mlas" else "ONNX reference evaluator", "channels": int(n),
               "table_channels": int(plan.use_table.sum()), "enumerated": plan.enumerated,
               "monotone_checked": bool(np.all(plan.monotone_ok)),
               "breaking_values": {int(c): plan.bad[c] for c in range(n) if plan.bad[c]}}
    cert = requant_certificate(ctx, node, plan, lo, hi, mism, details, details["accumulator"]["bits_needed"], zy,
                               (out_min, out_max), "the accumulator plus bias may leave int32 at the interval ends")
    return nodes, cert


def _onnx_binary(ctx, node):
    """QLinearAdd / QLinearMul: a table over all 65,536 input pairs (lut2) made by the node's own kernel
    in the branch its operand shapes take (MLAS's scalar-operand branch rounds differently); a scalar
    constant operand makes it a 256-entry table (lut) of the other input."""
    from ..cpu import cpu_class
    from . import onnx_forms as OF

    a_name, b_name = node.inputs[0], node.inputs[1]
    ai, bi = ctx.p.tensors.get(a_name), ctx.p.tensors.get(b_name)
    if ai is None or bi is None or ai.shape is None or bi.shape is None:
        raise Unsupported("operand shapes unknown (lower with a static input shape)")
    dt = node.attrs["dtype"]
    # QLinearMul's kernel (qlmul.cpp) has no scalar branch; QLinearAdd's x86 kernel has (arm64's has not)
    branch = (OF.binary_branch(ai.shape, bi.shape, cpu_class(ctx.profile).mlas_fixed_point)
              if node.op == "onnx_qlinear_add" else "vector")
    fn = ops.get(node.op)
    table = OF.binary_table(fn, node.attrs, dt, branch, ctx.profile)
    qmin, qmax = QRANGE[dt]
    v = np.arange(qmin, qmax + 1).astype(dt)
    producers = ctx.p.producers()
    consts = {nm: producers[nm].consts["value"] for nm in (a_name, b_name)
              if nm in producers and producers[nm].op == "onnx_constant" and np.size(producers[nm].consts["value"]) == 1}
    out_shape = list(np.broadcast_shapes(tuple(ai.shape), tuple(bi.shape)))
    if len(consts) == 1:  # y = f(x, c): the row (or column) of the pair table at the constant
        c_name = next(iter(consts))
        c = int(np.asarray(consts[c_name]).reshape(-1)[0]) - qmin
        t2 = table.reshape(v.size, v.size)
        tab = t2[c, :] if c_name == a_name else t2[:, c]
        x_name = b_name if c_name == a_name else a_name
        xi = ctx.p.tensors[x_name]
        if list(xi.shape) != out_shape:
            raise Unsupported("a scalar constant operand broadcast over a tensor that is itself broadcast")
        nn = Node(node.name, "lut", [x_name], node.output, {"in_min": qmin, "order": None, "dtype": dt},
                  {"table": tab}, node.source, node.torch_op)
        xs = np.asarray(consts[c_name]).reshape([1] * len(xi.shape)).astype(dt)
        grid = v.reshape([-1] + [1] * (len(xi.shape) - 1))
        args = (xs, grid) if c_name == a_name else (grid, xs)
        want = np.asarray(fn(*args, **node.attrs, profile=ctx.profile)).astype(np.int64).reshape(-1)
        got = ops.get("lut")(v, table=tab, in_min=qmin, dtype=dt).astype(np.int64)
        return [nn], OpCert(node.name, node.op, "lut (constant operand folded)", int(v.size),
                            int((want != got).sum()), {"table": tab})
    first, second, tab = a_name, b_name, table
    if list(ai.shape) != out_shape:  # lut2 broadcasts its second input: swap, and transpose the table
        first, second = b_name, a_name
        tab = table.reshape(v.size, v.size).T.reshape(-1)
        if list(bi.shape) != out_shape:
            raise Unsupported("both operands are broadcast (qgolden's pair table needs one full-shape input)")
    nn = Node(node.name, "lut2", [first, second], node.output, {"in_min": qmin, "order": None, "dtype": dt},
              {"table": tab}, node.source, node.torch_op)
    # check: the kernel on every pair in this branch (a second, independent evaluation) against lut2
    x1, x2 = np.repeat(v, v.size), np.tile(v, v.size)
    got = ops.get("lut2")(x1, x2, table=tab, in_min=qmin, dtype=dt).astype(np.int64)
    want = tab if first == a_name else table.reshape(v.size, v.size).T.reshape(-1)
    mism = int((got != want).sum())
    return [nn], OpCert(node.name, node.op, f"lut2 ({branch} kernel branch)", int(x1.size), mism,
                        {"table_entries": int(tab.size)})


def _onnx_pool(ctx, node):
    """QLinearGlobalAveragePool: pool_int (the exact sum of x - zX over the spatial positions) with
    integer requantization certified on every sum against MLAS's (x86 float, arm64 fixed point)."""
    from ..cpu import cpu_class
    from . import onnx_forms as OF

    info = ctx.p.tensors.get(node.inputs[0])
    if info is None or info.shape is None:
        raise Unsupported("input shape unknown (lower with a static input shape)")
    a = node.attrs
    dt = a["dtype"]
    cl = bool(a.get("channels_last"))
    shape = list(info.shape)
    spatial = shape[1:-1] if cl else shape[2:]
    size = int(np.prod(spatial, dtype=np.int64))
    zx, zy = int(a["x_zero_point"]), int(a["y_zero_point"])
    fixed = cpu_class(ctx.profile).mlas_fixed_point
    ref1 = OF.gap_requant(a["x_scale"], zx, a["y_scale"], zy, size, dt, fixed)
    xlo, xhi = ctx.rng(node.inputs[0], _dtype(ctx.p, node.inputs[0]))
    lo, hi = np.array([size * (xlo - zx)], np.int64), np.array([size * (xhi - zx)], np.int64)
    out_min, out_max = QRANGE[dt]
    from ..numerics import mlas

    scale = float(mlas.global_average_pool_scale(a["x_scale"], a["y_scale"], size))
    plan = plan_layer(ref1, lo, hi, zo=zy, out_min=out_min, out_max=out_max, slope=np.array([scale]), bits=ctx.bits,
                      rounding=ctx.rounding, allow_tables=ctx.allow_tables, pivots=np.array([0.0]))
    rank = len(shape)

    def make(xin, out):
        attrs = dict(kind="mean", zero_point=zx, sum_zp=True, geom=dict(dims=list(range(2, rank)), keepdim=True),
                     out_zero_point=zy, out_min=out_min, out_max=out_max, rounding=ctx.rounding, bits=ctx.bits,
                     nhwc_quirk=False, unsqueezed=False, dtype=dt)
        consts = dict(cls=np.zeros((), np.int64), multiplier=plan.multiplier, shift=plan.shift, bias=plan.bias,
                      frac=plan.frac, use_table=plan.use_table, thresholds=plan.thresholds, divisor=plan.divisor,
                      div_offset=plan.div_offset, div_rounding=plan.div_rounding, div_zero_point=plan.div_zero_point)
        return [Node(node.name, "pool_int", [xin], out, attrs, consts, node.source, node.torch_op)]

    nodes = _nchw_wrap(ctx, node, "QLinearGlobalAveragePool", make) if cl else make(node.inputs[0], node.output)
    ctx.ranges[node.output] = (out_min, out_max)
    return nodes, OpCert(node.name, node.op, "sum + " + _method(plan), plan.domain, int(plan.mismatches.sum()),
                         {"multiplier": plan.multiplier, "shift": plan.shift, "bias": plan.bias, "frac": plan.frac,
                          "use_table": plan.use_table, "rounding": ctx.rounding}, {"enumerated": plan.enumerated})


def _onnx_lut(ctx, node):
    """QLinearSigmoid / QLinearLeakyRelu (onnx_lookup, indexed by the input's byte): the same table as
    a lut indexed by x - qmin, checked on every input value."""
    from . import onnx_forms as OF

    dt = _dtype(ctx.p, node.inputs[0])
    out_dt = _dtype(ctx.p, node.output)
    qmin, qmax = QRANGE[dt]
    tab = OF.byte_table_as_lut(node.consts["table"], dt)
    v = np.arange(qmin, qmax + 1).astype(dt)
    want = np.asarray(ops.get(node.op)(v, **node.attrs, **node.consts, profile=ctx.profile)).astype(np.int64)
    got = ops.get("lut")(v, table=tab, in_min=qmin, dtype=out_dt).astype(np.int64)
    nn = Node(node.name, "lut", list(node.inputs), node.output, {"in_min": qmin, "order": None, "dtype": out_dt},
              {"table": tab}, node.source, node.torch_op)
    return [nn], OpCert(node.name, node.op, "lut", int(v.size), int((want != got).sum()), {"table": tab})


def _onnx_cat(ctx, node):
    """QLinearConcat (a table per input, None where it copies) and Concat of equal qparams: cat_int,
    each table checked on every value of its input."""
    xs = node.inputs[0]
    dt = _dtype(ctx.p, node.output)
    qmin, qmax = QRANGE[dt]
    v = np.arange(qmin, qmax + 1).astype(dt)
    tables, mism, dom = [], 0, 0
    for i, x in enumerate(xs):
        if node.op != "onnx_qlinear_concat":
            tables.append(None)
            continue
        t = np.asarray(node.consts["tables"])[i]
        want = t[v.view(np.uint8)].astype(np.int64)
        if np.array_equal(want, v.astype(np.int64)):
            tables.append(None)
            continue
        from . import onnx_forms as OF

        tab = OF.byte_table_as_lut(t, dt)
        got = ops.get("cat_int")([v], tables=[tab], in_min=qmin, dim=0, dtype=dt).astype(np.int64)
        mism += int((got != want).sum())
        dom += v.size
        tables.append(tab.tolist())
    nn = Node(node.name, "cat_int", list(node.inputs), node.output,
              {"tables": tables, "in_min": qmin, "dim": int(node.attrs["axis"]), "dtype": dt}, {}, node.source,
              node.torch_op)
    return [nn], OpCert(node.name, node.op, "exact integer (copy)" if dom == 0 else "lut per rescaled input", dom,
                        mism)


def _onnx_nchw(ctx, node):
    """Integer data movement kept as it is; a channels-last max pool (NhwcMaxPool) becomes
    Transpose -> the NCHW max pool -> Transpose (the C export's window kernel is NCHW)."""
    if ctx.ranges.get(node.inputs[0]) is not None:
        ctx.ranges[node.output] = ctx.ranges[node.inputs[0]]
    if not node.attrs.get("channels_last"):
        return [node], OpCert(node.name, node.op, "exact integer (unchanged)", 0, 0)

    def make(xin, out):
        nn = copy.copy(node)
        nn.inputs, nn.output, nn.attrs = [xin], out, dict(node.attrs, channels_last=False)
        return [nn]

    return _nchw_wrap(ctx, node, "MaxPool", make), OpCert(node.name, node.op, "exact integer (NCHW + transposes)",
                                                          0, 0)


# ops a runtime computes in float32 (ops/qdq.py, ops/float_ops.py ...): no integer-only form
FLOAT_OPS = ops.where(integer="float")


def float_why(program, node) -> str:
    """Why `node` stays float: the float region the importer recorded for it (what, why), by name."""
    eng = program.profile.get("engine")
    reg = next((r for r in program.meta.get("float_regions", []) if r.get("name") in (node.name, node.source)), None)
    if reg is None:
        why = getattr(ops.spec(node.op), "float_why", "")
        return (f"float region, not integer: {node.op} ({node.torch_op or node.op}) runs in float32 on the {eng} "
                f"runtime" + (f": {why}" if why else ""))
    return f"float region, not integer: {reg['what']} runs in float32 on the {eng} runtime: {reg['why']}"


def _float_region(ctx, node):
    raise Unsupported(float_why(ctx.p, node))


# one handler per integer-only method of the op table (ops/spec.py INTEGER_METHODS)
METHODS = {"gemm": _linear_conv, "quantize": _quantize, "dequantize": _dequantize, "binary_lut": _binary_lut,
           "mul": _mul, "cat": _cat, "concat": _concat, "batch_norm": _batch_norm, "pool": _pool,
           "upsample": _upsample, "lut": _unary, "clamp": _clamp, "xnnpack_quantize": _xnnpack_quantize,
           "xnnpack_mean": _xnnpack_mean, "float": _float_region, "onnx_gemm": _onnx_gemm,
           "onnx_binary": _onnx_binary, "onnx_pool": _onnx_pool, "onnx_lut": _onnx_lut, "onnx_cat": _onnx_cat,
           "onnx_nchw": _onnx_nchw}
HANDLERS = {name: METHODS[spec.integer] for name, spec in ops.table().items() if spec.integer in METHODS}


MOVES = ops.where(moves_data=True)
DEQUANTIZE = {"dequantize", "qdq_dequantize", "onnx_dequantize"}
QUANTIZE = {"quantize", "qdq_quantize", "onnx_quantize"}
# float32 ops of one tensor that act on each value alone (PT2E float regions: dq -> hardswish -> q)
ELEMENTWISE = {"float_unary", "float_op", "onnx_float_unary"}
# float32 max pool (PT2E): the integer max pool, valid where the values so far are non-decreasing in q
FLOAT_POOLS = {"float_max_pool": "max_pool"}


def _per_tensor(node) -> bool:
    return node.attrs.get("axis") is None


def _fold_chain(d, first, consumers, outputs):
    """[nodes] from `first` (a reader of dequantize `d`) to the quantize that ends its chain of data
    movement, elementwise float ops and max pools (each the only reader of the one before), or None."""
    chain, cur, nxt = [], d, first
    while True:
        if nxt.op in QUANTIZE and _per_tensor(nxt):
            return chain
        if (nxt.op not in MOVES | ELEMENTWISE | set(FLOAT_POOLS) or not isinstance(nxt.inputs[0], str)
                or nxt.inputs[0] != cur.output
                or (nxt.op in ELEMENTWISE and len(nxt.inputs) != 1)):
            return None
        chain.append(nxt)
        cur = nxt
        cs = consumers.get(cur.output, [])
        if len(cs) != 1 or cur.output in outputs:
            return None
        nxt = cs[0]


def value_steps(d, chain):
    """The per-value functions of a folded chain, in order: (op, attrs) of the dequantize and of
    each elementwise float op (data movement and max pools move values, they do not change them)."""
    return [(d.op, dict(d.attrs))] + [(m.op, dict(m.attrs)) for m in chain if m.op in ELEMENTWISE]


def apply_steps(v, steps, profile):
    """The folded per-value function on the integers v: dequantize, then each elementwise op (a binary
    op with a scalar constant operand: attrs `constant`, `constant_first`)."""
    for op, attrs in steps:
        if "constant" in attrs:
            kw = {k: a for k, a in attrs.items() if k not in ("constant", "constant_first")}
            c = np.full(np.shape(v), attrs["constant"], np.float32)
            v = ops.get(op)(*((c, v) if attrs["constant_first"] else (v, c)), **kw, profile=profile)
            continue
        v = ops.get(op)(v, **attrs, profile=profile)
    return v


def _pools_commute(d, chain, qrange, profile) -> bool:
    """A max pool commutes with the per-value function before it iff that function is
    non-decreasing on every integer value (max(f(a), f(b)) = f(max(a, b)))."""
    v = np.arange(qrange[0], qrange[1] + 1).astype(NP_DTYPE.get(qrange[2], np.uint8))
    for i, m in enumerate(chain):
        if m.op in FLOAT_POOLS:
            f = np.asarray(apply_steps(v, value_steps(d, chain[:i]), profile), np.float32)
            if np.any(np.diff(f) < 0) or np.any(np.isnan(f)):
                return False
    return True


def _readers(program):
    """tensor name -> [nodes reading it]; and the set of program outputs."""
    consumers = {}
    for n in program.nodes:
        for i in n.inputs:
            for r in (i if isinstance(i, list) else [i]):
                if isinstance(r, str):
                    consumers.setdefault(r, []).append(n)
    outputs = set()
    for o in program.outputs:
        outputs.update(o if isinstance(o, list) else [o])
    return consumers, outputs


def _quantized_dq(program, node) -> bool:
    """A per-tensor dequantize of a quantized tensor."""
    if node.op not in DEQUANTIZE or not node.inputs:
        return False
    info = program.tensors.get(node.inputs[0]) if isinstance(node.inputs[0], str) else None
    return node.op in DEQUANTIZE and _per_tensor(node) and info is not None and info.quantized


def fold_float_moves(program):
    """dequantize -> data movement / elementwise float ops / max pool in float32 (what FX and PT2E
    leave: flatten, upsample, hardswish, relu6...) -> quantize becomes data movement and max pools on
    the integers -> one 256-entry table quantize(f(dequantize(q))), f the elementwise ops in order.
    Exact: moving values commutes with any per-value function, a max pool with a non-decreasing one
    (checked on every value). PT2E's float cat of dequantized tensors (-> elementwise ops, data
    movement) -> quantize becomes a cat of the integers with one such table per input. A dequantize
    left without readers is dropped. Returns a new Program (same names for the quantize outputs,
    fresh names for the moved integer tensors)."""
    consumers, outputs = _readers(program)
    drop, replace = set(), {}
    tensors = dict(program.tensors)
    producers = program.producers()
    for d in program.nodes:
        if not _quantized_dq(program, d) or d.output in outputs:
            continue
        sinfo = program.tensors[d.inputs[0]]
        qr = QRANGE[sinfo.dtype] + (sinfo.dtype,)
        for first in consumers.get(d.output, []):
            chain = _fold_chain(d, first, consumers, outputs)
            if chain is None or not _pools_commute(d, chain, qr, program.profile):
                continue
            q = consumers[(chain[-1] if chain else d).output][0]
            new_nodes, prev = [], d.inputs[0]
            for m in chain:
                if m.op in ELEMENTWISE:
                    continue
                name = m.output + "__q"
                nn = copy.copy(m)
                nn.inputs = [prev] + list(m.inputs[1:])
                nn.output = name
                if m.op == "upsample_nearest":
                    nn.attrs = dict(m.attrs, _float_semantics=True)
                if m.op in FLOAT_POOLS:
                    nn.op = FLOAT_POOLS[m.op]
                info = copy.copy(program.tensors.get(m.output) or TensorInfo(name, "float32"))
                info.name, info.dtype, info.scale, info.zero_point = name, sinfo.dtype, sinfo.scale, sinfo.zero_point
                tensors[name] = info
                new_nodes.append(nn)
                prev = name
            rq = Node(q.name, "_requant8", [prev], q.output,
                      {"steps": value_steps(d, chain), "q": (q.op, dict(q.attrs)), "in_dtype": sinfo.dtype}, {},
                      q.source, q.torch_op)
            drop.update(m.name for m in chain)
            replace[q.name] = new_nodes + [rq]
    for c in program.nodes:  # float cat of dequantized tensors -> elementwise ops, data movement -> quantize
        cs = consumers.get(c.output, [])
        ds = [producers.get(r) for r in c.inputs[0]] if c.op == "float_cat" else []
        if (not ds or len(cs) != 1 or c.output in outputs
                or not all(d is not None and _quantized_dq(program, d) for d in ds)):
            continue
        chain = _fold_chain(c, cs[0], consumers, outputs)
        if chain is None or any(m.op in FLOAT_POOLS for m in chain):
            continue
        q = consumers[(chain[-1] if chain else c).output][0]
        moves = [m for m in chain if m.op not in ELEMENTWISE]
        cat_out = q.output if not moves else c.output + "__q"
        qt = program.tensors[q.output]
        if moves:
            tensors[cat_out] = _like(cat_out, qt, program.tensors.get(c.output))
        replace[q.name] = [Node(q.name, "_cat8", [[d.inputs[0] for d in ds]], cat_out,
                                {"steps": [value_steps(d, chain) for d in ds], "q": (q.op, dict(q.attrs)),
                                 "in_dtypes": [program.tensors[d.inputs[0]].dtype for d in ds],
                                 "dim": c.attrs["dim"]}, {}, q.source, q.torch_op)] \
            + _integer_moves(moves, cat_out, q.output, qt, program, tensors)
        drop.update([c.name] + [m.name for m in chain])
    for c in program.nodes:  # ONNX: float Add/Sub/Mul/Div of two dequantized tensors -> elementwise ops -> quantize
        cs = consumers.get(c.output, [])
        ds = [producers.get(r) for r in c.inputs] if c.op == "onnx_float_binary" else []
        if len(ds) != 2 or len(cs) != 1 or c.output in outputs or c.name in drop:
            continue
        consts = [d is not None and d.op == "onnx_constant" and np.size(d.consts["value"]) == 1
                  and np.asarray(d.consts["value"]).dtype == np.float32 and not consumers.get(d.output, [None])[1:]
                  for d in ds]
        dqs = [d is not None and _quantized_dq(program, d) for d in ds]
        if sum(consts) == 1 and sum(dqs) == 1:  # one dequantized input and a scalar constant: a unary table
            chain = _fold_chain(c, cs[0], consumers, outputs)
            if chain is None or any(m.op in FLOAT_POOLS for m in chain):
                continue
            d, k = (ds[0], ds[1]) if dqs[0] else (ds[1], ds[0])
            q = consumers[(chain[-1] if chain else c).output][0]
            moves = [m for m in chain if m.op not in ELEMENTWISE]
            out = q.output if not moves else c.output + "__q"
            qt = program.tensors[q.output]
            if moves:
                tensors[out] = _like(out, qt, program.tensors.get(c.output))
            value = float(np.asarray(k.consts["value"]).reshape(-1)[0])
            step = ("onnx_float_binary", dict(c.attrs, constant=value, constant_first=bool(consts[0])))
            replace[q.name] = [Node(q.name, "_requant8", [d.inputs[0]], out,
                                    {"steps": value_steps(d, []) + [step] + [(m.op, dict(m.attrs)) for m in chain
                                                                             if m.op in ELEMENTWISE],
                                     "q": (q.op, dict(q.attrs)), "in_dtype": program.tensors[d.inputs[0]].dtype},
                                    {}, q.source, q.torch_op)] + _integer_moves(moves, out, q.output, qt, program,
                                                                                tensors)
            drop.update([c.name, k.name] + [m.name for m in chain])
            continue
        if not all(dqs):
            continue
        chain = _fold_chain(c, cs[0], consumers, outputs)
        if chain is None or any(m.op in FLOAT_POOLS for m in chain):
            continue
        q = consumers[(chain[-1] if chain else c).output][0]
        if q.name in replace:
            continue
        moves = [m for m in chain if m.op not in ELEMENTWISE]  # commute with the per-pair function
        pair_out = q.output if not moves else c.output + "__q"
        qt = program.tensors[q.output]
        if moves:
            tensors[pair_out] = _like(pair_out, qt, program.tensors.get(c.output))
        chain = [m for m in chain if m.op in ELEMENTWISE]
        replace[q.name] = [Node(q.name, "_pair8", [d.inputs[0] for d in ds], pair_out,
                                {"a_steps": value_steps(ds[0], []), "b_steps": value_steps(ds[1], []),
                                 "binary": (c.op, dict(c.attrs)), "steps": [(m.op, dict(m.attrs)) for m in chain],
                                 "q": (q.op, dict(q.attrs)),
                                 "in_dtypes": [program.tensors[d.inputs[0]].dtype for d in ds]}, {}, q.source,
                                q.torch_op)] + _integer_moves(moves, pair_out, q.output, qt, program, tensors)
        drop.update([c.name] + [m.name for m in chain + moves])
    return _drop_unread_dequantize(_spliced(program, replace, drop, tensors))


# float ops that keep the order of values (a max pool and a quantize commute with them)
NONDECREASING = {("float_unary", "relu"), ("float_unary", "hardtanh"), ("float_op", "relu"), ("float_op", "relu6"),
                 ("float_op", "hardtanh")}


def _io_shapes(program, node):
    """(input shape, output shape) of a node as the program recorded them (None where unknown)."""
    def shape(name):
        info = program.tensors.get(name) if isinstance(name, str) else None
        return None if info is None or info.shape is None else [int(v) for v in info.shape]

    return shape(node.inputs[0]), shape(node.output)


def fold_float_out_gemm(program):
    """x86-inductor: int8 conv/linear with a float32 output -> non-decreasing float ops (relu, hardtanh)
    and data movement / max pools -> quantize. Per channel, the quantized value is a non-decreasing
    function of the integer accumulator alone (acc * scale + bias, relu, quantize), so the chain becomes
    the accumulator and one integer requantization (certified like any other), then the data movement
    and max pools on the integers (a max pool commutes with a non-decreasing function). The node
    keeps the conv/linear's name; its attrs carry the float steps and the quantize ("_then")."""
    consumers, outputs = _readers(program)
    replace, drop, tensors = {}, set(), dict(program.tensors)
    for g in program.nodes:
        cs = consumers.get(g.output, [])
        if g.op not in ("linear", "conv") or g.attrs.get("out_dtype") != "float32" or len(cs) != 1:
            continue
        chain = _fold_chain(g, cs[0], consumers, outputs)
        if chain is None or g.output in outputs or any(
                m.op in ELEMENTWISE and (m.op, m.attrs.get("fn")) not in NONDECREASING for m in chain):
            continue
        q = consumers[(chain[-1] if chain else g).output][0]
        qa = q.attrs
        moves = [m for m in chain if m.op not in ELEMENTWISE]
        first_out = q.output if not moves else g.output + "__q"
        gq = Node(g.name, g.op, list(g.inputs), first_out,
                  dict(g.attrs, out_scale=float(qa["scale"]), out_zero_point=int(qa["zero_point"]),
                       out_dtype=qa.get("dtype", "uint8"), out_quant_min=qa.get("quant_min"),
                       out_quant_max=qa.get("quant_max"),
                       _then={"steps": [(m.op, dict(m.attrs)) for m in chain if m.op in ELEMENTWISE],
                              "q": (q.op, dict(qa)), "shapes": _io_shapes(program, g)}),
                  g.consts, g.source, g.torch_op + " -> " + " -> ".join(m.op for m in chain) + " -> quantize", g.names)
        qt = program.tensors[q.output]
        if moves:
            tensors[first_out] = _like(first_out, qt, program.tensors.get(g.output))
        replace[g.name] = [gq] + _integer_moves(moves, first_out, q.output, qt, program, tensors)
        drop.update([m.name for m in chain] + [q.name])
    return _spliced(program, replace, drop, tensors)


def fold_input_moves(program):
    """float input -> data movement (PT2E: flatten, reshape before the first quantize) -> quantize
    becomes quantize -> the same data movement on the integers (exact: moving values commutes with
    any per-value function), so the float input is read by the quantize alone. The last node
    writes the quantize's output name."""
    consumers, outputs = _readers(program)
    replace, drop, tensors = {}, set(), dict(program.tensors)
    for x in program.inputs:
        chain, cur = [], x
        while True:
            cs = consumers.get(cur, [])
            if len(cs) != 1 or cur in outputs or cs[0].inputs[0] != cur:
                chain = None
                break
            if cs[0].op in QUANTIZE and _per_tensor(cs[0]):
                q = cs[0]
                break
            if cs[0].op not in MOVES - {"upsample_nearest"}:
                chain = None
                break
            chain.append(cs[0])
            cur = cs[0].output
        if not chain:
            continue
        qt, qin = program.tensors[q.output], q.output + "__input"
        tensors[qin] = _like(qin, qt, program.tensors[x])
        replace[chain[0].name] = [Node(q.name, q.op, [x], qin, q.attrs, q.consts, q.source, q.torch_op, q.names)] \
            + _integer_moves(chain, qin, q.output, qt, program, tensors)
        drop.update([m.name for m in chain[1:]] + [q.name])
    return _spliced(program, replace, drop, tensors)


def _like(name, quant, shaped):
    """TensorInfo `name`: the quantization of `quant`, the shape of `shaped` (a float tensor it replaces)."""
    return TensorInfo(name, quant.dtype, quant.scale, quant.zero_point, getattr(shaped, "shape", None))


def _integer_moves(moves, src, last_out, quant, program, tensors):
    """Copies of the data movement / max pool nodes `moves` on integers: the first reads `src`, each
    writes '<its output>__q' (the last: `last_out`) with `quant`'s quantization (recorded in `tensors`)."""
    out, prev = [], src
    for i, m in enumerate(moves):
        nn = copy.copy(m)
        nn.op = FLOAT_POOLS.get(m.op, m.op)
        nn.inputs, nn.output = [prev] + list(m.inputs[1:]), last_out if i == len(moves) - 1 else m.output + "__q"
        if nn.output != last_out:
            tensors[nn.output] = _like(nn.output, quant, program.tensors.get(m.output))
        out.append(nn)
        prev = nn.output
    return out


def _spliced(program, replace, drop, tensors):
    """`program` without the nodes named in `drop`, each node named in `replace` replaced by its list."""
    if not replace:
        return program
    nodes = []
    for n in program.nodes:
        if n.name not in drop:
            nodes.extend(replace.get(n.name, [n]))
    return Program(program.inputs, program.outputs, nodes, tensors, program.profile, program.meta)


def merge_transposes(program):
    """onnx_transpose -> onnx_transpose (the first read by the second alone, not an output) becomes one
    transpose by the composed permutation p1[p2[j]], or an identity when that is the identity (what the
    NCHW forms of channels-last ops leave between two such ops). Exact: data movement composed."""
    consumers, outputs = _readers(program)
    producers = program.producers()
    drop, replace = set(), {}
    for t2 in program.nodes:
        t1 = producers.get(t2.inputs[0]) if t2.op == "onnx_transpose" and t2.inputs else None
        if (t1 is None or t1.op != "onnx_transpose" or t1.name in drop or t1.name in replace
                or t1.output in outputs or len(consumers.get(t1.output, [])) != 1):
            continue
        p1, p2 = list(t1.attrs["perm"]), list(t2.attrs["perm"])
        perm = [p1[j] for j in p2]
        nn = copy.copy(t2)
        nn.inputs = [t1.inputs[0]]
        if perm == list(range(len(perm))):
            nn.op, nn.attrs = "onnx_identity", {}
        else:
            nn.attrs = {"perm": perm}
        drop.add(t1.name)
        replace[t2.name] = [nn]
    return _spliced(program, replace, drop, dict(program.tensors))


def _drop_unread_dequantize(program):
    """The program without the dequantize nodes whose float output nothing reads any more."""
    consumers, outputs = _readers(program)
    keep = [n for n in program.nodes if not (n.op in DEQUANTIZE and n.output not in outputs
                                              and not consumers.get(n.output))]
    return Program(program.inputs, program.outputs, keep, program.tensors, program.profile, program.meta)


def _requant8(ctx, node):
    """The folded chain's table: quantize(f(dequantize(v))) for every integer v, by the engine's ops."""
    dt = node.attrs["in_dtype"]
    qmin, qmax = QRANGE[dt]
    v = np.arange(qmin, qmax + 1).astype(dt)
    q_op, q_attrs = node.attrs["q"]
    f = apply_steps(v, node.attrs["steps"], ctx.profile)
    tab = np.asarray(ops.get(q_op)(np.asarray(f, np.float32), **q_attrs, profile=ctx.profile)).astype(np.int64)
    out_dt = q_attrs.get("dtype", "uint8")
    nn = Node(node.name, "lut", list(node.inputs), node.output, {"in_min": qmin, "order": None, "dtype": out_dt},
              {"table": tab}, node.source, node.torch_op)
    what = " -> ".join(op if op not in ELEMENTWISE else a.get("fn", op) for op, a in node.attrs["steps"])
    return [nn], OpCert(node.name, q_op, f"lut ({what} -> quantize, folded; data movement on the integers)",
                        int(v.size), 0, {"table": tab})


def _cat8(ctx, node):
    """Float cat of dequantized tensors, elementwise float ops f, then quantize: cat_int with the table
    quantize(f(dequantize_i(v))) of each input (None where that is the identity: a copy); elementwise
    ops commute with the cat, data movement after it runs on the integers."""
    q_op, q_attrs = node.attrs["q"]
    tables, dom = [], 0
    for steps, dt in zip(node.attrs["steps"], node.attrs["in_dtypes"]):
        v = np.arange(QRANGE[dt][0], QRANGE[dt][1] + 1).astype(dt)
        f = np.asarray(apply_steps(v, steps, ctx.profile), np.float32)
        tab = np.asarray(ops.get(q_op)(f, **q_attrs, profile=ctx.profile)).astype(np.int64)
        same = dt == q_attrs.get("dtype") and np.array_equal(tab, v.astype(np.int64))
        tables.append(None if same else tab.tolist())
        dom += 0 if same else v.size
    dts = set(node.attrs["in_dtypes"])
    if len(dts) != 1:
        raise Unsupported("cat of tensors with different integer dtypes")
    out_dt = q_attrs.get("dtype", "uint8")
    nn = Node(node.name, "cat_int", list(node.inputs), node.output,
              {"tables": tables, "in_min": QRANGE[dts.pop()][0], "dim": node.attrs["dim"], "dtype": out_dt}, {},
              node.source, node.torch_op)
    return [nn], OpCert(node.name, q_op, "cat of the integers, lut per rescaled input (dequantize -> float cat "
                        "-> quantize, folded)", dom, 0)


def _pair8(ctx, node):
    """A float binary op of two dequantized tensors (then elementwise ops) folded with its quantize: lut2
    over every pair of input values, quantize(g(op(dequantize_a(u), dequantize_b(v)))) by the runtime's
    own ops (exact: each output element depends on its pair of inputs alone)."""
    a_dt, b_dt = node.attrs["in_dtypes"]
    if a_dt != b_dt:
        raise Unsupported("a float binary op of tensors with different integer dtypes")
    shapes = [getattr(ctx.p.tensors.get(r), "shape", None) for r in node.inputs]
    if any(sh is None for sh in shapes):
        raise Unsupported("operand shapes unknown (lower with a static input shape)")
    out_shape = list(np.broadcast_shapes(*(tuple(sh) for sh in shapes)))
    qmin, qmax = QRANGE[a_dt]
    v = np.arange(qmin, qmax + 1).astype(a_dt)
    fa = np.asarray(apply_steps(v, node.attrs["a_steps"], ctx.profile), np.float32)
    fb = np.asarray(apply_steps(v, node.attrs["b_steps"], ctx.profile), np.float32)
    b_op, b_attrs = node.attrs["binary"]
    f = ops.get(b_op)(fa[:, None], fb[None, :], **b_attrs, profile=ctx.profile)
    f = np.asarray(apply_steps(f, node.attrs["steps"], ctx.profile), np.float32)
    q_op, q_attrs = node.attrs["q"]
    tab = np.asarray(ops.get(q_op)(f, **q_attrs, profile=ctx.profile)).astype(np.int64)  # [a, b]
    first, second = node.inputs
    if list(shapes[0]) != out_shape:  # lut2 broadcasts its second input
        if list(shapes[1]) != out_shape:
            raise Unsupported("both operands are broadcast (qgolden's pair table needs one full-shape input)")
        first, second, tab = second, first, tab.T
    out_dt = q_attrs.get("dtype", "uint8")
    nn = Node(node.name, "lut2", [first, second], node.output, {"in_min": qmin, "order": None, "dtype": out_dt},
              {"table": np.ascontiguousarray(tab).reshape(-1)}, node.source, node.torch_op)
    what = " -> ".join([b_attrs.get("fn", b_op)] + [a.get("fn", op) for op, a in node.attrs["steps"]])
    return [nn], OpCert(node.name, q_op, f"lut2 (dequantize both -> {what} -> quantize, folded)", int(v.size) ** 2,
                        0, {"table_entries": int(tab.size)})


HANDLERS["_requant8"] = _requant8
HANDLERS["_pair8"] = _pair8
HANDLERS["_cat8"] = _cat8


def convert(program, multiplier_bits=32, rounding="half_up", acc_bits=None, allow_tables=True, observed=None,
            progress=None):
    """(integer-only Program, [OpCert]). Ops that cannot be made integer-only are kept as they are
    and certified False (method 'none: ...'). progress: optional progress(done, total, node name),
    called as each op starts and once at the end (a terminal's progress bar: qgolden/progress.py)."""
    if rounding in STANDARD_ROUNDINGS:
        rounding = "tflite"  # gemmlowp's and CMSIS-NN's output stages compute the same integers
    if rounding not in ROUNDINGS:
        raise ValueError(f"unknown rounding {rounding!r}; choose one of {', '.join(ROUNDINGS + STANDARD_ROUNDINGS[1:])}")
    if not 2 <= int(multiplier_bits) <= 32:
        raise ValueError("multiplier bits must be in 2..32")
    program = fold_input_moves(fold_float_moves(fold_float_out_gemm(program)))
    ctx = _Ctx(program, int(multiplier_bits), rounding, acc_bits, allow_tables, observed)
    nodes, certs = [], []
    for i, node in enumerate(program.nodes):
        if progress is not None:
            progress(i, len(program.nodes), node.name)
        t0 = time.perf_counter()
        if node.inputs and isinstance(node.inputs[0], str) and node.op in PASS_RANGE and node.inputs[0] in ctx.ranges:
            ctx.ranges[node.output] = ctx.ranges[node.inputs[0]]
        if node.op in KEEP:
            nodes.append(node)
            certs.append(OpCert(node.name, node.op, "exact integer (unchanged)", 0, 0))
            continue
        h = HANDLERS.get(node.op)
        if node.op == "upsample_nearest" and node.attrs.get("_float_semantics"):
            node = copy.copy(node)
            node.attrs = {k: v for k, v in node.attrs.items() if k != "_float_semantics"}
            h = lambda c, n: _upsample(c, n, float_semantics=True)  # noqa: E731
        try:
            if h is None and node.op in INTEGER_OPS:
                raise Unsupported("already integer-only: certify the model it was lowered from "
                                  "(or integer.recheck its parameters against it)")
            if h is None:
                raise Unsupported(f"no integer-only form for op {node.op}")
            new, cert = h(ctx, node)
        except Unsupported as e:
            nodes.append(node)
            certs.append(OpCert(node.name, node.op, f"none: {e}", 0, 1))
            continue
        cert.seconds = time.perf_counter() - t0
        nodes.extend(new)
        certs.append(cert)
    if progress is not None:
        progress(len(program.nodes), len(program.nodes), "")
    tensors = {k: copy.copy(v) for k, v in program.tensors.items()}
    tensors.update(ctx.tensors)
    meta = dict(program.meta)
    meta["integer_only"] = {"multiplier_bits": int(multiplier_bits), "rounding": rounding,
                            "acc_bits": acc_bits, "tables": bool(allow_tables)}
    out = Program(list(program.inputs), copy.deepcopy(program.outputs), nodes, tensors, dict(program.profile), meta)
    return merge_transposes(out), certs


def _why_not(cert) -> str:
    """One op's reason, for an error: node, op, and the op's own reason or its mismatch count."""
    if cert.method.startswith("none: "):
        return f"node {cert.name} (op {cert.op}): {cert.method[len('none: '):]}"
    return f"node {cert.name} (op {cert.op}): {cert.method}, {cert.mismatches} mismatches"


def to_integer_only(program, multiplier_bits=32, rounding="half_up", acc_bits=None, allow_tables=True,
                    accept_standard=False, progress=None):
    """The program with every op in integer-only form (see docs/integer-only.md). Raises ValueError
    if an op has no integer-only form or one of them is not certified under these constraints.

    accept_standard: with a standard rounding (tflite, gemmlowp, cmsis-nn), accept linear/conv layers
    whose only differences from the engine are the standard pipeline's own (integer/standard.py): the
    user asked for what a DSP computes. Their counts are kept in meta['integer_only']['standard_differences'].
    progress: as for convert."""
    prog, certs = convert(program, multiplier_bits, rounding, acc_bits, allow_tables, progress=progress)
    accepted = {}
    if accept_standard:
        for c in certs:
            st = (c.details or {}).get("standard")
            if not c.certified and st and "used" in st and c.mismatches == int(
                    np.asarray(st["mismatches"])[np.asarray(st["used"])].sum()):
                accepted[c.name] = int(c.mismatches)
        prog.meta["integer_only"]["standard_differences"] = accepted
    bad = [c for c in certs if not c.certified and c.name not in accepted]
    if bad:
        raise ValueError("not integer-only under these constraints: " + "; ".join(_why_not(c) for c in bad[:5])
                         + (f"; and {len(bad) - 5} more ops" if len(bad) > 5 else ""))
    return prog
