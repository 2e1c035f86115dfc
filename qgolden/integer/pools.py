"""Integer-only plans for avg_pool, adaptive_avg_pool and mean (op pool_int).

Each output element is R(S) with S an exact integer window sum and R one of a few float32
"rounding divisions", chosen by the divisor and the kernel path (ATen NCHW / NHWC vector
channels / NHWC channel tail / QNNPACK). Each R is a monotone function of S: it gets integer
parameters (or thresholds) from requant.plan_layer, checked on every S the window can produce
(|S| <= taps * 255: small, so always enumerated). The float formulas R are the engine's
(ops/avg_pool.py, ops/adaptive_avg_pool.py, ops/mean.py), called where the engine exposes them.
"""
from __future__ import annotations

import numpy as np

from ..numerics.floatops import fma32
from ..numerics.profile import aten_vector_width
from ..ops.adaptive_avg_pool import adaptive_bins
from ..ops.avg_pool import _window_axis, is_channels_last, nhwc_requant, qnnpack_avgpool_requant
from ..ops.max_pool import _tup, pooling_output_shape
from .requant import plan_layer

QR = {"uint8": (0, 255), "int8": (-128, 127)}


def _nchw_avg(d, zp, qmin, qmax):
    m = np.float32(1.0 / float(d))
    return lambda S: np.clip(np.rint(((S.astype(np.float32) * m).astype(np.float32) + np.float32(zp))
                                     .astype(np.float32)).astype(np.int64), qmin, qmax)


def _nhwc(m, zp, C, vw, qmin, qmax, c):
    def f(S):
        Sc = np.repeat(S[:, :, None], C, axis=2).transpose(0, 2, 1)  # [L, C, cols]
        return nhwc_requant(Sc, np.float32(m), zp, C, vw, qmin, qmax)[:, c, :]
    return f


def _adaptive_nhwc(size, zp, qmin, qmax, vec):
    m = np.float32(1.0) / np.float32(size)
    inv = np.float32(np.float32(1.0) / (np.float32(1.0) / m))

    def f(S):
        Sf = S.astype(np.float32)
        if vec:
            y = np.rint(fma32(Sf, np.broadcast_to(inv, S.shape), np.float32(zp))).astype(np.int64)
        else:
            y = np.rint(((Sf * inv).astype(np.float32) + np.float32(zp)).astype(np.float32)).astype(np.int64)
        return np.clip(y, qmin, qmax)
    return f


def _adaptive_nchw(kh, kw):
    r = np.float32(np.float32(np.float32(1.0) / np.float32(kh)) / np.float32(kw))
    return lambda S: np.rint((S.astype(np.float32) * r).astype(np.float32)).astype(np.int64)


def _mean_aten(n):
    return lambda S: np.rint((S.astype(np.float32) / np.float32(n)).astype(np.float32)).astype(np.int64)


