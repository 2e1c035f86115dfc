"""`qgolden conformance check`: every recorded case, lowered for the recording CPU, run with NumPy,
compared with PyTorch's recorded output bit for bit.

Each case ends in one status:
    match        every output element has PyTorch's float32 bit pattern
    mismatch     some element differs (counted per element)
    unsupported  qgolden refuses the model (an op it does not lower, a configuration it does not
                 reproduce, or a PT2E float region it declares not reproduced): listed by op family
    unreadable   a case file is missing or is not a model / npz the format promises
    error        lowering or running failed in a way qgolden did not foresee
    skipped      this host's torch lacks the case's quantized engine (lowering reads the model with it)
A record conforms when no case is a mismatch, unreadable or error.

Lowering uses torch (to read the TorchScript / .pt2 model and its shapes); the program then runs
with NumPy alone (accumulate="numpy"), never with torch's kernels.
"""
from __future__ import annotations

import re
import zipfile
from collections import OrderedDict
from dataclasses import asdict, dataclass, field

import numpy as np

from .records import Case, Record

FAILING = ("mismatch", "unreadable", "error")
_TORCH_OP = re.compile(r"\b((?:aten|quantized|onednn|quantized_decomposed)(?:::|\.)[A-Za-z0-9_]+)")


@dataclass
class CaseResult:
    name: str
    kind: str
    engine: str
    family: str
    status: str
    elements: int = 0
    mismatches: int = 0
    reason: str = ""
    torch_op: str = ""  # the op qgolden refused, when unsupported


@dataclass
class CheckReport:
    root: str
    isa: str
    num_threads: int
    results: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No mismatch, unreadable case or error (unsupported and skipped cases do not fail)."""
        return not any(r.status in FAILING for r in self.results)

    def table(self) -> list:
        """One row per (op family, engine): cases, checked, elements, mismatching cases / elements,
        unsupported, other (unreadable, error, skipped)."""
        rows = OrderedDict()
        for r in sorted(self.results, key=lambda r: (r.kind != "ops", r.family, r.engine)):
            row = rows.setdefault((r.family, r.engine), {"family": r.family, "engine": r.engine, "cases": 0,
                                                         "checked": 0, "elements": 0, "mismatching_cases": 0,
                                                         "mismatching_elements": 0, "unsupported": 0,
                                                         "unreadable": 0, "errors": 0, "skipped": 0})
            row["cases"] += 1
            if r.status in ("match", "mismatch"):
                row["checked"] += 1
                row["elements"] += r.elements
                row["mismatching_cases"] += r.status == "mismatch"
                row["mismatching_elements"] += r.mismatches
            else:
                key = {"unsupported": "unsupported", "unreadable": "unreadable", "error": "errors",
                       "skipped": "skipped"}[r.status]
                row[key] += 1
        return list(rows.values())

    def unsupported(self) -> dict:
        """{op family: sorted torch ops (or reasons) qgolden refused} over the unsupported cases."""
        out = {}
        for r in self.results:
            if r.status == "unsupported":
                out.setdefault(r.family, set()).add(r.torch_op or r.reason)
        return {k: sorted(v) for k, v in sorted(out.items())}

    def problems(self) -> list:
        """The cases that could not be read or failed unexpectedly, with why."""
        return [r for r in self.results if r.status in ("unreadable", "error")]

    def totals(self) -> dict:
        t = {"cases": len(self.results)}
        for s in ("match", "mismatch", "unsupported", "unreadable", "error", "skipped"):
            t[s] = sum(r.status == s for r in self.results)
        t["elements"] = sum(r.elements for r in self.results)
        t["mismatching_elements"] = sum(r.mismatches for r in self.results)
        return t

    def to_json(self) -> dict:
        return {"record": self.root, "isa": self.isa, "num_threads": self.num_threads, "ok": self.ok,
                "totals": self.totals(), "table": self.table(), "unsupported": self.unsupported(),
                "cases": [asdict(r) for r in self.results]}


def select_cases(record: Record, engine: str | None = None, op: str | None = None) -> list:
    """The record's cases, restricted to one engine and/or op family when given."""
    return [c for c in record.cases if (engine is None or c.engine == engine) and (op is None or c.family == op)]


def compare_outputs(ours, recorded: np.ndarray) -> tuple:
    """(elements, mismatching elements, why) of the program's output against the recorded float32
    output: equal bit patterns, element by element (a different shape or dtype mismatches all)."""
    outs = list(ours) if isinstance(ours, (tuple, list)) else [ours]
    if len(outs) != 1:
        return recorded.size, recorded.size, f"the program returns {len(outs)} outputs, the record one"
    y = np.asarray(outs[0])
    if y.shape != recorded.shape:
        return recorded.size, recorded.size, f"shape {list(y.shape)}, recorded {list(recorded.shape)}"
    if y.dtype != np.float32 or recorded.dtype != np.float32:
        return recorded.size, recorded.size, f"dtype {y.dtype}, recorded {recorded.dtype}"
    bad = int(np.count_nonzero(np.ascontiguousarray(y).view(np.int32) != np.ascontiguousarray(recorded).view(np.int32)))
    return int(recorded.size), bad, ""


