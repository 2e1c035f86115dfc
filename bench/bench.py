"""`make bench`: every speed target of qgolden on the host it runs on, as ratios against PyTorch
in the same run, then one table with each target's status (met / not met).

    .venv/bin/python bench/bench.py [--rounds 7] [--no-resnet-export]

Parts: bench_run (qgolden run vs PyTorch's forward, NumPy and torch sums, the integer-only
program), bench_certify (certify and lower --integer-only times), bench_explain_html (the HTML
explanation's time), bench_export (exported C vs PyTorch, one sample, one thread) and the peak
RSS of `qgolden run` against PyTorch's forward, each measured in a fresh process.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# Run in a fresh process by peak_rss: builds the model, then either runs PyTorch's forward, or
# saves the lowered program and its input for `qgolden run` (measured in a process of its own).
RSS_CHILD = r"""
import sys, numpy as np, torch
sys.path.insert(0, sys.argv[1])
from bench_run import quantized_fx, resnet18
q, x = quantized_fx(resnet18)
if sys.argv[2] == "pytorch":
    with torch.no_grad():
        q(x)
else:
    import qgolden
    qgolden.lower(q, example_inputs=(x,), engine="x86").save(sys.argv[3] + "/model.qgp")
    np.save(sys.argv[3] + "/x.npy", x.numpy())
"""

# Runs `python -m MODULE ARGS...` in this process, then prints the process's peak RSS (VmHWM,
# which exec resets, unlike getrusage's ru_maxrss, which keeps the forking parent's) last.
PEAK_OF = r"""
import runpy, sys
mod, sys.argv = sys.argv[1], sys.argv[1:]
try:
    runpy.run_module(mod, run_name="__main__")
except SystemExit as e:
    if e.code:
        raise
finally:
    hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")]
    print("VmHWM", int(hwm[0].split()[1]) * 1024 if hwm else -1)
"""


def child_peak_rss(module, *args, path=()) -> int:
    """Peak resident set size (bytes) of `python -m module args...` in a fresh process, with the
    folders `path` first on its module path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*path, *sys.path])}
    out = subprocess.run([sys.executable, "-c", PEAK_OF, module, *args], capture_output=True, text=True,
                         check=True, env=env).stdout
    return int(out.split("VmHWM")[-1])


def peak_rss():
    """(qgolden run's peak RSS on the ResNet-18-shaped model's .qgp, PyTorch's forward's, from
    import to result), bytes, each in a process of its own; None when /proc is missing."""
    if not Path("/proc/self/status").exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "rss_child.py").write_text(RSS_CHILD)
        torch_rss = child_peak_rss("rss_child", str(HERE), "pytorch", path=[tmp])
        child_peak_rss("rss_child", str(HERE), "save", tmp, path=[tmp])
        ours = child_peak_rss("qgolden.cli", "run", f"{tmp}/model.qgp", "--input", f"{tmp}/x.npy",
                              "--output", f"{tmp}/y.npy")
    return ours, torch_rss