def plan_pool(node, in_shape, profile, dtype, bits, rounding, allow_tables):
    """(pool_int attrs, consts, plan, class names) for an avg_pool / adaptive_avg_pool / mean node."""
    a = node.attrs
    zp = int(a["x_zero_point"])
    qmin, qmax = QR[dtype]
    engine = profile["engine"]
    cl = bool(a.get("channels_last", False))
    unsq = False
    shape = list(in_shape)
    classes = []  # (name, ref fn, S lo, S hi, slope)
    quirk = False
    if node.op == "avg_pool":
        ks = a["kernel_size"]
        nd = len(ks) if not isinstance(ks, (int, np.integer)) else len(shape) - 2
        if nd == 1:
            unsq = True
            shape = shape[:-1] + [1, shape[-1]]
            k1, s1, p1 = _tup(ks, 1), _tup(a["stride"], 1) if a["stride"] not in (None, (), []) else _tup(ks, 1), _tup(a["padding"], 1)
            kH, kW, sH, sW, pH, pW = 1, k1[0], 1, s1[0], 0, p1[0]
        else:
            kH, kW = _tup(ks, 2)
            sH, sW = _tup(a["stride"], 2) if a["stride"] not in (None, (), []) else (kH, kW)
            pH, pW = _tup(a["padding"], 2)
        N, C, H, W = shape
        oH = pooling_output_shape(H, kH, pH, sH, 1, a["ceil_mode"])
        oW = pooling_output_shape(W, kW, pW, sW, 1, a["ceil_mode"])
        geom = dict(kH=kH, kW=kW, sH=sH, sW=sW, pH=pH, pW=pW, oH=oH, oW=oW)
        kind, sum_zp = "avg", True
        area = kH * kW
        if engine == "qnnpack" and dtype == "uint8" and not a["ceil_mode"]:
            if area == 1:
                raise NotImplementedError("QNNPACK rejects 1x1 average pooling")
            classes.append(("qnnpack", lambda S: qnnpack_avgpool_requant(S, area, a["x_scale"], zp), area, 1.0 / area))
            cls = np.zeros((1, oH, oW), np.int64)
        else:
            _, _, hpool, hsize = _window_axis(oH, kH, sH, pH, H)
            _, _, wpool, wsize = _window_axis(oW, kW, sW, pW, W)
            if a["divisor_override"]:
                div = np.full((oH, oW), int(a["divisor_override"]), np.int64)
            else:
                div = (hpool[:, None] * wpool[None, :]) if a["count_include_pad"] else (hsize[:, None] * wsize[None, :])
            divs = sorted(set(int(v) for v in div.reshape(-1)))
            if is_channels_last(shape, cl):
                quirk = True
                vw = aten_vector_width(profile, "qavg_pool2d_nhwc")
                nvec = C - C % (vw // 4)
                cls = np.zeros((C, oH, oW), np.int64)
                for di, d in enumerate(divs):
                    m = np.float32(1.0) / np.float32(d)
                    for path, c in (("vector", 0), ("tail", C - 1)):
                        if (path == "vector" and nvec == 0) or (path == "tail" and nvec == C):
                            continue
                        idx = len(classes)
                        classes.append((f"div {d} {path}", _nhwc(m, zp, C, vw, qmin, qmax, c), area, 1.0 / d))
                        chans = np.arange(C) < nvec if path == "vector" else np.arange(C) >= nvec
                        cls[chans] = np.where(div == d, idx, cls[chans])
            else:
                cls = np.zeros((1, oH, oW), np.int64)
                for d in divs:
                    cls[0][div == d] = len(classes)
                    classes.append((f"div {d}", _nchw_avg(d, zp, qmin, qmax), area, 1.0 / d))
    elif node.op == "adaptive_avg_pool":
        os_ = a["output_size"]
        if len(shape) == 3:
            unsq = True
            o = os_[0] if not isinstance(os_, (int, np.integer)) else os_
            os_ = (1, shape[-1] if o is None else int(o))
            shape = shape[:-1] + [1, shape[-1]]
        N, C, H, W = shape
        if isinstance(os_, (int, np.integer)):
            os_ = (int(os_), int(os_))
        oH = H if os_[0] is None else int(os_[0])
        oW = W if os_[1] is None else int(os_[1])
        kind = "adaptive"
        geom = dict(oH=oH, oW=oW, blocks=False)
        if engine == "qnnpack" and dtype == "uint8" and not (H == oH and W == oW) and H % oH == 0 and W % oW == 0:
            area = (H // oH) * (W // oW)
            geom["blocks"], sum_zp = True, True
            classes.append(("qnnpack", lambda S: qnnpack_avgpool_requant(S, area, a["x_scale"], zp), area, 1.0 / area))
            cls = np.zeros((1, oH, oW), np.int64)
        else:
            hs, he = adaptive_bins(H, oH)
            ws, we = adaptive_bins(W, oW)
            kh, kw = he - hs, we - ws
            if is_channels_last(shape, cl):
                quirk, sum_zp = True, True
                size = kh[:, None] * kw[None, :]
                nvec = C - C % (aten_vector_width(profile, "qadaptive_avg_pool2d_nhwc") // 4)
                cls = np.zeros((C, oH, oW), np.int64)
                for s in sorted(set(int(v) for v in size.reshape(-1))):
                    for vec in (True, False):
                        chans = (np.arange(C) < nvec) if vec else (np.arange(C) >= nvec)
                        if not chans.any():
                            continue
                        idx = len(classes)
                        classes.append((f"size {s} {'vector' if vec else 'tail'}", _adaptive_nhwc(s, zp, qmin, qmax, vec), s, 1.0 / s))
                        cls[chans] = np.where(size == s, idx, cls[chans])
            else:
                sum_zp = False
                cls = np.zeros((1, oH, oW), np.int64)
                pairs = sorted(set(zip(np.repeat(kh, oW).tolist(), np.tile(kw, oH).tolist())))
                for (u, v) in pairs:
                    mask = (kh[:, None] == u) & (kw[None, :] == v)
                    cls[0][mask] = len(classes)
                    classes.append((f"bin {u}x{v}", _adaptive_nchw(u, v), u * v, 1.0 / (u * v)))
    else:  # mean
        nd = len(shape)
        dim = a["dim"]
        dims_lit = list(range(nd)) if dim is None or (not isinstance(dim, (int, np.integer)) and len(dim) == 0) else \
            ([int(dim)] if isinstance(dim, (int, np.integer)) else [int(d) for d in dim])
        dims = sorted(d % nd for d in dims_lit)
        n = int(np.prod([shape[d] for d in dims])) if dims else 1
        kind = "mean"
        geom = dict(dims=dims, keepdim=bool(a["keepdim"]))
        cls = np.zeros((), np.int64)
        if engine == "qnnpack" and dtype == "uint8" and nd == 4 and dims_lit == [2, 3]:
            sum_zp = True
            classes.append(("qnnpack", lambda S: qnnpack_avgpool_requant(S, n, a["x_scale"], zp), n, 1.0 / n))
        else:
            innermost = dims == list(range(nd - len(dims), nd))
            nchw = not cl or (nd == 4 and (shape[1] == 1 or shape[2] * shape[3] == 1))
            if not (innermost and nchw):
                raise NotImplementedError("quantized mean off the inner-dim fast path")
            sum_zp = False
            classes.append(("aten", _mean_aten(n), n, 1.0 / n))
    lo = np.array([cnt * ((qmin - zp) if sum_zp else qmin) for _, _, cnt, _ in classes], np.int64)
    hi = np.array([cnt * ((qmax - zp) if sum_zp else qmax) for _, _, cnt, _ in classes], np.int64)
    fns = [f for _, f, _, _ in classes]

    def ref(S):
        return np.stack([fns[i](S[:, i:i + 1].reshape(-1, 1)).reshape(-1) for i in range(len(fns))], axis=1)

    plan = plan_layer(ref, lo, hi, zo=(zp if sum_zp else 0), out_min=qmin, out_max=qmax,
                      slope=np.array([s for *_, s in classes]), bits=bits, rounding=rounding,
                      allow_tables=allow_tables, divisors=np.array([int(round(1.0 / s)) for *_, s in classes]),
                      div_zp=(zp if sum_zp else 0))
    attrs = dict(kind=kind, zero_point=zp, sum_zp=sum_zp, geom=geom, out_zero_point=plan.out_zero_point,
                 out_min=qmin, out_max=qmax, rounding=rounding, bits=bits, nhwc_quirk=quirk, unsqueezed=unsq,
                 dtype=dtype)
    consts = dict(cls=cls, multiplier=plan.multiplier, shift=plan.shift, bias=plan.bias, frac=plan.frac,
                  use_table=plan.use_table, thresholds=plan.thresholds, divisor=plan.divisor,
                  div_offset=plan.div_offset, div_rounding=plan.div_rounding, div_zero_point=plan.div_zero_point)
    return attrs, consts, plan, [name for name, *_ in classes]


def plan_xnnpack_mean(node, in_shape, bits, rounding, allow_tables):
    """(pool_int attrs, consts, plan) of XNNPACK's qs8 global mean (ops/xnnpack.quantized_global_mean):
    S = Σ_{h,w} (q - zi), exact, in [H*W*(-128 - zi), H*W*(127 - zi)];
    out = mean_requantize(S, quantized_mean_scale, zo), every S checked by plan_layer."""
    from ..ops import xnnpack as X

    a = node.attrs
    N, C, H, W = in_shape
    n, zi, zo = H * W, int(a["in_zero_point"]), int(a["out_zero_point"])
    scale = X.quantized_mean_scale(a["in_scale"], a["out_scale"], n)

    def ref(S):
        return X.mean_requantize(S, scale, zo).astype(np.int64)

    lo, hi = np.array([n * (-128 - zi)], np.int64), np.array([n * (127 - zi)], np.int64)
    plan = plan_layer(ref, lo, hi, zo=zo, out_min=-128, out_max=127, slope=np.array([float(scale)]), bits=bits,
                      rounding=rounding, allow_tables=allow_tables, pivots=np.array([0.0]))
    attrs = dict(kind="mean", zero_point=zi, sum_zp=True, geom=dict(dims=[2, 3], keepdim=True),
                 out_zero_point=plan.out_zero_point, out_min=-128, out_max=127, rounding=rounding, bits=bits,
                 nhwc_quirk=False, unsqueezed=False, dtype="int8")
    consts = dict(cls=np.zeros((), np.int64), multiplier=plan.multiplier, shift=plan.shift, bias=plan.bias,
                  frac=plan.frac, use_table=plan.use_table, thresholds=plan.thresholds, divisor=plan.divisor,
                  div_offset=plan.div_offset, div_rounding=plan.div_rounding, div_zero_point=plan.div_zero_point)
    return attrs, consts, plan
