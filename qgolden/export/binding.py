"""ctypes binding on the compiled C export: call the generated code from Python to check it.

    model = compile_and_load(out_dir)     # cc -shared, once; returns a callable
    y = model(x)          # float in -> float out (NAME_run_float) if the model has float edges,
                          # quantized in -> quantized out (NAME_run) for uint8/int8 arrays
    ys = model.layers(xq) # every layer's output, by layer name (NAME_run_arena's callback)
"""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def compiler() -> str:
    """The system C compiler ($CC, cc, gcc or clang)."""
    for c in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if c and shutil.which(c):
            return c
    raise RuntimeError("no C compiler found (set CC)")


def compile_shared(out_dir, name=None, opt="-O2", extra=()) -> Path:
    """Compile NAME.c (+ NAME_float.c) of an export directory into a shared library; its path."""
    out = Path(out_dir)
    meta = _meta(out, name)
    name = meta["name"]
    srcs = [str(out / f"{name}.c")] + ([str(out / f"{name}_float.c")] if meta["has_float"] else [])
    lib = out / f"lib{name}{opt.replace('-', '_')}.so"
    cmd = [compiler(), *CFLAGS, opt, "-fPIC", "-shared", *extra, "-o", str(lib), *srcs]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"C compile failed: {' '.join(cmd)}\n{r.stderr}")
    return lib


def _meta(out, name=None):
    if name is None:
        js = [p for p in Path(out).glob("*.json") if not p.name.startswith("manifest")]
        if len(js) != 1:
            raise FileNotFoundError(f"{out}: expected one NAME.json from qgolden export")
        return json.loads(js[0].read_text())
    return json.loads((Path(out) / f"{name}.json").read_text())


LAYER_FN = ctypes.CFUNCTYPE(None, ctypes.c_int32, ctypes.c_int32, ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint8),
                            ctypes.c_int32, ctypes.c_void_p)


class CModel:
    """The compiled model: __call__, run_int, run_float, layers. Inputs carry any batch along dim 0
    (the export's fixed batch when the model mixes samples)."""

    def __init__(self, lib_path, meta):
        self.lib = ctypes.CDLL(str(lib_path))
        self.meta = meta
        self.name = meta["name"]
        self.fixed = int(meta.get("fixed_batch", 0))
        self.arena = (ctypes.c_uint8 * max(1, meta["arena_bytes"]))()

    @staticmethod
    def _ptr(a):
        return a.ctypes.data_as(ctypes.c_void_p)

    def _ins(self, xs, floats):
        """(contiguous input arrays, batch N of the call)."""
        arrs, batch = [], None
        for spec, x in zip(self.meta["inputs"], xs):
            dt = np.float32 if (floats and spec["float"]) else np.dtype(spec["dtype"])
            a = np.ascontiguousarray(np.asarray(x), dtype=dt)
            per = int(np.prod(spec["shape"]))
            n = a.size // per if per and a.size % per == 0 else -1
            if self.fixed:
                n = self.fixed if a.size == per else -1
            if n < 0 or (batch is not None and n != batch):
                raise ValueError(f"input shaped {a.shape}, the export takes {spec['shape']}"
                                 + ("" if self.fixed else " per sample"))
            batch = n
            arrs.append(a)
        return arrs, batch

    def _shape(self, spec, batch):
        return list(spec["shape"]) if self.fixed else [batch] + list(spec["shape"][1:])

    def _outs(self, floats, batch):
        return [np.zeros(self._shape(o, batch), np.float32 if (floats and o["float"]) else np.dtype(o["dtype"]))
                for o in self.meta["outputs"]]

    def _batch_arg(self, batch):
        return ctypes.c_int32(self.fixed or batch)

    def run_int(self, *xs):
        """Quantized input(s) -> quantized output(s) (NAME_run)."""
        ins, batch = self._ins(xs, False)
        outs = self._outs(False, batch)
        rc = getattr(self.lib, f"{self.name}_run")(self._batch_arg(batch), *[self._ptr(a) for a in ins + outs])
        if rc != 0:
            raise RuntimeError(f"{self.name}_run returned {rc}")
        return outs[0] if len(outs) == 1 else tuple(outs)

    def run_float(self, *xs):
        """Float input(s) -> float output(s) through NAME_float.c (bit-exact with the engine)."""
        if not self.meta["has_float"]:
            raise RuntimeError("this model has no float edges")
        ins, batch = self._ins(xs, True)
        outs = self._outs(True, batch)
        rc = getattr(self.lib, f"{self.name}_run_float")(self._batch_arg(batch), *[self._ptr(a) for a in ins + outs])
        if rc != 0:
            raise RuntimeError(f"{self.name}_run_float returned {rc}")
        return outs[0] if len(outs) == 1 else tuple(outs)

    def __call__(self, *xs):
        if self.meta["has_float"] and any(np.asarray(x).dtype.kind == "f" for x in xs):
            return self.run_float(*xs)
        return self.run_int(*xs)

    def layers(self, *xs) -> dict:
        """{layer name: its output array, samples along dim 0} for quantized input(s)."""
        ins, batch = self._ins(xs, False)
        outs = self._outs(False, batch)
        parts = {}
        specs = self.meta["layers"]

        def cb(layer, sample, name, data, size, user):
            s = specs[layer]
            buf = np.ctypeslib.as_array(data, shape=(size,)).copy()
            parts.setdefault(s["name"], []).append(buf.view(np.dtype(s["dtype"])).reshape(s["shape"]))

        fn = LAYER_FN(cb)
        getattr(self.lib, f"{self.name}_run_arena")(self._batch_arg(batch), *[self._ptr(a) for a in ins + outs],
                                                    self.arena, fn, None)
        return {k: v[0] if self.fixed else np.concatenate(v) for k, v in parts.items()}


def compile_and_load(out_dir, name=None, opt="-O2") -> CModel:
    """Compile an export directory's C into a shared library and load it: a callable CModel."""
    meta = _meta(out_dir, name)
    return CModel(compile_shared(out_dir, meta["name"], opt), meta)
