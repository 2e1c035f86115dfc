"""TorchScript (torch.jit.script / torch.jit.trace, saved or live) -> torch.fx.GraphModule.

The forward graph is inlined and partially evaluated: attribute reads, constants, list/tuple
plumbing, shape assertions (`if x.dim() != 4: raise ...`) and branches on attributes are resolved
at import time; every remaining tensor op `ns::name` becomes an FX call_function on
`torch.ops.ns.name`. The result runs under torch.fx.Interpreter and is lowered by the FX importer
(fx.py / fx_ops.py / ts_ops.py). FX nodes are named after the module that computes them
('conv1', 'layer1_0_conv2') or the TorchScript value name ('add_1', 'cat').
"""
from __future__ import annotations

import keyword
import operator
import re

from . import ImportErrorQ

_MAX_UNROLL = 10000


class _Ref:
    """A value computed at run time: one pending FX node."""

    __slots__ = ("idx",)

    def __init__(self, idx):
        self.idx = idx


# ops with several outputs that the FX importer lowers (importers/rnn.py): the op becomes one FX node
# and each output an operator.getitem of it
MULTI_OUTPUT_OPS = frozenset({"aten::quantized_lstm", "aten::quantized_gru",
                              "quantized::quantized_lstm_cell_dynamic"})


def ref_name(lowering, ref) -> str:
    return lowering.ops[ref.idx].name


class _Op:
    __slots__ = ("kind", "target", "args", "name", "ts_node", "placeholder", "attr", "path")

    def __init__(self, kind, target=None, args=(), name="", ts_node=None, placeholder=False, attr=None):
        self.path = ""  # the module path of the code it comes from ('features.0.conv'), if known
        self.kind = kind
        self.target = target
        self.args = args
        self.name = name
        self.ts_node = ts_node
        self.placeholder = placeholder
        self.attr = attr


def _first_line(e) -> str:
    s = str(e).strip().splitlines()
    return s[0] if s else type(e).__name__


def _is_dynamic(v) -> bool:
    if isinstance(v, _Ref):
        return True
    if isinstance(v, (list, tuple)):
        return any(_is_dynamic(x) for x in v)
    if isinstance(v, dict):
        return any(_is_dynamic(x) for x in v.values())
    return False


def _source_line(node) -> str:
    try:
        sr = node.sourceRange()
    except Exception:
        return ""
    lines = [l for l in (sr or "").splitlines() if l.strip()]
    if not lines:
        return ""
    head = lines[0].strip()
    m = re.match(r'File "([^"]*)", line (\d+)', head)
    if m:
        # the highlighted code lines are each followed by a line of '~' markers
        marks = [i for i in range(2, len(lines)) if lines[i].strip().startswith("~")]
        code = lines[marks[0] - 1].strip() if marks else (lines[1].strip() if len(lines) > 1 else "")
        return f"{m.group(1)}:{m.group(2)}" + (f" ({code!r})" if code else "")
    return head


def _module_path(node) -> list:
    """The module path of the code that produced a node: ['layer1', '0', 'conv1'].

    Traced graphs carry a scope ('__module.layer1.0.conv1'); inlined scripted graphs a module
    hierarchy ('layer1(Sequential).0(BasicBlock).conv1(Conv2d)').
    """
    try:
        scope = node.scopeName() or ""
    except Exception:
        scope = ""
    if scope:
        last = scope.split("/")[-1]
        names = [p for p in last.split(".") if p and p != "__module"]
        if names:
            return names
    try:
        h = node.getModuleHierarchy() or ""
    except Exception:
        h = ""
    names = []
    for name, _ in re.findall(r"([^.()]+)\(([^()]*)\)", h):
        if name == "UNKNOWN_INSTANCE":
            break
        names.append(name)
    return names


def hierarchy_frames(node) -> list:
    """The module frames an inlined node runs in, outermost first, as hierarchy prefixes:
    'features(Sequential).0(Block)' -> ['features(Sequential)', 'features(Sequential).0(Block)'].
    Frames of script functions (UNKNOWN_INSTANCE) belong to the module that calls them."""
    try:
        h = node.getModuleHierarchy() or ""
    except Exception:
        return []
    frames, parts = [], []
    for name, typ in re.findall(r"([^.()]+)\(([^()]*)\)", h):
        if name == "UNKNOWN_INSTANCE":
            break
        parts.append(f"{name}({typ})")
        frames.append(".".join(parts))
    return frames


