"""ONNX models (QDQ and QOperator) -> a qgolden Program, for ONNX Runtime or the ONNX reference evaluator.

An `.onnx` file is data: `onnx.load` runs no code, and `onnx.checker.check_model` runs first.

engine "onnxruntime": the graph ORT actually runs. ORT itself applies its graph optimizations at
the chosen level (QDQ groups fused into QLinearConv / QGemm / QLinearAdd ... at `extended` and
`all`; NHWC QLinearConv with Transposes at `all`) and writes the optimized graph
(SessionOptions.optimized_model_filepath); that graph is imported, node by node.
engine "onnx-reference": the model's own graph, as onnx.reference.ReferenceEvaluator runs it.

Nodes with no integer form here (float Conv / Gemm / MatMul left between DequantizeLinear and
QuantizeLinear, ...) are reported all at once: file, node name, op type.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..ir import Node, Program, TensorInfo
from ..numerics import mlas
from ..numerics.profile import make_profile
from . import ImportErrorQ

ONNX_ENGINES = ("onnxruntime", "onnx-reference")
ORT_LEVELS = ("disable", "basic", "extended", "all")
MS = "com.microsoft"


def require_onnx():
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ImportErrorQ("reading .onnx models needs the onnx package: pip install 'qgolden[onnx]'") from None
    import onnx

    return onnx


def load_checked(path):
    """onnx.load (protobuf only, no code) then onnx.checker.check_model; ImportErrorQ on failure."""
    onnx = require_onnx()
    p = Path(path)
    if not p.is_file():
        raise ImportErrorQ(f"{path}: no such file")
    try:
        model = onnx.load(str(p))
    except Exception as e:  # protobuf DecodeError and friends
        raise ImportErrorQ(f"{path}: not a readable ONNX model ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        raise ImportErrorQ(f"{path}: onnx.checker rejects the model: {str(e).splitlines()[0]}") from None
    return model


def ort_session_options(level: str, optimized_path: str | None = None):
    import onnxruntime as ort

    if level not in ORT_LEVELS:
        raise ValueError(f"--ort-opt-level {level!r}: choose one of {', '.join(ORT_LEVELS)}")
    so = ort.SessionOptions()
    so.graph_optimization_level = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
                                   "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                   "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                                   "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    if optimized_path:
        so.optimized_model_filepath = optimized_path
    return so


def ort_optimized(model, level: str):
    """The graph ONNX Runtime's CPU provider runs for `model` at optimization `level`
    (ORT writes it out itself)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ImportErrorQ("--engine onnxruntime needs onnxruntime: pip install 'qgolden[onnx]'") from None
    import onnx

    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "optimized.onnx")
        try:
            ort.InferenceSession(model.SerializeToString(), ort_session_options(level, out),
                                 providers=["CPUExecutionProvider"])
        except Exception as e:
            raise ImportErrorQ(f"onnxruntime cannot load the model: {str(e).splitlines()[0]}") from None
        return onnx.load(out)


