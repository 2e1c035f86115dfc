"""C99 emitter: an integer-only program -> NAME.h, NAME.c (no floating point), NAME_float.c
(optional float edges), NAME_golden.h + test_NAME.c (golden vectors), Makefile, NAME.json.

The generated code calls the reference kernels of kernels.c (copied into NAME.c as static
functions) with constant parameter structs; activations live in one static (or caller-given)
arena planned by arena.py. No dynamic allocation.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import arena as A
from .kernel_select import select_kernels
from .plan import ExportError, ExportPlan, build_plan
from .provenance import ROUNDING_ENUM, gemm_comment

KERNELS = Path(__file__).with_name("kernels.c")
CTYPES = {"uint8": "uint8_t", "int8": "int8_t"}
ALL_KERNELS = ("qg_linear", "qg_conv", "qg_window", "qg_lut", "qg_lut2", "qg_lut_channel", "qg_mul",
               "qg_clamp", "qg_cat", "qg_gather", "qg_copy")
KERNEL_OF = {"linear": "qg_linear", "conv": "qg_conv", "window": "qg_window", "lut": "qg_lut", "lut2": "qg_lut2",
             "lut_channel": "qg_lut_channel", "mul": "qg_mul", "clamp": "qg_clamp", "cat": "qg_cat",
             "gather": "qg_gather", "copy": "qg_copy"}


@dataclass
class ExportResult:
    out_dir: Path
    name: str
    files: list
    arena_bytes: int
    minimum_bytes: int
    weight_bytes: int
    steps: int
    plan: ExportPlan


# -- literals ------------------------------------------------------------------------------------

def c_int(v: int, ctype: str) -> str:
    """A C literal of integer v for ctype (int64 with LL, the most negative value spelled safely)."""
    v = int(v)
    if ctype == "int64_t":
        if v == -(1 << 63):
            return "(-9223372036854775807LL - 1)"
        return f"{v}LL"
    if ctype == "int32_t" and v == -(1 << 31):
        return "(-2147483647 - 1)"
    return str(v)


def c_array(ctype: str, name: str, values) -> tuple:
    """(C definition of a static const array, its size in bytes). Never empty (C has no empty arrays)."""
    a = np.asarray(values).reshape(-1)
    if a.size == 0:
        a = np.zeros(1, np.int64)
    lits = [c_int(v, ctype) for v in a.tolist()]
    if ctype in ("uint8_t", "int8_t"):  # compact: the weights of big models are most of the file
        lines = [",".join(lits[i:i + 40]) for i in range(0, len(lits), 40)]
    else:
        lines = [", ".join(lits[i:i + 8]) for i in range(0, len(lits), 8)]
    body = ",\n    ".join(lines)
    width = {"uint8_t": 1, "int8_t": 1, "int32_t": 4, "int64_t": 8, "uint32_t": 4}[ctype]
    return f"static const {ctype} {name}[{a.size}] = {{\n    {body}\n}};\n", a.size * width


C_STRING_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _.,:;-+=()[]{}<>/*#!%&|^~@")
C_COMMENT_SAFE = C_STRING_SAFE - set("/*")
C_KEYWORDS = frozenset("""auto break case char const continue default do double else enum extern float for goto if
inline int long register restrict return short signed sizeof static struct switch typedef union unsigned void
volatile while _Bool _Complex _Imaginary main""".split())


def c_string(s: str) -> str:
    """A C99 string literal of any text: every byte outside a plain printable set (quotes, backslash,
    '?' of trigraphs, newlines, control and non-ASCII bytes) as a 3-digit octal escape (ISO C 6.4.4.4),
    so nothing can end the literal or the line."""
    out = []
    for b in str(s).encode("utf-8"):
        ch = chr(b)
        out.append(ch if ch in C_STRING_SAFE else f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def c_comment(s) -> str:
    """Text safe inside a C block comment: characters outside a plain printable set (the '*' and '/'
    that could end or nest the comment, '?' of trigraphs, backslashes, newlines, control and
    non-ASCII characters) become '_'; at most 120 characters."""
    t = "".join(ch if ch in C_COMMENT_SAFE else "_" for ch in str(s))
    return t if len(t) <= 120 else t[:117] + "..."


def c_ident(s: str) -> str:
    """A C identifier derived from s: [0-9A-Za-z_] only, not starting with a digit or '_' (ISO C
    reserves leading underscores), not a keyword, at most 48 characters (leaves room for suffixes)."""
    s = re.sub(r"[^0-9A-Za-z_]", "_", str(s))[:48]
    if not s or s[0].isdigit() or s[0] == "_" or s in C_KEYWORDS:
        s = "m_" + s
    return s


# -- parameter structs ---------------------------------------------------------------------------

class _Consts:
    """Collects constant arrays and structs of one layer, counting their bytes."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.code = []
        self.bytes = 0

    def array(self, ctype, key, values):
        if values is None:
            return "0"
        name = f"{self.prefix}_{key}"
        code, n = c_array(ctype, name, values)
        self.code.append(code)
        self.bytes += n
        return name

    def struct(self, ctype, key, fields: dict):
        name = f"{self.prefix}_{key}"
        body = ",\n".join(f"    .{k} = {v}" for k, v in fields.items())
        self.code.append(f"static const {ctype} {name} = {{\n{body}\n}};\n")
        return "&" + name

    def view(self, key, v):
        if v is None:
            return "0"
        shape = list(v["shape"]) + [1] * (6 - v["rank"])
        strides = list(v["strides"]) + [0] * (6 - v["rank"])
        return self.struct("qg_view_t", key, {"rank": v["rank"], "shape": "{" + ", ".join(map(str, shape)) + "}",
                                              "strides": "{" + ", ".join(map(str, strides)) + "}",
                                              "offset": v["offset"]})

    def requant(self, key, r):
        if r is None:
            return "0"
        f = {"rounding": ROUNDING_ENUM[r["rounding"]], "bits": r["bits"], "out_zero_point": r["out_zero_point"],
             "out_min": r["out_min"], "out_max": r["out_max"],
             "multiplier": self.array("int64_t", key + "_multiplier", r["multiplier"]),
             "shift": self.array("int32_t", key + "_shift", r["shift"]),
             "bias": self.array("int64_t", key + "_bias", r["bias"]),
             "frac": self.array("int64_t", key + "_frac", r["frac"])}
        if "use_table" in r:
            f["use_table"] = self.array("uint8_t", key + "_use_table", r["use_table"])
            f["thresholds"] = self.array("int64_t", key + "_thresholds", r["thresholds"])
            f["num_thresholds"] = int(r["thresholds"].shape[1])
        if "use_segments" in r:
            f["use_segments"] = self.array("uint8_t", key + "_use_segments", r["use_segments"])
            f["segment_bounds"] = self.array("int64_t", key + "_segment_bounds", r["segment_bounds"])
            f["num_segment_bounds"] = int(r["segment_bounds"].shape[1])
            f["segment_bias"] = self.array("int64_t", key + "_segment_bias", r["segment_bias"])
            f["segment_frac"] = self.array("int64_t", key + "_segment_frac", r["segment_frac"])
        if "divisor" in r:
            for k in ("divisor", "div_offset", "div_rounding", "div_zero_point"):
                f[k] = self.array("int64_t", f"{key}_{k}", r[k])
        return self.struct("qg_requant_t", key, f)