# torch.nn modules torch.fx traces through: containers, and the quantized functional modules whose
# methods (add, cat...) are not forward
_FX_TRACED_THROUGH = {"Sequential", "ModuleList", "ModuleDict", "FloatFunctional", "QFunctional", "FXFloatFunctional"}


def fx_leaf(obj) -> bool:
    """Whether torch.fx's default tracer keeps a call of this (script) module as one node: a module
    of torch.nn / torch.ao.nn (torch/fx/_symbolic_trace.py Tracer.is_leaf_module), by its TorchScript
    type's qualified name ('__torch__.torch.nn.modules.conv.___torch_mangle_3.Conv2d')."""
    try:
        qualified = obj._c._type().qualified_name()
    except Exception:
        qualified = type(obj).__module__ + "." + type(obj).__name__
    qualified = qualified.removeprefix("__torch__.")
    cls = qualified.rsplit(".", 1)[-1]
    return qualified.startswith(("torch.nn.", "torch.ao.nn.")) and cls not in _FX_TRACED_THROUGH


def _ident(s: str) -> str:
    s = re.sub(r"\W", "_", s)
    s = re.sub(r"_+", "_", s).strip("_")
    if not s:
        s = "v"
    if s[0].isdigit():
        s = "v_" + s
    if keyword.iskeyword(s):
        s += "_"
    return s


# names TorchScript takes from the parameters of the next forward (traced graphs): not informative
_GENERIC = {"input", "inputs", "result", "out", "output", "self", "x", "X", "Xq", "y", "r", "ret", "tmp", "tensor"}


def _debug_base(value) -> str:
    """'conv1.3' -> 'conv1'; '' for purely numeric or generic names."""
    try:
        name = value.debugName()
    except Exception:
        return ""
    base = re.sub(r"\.\d+$", "", name)
    if not base or base.isdigit() or base in _GENERIC or re.sub(r"\d+$", "", base) in _GENERIC:
        return ""  # 'input0': a traced graph's name for the next call's argument
    return base