class _Builder:
    def __init__(self, model, where, runtime, profile):
        from onnx import numpy_helper

        self.model = model
        self.where = where
        self.runtime = runtime  # "mlas" | "reference"
        self.profile = profile
        self.consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        self.tensors: dict = {}
        self.nodes: list = []
        self.unsupported: list = []
        self.shapes = _value_shapes(model)

    # -- helpers -------------------------------------------------------------------------------
    def const(self, name, what):
        if not name:
            return None
        if name not in self.consts:
            raise _Unsupported(f"{what} ({name}) is not a constant")
        return self.consts[name]

    def qinfo(self, name):
        t = self.tensors.get(name)
        if t is None or not t.quantized:
            raise _Unsupported(f"input {name} is not a quantized tensor")
        return t

    def emit(self, onode, op, inputs, output, dtype, scale=None, zp=None, attrs=None, consts=None):
        self.nodes.append(Node(onode.name or f"{onode.op_type}_{len(self.nodes)}", op, list(inputs), output,
                               attrs or {}, consts or {}, source=onode.name, torch_op=_optype(onode)))
        shape = self.shapes.get(output)
        self.tensors[output] = TensorInfo(output, dtype, None if scale is None else float(scale),
                                          None if zp is None else int(zp), shape)

    def input_of(self, name):
        """A node input: a tensor computed in the graph, or a constant made into a node."""
        if name in self.tensors:
            return name
        if name in self.consts:
            v = self.consts[name]
            self.nodes.append(Node(f"const:{name}", "onnx_constant", [], name, {}, {"value": v}, source=name,
                                   torch_op="initializer"))
            self.tensors[name] = TensorInfo(name, str(v.dtype) if v.dtype != np.float32 else "float32",
                                            shape=list(v.shape))
            return name
        raise _Unsupported(f"input {name} is not computed by a supported node")

    # -- the walk ------------------------------------------------------------------------------
    def build(self):
        from onnx import helper

        g = self.model.graph
        inputs = []
        for vi in g.input:
            if vi.name in self.consts:
                continue
            et = vi.type.tensor_type.elem_type
            dt = np.dtype(helper.tensor_dtype_to_np_dtype(et)).name
            shape = [d.dim_value if d.HasField("dim_value") else 1 for d in vi.type.tensor_type.shape.dim]
            self.tensors[vi.name] = TensorInfo(vi.name, dt if dt in ("uint8", "int8") else "float32", shape=shape)
            inputs.append(vi.name)
        failed: set = set()
        for onode in g.node:
            if any(i in failed for i in onode.input):
                failed.update(onode.output)  # reads a node already reported: listed only if unsupported itself
                if not self.knows(onode):
                    self.unsupported.append(f"node {onode.name or '?'} ({_optype(onode)}): {self.why_not(onode)}")
                continue
            try:
                self.visit(onode)
            except _Unsupported as e:
                self.unsupported.append(f"node {onode.name or '?'} ({_optype(onode)}): {e}")
                failed.update(onode.output)
        if self.unsupported:
            raise ImportErrorQ(f"{self.where}: {len(self.unsupported)} node(s) qgolden cannot lower for engine "
                               f"{self.profile['engine']}:\n  " + "\n  ".join(self.unsupported))
        outputs = [o.name for o in g.output]
        meta = {"format": "onnx", "source": str(self.where), "returns": "tensor" if len(outputs) == 1 else "tuple"}
        return Program(inputs, outputs, self.nodes, self.tensors, dict(self.profile), meta=meta)

    def visit(self, n):
        from onnx import helper, numpy_helper

        op = n.op_type
        dom = n.domain or ""
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        ins = list(n.input)
        out = n.output[0] if n.output else ""
        if op == "Constant" and dom == "":
            self.consts[out] = numpy_helper.to_array(attrs["value"]) if "value" in attrs else _constant_value(attrs)
            return
        if all((not i) or i in self.consts for i in ins) and op in ("DequantizeLinear", "QuantizeLinear", "Identity",
                                                                     "Reshape", "Transpose", "Unsqueeze", "Squeeze"):
            self.consts[out] = _fold(op, ins, attrs, self.consts)
            return
        if not self.knows(n):
            raise _Unsupported(self.why_not(n))
        getattr(self, f"op_{op}")(n, ins, out, attrs)

    def knows(self, n) -> bool:
        dom = n.domain or ""
        if n.op_type == "Constant":
            return True
        if dom == MS:
            return n.op_type in MS_OPS
        return dom in ("", "ai.onnx") and hasattr(self, f"op_{n.op_type}")

    def why_not(self, n) -> str:
        if n.op_type in FLOAT_KERNELS and (n.domain or "") in ("", "ai.onnx"):
            return ("a float32 op between DequantizeLinear and QuantizeLinear"
                    + (" that ONNX Runtime did not fuse into an integer kernel at this optimization level"
                       if self.runtime == "mlas" else "")
                    + "; qgolden does not model this float32 kernel (its summation order or approximation) "
                      "(modelled: Relu, Clip, LeakyRelu, Sigmoid, Tanh, Add, Sub, Mul, Div, Reshape, Transpose, "
                      "Flatten, Concat)")
        return "qgolden has no integer form of this op"

    # -- Q / DQ --------------------------------------------------------------------------------
    def op_QuantizeLinear(self, n, ins, out, attrs):
        x = self.input_of(ins[0])
        scale = self.const(ins[1], "y_scale")
        zp = self.const(ins[2], "y_zero_point") if len(ins) > 2 and ins[2] else np.array(0, np.uint8)
        dtype = np.asarray(zp).dtype.name
        if dtype not in ("uint8", "int8"):
            raise _Unsupported(f"quantizes to {dtype}; qgolden supports uint8 and int8")
        if np.size(scale) != 1:
            raise _Unsupported("per-axis quantization of an activation")
        s0, z0 = float(np.float32(np.asarray(scale).reshape(-1)[0])), int(np.asarray(zp).reshape(-1)[0])
        self.emit(n, "onnx_quantize", [x], out, dtype, s0, z0, {"scale": s0, "zero_point": z0, "dtype": dtype})

    def op_DequantizeLinear(self, n, ins, out, attrs):
        t = self.qinfo(ins[0])
        scale = self.const(ins[1], "x_scale")
        zp = self.const(ins[2], "x_zero_point") if len(ins) > 2 and ins[2] else np.array(0, np.int64)
        if np.size(scale) != 1:
            raise _Unsupported("per-axis dequantization of an activation")
        self.emit(n, "onnx_dequantize", [t.name], out, "float32", attrs={
            "scale": float(np.float32(np.asarray(scale).reshape(-1)[0])), "zero_point": int(np.asarray(zp).reshape(-1)[0])})

    # -- QOperator conv / gemm ------------------------------------------------------------------
    def op_QLinearConv(self, n, ins, out, attrs):
        x = self.qinfo(ins[0])
        xs, xz = self.const(ins[1], "x_scale"), self.const(ins[2], "x_zero_point")
        w, ws, wz = self.const(ins[3], "w"), self.const(ins[4], "w_scale"), self.const(ins[5], "w_zero_point")
        ys, yz = self.const(ins[6], "y_scale"), self.const(ins[7], "y_zero_point")
        b = self.const(ins[8], "B") if len(ins) > 8 and ins[8] else None
        if w.ndim not in (3, 4):
            raise _Unsupported(f"{w.ndim - 2}-D convolution (qgolden: 1-D and 2-D)")
        if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise _Unsupported("auto_pad (give explicit pads)")
        k = w.ndim - 2
        if self.runtime == "mlas" and np.size(wz) > 1 and np.unique(wz).size > 1:
            raise _Unsupported("per-channel weight zero points that differ (ORT refuses them)")
        dtype = np.asarray(yz).dtype.name
        scale = mlas.output_scale(np.asarray(xs).reshape(-1)[0], np.asarray(ws).reshape(-1), np.asarray(ys).reshape(-1)[0])
        self.emit(n, "onnx_qlinear_conv", [x.name], out, dtype, float(np.asarray(ys).reshape(-1)[0]), int(np.asarray(yz).reshape(-1)[0]),
                  {"strides": list(attrs.get("strides", [1] * k)), "pads": list(attrs.get("pads", [0] * 2 * k)),
                   "dilations": list(attrs.get("dilations", [1] * k)), "group": int(attrs.get("group", 1)),
                   "channels_last": bool(attrs.get("channels_last", 0)), "dtype": dtype, "runtime": self.runtime,
                   "x_zero_point": int(np.asarray(xz).reshape(-1)[0]), "y_zero_point": int(np.asarray(yz).reshape(-1)[0])},
                  {"weight": w, "w_zero_point": np.asarray(wz).reshape(-1).astype(np.int64), "bias": b, "scale": scale})

    def _gemm(self, n, a_name, b, a_zp, b_zp, bias, scale, ys, yz):
        a = self.qinfo(a_name)
        if b.ndim != 2:
            raise _Unsupported(f"a {b.ndim}-D B (qgolden: a 2-D constant B)")
        dtype = np.asarray(yz).dtype.name
        self.emit(n, "onnx_qgemm", [a.name], n.output[0], dtype, float(np.asarray(ys).reshape(-1)[0]), int(np.asarray(yz).reshape(-1)[0]),
                  {"a_zero_point": int(np.asarray(a_zp).reshape(-1)[0]), "y_zero_point": int(np.asarray(yz).reshape(-1)[0]),
                   "dtype": dtype, "runtime": self.runtime},
                  {"b": b, "b_zero_point": np.asarray(b_zp).reshape(-1).astype(np.int64), "bias": bias,
                   "scale": np.asarray(scale, np.float32).reshape(-1)})

    def op_QGemm(self, n, ins, out, attrs):
        if len(ins) < 8 or not ins[7]:
            raise _Unsupported("QGemm with a float output (no y_scale)")
        if attrs.get("transA", 0):
            raise _Unsupported("transA=1")
        a_s, a_z = self.const(ins[1], "a_scale"), self.const(ins[2], "a_zero_point")
        b, b_s, b_z = self.const(ins[3], "B"), self.const(ins[4], "b_scale"), self.const(ins[5], "b_zero_point")
        c = self.const(ins[6], "C") if ins[6] else None
        ys, yz = self.const(ins[7], "y_scale"), self.const(ins[8], "y_zero_point")
        if attrs.get("transB", 0):
            b = np.ascontiguousarray(b.T)
        alpha = np.float32(attrs.get("alpha", 1.0))
        # quant_gemm.cc ComputeOutputScale: (alpha * a_scale * b_scale[i]) / y_scale, left to right
        scale = ((alpha * np.float32(np.asarray(a_s).reshape(-1)[0])) * np.asarray(b_s, np.float32).reshape(-1)) / np.float32(np.asarray(ys).reshape(-1)[0])
        self._gemm(n, ins[0], b, a_z, b_z, c, scale, ys, yz)

    def op_QLinearMatMul(self, n, ins, out, attrs):
        a_s, a_z = self.const(ins[1], "a_scale"), self.const(ins[2], "a_zero_point")
        b, b_s, b_z = self.const(ins[3], "b"), self.const(ins[4], "b_scale"), self.const(ins[5], "b_zero_point")
        ys, yz = self.const(ins[6], "y_scale"), self.const(ins[7], "y_zero_point")
        scale = mlas.output_scale(np.asarray(a_s).reshape(-1)[0], np.asarray(b_s).reshape(-1), np.asarray(ys).reshape(-1)[0])
        self._gemm(n, ins[0], b, a_z, b_z, None, scale, ys, yz)

    def op_MatMulInteger(self, n, ins, out, attrs):
        a = self.qinfo(ins[0]) if ins[0] in self.tensors and self.tensors[ins[0]].quantized else None
        if a is None:
            raise _Unsupported("input A is not a quantized tensor of the graph")
        b = self.const(ins[1], "B")
        a_z = self.const(ins[2], "a_zero_point") if len(ins) > 2 and ins[2] else np.array(0)
        b_z = self.const(ins[3], "b_zero_point") if len(ins) > 3 and ins[3] else np.array(0)
        self.emit(n, "onnx_integer_matmul", [a.name], out, "int32",
                  attrs={"a_zero_point": int(np.asarray(a_z).reshape(-1)[0])},
                  consts={"b": b, "b_zero_point": np.asarray(b_z).reshape(-1).astype(np.int64)})

    # -- QOperator elementwise ----------------------------------------------------------------
    def _binary(self, n, ins, op):
        a = self.input_of(ins[0])
        b = self.input_of(ins[3])
        for nm in (a, b):
            if self.tensors[nm].dtype not in ("uint8", "int8"):
                raise _Unsupported(f"input {nm} is not quantized")
        a_s, a_z = self.const(ins[1], "A_scale"), self.const(ins[2], "A_zero_point")
        b_s, b_z = self.const(ins[4], "B_scale"), self.const(ins[5], "B_zero_point")
        ys, yz = self.const(ins[6], "C_scale"), self.const(ins[7], "C_zero_point")
        dtype = np.asarray(yz).dtype.name
        sc = lambda v: float(np.float32(np.asarray(v).reshape(-1)[0]))  # noqa: E731
        zp = lambda v: int(np.asarray(v).reshape(-1)[0])  # noqa: E731
        self.emit(n, op, [a, b], n.output[0], dtype, sc(ys), zp(yz),
                  {"a_scale": sc(a_s), "a_zero_point": zp(a_z), "b_scale": sc(b_s), "b_zero_point": zp(b_z),
                   "y_scale": sc(ys), "y_zero_point": zp(yz), "dtype": dtype, "runtime": self.runtime})

    def op_QLinearAdd(self, n, ins, out, attrs):
        self._binary(n, ins, "onnx_qlinear_add")

    def op_QLinearMul(self, n, ins, out, attrs):
        self._binary(n, ins, "onnx_qlinear_mul")

    def _lookup(self, n, ins, out, fn, alpha=0.01):
        x = self.qinfo(ins[0])
        xs, xz = self.const(ins[1], "X_scale"), self.const(ins[2], "X_zero_point")
        ys, yz = self.const(ins[3], "Y_scale"), self.const(ins[4], "Y_zero_point")
        dtype = np.asarray(yz).dtype.name
        from ..cpu import cpu_class

        table = mlas.lookup_table(fn, np.asarray(xs).reshape(-1)[0], int(np.asarray(xz).reshape(-1)[0]),
                                  np.asarray(ys).reshape(-1)[0], int(np.asarray(yz).reshape(-1)[0]), dtype, alpha=alpha,
                                  clamp_one=cpu_class(self.profile).mlas_logistic_clamps_one)
        self.emit(n, "onnx_lookup", [x.name], out, dtype, float(np.asarray(ys).reshape(-1)[0]), int(np.asarray(yz).reshape(-1)[0]),
                  consts={"table": table})

    def op_QLinearSigmoid(self, n, ins, out, attrs):
        self._lookup(n, ins, out, "sigmoid")

    def op_QLinearLeakyRelu(self, n, ins, out, attrs):
        self._lookup(n, ins, out, "leaky_relu", float(np.float32(attrs.get("alpha", 0.01))))

    def op_QLinearGlobalAveragePool(self, n, ins, out, attrs):
        x = self.qinfo(ins[0])
        xs, xz = self.const(ins[1], "x_scale"), self.const(ins[2], "x_zero_point")
        ys, yz = self.const(ins[3], "y_scale"), self.const(ins[4], "y_zero_point")
        dtype = np.asarray(yz).dtype.name
        self.emit(n, "onnx_qlinear_global_average_pool", [x.name], out, dtype, float(np.asarray(ys).reshape(-1)[0]),
                  int(np.asarray(yz).reshape(-1)[0]),
                  {"x_scale": float(np.float32(np.asarray(xs).reshape(-1)[0])), "x_zero_point": int(np.asarray(xz).reshape(-1)[0]),
                   "y_scale": float(np.float32(np.asarray(ys).reshape(-1)[0])), "y_zero_point": int(np.asarray(yz).reshape(-1)[0]),
                   "channels_last": bool(attrs.get("channels_last", 0)), "dtype": dtype, "runtime": self.runtime})

    # -- integer data movement (qparams pass through) ------------------------------------------
    def _passthrough(self, n, op, x_name, attrs):
        t = self.tensors.get(x_name)
        if t is not None and t.dtype == "float32" and op != "onnx_max_pool":  # float data movement is exact
            self.emit(n, op, [t.name], n.output[0], "float32", attrs=attrs)
            return
        t = self.qinfo(x_name)
        self.emit(n, op, [t.name], n.output[0], t.dtype, t.scale, t.zero_point, attrs)

    # -- float32 ops ORT keeps between DQ and Q (ops/onnx_float.py) -----------------------------
    def _float_in(self, name):
        x = self.input_of(name)
        if self.tensors[x].dtype != "float32":
            raise _Unsupported(f"input {name} is {self.tensors[x].dtype}, not float32")
        return x

    def _float_unary(self, n, fn, **attrs):
        x = self._float_in(n.input[0])
        self.emit(n, "onnx_float_unary", [x], n.output[0], "float32",
                  attrs={"fn": fn, "runtime": self.runtime, **attrs})

    def op_Relu(self, n, ins, out, attrs):
        self._float_unary(n, "relu")

    def op_Sigmoid(self, n, ins, out, attrs):
        self._float_unary(n, "sigmoid")

    def op_Tanh(self, n, ins, out, attrs):
        self._float_unary(n, "tanh")

    def op_LeakyRelu(self, n, ins, out, attrs):
        self._float_unary(n, "leaky_relu", alpha=float(np.float32(attrs.get("alpha", 0.01))))

    def op_Clip(self, n, ins, out, attrs):
        lo = self.const(ins[1], "min") if len(ins) > 1 and ins[1] else attrs.get("min")
        hi = self.const(ins[2], "max") if len(ins) > 2 and ins[2] else attrs.get("max")
        self._float_unary(n, "clip", lo=None if lo is None else float(np.float32(np.asarray(lo).reshape(-1)[0])),
                          hi=None if hi is None else float(np.float32(np.asarray(hi).reshape(-1)[0])))

    def _float_binary(self, n, fn):
        a, b = self._float_in(n.input[0]), self._float_in(n.input[1])
        self.emit(n, "onnx_float_binary", [a, b], n.output[0], "float32", attrs={"fn": fn, "runtime": self.runtime})

    def op_Add(self, n, ins, out, attrs):
        self._float_binary(n, "add")

    def op_Sub(self, n, ins, out, attrs):
        self._float_binary(n, "sub")

    def op_Mul(self, n, ins, out, attrs):
        self._float_binary(n, "mul")

    def op_Div(self, n, ins, out, attrs):
        self._float_binary(n, "div")

    def op_MaxPool(self, n, ins, out, attrs):
        if len(n.output) > 1 and n.output[1]:
            raise _Unsupported("MaxPool with an Indices output")
        if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise _Unsupported("auto_pad (give explicit pads)")
        k = list(attrs["kernel_shape"])
        if self.runtime == "reference" and attrs.get("ceil_mode", 0):
            # measured: onnx 1.23's evaluator (_op_common_pool.py) gives other output sizes than the spec here
            raise _Unsupported("ceil_mode=1 on the reference evaluator (its pool output size is not the spec's)")
        self._passthrough(n, "onnx_max_pool", ins[0], {
            "kernel_shape": k, "strides": list(attrs.get("strides", [1] * len(k))),
            "pads": list(attrs.get("pads", [0] * 2 * len(k))), "dilations": list(attrs.get("dilations", [1] * len(k))),
            "ceil_mode": bool(attrs.get("ceil_mode", 0)), "channels_last": n.op_type == "NhwcMaxPool"})

    op_NhwcMaxPool = op_MaxPool

    def op_Transpose(self, n, ins, out, attrs):
        t = self.tensors.get(ins[0]) or self.qinfo(ins[0])
        perm = list(attrs.get("perm", list(range(len(t.shape or []) or 4))[::-1]))
        self._passthrough(n, "onnx_transpose", ins[0], {"perm": perm})

    def op_Reshape(self, n, ins, out, attrs):
        shape = self.const(ins[1], "shape")
        self._passthrough(n, "onnx_reshape", ins[0], {"shape": [int(s) for s in shape], "allowzero": int(attrs.get("allowzero", 0))})

    def op_Flatten(self, n, ins, out, attrs):
        self._passthrough(n, "onnx_flatten", ins[0], {"axis": int(attrs.get("axis", 1))})

    def op_Identity(self, n, ins, out, attrs):
        self._passthrough(n, "onnx_identity", ins[0], {})

    def op_QLinearConcat(self, n, ins, out, attrs):
        ys, yz = self.const(ins[0], "Y_scale"), self.const(ins[1], "Y_zero_point")
        dtype = np.asarray(yz).dtype.name
        y_s, y_z = np.float32(np.asarray(ys).reshape(-1)[0]), int(np.asarray(yz).reshape(-1)[0])
        names, tables = [], []
        for i in range(2, len(ins), 3):
            t = self.qinfo(self.input_of(ins[i]))
            xs, xz = self.const(ins[i + 1], "X_scale"), self.const(ins[i + 2], "X_zero_point")
            x_s, x_z = np.float32(np.asarray(xs).reshape(-1)[0]), int(np.asarray(xz).reshape(-1)[0])
            names.append(t.name)
            if x_s == y_s and x_z == y_z:  # qlinear_concat.cc: LOOKUP_TABLE_IS_COPY
                tables.append(np.arange(256, dtype=np.uint8).view(dtype))
            else:
                tables.append(mlas.lookup_table("identity", x_s, x_z, y_s, y_z, dtype))
        self.nodes.append(Node(n.name or f"QLinearConcat_{len(self.nodes)}", "onnx_qlinear_concat", [names], out,
                               {"axis": int(attrs["axis"])}, {"tables": np.stack(tables)}, source=n.name,
                               torch_op=_optype(n)))
        self.tensors[out] = TensorInfo(out, dtype, float(y_s), y_z, self.shapes.get(out))

    def op_Concat(self, n, ins, out, attrs):
        if all(i in self.tensors and self.tensors[i].dtype == "float32" or
               i in self.consts and self.consts[i].dtype == np.float32 for i in ins):
            names = [self.input_of(i) for i in ins]  # float Concat: exact data movement
            self.nodes.append(Node(n.name or f"Concat_{len(self.nodes)}", "onnx_concat", [names], out,
                                   {"axis": int(attrs["axis"])}, {}, source=n.name, torch_op="Concat"))
            self.tensors[out] = TensorInfo(out, "float32", shape=self.shapes.get(out))
            return
        ts = [self.qinfo(i) for i in ins]
        if len({(t.dtype, t.scale, t.zero_point) for t in ts}) != 1:
            raise _Unsupported("quantized inputs with different scales or zero points")
        t = ts[0]
        self.nodes.append(Node(n.name or f"Concat_{len(self.nodes)}", "onnx_concat", [[x.name for x in ts]], out,
                               {"axis": int(attrs["axis"])}, {}, source=n.name, torch_op="Concat"))
        self.tensors[out] = TensorInfo(out, t.dtype, t.scale, t.zero_point, self.shapes.get(out))