def _scalar_fields(p, keys):
    return {k: int(p[k]) for k in keys}


def layer_params(step, prefix) -> tuple:
    """(constant definitions, call expressions [list of C calls with {in0} {in1} {out} holes], bytes)."""
    c = _Consts(prefix)
    p = step.params
    k = step.kind
    if k == "linear":
        f = _scalar_fields(p, ("batches", "input_depth", "output_depth", "input_zero_point", "input_signed"))
        f.update(weights=c.array("int8_t", "weights", p["weights"]),
                 weight_zero_points=c.array("int32_t", "weight_zero_points", p["weight_zero_points"]),
                 weight_sums=c.array("int32_t", "weight_sums", p["weight_sums"]), paired=int(p["paired"]),
                 block_starts=c.array("int32_t", "block_starts", p["block_starts"]), num_blocks=int(p["num_blocks"]),
                 requant=c.requant("requant", p["requant"]))
        calls = [f"qg_linear({c.struct('qg_linear_params_t', 'params', f)}, {{in0}}, {{out}});"]
    elif k == "conv":
        keys = ("batches", "input_channels", "input_height", "input_width", "output_channels", "output_height",
                "output_width", "kernel_height", "kernel_width", "stride_height", "stride_width", "pad_height",
                "pad_width", "dilation_height", "dilation_width", "groups", "input_zero_point", "input_flip")
        f = _scalar_fields(p, keys)
        f["mode"] = ["QG_CONV_EXACT", "QG_CONV_PAIRS_FBGEMM", "QG_CONV_PAIRS_ONEDNN"][p["mode"]]
        f.update(weights=c.array("int8_t", "weights", p["weights"]),
                 weight_zero_points=c.array("int32_t", "weight_zero_points", p["weight_zero_points"]),
                 weight_sums=c.array("int32_t", "weight_sums", p["weight_sums"]),
                 input_offsets=c.array("int32_t", "input_offsets", p["input_offsets"]),
                 requant=c.requant("requant", p["requant"]), direct=int(p["direct"]),
                 scratch="qg_direct_scratch" if p["direct"] else "0")
        calls = [f"qg_conv({c.struct('qg_conv_params_t', 'params', f)}, {{in0}}, {{out}});"]
    elif k == "window":
        f = _scalar_fields(p, ("outer", "channels", "input_plane", "output_plane"))
        f.update(window_start=c.array("int32_t", "window_start", p["window_start"]),
                 window_index=c.array("int32_t", "window_index", p["window_index"]),
                 input_signed=int(p["input_signed"]),
                 mode="QG_WINDOW_MAX" if p["mode"] == 1 else "QG_WINDOW_SUM",
                 sum_zero_point=int(p["sum_zero_point"]),
                 classes=c.array("int32_t", "classes", p["classes"]) if p["mode"] == 0 else "0",
                 classes_per_channel=int(p["classes_per_channel"]), requant=c.requant("requant", p["requant"]),
                 write_nhwc=int(p["write_nhwc"]))
        calls = [f"qg_window({c.struct('qg_window_params_t', 'params', f)}, {{in0}}, {{out}});"]
    elif k == "lut":
        f = {"size": p["size"], "input_signed": p["input_signed"], "table": c.array("uint8_t", "table", p["table"]),
             "scalar_table": c.array("uint8_t", "scalar_table", p["scalar_table"]),
             "scalar_elements": c.array("int32_t", "scalar_elements", p["scalar_elements"]),
             "num_scalar_elements": 0 if p["scalar_elements"] is None else int(p["scalar_elements"].size)}
        calls = [f"qg_lut({c.struct('qg_lut_params_t', 'params', f)}, {{in0}}, {{out}});"]
    elif k == "lut2":
        f = {"size": p["size"], "input_signed": p["input_signed"], "b_view": c.view("b_view", p["b_view"]),
             "table": c.array("uint8_t", "table", p["table"]),
             "scalar_table": c.array("uint8_t", "scalar_table", p["scalar_table"]),
             "scalar_elements": c.array("int32_t", "scalar_elements", p["scalar_elements"]),
             "num_scalar_elements": 0 if p["scalar_elements"] is None else int(p["scalar_elements"].size)}
        calls = [f"qg_lut2({c.struct('qg_lut2_params_t', 'params', f)}, {{in0}}, {{in1}}, {{out}});"]
    elif k == "lut_channel":
        f = _scalar_fields(p, ("size", "channels", "inner", "input_signed"))
        f["table"] = c.array("uint8_t", "table", p["table"])
        calls = [f"qg_lut_channel({c.struct('qg_lut_channel_params_t', 'params', f)}, {{in0}}, {{out}});"]
    elif k == "mul":
        f = _scalar_fields(p, ("size", "a_zero_point", "b_zero_point"))
        f.update(b_view=c.view("b_view", p["b_view"]), requant=c.requant("requant", p["requant"]))
        calls = [f"qg_mul({c.struct('qg_mul_params_t', 'params', f)}, {{in0}}, {{in1}}, {{out}});"]
    elif k == "clamp":
        f = _scalar_fields(p, ("batches", "channels", "plane", "input_signed", "has_min", "min_value", "has_max",
                               "max_value", "write_nhwc"))
        calls = [f"qg_clamp({c.struct('qg_clamp_params_t', 'params', f)}, {{in0}}, {{out}});"]
    elif k == "cat":
        calls = []
        for i, part in enumerate(p["parts"]):
            f = _scalar_fields(part, ("outer", "chunk", "output_chunk", "offset", "input_signed"))
            f["table"] = c.array("uint8_t", f"table{i}", part["table"])
            calls.append(f"qg_cat({c.struct('qg_cat_params_t', f'part{i}', f)}, {{in{i}}}, {{out}});")
    elif k == "gather":
        f = {"size": p["size"], "view": c.view("view", p["view"])}
        calls = [f"qg_gather({c.struct('qg_gather_params_t', 'params', f)}, {{in0}}, {{out}});"]
    elif k == "copy":
        calls = [f"qg_copy({int(p['size'])}, {{in0}}, {{out}});"]
    else:
        raise ExportError(f"node {step.name} (op {step.op}): no C kernel for step {k}")
    return "".join(c.code), calls, c.bytes


