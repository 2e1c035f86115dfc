"""certify: make every op integer-only and report, per op and per channel, how and whether it is
proved equal to the engine; integer_params: the integer parameters of a node, for `explain`."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Certificate:
    certified: bool
    ops: list  # [OpCert]
    program: object = None  # the integer-only Program
    options: dict = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict:
        """Exactly the issue's schema."""
        return {"certified": self.certified,
                "ops": [{"name": c.name, "op": c.op, "method": c.method, "domain": int(c.domain),
                         "mismatches": int(c.mismatches)} for c in self.ops]}

    @property
    def n_certified(self) -> int:
        return sum(1 for c in self.ops if c.certified)

    def channel_counts(self, ops=("linear", "conv")) -> tuple:
        """(channels needing threshold tables, channels) over the requantizations of `ops`."""
        t = n = 0
        for c in self.ops:
            if ops is not None and c.op not in ops:
                continue
            ut = c.params.get("use_table")
            if ut is not None:
                t += int(np.sum(ut))
                n += int(np.size(ut))
        return t, n

    def summary(self) -> str:
        t, n = self.channel_counts()
        return (f"{self.n_certified}/{len(self.ops)} ops certified; {t}/{n} requantization channels need "
                f"threshold tables ({self.seconds:.1f} s)")


def certify(program, multiplier_bits=32, rounding="half_up", acc_bits=None, allow_tables=True, inputs=None,
            progress=None):
    """Certificate for `program` under the given hardware constraints. `inputs` (optional): example
    inputs whose accumulators are reported as the observed range. progress: optional
    progress(done, total, node name), per op (transform.convert)."""
    from .transform import convert

    t0 = time.perf_counter()
    observed = None
    if inputs is not None:
        trace = {}
        program.run(*inputs, trace=trace)
        observed = {k: v.get("acc") for k, v in trace.items() if isinstance(v, dict) and v.get("acc") is not None}
    prog, certs = convert(program, multiplier_bits, rounding, acc_bits, allow_tables, observed, progress)
    return Certificate(all(c.certified for c in certs), certs, prog,
                       {"multiplier_bits": multiplier_bits, "rounding": rounding, "acc_bits": acc_bits,
                        "tables": allow_tables}, time.perf_counter() - t0)


def integer_params(obj, multiplier_bits=32, rounding="half_up"):
    """Integer parameters for `explain`.

    obj: a Node of an integer-only program (requantize_int, mul_int, pool_int, quantize_thr, lut...,
    as made by `lower --integer-only`), or a Program (integer-only or not: a regular program is
    converted first, with `multiplier_bits` / `rounding`). Returns for a node a dict, for a program
    {node name: dict} (only nodes with parameters). For requantizations the dict is

        {"formula": "out = clamp(((acc + bias) * M0 + frac) >> n (rounding) + zo, lo, hi)",
         "rounding": str, "out_zero_point": int, "out_min": int, "out_max": int,
         "channels": [{"channel": c, "method": "multiplier" | "thresholds",
                       "M0": int, "n": int, "bias": int (int32 bias constant, accumulator units),
                       "frac": int (fraction of the bias in product units, 0 <= frac < M0),
                       for "multiplier, bias per binade segment" also "segment_starts" (accumulator
                       values), "biases", "fracs" (one per segment: bias/frac of the segment acc is in),
                       for pools "division": "divisor", "offset", "ties", "zero_point",
                       "thresholds": [int, ...] (only for "thresholds": the accumulator values where
                                      the output steps up by one)}, ...]}

    Keys of the original program's node names are kept (the requantization node of a linear/conv
    keeps its name; its accumulation node is "<name>__acc")."""
    from ..ir import Program
    from .transform import INTEGER_OPS, convert

    if isinstance(obj, Program):
        prog = obj
        if any(n.op not in INTEGER_OPS for n in prog.nodes):
            prog, _ = convert(prog, multiplier_bits, rounding)
        out = {}
        for n in prog.nodes:
            p = integer_params(n)
            if p:
                out[n.name] = p
        return out
    n = obj
    k, a = n.consts, n.attrs
    if n.op in ("requantize_int", "mul_int", "pool_int"):
        chans = []
        ut = np.asarray(k["use_table"]).reshape(-1)
        us = np.asarray(k["use_segments"]).reshape(-1) if k.get("use_segments") is not None else np.zeros(ut.size, bool)
        dv = np.asarray(k["divisor"]).reshape(-1) if k.get("divisor") is not None else np.zeros(ut.size, np.int64)
        for c in range(ut.size):
            d = {"channel": c, "method": "thresholds" if ut[c] else "multiplier"}
            if ut[c]:
                t = np.asarray(k["thresholds"])[c]
                d["thresholds"] = [int(v) for v in np.unique(t)]
            elif dv[c] > 0:
                d.update(method="division", divisor=int(dv[c]), offset=int(k["div_offset"][c]),
                         ties=["half_up", "half_even", "half_away"][int(k["div_rounding"][c])],
                         zero_point=int(k["div_zero_point"][c]))
            else:
                d.update(M0=int(k["multiplier"][c]), n=int(k["shift"][c]), bias=int(k["bias"][c]),
                         frac=int(k["frac"][c]))
                if us[c]:
                    nb = int((np.asarray(k["seg_bounds"])[c] < (1 << 38)).sum())
                    d.update(method="multiplier, bias per binade segment",
                             segment_starts=[int(v) for v in np.asarray(k["seg_bounds"])[c][:nb]],
                             biases=[int(v) for v in np.asarray(k["seg_bias"])[c][:nb + 1]],
                             fracs=[int(v) for v in np.asarray(k["seg_frac"])[c][:nb + 1]])
            chans.append(d)
        return {"formula": "out = clamp(round_shift((acc + bias) * M0 + frac, n) + zo, lo, hi)",
                "rounding": a.get("rounding"), "out_zero_point": int(a.get("out_zero_point", 0)),
                "out_min": int(a.get("out_min", 0)), "out_max": int(a.get("out_max", 255)),
                "channels": chans}
    if n.op == "quantize_thr":
        wrap = {"wrap_key": int(a["wrap_key"]), "wrap_value": int(a["wrap_value"])} if a.get("wrap_key") is not None else {}
        return {"formula": "out = out_min + #{k : key(bits(x)) >= thresholds[k]} (float32 bit-pattern keys)"
                + ("; key >= wrap_key -> wrap_value" if wrap else ""), **wrap,
                "out_min": int(a["out_min"]), "nan_value": int(a["nan_value"]),
                "thresholds": [int(v) for v in np.asarray(k["thresholds"])]}
    if n.op in ("lut", "lut2", "lut_channel", "dequantize_lut"):
        return {"formula": f"{n.op}: table lookup", "entries": int(np.size(k["table"])),
                "two_paths": "scalar_table" in k}
    if n.op == "clamp_int":
        return {"formula": "out = min(max(x, lo), hi)", "lo": a.get("lo"), "hi": a.get("hi")}
    return {}


