"""`make bench`: qgolden's program against PyTorch's own forward, in one process.

Models: ResNet-18-shaped and MobileNetV2-shaped, quantized with FX on the x86 engine (random
weights, calibrated on random data), batch 4, 112x112. Figures are ratios against PyTorch on this
machine, this run. bench/bench.py (`make bench`) reads measure() for its table of targets.
"""
from __future__ import annotations

import statistics
import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")


def resnet18(num_classes=1000):
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU()
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.down = None
            if stride != 1 or cin != cout:
                self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            idt = x if self.down is None else self.down(x)
            y = self.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return torch.relu(y + idt)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU()
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            layers = []
            cin = 64
            for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
                layers.append(nn.Sequential(Block(cin, cout, stride), Block(cout, cout, 1)))
                cin = cout
            self.layers = nn.Sequential(*layers)
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(512, num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layers(x)
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return Net().eval()


def mobilenet_v2_shaped(num_classes=100):
    """Inverted residual blocks (1x1 expand, 3x3 depthwise, 1x1 project, ReLU6), no residual
    adds: FBGEMM's depthwise kernel and many small convs."""
    import torch
    from torch import nn

    def block(cin, cout, stride, expand=4):
        hid = cin * expand
        return nn.Sequential(nn.Conv2d(cin, hid, 1, bias=False), nn.BatchNorm2d(hid), nn.ReLU6(),
                             nn.Conv2d(hid, hid, 3, stride, 1, groups=hid, bias=False), nn.BatchNorm2d(hid),
                             nn.ReLU6(), nn.Conv2d(hid, cout, 1, bias=False), nn.BatchNorm2d(cout))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6())
            self.blocks = nn.Sequential(block(16, 24, 2), block(24, 24, 1), block(24, 32, 2), block(32, 64, 2),
                                        block(64, 96, 1))
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(96, num_classes)

        def forward(self, x):
            return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))

    return Net().eval()


def quantized_fx(build, engine="x86", batch=4, size=112, seed=0):
    """build() quantized with FX (random weights, calibrated on random data) and its input."""
    import torch
    from torch.ao.quantization import QConfigMapping, get_default_qconfig
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.manual_seed(seed)
    torch.backends.quantized.engine = engine
    m = build()
    x = torch.randn(batch, 3, size, size)
    p = prepare_fx(m, QConfigMapping().set_global(get_default_qconfig(engine)), (x,))
    with torch.no_grad():
        p(x)
    return convert_fx(p), x


def timed(fn) -> float:
    time.sleep(0.2)  # let the previous call's BLAS / OpenMP threads go idle: each call starts from rest
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


MODELS = {"ResNet-18-shaped": resnet18, "MobileNetV2-shaped": mobilenet_v2_shaped}


def main(rounds: int = 7):
    """Both models, every path; exit status 1 when an output is not bit-exact."""
    ok = True
    for title, build in MODELS.items():
        m = measure(quantized_fx(build), rounds, integer_only=title.startswith("ResNet"))
        print_measure(title, m)
        ok &= all(r["same"] for r in m["paths"].values())
    return 0 if ok else 1


def measure(model_and_input, rounds=7, integer_only=False):
    """qgolden's program against PyTorch's forward on one model: per path (NumPy sums, torch
    sums, and with integer_only the --integer-only program, torch sums), rounds alternate
    PyTorch and qgolden, so a change in machine load hits both alike; the ratio is the median
    of the per-round ratios. {'isa', 'threads', 'paths': {path: {'pytorch', 'qgolden' (median
    seconds), 'ratio', 'same' (bit-exact)}}, 'integer_vs_default': median ratio of the
    integer-only program to the default one}."""
    import torch

    import qgolden

    q, x = model_and_input
    prog = qgolden.lower(q, example_inputs=(x,), engine="x86")
    runs = {"numpy": lambda: prog.run(xn, accumulate="numpy"), "torch": lambda: prog.run(xn, accumulate="torch")}
    if integer_only:
        from qgolden.integer import to_integer_only

        ip = to_integer_only(prog)
        runs["integer-only"] = lambda: ip.run(xn, accumulate="torch")
    xn = x.numpy()
    paths = {}
    times = {}
    with torch.no_grad():
        ref = q(x).numpy()
        run_torch = lambda: q(x)  # noqa: E731
        for name, run_prog in runs.items():
            same = np.array_equal(run_prog(), ref)  # also the warm-up
            run_torch()
            pt, qg = [], []
            for _ in range(rounds):
                pt.append(timed(run_torch))
                qg.append(timed(run_prog))
            times[name] = qg
            paths[name] = {"pytorch": statistics.median(pt), "qgolden": statistics.median(qg),
                           "ratio": statistics.median(t / p for t, p in zip(qg, pt)), "same": same}
    out = {"isa": prog.profile["isa"], "threads": torch.get_num_threads(), "rounds": rounds,
           "batch": x.shape[0], "size": x.shape[-1], "paths": paths}
    if integer_only:
        # the integer-only and the default program (torch sums) timed alternately as well
        ai, ad = [], []
        for _ in range(rounds):
            ad.append(timed(runs["torch"]))
            ai.append(timed(runs["integer-only"]))
        out["integer_vs_default"] = statistics.median(i / d for i, d in zip(ai, ad))
    return out


def print_measure(title, m):
    print(f"{title} quantized model, x86 engine ({m['isa']}), batch {m['batch']}, {m['size']}x{m['size']}, "
          f"{m['threads']} threads, {m['rounds']} alternating rounds per path (medians)")
    for b, r in m["paths"].items():
        print(f"  {b:<12} qgolden run {r['qgolden'] * 1e3:7.1f} ms, PyTorch forward {r['pytorch'] * 1e3:6.1f} ms: "
              f"{r['ratio']:5.2f}x PyTorch, output {'bit-exact' if r['same'] else 'DIFFERS'}")
    if "integer_vs_default" in m:
        print(f"  integer-only program: {m['integer_vs_default']:.2f}x the default program (torch sums)")


if __name__ == "__main__":
    sys.exit(main())