# -- the model -------------------------------------------------------------------------------------

def _signature(plan, name, with_arena):
    args = ["int32_t batch"]
    single = len(plan.int_inputs) == 1 and len(plan.int_outputs) == 1
    for i, t in enumerate(plan.int_inputs):
        args.append(f"const {CTYPES[plan.dtypes[t]]} *{'input' if single else f'input{i}'}")
    for i, t in enumerate(plan.int_outputs):
        args.append(f"{CTYPES[plan.dtypes[t]]} *{'output' if single else f'output{i}'}")
    if with_arena:
        args += ["uint8_t *arena", f"{name}_layer_fn on_layer", "void *user"]
    return ", ".join(args)


def _arg_names(plan):
    single = len(plan.int_inputs) == 1 and len(plan.int_outputs) == 1
    ins = ["input" if single else f"input{i}" for i in range(len(plan.int_inputs))]
    outs = ["output" if single else f"output{i}" for i in range(len(plan.int_outputs))]
    return ins, outs


def storage(plan):
    """(buffers in the arena, root -> C pointer expression, final copies [(src root, output index)])."""
    ins, outs = _arg_names(plan)
    ptr = {}
    for i, t in enumerate(plan.int_inputs):
        ptr[plan.root(t)] = f"in{i}"
    written = {plan.root(s.output) for s in plan.steps}
    copies = []
    for i, t in enumerate(plan.int_outputs):
        r = plan.root(t)
        if r in written and r not in ptr:
            ptr[r] = f"out{i}"
        else:
            copies.append((r, i))
    external = set(ptr)
    sizes = {plan.root(t): plan.nbytes(plan.root(t)) for t in plan.shapes}
    bufs = A.lifetimes(plan.steps, sizes, plan.root, external)
    # a tensor copied to an output at the end stays live to the end
    end = len(plan.steps)
    for r, _ in copies:
        for b in bufs:
            if b.name == r:
                b.last = end
    return bufs, ptr, copies


def comment_block(lines) -> str:
    """A C block comment of text lines, each made comment-safe (c_comment) and kept whole."""
    return "/*\n" + "".join(f" * {c_comment_line(l)}\n" for l in lines) + " */\n"


def c_comment_line(s) -> str:
    """One line safe inside a C block comment, uncapped, keeping arithmetic readable: characters outside
    the plain printable set of c_string (and the apostrophe of b') become '_', and every '/*' or '*/'
    that could nest or end the comment has its '/' replaced."""
    t = "".join(ch if ch in C_STRING_SAFE or ch == "'" else "_" for ch in str(s))
    while "/*" in t or "*/" in t:
        t = t.replace("/*", "_*").replace("*/", "*_")
    return t


def layer_comment(step, source) -> str:
    """The provenance comment of a linear/conv step (provenance.gemm_comment), '' for other steps.
    `source`: the program the integer one was made from (None: integer constants only)."""
    if step.kind not in ("linear", "conv"):
        return ""
    node = None
    if source is not None:
        node = next((n for n in source.nodes if n.name == step.name and n.op in ("linear", "conv")
                     and "weight_scale" in n.consts), None)
    tensors = getattr(source, "tensors", None) if source is not None else None
    return comment_block(gemm_comment(step, node, tensors or getattr(step, "tensors", None)))


