"""torch.fx GraphModule (convert_fx output, or an eager model traced with torch.fx) -> Program.

Every FX node becomes at most one program node; a program tensor keeps the FX node's
name, so PyTorch's intermediates can be compared with ours by name.
"""
from __future__ import annotations

from ..ir import Node, Program, TensorInfo
from . import ImportErrorQ


def target_name(target) -> str:
    """A stable printable name for an FX call target: 'quantized::add', 'torch.cat', 'operator.getitem'."""
    import torch

    if isinstance(target, str):
        return target
    if isinstance(target, (torch._ops.OpOverloadPacket, torch._ops.OpOverload)):
        s = str(target)  # "quantized.add" / "quantized.add.default"
        parts = s.split(".")
        return f"{parts[0]}::{parts[1]}"
    mod = getattr(target, "__module__", None) or ""
    name = getattr(target, "__name__", repr(target))
    if mod.startswith("torch.nn.functional") or name in dir(__import__("torch").nn.functional) and mod.startswith("torch.nn"):
        return f"F.{name}"
    if mod in ("_operator", "operator"):
        return f"operator.{name}"
    if mod.startswith("torch") or mod == "" and hasattr(__import__("torch"), name):
        return f"torch.{name}"
    if mod == "builtins":
        return name
    return f"{mod}.{name}"