# Python meanings of the scalar/list ops TorchScript uses for shape checks and attribute logic.
def _py_ops():
    import math

    def append(lst, v):
        lst.append(v)
        return lst

    def extend(lst, v):
        lst.extend(v)
        return lst

    def insert(lst, i, v):
        lst.insert(i, v)
        return lst

    def setitem(lst, i, v):
        lst[i] = v
        return lst

    def div(a, b):
        return a / b

    def to_float(x):
        return float(x.item() if hasattr(x, "item") else x)

    def to_int(x):
        return int(x.item() if hasattr(x, "item") else x)

    def to_bool(x):
        return bool(x.item() if hasattr(x, "item") else x)

    def scalar(x):
        return x.item() if hasattr(x, "item") else x

    return {
        "aten::len": len, "aten::eq": operator.eq, "aten::ne": operator.ne, "aten::lt": operator.lt,
        "aten::gt": operator.gt, "aten::le": operator.le, "aten::ge": operator.ge,
        "aten::add": operator.add, "aten::sub": operator.sub, "aten::mul": operator.mul,
        "aten::floordiv": operator.floordiv, "aten::div": div, "aten::remainder": operator.mod,
        "aten::neg": operator.neg, "aten::__not__": operator.not_, "aten::__and__": operator.and_,
        "aten::__or__": operator.or_, "aten::__xor__": operator.xor, "aten::__is__": operator.is_,
        "aten::__isnot__": operator.is_not, "aten::__contains__": lambda c, v: v in c,
        "aten::__getitem__": operator.getitem, "aten::append": append, "aten::extend": extend,
        "aten::insert": insert, "aten::_set_item": setitem, "aten::list": list, "aten::str": str,
        "aten::Float": to_float, "aten::FloatImplicit": to_float, "aten::Int": to_int,
        "aten::IntImplicit": to_int, "aten::Bool": to_bool, "aten::BoolImplicit": to_bool,
        "aten::ScalarImplicit": scalar, "aten::min": min, "aten::max": max, "aten::abs": abs,
        "aten::format": lambda fmt, *a: fmt.format(*a), "aten::warn": lambda *a: None,
        "aten::sqrt": math.sqrt, "aten::floor": math.floor, "aten::ceil": math.ceil,
        "aten::pow": operator.pow, "aten::__range_length": lambda lo, hi, st: max(0, -(-(hi - lo) // st)),
        "aten::__derive_index": lambda i, start, step: start + i * step, "aten::dict": dict,
        "prim::min": min, "prim::max": max, "prim::abs": abs, "prim::unchecked_cast": lambda x: x,
        "prim::Uninitialized": lambda: None, "prim::device": lambda t: t.device,
        "prim::dtype": lambda t: t.dtype, "prim::is_quantized": lambda t: t.is_quantized,
        "aten::dim": lambda t: t.dim(), "aten::size": lambda t, d=None: list(t.shape) if d is None else t.shape[d],
        "aten::numel": lambda t: t.numel(),
    }


# ops that only pass a value through: alias the input
_ALIASES = {"prim::NumToTensor", "aten::ScalarImplicit", "prim::unchecked_cast", "aten::IntImplicit",
            "aten::Int", "aten::FloatImplicit", "aten::Float"}

# side-effect-only ops that can be dropped when their inputs are known
_NO_EFFECT = {"aten::warn", "prim::PythonOp_warn", "aten::_assert_async", "prim::Print"}


class FrameTracker:
    """The module path of the code each node of an inlined TorchScript graph comes from.

    Inlining records for every node the chain of module calls it was inlined from, but names each
    module only by the attribute its caller read it through: a scripted convert_fx GraphModule calls
    `getattr(self.features, "0").conv` from its own forward, so that conv's frame is just 'conv(...)'.
    The attribute reads give the whole path ('features.0.conv'): a called module's code reaches
    everything through its `self`, so the first prim::GetAttr of a new call frame reads that frame's own
    module. A module whose code reads nothing of `self` (constants only: MaxPool2d, Flatten) is the
    module of its instance name and type its caller read last and no other frame took (scripted code
    reads a module just before calling it; traced code reads them all first, in reverse call order)."""

    def __init__(self):
        self.prev: list = []
        self.current: list = []
        self.bound: dict = {}  # frame (hierarchy prefix) -> module path, for the call under way
        self.guessed: dict = {}  # frame -> (key, index) of the caller-side read it was bound to
        self.reads: dict = {}  # (attribute name, type name) -> [module paths read, oldest first]

    @staticmethod
    def _key(frame: str) -> tuple:
        last = frame.rsplit(").", 1)[-1] if ")." in frame else frame
        name, _, typ = last.partition("(")
        return name, typ.rstrip(")")

    def enter(self, node):
        """Start the node's frames that the previous node was not inside: new calls."""
        frames = hierarchy_frames(node)
        for f in frames:
            if f in self.prev:
                continue
            self.bound.pop(f, None)
            self.guessed.pop(f, None)
            key = self._key(f)
            stack = self.reads.get(key)
            if stack:
                self.bound[f] = stack.pop()
                self.guessed[f] = key
        self.prev = frames
        self.current = frames

    def read_attribute(self, from_root: bool, obj_path, name, value):
        """A prim::GetAttr of attribute `name` on an object whose path is `obj_path` ('' or None: the root)."""
        import torch

        frames = self.current
        if frames and not from_root and obj_path and (frames[-1] not in self.bound or frames[-1] in self.guessed):
            f = frames[-1]
            if f in self.guessed:  # the caller-side guess was another module's read: give it back
                key = self.guessed.pop(f)
                if self.bound[f] != obj_path:
                    self.reads.setdefault(key, []).append(self.bound[f])
                    stack = self.reads.get(key, [])
                    if obj_path in stack:
                        stack.remove(obj_path)
            self.bound[f] = obj_path
        if isinstance(value, (torch.nn.Module, torch.jit.ScriptModule)):
            typ = getattr(value, "original_name", None) or type(value).__name__
            self.reads.setdefault((name, typ), []).append(f"{obj_path}.{name}" if obj_path else name)

    def path_of(self, node) -> list:
        """['features', '0', 'conv'] for a node inlined from that module's code; [] if unknown."""
        frames = hierarchy_frames(node)
        if frames and frames[-1] in self.bound:
            return self.bound[frames[-1]].split(".")
        return []


class _Converter:
    def __init__(self, sm, where, examples=None):
        self.sm = sm
        self.where = where
        # example inputs, when given, are run alongside the conversion so that rank queries
        # (input.dim(), as F.interpolate asks) become constants
        self.examples = list(examples) if examples is not None else None
        self.ex: dict = {}
        self.ops: list[_Op] = []
        self.env: dict = {}
        self.attrs: dict = {}  # attribute key -> (name, object)
        self.attr_ids: dict = {}
        self.py = _py_ops()
        # the module path each inlined call frame runs for (FrameTracker)
        self.frames = FrameTracker()

    # -- errors ------------------------------------------------------------------
    def fail(self, node, reason):
        what = ""
        if node is not None:
            what = node.kind()
            src = _source_line(node)
            if src:
                what += f" at {src}"
            what = f"TorchScript node {what}: "
        raise ImportErrorQ(f"{self.where}: {what}{reason}")

    # -- values -------------------------------------------------------------------
    def get(self, value, node=None):
        try:
            return self.env[value.unique()]
        except KeyError:
            self.fail(node, f"uses value %{value.debugName()} that is not defined on the path taken")

    def put(self, value, v):
        self.env[value.unique()] = v

    def new_op(self, op: _Op) -> _Ref:
        self.ops.append(op)
        return _Ref(len(self.ops) - 1)

    def attr_ref(self, obj, hint):
        """A static object used by a run-time op: a get_attr node on the new root module."""
        key = id(obj)
        if key not in self.attr_ids:
            ref = self.new_op(_Op("get_attr", attr=obj, name=_ident(hint or "attr")))
            self.attr_ids[key] = (ref, obj)  # keep obj alive so ids stay unique
        return self.attr_ids[key][0]

    def dyn_arg(self, v, hint):
        """Turn a value into an FX argument: tensors and script objects become get_attr refs."""
        import torch

        if isinstance(v, _Ref):
            return v
        if isinstance(v, list):
            return [self.dyn_arg(x, hint) for x in v]
        if isinstance(v, tuple):
            return tuple(self.dyn_arg(x, hint) for x in v)
        if isinstance(v, (torch.Tensor, torch.ScriptObject)):
            return self.attr_ref(v, hint)
        if isinstance(v, torch.nn.Module) or isinstance(v, torch._C.ScriptModule):
            return self.attr_ref(v, hint)
        return v

    # -- the walk -----------------------------------------------------------------
    def run(self):
        import torch

        fn = getattr(self.sm, "forward", None)
        graph = getattr(fn, "graph", None) if fn is not None else None
        if graph is None:
            graph = getattr(self.sm, "graph", None)
        if graph is None:
            raise ImportErrorQ(f"{self.where}: the TorchScript module has no forward method")
        g = graph.copy()
        torch._C._jit_pass_inline(g)
        ins = list(g.inputs())
        if not ins:
            raise ImportErrorQ(f"{self.where}: the TorchScript forward takes no self argument")
        self.put(ins[0], self.sm)
        self.attr_names = {}
        used_names = set()
        for v in ins[1:]:
            base = _ident(re.sub(r"\.\d+$", "", v.debugName()) or "x")
            name = base
            k = 1
            while name in used_names:
                name = f"{base}_{k}"
                k += 1
            used_names.add(name)
            ref = self.new_op(_Op("placeholder", name=name, placeholder=True))
            self.put(v, ref)
            k_in = len(used_names) - 1
            if self.examples is not None and k_in < len(self.examples):
                self.ex[ref.idx] = self.examples[k_in]
        self.block(g.block() if hasattr(g, "block") else g)
        outs = [self.get(v) for v in g.outputs()]
        out = outs[0] if len(outs) == 1 else tuple(outs)
        return self.build(out, g)

    def block(self, blk):
        for node in blk.nodes():
            self.node(node)

    def node(self, node):
        kind = node.kind()
        self.frames.enter(node)
        if kind == "prim::Constant":
            out = node.output()
            try:
                v = out.toIValue()
            except Exception as e:
                self.fail(node, f"constant could not be read: {_first_line(e)}")
            self.put(out, v)
            return
        if kind == "prim::GetAttr":
            obj = self.get(node.input(), node)
            name = node.s("name")
            if _is_dynamic(obj):
                self.fail(node, f"reads attribute {name!r} of a value computed at run time")
            try:
                v = getattr(obj, name)
            except Exception:
                try:
                    v = obj._c.getattr(name) if hasattr(obj, "_c") else obj.getattr(name)
                except Exception as e:
                    self.fail(node, f"attribute {name!r} could not be read: {_first_line(e)}")
            self.put(node.output(), v)
            path = self.attr_names.get(id(obj))
            self.frames.read_attribute(obj is self.sm, path, name, v)
            self.attr_names[id(v)] = f"{path}.{name}" if path else name
            return
        if kind == "prim::If":
            return self.if_node(node)
        if kind == "prim::Loop":
            return self.loop_node(node)
        if kind == "prim::RaiseException":
            msg = ""
            try:
                a = self.get(node.inputsAt(0), node)
                msg = a if isinstance(a, str) else ""
            except Exception:
                pass
            self.fail(node, "the model raises an exception on this path" + (f": {msg}" if msg else ""))
        ins = [self.get(v, node) for v in node.inputs()]
        outs = list(node.outputs())
        if kind == "prim::ListConstruct":
            self.put(outs[0], list(ins))
            return
        if kind == "prim::TupleConstruct":
            self.put(outs[0], tuple(ins))
            return
        if kind == "prim::DictConstruct":
            self.put(outs[0], dict(zip(ins[0::2], ins[1::2])))
            return
        if kind in ("prim::ListUnpack", "prim::TupleUnpack"):
            seq = ins[0]
            if isinstance(seq, (list, tuple)):
                if len(seq) != len(outs):
                    self.fail(node, f"unpacks {len(seq)} values into {len(outs)}")
                for o, x in zip(outs, seq):
                    self.put(o, x)
            else:  # a run-time sequence
                for i, o in enumerate(outs):
                    self.put(o, self.new_op(_Op("call_function", operator.getitem, (seq, i),
                                                self.name_for(node, o), node)))
            return
        if kind in ("prim::TupleIndex", "aten::__getitem__") and isinstance(ins[0], (list, tuple, dict)) \
                and not _is_dynamic(ins[1]):
            self.put(outs[0], ins[0][ins[1]])
            return
        if kind == "aten::__getitem__" and isinstance(ins[0], _Ref) and isinstance(ins[1], int):
            # an element of a run-time list (x.chunk(2, 1)[0] in scripted code): read like ListUnpack
            self.put(outs[0], self.new_op(_Op("call_function", operator.getitem, (ins[0], ins[1]),
                                              self.name_for(node, outs[0]), node)))
            return
        if kind == "aten::slice" and isinstance(ins[0], (list, tuple)) and not _is_dynamic(ins[1:]):
            seq = ins[0]
            lo, hi = ins[1], ins[2] if len(ins) > 2 else None
            st = ins[3] if len(ins) > 3 else 1
            self.put(outs[0], seq[lo:hi:st])
            return
        if kind in _NO_EFFECT:
            return
        if kind in ("aten::dict",) and not ins:
            self.put(outs[0], {})
            return
        if kind in ("prim::isinstance",):
            self.fail(node, "isinstance checks are not supported")
        if kind == "aten::dim" and isinstance(ins[0], _Ref) and hasattr(self.ex.get(ins[0].idx), "dim"):
            self.put(outs[0], self.ex[ins[0].idx].dim())
            return
        if kind in ("aten::__is__", "aten::__isnot__") and len(ins) == 2 and None in ins and _is_dynamic(ins):
            # `hx is None` on a value computed at run time (a tensor, or a tuple of them): never None
            self.put(outs[0], kind == "aten::__isnot__")
            return
        if kind == "prim::unchecked_cast" and len(ins) == 1:  # Optional[T] -> T: the same value
            self.put(outs[0], ins[0])
            return
        if kind == "prim::device" and isinstance(ins[0], _Ref):
            # every tensor a program computes is on the CPU (nnqd.LSTM's default hx: zeros(..., device=x.device))
            import torch

            self.put(outs[0], torch.device("cpu"))
            return
        if kind == "prim::dtype" and isinstance(ins[0], _Ref) and hasattr(self.ex.get(ins[0].idx), "dtype"):
            # a tensor's dtype is fixed by the example run (nnqd.Linear returns Y.to(x.dtype))
            self.put(outs[0], self.ex[ins[0].idx].dtype)
            return
        dynamic = _is_dynamic(ins)
        if not dynamic and len(outs) == 1 and not kind.startswith("prim::") or kind in self.py and not dynamic:
            self.put(outs[0], self.fold(node, kind, ins))
            return
        if kind in _ALIASES and len(ins) == 1 and isinstance(ins[0], _Ref) and _scalar_source(node.inputsAt(0)):
            self.put(outs[0], ins[0])
            return
        if kind.startswith("prim::"):
            return self.opaque(node, outs, "this TorchScript construct is not supported")
        if len(outs) != 1 and kind in MULTI_OUTPUT_OPS:
            ref = self.call(node, kind, ins, outs[0], multi=True)
            if ref is None:
                return self.opaque(node, outs, f"op {kind} is not available in this torch build")
            for i, o in enumerate(outs):  # each output: operator.getitem of the op's tuple
                item = self.new_op(_Op("call_function", operator.getitem, (ref, i), f"{ref_name(self, ref)}_{i}",
                                       node))
                self.put(o, item)
                if self.ex and ref.idx in self.ex:
                    self.ex[item.idx] = self.ex[ref.idx][i]
            return
        if len(outs) != 1:
            return self.opaque(node, outs, f"ops with {len(outs)} outputs are not supported")
        self.call(node, kind, ins, outs[0])

    def opaque(self, node, outs, reason):
        """Values qgolden cannot compute: an error only if the model's output depends on them."""
        for o in outs:
            self.put(o, self.new_op(_Op("unsupported", None, (), reason, node)))

    def fold(self, node, kind, ins):
        """Evaluate an op whose inputs are all known at import time."""
        import torch

        fn = self.py.get(kind)
        err = None
        if fn is not None:
            try:
                return fn(*ins)
            except Exception as e:
                err = e
        ns, _, name = kind.partition("::")
        try:
            target = getattr(getattr(torch.ops, ns), name)
        except Exception:
            target = None
        if target is not None:
            try:
                with torch.no_grad():
                    return target(*ins)
            except Exception as e:
                err = err or e
        self.fail(node, "could not be evaluated on constant inputs"
                  + (f": {_first_line(err)}" if err is not None else ""))

    def call(self, node, kind, ins, out, multi=False):
        import torch

        ns, _, name = kind.partition("::")
        # in-place ops run out of place, so every intermediate torch computes stays intact
        if name.endswith("_") and not name.endswith("__") and ns == "aten":
            name = name[:-1]
        try:
            target = getattr(getattr(torch.ops, ns), name)
        except Exception:
            return self.opaque(node, [out], f"op {kind} is not available in this torch build")
        hint = self.name_for(node, out)
        args = [self.dyn_arg(a, f"{hint}_{i}") for i, a in enumerate(ins)]
        kw_only = dict(_kwarg_only(node))
        kwargs = {kw_only[i]: a for i, a in enumerate(args) if i in kw_only}
        args = tuple(a for i, a in enumerate(args) if i not in kw_only)
        ref = self.new_op(_Op("call_function", target, (args, kwargs), hint, node))
        self.ops[ref.idx].path = ".".join(self.module_path(node))
        if multi:  # a multi-output op: its caller puts each output
            if self.ex:
                self._run_example(ref, target, args, kwargs)
            return ref
        self.put(out, ref)
        if self.ex:
            self._run_example(ref, target, args, kwargs)
        if kind != f"{ns}::{name}" and node.inputsSize():
            # the op wrote into its first input: later readers of that value see the result
            first = node.inputsAt(0)
            if isinstance(self.env.get(first.unique()), _Ref):
                self.put(first, ref)

    def _run_example(self, ref, target, args, kwargs):
        """Run one op on the example values; a failure only means no example downstream."""
        import torch

        missing = []

        def sub(a):
            if isinstance(a, _Ref):
                if a.idx in self.ex:
                    return self.ex[a.idx]
                op = self.ops[a.idx]
                if op.kind == "get_attr":
                    return op.attr
                missing.append(a)
                return None
            if isinstance(a, (list, tuple)):
                return type(a)(sub(x) for x in a)
            return a

        a2, k2 = sub(args), {k: sub(v) for k, v in kwargs.items()}
        if missing:
            return
        try:
            with torch.no_grad():
                self.ex[ref.idx] = target(*a2, **k2)
        except Exception:
            pass

    def module_path(self, node) -> list:
        """The module path of a call node's code, [] where torch.fx would name the op by itself: FX
        makes a node per call of a leaf module (torch.nn / torch.ao.nn, not Sequential) and traces
        through everything else, including FloatFunctional's methods."""
        path = self.frames.path_of(node) or _module_path(node)
        obj = self.sm
        for part in path:
            try:
                obj = getattr(obj, part)
            except Exception:
                return path
        return path if fx_leaf(obj) else []

    def name_for(self, node, out) -> str:
        path = self.module_path(node)
        if path:
            return _ident("_".join(path))
        base = _debug_base(out)
        if base:
            return _ident(base)
        return _ident(node.kind().split("::")[-1])

    # -- control flow -------------------------------------------------------------
    def if_node(self, node):
        cond = self.get(node.inputsAt(0), node)
        blocks = list(node.blocks())
        if _is_dynamic(cond):
            raising = [_raises(b) for b in blocks]
            if raising[0] and not raising[1]:
                taken = blocks[1]
            elif raising[1] and not raising[0]:
                taken = blocks[0]
            elif node.outputsSize() == 0 and all(_harmless(b) for b in blocks):
                return  # e.g. `if x.dim() != 4: warnings.warn(...)`
            else:
                self.fail(node, "control flow (if) that depends on the input values or shapes is not "
                          "supported; trace the model with torch.jit.trace instead of scripting it, or "
                          "make the branch depend only on attributes")
        else:
            taken = blocks[0] if bool(cond) else blocks[1]
        self.block(taken)
        for o, r in zip(node.outputs(), taken.outputs()):
            self.put(o, self.get(r, node))

    def loop_node(self, node):
        ins = [self.get(v, node) for v in node.inputs()]
        trip, cond, carried = ins[0], ins[1], list(ins[2:])
        if _is_dynamic(trip) or _is_dynamic(cond):
            self.fail(node, "a loop whose trip count depends on the input is not supported (give example inputs: --input); "
                      "trace the model with torch.jit.trace instead of scripting it")
        body = next(iter(node.blocks()))
        bins = list(body.inputs())
        bouts = list(body.outputs())
        i = 0
        while bool(cond) and i < int(trip):
            if i >= _MAX_UNROLL:
                self.fail(node, f"loop runs more than {_MAX_UNROLL} times")
            self.put(bins[0], i)
            for v, x in zip(bins[1:], carried):
                self.put(v, x)
            self.block(body)
            cond = self.get(bouts[0], node)
            carried = [self.get(v, node) for v in bouts[1:]]
            if _is_dynamic(cond):
                self.fail(node, "a loop whose exit condition depends on the input is not supported")
            i += 1
        for o, x in zip(node.outputs(), carried):
            self.put(o, x)

    # -- building the GraphModule ---------------------------------------------------
    def build(self, out, g):
        import torch
        import torch.fx

        from .fx import target_name
        from .fx_ops import CALLS, SUPPORTED

        live = [False] * len(self.ops)

        def mark(v):
            if isinstance(v, _Ref):
                if not live[v.idx]:
                    live[v.idx] = True
                    stack.append(v.idx)
            elif isinstance(v, (list, tuple)):
                for x in v:
                    mark(x)
            elif isinstance(v, dict):
                for x in v.values():
                    mark(x)

        stack = []
        if not _is_dynamic(out):
            raise ImportErrorQ(f"{self.where}: the TorchScript model returns a constant, not a computed tensor")
        mark(out)
        while stack:
            op = self.ops[stack.pop()]
            mark(op.args)
        for i, op in enumerate(self.ops):
            if op.placeholder:
                live[i] = True

        # every live op must be one qgolden can lower
        for i, op in enumerate(self.ops):
            if live[i] and op.kind == "unsupported":
                self.fail(op.ts_node, op.name)
            if live[i] and op.kind == "call_function" and op.target is not operator.getitem:
                tn = target_name(op.target)
                if tn not in CALLS:
                    self.fail(op.ts_node, f"op {tn} is not supported by qgolden. {SUPPORTED}")

        root = torch.nn.Module()
        graph = torch.fx.Graph()
        fx_nodes = {}
        taken = set()

        def unique(base):
            base = _ident(base)
            name, k = base, 1
            while name in taken:
                name = f"{base}_{k}"
                k += 1
            taken.add(name)
            return name

        def conv(v):
            if isinstance(v, _Ref):
                return fx_nodes[v.idx]
            if isinstance(v, list):
                return [conv(x) for x in v]
            if isinstance(v, tuple):
                return tuple(conv(x) for x in v)
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            return v

        reserved = {"self", "torch", "getattr", "operator", "inf", "nan", "device", "fx_pytree", "pytree"}
        taken.update(reserved)
        for i, op in enumerate(self.ops):
            if not live[i]:
                continue
            if op.kind == "placeholder":
                name = unique(op.name)
                n = graph.create_node("placeholder", name, name=name)
            elif op.kind == "get_attr":
                aname = unique(self.attr_names.get(id(op.attr)) or op.name)
                if isinstance(op.attr, torch.Tensor):
                    _set_tensor(root, aname, op.attr)
                else:
                    setattr(root, aname, op.attr)
                n = graph.create_node("get_attr", aname, name=aname)
            else:
                args, kwargs = op.args if op.target is not operator.getitem else (op.args, {})
                n = graph.create_node("call_function", op.target, conv(args), conv(kwargs), name=unique(op.name))
            taken.add(n.name)
            if op.path:
                n.meta["module_path"] = op.path  # the source the program names (as for eager/FX)
            if op.ts_node is not None:
                n.meta["ts_kind"] = op.ts_node.kind()
                n.meta["ts_source"] = _source_line(op.ts_node)
            fx_nodes[i] = n
        graph.output(conv(out))
        try:
            graph.lint()
            gm = torch.fx.GraphModule(root, graph, class_name="TorchScriptModel")
        except Exception as e:
            raise ImportErrorQ(f"{self.where}: the TorchScript graph could not be rebuilt as an FX graph: "
                               f"{_first_line(e)}") from None
        gm.eval()
        return gm


def _set_tensor(root, name, t):
    import torch

    if isinstance(t, torch.nn.Parameter):
        root.register_parameter(name, t)
    else:
        root.register_buffer(name, t)


def _kwarg_only(node) -> list:
    """[(input index, name)] of the keyword-only arguments of an op node's schema."""
    try:
        schema = node.schema()
        if not schema or schema == "(no schema)":
            return []
        import torch

        parsed = torch._C.parse_schema(schema)
    except Exception:
        return []
    return [(i, a.name) for i, a in enumerate(parsed.arguments) if a.kwarg_only]


def _scalar_source(value) -> bool:
    """True if a value holds a number at run time (a size), not a real tensor."""
    try:
        if value.node().kind() == "prim::NumToTensor":
            return True
        return value.type().kind() in ("IntType", "FloatType", "NumberType", "BoolType")
    except Exception:
        return False


def _harmless(block) -> bool:
    """A block that only warns or prints: skipping it does not change the result."""
    ok = _NO_EFFECT | {"prim::Constant", "aten::format", "aten::str", "prim::ListConstruct",
                       "prim::TupleConstruct"}
    return all(n.kind() in ok for n in block.nodes())


def _raises(block) -> bool:
    return any(n.kind() == "prim::RaiseException" for n in block.nodes())


def script_to_graph_module(script_module, where="model", example_inputs=None):
    """An equivalent torch.fx.GraphModule of a TorchScript module; ImportErrorQ if it has none.

    example_inputs, if given, resolve rank-dependent code (input.dim()) that scripting keeps."""
    try:
        return _Converter(script_module, where, example_inputs).run()
    except ImportErrorQ:
        raise
    except RecursionError:
        raise ImportErrorQ(f"{where}: the TorchScript graph is too deeply nested") from None
    except Exception as e:
        raise ImportErrorQ(f"{where}: the TorchScript model could not be converted: "
                           f"{type(e).__name__}: {_first_line(e)}") from None
