"""Exported C (qgolden export --target c) against PyTorch's forward, one sample, in one run:
time per inference at -O2 and -O3 (NAME_run: quantized in/out; NAME_run_float: float in/out),
PyTorch single-threaded, `size` of the compiled object, arena bytes against the minimum, the size
of model.c and its compile time. Models: the forum example, the small CNN, a ResNet-18-shaped one.

    .venv/bin/python bench/bench_export.py [--no-resnet]
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")

BENCH_C = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdint.h>
#include <time.h>
#include "NAME.h"
#include "NAME_golden.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint8_t out[OUTBYTES];
static float fin[INBYTES];
static float fout[OUTBYTES];

int main(void) {
    long i, n = 1;
    double t0, t1, best = 1e30, bestf = 1e30;
    int rep;
    for (i = 0; i < INBYTES; ++i) fin[i] = 0.5f;
    for (;;) {  /* calibrate to ~20 ms per repetition */
        t0 = now();
        for (i = 0; i < n; ++i) NAME_run(1, (const void *)golden_input0, (void *)out);
        t1 = now();
        if (t1 - t0 > 0.02) break;
        n *= 2;
    }
    for (rep = 0; rep < 7; ++rep) {
        t0 = now();
        for (i = 0; i < n; ++i) NAME_run(1, (const void *)golden_input0, (void *)out);
        t1 = now();
        if ((t1 - t0) / n < best) best = (t1 - t0) / n;
        HASFLOAT_BEGIN
        t0 = now();
        for (i = 0; i < n; ++i) NAME_run_float(1, fin, fout);
        t1 = now();
        if ((t1 - t0) / n < bestf) bestf = (t1 - t0) / n;
        HASFLOAT_END
    }
    printf("%.9g %.9g\n", best, bestf);
    return out[0] == 255 ? 0 : 0;
}
"""


def torch_time(q, x, threads=1):
    import torch

    torch.set_num_threads(threads)
    xt = torch.from_numpy(x)
    with torch.no_grad():
        for _ in range(20):
            q(xt)
        n, best = 1, 1e30
        while True:
            t0 = time.perf_counter()
            for _ in range(n):
                q(xt)
            if time.perf_counter() - t0 > 0.02:
                break
            n *= 2
        for _ in range(7):
            t0 = time.perf_counter()
            for _ in range(n):
                q(xt)
            best = min(best, (time.perf_counter() - t0) / n)
    return best


def c_times(d, name, meta, opt):
    """(seconds per run, seconds per float run or None, `size` of the object, compile seconds)
    of the exported C at optimization level opt, timed by BENCH_C."""
    src = BENCH_C.replace("NAME", name).replace("OUTBYTES", str(_bytes(meta["outputs"][0]["shape"]))) \
        .replace("INBYTES", str(_bytes(meta["inputs"][0]["shape"])))
    hf = meta["has_float"] and meta["inputs"][0]["float"] and meta["outputs"][0]["float"]
    src = src.replace("HASFLOAT_BEGIN", "" if hf else "/*").replace("HASFLOAT_END", "" if hf else "*/")
    (d / "bench.c").write_text(src)
    objs = []
    t0 = time.perf_counter()
    for f in [d / f"{name}.c"] + ([d / f"{name}_float.c"] if meta["has_float"] else []):
        objs.append(str(d / f"{f.stem}{opt}.o"))
        subprocess.run(["cc", "-std=c99", opt, "-c", str(f), "-o", objs[-1]], check=True)
    compile_s = time.perf_counter() - t0
    exe = d / f"bench{opt}"
    subprocess.run(["cc", "-std=c99", opt, "-o", str(exe), str(d / "bench.c"), *objs], check=True)
    a, b = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    size = "n/a"
    if shutil.which("size"):
        line = subprocess.run(["size", objs[0]], capture_output=True, text=True).stdout.splitlines()[1].split()
        size = f"text {line[0]} data {line[1]} bss {line[2]}"
    return float(a), (float(b) if hf else None), size, compile_s


