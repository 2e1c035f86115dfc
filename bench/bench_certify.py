"""Certification time for a ResNet-18-shaped model (bench_run.resnet18 quantized with FX, x86
engine, random weights calibrated on random data, batch 1): every op made integer-only and checked
over every value it can receive, and the time `lower --integer-only` takes. Targets: certify under
60 s, lower --integer-only under 30 s (bench/bench.py reads measure()).

    .venv/bin/python bench/bench_certify.py [--bits 32] [--engine x86] [--size 112]
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def measure(engine="x86", size=112, bits=32, rounding="half_up"):
    """{'lower_integer_only': seconds to lower the model and make it integer-only (what `qgolden
    lower --integer-only` does), 'certify': seconds of certify() on the lowered program,
    'cpu': its CPU seconds, 'cert', 'program', 'model', 'input'}."""
    import qgolden
    from bench_run import quantized_fx, resnet18
    from qgolden.integer import certify, to_integer_only

    q, x = quantized_fx(resnet18, engine=engine, batch=1, size=size)
    t0 = time.perf_counter()
    prog = qgolden.lower(q, example_inputs=(x,), engine=engine)
    to_integer_only(prog, multiplier_bits=bits, rounding=rounding)
    lower_s = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    cert = certify(prog, multiplier_bits=bits, rounding=rounding)
    return {"lower_integer_only": lower_s, "certify": time.perf_counter() - t0, "cpu": time.process_time() - c0,
            "cert": cert, "program": prog, "model": q, "input": x}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--bits", type=int, default=32)
    ap.add_argument("--engine", default="x86")
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--rounding", default="half_up")
    ap.add_argument("--check", action="store_true", help="also run the integer-only program against PyTorch")
    a = ap.parse_args(argv)
    import torch

    m = measure(a.engine, a.size, a.bits, a.rounding)
    cert, prog, q, x = m["cert"], m["program"], m["model"], m["input"]
    t, n = cert.channel_counts()
    dom = sum(c.domain for c in cert.ops if c.op in ("linear", "conv"))
    print(f"ResNet-18-shaped, engine {a.engine} ({prog.profile['isa']}), {len(prog.nodes)} ops, "
          f"{torch.get_num_threads()} threads")
    print(f"  lower --integer-only: {m['lower_integer_only']:.1f} s")
    print(f"  certify ({a.bits}-bit multipliers, {a.rounding}): {m['certify']:.1f} s wall, {m['cpu']:.1f} s CPU; "
          f"{cert.n_certified}/{len(cert.ops)} ops "
          f"certified; {t}/{n} conv/linear channels need threshold tables ({t / max(n, 1):.1%}); "
          f"{dom:.3g} accumulator values covered")
    seg = sum(int(np.sum(c.params.get("use_segments", 0))) for c in cert.ops if c.op in ("linear", "conv"))
    print(f"  channels: {n - t - seg} one multiplier/shift, {seg} multiplier/shift with a bias per binade, "
          f"{t} threshold tables")
    slow = sorted(cert.ops, key=lambda c: -c.seconds)[:3]
    print("  slowest: " + ", ".join(f"{c.name} {c.seconds:.1f} s" for c in slow))
    ok = cert.certified
    if a.check:
        ip = cert.program
        with torch.no_grad():
            old = torch.backends.quantized.engine
            torch.backends.quantized.engine = a.engine
            ref = q(x).numpy()
            torch.backends.quantized.engine = old
        y = ip.run(x.numpy())
        same = np.array_equal(y.view(np.int32), ref.view(np.int32))
        print(f"  integer-only program vs PyTorch: {'bit-exact' if same else 'DIFFERS'}")
        ok = ok and same
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