def recheck(program, integer_program, enumerate_budget=1 << 22):
    """Certify the requantize_int nodes of `integer_program` AS THEY ARE (e.g. parameters edited by
    hand or by another tool) against the linear / conv nodes of `program` they replace, over the
    worst-case accumulator interval for full-range inputs. Returns [OpCert]; details
    'breaking_values' maps channel -> merged half-open intervals [start, end) of accumulator values
    where the integer form differs from the engine."""
    from ..numerics.quantize import QRANGE
    from . import accumulate as ACC
    from .requant import LayerPlan, certify_plan
    from .thresholds import step_thresholds
    from .transform import OpCert, _engine_requant, kernel_node

    orig = {n.name: n for n in program.nodes}
    out = []
    for n in integer_program.nodes:
        node = orig.get(n.name)
        if n.op != "requantize_int" or node is None or node.op not in ("linear", "conv"):
            continue
        kn, kp = kernel_node(node, program.profile)
        xi = program.tensors.get(node.inputs[0])
        rep = ACC.analyse(kn, kp, *QRANGE[xi.dtype if xi is not None and xi.quantized else "uint8"])
        lo, hi = rep["lo"], rep["hi"]
        ref, mono, _ = _engine_requant(kn, kp, getattr(xi, "shape", None))
        a, k = n.attrs, n.consts
        plan = LayerPlan(**{key: np.asarray(k[key]) for key in ("multiplier", "shift", "bias", "frac", "use_table",
                                                               "thresholds")},
                         out_zero_point=a["out_zero_point"], out_min=a["out_min"], out_max=a["out_max"],
                         rounding=a["rounding"], bits=a.get("bits", 32), lo=lo, hi=hi)
        levels = np.arange(int(a["out_min"]) + 1, int(a["out_max"]) + 1)
        t_ref = step_thresholds(ref, lo, hi, levels)
        certify_plan(plan, ref, levels, t_ref, enumerate_budget, mono)
        bad = {c: plan.bad[c] for c in range(lo.size) if plan.bad[c]}
        out.append(OpCert(n.name, node.op, "given parameters", plan.domain, int(plan.mismatches.sum()),
                          {"multiplier": plan.multiplier, "shift": plan.shift, "bias": plan.bias, "frac": plan.frac,
                           "use_table": plan.use_table},
                          {"accumulator": rep, "breaking_values": bad, "enumerated": plan.enumerated}))
    return out
