"""What verify reports: per quantized tensor and per output, how many elements differ from the
runtime and by how much (integers exactly; floats by bit pattern)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class LayerResult:
    name: str
    op: str
    elements: int
    mismatches: int
    max_abs_diff: int
    source: str = ""
    steps: dict = None  # {difference in quantization steps: elements}, when there are mismatches
    why: str = ""  # why they differ, when the reference is not an integer runtime


@dataclass
class Report:
    bit_exact: bool
    engine: str
    isa: str
    layers: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    # PT2E models: what the program was compared with, the float Q/DQ graph's own per-layer
    # differences (float summation order), and the float regions left between dq and q
    reference: str = ""
    qdq_layers: list = field(default_factory=list)
    float_regions: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def to_json(self) -> dict:
        d = {"bit_exact": self.bit_exact, "engine": self.engine, "isa": self.isa,
             "layers": [{k: v for k, v in asdict(l).items() if k not in ("source", "steps", "why")}
                        for l in self.layers],
             "outputs": self.outputs}
        if self.reference:
            d["reference"] = self.reference
            d["qdq_layers"] = [{k: v for k, v in asdict(l).items() if k != "source"} for l in self.qdq_layers]
            d["float_regions"] = self.float_regions
        if self.notes:
            d["notes"] = self.notes
        return d

    @property
    def first_mismatch(self):
        return next((l for l in self.layers if l.mismatches), None)


def compare(a, b):
    """(elements, mismatches, max |diff|): integers compared exactly, floats by float32 bit pattern;
    a shape mismatch counts every element."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        return int(max(a.size, b.size)), int(max(a.size, b.size)), -1
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        same = (a.astype(np.float32).view(np.int32) == b.astype(np.float32).view(np.int32))
        diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
        md = float(diff[~same].max()) if (~same).any() else 0
        return int(a.size), int((~same).sum()), md
    d = np.abs(a.astype(np.int64) - b.astype(np.int64))
    return int(a.size), int((d != 0).sum()), int(d.max()) if d.size else 0




def flatten_outputs(o) -> list:
    """A model's (nested tuple/list) outputs as one flat list."""
    if isinstance(o, (tuple, list)):
        r = []
        for x in o:
            r.extend(flatten_outputs(x))
        return r
    return [o]