def emit(plan: ExportPlan, name: str, source=None, input_quantize="integer"):
    """The files' text: {filename: text}, plus (arena bytes, minimum bytes, weight bytes). `source`:
    the program the integer-only one was made from, for the constants' provenance comments."""
    bufs, ptr, copies = storage(plan)
    minimum = A.minimum_bytes(bufs)
    arena = A.plan_arena(bufs)
    A.check_plan(bufs)
    for b in bufs:
        ptr[b.name] = f"(arena + {b.offset})"
    ins, outs = _arg_names(plan)
    consts, body, weight_bytes = [], [], 0
    layers = []
    for i, s in enumerate(plan.steps):
        code, calls, nbytes = layer_params(s, f"layer{i}")
        weight_bytes += nbytes
        consts.append(f"/* layer {i}: {c_comment(s.name)} ({c_comment(s.op)}) */\n"
                      f"{layer_comment(s, source if source is not None else plan.program)}{code}")
        holes = {f"in{j}": ptr[plan.root(t)] for j, t in enumerate(s.inputs)}
        holes["out"] = ptr[plan.root(s.output)]
        body.append(f"    /* layer {i}: {c_comment(s.name)} ({c_comment(s.op)}) -> {c_comment(s.output)} "
                    f"{list(plan.shapes[s.output])} */")
        for call in calls:
            body.append("    " + call.format(**holes))
        body.append(f"    if (on_layer != 0) {{\n        on_layer({i}, sample, {c_string(s.name)}, {holes['out']}, "
                    f"{plan.nbytes(s.output)}, user);\n    }}")
        layers.append({"index": i, "name": s.name, "op": s.op, "tensor": s.output, "dtype": plan.dtypes[s.output],
                       "shape": list(plan.shapes[s.output])})
    for r, i in copies:
        body.append(f"    qg_copy({plan.nbytes(r)}, {ptr[r]}, out{i});")
    body = ["    " + line if line else line for line in "\n".join(body).split("\n")]
    # one sample per pass (per_sample), or the example's whole batch in one pass
    samples = "batch" if plan.per_sample else "1"
    check = "batch < 0" if plan.per_sample else f"batch != {plan.batch}"
    loop = [f"    if ({check}) {{", "        return -1;", "    }", f"    for (sample = 0; sample < {samples}; ++sample) {{"]
    for i, t in enumerate(plan.int_inputs):
        loop.append(f"        const uint8_t *in{i} = (const uint8_t *){ins[i]} + (int64_t)sample * {plan.nbytes(t)};")
    for i, t in enumerate(plan.int_outputs):
        loop.append(f"        uint8_t *out{i} = (uint8_t *){outs[i]} + (int64_t)sample * {plan.nbytes(t)};")
    body = loop + body + ["    }"]
    guard = c_ident(name).upper()
    sig = _signature(plan, name, False)
    sig_arena = _signature(plan, name, True)
    in_sizes = [plan.nbytes(t) for t in plan.int_inputs]
    out_sizes = [plan.nbytes(t) for t in plan.int_outputs]
    h = [f"/* {name}.h: generated by qgolden (integer only, no floating point, no dynamic allocation). */",
         f"#ifndef {guard}_H", f"#define {guard}_H", "", "#include <stdint.h>", "",
         f"/* activation arena: {arena} bytes (minimum for this graph: {minimum}); constants: {weight_bytes} bytes */",
         f"#define {guard}_ARENA_BYTES {arena}"]
    for i, n in enumerate(in_sizes):
        h.append(f"#define {guard}_INPUT{i}_BYTES {n}  /* {c_comment(plan.dtypes[plan.int_inputs[i]])} "
                 f"{list(plan.shapes[plan.int_inputs[i]])} NCHW row-major */")
    for i, n in enumerate(out_sizes):
        h.append(f"#define {guard}_OUTPUT{i}_BYTES {n}  /* {c_comment(plan.dtypes[plan.int_outputs[i]])} "
                 f"{list(plan.shapes[plan.int_outputs[i]])} */")
    h.append(f"#define {guard}_NUM_LAYERS {len(plan.steps)}")
    if plan.per_sample:
        h.append(f"#define {guard}_FIXED_BATCH 0  /* any batch: the sizes above are per sample */")
    else:
        h.append(f"#define {guard}_FIXED_BATCH {plan.batch}  /* the model mixes samples: batch must be this; "
                 "the sizes above are for the whole batch */")
    h += ["", "/* Called after each layer of each sample with its output (row-major bytes). */",
          f"typedef void (*{name}_layer_fn)(int32_t layer, int32_t sample, const char *name, const uint8_t *data, "
          "int32_t size, void *user);",
          "", "/* Runs the model on `batch` samples of quantized input(s), one after the other (inputs and",
          "   outputs: batch * the _BYTES above, row-major, samples along dim 0); returns 0, or -1 for a",
          f"   batch it cannot take (negative, or not {guard}_FIXED_BATCH when that is not 0). Uses the static arena. */",
          f"int {name}_run({sig});",
          "", f"/* Same, in a caller-provided arena of {guard}_ARENA_BYTES bytes (NULL: the static one), reused",
          "   by every sample, calling on_layer (if not NULL) after every layer. */",
          f"int {name}_run_arena({sig_arena});"]
    if any(plan.float_inputs) or any(plan.float_outputs):
        fsig = _float_signature(plan)
        h += ["", f"/* {name}_float.c (optional): float input(s) quantized, float output(s) dequantized,",
              "   exactly as the engine does, in integer arithmetic on the float32 bit patterns. */",
              f"int {name}_run_float({fsig});"]
    h += ["", f"#endif /* {guard}_H */", ""]
    # only the kernels (and their helpers) that the model's constants and calls name
    kern = select_kernels(KERNELS.read_text(), "\n".join(consts + body))
    c = [f"/* {name}.c: generated by qgolden from a certified integer-only program.",
         f"   engine {c_comment(plan.program.profile.get('engine'))}, isa {c_comment(plan.program.profile.get('isa'))}; "
         f"{len(plan.steps)} layers. Integer arithmetic only. */",
         f'#include "{name}.h"', "", kern, *scratch_decl(plan), "/* ==== model constants ==== */", "", *consts,
         f"static uint8_t {name}_arena[{max(arena, 1)}];", "",
         f"int {name}_run_arena({sig_arena})", "{", "    int32_t sample;",
         f"    if (arena == 0) {{\n        arena = {name}_arena;\n    }}"]
    c += body
    c += ["    return 0;", "}", "",
          f"int {name}_run({sig})", "{",
          f"    return {name}_run_arena({', '.join(['batch'] + ins + outs)}, 0, 0, 0);", "}", ""]
    meta = {"name": name, "engine": plan.program.profile.get("engine"), "isa": plan.program.profile.get("isa"),
            "arena_bytes": arena, "minimum_bytes": minimum, "weight_bytes": weight_bytes,
            "fixed_batch": 0 if plan.per_sample else plan.batch, "example_batch": plan.batch,
            "inputs": [{"tensor": t, "dtype": plan.dtypes[t], "shape": list(plan.shapes[t]),
                        "float": plan.float_inputs[i] is not None} for i, t in enumerate(plan.int_inputs)],
            "outputs": [{"tensor": t, "dtype": plan.dtypes[t], "shape": list(plan.shapes[t]),
                         "float": plan.float_outputs[i] is not None} for i, t in enumerate(plan.int_outputs)],
            "layers": layers, "has_float": bool(any(plan.float_inputs) or any(plan.float_outputs)),
            "buffers": [{"tensor": b.name, "offset": b.offset, "bytes": b.size, "first": b.first, "last": b.last}
                        for b in bufs]}
    files = {f"{name}.h": "\n".join(h), f"{name}.c": "\n".join(c), f"{name}.json": json.dumps(meta, indent=1)}
    if meta["has_float"]:
        files[f"{name}_float.c"] = emit_float(plan, name, input_quantize)
    return files, arena, minimum, weight_bytes


def scratch_bytes(plan) -> int:
    """Bytes of the direct convolutions' scratch (one buffer, the largest layer's; 0 if none)."""
    return 2 * max([s.params["scratch_elements"] for s in plan.steps if s.kind == "conv" and s.params["direct"]],
                   default=0)


def scratch_decl(plan) -> list:
    n = scratch_bytes(plan) // 2
    if not n:
        return []
    return ["/* padded input copy of the direct convolutions (qg_conv_direct), reused by each */",
            f"static int16_t qg_direct_scratch[{n}];", ""]


def _float_signature(plan):
    single = len(plan.int_inputs) == 1 and len(plan.int_outputs) == 1
    args = ["int32_t batch"]
    for i, t in enumerate(plan.int_inputs):
        n = "input" if single else f"input{i}"
        args.append(f"const float *{n}" if plan.float_inputs[i] else f"const {CTYPES[plan.dtypes[t]]} *{n}")
    for i, t in enumerate(plan.int_outputs):
        n = "output" if single else f"output{i}"
        args.append(f"float *{n}" if plan.float_outputs[i] else f"{CTYPES[plan.dtypes[t]]} *{n}")
    return ", ".join(args)