# ops of the com.microsoft domain this importer reads
MS_OPS = frozenset({"QLinearConcat", "QLinearConv", "QGemm", "QLinearAdd", "QLinearMul", "QLinearSigmoid", "QLinearLeakyRelu",
                    "QLinearGlobalAveragePool", "NhwcMaxPool"})


# float ops QDQ graphs leave between DequantizeLinear and QuantizeLinear
FLOAT_KERNELS = frozenset({"Conv", "Gemm", "MatMul", "AveragePool", "GlobalAveragePool", "Softmax", "HardSigmoid",
                           "HardSwish", "Resize", "ConvTranspose", "Gelu", "LayerNormalization", "MaxPool",
                           "ReduceMean", "Pow", "Sqrt", "Erf", "Exp"})


class _Unsupported(Exception):
    pass


def _optype(n) -> str:
    return f"{n.domain}.{n.op_type}" if n.domain and n.domain != "ai.onnx" else n.op_type


def _constant_value(attrs):
    for k in ("value_float", "value_int"):
        if k in attrs:
            return np.array(attrs[k], np.float32 if k == "value_float" else np.int64)
    for k in ("value_floats", "value_ints"):
        if k in attrs:
            return np.array(attrs[k], np.float32 if k == "value_floats" else np.int64)
    raise _Unsupported("a Constant of a kind qgolden does not read")


