"""Bit-exact checks of the elementwise quantized ops against torch (int_repr equality).

Torch is only used here, as the reference. Lengths cover the vector/tail split of ATen's
cpu_kernel_vec (blocks of 2*V, V = profile['vector_width']) and, for 70001 elements, the
OpenMP chunking (profile['num_threads'] = torch.get_num_threads()).
"""
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.ao.nn.quantized as nnq  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from qgolden.numerics import quantize as Q  # noqa: E402
from qgolden.ops.add import add, add_scalar  # noqa: E402
from qgolden.ops.batch_norm import batch_norm  # noqa: E402
from qgolden.ops.cat import cat  # noqa: E402
from qgolden.ops.dequantize import dequantize  # noqa: E402
from qgolden.ops.elu import elu  # noqa: E402
from qgolden.ops.hardswish import hardswish  # noqa: E402
from qgolden.ops.hardtanh import hardtanh, relu6  # noqa: E402
from qgolden.ops.leaky_relu import leaky_relu  # noqa: E402
from qgolden.ops.mul import mul, mul_scalar  # noqa: E402
from qgolden.ops.quantize import quantize  # noqa: E402
from qgolden.ops.relu import relu  # noqa: E402
from qgolden.ops.sigmoid import sigmoid  # noqa: E402
from qgolden.ops.tanh import tanh  # noqa: E402

warnings.filterwarnings("ignore")
DTYPES = ["uint8", "int8"]
RANGE = {"uint8": (0, 255), "int8": (-128, 127)}
NPD = {"uint8": np.uint8, "int8": np.int8}
SHAPES = [(1,), (31,), (32,), (33,), (63,), (64,), (65,), (100,), (1000,), (2, 3, 5, 7), (2, 16, 9, 9)]


def mkq(q, s, z):
    return torch._make_per_tensor_quantized_tensor(torch.from_numpy(np.ascontiguousarray(q)), s, z)


def rq(rng, shape, dt):
    lo, hi = RANGE[dt]
    return rng.integers(lo, hi + 1, shape).astype(NPD[dt])


def rp(rng, dt, lo=-3, hi=0):
    a, b = RANGE[dt]
    return float(10 ** rng.uniform(lo, hi)), int(rng.integers(a, b + 1))


def same(mine, ref):
    ref = ref.int_repr().numpy() if hasattr(ref, "int_repr") else ref
    mine = np.asarray(mine)
    assert mine.shape == ref.shape
    bad = int(np.sum(mine.astype(np.int64) != ref.astype(np.int64)))
    assert bad == 0, f"{bad}/{ref.size} mismatches"


# ---------------------------------------------------------------- quantize / dequantize
@pytest.mark.parametrize("dt", ["uint8", "int8", "int32"])
def test_quantize_dequantize_per_tensor(dt):
    rng = np.random.default_rng(1)
    tdt = {"uint8": torch.quint8, "int8": torch.qint8, "int32": torch.qint32}[dt]
    lo, hi = {"uint8": (0, 255), "int8": (-128, 127), "int32": (-1000, 1000)}[dt]
    for trial in range(60):
        s = float(10 ** rng.uniform(-4, 1))
        z = int(rng.integers(lo, hi + 1))
        n = int(rng.integers(1, 200))
        k = rng.integers(-300, 300, n)
        x = ((k + 0.5) * s).astype(np.float32)  # exact-ish ties
        x[::2] = (rng.uniform(-300, 300, n)[::2] * s).astype(np.float32)
        x[::5] = (np.float32(k[::5] + 0.5) / (np.float32(1) / np.float32(s))).astype(np.float32)
        if trial == 0:
            x[:6] = [np.nan, np.inf, -np.inf, 1e30, -1e30, -0.0][: min(6, n)] if n >= 6 else x[:n]
        with np.errstate(all="ignore"):
            t = torch.quantize_per_tensor(torch.from_numpy(x), s, z, tdt)
            same(quantize(x, scale=s, zero_point=z, dtype=dt), t)
            ref = t.dequantize().numpy()
            mine = dequantize(t.int_repr().numpy(), scale=s, zero_point=z)
        assert np.array_equal(mine.view(np.int32), ref.view(np.int32))


