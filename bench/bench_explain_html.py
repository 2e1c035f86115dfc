"""Time of the HTML explanation of a ResNet-18-shaped model (bench_run.resnet18 quantized with FX, x86
engine, batch 1): building the explanation, then rendering the page with the default pictures
(the first render_html.MAX_PICTURE_LAYERS layers), with every layer's pictures, and without
pictures; and the page sizes. Target: explain + page with the default pictures under 60 s
(bench/bench.py reads measure()).

    .venv/bin/python bench/bench_explain_html.py [--size 56]
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def measure(engine="x86", size=56):
    """{'layers', 'explain', 'default', 'all', 'none' (seconds), 'default_mb', 'all_mb', 'none_mb'}."""
    import qgolden
    from bench_run import quantized_fx, resnet18
    from qgolden.explain import explain, render

    q, x = quantized_fx(resnet18, engine=engine, batch=1, size=size)
    prog = qgolden.lower(q, example_inputs=(x,), engine=engine)
    out = {"layers": len(prog.nodes)}
    t = time.perf_counter()
    doc, _, _ = explain(prog, [x.numpy()])
    out["explain"] = time.perf_counter() - t
    render(doc, "html", max_pictures=1)  # matplotlib's import is not the page's time
    for name, opts in (("default", {}), ("all", {"max_pictures": len(prog.nodes)}), ("none", {"pictures": False})):
        t = time.perf_counter()
        page = render(doc, "html", **opts)
        out[name] = time.perf_counter() - t
        out[f"{name}_mb"] = len(page.encode()) / 1e6
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=56)
    a = ap.parse_args(argv)
    m = measure(size=a.size)
    print(f"ResNet-18-shaped ({m['layers']} layers, {a.size}x{a.size}): explain {m['explain']:.1f} s; page with "
          f"default pictures {m['default']:.1f} s ({m['default_mb']:.1f} MB), every layer's {m['all']:.1f} s "
          f"({m['all_mb']:.1f} MB), none {m['none']:.2f} s ({m['none_mb']:.1f} MB)")


if __name__ == "__main__":
    main()