def _bytes(shape):
    return int(np.prod(shape))


def export_cases(resnet=True):
    """(name, quantized model, [one-sample input]) of the exported models: the forum example,
    the small CNN, and with resnet the ResNet-18-shaped model (bench_run) at batch 1, 112x112."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from qgolden.examples import forum
    from qgolden.export.small_cnn import build
    from qgolden.torch_side import engine

    with engine("x86"):
        fq = forum.build()
    cq, cx = build("x86")
    cases = [("forum", fq, [forum.INPUTS[:1].copy()]), ("small_cnn", cq, cx)]
    if resnet:
        from bench_run import quantized_fx, resnet18

        rq, rx = quantized_fx(resnet18, batch=1, size=112)
        cases.append(("resnet18", rq, [rx.numpy()]))
    return cases


def measure(name, q, xs, tmp):
    """One exported model against PyTorch's forward (one sample, one thread): {'pytorch',
    'O2', 'O3' (seconds per run), 'float_O2', 'size_O2', 'compile_O2' (seconds to compile the
    model's C files), 'model_c_bytes', 'weight_bytes' (the constants' bytes), 'int8_weight_bytes' (conv and linear
    weights, one byte each), 'arena', 'minimum'}."""
    import json

    from qgolden.api import lower
    from qgolden.export.c import export_c
    from qgolden.integer import to_integer_only
    from qgolden.torch_side import engine

    with engine("x86"):
        prog = lower(q, example_inputs=xs, engine="x86")
        ip = to_integer_only(prog)
        d = Path(tmp) / name
        r = export_c(ip, d, name, xs)
        meta = json.loads((d / f"{name}.json").read_text())
        tp = torch_time(q, xs[0])
    t2, f2, size2, c2 = c_times(d, name, meta, "-O2")
    t3, _, _, _ = c_times(d, name, meta, "-O3")
    return {"pytorch": tp, "O2": t2, "O3": t3, "float_O2": f2, "size_O2": size2, "compile_O2": c2,
            "model_c_bytes": (d / f"{name}.c").stat().st_size, "weight_bytes": r.weight_bytes,
            "int8_weight_bytes": sum(np.asarray(n.consts["weight"]).size for n in prog.nodes
                                     if n.op in ("conv", "linear") and "weight" in n.consts),
            "arena": r.arena_bytes, "minimum": r.minimum_bytes}


def print_header():
    print("exported C (qgolden export --target c) vs PyTorch forward, one sample, engine x86, torch 1 thread")
    print(f"{'model':<10} {'pytorch':>10} {'C -O2':>10} {'C -O3':>10} {'x (-O2)':>8} {'x (-O3)':>8} "
          f"{'float -O2':>10} {'arena':>9} {'minimum':>9} {'consts':>9} {'model.c':>10} {'cc -O2':>7}  object (-O2)")


def print_row(name, m):
    fs = f"{m['float_O2'] * 1e6:8.3f}us" if m["float_O2"] else "       n/a"
    print(f"{name:<10} {m['pytorch'] * 1e6:8.2f}us {m['O2'] * 1e6:8.3f}us {m['O3'] * 1e6:8.3f}us "
          f"{m['pytorch'] / m['O2']:7.1f}x {m['pytorch'] / m['O3']:7.1f}x {fs} {m['arena']:>9} {m['minimum']:>9} "
          f"{m['weight_bytes']:>9} {m['model_c_bytes'] / 1e6:8.1f}MB {m['compile_O2']:6.1f}s  {m['size_O2']}")


def main(argv=None):
    if shutil.which("cc") is None:
        print("bench_export: no C compiler (cc)")
        return 1
    resnet = "--no-resnet" not in (argv if argv is not None else sys.argv[1:])
    print_header()
    with tempfile.TemporaryDirectory() as tmp:
        for name, q, xs in export_cases(resnet):
            print_row(name, measure(name, q, xs, tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