@pytest.mark.parametrize("dt", ["uint8", "int8"])
def test_quantize_dequantize_per_channel(dt):
    rng = np.random.default_rng(2)
    tdt = {"uint8": torch.quint8, "int8": torch.qint8}[dt]
    lo, hi = RANGE[dt]
    for trial in range(40):
        C = 4
        sc = 10 ** rng.uniform(-4, 1, C)
        zc = rng.integers(lo, hi + 1, C)
        k = rng.integers(-300, 300, (C, 30)) + 0.5
        x = (k * sc[:, None]).astype(np.float32)
        inv = (np.float32(1) / sc.astype(np.float32))[:, None]
        x[:, ::2] = (np.float32(k[:, ::2]) / inv).astype(np.float32)
        t = torch.quantize_per_channel(torch.from_numpy(x), torch.from_numpy(sc), torch.from_numpy(zc), 0, tdt)
        same(quantize(x, scale=sc, zero_point=zc, axis=0, dtype=dt), t)
        mine = dequantize(t.int_repr().numpy(), scale=sc, zero_point=zc, axis=0)
        assert np.array_equal(mine.view(np.int32), t.dequantize().numpy().view(np.int32))


# ---------------------------------------------------------------- binary
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("opname", ["add", "mul"])
def test_binary(engine, dt, opname):
    rng = np.random.default_rng(3)
    f = {"add": add, "mul": mul}[opname]
    shapes = SHAPES + [(70001,)]
    for shape in shapes:
        for trial in range(2):
            sa, za = rp(rng, dt)
            sb, zb = rp(rng, dt)
            so, zo = rp(rng, dt)
            if trial == 1:
                sb, so = sa, 2 * sa  # many exact ties
            qa, qb = rq(rng, shape, dt), rq(rng, shape, dt)
            ta, tb = mkq(qa, sa, za), mkq(qb, sb, zb)
            for relu_ in (False, True):
                kw = dict(a_scale=sa, a_zero_point=za, b_scale=sb, b_zero_point=zb, out_scale=so,
                          out_zero_point=zo, relu=relu_, dtype=dt, profile=engine)
                try:
                    mine = f(qa, qb, **kw)
                except NotImplementedError:  # qint8 via XNNPACK
                    continue
                ref = getattr(torch.ops.quantized, opname + ("_relu" if relu_ else ""))(ta, tb, so, zo)
                same(mine, ref)
            if len(shape) == 4:  # broadcast b over N, H, W
                qb2 = rq(rng, (1, shape[1], 1, 1), dt)
                try:
                    mine = f(qa, qb2, a_scale=sa, a_zero_point=za, b_scale=sb, b_zero_point=zb,
                             out_scale=so, out_zero_point=zo, dtype=dt, profile=engine)
                except NotImplementedError:
                    continue
                same(mine, getattr(torch.ops.quantized, opname)(ta, mkq(qb2, sb, zb), so, zo))


def test_qfunctional(engine):
    rng = np.random.default_rng(4)
    qf = nnq.QFunctional()
    qf.scale, qf.zero_point = 0.05, 77
    qa, qb = rq(rng, (2, 8, 5, 5), "uint8"), rq(rng, (2, 8, 5, 5), "uint8")
    ta, tb = mkq(qa, 0.04, 120), mkq(qb, 0.03, 90)
    kw = dict(a_scale=0.04, a_zero_point=120, b_scale=0.03, b_zero_point=90, out_scale=0.05,
              out_zero_point=77, profile=engine)
    same(add(qa, qb, **kw), qf.add(ta, tb))
    same(add(qa, qb, relu=True, **kw), qf.add_relu(ta, tb))
    same(mul(qa, qb, **kw), qf.mul(ta, tb))
    same(cat([qa, qb], x_scales=[0.04, 0.03], x_zero_points=[120, 90], out_scale=0.05, out_zero_point=77,
             dim=1, profile=engine), qf.cat([ta, tb], dim=1))


@pytest.mark.parametrize("dt", DTYPES)
def test_scalar_ops(engine, dt):
    rng = np.random.default_rng(5)
    for shape in [(33,), (2, 3, 4, 5)]:
        s, z = rp(rng, dt)
        q = rq(rng, shape, dt)
        t = mkq(q, s, z)
        for c in [0.37, -2.5, 100.0, -0.001, 0.0, 3 * s]:
            for relu_ in (False, True):
                for name, f in (("add_scalar", add_scalar), ("mul_scalar", mul_scalar)):
                    ref = getattr(torch.ops.quantized, name + ("_relu" if relu_ else ""))(t, c)
                    tr = {}
                    same(f(q, x_scale=s, x_zero_point=z, scalar=c, relu=relu_, dtype=dt, profile=engine, trace=tr), ref)
                    assert tr["out_scale"] == ref.q_scale() and tr["out_zero_point"] == ref.q_zero_point()


