"""Choosing integer requantization parameters per channel, and checking them exhaustively.

The engine maps an exact integer accumulator `acc` of one channel to its 8-bit output with a
float32 formula R (numerics/requantize.py and friends). R is a composition of monotone steps
(int->float conversion, adding a constant, multiplying by a positive constant, round to
nearest, clamp), so it is a non-decreasing staircase: it is fully described by its thresholds
t_k = min{acc : R(acc) >= k}, found by binary search on R itself (thresholds.py).

The integer form (fixedpoint.requantize_values)

    out = clamp(round_shift((acc + B) * M0 + F, n) + zo, out_min, out_max)

steps at T_k = ceil((c_k - E) / M0) with E = M0*B + F and c_k = (k - zo)*2**n - 2**(n-1) + e_k
(e_k in {0, 1} from the rounding's tie rule). Requiring T_k = t_k for every level reached
inside [lo, hi] (and the right values at lo and hi) gives linear inequalities in (M0, E):

    E >= c_k - M0 * t_k        and        E < c_k - M0 * (t_k - 1)

Fixing n, every pair of a lower and an upper bound bounds M0; any integer M0 in the resulting
interval (below 2**(bits-1)) admits an E, computed exactly with Python integers. n is tried
from the largest the multiplier width allows downwards. No solution: a threshold table.
"""
from __future__ import annotations

import math

import numpy as np

from .fixedpoint import requantize_values, round_div, threshold_values
from .thresholds import differing_values, step_thresholds



def offset_interval(m, cl, al, cu, au):
    """[e_lo, e_hi): the integer offsets e for which m*a + e meets every constraint
    c_lo <= m*a_lo + e and m*a_hi + e < c_hi (lists cl/al and cu/au); one side missing means
    the interval is one wide next to the other, none means [0, 1)."""
    e_lo = max((ci - m * ai for ci, ai in zip(cl, al)), default=None)
    e_hi = min((ci - m * ai for ci, ai in zip(cu, au)), default=None)
    if e_lo is None and e_hi is None:
        return 0, 1
    if e_lo is None:
        return e_hi - 1, e_hi
    if e_hi is None:
        return e_lo, e_lo + 1
    return e_lo, e_hi

def _e(j, rounding):
    """1 where the tie rule needs v >= j*2**n - 2**(n-1) + 1 for y >= j (a Python int j)."""
    if rounding == "half_even":
        return 1 if j % 2 == 1 else 0
    if rounding in ("half_away", "tflite"):
        return 1 if j <= 0 else 0
    return 0


def solve_channel(t, lo, hi, levels, zo, out_min, out_max, slope, bits=32, rounding="half_up",
                  max_shift=62, prefer_bias=None):
    """(M0, n, B, F) reproducing the staircase t (thresholds of `levels`) on [lo, hi], or None.
    prefer_bias: the engine's own bias in accumulator units (float): among the exact solutions,
    the one whose bias B + F/M0 is nearest to it (a dead channel then keeps its natural bias)."""
    lo, hi = int(lo), int(hi)
    t = np.asarray(t, dtype=np.int64)
    levels = np.asarray(levels, dtype=np.int64)
    v_lo = int(out_min + (t <= lo).sum())
    v_hi = int(out_min + (t <= hi).sum())
    lows, ups = [], []  # (level, A): E >= c - M0*A  /  E < c - M0*A
    if v_lo > out_min:
        lows.append((v_lo, lo))
    for k, tk in zip(levels, t):
        if v_lo < k <= v_hi:
            lows.append((int(k), int(tk)))
            ups.append((int(k), int(tk) - 1))
    if v_hi < out_max:
        ups.append((v_hi + 1, hi))
    mmax = (1 << (bits - 1)) - 1
    if slope is None or not slope > 0:
        span = max(1, (max(a for _, a in lows) if lows else hi) - lo)
        slope = max(1e-12, (v_hi - v_lo) / span)
    n_top = int(math.floor(math.log2(mmax / slope)))
    tries = [n_top] if rounding == "tflite" else [n_top, n_top - 1, n_top - 2]
    for n in tries:
        if n < 1 or n > max_shift or (rounding == "tflite" and n < bits - 1):
            continue
        r = _solve_n(lows, ups, lo, n, zo, slope, mmax, rounding, bits, prefer_bias)
        if r == "too_big":
            continue  # the feasible multipliers exceed the width at this shift: try a smaller shift
        if r is None:
            return None  # the staircase is not affine enough: a smaller shift cannot help
        return r
    return None