QUANTIZE_MODES = {"fma": 0, "mul": 1, "div": 2}
QUANTIZE_FORMULAS = {"fma": "q = clamp(rne(f32(x * c + z)))        (one fused multiply-add, z added before rounding)",
                     "mul": "q = clamp(rne(f32(x * c)) + z)",
                     "div": "q = clamp(rne(f32(x / c)) + z)"}

# Integer-only quantize of float32 bit patterns: qgolden/integer/quantize_bits.py, line for line.
QUANTIZE_BITS_C = r"""
/* Bits in v (0 for 0), by halving. */
static int32_t bit_length(uint64_t v)
{
    int32_t n = 0, half;
    for (half = 32; half > 0; half /= 2) {
        if ((v >> half) != 0) {
            n += half;
            v >>= half;
        }
    }
    return n + (int32_t)v;
}

/* v / 2^n (n >= 1) rounded half to even; sticky: nonzero bits below v's last one. */
static uint64_t round_shift_even(uint64_t v, int32_t n, int32_t sticky)
{
    uint64_t q = v >> n, rem = v & (((uint64_t)1 << n) - 1), half = (uint64_t)1 << (n - 1);
    return q + ((rem > half || (rem == half && (sticky || (q & 1) != 0))) ? 1 : 0);
}

/* Mantissa and exponent of a finite positive float32 bit pattern (value = *m * 2^*e), the
 * mantissa's top bit moved to bit 23 when normalise is set (subnormals). */
static void unpack_float32(uint32_t magnitude, int32_t normalise, uint64_t *m, int32_t *e)
{
    uint32_t biased = (magnitude >> 23) & 0xFF;
    *m = magnitude & 0x7FFFFF;
    *e = -149;
    if (biased != 0) {
        *m |= 0x800000;
        *e = (int32_t)biased - 150;
    }
    while (normalise && *m < 0x800000) {
        *m <<= 1;
        *e -= 1;
    }
}

typedef struct {
    int32_t mode;          /* 0 fma: rne(f32(x * c + z_pre)); 1 mul: rne(f32(x * c)); 2 div: rne(f32(x / c)) */
    uint32_t const_bits;   /* c as float32 bits */
    int32_t zp_pre, zp_post, qmin, qmax, nan_value;
    int64_t wrap_key;      /* order-preserving keys from here on give wrap_value */
    int32_t wrap_value;
} quantize_formula_t;

/* The engine's quantize of the float32 with bit pattern `bits`, in integers: |x*c| (or |x/c|) is
 * A * 2^E exactly (division: 38 quotient bits and a sticky bit), z_pre is added exactly, the sum is
 * rounded to 24 significant bits half to even (the float32 the engine rounds), that float is rounded
 * to an integer half to even, z_post added, the result clamped. */
static int32_t quantize_float32_bits(uint32_t bits, const quantize_formula_t *f)
{
    const uint32_t magnitude = bits & 0x7FFFFFFFu;
    const int32_t negative = (bits >> 31) != 0;
    const int64_t key = negative ? -(int64_t)magnitude - 1 : (int64_t)magnitude;
    uint64_t a = 0;
    int32_t e = 0, sticky = 0, length;
    int64_t r;
    if (magnitude > 0x7F800000u) {
        return f->nan_value;
    }
    if (key >= f->wrap_key) {
        return f->wrap_value;
    }
    if (magnitude == 0x7F800000u) {
        a = 1;
        e = 40;
    } else if (magnitude != 0) {
        uint64_t mx, mc;
        int32_t ex, ec;
        unpack_float32(magnitude, f->mode == 2, &mx, &ex);
        unpack_float32(f->const_bits, f->mode == 2, &mc, &ec);
        if (f->mode == 2) {
            a = (mx << 38) / mc;
            sticky = (mx << 38) % mc != 0;
            e = ex - ec - 38;
        } else {
            a = mx * mc;
            e = ex + ec;
        }
    }
    length = bit_length(a);
    if (a == 0 || length + e <= -2) {
        r = f->zp_pre;                          /* |x*c| < 1/4 */
    } else if (length + e > 40) {
        r = negative ? -((int64_t)1 << 40) : ((int64_t)1 << 40);  /* saturates */
    } else {
        const int32_t frac = e < 0 ? -e : 0;
        const int64_t u = (int64_t)(e > 0 ? a << e : a);
        const int64_t s = (negative ? -u : u) + (int64_t)f->zp_pre * ((int64_t)1 << frac);
        const uint64_t mag = s < 0 ? (uint64_t)(-s) : (uint64_t)s;
        int32_t k = bit_length(mag) - 24, shift;
        uint64_t m;
        k = k < 0 ? 0 : k;
        m = k > 0 ? round_shift_even(mag, k, sticky) : mag;
        shift = frac - k;
        if (shift <= 0) {
            r = (int64_t)(m << -shift);
        } else if (shift > 25) {
            r = 0;
        } else {
            r = (int64_t)round_shift_even(m, shift, 0);
        }
        r = s < 0 ? -r : r;
    }
    r += f->zp_post;
    return (int32_t)(r < f->qmin ? f->qmin : (r > f->qmax ? f->qmax : r));
}
"""

QUANTIZE_TABLE_C = """
/* #{k : sorted[k] <= value} */
static int32_t count_le(const int64_t *sorted, int32_t count, int64_t value)
{
    int32_t lo = 0, hi = count;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (sorted[mid] <= value) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* The engine's quantize of one float32 bit pattern: thresholds on its order-preserving key;
 * keys from wrap_key on give wrap_value (a float too large for int32 after scaling, where the
 * engine's conversion gives INT32_MIN; wrap_key beyond every key when it has none). */
static int32_t quantize_bits_table(uint32_t bits, const int64_t *thresholds, int32_t count, int32_t out_min,
                                   int32_t nan_value, int64_t wrap_key, int32_t wrap_value)
{
    const uint32_t magnitude = bits & 0x7FFFFFFFu;
    const int64_t key = (bits >> 31) != 0 ? -(int64_t)magnitude - 1 : (int64_t)magnitude;
    if (magnitude > 0x7F800000u) {
        return nan_value;
    }
    if (key >= wrap_key) {
        return wrap_value;
    }
    return out_min + count_le(thresholds, count, key);
}
"""