@pytest.mark.parametrize("dt", DTYPES)
def test_cat(engine, dt):
    rng = np.random.default_rng(6)
    for trial in range(10):
        shapes = [(2, int(rng.integers(1, 5)), 3, 4) for _ in range(3)]
        qs = [rq(rng, sh, dt) for sh in shapes]
        ps = [rp(rng, dt) for _ in shapes]
        if trial % 3 == 0:
            ps[1] = ps[0]
        so, zo = ps[0] if trial % 2 else rp(rng, dt)
        ts = [mkq(q, s, z) for q, (s, z) in zip(qs, ps)]
        for relu_ in (False, True):
            ref = (torch.ops.quantized.cat_relu if relu_ else torch.ops.quantized.cat)(ts, 1, so, zo)
            same(cat(qs, x_scales=[p[0] for p in ps], x_zero_points=[p[1] for p in ps], out_scale=so,
                     out_zero_point=zo, dim=1, relu=relu_, dtype=dt, profile=engine), ref)


# ---------------------------------------------------------------- unary
@pytest.mark.parametrize("dt", DTYPES)
def test_unary(engine, dt):
    rng = np.random.default_rng(7)
    for shape in SHAPES + [(1, 3, 32, 32)]:
        for trial in range(2):
            s, z = rp(rng, dt, -3, -0.5)
            so, zo = rp(rng, dt)
            if trial == 1:
                so = s
            q = rq(rng, shape, dt)
            t = mkq(q, s, z)
            kw = dict(x_scale=s, x_zero_point=z, dtype=dt, profile=engine)
            okw = dict(out_scale=so, out_zero_point=zo, **kw)
            same(relu(q, **kw), F.relu(t))
            same(relu6(q, **kw), nnq.ReLU6()(t))
            same(relu6(q, **kw), F.relu6(t))
            same(hardtanh(q, min_val=-0.7, max_val=1.3, **kw), F.hardtanh(t, -0.7, 1.3))
            same(hardswish(q, **okw), nnq.Hardswish(so, zo)(t))
            same(leaky_relu(q, negative_slope=0.137, **okw), nnq.LeakyReLU(so, zo, 0.137)(t))
            same(elu(q, alpha=0.8, **okw), nnq.ELU(so, zo, 0.8)(t))
            same(sigmoid(q, **kw), torch.sigmoid(t))
            same(tanh(q, **kw), torch.tanh(t))


@pytest.mark.parametrize("dt", DTYPES)
def test_sigmoid_tanh_all_inputs(engine, dt):
    """Every one of the 256 inputs, in the vector body and in the scalar tail."""
    rng = np.random.default_rng(8)
    lo, hi = RANGE[dt]
    base = np.arange(lo, hi + 1).astype(NPD[dt])
    q = np.concatenate([base, base[:63]])  # 256 = 4 vector blocks, + 63-element tail
    for _ in range(40):
        s, z = rp(rng, dt, -3, -0.3)
        t = mkq(q, s, z)
        kw = dict(x_scale=s, x_zero_point=z, dtype=dt, profile=engine)
        same(sigmoid(q, **kw), torch.sigmoid(t))
        same(tanh(q, **kw), torch.tanh(t))
        same(elu(q, out_scale=s, out_zero_point=z, alpha=1.0, **kw), nnq.ELU(s, z, 1.0)(t))


@pytest.mark.parametrize("dt", DTYPES)
def test_batch_norm(engine, dt):
    rng = np.random.default_rng(9)
    for C in [1, 3, 8, 9, 31, 32, 33, 40, 65]:
        for nd in (2, 3):
            shape = (2, C, 5, 3) if nd == 2 else (2, C, 3, 2, 3)
            s, z = rp(rng, dt)
            so, zo = rp(rng, dt)
            q = rq(rng, shape, dt)
            t = mkq(q, s, z)
            bn = (nnq.BatchNorm2d if nd == 2 else nnq.BatchNorm3d)(C)
            bn.weight.data = torch.from_numpy(rng.standard_normal(C).astype(np.float32))
            bn.bias.data = torch.from_numpy(rng.standard_normal(C).astype(np.float32))
            bn.running_mean = torch.from_numpy(rng.standard_normal(C).astype(np.float32))
            bn.running_var = torch.from_numpy((rng.random(C) + 0.1).astype(np.float32))
            bn.eps = float(10 ** rng.uniform(-6, -2))
            bn.scale, bn.zero_point = torch.tensor(so), torch.tensor(zo)
            kw = dict(x_scale=s, x_zero_point=z, out_scale=so, out_zero_point=zo, weight=bn.weight.detach().numpy(),
                      bias=bn.bias.detach().numpy(), running_mean=bn.running_mean.numpy(),
                      running_var=bn.running_var.numpy(), eps=bn.eps, dtype=dt, profile=engine)
            same(batch_norm(q, **kw), bn(t))
            fn = torch.ops.quantized.batch_norm2d_relu if nd == 2 else torch.ops.quantized.batch_norm3d_relu
            same(batch_norm(q, relu=True, **kw),
                 fn(t, bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.eps, so, zo))