def _first_line(e) -> str:
    s = str(e).strip()
    return s.splitlines()[0] if s else type(e).__name__


class _Unreadable(Exception):
    pass


def _read_npz(case: Case) -> dict:
    if not case.data.is_file():
        raise _Unreadable(f"{case.data.name}: missing")
    try:
        with np.load(case.data, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise _Unreadable(f"{case.data.name}: not a readable npz ({_first_line(e)})") from None


def _inputs(case: Case, arrays: dict) -> list:
    keys = ["x"] if case.kind == "inductor" else [f"x{i}" for i in range(case.inputs)]
    missing = [k for k in keys + [case.output_key] if k not in arrays]
    if missing:
        raise _Unreadable(f"{case.data.name}: no {', '.join(missing)} (holds {', '.join(arrays) or 'nothing'})")
    return [np.asarray(arrays[k], dtype=np.float32) if arrays[k].dtype.kind == "f" else arrays[k] for k in keys]


def _load_model(case: Case):
    """The recorded model, loaded as trusted (a record is the user's own files, passed explicitly)."""
    import torch

    if not case.model.is_file():
        raise _Unreadable(f"{case.model.name}: missing")
    try:
        if case.kind == "ops":
            return torch.jit.load(str(case.model), map_location="cpu").eval()
        from ..importers.pt2e import register_ops

        register_ops()
        return torch.export.load(str(case.model))
    except Exception as e:  # torch raises RuntimeError / zip errors with long traces
        raise _Unreadable(f"{case.model.name}: not a loadable {'TorchScript' if case.kind == 'ops' else '.pt2'} "
                          f"model ({_first_line(e)})") from None


def _refused_op(msg: str) -> str:
    m = _TORCH_OP.search(msg)
    return m.group(1).replace(".default", "") if m else ""


def check_case(case: Case, isa: str, num_threads: int, model_cache: dict | None = None) -> CaseResult:
    """Lower one case for `isa`, run it with NumPy, compare with the recorded output."""
    import torch

    from ..api import lower
    from ..engine import RunError
    from ..importers import ImportErrorQ

    res = CaseResult(case.name, case.kind, case.engine, case.family, "error")
    try:
        arrays = _read_npz(case)
        xs = _inputs(case, arrays)
        key = str(case.model)
        model = model_cache.get(key) if model_cache is not None else None
        if model is None:
            model = _load_model(case)
            if model_cache is not None:
                model_cache[key] = model
    except _Unreadable as e:
        res.status, res.reason = "unreadable", str(e)
        return res
    if case.kind == "ops" and case.engine not in torch.backends.quantized.supported_engines:
        res.status, res.reason = "skipped", f"this host's torch has no quantized engine {case.engine!r}"
        return res
    saved_threads = torch.get_num_threads()
    try:
        torch.set_num_threads(num_threads)  # the profile takes torch's thread count: the recording CPU's
        program = lower(model, example_inputs=tuple(xs), engine=case.engine, isa=isa)
    except ImportErrorQ as e:
        res.status, res.reason, res.torch_op = "unsupported", _first_line(e), _refused_op(_first_line(e))
        return res
    except Exception as e:
        res.reason = f"lowering: {type(e).__name__}: {_first_line(e)}"
        return res
    finally:
        torch.set_num_threads(saved_threads)
    unclaimed = [r for r in program.meta.get("float_regions", []) if not r.get("exact", True)]
    if unclaimed:
        r = unclaimed[0]
        res.status, res.torch_op = "unsupported", f"{r['what']} (float region not reproduced)"
        res.reason = f"{r['name']} ({r['what']}): {r['why']}"
        return res
    try:
        ours = program.run(*xs, accumulate="numpy")
    except RunError as e:
        if isinstance(e.__context__, NotImplementedError):  # an op's configuration qgolden does not reproduce
            res.status, res.torch_op = "unsupported", _first_line(e.__context__)
            res.reason = _first_line(e)
        else:
            res.reason = f"run: {_first_line(e)}"
        return res
    except Exception as e:
        res.reason = f"run: {type(e).__name__}: {_first_line(e)}"
        return res
    res.elements, res.mismatches, why = compare_outputs(ours, np.asarray(arrays[case.output_key]))
    res.status = "mismatch" if res.mismatches else "match"
    res.reason = why
    return res


def check_record(record: Record, isa: str | None = None, engine: str | None = None, op: str | None = None,
                 on_case=None) -> CheckReport:
    """Check every selected case of `record` for `isa` (default: the recording CPU's class).

    on_case(case, result) is called after each case (progress display)."""
    import torch

    from ..cpu import cpu_class

    isa = isa or record.cpu_class_tag()
    cpu_class(isa)  # an unknown tag fails here, with the list of known ones
    threads = int(record.manifest.get("num_threads") or torch.get_num_threads())
    report = CheckReport(str(record.root), isa, threads)
    cache = {}
    previous = None
    for case in select_cases(record, engine, op):
        if case.model != previous:  # an inductor model serves two runtimes in a row; keep one at a time
            cache.clear()
            previous = case.model
        r = check_case(case, isa, threads, cache)
        report.results.append(r)
        if on_case is not None:
            on_case(case, r)
    return report
