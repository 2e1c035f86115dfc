"""The conformance record format: what PyTorch computed on one CPU, case by case.

A record is a folder (docs/conformance.md):

    ops/manifest.json            cpu, flags, env, torch, seed, cases[], pytorch_errors[]
    ops/cases/NAME.ts.pt         TorchScript: QuantStub -> op -> DeQuantStub, forward(x) or forward(a, b)
    ops/cases/NAME.npz           x0 (and x1): float32 inputs; y: PyTorch's float32 (dequantized) output
    inductor/manifest.json       cpu, flags, env, torch, cases[]
    inductor/cases/NAME.pt2      torch.export.save of a convert_pt2e model
    inductor/cases/NAME.npz      x input; y torch.compile's output; qdq the eager Q/DQ graph's;
                                 ref (when recorded) torchao's reference representation's

A case of ops/ names its `engine` (x86, fbgemm, qnnpack, onednn) and op family (`op`); an
inductor/ case is one model checked against each runtime its `runtimes` list names
(x86-inductor: `y`; pt2e-reference: `ref`); without the list, x86-inductor alone. Manifests
written by `qgolden conformance record` add `machine`, `capability`, `num_threads`, `qgolden_isa`
and `format`; records without them still load.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

FORMAT = "qgolden-conformance-record"
OPS_ENGINES = ("x86", "fbgemm", "qnnpack", "onednn")
# npz key of each PT2E runtime's output in an inductor/ case
INDUCTOR_OUTPUTS = {"x86-inductor": "y", "pt2e-reference": "ref"}
PT2E_FAMILY = "pt2e_model"  # the op family name of inductor/ cases (whole models)
ENV_VARS = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "FBGEMM_ENABLE_INSTRUCTIONS")


class RecordError(Exception):
    """The folder is not a conformance record (no manifest, or a manifest of something else)."""


@dataclass
class Case:
    """One recorded case: a model file, its npz, and what it runs on."""

    name: str
    kind: str  # 'ops' or 'inductor'
    engine: str
    family: str
    model: Path
    data: Path
    inputs: int = 1
    params: dict = field(default_factory=dict)
    output_key: str = "y"


@dataclass
class Record:
    root: Path
    manifests: dict  # 'ops' / 'inductor' -> manifest dict
    cases: list

    @property
    def manifest(self) -> dict:
        """The ops/ manifest if there is one, else the inductor/ one (both name the same CPU)."""
        return self.manifests.get("ops") or self.manifests["inductor"]

    def cpu_class_tag(self) -> str:
        return record_cpu_class(self.manifest)


def is_arm64_flags(flags) -> bool:
    """arm64 cpuinfo lists 'Features' such as asimd/fp; x86 flags never contain them."""
    return bool({"asimd", "neon"} & set(flags))


def record_cpu_class(manifest: dict) -> str:
    """The qgolden CPU class of the recording CPU: its flags, machine and ONEDNN_MAX_CPU_ISA cap
    (cpu.detect_from_flags), or the tag the recorder stored."""
    from ..cpu import TAGS, detect_from_flags

    stored = manifest.get("qgolden_isa")
    if stored in TAGS:
        return stored
    flags = manifest.get("flags") or []
    machine = manifest.get("machine") or ("aarch64" if is_arm64_flags(flags) else "x86_64")
    env = manifest.get("env") or {}
    return detect_from_flags(flags, machine, env.get("ONEDNN_MAX_CPU_ISA", ""))


def _read_manifest(path: Path) -> dict:
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RecordError(f"{path}: not a readable JSON manifest ({str(e).splitlines()[0]})") from None
    if not isinstance(m, dict) or not isinstance(m.get("cases"), list) or not ("flags" in m or "cpu" in m):
        raise RecordError(f"{path}: not a conformance record manifest (it needs 'cpu', 'flags' and 'cases')")
    if m.get("format", FORMAT) != FORMAT:
        raise RecordError(f"{path}: format {m.get('format')!r} is not {FORMAT!r}")
    return m


def load_record(root) -> Record:
    """The cases of a record folder (ops/ and inductor/, whichever exist). RecordError if it is not one."""
    root = Path(root)
    if not root.is_dir():
        raise RecordError(f"{root}: no such record folder")
    manifests, cases = {}, []
    for kind in ("ops", "inductor"):
        mpath = root / kind / "manifest.json"
        if not mpath.exists():
            continue
        m = manifests[kind] = _read_manifest(mpath)
        for c in m["cases"]:
            if not isinstance(c, dict) or not isinstance(c.get("name"), str):
                raise RecordError(f"{mpath}: a case without a name: {str(c)[:80]}")
            cases.extend(_cases_of(root / kind / "cases", kind, c))
    if not manifests:
        raise RecordError(f"{root}: not a conformance record (no ops/manifest.json or inductor/manifest.json)")
    return Record(root, manifests, cases)


def _cases_of(folder: Path, kind: str, c: dict) -> list:
    name = c["name"]
    if kind == "ops":
        return [Case(name, kind, str(c.get("engine", "")), str(c.get("op", "")), folder / f"{name}.ts.pt",
                     folder / f"{name}.npz", int(c.get("inputs", 1)), dict(c.get("params") or {}))]
    # one inductor model, one check per runtime it was recorded for (older records: x86-inductor only)
    runtimes = c.get("runtimes") or ["x86-inductor"]
    return [Case(name, kind, engine, PT2E_FAMILY, folder / f"{name}.pt2", folder / f"{name}.npz", 1,
                 {k: v for k, v in c.items() if k not in ("name", "runtimes")}, INDUCTOR_OUTPUTS[engine])
            for engine in runtimes if engine in INDUCTOR_OUTPUTS]


def write_manifest(folder: Path, manifest: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps(dict(manifest, format=FORMAT), indent=1) + "\n")