def input_quantize_form(fi, requested: str) -> str:
    """'integer' (the formula on the bits) when requested and proved for this input, else 'table'."""
    if requested not in ("integer", "table"):
        raise ExportError(f"--input-quantize {requested!r}: choose integer or table")
    return "integer" if requested == "integer" and fi.get("bits_formula") else "table"


def emit_float(plan, name, input_quantize="integer") -> str:
    """NAME_float.c: quantize float inputs (by default the engine's formula in integer arithmetic on
    the float32 bits, quantize_bits.py; or a threshold table on the bit patterns) and dequantize
    outputs (table of float32 bit patterns), around NAME_run."""
    ins, outs = _arg_names(plan)
    forms = [input_quantize_form(fi, input_quantize) if fi else None for fi in plan.float_inputs]
    L = [f"/* {name}_float.c: float edges of {name} (optional; the integer path never needs it).",
         "   Floats are read as their IEEE-754 bit patterns: no floating-point arithmetic. */",
         "#include <string.h>", f'#include "{name}.h"']
    if "integer" in forms:
        L.append(QUANTIZE_BITS_C)
    if "table" in forms:
        L.append(QUANTIZE_TABLE_C)
    call_args, pre, post, decl = [], [], [], []
    for i, t in enumerate(plan.int_inputs):
        fi = plan.float_inputs[i]
        if fi is None:
            call_args.append(f"{ins[i]} + (int64_t)sample * {plan.nbytes(t)}")
            continue
        n = plan.nbytes(t)
        ct = CTYPES[plan.dtypes[t]]
        decl.append(f"static {ct} quantized_input{i}[{n}];")
        loop = (f"    for (i = 0; i < {n}; ++i) {{\n        memcpy(&bits, &{ins[i]}[(int64_t)sample * {n} + i], "
                "sizeof bits);\n")
        if forms[i] == "integer":
            f = fi["bits_formula"]
            c = np.array([f["const_bits"]], np.int32).view(np.float32)[0]
            L.append(comment_block([f"input {i}: the engine's quantize, {QUANTIZE_FORMULAS[f['mode']]}",
                                    f"c = {float(c)!r} (float32 bits 0x{f['const_bits'] & 0xFFFFFFFF:08x}), "
                                    f"z = {f['zp_pre'] or f['zp_post']}, clamp to [{f['qmin']}, {f['qmax']}]; "
                                    f"NaN -> {fi['nan_value']}",
                                    "computed in integers on the bits, equal to the engine for all 2^32 inputs "
                                    "(proved against its threshold table at every step)"]))
            fields = {"mode": QUANTIZE_MODES[f["mode"]], "const_bits": f"0x{f['const_bits'] & 0xFFFFFFFF:08x}u",
                      "zp_pre": f["zp_pre"], "zp_post": f["zp_post"], "qmin": f["qmin"], "qmax": f["qmax"],
                      "nan_value": fi["nan_value"], "wrap_key": c_int(fi["wrap_key"], "int64_t"),
                      "wrap_value": fi["wrap_value"]}
            L.append(f"static const quantize_formula_t input{i}_quantize = {{\n"
                     + ",\n".join(f"    .{k} = {v}" for k, v in fields.items()) + "\n};\n")
            pre.append(loop + f"        quantized_input{i}[i] = ({ct})quantize_float32_bits(bits, &input{i}_quantize);\n    }}")
        else:
            code, _ = c_array("int64_t", f"input{i}_thresholds", fi["thresholds"])
            L.append(f"/* input {i}: the engine's quantize as a table of {fi['thresholds'].size} thresholds on the "
                     "order-preserving keys of the float32 bit patterns */")
            L.append(code)
            pre.append(loop + f"        quantized_input{i}[i] = ({ct})quantize_bits_table(bits, input{i}_thresholds, "
                       f"{fi['thresholds'].size}, {fi['out_min']}, {fi['nan_value']}, {c_int(fi['wrap_key'], 'int64_t')}, "
                       f"{fi['wrap_value']});\n    }}")
        call_args.append(f"quantized_input{i}")
    for i, t in enumerate(plan.int_outputs):
        fo = plan.float_outputs[i]
        if fo is None:
            call_args.append(f"{outs[i]} + (int64_t)sample * {plan.nbytes(t)}")
            continue
        code, _ = c_array("int32_t", f"output{i}_bits", fo["table"])
        L.append(code)
        n = plan.nbytes(t)
        ct = CTYPES[plan.dtypes[t]]
        decl.append(f"static {ct} quantized_output{i}[{n}];")
        post.append(f"    for (i = 0; i < {n}; ++i) {{\n        memcpy(&{outs[i]}[(int64_t)sample * {n} + i], &output{i}_bits[(int32_t)quantized_output{i}[i] - ({fo['in_min']})], sizeof(float));\n    }}")
        call_args.append(f"quantized_output{i}")
    # sample by sample (or the fixed batch in one pass) through static buffers of one pass
    samples, n_run = ("batch", "1") if plan.per_sample else ("1", "batch")
    L += decl + ["", "/* Float input(s) -> NAME_run -> float output(s), for `batch` samples; returns NAME_run's code. */",
                 f"int {name}_run_float({_float_signature(plan)})", "{", "    int32_t i, sample;", "    uint32_t bits;",
                 "    int rc = 0;", "    if (batch < 0) {", "        return -1;", "    }",
                 f"    for (sample = 0; sample < {samples}; ++sample) {{"]
    ind = lambda lines: ["    " + l for b in lines for l in b.split("\n")]
    L += ind(pre) + [f"        rc = {name}_run({', '.join([n_run] + call_args)});", "        if (rc != 0) {",
                     "            return rc;", "        }"] + ind(post) + ["    }"]
    L += ["    (void)i;", "    (void)bits;", "    return rc;", "}", ""]
    return "\n".join(L)


# -- golden vectors + harness ------------------------------------------------------------------------

def passes(plan) -> int:
    """How many passes of the steps the example's batch takes (its batch per sample, else 1)."""
    return plan.batch if plan.per_sample else 1