def _fold(op, ins, attrs, consts):
    """Constant folding of weight-side Q/DQ and shape ops (the value ORT's constant folding or the
    kernel would use)."""
    v = [consts.get(i) if i else None for i in ins]
    if op == "DequantizeLinear":
        axis = int(attrs.get("axis", 1))
        x, s = v[0], np.asarray(v[1], np.float32)
        zp = v[2] if len(v) > 2 and v[2] is not None else np.zeros_like(s, dtype=np.int64)
        if s.ndim == 1 and s.size > 1:
            shp = [1] * x.ndim
            shp[axis] = -1
            s, zp = s.reshape(shp), np.asarray(zp).reshape(shp)
        return mlas.dequantize_linear(x, s, zp)
    if op == "QuantizeLinear":
        zp = v[2] if len(v) > 2 and v[2] is not None else np.array(0, np.uint8)
        return mlas.quantize_linear(v[0], v[1], zp, np.asarray(zp).dtype.name)
    if op == "Identity":
        return v[0]
    if op == "Reshape":
        return np.reshape(v[0], [int(s) if s != 0 else v[0].shape[i] for i, s in enumerate(v[1])])
    if op == "Transpose":
        return np.transpose(v[0], attrs.get("perm"))
    if op == "Unsqueeze":
        axes = attrs.get("axes", v[1] if len(v) > 1 else None)
        out = v[0]
        for a in sorted(int(a) for a in axes):
            out = np.expand_dims(out, a)
        return out
    axes = attrs.get("axes", v[1] if len(v) > 1 else None)
    return np.squeeze(v[0], axis=None if axes is None else tuple(int(a) for a in axes))