def _solve_n(lows, ups, lo, n, zo, slope, mmax, rounding, bits, prefer_bias=None):
    h = 1 << (n - 1)

    def c(k):
        j = k - zo
        return j * (1 << n) - h + int(_e(j, rounding))

    cl = [c(k) for k, _ in lows]
    al = [a - lo for _, a in lows]
    cu = [c(k) for k, _ in ups]
    au = [a - lo for _, a in ups]
    mmin = (1 << (bits - 2)) if rounding == "tflite" else 1
    center = slope * 2.0 ** n
    lo_m, hi_m = float(mmin) - 1, float(mmax) + 1
    if lows and ups:
        d = np.asarray(au, np.float64)[None, :] - np.asarray(al, np.float64)[:, None]
        cd = np.asarray(cu, np.float64)[None, :] - np.asarray(cl, np.float64)[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            q = cd / d
        if np.any((d == 0) & (cd <= 0)):
            return None
        if np.any(d > 0):
            hi_m = min(hi_m, float(q[d > 0].min()))
        if np.any(d < 0):
            lo_m = max(lo_m, float(q[d < 0].max()))
    a = max(mmin, int(math.floor(lo_m)))
    b = min(mmax, int(math.ceil(hi_m)))
    if a > b:
        return "too_big" if lo_m > mmax and lo_m < hi_m else None
    cands = range(a, b + 1)
    if b - a > 64:
        mid = min(max(int(round(center)), a), b)
        cands = sorted(range(max(a, mid - 32), min(b, mid + 32) + 1), key=lambda m: abs(m - center))
    for m in cands:
        e_lo, e_hi = offset_interval(m, cl, al, cu, au)
        if e_lo >= e_hi:
            continue
        if prefer_bias is not None:
            # a side without constraints (a channel that never leaves one clamp) is open: widen it
            # so the natural bias can be chosen there
            far = 1 << 62
            e_lo = e_lo if cl else -far
            e_hi = e_hi if cu else far
        if rounding == "tflite":
            bq_lo, bq_hi = -(-e_lo // m), (e_hi - 1) // m  # feasible biases (relative to acc - lo)
            if bq_lo > bq_hi:
                continue
            bq = bq_lo if prefer_bias is None else min(max(int(round(prefer_bias)) + lo, bq_lo), bq_hi)
            return m, n, bq - lo, 0
        if prefer_bias is None:
            e = (e_lo + e_hi - 1) // 2 - m * lo  # back from acc - lo to acc (midpoint of the feasible E)
        else:  # the feasible E nearest to the natural M0 * bias
            e = min(max(int(round(m * prefer_bias)) + m * lo, e_lo), e_hi - 1) - m * lo
        bb = e // m
        return m, n, bb, e - m * bb
    return None


class LayerPlan:
    """Integer requantization of one layer's channels (or classes), with its certificate.

    Arrays per channel: multiplier, shift, bias (int, accumulator units), frac (product units),
    use_table (bool), thresholds [C, levels] (int64), lo/hi (the reachable accumulator interval).
    mismatches[c]: accumulator values in [lo, hi] where the integer form differs from the engine
    (0 everywhere = certified); bad[c]: those values as merged half-open intervals.
    """

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def int_fn(self, acc):
        """The integer-only function on acc [..., C] (channel last)."""
        return apply_plan(acc, self.__dict__, np.arange(acc.shape[-1]))


def apply_plan(acc, p, cls):
    """Integer requantization: per element class `cls` (broadcastable to acc) picks its row."""
    cls = np.broadcast_to(np.asarray(cls, dtype=np.int64), np.shape(acc))
    bias, frac = np.asarray(p["bias"])[cls], np.asarray(p["frac"])[cls]
    us = p.get("use_segments")
    if us is not None and np.any(us):
        seg = threshold_values(acc, p["seg_bounds"], cls)  # binade segment of each accumulator value
        seg_on = np.asarray(us)[cls]
        bias = np.where(seg_on, np.asarray(p["seg_bias"])[cls, seg], bias)
        frac = np.where(seg_on, np.asarray(p["seg_frac"])[cls, seg], frac)
    out = requantize_values(acc, np.asarray(p["multiplier"])[cls], np.asarray(p["shift"])[cls],
                            bias, frac, p["out_zero_point"], p["out_min"], p["out_max"], p["rounding"],
                            p.get("bits", 32))
    dv = p.get("divisor")
    if dv is not None and np.any(np.asarray(dv) > 0):
        d = np.asarray(dv)[cls]
        y = round_div(acc + np.asarray(p["div_offset"])[cls], np.maximum(d, 1), np.asarray(p["div_rounding"])[cls])
        y = np.clip(y + np.asarray(p["div_zero_point"])[cls], p["out_min"], p["out_max"])
        out = np.where(d > 0, y, out)
    ut = np.asarray(p["use_table"])
    if ut.any():
        tab = threshold_values(acc, p["thresholds"], cls) + int(p["out_min"])
        out = np.where(ut[cls], tab, out)
    return out


def plan_layer(ref_fn, lo, hi, *, zo, out_min=0, out_max=255, slope=None, bits=32, rounding="half_up",
               allow_tables=True, enumerate_budget=1 << 22, overflow_check=None, divisors=None, div_zp=0,
               pivots=None):
    """Choose and certify integer parameters for the columns of `ref_fn` (the engine's float
    requantization, acc [L, C] -> out [L, C]) over the accumulator intervals [lo, hi] per column.

    slope: the float multiplier per column (output levels per accumulator unit), a hint.
    overflow_check: optional fn(lo, hi) -> bool array, False where the engine's float formula could
    leave int32 at the interval ends (then monotonicity is not established).
    pivots: optional float per column, the accumulator value where the engine's float value is 0:
    channels with no single (M0, n, B, F) then try one bias constant per binade segment.
    divisors: optional int per column (pools): first try an exact rounding division
    y = round_div(acc + offset, d) + zp' (offset 0 or zp*d, any tie rule), checked on every value.
    """
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    nc = lo.shape[0]
    levels = np.arange(out_min + 1, out_max + 1, dtype=np.int64)
    t = step_thresholds(ref_fn, lo, hi, levels)  # [L, C]
    slope = np.broadcast_to(np.asarray(slope if slope is not None else np.nan, np.float64), (nc,))
    m0 = np.zeros(nc, np.int64)
    sh = np.ones(nc, np.int64)
    bb = np.zeros(nc, np.int64)
    ff = np.zeros(nc, np.int64)
    use_table = np.zeros(nc, bool)
    solved = np.zeros(nc, bool)
    seg_sol = {}
    dv = np.zeros(nc, np.int64)
    doff = np.zeros(nc, np.int64)
    drnd = np.zeros(nc, np.int64)
    dzp = np.zeros(nc, np.int64)
    if divisors is not None:
        for c in range(nc):
            d = int(divisors[c])
            if d <= 0 or hi[c] - lo[c] > enumerate_budget:
                continue
            acc = np.arange(lo[c], hi[c] + 1, dtype=np.int64)
            want = np.asarray(ref_fn(np.broadcast_to(acc[:, None], (acc.size, nc)))).astype(np.int64)[:, c]
            for off, z in ((0, div_zp), (div_zp * d, 0)):
                for code in (1, 0, 2):
                    got = np.clip(round_div(acc + off, d, code) + z, out_min, out_max)
                    if np.array_equal(got, want):
                        dv[c], doff[c], drnd[c], dzp[c] = d, off, code, z
                        break
                if dv[c]:
                    break
    for c in range(nc):
        if dv[c]:
            solved[c] = True
            continue
        r = solve_channel(t[:, c], lo[c], hi[c], levels, zo, out_min, out_max,
                          None if np.isnan(slope[c]) else float(slope[c]), bits, rounding,
                          prefer_bias=None if pivots is None else -float(pivots[c]))
        if r is None and pivots is not None and rounding != "tflite":
            sl = None if np.isnan(slope[c]) else float(slope[c])
            pv = float(pivots[c])
            bnd = binade_bounds([pv, 0.0], lo[c], hi[c], sl, [pv] + ([pv - zo / sl] if sl else []))
            if bnd:
                rs = solve_segments(t[:, c], lo[c], hi[c], levels, zo, out_min, out_max,
                                    None if np.isnan(slope[c]) else float(slope[c]), bnd, bits, rounding)
                if rs is not None:
                    seg_sol[c] = (bnd, rs[2], rs[3])
                    r = (rs[0], rs[1], rs[2][0], rs[3][0])
        if r is None:
            use_table[c] = allow_tables
            r = _naive(slope[c], t[:, c], lo[c], hi[c], levels, zo, out_min, bits, rounding)
        else:
            solved[c] = True
        m0[c], sh[c], bb[c], ff[c] = r
    smax = max([len(b) for b, _, _ in seg_sol.values()], default=0)
    seg_bounds = np.full((nc, max(smax, 1)), 1 << 38, np.int64)
    seg_bias = np.zeros((nc, max(smax, 1) + 1), np.int64)
    seg_frac = np.zeros((nc, max(smax, 1) + 1), np.int64)
    use_seg = np.zeros(nc, bool)
    for c, (bnd, bs, fs) in seg_sol.items():
        use_seg[c] = True
        seg_bounds[c, :len(bnd)] = bnd
        seg_bias[c, :len(bs)] = bs
        seg_frac[c, :len(fs)] = fs
    plan = LayerPlan(multiplier=m0, shift=sh, bias=bb, frac=ff, use_table=use_table, use_segments=use_seg,
                     seg_bounds=seg_bounds, seg_bias=seg_bias, seg_frac=seg_frac,
                     thresholds=t.T.copy(), out_zero_point=int(zo), out_min=int(out_min),
                     out_max=int(out_max), rounding=rounding, bits=bits, lo=lo, hi=hi, solved=solved,
                     divisor=dv, div_offset=doff, div_rounding=drnd, div_zero_point=dzp)
    certify_plan(plan, ref_fn, levels, t, enumerate_budget, overflow_check)
    return plan


def _naive(slope, t, lo, hi, levels, zo, out_min, bits, rounding):
    """Best-effort parameters when no exact ones exist (reported with their mismatches)."""
    s = float(slope) if slope == slope and slope > 0 else 1e-3
    n = max(1, int(math.floor(math.log2(((1 << (bits - 1)) - 1) / s))))
    m = max(1, min((1 << (bits - 1)) - 1, int(round(s * 2.0 ** n))))
    # anchor E on the middle reached level: T_k = t_k there
    inside = [(int(k), int(x)) for k, x in zip(levels, t) if lo < x <= hi]
    if inside:
        k, x = inside[len(inside) // 2]
        j = k - zo
        e = j * (1 << n) - (1 << (n - 1)) + int(_e(j, rounding)) - m * x
    else:
        e = 0
    b = e // m
    return m, n, b, (0 if rounding == "tflite" else e - m * b)


def certify_plan(plan, ref_fn, levels, t_ref, enumerate_budget, overflow_check=None):
    """Compare the integer form with the engine over every accumulator value of [lo, hi]:
    thresholds of both staircases (exact for monotone functions), and, when the intervals are
    small enough, an element-by-element evaluation of both on every value."""
    lo, hi = plan.lo, plan.hi
    t_int = step_thresholds(plan.int_fn, lo, hi, levels)
    bad = differing_values(t_ref, t_int, lo, hi)
    plan.bad = bad
    plan.mismatches = np.array([sum(e - s for s, e in iv) for iv in bad], np.int64)
    size = hi - lo + 1
    plan.domain = int(size.sum())
    plan.enumerated = 0
    plan.monotone_ok = np.ones(lo.shape[0], bool) if overflow_check is None else np.asarray(overflow_check(lo, hi))
    if size.sum() <= enumerate_budget:
        width = int(size.max())
        step = max(1, (1 << 20) // max(1, lo.shape[0]))
        for s in range(0, width, step):
            off = np.arange(s, min(width, s + step), dtype=np.int64)[:, None]
            acc = lo[None, :] + off
            valid = acc <= hi[None, :]
            acc = np.where(valid, acc, lo[None, :])
            diff = (np.asarray(ref_fn(acc)).astype(np.int64) != plan.int_fn(acc)) & valid
            if diff.any():  # only possible if a function were not monotone: count them too
                extra = diff.sum(axis=0)
                plan.mismatches = np.maximum(plan.mismatches, extra)
        plan.enumerated = int(size.sum())
    return plan


# -- piecewise: one multiplier, one bias constant per binade segment ---------------------------------

def _constraints(t, levels, s0, s1, out_min, out_max):
    """(lows, ups) for the staircase restricted to [s0, s1] (see solve_channel)."""
    v_lo = int(out_min + (t <= s0).sum())
    v_hi = int(out_min + (t <= s1).sum())
    lows, ups = [], []
    if v_lo > out_min:
        lows.append((v_lo, s0))
    for k in range(v_lo + 1, v_hi + 1):  # levels are consecutive from out_min + 1
        tk = int(t[k - out_min - 1])
        lows.append((k, tk))
        ups.append((k, tk - 1))
    if v_hi < out_max:
        ups.append((v_hi + 1, s1))
    return lows, ups


def solve_segments(t, lo, hi, levels, zo, out_min, out_max, slope, bounds, bits=32, rounding="half_up"):
    """One M0 and n for the channel, one (B, F) per segment [bounds[i], bounds[i+1]) of [lo, hi]
    (segment starts `bounds`, sorted, inside (lo, hi]): the engines' float formulas round a float
    bias on a grid that changes at every power of two (a binade), so their staircase is affine per
    binade. Returns (M0, n, [B], [F]) or None."""
    if rounding == "tflite":
        return None
    t = np.asarray(t, dtype=np.int64)
    levels = np.asarray(levels, dtype=np.int64)
    starts = [int(lo)] + [int(b) for b in bounds]
    ends = [b - 1 for b in starts[1:]] + [int(hi)]
    segs = [(s0, s1, *_constraints(t, levels, s0, s1, out_min, out_max)) for s0, s1 in zip(starts, ends)]
    mmax = (1 << (bits - 1)) - 1
    if slope is None or not slope > 0:
        return None
    n_top = int(math.floor(math.log2(mmax / slope)))
    for n in (n_top, n_top - 1):
        if n < 1:
            continue
        h = 1 << (n - 1)

        def c(k):
            j = k - zo
            return j * (1 << n) - h + int(_e(j, rounding))

        lo_m, hi_m = 0.0, float(mmax) + 1
        prepared = []
        L_c, L_a, L_s, U_c, U_a, U_s = [], [], [], [], [], []
        for si, (s0, s1, lows, ups) in enumerate(segs):
            cl = [c(k) for k, _ in lows]
            al = [a - s0 for _, a in lows]
            cu = [c(k) for k, _ in ups]
            au = [a - s0 for _, a in ups]
            prepared.append((s0, cl, al, cu, au))
            L_c += cl; L_a += al; L_s += [si] * len(cl)
            U_c += cu; U_a += au; U_s += [si] * len(cu)
        if L_c and U_c:  # all pairs (lower i, upper j) of the same segment, in one array
            same = np.asarray(L_s)[:, None] == np.asarray(U_s)[None, :]
            d = np.asarray(U_a, np.float64)[None, :] - np.asarray(L_a, np.float64)[:, None]
            cd = np.asarray(U_c, np.float64)[None, :] - np.asarray(L_c, np.float64)[:, None]
            if np.any(same & (d == 0) & (cd <= 0)):
                return None
            with np.errstate(divide="ignore", invalid="ignore"):
                q = cd / d
            pos, neg = same & (d > 0), same & (d < 0)
            if pos.any():
                hi_m = min(hi_m, float(q[pos].min()))
            if neg.any():
                lo_m = max(lo_m, float(q[neg].max()))
        a = max(1, int(math.floor(lo_m)))
        b = min(mmax, int(math.ceil(hi_m)))
        if a > b:
            if lo_m > mmax and lo_m < hi_m:
                continue
            return None
        center = slope * 2.0 ** n
        cands = range(a, b + 1)
        if b - a > 64:
            mid = min(max(int(round(center)), a), b)
            cands = sorted(range(max(a, mid - 32), min(b, mid + 32) + 1), key=lambda m: abs(m - center))
        for m in cands:
            bs, fs = [], []
            for s0, cl, al, cu, au in prepared:
                e_lo, e_hi = offset_interval(m, cl, al, cu, au)
                if e_lo >= e_hi:
                    break
                e = (e_lo + e_hi - 1) // 2 - m * s0
                bb = e // m
                bs.append(bb)
                fs.append(e - m * bb)
            else:
                return m, n, bs, fs
        return None
    return None


def binade_bounds(pivots, lo, hi, slope=None, out_pivots=()):
    """Segment starts inside (lo, hi]: where |acc - p| crosses a power of two, for each pivot p
    (a float: the accumulator value where the engine's float value before rounding is 0), and,
    with `slope` (output units per accumulator unit), where the float OUTPUT value crosses a power
    of two (its product is rounded on a grid that changes there) for each of `out_pivots`. A
    boundary only switches the bias constant; placing it a value early or late is harmless, since
    outputs step at half-integers, never at powers of two >= 1."""
    out = set()
    if slope is not None and slope > 0:
        for p in out_pivots:
            if p is None or not np.isfinite(p):
                continue
            for e in range(0, 9):
                for v in (math.ceil(p + 2.0 ** e / slope), math.floor(p - 2.0 ** e / slope) + 1):
                    if lo < v <= hi:
                        out.add(int(v))
    for p in pivots:
        if p is None or not np.isfinite(p):
            continue
        for e in range(0, 40):
            for v in (math.ceil(p + 2.0 ** e), math.floor(p - 2.0 ** e) + 1):
                if lo < v <= hi:
                    out.add(int(v))
    return sorted(out)
