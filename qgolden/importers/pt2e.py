"""PT2E / torchao Q/DQ graphs (convert_pt2e output, ExportedProgram, .pt2 files) -> Program.

A converted PT2E graph is float aten ops between `quantized_decomposed.dequantize_*` and
`quantize_per_tensor` nodes. Which of them become integer ops depends on the runtime that
executes the graph (the engine profile):

    pt2e-reference  convert_pt2e(..., use_reference_representation=True): torchao rewrites
                    only some patterns to integers (int8 dq->linear->q with a per-tensor
                    weight, dq->add(+relu)->q, quantize, dequantize); everything else stays
                    float in PyTorch's own reference, and here.
    x86-inductor    torch.compile (freezing) of an X86InductorQuantizer model: dq->conv/linear
                    (+relu; conv also +hardtanh/hardswish, fused as oneDNN post-ops)->q become
                    oneDNN int8 kernels; means are Inductor's own C++ reductions.
    xnnpack         ExecuTorch's XNNPACK delegate (.pte): dq->conv/linear(+relu/hardtanh)->q and
                    dq->add(+relu)->q become XNNPACK qs8 nodes, every other quantize/dequantize an
                    XNNPACK Convert, float ops between them XNNPACK's f32 kernels (ops/xnnpack.py).

Data movement with unchanged quantization (flatten, reshape, max pool, cat of equal qparams)
is integer on every profile: dequantize and quantize with the same (scale, zp) give back the
same integers (|q - zp| <= 255, so the float round trip cannot move a value by half a step).

Program tensors keep the FX node names of the quantize nodes, so verify compares them with
PyTorch's by name. Every float region left between a dequantize and a quantize is listed in
program.meta["float_regions"] as {name, what, exact, why}.
"""
from __future__ import annotations

import os

import numpy as np

from ..ir import Node, Program, TensorInfo
from . import ImportErrorQ

os.environ.setdefault("TORCHAO_FORCE_SKIP_LOADING_SO_FILES", "1")

PT2E_ENGINES = ("pt2e-reference", "x86-inductor", "xnnpack")
XNN_CANNOT_RUN = "ExecuTorch's XNNPACK delegate cannot run this model"


def register_ops():
    """quantized_decomposed.* must be registered before a .pt2 is loaded or a graph is run."""
    import torch.ao.quantization.fx._decomposed  # noqa: F401
    try:
        import torchao.quantization.pt2e  # noqa: F401  (torchao.* ops)
    except Exception:
        pass


def _qd_name(target) -> str | None:
    s = str(target)
    if s.startswith("quantized_decomposed."):
        return s.split(".")[1]
    return None


def is_pt2e_graph(gm) -> bool:
    import torch

    if not isinstance(gm, torch.fx.GraphModule):
        return False
    return any(n.op == "call_function" and _qd_name(n.target) for n in gm.graph.nodes)


def to_graph_module(obj, where="model"):
    """A live GraphModule, an ExportedProgram, or a .pt2 path -> (GraphModule, where)."""
    import torch

    register_ops()
    if isinstance(obj, (str, os.PathLike)):
        where = str(obj)
        try:
            ep = torch.export.load(where)
        except Exception as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ImportErrorQ(f"{where}: the torch.export (.pt2) file could not be loaded: {msg}") from None
        obj = ep
    if isinstance(obj, torch.export.ExportedProgram):
        gm = obj.module()
        return gm, where
    if isinstance(obj, torch.fx.GraphModule):
        return obj, where
    raise ImportErrorQ(f"{where}: not a PT2E model ({type(obj).__name__})")


def _aten(target) -> str:
    s = str(target)
    if s.startswith("aten."):
        return s.split(".")[1]
    return s


UNARY_SAME_Q = {"flatten", "view", "reshape", "_unsafe_view", "squeeze", "unsqueeze", "permute",
                "transpose", "contiguous", "clone", "dropout", "max_pool2d", "max_pool1d", "identity"}