def emit_golden(plan, name, layers=True, max_layer_bytes=1 << 20) -> str:
    """NAME_golden.h: the example input(s) (its whole batch), expected output(s) and (optionally) every
    layer's output."""
    env = plan.golden_env if plan.golden_env is not None else plan.env
    L = [f"/* {name}_golden.h: golden vectors from qgolden (the integer program on the example input). */",
         f"#define GOLDEN_BATCH {plan.batch}"]
    for i, t in enumerate(plan.int_inputs):
        L.append(c_array("uint8_t", f"golden_input{i}", _bytes(env[t]))[0])
    for i, t in enumerate(plan.int_outputs):
        L.append(c_array("uint8_t", f"golden_output{i}", _bytes(env[t]))[0])
    total = sum(plan.nbytes(s.output) for s in plan.steps) * passes(plan)
    keep = layers and total <= max_layer_bytes
    names = []
    for i, s in enumerate(plan.steps):
        if keep:
            L.append(c_array("uint8_t", f"golden_layer{i}", _bytes(env[s.output]))[0])
            names.append(f"golden_layer{i}")
        else:
            names.append("0")
    L.append(f"static const uint8_t *const golden_layers[{max(1, len(names))}] = {{{', '.join(names) or '0'}}};")
    for i, fi in enumerate(plan.float_inputs):
        if fi is not None:
            x = np.ascontiguousarray(env[fi["float_input"]], np.float32).view(np.uint32)
            L.append(c_array("uint32_t", f"golden_float_input{i}", x)[0])
    for i, fo in enumerate(plan.float_outputs):
        if fo is not None:
            y = np.ascontiguousarray(env[fo["float_output"]], np.float32).view(np.uint32)
            L.append(c_array("uint32_t", f"golden_float_output{i}", y)[0])
    return "\n".join(L) + "\n"


def _bytes(v):
    return np.frombuffer(np.ascontiguousarray(v).tobytes(), np.uint8)


REPEAT = 3  # samples of the batch-N check built from the golden's first sample


def emit_test(plan, name) -> str:
    """test_NAME.c: runs the golden vectors with batch N = the example's batch (every layer checked),
    N = 1 per sample, N = REPEAT copies of the first sample, the static arena, and the float edges;
    exit 1 naming the first mismatching layer, sample and element."""
    ins, outs = _arg_names(plan)
    guard = c_ident(name).upper()
    P = passes(plan)
    B = plan.batch
    ni = [plan.nbytes(t) for t in plan.int_inputs]
    no = [plan.nbytes(t) for t in plan.int_outputs]
    L = ["/* test_" + name + ".c: golden-vector test of " + name + ".c (generated by qgolden). */",
         "#include <stdio.h>", "#include <string.h>", f'#include "{name}.h"', f'#include "{name}_golden.h"', "",
         "static int32_t bad_layer = -1;", "static int32_t bad_element = -1, bad_sample = -1;",
         "static const char *bad_name = \"\";", "static int32_t bad_got = 0, bad_want = 0;",
         "static int32_t first_sample = 0;  /* golden sample of the call's sample 0 */",
         "static int32_t repeat_first = 0;  /* 1: every sample is the golden's first */", "",
         "static void check_layer(int32_t layer, int32_t sample, const char *name, const uint8_t *data, int32_t size,"
         " void *user)",
         "{", "    int32_t i;", "    const uint8_t *want = golden_layers[layer];", "    (void)user;",
         "    if (want == 0 || bad_layer >= 0) {", "        return;", "    }",
         "    want += (int64_t)(repeat_first ? 0 : first_sample + sample) * size;",
         "    for (i = 0; i < size; ++i) {", "        if (data[i] != want[i]) {",
         "            bad_layer = layer;", "            bad_element = i;", "            bad_sample = sample;",
         "            bad_name = name;", "            bad_got = data[i];", "            bad_want = want[i];",
         "            return;", "        }", "    }", "}", "",
         "static int compare(const char *what, const uint8_t *got, const uint8_t *want, int32_t size)", "{",
         "    int32_t i;", "    for (i = 0; i < size; ++i) {", "        if (got[i] != want[i]) {",
         "            printf(\"MISMATCH %s element %ld: got %d, expected %d\\n\", what, (long)i, got[i], want[i]);",
         "            return 1;", "        }", "    }", "    return 0;", "}", "",
         "static int layer_failed(const char *what)", "{", "    if (bad_layer >= 0) {",
         "        printf(\"MISMATCH layer %ld (%s) sample %ld element %ld (%s): got %d, expected %d\\n\", (long)bad_layer,"
         " bad_name, (long)bad_sample, (long)bad_element, what, bad_got, bad_want);", "        return 1;", "    }",
         "    return 0;", "}", "",
         f"static uint8_t arena[{guard}_ARENA_BYTES > 0 ? {guard}_ARENA_BYTES : 1];", ""]
    for i, t in enumerate(plan.int_outputs):
        L.append(f"static {CTYPES[plan.dtypes[t]]} got_output{i}[{no[i] * P}];")
    if plan.per_sample:
        for i, t in enumerate(plan.int_inputs):
            L.append(f"static {CTYPES[plan.dtypes[t]]} repeat_input{i}[{ni[i] * REPEAT}];")
        for i, t in enumerate(plan.int_outputs):
            L.append(f"static {CTYPES[plan.dtypes[t]]} repeat_output{i}[{no[i] * REPEAT}];")
    has_float = any(plan.float_inputs) or any(plan.float_outputs)
    if has_float:
        for i, t in enumerate(plan.int_outputs):
            ct = "float" if plan.float_outputs[i] else CTYPES[plan.dtypes[t]]
            L.append(f"static {ct} got_float_output{i}[{no[i] * P}];")
        for i, t in enumerate(plan.int_inputs):
            if plan.float_inputs[i]:
                L.append(f"static float float_input{i}[{ni[i] * P}];")
    L += ["", "int main(void)", "{", "    int failed = 0;", "    int32_t s, r;"]
    gin = [f"(const {CTYPES[plan.dtypes[t]]} *)golden_input{i}" for i, t in enumerate(plan.int_inputs)]
    gout = [f"got_output{i}" for i in range(len(plan.int_outputs))]

    def compare_outputs(what):
        return [f"    failed |= compare(\"output {i} ({what})\", (const uint8_t *)got_output{i}, golden_output{i}, "
                f"{no[i] * P});" for i in range(len(no))]

    L += [f"    /* batch N = {B}: the example's whole batch in one call, every layer checked */",
          f"    if ({name}_run_arena({', '.join([str(B)] + gin + gout)}, arena, check_layer, 0) != 0) {{",
          "        printf(\"run_arena refused the batch\\n\");", "        return 1;", "    }",
          f"    if (layer_failed(\"batch {B}\")) {{", "        return 1;", "    }"]
    L += compare_outputs(f"batch {B}")
    if plan.per_sample:
        L += ["    /* batch N = 1, sample by sample */", "    memset(got_output0, 0, sizeof got_output0);",
              f"    for (s = 0; s < {B}; ++s) {{", "        first_sample = s;",
              f"        {name}_run_arena({', '.join(['1'] + [f'{g} + (int64_t)s * {ni[i]}' for i, g in enumerate(gin)] + [f'{g} + (int64_t)s * {no[i]}' for i, g in enumerate(gout)])}, arena, check_layer, 0);",
              "    }", "    first_sample = 0;", "    if (layer_failed(\"batch 1\")) {", "        return 1;", "    }"]
        L += compare_outputs("batch 1")
        L += [f"    /* batch N = {REPEAT}: copies of the first sample give copies of its output */",
              f"    for (r = 0; r < {REPEAT}; ++r) {{"]
        L += [f"        memcpy(repeat_input{i} + (int64_t)r * {ni[i]}, golden_input{i}, {ni[i]});" for i in range(len(ni))]
        L += ["    }", "    repeat_first = 1;",
              f"    {name}_run_arena({', '.join([str(REPEAT)] + [f'repeat_input{i}' for i in range(len(ni))] + [f'repeat_output{i}' for i in range(len(no))])}, arena, check_layer, 0);",
              "    repeat_first = 0;", f"    if (layer_failed(\"batch {REPEAT}\")) {{", "        return 1;", "    }",
              f"    for (r = 0; r < {REPEAT}; ++r) {{"]
        L += [f"        failed |= compare(\"output {i} (batch {REPEAT})\", (const uint8_t *)repeat_output{i} + (int64_t)r * "
              f"{no[i]}, golden_output{i}, {no[i]});" for i in range(len(no))]
        L += ["    }", f"    if ({name}_run({', '.join(['-1'] + gin + gout)}) != -1) {{",
              "        printf(\"a negative batch was not refused\\n\");", "        return 1;", "    }"]
    else:
        L += [f"    if ({name}_run({', '.join([str(B + 1)] + gin + gout)}) != -1) {{",
              f"        printf(\"batch {B + 1} was not refused (the model mixes samples)\\n\");", "        return 1;", "    }"]
    L.append(f"    {name}_run({', '.join([str(B)] + gin + gout)});  /* the static arena gives the same */")
    L += compare_outputs("static arena")
    if has_float:
        fargs = []
        for i, t in enumerate(plan.int_inputs):
            if plan.float_inputs[i]:
                L.append(f"    memcpy(float_input{i}, golden_float_input{i}, sizeof float_input{i});")
                fargs.append(f"float_input{i}")
            else:
                fargs.append(gin[i])
        fargs += [f"got_float_output{i}" for i in range(len(plan.int_outputs))]
        L.append(f"    {name}_run_float({', '.join([str(B)] + fargs)});")
        for i, t in enumerate(plan.int_outputs):
            want = f"golden_float_output{i}" if plan.float_outputs[i] else f"golden_output{i}"
            size = no[i] * P * (4 if plan.float_outputs[i] else 1)
            L.append(f"    failed |= compare(\"float output {i} (bits)\", (const uint8_t *)got_float_output{i}, "
                     f"(const uint8_t *){want}, {size});")
    L += ["    if (failed) {", "        return 1;", "    }",
          f"    printf(\"{name}: %d layers and outputs bit-exact (batch {B}" + (f", 1 and {REPEAT}" if plan.per_sample else "")
          + f")\\n\", {guard}_NUM_LAYERS);", "    (void)s;", "    (void)r;", "    return 0;", "}", ""]
    return "\n".join(L)


