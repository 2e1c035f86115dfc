"""Exported C (qgolden export --target c) against PyTorch's forward, one sample, in one run:
time per inference at -O2 and -O3 (NAME_run: quantized in/out; NAME_run_float: float in/out),
PyTorch single-threaded, `size` of the compiled object, arena bytes against the minimum.

    .venv/bin/python bench/bench_export.py
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
        for (i = 0; i < n; ++i) NAME_run((const void *)golden_input0, (void *)out);
        t1 = now();
        if (t1 - t0 > 0.02) break;
        n *= 2;
    }
    for (rep = 0; rep < 7; ++rep) {
        t0 = now();
        for (i = 0; i < n; ++i) NAME_run((const void *)golden_input0, (void *)out);
        t1 = now();
        if ((t1 - t0) / n < best) best = (t1 - t0) / n;
        HASFLOAT_BEGIN
        t0 = now();
        for (i = 0; i < n; ++i) NAME_run_float(fin, fout);
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
    src = BENCH_C.replace("NAME", name).replace("OUTBYTES", str(_bytes(meta["outputs"][0]["shape"]))) \
        .replace("INBYTES", str(_bytes(meta["inputs"][0]["shape"])))
    hf = meta["has_float"] and meta["inputs"][0]["float"] and meta["outputs"][0]["float"]
    src = src.replace("HASFLOAT_BEGIN", "" if hf else "/*").replace("HASFLOAT_END", "" if hf else "*/")
    (d / "bench.c").write_text(src)
    srcs = [str(d / "bench.c"), str(d / f"{name}.c")] + ([str(d / f"{name}_float.c")] if meta["has_float"] else [])
    exe = d / f"bench{opt}"
    subprocess.run(["cc", "-std=c99", opt, "-o", str(exe), *srcs], check=True)
    a, b = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    obj = d / f"{name}{opt}.o"
    subprocess.run(["cc", "-std=c99", opt, "-c", str(d / f"{name}.c"), "-o", str(obj)], check=True)
    size = "n/a"
    if shutil.which("size"):
        line = subprocess.run(["size", str(obj)], capture_output=True, text=True).stdout.splitlines()[1].split()
        size = f"text {line[0]} data {line[1]} bss {line[2]}"
    return float(a), (float(b) if hf else None), size


def _bytes(shape):
    return int(np.prod(shape))


def main():
    import json

    from qgolden.api import lower
    from qgolden.examples import forum
    from qgolden.export.c import export_c
    from qgolden.export.small_cnn import build
    from qgolden.integer import to_integer_only
    from qgolden.torch_side import engine

    if shutil.which("cc") is None:
        print("bench_export: no C compiler (cc)")
        return 1
    with engine("x86"):
        fq = forum.build()
    cq, cx = build("x86")
    cases = [("forum", fq, [forum.INPUTS[:1].copy()]), ("small_cnn", cq, cx)]
    print("exported C (qgolden export --target c) vs PyTorch forward, one sample, engine x86, torch 1 thread")
    print(f"{'model':<10} {'pytorch':>10} {'C -O2':>10} {'C -O3':>10} {'x (-O2)':>8} {'x (-O3)':>8} "
          f"{'float -O2':>10} {'arena':>7} {'minimum':>7} {'consts':>7}  object (-O2)")
    with tempfile.TemporaryDirectory() as tmp:
        for name, q, xs in cases:
            with engine("x86"):
                prog = lower(q, example_inputs=xs, engine="x86")
                ip = to_integer_only(prog)
                d = Path(tmp) / name
                r = export_c(ip, d, name, xs)
                meta = json.loads((d / f"{name}.json").read_text())
                tp = torch_time(q, xs[0])
            t2, f2, size2 = c_times(d, name, meta, "-O2")
            t3, _, _ = c_times(d, name, meta, "-O3")
            fs = f"{f2 * 1e6:8.3f}us" if f2 else "       n/a"
            print(f"{name:<10} {tp * 1e6:8.2f}us {t2 * 1e6:8.3f}us {t3 * 1e6:8.3f}us {tp / t2:7.1f}x {tp / t3:7.1f}x "
                  f"{fs} {r.arena_bytes:>7} {r.minimum_bytes:>7} {r.weight_bytes:>7}  {size2}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