class _PT2E:
    def __init__(self, gm, profile, where, observed):
        self.gm = gm
        self.profile = profile
        self.engine = profile["engine"]
        self.where = where
        self.observed = observed or {}
        self.nodes, self.tensors, self.values = [], {}, {}
        self.dq, self.wdq = {}, {}
        self.done = set()
        self.inputs, self.outputs = [], []
        self.float_regions = []
        self.channels_last = set()  # x86-inductor: IR tensors stored channels-last (conv outputs and what keeps their layout)
        self.users = {n.name: list(n.users) for n in gm.graph.nodes}

    # -- helpers ---------------------------------------------------------------
    def fail(self, n, what, why):
        raise ImportErrorQ(f"{self.where}: node '{n.name}' ({what}): {why}")

    def attr(self, a):
        import torch
        from torch.fx import Node as FxNode

        if isinstance(a, FxNode) and a.op == "get_attr":
            obj = self.gm
            for p in a.target.split("."):
                obj = getattr(obj, p)
            return obj
        if isinstance(a, FxNode) and a.name in self.values and not isinstance(self.values[a.name], str):
            return self.values[a.name]
        if isinstance(a, torch.Tensor) and a.numel() == 1:
            return a.item()
        return a

    def emit(self, name, op, inputs, *, dtype, scale=None, zero_point=None, attrs=None, consts=None,
             torch_op="", source=None):
        self.nodes.append(Node(name=name, op=op, inputs=list(inputs), output=name, attrs=attrs or {},
                               consts=consts or {}, source=source or name, torch_op=torch_op))
        info = TensorInfo(name, dtype, None if scale is None else float(scale),
                          None if zero_point is None else int(zero_point))
        t = self.observed.get(name)
        if t is not None and hasattr(t, "shape"):
            info.shape = list(t.shape)
        self.tensors[name] = info
        return name

    def float_region(self, n, what, exact, why):
        self.float_regions.append({"name": n.name, "what": what, "exact": bool(exact), "why": why})

    def keep_layout(self, out, inputs):
        """Inductor keeps a channels-last layout through dq/q, elementwise ops, pools and cat; with
        one channels-last input the result is channels-last (conv + add is fused into the conv's
        output; measured for add of a channels-last and an NCHW tensor, either order)."""
        if any(isinstance(i, str) and i in self.channels_last for i in inputs):
            self.channels_last.add(out)

    def single_user(self, n):
        u = self.users.get(n.name, [])
        return u[0] if len(u) == 1 else None

    def follow_to_q(self, n, allow=("relu", "hardtanh")):
        """n -> (relu|hardtanh)? -> quantize_per_tensor: returns (activation node or None, q node) or None."""
        u = self.single_user(n)
        act = None
        if u is not None and u.op == "call_function" and _aten(u.target) in allow:
            act, u = u, self.single_user(u)
        if u is not None and u.op == "call_function" and _qd_name(u.target) == "quantize_per_tensor":
            return act, u
        return None

    def qparams(self, qn):
        a = [self.attr(x) for x in qn.args]
        return {"scale": float(a[1]), "zero_point": int(a[2]), "quant_min": int(a[3]), "quant_max": int(a[4]),
                "dtype": _dtype(a[5])}

    def float_of(self, a, n):
        """The IR float tensor for FX value `a`, materializing a lazy dequantize."""
        from torch.fx import Node as FxNode

        if not isinstance(a, FxNode):
            return a
        if a.name in self.dq and a.name not in self.values:
            src, qp = self.dq[a.name]
            self.emit(a.name, "qdq_dequantize", [src], dtype="float32",
                      attrs={"scale": qp["scale"], "zero_point": qp["zero_point"]},
                      torch_op="quantized_decomposed::dequantize_per_tensor")
            self.values[a.name] = a.name
            self.keep_layout(a.name, [src])
        if a.name in self.wdq:
            self.fail(n, "weight", "a dequantized weight used by something other than conv/linear")
        v = self.values.get(a.name)
        if not isinstance(v, str):
            self.fail(n, _aten(n.target), f"input '{a.name}' is not a tensor qgolden knows")
        return v

    def is_dq(self, a):
        from torch.fx import Node as FxNode

        return isinstance(a, FxNode) and a.name in self.dq

    # -- walk ------------------------------------------------------------------
    def run(self):
        for n in self.gm.graph.nodes:
            if n.name in self.done:
                continue
            if n.op == "placeholder":
                self.tensors[n.name] = TensorInfo(n.name, "float32")
                t = self.observed.get(n.name)
                if t is not None and hasattr(t, "shape"):
                    self.tensors[n.name].shape = list(t.shape)
                self.values[n.name] = n.name
                self.inputs.append(n.name)
            elif n.op == "get_attr":
                self.values[n.name] = self.attr(n)
            elif n.op == "call_module":
                if "guard" in str(n.target):
                    continue
                self.fail(n, str(n.target), "a submodule call inside an exported graph is not supported")
            elif n.op == "call_function":
                self.call(n)
            elif n.op == "output":
                outs = n.args[0]
                outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
                refs = [self.float_of(o, n) for o in outs]
                self.outputs = refs
                self.returns = "tuple" if isinstance(n.args[0], (list, tuple)) and len(refs) != 1 else "tensor"
                if isinstance(n.args[0], (list, tuple)) and len(refs) == 1:
                    self.returns = "tuple"
        meta = {"source": self.where, "returns": self.returns, "format": "pt2e",
                "float_regions": self.float_regions}
        return Program(self.inputs, self.outputs, self.nodes, self.tensors, dict(self.profile), meta=meta)

    def call(self, n):
        import torch

        qd = _qd_name(n.target)
        if qd is not None:
            return self.q_op(n, qd)
        if n.target is getattr(__import__("operator"), "getitem"):
            src = n.args[0]
            v = self.values.get(src.name)
            if isinstance(v, tuple):
                self.values[n.name] = v[n.args[1]]
                return
            self.fail(n, "getitem", "indexing a tensor result is not supported")
        name = _aten(n.target)
        if name in ("conv2d", "conv1d", "convolution", "linear"):
            return self.conv_linear(n, name)
        if name in ("add", "add_"):
            return self.add(n)
        if name in ("cat", "concat"):
            return self.cat(n)
        if name in UNARY_SAME_Q:
            return self.same_q(n, name)
        if name in ("hardswish", "hardswish_", "relu", "relu_", "hardtanh", "hardtanh_", "relu6", "relu6_"):
            return self.unary(n, name.rstrip("_"))
        if name == "adaptive_avg_pool2d":
            return self.adaptive(n)
        if name == "avg_pool2d" and self.engine == "xnnpack":
            return self.xnn_avg_pool(n)
        if name == "avg_pool2d":
            return self.avg_pool(n)
        if name == "mean":
            return self.mean(n)
        if name in ("_assert_tensor_metadata", "_assert_scalar", "sym_constrain_range_for_size"):
            return
        self.fail(n, str(n.target), "op not supported in a PT2E graph. Supported: conv1d/conv2d, linear, "
                  "relu, hardtanh, hardswish, add, cat, max_pool, avg_pool2d, adaptive_avg_pool2d, mean, flatten, "
                  "reshape/view, permute, transpose, squeeze/unsqueeze, between dequantize and quantize")

    def q_op(self, n, qd):
        import torch

        a = [self.attr(x) for x in n.args]
        if qd in ("quantize_per_tensor",):
            qp = self.qparams(n)
            x = self.float_of(n.args[0], n)
            if self.engine == "xnnpack":
                return self.xnn_quantize(n, x, qp)
            mode = "div" if (self.engine == "pt2e-reference" and qp["dtype"] == "int8") else "mul"
            self.emit(n.name, "qdq_quantize", [x], dtype=qp["dtype"], scale=qp["scale"],
                      zero_point=qp["zero_point"], attrs=dict(qp, mode=mode),
                      torch_op="quantized_decomposed::quantize_per_tensor")
            self.values[n.name] = n.name
            self.keep_layout(n.name, [x])
            return
        if qd == "dequantize_per_tensor":
            src = n.args[0]
            v = self.values.get(src.name) if hasattr(src, "name") else None
            if isinstance(v, torch.Tensor) or v is None:  # constant weight (per-tensor)
                w = self.attr(src) if v is None else v
                self.wdq[n.name] = {"weight": w, "scale": np.array([float(a[1])]), "zero_point": np.array([int(a[2])]),
                                    "per_channel": False}
                return
            qp = {"scale": float(a[1]), "zero_point": int(a[2]), "quant_min": int(a[3]), "quant_max": int(a[4]),
                  "dtype": _dtype(a[5])}
            self.dq[n.name] = (v, qp)
            return
        if qd == "dequantize_per_channel":
            w = self.attr(n.args[0])
            if not isinstance(w, torch.Tensor):
                self.fail(n, qd, "per-channel dequantize of an activation is not supported")
            scales = self.attr(n.args[1])
            zps = self.attr(n.args[2])
            if int(a[3]) != 0:
                self.fail(n, qd, f"per-channel weight quantized along axis {a[3]}, expected 0")
            self.wdq[n.name] = {"weight": w, "scale": scales.detach().double().numpy().reshape(-1),
                                "zero_point": zps.detach().numpy().astype(np.int64).reshape(-1), "per_channel": True}
            return
        self.fail(n, qd, "unsupported quantized_decomposed op (static per-tensor activations and "
                  "per-tensor/per-channel weights are supported)")

    # -- compute patterns --------------------------------------------------------
    def _weights(self, n, wnode):
        import torch

        d = self.wdq.get(getattr(wnode, "name", None))
        if d is None:
            self.fail(n, _aten(n.target), "the weight is not a dequantized int8 constant (not quantized?)")
        w = d["weight"]
        wq = w.detach().numpy().astype(np.int8)
        # float weight exactly as the graph's dequantize computes it
        if d["per_channel"]:
            wf = torch.ops.quantized_decomposed.dequantize_per_channel(
                w, torch.tensor(d["scale"]), torch.tensor(d["zero_point"]), 0, -128, 127, torch.int8)
        else:
            wf = torch.ops.quantized_decomposed.dequantize_per_tensor(
                w, float(d["scale"][0]), int(d["zero_point"][0]), -128, 127, torch.int8)
        return d, wq, wf.detach().numpy().astype(np.float32)

    def conv_linear(self, n, name):
        args = list(n.args)
        x, wnode = args[0], args[1]
        bias = self.attr(args[2]) if len(args) > 2 else n.kwargs.get("bias")
        bias = None if bias is None else bias.detach().float().numpy().astype(np.float32)
        d, wq, wf = self._weights(n, wnode)
        nd = wq.ndim - 2
        if name == "linear":
            geo = {}
        else:
            if name == "convolution":
                stride, padding, dilation, transposed, _, groups = args[3:9]
                if transposed:
                    self.fail(n, name, "transposed convolution is not supported")
            else:
                stride = args[3] if len(args) > 3 else [1] * nd
                padding = args[4] if len(args) > 4 else [0] * nd
                dilation = args[5] if len(args) > 5 else [1] * nd
                groups = args[6] if len(args) > 6 else 1
            if isinstance(padding, str):
                self.fail(n, name, f"padding={padding!r} is not supported; give explicit padding")
            geo = {"stride": _pair(stride, nd), "padding": _pair(padding, nd), "dilation": _pair(dilation, nd),
                   "groups": int(groups)}
        if self.engine == "x86-inductor" and name == "linear":
            decomposed = self.inductor_decomposed_linear(n, x, wq, bias, wf, d["per_channel"])
            if decomposed:
                return
        fq = self.follow_to_q(n, allow=("relu", "hardtanh", "relu6", "hardswish"))
        if self.is_dq(x) and fq is not None and self.integer_ok(n, name, d, fq):
            act, qn = fq
            return self.int_conv_linear(n, name, x, d, wq, bias, geo, act, qn)
        if (self.engine == "x86-inductor" and self.is_dq(x) and self.dq[x.name][1]["dtype"] == "uint8"
                and not np.any(d["zero_point"] != 0)):
            # Inductor lowers dq -> conv/linear with a float consumer to the int8 kernel with float output
            src, xq = self.dq[x.name]
            attrs = {"x_scale": xq["scale"], "x_zero_point": xq["zero_point"], "out_scale": 1.0,
                     "out_zero_point": 0, "relu": False, "per_channel": d["per_channel"],
                     "out_quant_min": None, "out_quant_max": None, "out_dtype": "float32"}
            attrs.update(geo)
            consts = {"weight": wq, "weight_scale": np.asarray(d["scale"], np.float64),
                      "weight_zero_point": np.asarray(d["zero_point"], np.int64), "bias": bias}
            hs = self.single_user(n) if name != "linear" else None
            fused = hs is not None and hs.op == "call_function" and _aten(hs.target).rstrip("_") == "hardswish"
            out = hs.name if fused else n.name
            if fused:  # Inductor fuses conv -> hardswish into the kernel (_register_qconv_unary_fusion)
                attrs["post_op"] = "hardswish"
                self.done.add(hs.name)
            self.emit(out, "linear" if name == "linear" else "conv", [src], dtype="float32", attrs=attrs,
                      consts=consts, torch_op=f"onednn int8 {name}" + (" + hardswish post-op" if fused else "")
                      + ", float32 output", source=n.name)
            self.values[out] = out
            if name != "linear":
                self.channels_last.add(out)
            self.float_region(n, f"{name} output", True, "int8 kernel with a float32 output "
                              "(acc * scale + bias in float32, modelled)"
                              + ("; fused hardswish as oneDNN computes it: x * clamp(x * f32(1/6) + 0.5, 0, 1)"
                                 if fused else ""))
            return
        # float region
        xin = self.float_of(x, n)
        what = f"float32 {name} on dequantized values"
        why = ("its float32 sum is the BLAS/oneDNN library's (order not reproducible bit for bit); "
               "qgolden sums exactly and rounds once")
        self.float_region(n, name, False, why + self.int_hint(n, name, d, fq))
        if name == "linear":
            self.emit(n.name, "float_linear", [xin], dtype="float32", consts={"weight": wf, "bias": bias},
                      torch_op="aten::linear")
        else:
            self.emit(n.name, "float_conv", [xin], dtype="float32", consts={"weight": wf, "bias": bias},
                      attrs=geo, torch_op=f"aten::{name}")
        self.values[n.name] = n.name

    def shape_of(self, a):
        """The shape of FX value `a`: from the example run, else from the export's fake tensor."""
        t = self.observed.get(getattr(a, "name", None))
        if t is None:
            t = getattr(a, "meta", {}).get("val")
        return None if t is None or not hasattr(t, "shape") else [int(v) for v in t.shape]

    def inductor_decomposed_linear(self, n, x, wq, bias, wf, per_channel) -> bool:
        """A linear that Inductor's CPU decomposition turns into float32 C++ (batch 1 and a small or
        single-output weight, ops/inductor_linear.py): the dequantized values, products and sum in
        its kernel's order, whatever quantizes its input or output. False when it does not apply."""
        from ..ops.inductor_linear import (decomposed_linear_serial, decomposed_linear_sum_order,
                                           inductor_decomposed_linear)
        from ..cpu import cpu_class

        shape = self.shape_of(x)
        if shape is None or len(shape) != 2:  # other ranks go through a view first: not modelled
            return False
        m, (nn_, k) = shape[0], wq.shape
        form = inductor_decomposed_linear(m, k, nn_, bias is not None)
        if form is None:
            return False
        xin = self.float_of(x, n)
        order = decomposed_linear_sum_order(k, m * nn_, nn_, per_channel)
        lanes = cpu_class(self.profile).inductor_lanes
        exact = decomposed_linear_serial(order, k, nn_, lanes, self.profile["num_threads"])
        how = {"product": "one product per output", "unrolled": "the K products added in order",
               "lanes_scalar_tail": f"the products summed in {lanes} float32 lanes, the last K % {lanes} in a "
               "scalar loop (its per-channel scales are inlined selects), then the two added",
               "lanes": f"the products summed in {lanes} float32 lanes, then the lanes reduced"}[order]
        self.float_region(n, "linear", exact, f"Inductor decomposes this {m}x{k} @ {k}x{nn_} linear into float32 "
                          f"C++ (not a oneDNN kernel): dequantized x times dequantized w, {how}, + bias"
                          + (": reproduced" if exact else "; its reduction is split across threads: not reproduced"))
        self.emit(n.name, "float_linear_inductor", [xin], dtype="float32", consts={"weight": wf, "bias": bias},
                  attrs={"sum_order": order}, torch_op="aten::linear (Inductor decomposition: float32 C++)")
        self.values[n.name] = n.name
        return True

    def integer_ok(self, n, name, d, fq):
        """Whether this profile's runtime computes dq -> conv/linear (+act) -> q with integers."""
        act, qn = fq
        xin = self.dq[n.args[0].name][1]
        if self.engine == "pt2e-reference":
            # torchao's _reference_quantized_linear pattern: int8, per-tensor weight, output straight to q
            return (name == "linear" and act is None and not d["per_channel"] and xin["dtype"] == "int8"
                    and self.qparams(qn)["dtype"] == "int8")
        if self.engine == "x86-inductor":
            # conv fuses relu, hardtanh (relu6) and hardswish (_register_qconv_unary_fusion); linear only relu
            fused = ("relu",) if name == "linear" else ("relu", "hardtanh", "relu6", "hardswish")
            return xin["dtype"] == "uint8" and self.qparams(qn)["dtype"] == "uint8" and \
                (act is None or _aten(act.target).rstrip("_") in fused)
        if self.engine == "xnnpack":  # qs8 / qs8_qc8w conv and fully connected, activation fused
            return xin["dtype"] == "int8" and self.qparams(qn)["dtype"] == "int8" and not np.any(d["zero_point"])
        return False

    def int_hint(self, n, name, d, fq):
        if self.engine == "pt2e-reference":
            return (" (torchao's reference representation rewrites only int8 dq->linear->q with a per-tensor "
                    "weight; it leaves conv, per-channel weights and fused activations in float)")
        return ""

    def int_conv_linear(self, n, name, x, d, wq, bias, geo, act, qn):
        src, xq = self.dq[x.name]
        qp = self.qparams(qn)
        attrs = {"x_scale": xq["scale"], "x_zero_point": xq["zero_point"], "out_scale": qp["scale"],
                 "out_zero_point": qp["zero_point"], "relu": act is not None, "per_channel": d["per_channel"],
                 "out_quant_min": qp["quant_min"], "out_quant_max": qp["quant_max"], "out_dtype": qp["dtype"]}
        attrs.update(geo)
        act_name = None if act is None else _aten(act.target).rstrip("_")
        if self.engine == "xnnpack":
            attrs["out_quant_min"], attrs["out_quant_max"] = self.xnn_bounds(act, qp)
        elif act_name not in (None, "relu"):
            attrs["relu"] = False
            attrs["post_op"], attrs["post_op_args"] = _post_op(act_name, [self.attr(v) for v in act.args[1:]])
        consts = {"weight": wq, "weight_scale": np.asarray(d["scale"], np.float64),
                  "weight_zero_point": np.asarray(d["zero_point"], np.int64), "bias": bias}
        op = "linear" if name == "linear" else "conv"
        self.emit(qn.name, op, [src], dtype=qp["dtype"], scale=qp["scale"], zero_point=qp["zero_point"],
                  attrs=attrs, consts=consts, torch_op=f"dq -> aten::{name}"
                  + (f" -> {_aten(act.target)}" if act is not None else "") + " -> q", source=n.name)
        self.values[qn.name] = qn.name
        self.done.update({qn.name} | ({act.name} if act is not None else set()))
        if op == "conv":
            self.channels_last.add(qn.name)

    def add(self, n):
        a, b = n.args[0], n.args[1]
        fq = self.follow_to_q(n, allow=("relu",))
        if (self.engine == "xnnpack" and fq is not None and self.is_dq(a) and self.is_dq(b)
                and len(n.args) == 2 and not n.kwargs):
            return self.xnn_add(n, a, b, *fq)
        if (self.engine == "pt2e-reference" and fq is not None and self.is_dq(a) and self.is_dq(b)
                and len(n.args) == 2 and not n.kwargs):
            act, qn = fq
            qa, qb, qo = self.dq[a.name][1], self.dq[b.name][1], self.qparams(qn)
            same = (qa["quant_min"], qa["quant_max"]) == (qb["quant_min"], qb["quant_max"]) == \
                (qo["quant_min"], qo["quant_max"])
            if all(q["dtype"] == "int8" for q in (qa, qb, qo)) and same:
                attrs = {"a_scale": qa["scale"], "a_zero_point": qa["zero_point"], "b_scale": qb["scale"],
                         "b_zero_point": qb["zero_point"], "out_scale": qo["scale"],
                         "out_zero_point": qo["zero_point"], "quant_min": qo["quant_min"],
                         "quant_max": qo["quant_max"], "relu": act is not None, "dtype": "int8"}
                self.emit(qn.name, "add_reference", [self.dq[a.name][0], self.dq[b.name][0]], dtype="int8",
                          scale=qo["scale"], zero_point=qo["zero_point"], attrs=attrs,
                          torch_op="dq -> aten::add" + (" -> relu" if act else "") + " -> q", source=n.name)
                self.values[qn.name] = qn.name
                self.done.update({qn.name} | ({act.name} if act is not None else set()))
                return
        ins = [self.float_of(v, n) for v in (a, b)]
        consts = [v for v in ins if not isinstance(v, str)]
        if len(n.args) > 2 or n.kwargs.get("alpha", 1) != 1:
            self.fail(n, "add", "alpha is not supported")
        self.float_region(n, "add", True, "float32 add of dequantized values (exact in float32, reproduced)")
        self.emit(n.name, "float_op", [v for v in ins if isinstance(v, str)], dtype="float32",
                  attrs={"fn": "add", "const": consts[0] if consts else None}, torch_op="aten::add")
        self.values[n.name] = n.name
        self.keep_layout(n.name, ins)

    def _same_q_chain(self, n, inputs):
        """dq(x, s, z) -> op -> q(s, z): the op commutes with the (monotone, exact) round trip."""
        fq = self.follow_to_q(n, allow=())
        if fq is None or not all(self.is_dq(i) for i in inputs):
            return None
        qo = self.qparams(fq[1])
        for i in inputs:
            qi = self.dq[i.name][1]
            if (qi["scale"], qi["zero_point"], qi["dtype"]) != (qo["scale"], qo["zero_point"], qo["dtype"]):
                return None
        return fq[1], qo

    def same_q(self, n, name):
        x = n.args[0]
        chain = self._same_q_chain(n, [x])
        rest = [self.attr(v) for v in n.args[1:]]
        if chain is None and not self.is_dq(x) and self.values.get(x.name) is not None:
            xin = self.float_of(x, n)
        elif chain is None:
            xin = self.float_of(x, n)
        else:
            qn, qo = chain
            xin = self.dq[x.name][0]
        op, attrs, inputs = self.shape_op(n, name, rest)
        exact = True
        if chain is None:
            if name.startswith("max_pool"):
                self.float_region(n, name, True, "max of float32 values (exact, reproduced)")
                op = "float_max_pool"
            out = n.name
            dt, s, z = "float32", None, None
        else:
            out, dt, s, z = qn.name, qo["dtype"], qo["scale"], qo["zero_point"]
            self.done.add(qn.name)
        self.emit(out, op, [xin, *inputs], dtype=dt, scale=s, zero_point=z, attrs=attrs,
                  torch_op=f"aten::{name}", source=n.name)
        self.values[out] = out
        if op in ("max_pool", "float_max_pool", "identity"):
            self.keep_layout(out, [xin])
        if out != n.name:
            self.values[n.name] = out  # never read: the q node is the only user

    def shape_op(self, n, name, rest):
        if name in ("flatten",):
            return "flatten", {"start_dim": int(rest[0]) if rest else 0,
                               "end_dim": int(rest[1]) if len(rest) > 1 else -1}, []
        if name in ("view", "reshape", "_unsafe_view"):
            shape = rest[0] if len(rest) == 1 and isinstance(rest[0], (list, tuple)) else rest
            return "reshape", {}, [int(s) for s in shape]
        if name == "permute":
            return "permute", {"dims": [int(d) for d in rest[0]]}, []
        if name == "transpose":
            return "transpose", {"dim0": int(rest[0]), "dim1": int(rest[1])}, []
        if name == "squeeze":
            dim = rest[0] if rest else None
            return "squeeze", {"dim": dim if dim is None or isinstance(dim, int) else list(dim)}, []
        if name == "unsqueeze":
            return "unsqueeze", {"dim": int(rest[0])}, []
        if name in ("contiguous", "clone", "dropout", "identity"):
            return "identity", {}, []
        if name.startswith("max_pool"):
            nd = 2 if name == "max_pool2d" else 1
            k = _pair(rest[0], nd)
            s = _pair(rest[1], nd) if len(rest) > 1 and rest[1] not in (None, [], ()) else k
            p = _pair(rest[2], nd) if len(rest) > 2 else [0] * nd
            dl = _pair(rest[3], nd) if len(rest) > 3 else [1] * nd
            ceil = bool(rest[4]) if len(rest) > 4 else False
            return "max_pool", {"kernel_size": k, "stride": s, "padding": p, "dilation": dl, "ceil_mode": ceil,
                                "channels_last": False}, []
        self.fail(n, name, "unsupported data movement op")

    def cat(self, n):
        xs = list(n.args[0])
        dim = int(n.args[1]) if len(n.args) > 1 else int(n.kwargs.get("dim", 0))
        chain = self._same_q_chain(n, xs)
        if chain is not None:
            qn, qo = chain
            self.emit(qn.name, "concat", [[self.dq[x.name][0] for x in xs]], dtype=qo["dtype"], scale=qo["scale"],
                      zero_point=qo["zero_point"], attrs={"dim": dim}, torch_op="dq -> aten::cat -> q",
                      source=n.name)
            self.keep_layout(qn.name, [self.dq[x.name][0] for x in xs])
            self.values[qn.name] = qn.name
            self.done.add(qn.name)
            return
        if self.engine == "xnnpack" and self.follow_to_q(n, allow=()) is not None and all(self.is_dq(x) for x in xs):
            # the partitioner hands it over, then XNNPACK's define_concatenate refuses it (measured:
            # "Failed to create cat2 node ... xnn_status_invalid_parameter"): the .pte does not load
            self.fail(n, "cat", f"{XNN_CANNOT_RUN}: its quantized concatenate needs every input quantized like "
                      "the output, here " + ", ".join(f"{x.name} (scale {self.dq[x.name][1]['scale']:.6g}, zero point "
                                                      f"{self.dq[x.name][1]['zero_point']})" for x in xs))
        ins = [self.float_of(x, n) for x in xs]
        self.float_region(n, "cat", True, "copy of float32 values with different quantizations (exact, reproduced)")
        self.emit(n.name, "float_cat", [ins], dtype="float32", attrs={"dim": dim}, torch_op="aten::cat")
        self.values[n.name] = n.name
        self.keep_layout(n.name, ins)

    def unary(self, n, name):
        if self.engine == "xnnpack" and name in ("relu", "hardtanh", "relu6"):
            chain = self._same_q_chain(n, [n.args[0]])
            if chain is not None:
                return self.xnn_clamp(n, chain[0], chain[1])
        x = self.float_of(n.args[0], n)
        if self.engine == "xnnpack" and name == "hardswish":
            self.float_region(n, name, True, "XNNPACK's f32 hardswish kernel (FMA3: fma(x, 1/6, 1/2) clamped "
                              "to [0, 1], times x), reproduced exactly")
            self.emit(n.name, "xnnpack_hardswish", [x], dtype="float32", torch_op="XNNPACK f32 hardswish")
            self.values[n.name] = n.name
            return
        attrs = {"fn": name}
        if name == "relu6":
            name, attrs = "hardtanh", {"fn": "hardtanh", "min_val": 0.0, "max_val": 6.0}
        elif name == "hardtanh":
            rest = [self.attr(v) for v in n.args[1:]]
            attrs.update(min_val=float(rest[0]) if rest else -1.0, max_val=float(rest[1]) if len(rest) > 1 else 1.0)
        self.float_region(n, name, True, f"float32 {name} between dequantize and quantize "
                          "(elementwise, each step correctly rounded: reproduced exactly)")
        self.emit(n.name, "float_unary", [x], dtype="float32", attrs=attrs, torch_op=f"aten::{name}")
        self.values[n.name] = n.name
        self.keep_layout(n.name, [x])

    def adaptive(self, n):
        size = self.attr(n.args[1])
        size = [int(size)] * 2 if isinstance(size, int) else [int(v) for v in size]
        if self.engine == "xnnpack" and size == [1, 1]:
            return self.xnn_global_mean(n, n.args[0])
        x = self.float_of(n.args[0], n)
        if self.engine == "xnnpack":
            return self.xnn_portable(n, x, "float_adaptive_avg_pool", {"output_size": size})
        if self.engine == "x86-inductor" and size == [1, 1]:  # Inductor lowers it to a mean over H, W
            return self.inductor_mean(n, x, [2, 3], True, "adaptive_avg_pool2d")
        if self.engine == "x86-inductor":
            self.float_region(n, "adaptive_avg_pool2d", False, "float32 window sums in the kernel Inductor "
                              "generates (order not modelled; qgolden sums in ATen's order)")
            self.emit(n.name, "float_adaptive_avg_pool", [x], dtype="float32", attrs={"output_size": size},
                      torch_op="aten::adaptive_avg_pool2d")
            self.values[n.name] = n.name
            return
        self.float_region(n, "adaptive_avg_pool2d", True, "float32 window sums in ATen's sequential order "
                          "(reproduced), not an integer average")
        self.emit(n.name, "float_adaptive_avg_pool", [x], dtype="float32", attrs={"output_size": size},
                  torch_op="aten::adaptive_avg_pool2d")
        self.values[n.name] = n.name

    def mean(self, n):
        dims = self.attr(n.args[1]) if len(n.args) > 1 else n.kwargs.get("dim")
        dims = [int(dims)] if isinstance(dims, int) else [int(v) for v in dims]
        keep = bool(n.args[2]) if len(n.args) > 2 else bool(n.kwargs.get("keepdim", False))
        if self.engine == "xnnpack" and sorted(d % 4 for d in dims) == [2, 3] and keep:
            return self.xnn_global_mean(n, n.args[0])
        x = self.float_of(n.args[0], n)
        if self.engine == "xnnpack":
            return self.xnn_portable(n, x, "float_mean", {"dim": dims, "keepdim": keep})
        if self.engine == "x86-inductor" and sorted(d % 4 for d in dims) == [2, 3]:
            return self.inductor_mean(n, x, dims, keep, "mean")
        inner = sorted(d % 4 for d in dims) in ([3], [2, 3])
        if self.engine == "x86-inductor":  # not over H, W: Inductor's kernel, whose order is not modelled here
            self.float_region(n, "mean", False, "float32 reduction in the kernel Inductor generates (order "
                              "modelled only over H, W; here ATen's order)")
        else:
            self.float_region(n, "mean", inner, "float32 reduction in ATen's cascade order (reproduced)" if inner
                              else "float32 reduction: ATen's summation order is reproduced only over the "
                              "innermost dims (here: exact sum, one rounding)")
        self.emit(n.name, "float_mean", [x], dtype="float32", attrs={"dim": dims, "keepdim": keep},
                  torch_op="aten::mean")
        self.values[n.name] = n.name

    # -- xnnpack (ExecuTorch's XNNPACK delegate; arithmetic in ops/xnnpack.py) -------------------
    def xnn_quantize(self, n, x, qp):
        """quantize_per_tensor -> XNNPACK Convert f32 -> qs8."""
        if qp["dtype"] != "int8":
            self.fail(n, "quantize_per_tensor", f"XNNPACK runs int8 activations, this one is {qp['dtype']}")
        self.emit(n.name, "xnnpack_quantize", [x], dtype="int8", scale=qp["scale"], zero_point=qp["zero_point"],
                  attrs={"scale": qp["scale"], "zero_point": qp["zero_point"]}, torch_op="XNNPACK convert f32->qs8")
        self.values[n.name] = n.name

    def xnn_bounds(self, act, qp):
        """The output clamp of a qs8 node with a fused relu / hardtanh (XNNPACK: xnn_qs8_quantize)."""
        from ..ops.xnnpack import activation_bound

        lo, hi = float("-inf"), float("inf")
        name = _aten(act.target).rstrip("_") if act is not None else None
        if name == "relu":
            lo = 0.0
        elif name == "relu6":
            lo, hi = 0.0, 6.0
        elif act is not None:  # hardtanh(min_val=-1, max_val=1)
            rest = [self.attr(v) for v in act.args[1:]]
            lo = float(rest[0]) if rest else -1.0
            hi = float(rest[1]) if len(rest) > 1 else 1.0
        lo_q = activation_bound(lo, qp["scale"], qp["zero_point"])
        hi_q = activation_bound(hi, qp["scale"], qp["zero_point"])
        return max(lo_q, qp["quant_min"]), min(hi_q, qp["quant_max"])

    def xnn_clamp(self, n, qn, qo):
        """dq -> relu / hardtanh -> q, one quantization: XNNPACK qs8 clamp (integer bounds)."""
        lo, hi = self.xnn_bounds(n, qo)
        self.emit(qn.name, "xnnpack_clamp", [self.dq[n.args[0].name][0]], dtype="int8", scale=qo["scale"],
                  zero_point=qo["zero_point"], attrs={"out_min": lo, "out_max": hi}, source=n.name,
                  torch_op=f"dq -> aten::{_aten(n.target)} -> q (XNNPACK qs8 clamp)")
        self.values[qn.name] = qn.name
        self.done.add(qn.name)

    def xnn_add(self, n, a, b, act, qn):
        """dq -> add (+relu) -> q: XNNPACK qs8 add (fixed-point multipliers)."""
        qa, qb, qo = self.dq[a.name][1], self.dq[b.name][1], self.qparams(qn)
        if not all(q["dtype"] == "int8" for q in (qa, qb, qo)):
            self.fail(n, "add", "XNNPACK's quantized add takes int8 inputs and output")
        lo, hi = self.xnn_bounds(act, qo)
        attrs = {"a_scale": qa["scale"], "a_zero_point": qa["zero_point"], "b_scale": qb["scale"],
                 "b_zero_point": qb["zero_point"], "out_scale": qo["scale"], "out_zero_point": qo["zero_point"],
                 "out_min": lo, "out_max": hi}
        self.emit(qn.name, "xnnpack_add", [self.dq[a.name][0], self.dq[b.name][0]], dtype="int8", scale=qo["scale"],
                  zero_point=qo["zero_point"], attrs=attrs, source=n.name,
                  torch_op="dq -> aten::add" + (" -> relu" if act is not None else "") + " -> q (XNNPACK qs8 add)")
        self.values[qn.name] = qn.name
        self.done.update({qn.name} | ({act.name} if act is not None else set()))

    def avg_pool_args(self, n):
        """aten.avg_pool2d(x, kernel_size, stride=kernel_size, padding=0, ceil_mode=False,
        count_include_pad=True, divisor_override=None) as keyword arguments."""
        names = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")
        given = dict(zip(names, [self.attr(v) for v in n.args[1:]]))
        given.update({k: self.attr(v) for k, v in n.kwargs.items() if k in names})
        k = _pair(given["kernel_size"], 2)
        s = given.get("stride")
        return {"kernel_size": k, "stride": _pair(s, 2) if s not in (None, [], ()) else k,
                "padding": _pair(given.get("padding", 0), 2), "ceil_mode": bool(given.get("ceil_mode", False)),
                "count_include_pad": bool(given.get("count_include_pad", True)),
                "divisor_override": None if given.get("divisor_override") is None else int(given["divisor_override"])}

    def avg_pool(self, n):
        """avg_pool2d between dequantize and quantize: float32 in every PT2E runtime (no quantizer or
        lowering turns it into an integer average): pt2e-reference runs ATen's kernel, x86-inductor
        the window sum it generates (ops/float_avg_pool.py)."""
        from ..ops.float_avg_pool import inductor_avg_pool_kernel

        x = self.float_of(n.args[0], n)
        attrs = self.avg_pool_args(n)
        if self.engine == "x86-inductor":
            t = self.observed.get(n.name)
            numel = int(np.prod(t.shape)) if t is not None and hasattr(t, "shape") else None
            order, exact, why = inductor_avg_pool_kernel(attrs["kernel_size"], attrs["stride"], numel)
        else:
            order, exact, why = "from_zero", True, ("ATen's float32 avg_pool2d: each window summed from 0 tap by "
                                                    "tap, then / count: reproduced")
        self.float_region(n, "avg_pool2d", exact, why)
        self.emit(n.name, "float_avg_pool", [x], dtype="float32", attrs=dict(attrs, sum_order=order),
                  torch_op="aten::avg_pool2d" + (" (Inductor C++)" if self.engine == "x86-inductor" else ""))
        self.values[n.name] = n.name
        self.keep_layout(n.name, [x])

    def xnn_avg_pool(self, n):
        """avg_pool2d (float between dq and q: XNNPACKQuantizer leaves it unannotated): XNNPACK's f32
        average pooling where ExecuTorch delegates it, otherwise its portable kernel (not modelled)."""
        x = self.float_of(n.args[0], n)
        a = self.avg_pool_args(n)
        k, s, p, ceil, include_pad, divisor = (a[v] for v in ("kernel_size", "stride", "padding", "ceil_mode",
                                                               "count_include_pad", "divisor_override"))
        if ceil or (include_pad and any(p)) or divisor not in (None, k[0] * k[1]):
            # executorch partition/config/generic_node_configs.py AvgPoolingConfig.check_constraints
            self.fail(n, "avg_pool2d", "ExecuTorch's XNNPACK partitioner leaves this avg_pool2d (ceil_mode, "
                      "count_include_pad with padding, or divisor_override) to its portable kernel, which "
                      "qgolden does not model: a float32 average, not integer")
        self.float_region(n, "avg_pool2d", True, "XNNPACK f32 average pooling: taps summed 9 at a time in its "
                          "kernel's order, times f32(1/count) (reproduced)")
        self.emit(n.name, "xnnpack_avg_pool", [x], dtype="float32", attrs={"kernel_size": k, "stride": s, "padding": p},
                  torch_op="XNNPACK f32 average pooling")
        self.values[n.name] = n.name

    def xnn_portable(self, n, x, op, attrs):
        """A float op ExecuTorch's XNNPACK partitioner does not take: its portable kernel runs it, in
        float32 with an order qgolden does not model (ATen's is used, flagged not exact)."""
        what = _aten(n.target)
        self.float_region(n, what, False, f"not delegated to XNNPACK: ExecuTorch's portable {what} kernel runs it "
                          "in float32, summation order not modelled (ATen's order used), not integer")
        self.emit(n.name, op, [x], dtype="float32", attrs=attrs, torch_op=f"ExecuTorch portable aten::{what}")
        self.values[n.name] = n.name

    def xnn_global_mean(self, n, xn):
        """adaptive_avg_pool2d(1) / mean over H, W: XNNPACK's global average pooling, qs8 when a
        dequantize feeds it and a quantize takes its output, f32 otherwise."""
        fq = self.follow_to_q(n, allow=())
        if self.is_dq(xn) and fq is not None and self.qparams(fq[1])["dtype"] == "int8":
            src, qi = self.dq[xn.name]
            qo = self.qparams(fq[1])
            attrs = {"in_scale": qi["scale"], "in_zero_point": qi["zero_point"], "out_scale": qo["scale"],
                     "out_zero_point": qo["zero_point"]}
            self.emit(fq[1].name, "xnnpack_quantized_global_mean", [src], dtype="int8", scale=qo["scale"],
                      zero_point=qo["zero_point"], attrs=attrs, source=n.name,
                      torch_op=f"dq -> aten::{_aten(n.target)} -> q (XNNPACK qs8 global average pooling)")
            self.values[fq[1].name] = fq[1].name
            self.done.add(fq[1].name)
            return
        x = self.float_of(xn, n)
        self.float_region(n, _aten(n.target), True, "XNNPACK f32 global average pooling: sequential float32 "
                          "sum over the pixels, times f32(1/(H*W)) (reproduced)")
        self.emit(n.name, "xnnpack_global_mean", [x], dtype="float32", torch_op="XNNPACK f32 global average pooling")
        self.values[n.name] = n.name

    def inductor_mean(self, n, x, dims, keep, what):
        """mean over H, W (or global average pool) compiled by Inductor into its own C++ reduction."""
        t = self.observed.get(n.args[0].name)
        shape = list(t.shape) if t is not None and hasattr(t, "shape") and len(t.shape) == 4 else None
        cl = x in self.channels_last
        exact, why = _inductor_mean_claim(shape, cl, self.profile)
        self.float_region(n, what, exact, why)
        self.emit(n.name, "float_mean_inductor", [x], dtype="float32",
                  attrs={"dim": [int(d) for d in dims], "keepdim": keep, "channels_last": cl},
                  torch_op=f"aten::{what} (Inductor C++ reduction)")
        self.values[n.name] = n.name