def _value_shapes(model) -> dict:
    """Static shapes ONNX shape inference finds (None where it cannot)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:
        inferred = model
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input):
        dims = vi.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[vi.name] = [int(d.dim_value) for d in dims]
    return shapes


def _fill_shapes(prog):
    """Shapes ONNX shape inference left unknown (contrib ops, a symbolic batch: taken as 1, like the
    inputs' symbolic dims) from one run of the program on zeros; the integer-only forms and the C
    export read them."""
    if all(t.shape is not None for t in prog.tensors.values()):
        return prog
    xs = [np.zeros(prog.tensors[n].shape, np.float32 if prog.tensors[n].dtype == "float32"
                   else np.dtype(prog.tensors[n].dtype)) for n in prog.inputs]
    try:
        _, env = prog.run(*xs, keep=True)
    except Exception:  # a program that cannot run on zeros keeps its unknown shapes (lowering reports later)
        return prog
    for name, info in prog.tensors.items():
        v = env.get(name)
        if info.shape is None and isinstance(v, np.ndarray):
            info.shape = [int(d) for d in v.shape]
    return prog


def lower_onnx(path, engine: str | None = None, isa: str | None = None, ort_opt_level: str = "all") -> Program:
    """Lower an ONNX file to a Program for `engine` (onnxruntime, default, or onnx-reference)."""
    engine = engine or "onnxruntime"
    if engine not in ONNX_ENGINES:
        raise ValueError(f"engine {engine!r} does not run ONNX models; choose one of {', '.join(ONNX_ENGINES)}")
    if is_onnx(path) and not isinstance(path, (str, os.PathLike)):
        model, path = path, "<ModelProto>"
        try:
            require_onnx().checker.check_model(model)
        except Exception as e:
            raise ImportErrorQ(f"{path}: onnx.checker rejects the model: {str(e).splitlines()[0]}") from None
    else:
        model = load_checked(path)
    profile = make_profile(engine, isa, num_threads=1)
    if engine == "onnxruntime":
        graph_model = ort_optimized(model, ort_opt_level)
        runtime = "mlas"
    else:
        graph_model = model
        runtime = "reference"
    prog = _fill_shapes(_Builder(graph_model, path, runtime, profile).build())
    if engine == "onnxruntime":
        prog.meta["ort_opt_level"] = ort_opt_level
    prog._onnx = (model, graph_model)
    return prog


def is_onnx(obj) -> bool:
    """A path ending in .onnx, or an onnx.ModelProto."""
    if isinstance(obj, (str, os.PathLike)):
        return str(obj).endswith(".onnx")
    return type(obj).__name__ == "ModelProto" and hasattr(obj, "graph")
