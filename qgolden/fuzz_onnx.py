"""Random quantized ONNX models (QOperator and QDQ, uint8 / int8, per-tensor / per-channel): lower,
run, verify against ONNX Runtime's CPU provider on this machine and, for models made of standard
ONNX ops only, against the ONNX reference evaluator.

    .venv/bin/python -m qgolden.fuzz_onnx --models 100 [--seed 0]

Every quantized tensor and every output is compared bit for bit. Scales are drawn so that
requantization hits exact .5 ties (power-of-two scale ratios) and clamps; spatial sizes and
channel counts are odd and even around the vector widths.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

OPS = ("conv", "dw", "add", "mul", "sigmoid", "leaky", "maxpool", "matmul_head", "gemm_head", "concat")


def _scale(rng):
    """A scale: half of them powers of two (ratios that are exact, so .5 ties happen)."""
    if rng.random() < 0.5:
        return float(2.0 ** -int(rng.integers(3, 9)))
    return float(np.float32(rng.uniform(0.002, 0.08)))


def _zp(rng, dtype):
    lo, hi = (0, 255) if dtype == "uint8" else (-128, 127)
    return int(rng.integers(lo + 20, hi - 20)) if rng.random() < 0.8 else (lo if dtype == "uint8" else 0)


class _Graph:
    """Collects nodes and initializers; `form` is 'qop' (QLinear* ops) or 'qdq' (DQ -> float op -> Q)."""

    def __init__(self, rng, form, act, wdt, per_channel):
        self.rng, self.form, self.act, self.wdt, self.per_channel = rng, form, act, wdt, per_channel
        self.nodes, self.inits, self.k, self.ms, self.std = [], [], 0, False, False

    def name(self, base):
        self.k += 1
        return f"{base}_{self.k}"

    def init(self, base, arr):
        from onnx import numpy_helper

        nm = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), nm))
        return nm

    def node(self, op, ins, domain="", **attrs):
        from onnx import helper

        out = self.name(op.lower())
        if domain:
            self.ms = True
        self.nodes.append(helper.make_node(op, ins, [out], name=self.name(op), domain=domain, **attrs))
        return out

    def qp(self, scale, zp, dtype):
        return self.init("s", np.array(scale, np.float32)), self.init("z", np.array(zp, dtype))

    def dq(self, t):
        return self.node("DequantizeLinear", [t["name"], *self.qp(t["scale"], t["zp"], t["dtype"])])

    def q(self, x, scale, zp, dtype):
        return {"name": self.node("QuantizeLinear", [x, *self.qp(scale, zp, dtype)]), "scale": scale, "zp": zp,
                "dtype": dtype, "shape": None}

    # -- ops -----------------------------------------------------------------------------------
    def conv(self, t, shape, c_out, k, stride, pad, dil, group):
        rng = self.rng
        c_in = shape[1]
        w_shape = (c_out, c_in // group, k, k)
        if self.wdt == "int8":
            w = rng.integers(-127, 128, size=w_shape).astype(np.int8)
            wz = np.zeros(c_out if self.per_channel else 1, np.int8)
        else:
            w = rng.integers(0, 256, size=w_shape).astype(np.uint8)
            wz = np.full(c_out if self.per_channel else 1, int(rng.integers(100, 156)), np.uint8)
        ws = np.array([_scale(rng) * 0.05 for _ in range(c_out if self.per_channel else 1)], np.float32)
        if not self.per_channel:
            ws, wz = ws.reshape(()), wz.reshape(())
        b = rng.integers(-3000, 3000, size=c_out).astype(np.int32)
        ys, yz = _scale(rng), _zp(rng, self.act)
        attrs = dict(kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4, dilations=[dil, dil], group=group)
        if self.form == "qop":
            out = self.node("QLinearConv", [t["name"], *self.qp(t["scale"], t["zp"], t["dtype"]), self.init("w", w),
                                            self.init("ws", ws), self.init("wz", wz), *self.qp(ys, yz, self.act),
                                            self.init("b", b)], **attrs)
            res = {"name": out, "scale": ys, "zp": yz, "dtype": self.act}
        else:
            xf = self.dq(t)
            wf = self.node("DequantizeLinear", [self.init("w", w), self.init("ws", ws), self.init("wz", wz)],
                           **({"axis": 0} if self.per_channel else {}))
            bs = (np.float32(t["scale"]) * ws).astype(np.float32)
            bf = self.node("DequantizeLinear", [self.init("b", b), self.init("bs", bs),
                                                self.init("bz", np.zeros(bs.shape, np.int32))],
                           **({"axis": 0} if self.per_channel else {}))
            res = self.q(self.node("Conv", [xf, wf, bf], **attrs), ys, yz, self.act)
        oh = (shape[2] + 2 * pad - dil * (k - 1) - 1) // stride + 1
        ow = (shape[3] + 2 * pad - dil * (k - 1) - 1) // stride + 1
        return res, [shape[0], c_out, oh, ow]

    def binary(self, op, a, b):
        ys, yz = _scale(self.rng), _zp(self.rng, self.act)
        if op == "add" and self.rng.random() < 0.3:  # output on twice the input scale: exact ties
            ys = a["scale"] * 2
        if self.form == "qop":
            out = self.node("QLinearAdd" if op == "add" else "QLinearMul",
                            [a["name"], *self.qp(a["scale"], a["zp"], a["dtype"]),
                             b["name"], *self.qp(b["scale"], b["zp"], b["dtype"]), *self.qp(ys, yz, self.act)],
                            domain="com.microsoft")
            return {"name": out, "scale": ys, "zp": yz, "dtype": self.act}
        return self.q(self.node("Add" if op == "add" else "Mul", [self.dq(a), self.dq(b)]), ys, yz, self.act)

    def unary(self, op, t):
        ys, yz = (1 / 256, 0 if self.act == "uint8" else -128) if op == "sigmoid" else \
            (_scale(self.rng), _zp(self.rng, self.act))
        alpha = float(np.float32(self.rng.choice([0.01, 0.1, 0.2])))
        if self.form == "qop":
            out = self.node("QLinearSigmoid" if op == "sigmoid" else "QLinearLeakyRelu",
                            [t["name"], *self.qp(t["scale"], t["zp"], t["dtype"]), *self.qp(ys, yz, self.act)],
                            domain="com.microsoft", **({} if op == "sigmoid" else {"alpha": alpha}))
            return {"name": out, "scale": ys, "zp": yz, "dtype": self.act}
        f = self.node("Sigmoid", [self.dq(t)]) if op == "sigmoid" else self.node("LeakyRelu", [self.dq(t)], alpha=alpha)
        return self.q(f, ys, yz, self.act)

    def maxpool(self, t, shape):
        k = int(self.rng.choice([2, 3]))
        s = int(self.rng.choice([1, 2]))
        p = int(self.rng.integers(0, k // 2 + 1))
        ceil = int(self.rng.random() < 0.3 and not self.std)  # the reference evaluator's ceil_mode sizes are off-spec
        out = self.node("MaxPool", [t["name"]], kernel_shape=[k, k], strides=[s, s], pads=[p] * 4, ceil_mode=ceil)
        rnd = (lambda v: -(-v // s)) if ceil else (lambda v: v // s)
        oh = rnd(shape[2] + 2 * p - k) + 1
        ow = rnd(shape[3] + 2 * p - k) + 1
        if ceil:  # ORT drops a last window that starts in the right padding
            oh -= (oh - 1) * s >= shape[2] + p
            ow -= (ow - 1) * s >= shape[3] + p
        return dict(t, name=out), [shape[0], shape[1], oh, ow]

    def head(self, t, shape, kind):
        """Global average pool (QOperator: QLinearGlobalAveragePool, contrib) or Flatten, then a
        QLinearMatMul / QGemm."""
        rng = self.rng
        if kind == "gemm_head" or (rng.random() < 0.5 and not (self.form == "qop" and kind == "matmul_head")):
            ys, yz = _scale(rng), _zp(rng, self.act)
            if self.form == "qop":
                g = self.node("QLinearGlobalAveragePool", [t["name"], *self.qp(t["scale"], t["zp"], t["dtype"]),
                                                           *self.qp(ys, yz, self.act)], domain="com.microsoft",
                              channels_last=0)
                t = {"name": g, "scale": ys, "zp": yz, "dtype": self.act}
            else:
                t = self.q(self.node("GlobalAveragePool", [self.dq(t)]), ys, yz, self.act)
            shape = [shape[0], shape[1], 1, 1]
        flat = self.node("Flatten", [t["name"]], axis=1)
        t = dict(t, name=flat)
        k = int(np.prod(shape[1:]))
        n_out = int(rng.choice([5, 7, 16, 17]))
        if self.wdt == "int8":
            w = rng.integers(-127, 128, size=(k, n_out)).astype(np.int8)
            wz = np.zeros(n_out if self.per_channel else 1, np.int8)
        else:
            w = rng.integers(0, 256, size=(k, n_out)).astype(np.uint8)
            wz = np.full(n_out if self.per_channel else 1, int(rng.integers(100, 156)), np.uint8)
        ws = np.array([_scale(rng) * 0.05 for _ in range(n_out if self.per_channel else 1)], np.float32)
        if not self.per_channel:
            ws, wz = ws.reshape(()), wz.reshape(())
        ys, yz = _scale(rng), _zp(rng, self.act)
        if self.form == "qop" and kind == "matmul_head":
            out = self.node("QLinearMatMul", [t["name"], *self.qp(t["scale"], t["zp"], t["dtype"]), self.init("w", w),
                                              self.init("ws", ws), self.init("wz", wz), *self.qp(ys, yz, self.act)])
        elif self.form == "qop":
            b = rng.integers(-3000, 3000, size=n_out).astype(np.int32)
            out = self.node("QGemm", [t["name"], *self.qp(t["scale"], t["zp"], t["dtype"]),
                                      self.init("w", np.ascontiguousarray(w.T)), self.init("ws", ws), self.init("wz", wz),
                                      self.init("b", b), *self.qp(ys, yz, self.act)], domain="com.microsoft", transB=1)
        else:
            wf = self.node("DequantizeLinear", [self.init("w", w), self.init("ws", ws), self.init("wz", wz)],
                           **({"axis": 1} if self.per_channel else {}))
            out = self.q(self.node("MatMul", [self.dq(t), wf]), ys, yz, self.act)["name"]
        return {"name": out, "scale": ys, "zp": yz, "dtype": self.act}, [shape[0], n_out]


def make_model(rng, form=None):
    """A random quantized model: (ModelProto, input array, description)."""
    from onnx import helper, TensorProto

    form = form or str(rng.choice(["qop", "qdq", "std"]))
    std = form == "std"  # QOperator with standard ONNX ops only: also run on the reference evaluator
    form = "qop" if std else form
    act = str(rng.choice(["uint8", "int8"])) if form == "qop" else "uint8"
    wdt = "int8" if (act == "int8" or rng.random() < 0.7) else "uint8"
    per_channel = bool(rng.random() < 0.5)
    g = _Graph(rng, form, act, wdt, per_channel)
    g.std = std
    n, c, h = 1 + int(rng.integers(0, 2)), int(rng.choice([3, 4, 8, 17])), int(rng.choice([5, 8, 9, 16]))
    shape = [n, c, h, h + int(rng.integers(0, 3))]
    in_shape = list(shape)
    xs, xz = _scale(rng), _zp(rng, act)
    t = g.q("x", xs, xz, act)
    kinds = []
    for _ in range(int(rng.integers(2, 6))):
        kind = str(rng.choice(["conv", "conv", "dw", "maxpool", "concat"] if std else
                              ["conv", "conv", "dw", "add", "mul", "sigmoid", "leaky", "maxpool", "concat"]))
        if form == "qdq" and kind == "concat":
            kind = "conv"
        if kind == "conv":
            k = int(rng.choice([1, 3]))
            t, shape = g.conv(t, shape, int(rng.choice([4, 8, 16, 19])), k, int(rng.choice([1, 1, 2])), k // 2,
                              int(rng.choice([1, 1, 2])) if k == 3 else 1, 1)
        elif kind == "dw":
            t, shape = g.conv(t, shape, shape[1], 3, 1, 1, 1, shape[1])
        elif kind in ("add", "mul"):
            other, _ = g.conv(t, shape, shape[1], 1, 1, 0, 1, 1)
            t = g.binary(kind, t, other)
        elif kind in ("sigmoid", "leaky"):
            t = g.unary(kind, t)
        elif kind == "maxpool" and min(shape[2:]) >= 3:
            t, shape = g.maxpool(t, shape)
        elif kind == "concat" and form == "qop" and not std:
            other, _ = g.conv(t, shape, shape[1], 1, 1, 0, 1, 1)
            ys, yz = (t["scale"], t["zp"]) if rng.random() < 0.3 else (_scale(rng), _zp(rng, act))
            cat = g.node("QLinearConcat", [*g.qp(ys, yz, act), t["name"], *g.qp(t["scale"], t["zp"], act),
                                           other["name"], *g.qp(other["scale"], other["zp"], act)],
                         domain="com.microsoft", axis=1)
            t = {"name": cat, "scale": ys, "zp": yz, "dtype": act}
            shape = [shape[0], shape[1] * 2] + shape[2:]
        elif kind == "concat":
            other, _ = g.conv(t, shape, shape[1], 1, 1, 0, 1, 1)
            # Concat of equal qparams: the branch is requantized onto t's (DQ -> Q)
            moved = g.q(g.dq(other), t["scale"], t["zp"], act)
            t2 = g.node("Concat", [t["name"], moved["name"]], axis=1)
            t = dict(t, name=t2)
            shape = [shape[0], shape[1] * 2] + shape[2:]
        else:
            continue
        kinds.append(kind)
    head = str(rng.choice(["matmul_head", "none"] if std else ["matmul_head", "gemm_head", "none"]))
    if head != "none":
        t, shape = g.head(t, shape, head)
        kinds.append(head)
    y = g.node("DequantizeLinear", [t["name"], *g.qp(t["scale"], t["zp"], t["dtype"])])
    graph = helper.make_graph(g.nodes, "fuzz", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info(y, TensorProto.FLOAT, shape)], g.inits)
    return graph, g, kinds, form, act, wdt, per_channel


def build(rng, form=None):
    """(model, x, description) for one random model."""
    from onnx import helper, TensorProto

    graph, g, kinds, form, act, wdt, per_channel = make_model(rng, form)
    opsets = [helper.make_opsetid("", 19)] + ([helper.make_opsetid("com.microsoft", 1)] if g.ms else [])
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 9
    dims = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    x = rng.normal(0, 1.5, size=dims).astype(np.float32)
    q = _input_scale(graph)
    if q is not None:  # a quarter of the inputs on exact quantization ties, some beyond the range
        ties = rng.random(dims) < 0.25
        x = np.where(ties, (np.round(x / q) + 0.5) * q, x).astype(np.float32)
        x.reshape(-1)[:3] = [1e3, -1e3, 0.0][: x.size]
    desc = f"{form} {act}/{wdt} {'per-channel' if per_channel else 'per-tensor'}: {' '.join(kinds)}"
    return model, x, desc, TensorProto


def _input_scale(graph):
    from onnx import numpy_helper

    inits = {t.name: t for t in graph.initializer}
    for n in graph.node:
        if n.op_type == "QuantizeLinear" and n.input[0] == "x":
            return float(numpy_helper.to_array(inits[n.input[1]]))
    return None


def standard_only(model) -> bool:
    """Only standard integer ops (no com.microsoft ops, no float op between DQ and Q): what the
    reference evaluator runs the way qgolden's onnx-reference engine does."""
    from .importers.onnx import FLOAT_KERNELS

    return all(not n.domain and n.op_type not in FLOAT_KERNELS for n in model.graph.node)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--verbose", action="store_true", help="also name the models a runtime refused")
    args = ap.parse_args(argv)
    from .api import verify
    from .importers import ImportErrorQ
    from .verifiers.onnx import RuntimeRefused

    rng = np.random.default_rng(args.seed)
    totals = {"models": 0, "elements": 0, "mismatches": 0, "reference_models": 0, "failed": 0, "refused": 0, "not_lowered": 0}
    t0 = time.time()
    for i in range(args.models):
        model, x, desc, _ = build(rng)
        engines = ["onnxruntime"] + (["onnx-reference"] if standard_only(model) else [])
        for eng in engines:
            try:
                rep = verify(model, x, engine=eng)
            except RuntimeRefused as e:
                totals["refused"] += 1
                if args.verbose:
                    print(f"model {i} [{eng}] {desc}: {e}")
                continue
            except ImportErrorQ as e:  # qgolden names what it does not lower for this runtime
                totals["not_lowered"] += 1
                if args.verbose:
                    print(f"model {i} [{eng}] {desc}: not lowered: {str(e).splitlines()[-1].strip()}")
                continue
            el = sum(l.elements for l in rep.layers) + sum(o["elements"] for o in rep.outputs)
            mm = sum(l.mismatches for l in rep.layers) + sum(o["mismatches"] for o in rep.outputs)
            totals["elements"] += el
            totals["mismatches"] += mm
            totals["reference_models"] += eng == "onnx-reference"
            if not rep.bit_exact:
                totals["failed"] += 1
                first = rep.first_mismatch
                print(f"model {i} [{eng}] {desc}: {mm} mismatches (first: {first.name if first else 'output'})")
        totals["models"] += 1
    print(f"{totals['models']} models ({totals['reference_models']} also on onnx-reference), "
          f"{totals['elements']} elements compared, {totals['mismatches']} mismatches, "
          f"{totals['failed']} runs not bit-exact, {totals['refused']} runs the runtime itself refused, "
          f"{totals['not_lowered']} runs qgolden does not lower (named with --verbose), "
          f"{time.time() - t0:.0f} s")
    return 0 if totals["mismatches"] == 0 and totals["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