def _inductor_mean_claim(shape, channels_last, profile):
    """(exact, why) of a float region that Inductor's generated kernel sums (ops/inductor_mean.py)."""
    from ..ops.inductor_mean import inductor_mean_serial

    layout = "channels-last: each channel summed over H*W in memory order" if channels_last else \
        "NCHW: H*W in 8 float lanes, then the lanes reduced"
    if shape is None:
        return False, "Inductor's float32 sum over H*W; its order depends on the shape, unknown without example inputs"
    if inductor_mean_serial(shape, channels_last, profile["isa"], profile["num_threads"]):
        return True, f"Inductor's float32 sum ({layout}), then / (H*W): reproduced"
    return False, (f"Inductor splits this float32 sum (over 4096 terms: cascade sum, or a reduction parallel over "
                   f"{profile['num_threads']} threads): not reproduced; qgolden sums serially ({layout})")


def _post_op(name, args):
    """An activation fused into a oneDNN conv: (post_op, post_op_args) for ops.conv."""
    if name == "relu6":
        return "hardtanh", [0.0, 6.0]
    if name == "hardtanh":
        return "hardtanh", [float(args[0]) if args else -1.0, float(args[1]) if len(args) > 1 else 1.0]
    return name, None


def _dtype(d) -> str:
    s = str(d)
    return {"torch.int8": "int8", "torch.uint8": "uint8", "torch.int32": "int32"}.get(s, s)


def _pair(v, n):
    return [int(x) for x in v] * (n if len(v) == 1 and n > 1 else 1) if isinstance(v, (list, tuple)) else [int(v)] * n


def lower_pt2e(gm, profile, where="model", observed=None) -> Program:
    register_ops()
    L = _PT2E(gm, profile, where, observed)
    return L.run()