class _Lowering:
    def __init__(self, gm, profile, where: str):
        self.gm = gm
        self.profile = profile
        self.where = where
        self.modules = dict(gm.named_modules())
        self.nodes: list[Node] = []
        self.tensors: dict[str, TensorInfo] = {}
        self.values: dict = {}  # fx node name -> IR tensor name, or a Python constant
        self.inputs: list[str] = []
        self.outputs: list = []
        self.input_dtypes = {}
        self.observed = {}  # FX node name -> torch value from an example run
        self.float_regions = []  # ops the runtime computes in float32: {name, what, exact, why}

    # -- helpers ---------------------------------------------------------------
    def fail(self, n, what: str, reason: str):
        raise ImportErrorQ(f"{self.where}: node '{n.name}' ({what}): {reason}")

    def val(self, a):
        """Resolve an FX argument to an IR tensor name (str) or a Python constant."""
        import torch
        from torch.fx import Node as FxNode

        if isinstance(a, FxNode):
            v = self.values[a.name]
            return v
        if isinstance(a, (list, tuple)):
            return type(a)(self.val(x) for x in a)
        if isinstance(a, torch.Tensor) and a.numel() == 1 and not a.is_quantized:
            return a.item()
        return a

    def info(self, ref) -> TensorInfo:
        return self.tensors[ref] if isinstance(ref, str) and ref in self.tensors else None

    def is_q(self, ref) -> bool:
        i = self.info(ref)
        return i is not None and i.quantized

    def qin(self, n, ref, what):
        i = self.info(ref)
        if i is None or not i.quantized:
            self.fail(n, what, "expects a quantized tensor input but receives "
                      + ("a float tensor" if i is not None else repr(ref)))
        return {"x_scale": i.scale, "x_zero_point": i.zero_point}

    def emit(self, n, op, inputs, *, dtype, scale=None, zero_point=None, attrs=None, consts=None,
             torch_op="", source=None, names=None):
        out = n.name
        source = source or n.name
        if source == n.name and n.meta.get("module_path"):
            source = n.meta["module_path"]  # a TorchScript op: the module path of its code
        self.nodes.append(Node(name=n.name, op=op, inputs=list(inputs), output=out, attrs=attrs or {},
                               consts=consts or {}, source=source, torch_op=torch_op,
                               names=names if names is not None else self.param_names(n, source)))
        info = TensorInfo(out, dtype, None if scale is None else float(scale),
                          None if zero_point is None else int(zero_point))
        info.shape, info.layout = self.observed_layout(out, op, inputs)
        self.tensors[out] = info
        self.values[n.name] = out
        return out

    def param_names(self, n, source):
        """Where the model keeps this op's parameters, as state_dict keys: the output quantization of a
        module (`input_layer.scale`), its packed weight, and get_attr arguments (`input_layer_input_scale_0`)."""
        from torch.fx import Node as FxNode

        names = {}
        if n.op == "call_module":
            mod = self.modules.get(n.target)
            sd = set(k.rsplit(".", 1)[-1] for k in mod.state_dict().keys()) if mod is not None else set()
            for key in ("scale", "zero_point"):
                if key in sd:
                    names["out_" + key] = f"{n.target}.{key}"
            if "_packed_params" in sd or any(k.startswith("_packed_params") for k in
                                             (mod.state_dict().keys() if mod is not None else ())):
                names["weight"] = f"{n.target}._packed_params._packed_params"
                names["bias"] = f"{n.target}._packed_params._packed_params"
            for key in ("weight", "bias", "running_mean", "running_var"):
                if key in sd and key not in names:
                    names[key] = f"{n.target}.{key}"
        args = list(n.args) + list(n.kwargs.values())
        attr_args = [a for a in args if isinstance(a, FxNode) and a.op == "get_attr"]
        for a in attr_args:
            t = str(a.target)
            if t.endswith("zero_point_0") or "zero_point" in t.rsplit(".", 1)[-1]:
                names["out_zero_point" if n.op != "call_module" else "zero_point"] = t
            elif "scale" in t.rsplit(".", 1)[-1]:
                names["out_scale" if n.op != "call_module" else "scale"] = t
            else:
                names.setdefault("params", []).append(t)
        return names

    def observed_layout(self, name, op, inputs):
        """(shape, memory order) as seen in the example run, else by rule: torch's quantized conv
        writes channels-last; shape-changing ops make contiguous tensors; the rest keep their input's."""
        t = self.observed.get(name)
        if t is not None and hasattr(t, "stride") and hasattr(t, "shape"):
            return list(t.shape), memory_order(t)
        if op == "conv":
            nd = 2 + len(self.nodes[-1].attrs["stride"])
            return None, [0] + list(range(2, nd)) + [1]
        if op in ("reshape", "flatten", "index", "permute", "transpose", "squeeze", "unsqueeze", "quantize",
                  "linear", "size", "int_arith", "float_cat", "cat"):
            return None, None
        first = inputs[0] if inputs else None
        first = first[0] if isinstance(first, list) and first else first
        i = self.tensors.get(first) if isinstance(first, str) else None
        return None, (i.layout if i is not None else None)

    def same_q(self, n, op, x, torch_op, attrs=None, source=None):
        """An op whose output has its input's dtype and quantization parameters."""
        i = self.info(x)
        return self.emit(n, op, [x], dtype=i.dtype, scale=i.scale, zero_point=i.zero_point,
                         attrs=attrs, torch_op=torch_op, source=source)

    # -- the walk --------------------------------------------------------------
    def run(self):
        failures = []  # (node, message): every node that cannot be lowered, reported together
        poisoned = set()  # nodes that failed, and nodes that read them (not reported again)
        for n in self.gm.graph.nodes:
            if n.op == "output" and failures:
                break
            if n.op in ("call_module", "call_function", "call_method") and any(
                    a.name in poisoned for a in n.all_input_nodes):
                poisoned.add(n.name)
                continue
            try:
                self.lower_node(n)
                first = writes_first_input(n, self.modules)
                if first is not None and first.name in self.values:
                    # the op overwrote its input in place: later readers of that node see the result
                    # (the example run records the input before the op ran, so it is still compared)
                    self.values[first.name] = self.values[n.name]
            except ImportErrorQ as e:
                if n.op not in ("call_module", "call_function", "call_method"):
                    raise
                failures.append((n, str(e)))
                poisoned.add(n.name)
        if failures:
            raise ImportErrorQ(unsupported_message(self.where, failures))
        meta = {"source": self.where, "returns": self.returns}
        if self.float_regions:
            meta["float_regions"] = self.float_regions
        return Program(self.inputs, self.outputs, self.nodes, self.tensors, dict(self.profile), meta=meta)

    def lower_node(self, n):
        if n.op == "placeholder":
            name = n.name
            dt = self.input_dtypes.get(name, "float32")
            self.tensors[name] = TensorInfo(name, dt)
            self.tensors[name].shape, self.tensors[name].layout = self.observed_layout(name, "input", [])
            self.values[name] = name
            self.inputs.append(name)
        elif n.op == "get_attr":
            self.values[n.name] = self.get_attr(n)
        elif n.op == "call_module":
            from .fx_ops import lower_module

            lower_module(self, n, self.modules[n.target])
        elif n.op in ("call_function", "call_method"):
            from .fx_ops import lower_call

            lower_call(self, n)
        elif n.op == "output":
            refs = self.output_refs(n, n.args[0])
            self.returns = "tensor" if isinstance(refs, str) else "tuple"
            self.outputs = [refs] if isinstance(refs, str) else refs

    def output_refs(self, n, a):
        from torch.fx import Node as FxNode

        if isinstance(a, FxNode):
            v = self.values[a.name]
            if isinstance(v, list) and _all_names(v):  # a module returning a tuple (nnqd.LSTM)
                return v
            if not isinstance(v, str):
                self.fail(n, "output", "the model returns a constant, not a tensor")
            return v
        if isinstance(a, (list, tuple)):
            return [self.output_refs(n, x) for x in a]
        self.fail(n, "output", f"unsupported output structure {type(a).__name__} (return a tensor or a tuple)")

    def get_attr(self, n):
        import torch

        obj = self.gm
        for part in n.target.split("."):
            obj = getattr(obj, part)
        if isinstance(obj, torch.Tensor) and obj.numel() == 1 and not obj.is_quantized:
            return obj.item()
        return obj