def emit_makefile(name, has_float) -> str:
    srcs = f"{name}.c" + (f" {name}_float.c" if has_float else "")
    return f"""# generated by qgolden: make test | make nofloat | make sanitize | make lib
CC ?= cc
CFLAGS ?= -std=c99 -O2 -Wall -Wextra -Werror -pedantic
SRCS = {srcs}

.PHONY: test nofloat sanitize lib clean

test: test_{name}
\t./test_{name}

test_{name}: test_{name}.c $(SRCS) {name}.h {name}_golden.h
\t$(CC) $(CFLAGS) -o $@ test_{name}.c $(SRCS)

# the integer path compiled with no floating-point/SIMD registers (x86-64): proves it uses no float
nofloat: {name}.c {name}.h
\t$(CC) $(CFLAGS) -mgeneral-regs-only -c {name}.c -o {name}_nofloat.o

sanitize: test_{name}.c $(SRCS) {name}.h {name}_golden.h
\t$(CC) $(CFLAGS) -g -fsanitize=address,undefined -fno-sanitize-recover=all -o test_{name}_san test_{name}.c $(SRCS)
\t./test_{name}_san

lib: lib{name}.so

lib{name}.so: $(SRCS) {name}.h
\t$(CC) $(CFLAGS) -fPIC -shared -o $@ $(SRCS)

clean:
\trm -f test_{name} test_{name}_san {name}_nofloat.o lib{name}.so
"""


def export_c(program, out_dir, name="model", inputs=None, layers=True, force=False, source=None,
             input_quantize="integer") -> ExportResult:
    """Write the C export of an integer-only `program` to out_dir; shapes from `inputs` (list of arrays).

    out_dir must be empty or new; with `force`, only the files an earlier export wrote there are
    replaced (files.OutputDir). Every file is written atomically. `source`: the program `program`
    was made from (lower's), whose scales and float biases the constants' comments quote.
    `input_quantize`: how NAME_float.c quantizes float inputs: "integer" (default: the engine's
    formula computed in integers on the float32 bits, where integer/quantize_bits.py proved it for
    all 2^32 inputs; otherwise the table) or "table" (thresholds on the bit patterns)."""
    from ..files import OutputDir

    name = c_ident(name)
    if input_quantize not in ("integer", "table"):
        raise ExportError(f"--input-quantize {input_quantize!r}: choose integer or table")
    out = OutputDir(out_dir, force)
    plan = build_plan(program, inputs)
    files, arena, minimum, wbytes = emit(plan, name, source, input_quantize)
    files[f"{name}_golden.h"] = emit_golden(plan, name, layers)
    files[f"test_{name}.c"] = emit_test(plan, name)
    files["Makefile"] = emit_makefile(name, f"{name}_float.c" in files)
    out.plan(files)
    for fn, text in files.items():
        out.write(fn, text)
    out.finish()
    return ExportResult(Path(out_dir), name, sorted(files), arena, minimum, wbytes, len(plan.steps), plan)
