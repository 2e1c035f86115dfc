"""Random PT2E (torchao) models: lower, run, verify against the runtime each quantizer targets.

    .venv/bin/python -m qgolden.fuzz_pt2e --models 100 [--seed 0] [--engines pt2e-reference,x86-inductor]

XNNPACKQuantizer models (int8, per-channel or per-tensor weights) are verified against
`pt2e-reference` (torchao's reference representation) and, with `--engines xnnpack`, against
ExecuTorch's XNNPACK delegate (the .pte run by ExecuTorch's runtime; needs executorch, ~10 s per
model); X86InductorQuantizer models (uint8) against `x86-inductor` (torch.compile with freezing;
~10-25 s per model). A few are QAT-prepared (prepare_qat_pt2e), BN folded at convert. Models the
runtime itself refuses to run are counted apart ("rejected by the runtime").
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

os.environ.setdefault("TORCHAO_FORCE_SKIP_LOADING_SO_FILES", "1")


def make_model(rng, conv_ops=True, variants=False):
    """A random conv net and its input shape. variants=True (the campaign) adds average pools between
    the ops and batch-1 inputs, drawn from a second generator so that each seed's other choices, and so
    the models that tests pin by seed, stay what they were."""
    import numpy as np
    import torch
    from torch import nn
    import torch.nn.functional as F

    c_in = int(rng.choice([3, 4, 8]))
    hw = int(rng.choice([6, 8, 9]))
    ops = []
    c = c_in
    n_ops = int(rng.integers(2, 6))
    for _ in range(n_ops):
        kind = str(rng.choice(["conv", "dw", "add", "cat", "maxpool", "hardswish", "relu6"]))
        ops.append(kind)
    aux = np.random.default_rng([int(rng.bit_generator.seed_seq.entropy), 1]) if variants else None
    avg_cfgs = []
    batch = 2
    if aux is not None:
        for _ in range(int(aux.integers(0, 3))):
            at = int(aux.integers(0, len(ops) + 1))
            ops.insert(at, "avgpool")
        # kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
        avg_cfgs = [((2, 2), None, 0, False, True, None), ((3, 3), (1, 1), (1, 1), False, True, None),
                    ((3, 3), (2, 2), (1, 1), True, False, None), ((2, 3), (1, 2), (1, 1), False, False, None),
                    ((2, 2), (1, 1), 0, True, True, 3)]
        batch = int(aux.choice([1, 2]))

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.mods = nn.ModuleList()
            self.kinds = []
            ch = c
            for k in ops:
                if k == "conv":
                    co = int(rng.choice([4, 8, 16]))
                    ks = int(rng.choice([1, 3]))
                    m = nn.Sequential(nn.Conv2d(ch, co, ks, padding=ks // 2, stride=int(rng.choice([1, 1, 2])),
                                                bias=bool(rng.integers(0, 2))))
                    if rng.random() < 0.3:
                        m.append(nn.BatchNorm2d(co))
                    if rng.random() < 0.5:
                        m.append(nn.ReLU())
                    ch = co
                elif k == "dw":
                    m = nn.Conv2d(ch, ch, 3, padding=1, groups=ch)
                elif k in ("add", "cat"):
                    m = nn.Conv2d(ch, ch, 1)
                    if k == "cat":
                        ch = 2 * ch
                else:
                    m = nn.Identity()
                self.mods.append(m)
                self.kinds.append(k)
            self.avg = [avg_cfgs[int(aux.integers(0, len(avg_cfgs)))] if k == "avgpool" else None
                        for k in self.kinds]
            self.pool = bool(rng.integers(0, 2))
            self.fc = nn.Linear(ch, int(rng.choice([3, 5, 10]))) if self.pool else None

        def forward(self, x):
            for k, m, avg in zip(self.kinds, self.mods, self.avg):
                if k in ("conv", "dw"):
                    x = m(x)
                elif k == "add":
                    x = x + m(x)
                elif k == "cat":
                    x = torch.cat([x, m(x)], 1)
                elif k == "maxpool" and x.shape[-1] >= 4:
                    x = F.max_pool2d(x, 2)
                elif k == "hardswish":
                    x = F.hardswish(x)
                elif k == "relu6":
                    x = F.relu6(x)
                elif k == "avgpool" and x.shape[-1] >= 4:
                    x = F.avg_pool2d(x, *avg)
            if self.pool:
                x = F.adaptive_avg_pool2d(x, 1).flatten(1)
                x = self.fc(x)
            return x

    torch.manual_seed(int(rng.integers(0, 2**31)))
    m = M()
    for mod in m.modules():  # non-trivial BN statistics
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
    return m.eval(), (batch, c_in, hw, hw)


def quantize(model, shape, quantizer_name, per_channel, qat, rng):
    import torch
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e, prepare_qat_pt2e

    x = torch.randn(*shape) * float(rng.choice([0.5, 1.0, 3.0]))
    if quantizer_name == "xnnpack":
        from torchao.testing.pt2e._xnnpack_quantizer import XNNPACKQuantizer, get_symmetric_quantization_config

        q = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=per_channel, is_qat=qat))
    else:
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq

        q = xiq.X86InductorQuantizer().set_global(xiq.get_default_x86_inductor_quantization_config(is_qat=qat))
    if qat:
        model.train()
        ep = torch.export.export(model, (x,)).module()
        p = prepare_qat_pt2e(ep, q)
    else:
        ep = torch.export.export(model, (x,)).module()
        p = prepare_pt2e(ep, q)
    with torch.no_grad():
        for _ in range(3):
            p(torch.randn(*shape) * float(rng.choice([0.5, 1.0, 3.0])))
    c = convert_pt2e(p)
    if qat:
        from torchao.quantization.pt2e import move_exported_model_to_eval

        move_exported_model_to_eval(c)
    return c, torch.randn(*shape)


def one(seed, engine, per_channel=None, qat=None, variants=False):
    """Build, quantize, lower and verify one random model (make_model's variants: the campaign's).
    Returns (report, description)."""
    import numpy as np

    from . import api

    rng = np.random.default_rng(seed)
    model, shape = make_model(rng, variants=variants)
    qname = "xnnpack" if engine in ("pt2e-reference", "xnnpack") else "x86"
    per_channel = bool(rng.integers(0, 2)) if per_channel is None else per_channel
    qat = (rng.random() < 0.15) if qat is None else qat
    gm, x = quantize(model, shape, qname, per_channel, qat, rng)
    prog = api.lower(gm, (x,), engine=engine)
    rep = api.verify(gm, x, program=prog)
    desc = (f"seed {seed}: {qname} {'per-channel' if per_channel else 'per-tensor'}{' QAT' if qat else ''} "
            f"batch {shape[0]} {model.kinds}")
    return rep, desc


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--engines", default="pt2e-reference,x86-inductor",
                    help="comma list of pt2e-reference, x86-inductor (compiles each model: slow), xnnpack "
                    "(ExecuTorch's .pte: needs executorch, `make fuzz-pt2e ENGINES=xnnpack`)")
    a = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    import logging

    logging.disable(logging.WARNING)
    engines = a.engines.split(",")
    bad = rejected = 0
    elements = 0
    per = {e: [0, 0] for e in engines}
    t0 = time.time()
    for i in range(a.models):
        eng = engines[i % len(engines)]
        seed = a.seed + i
        try:
            rep, desc = one(seed, eng, variants=True)
        except ValueError as e:
            if "is not one" in str(e):  # the quantizer quantized nothing in this model
                print(f"[{eng}] seed {seed}: skipped (nothing quantized)")
                continue
            print(f"[{eng}] seed {seed}: ERROR ValueError: {e}")
            bad += 1
            continue
        except Exception as e:  # a model qgolden refuses or PyTorch fails on: report, continue
            from .importers.pt2e import XNN_CANNOT_RUN

            if XNN_CANNOT_RUN in str(e):  # the runtime itself rejects the model (not a qgolden mismatch)
                print(f"[{eng}] seed {seed}: skipped ({str(e).splitlines()[0]})")
                rejected += 1
                continue
            print(f"[{eng}] seed {seed}: ERROR {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            bad += 1
            continue
        per[eng][0] += 1
        elements += sum(l.elements for l in rep.layers) + sum(o["elements"] for o in rep.outputs)
        if not rep.bit_exact:
            per[eng][1] += 1
            bad += 1
            print(f"[{eng}] MISMATCH {desc}: outputs {rep.outputs} layers "
                  f"{[(l.name, l.mismatches) for l in rep.layers if l.mismatches]}")
        qdq = sum(l.mismatches for l in rep.qdq_layers)
        print(f"[{eng}] {'ok ' if rep.bit_exact else 'BAD'} {desc} (vs float Q/DQ graph: {qdq} elements differ)",
              flush=True)
    print(f"\n{a.models} models in {time.time() - t0:.0f}s; per engine (verified, mismatching): {per}; "
          f"elements compared: {elements}; rejected by the runtime: {rejected}; failures: {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