def _all_names(v) -> bool:
    """Whether v is a (nested) list of tensor names."""
    return all(_all_names(x) if isinstance(x, list) else isinstance(x, str) for x in v)


def writes_first_input(n, modules):
    """The FX node an op overwrites in place, or None: a module built with inplace=True
    (nn.ReLU(inplace=True), ...), a call with inplace=True (F.relu(x, inplace=True)), or an in-place
    variant by its trailing underscore (torch.relu_, x.clamp_()). FX keeps the input node as the
    argument of later readers, but PyTorch hands them the overwritten tensor."""
    from torch.fx import Node as FxNode

    if not n.args or not isinstance(n.args[0], FxNode):
        return None
    if n.op == "call_module":
        inplace = bool(getattr(modules.get(n.target), "inplace", False))
    elif n.op in ("call_function", "call_method"):
        name = n.target if n.op == "call_method" else target_name(n.target).rsplit(".", 1)[-1].rsplit("::", 1)[-1]
        inplace = n.kwargs.get("inplace") is True or (name.endswith("_") and not name.endswith("__"))
    else:
        return None
    return n.args[0] if inplace else None


def node_location(n) -> str:
    """Where an FX node comes from: its module path and the user's source line, where FX kept them."""
    parts = []
    if n.op == "call_module":
        parts.append(f"module {n.target}")
    stack = n.meta.get("stack_trace") or ""
    frames = [line.strip() for line in stack.splitlines()
              if line.strip().startswith("File ") and "/torch/" not in line and "site-packages" not in line]
    if frames:
        parts.append(frames[-1].replace("File ", "", 1))
    return ", ".join(parts)


def unsupported_message(where: str, failures) -> str:
    """One error for every node that cannot be lowered: the first line says how many, then one
    line per node (its own message, and where it comes from)."""
    if len(failures) == 1:
        return failures[0][1]
    lines = [f"{where}: {len(failures)} nodes cannot be lowered:"]
    for n, msg in failures:
        loc = node_location(n)
        msg = msg[len(where) + 2:] if msg.startswith(where + ": ") else msg
        lines.append(f"  {msg.split(' Supported: ')[0]}" + (f" [{loc}]" if loc and loc not in msg else ""))
    supported = next((m.split(" Supported: ", 1)[1] for _, m in failures if " Supported: " in m), None)
    if supported:
        lines.append("Supported: " + supported)
    return "\n".join(lines)


def memory_order(t):
    """Dims of a torch tensor from outermost to innermost in memory; None when plainly contiguous."""
    if t.dim() < 2:
        return None
    # by strides, not is_contiguous(): a [N,C,1,1] tensor is contiguous both ways, and torch's
    # kernels follow its strides (suggest_memory_format) to choose their output layout
    strides = t.stride()
    order = sorted(range(t.dim()), key=lambda d: (-strides[d], d))
    return None if order == list(range(t.dim())) else order


def lower_graph_module(gm, profile, where="model", input_dtypes=None, observed=None) -> Program:
    L = _Lowering(gm, profile, where)
    L.input_dtypes = input_dtypes or {}
    L.observed = observed or {}
    return L.run()