class Targets:
    """Rows (target, measured, status) for the final table."""

    def __init__(self):
        self.rows = []

    def at_most(self, what, value, limit, fmt):
        self.rows.append((what, fmt.format(value), f"<= {fmt.format(limit)}", value <= limit))

    def at_least(self, what, value, limit, fmt):
        self.rows.append((what, fmt.format(value), f">= {fmt.format(limit)}", value >= limit))

    def check(self, what, ok, text):
        self.rows.append((what, text, "", ok))

    def print(self, host):
        print(f"\ntargets on this host ({host}):")
        w = max(len(r[0]) for r in self.rows)
        for what, value, limit, ok in self.rows:
            print(f"  {what:<{w}}  {value:>12} {limit:>12}  {'met' if ok else 'NOT MET'}")
        met = sum(r[3] for r in self.rows)
        print(f"  {met}/{len(self.rows)} targets met")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--no-resnet-export", action="store_true", help="skip the ResNet-18-shaped C export")
    a = ap.parse_args(argv)
    import bench_certify
    import bench_explain_html
    import bench_export
    import bench_run

    t = Targets()
    same = True
    host = None
    for title, build in bench_run.MODELS.items():
        resnet = title.startswith("ResNet")
        m = bench_run.measure(bench_run.quantized_fx(build), a.rounds, integer_only=resnet)
        bench_run.print_measure(title, m)
        host = f"{m['isa']}, {m['threads']} threads"
        lim = (2.0, 10.0) if resnet else (3.0, 12.0)
        t.at_most(f"{title}: run (torch sums) / PyTorch", m["paths"]["torch"]["ratio"], lim[0], "{:.2f}x")
        t.at_most(f"{title}: run (NumPy sums) / PyTorch", m["paths"]["numpy"]["ratio"], lim[1], "{:.2f}x")
        if resnet:
            t.at_most(f"{title}: integer-only / default program", m["integer_vs_default"], 1.2, "{:.2f}x")
        same &= all(r["same"] for r in m["paths"].values())
    t.check("every run output bit-exact with PyTorch", same, "yes" if same else "NO")

    c = bench_certify.measure()
    print(f"\nResNet-18-shaped (batch 1): lower --integer-only {c['lower_integer_only']:.1f} s, "
          f"certify {c['certify']:.1f} s ({c['cert'].n_certified}/{len(c['cert'].ops)} ops certified)")
    t.at_most("ResNet-18-shaped: certify", c["certify"], 60.0, "{:.1f} s")
    t.at_most("ResNet-18-shaped: lower --integer-only", c["lower_integer_only"], 30.0, "{:.1f} s")

    h = bench_explain_html.measure()
    print(f"ResNet-18-shaped (batch 1, 56x56): explain {h['explain']:.1f} s, HTML page {h['default']:.1f} s "
          f"({h['default_mb']:.1f} MB; without pictures {h['none']:.2f} s)")
    t.at_most("ResNet-18-shaped: explain + HTML page with pictures", h["explain"] + h["default"], 60.0, "{:.1f} s")

    print()
    if not bench_export.shutil.which("cc"):
        print("bench_export: no C compiler (cc): the C targets are not measured")
    else:
        bench_export.print_header()
        with tempfile.TemporaryDirectory() as tmp:
            for name, q, xs in bench_export.export_cases(resnet=not a.no_resnet_export):
                e = bench_export.measure(name, q, xs, tmp)
                bench_export.print_row(name, e)
                t.check(f"C {name}: arena at the minimum live set", e["arena"] <= e["minimum"],
                        f"{e['arena']}/{e['minimum']} B")
                if name == "small_cnn":
                    t.at_least("C small_cnn: PyTorch (1 thread) / C -O2", e["pytorch"] / e["O2"], 10.0, "{:.1f}x")
                    t.at_least("C small_cnn: C -O2 / C -O3 time", e["O2"] / e["O3"], 1.0, "{:.2f}x")
                if name == "resnet18":
                    t.at_least("C ResNet-18-shaped: PyTorch (1 thread) / C -O2", e["pytorch"] / e["O2"], 1.0,
                               "{:.2f}x")
                    t.at_most("C ResNet-18-shaped: model.c / int8 weights", e["model_c_bytes"] / e["int8_weight_bytes"],
                              4.0, "{:.1f}x")
                    t.at_most("C ResNet-18-shaped: compile -O2", e["compile_O2"], 60.0, "{:.1f} s")

    rss = peak_rss()
    if rss is None:
        print("\npeak RSS: not measured (no /proc on this host)")
    else:
        ours, theirs = rss
        print(f"\npeak RSS, ResNet-18-shaped batch 4: qgolden run (.qgp) {ours / 2**20:.0f} MiB, "
              f"PyTorch forward {theirs / 2**20:.0f} MiB")
        t.at_most("ResNet-18-shaped: peak RSS of qgolden run / PyTorch", ours / theirs, 2.0, "{:.2f}x")
    t.print(host)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
