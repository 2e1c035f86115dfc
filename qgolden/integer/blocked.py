"""The integer-only program's requantization at full speed: exactly the integers of the reference
definitions (requant.apply_plan with fixedpoint.requantize_values / threshold_values), computed
channel-last in cache-sized row blocks on every core, from per-channel constants prepared once
per node instead of per-element gathers. No float operation anywhere.

For one channel c (the reference, integer/requant.py apply_plan):

    multiplier:  out = clamp(round_shift((acc + B)*M0 + F, n) + zo, out_min, out_max)
    segments:    B, F = seg_bias[c, s], seg_frac[c, s],  s = #{i : acc >= seg_bounds[c, i]}
    table:       out = out_min + #{k : acc >= thresholds[c, k]}

How the same integers are found faster:
  - half_up:  round_shift(v, n) = (v + 2**(n-1)) >> n, and int64 arithmetic wraps modulo 2**64,
    so (acc + B)*M0 + F + 2**(n-1) = acc*M0 + K with K = B*M0 + F + 2**(n-1) (mod 2**64): one
    multiply and one add per element, K per channel (per channel and segment) prepared once.
  - counts of sorted thresholds (table channels): the multiplier result y0 of the channel (its
    parameters approximate the staircase) gives a first count j = y0 - out_min, then
    j += [acc >= T[j+1]] - [acc < T[j]] (T = the row with -inf / +inf ends) until no element
    moves: each step moves j toward the count, which it reaches and keeps; elements still moving
    after a few steps are counted with searchsorted.
  - segment channels (half_up): their staircase, non-decreasing, written as thresholds once
    (segment_thresholds, closed form per segment) and counted like the table channels; where it
    cannot be, the segment index by a branchless binary search over the channel's sorted bounds.
The reference counts thresholds in one searchsorted over rows offset by 2**40 (fixedpoint.
threshold_values); that is the per-row count exactly when the rows are sorted and every threshold
and accumulator value lies in [-2**39, 2**39): prepare() checks the rows once, requantize_rows()
the accumulator range; anything else takes the reference path.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np

from ..numerics import parallel
from .fixedpoint import requantize_values

# thresholds and accumulator values inside [-LIMIT, LIMIT): the reference's row offsets (2**40)
# keep rows apart, so its count is the per-row count
LIMIT = 1 << 39
# steps of the threshold correction before the remaining elements are counted by searchsorted
CORRECTION_STEPS = 4
_I64_MIN, _I64_MAX = np.iinfo(np.int64).min, np.iinfo(np.int64).max
# values per tiled row of a block (see tiled_rows)
TILE_VALUES = 2048


@dataclass
class Counted:
    """Channels computed as counts of thresholds: out = out_min + #{k : acc >= t[c, k]}.
    cols: the channels; ends: int64 [len(cols), levels + 2], each row [-inf, t..., +inf] (flattened)."""
    cols: np.ndarray
    ends: np.ndarray
    levels: int


@dataclass
class ChannelConstants:
    """Per-channel constants of one requantization (rows broadcast along the accumulator's rows).

    multiplier, shift, bias, frac: int64 [C]; fused_add: int64 [C], K = B*M0 + F + 2**(n-1) (mod
    2**64; half_up only). counted: the table channels, and the channels with a bias per segment
    when their staircase could be written as thresholds (segment_thresholds); seg_*: the other
    segment channels (seg_cols), bounds flattened [len, seg_count], seg_bias / seg_frac / seg_add
    flattened [len, seg_count + 1]. acc_lo..acc_hi: the accumulator values these constants give the
    reference's integers for (outside: the reference path)."""
    channels: int
    multiplier: np.ndarray
    shift: np.ndarray
    bias: np.ndarray
    frac: np.ndarray
    fused_add: np.ndarray | None
    out_zero_point: int
    out_min: int
    out_max: int
    rounding: str
    bits: int
    counted: list
    seg_cols: np.ndarray
    seg_bounds: np.ndarray
    seg_count: int
    seg_bias: np.ndarray
    seg_frac: np.ndarray
    seg_add: np.ndarray | None
    acc_lo: int = -LIMIT
    acc_hi: int = LIMIT - 1
    width: int = 0
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    tile: int = 1
    uniform_shift: int | None = None
    tiled: dict = field(default_factory=dict)
    counted32: dict | None = None


def wide_rows(channels, width, groups):
    """(low, high) int64 [channels * width]: for the channels of the Counted groups, row c holds
    E[c, j] and E[c, j+1] at c*width + j, E[c] = [-inf, t..., +inf, ..., +inf] (width + 1 values);
    for every other channel low = -inf and high = +inf (a count there never moves)."""
    e = np.full((channels, width + 1), _I64_MAX, np.int64)
    e[:, 0] = _I64_MIN
    low = np.full((channels, width), _I64_MIN, np.int64)
    high = np.full((channels, width), _I64_MAX, np.int64)
    for g in groups:
        rows = g.ends.reshape(len(g.cols), g.levels + 2)[:, 1:-1]
        e[g.cols, 1:g.levels + 1] = rows
        low[g.cols] = e[g.cols, :-1]
        high[g.cols] = e[g.cols, 1:]
    return low.reshape(-1), high.reshape(-1)


def tiled_rows(k, t):
    """The per-channel rows of the block computation, each tiled t times (a row of t*C values: a
    long inner loop instead of a short broadcast one): multiplier, fused add, shift, then
    add = zo - out_min + c*W (half_up; else -out_min + c*W), lo = c*W, hi = c*W + out_max - out_min
    and back = c*W - out_min (out = index - back); without counted channels W = 0 and out_min is
    not subtracted, so the index is the output itself."""
    hit = k.tiled.get(t)
    if hit is not None:
        return hit
    cw = np.arange(k.channels, dtype=np.int64) * k.width
    sub = k.out_min if k.width else 0
    zo = k.out_zero_point if k.fused_add is not None else 0
    rows = {"mult": k.multiplier, "fused": k.fused_add, "shift": k.shift, "add": cw + (zo - sub),
            "lo": cw + (k.out_min - sub), "hi": cw + (k.out_max - sub), "back": cw - sub}
    hit = {name: None if v is None else np.tile(v, t) for name, v in rows.items()}
    k.tiled[t] = hit
    return hit


def _rows_in_range(t) -> bool:
    """Rows sorted ascending and every value in [-LIMIT, LIMIT)."""
    return t.size == 0 or (int(t.min()) >= -LIMIT and int(t.max()) < LIMIT and bool(np.all(np.diff(t, axis=1) >= 0)))


def fused_add(multiplier, shift, bias, frac):
    """K = B*M0 + F + 2**(n-1) in wrapping int64, as the reference forms (acc + B)*M0 + F and then
    adds 2**(n-1) (np.int64(1) << (n - 1), the same expression as fixedpoint.round_shift)."""
    with np.errstate(over="ignore"):
        h = np.int64(1) << (np.asarray(shift, np.int64) - 1)
        return np.asarray(bias, np.int64) * np.asarray(multiplier, np.int64) + np.asarray(frac, np.int64) + h


def _ends(t):
    """Rows [-inf, t..., +inf] of sorted thresholds t [J, L], flattened."""
    ends = np.empty((t.shape[0], t.shape[1] + 2), np.int64)
    ends[:, 0], ends[:, -1] = _I64_MIN, _I64_MAX
    ends[:, 1:-1] = t
    return ends.reshape(-1)


# accumulators are int32 in every engine: the segment staircases are written as thresholds over
# this range (wider would only reach the padding segments at 2**38)
SEGMENT_RANGE = 1 << 32


def segment_span(multiplier, seg_k):
    """The largest R such that |acc*M0 + K| < 2**63 for every |acc| <= R, every segment constant
    K of seg_k [J, S+1] (exact integers: true values, not wrapped) and M0 = multiplier [J] > 0;
    capped at SEGMENT_RANGE. On [-R, R] the reference's wrapping int64 arithmetic is exact."""
    r = SEGMENT_RANGE
    for m, ks in zip(multiplier, seg_k):
        kmax = max(abs(int(k)) for k in ks)
        r = min(r, ((1 << 63) - 1 - kmax) // int(m))
    return r


def segment_thresholds(multiplier, shift, seg_k, bounds, zo, out_min, out_max, span):
    """Thresholds [J, out_max - out_min] of the half_up segment staircases on [-span, span], or None
    when one is not non-decreasing there (or its numbers leave int64).

    Channel j, segment s = #{i : acc >= bounds[j, i]} (acc in [b_{s-1}, b_s), b_{-1} = -inf):
        f(acc) = clamp(((acc*M0 + K_s) >> n) + zo, out_min, out_max),  K_s = seg_k[j, s] (exact)
    For out_min < L <= out_max:  f(acc) >= L  <=>  acc >= u_{s,L} = ceil(((L - zo)*2**n - K_s) / M0)
    inside segment s, so the first acc of [-span, span] with f >= L is min over segments of
    max(start_s, u_{s,L}) (where that is <= end_s), span + 1 if none: the threshold of level L when f
    is non-decreasing, which holds when f(end of a segment) <= f(start of the next) everywhere."""
    levels = np.arange(out_min + 1, out_max + 1, dtype=np.int64)
    out = np.empty((len(multiplier), levels.size), np.int64)
    d = max(abs(out_min - zo), abs(out_max - zo))
    for j, (m, n, ks, b) in enumerate(zip(multiplier, shift, seg_k, bounds)):
        m, n = int(m), int(n)
        if m <= 0 or not 1 <= n <= 62 or (d << n) >= (1 << 62) or max(abs(int(k)) for k in ks) >= (1 << 62):
            return None
        starts = np.concatenate([[-span], np.clip(np.asarray(b, np.int64), -span, span + 1)])
        ends = np.concatenate([starts[1:] - 1, [span]])
        keep = starts <= ends  # segments with values inside [-span, span]
        starts, ends = starts[keep], ends[keep]
        k = np.asarray([int(v) for v in ks], np.int64)[keep]

        def f(acc):
            return np.clip(((acc * m + k) >> n) + zo, out_min, out_max)

        fs, fe = f(starts), f(ends)
        if np.any(fe[:-1] > fs[1:]):
            return None
        u = -((k[:, None] - ((levels[None, :] - zo) << n)) // m)  # ceil(((L - zo)*2**n - K_s) / M0)
        first = np.maximum(starts[:, None], u)
        first = np.where(first <= ends[:, None], first, span + 1)
        out[j] = first.min(axis=0)
    return out


def prepare(p, channels: int) -> ChannelConstants | None:
    """The constants of requantization parameters p (the keys of requantize_int) for `channels`
    channels, or None when they are not of the shapes and ranges the fast path reproduces exactly
    (the caller then takes the reference path)."""
    def ints(key, shape):
        v = p.get(key)
        if v is None:
            return None
        a = np.asarray(v)
        if a.shape != shape or a.dtype.kind not in "iub":
            raise _NotFast
        return a.astype(np.int64)

    try:
        c = int(channels)
        mult, shift = ints("multiplier", (c,)), ints("shift", (c,))
        bias, frac = ints("bias", (c,)), ints("frac", (c,))
        use_table = ints("use_table", (c,))
        if mult is None or shift is None or bias is None or frac is None or use_table is None:
            return None
        rounding = p["rounding"]
        zo, out_min, out_max = int(p["out_zero_point"]), int(p["out_min"]), int(p["out_max"])
        if rounding == "half_up" and (shift.min(initial=1) < 1 or shift.max(initial=1) > 62):
            return None  # the fused form's 2**(n-1) and shift as the reference's only for 1 <= n <= 62
        counted = []
        table_cols = np.flatnonzero(use_table != 0)
        if table_cols.size:
            t = np.asarray(p["thresholds"])
            if t.ndim == 1:
                t = t[None, :]
            if t.ndim != 2 or t.shape[0] != c or t.dtype.kind not in "iu":
                return None
            t = t.astype(np.int64)
            if not _rows_in_range(t):
                return None
            counted.append(Counted(table_cols, _ends(t[table_cols]), t.shape[1]))
        us = p.get("use_segments")
        seg_cols = np.zeros(0, np.int64)
        seg_bounds, seg_b, seg_f, seg_add, seg_count = (np.zeros(0, np.int64),) * 3 + (None, 0)
        acc_lo, acc_hi = -LIMIT, LIMIT - 1
        guess_k = None
        if us is not None and np.any(us):
            us = ints("use_segments", (c,))
            sb, sbias, sfrac = (np.asarray(p[k]) for k in ("seg_bounds", "seg_bias", "seg_frac"))
            if sb.ndim != 2 or sb.shape[0] != c or sbias.shape != (c, sb.shape[1] + 1) or sfrac.shape != sbias.shape \
                    or any(a.dtype.kind not in "iu" for a in (sb, sbias, sfrac)):
                return None
            sb = sb.astype(np.int64)
            if not _rows_in_range(sb):
                return None
            seg_cols = np.flatnonzero((us != 0) & (use_table == 0))
            seg_count = sb.shape[1]
            seg_b = sbias.astype(np.int64)[seg_cols]
            seg_f = sfrac.astype(np.int64)[seg_cols]
            thr = None
            if rounding == "half_up" and seg_cols.size and np.all(mult[seg_cols] > 0):
                ms = mult[seg_cols]
                h = [1 << (int(n) - 1) for n in shift[seg_cols]]
                exact_k = [[int(bb) * int(m) + int(ff) + hh for bb, ff in zip(br, fr)]
                           for m, hh, br, fr in zip(ms, h, seg_b, seg_f)]
                span = segment_span(ms, exact_k)
                if span > 0:
                    thr = segment_thresholds(ms, shift[seg_cols], exact_k, sb[seg_cols], zo, out_min, out_max, span)
            if thr is not None:
                counted.append(Counted(seg_cols, _ends(thr), thr.shape[1]))
                # the multiplier result of these channels is only the first guess of their count:
                # make it step where the staircase does at its middle level
                mid = thr.shape[1] // 2
                if thr.shape[1]:
                    guess_k = (np.int64(out_min + 1 + mid - zo) << shift[seg_cols]) - thr[:, mid] * mult[seg_cols]
                    guess_at = np.zeros(c, bool)
                    guess_at[seg_cols] = True
                acc_lo, acc_hi = -span, span
                seg_cols = np.zeros(0, np.int64)
            else:
                seg_bounds = sb[seg_cols].reshape(-1)
                if rounding == "half_up":
                    seg_add = fused_add(mult[seg_cols, None], shift[seg_cols, None], seg_b, seg_f).reshape(-1)
            seg_b, seg_f = seg_b.reshape(-1), seg_f.reshape(-1)
        fused = fused_add(mult, shift, bias, frac) if rounding == "half_up" else None
        if guess_k is not None:
            fused[guess_at] = guess_k
        if out_min > out_max:
            return None
        width = max([out_max - out_min] + [g.levels for g in counted]) + 1 if counted else 0
        low, high = wide_rows(c, width, counted) if counted else (None, None)
        uniform = int(shift[0]) if shift.size and np.all(shift == shift[0]) else None
        k = ChannelConstants(
            c, mult, shift, bias, frac, fused,
            zo, out_min, out_max, rounding, int(p.get("bits", 32)), counted, seg_cols, seg_bounds, seg_count,
            seg_b, seg_f, seg_add, acc_lo, acc_hi, width, low, high, max(1, TILE_VALUES // max(c, 1)), uniform)
        if rounding == "half_up" and not seg_cols.size:
            k.counted32 = all_counted32(k)
            if k.counted32 is not None and checked_share(k.counted32) > MAX_CHECKED_SHARE:
                k.counted32 = None  # the line proves too little here: the int64 form is faster
        return k
    except _NotFast:
        return None


class _NotFast(Exception):
    pass


def all_counted32(k: ChannelConstants) -> dict | None:
    """Every channel as a count of thresholds, for int32 accumulators (requantize_block32): the
    multiplier channels' staircases written as thresholds over [-2**31, 2**31) (segment_thresholds,
    one segment), with the counted channels' rows (wide_rows). Per channel, the line through its
    thresholds (affine_fit) and how far they stray from it. None when the multiplier channels'
    numbers do not allow it (segment_thresholds says None)."""
    c, w = k.channels, max(k.width, k.out_max - k.out_min + 1)
    plain = np.ones(c, bool)
    for g in k.counted:
        plain[g.cols] = False
    cols = np.flatnonzero(plain)
    groups = list(k.counted)
    if cols.size:
        m = k.multiplier[cols]
        if np.any(m <= 0):
            return None
        exact_k = [[int(b) * int(mm) + int(f) + (1 << (int(n) - 1))]
                   for mm, n, b, f in zip(m, k.shift[cols], k.bias[cols], k.frac[cols])]
        span = segment_span(m, exact_k)
        if span < 1 << 31:
            return None
        thr = segment_thresholds(m, k.shift[cols], exact_k, np.zeros((cols.size, 0), np.int64), k.out_zero_point,
                                 k.out_min, k.out_max, span)
        if thr is None:
            return None
        groups.append(Counted(cols, _ends(thr), thr.shape[1]))
    low, high = wide_rows(c, w, groups)
    fit = affine_fit(high.reshape(c, w)[:, :-1], k.out_min)
    return {"low": low, "high": high, "width": w, **fit, "tiles": {}}


I32_MIN, I32_MAX = -(2**31), 2**31 - 1


def affine_fit(t, out_min):
    """For sorted thresholds t [C, L] (out = out_min + #{i : x >= t[c, i]}, int64, +-inf allowed)
    and int32 x: per channel the float32 line A(x) = x*slope + offset (offset in output units, less
    1/2: rint of it is the guess), the output bounds lo/hi = out_min + #{t <= -2**31} and
    out_min + #{t <= 2**31 - 1}, and stray = max |t_i - a_i| over the thresholds inside int32, a_i
    the x where x*slope + offset + 1/2 = out_min + i (computed in float64 from the float32 values:
    slack added). The line goes through the first and last of those thresholds, then is moved to
    centre the strays. Channels with fewer than two: slope 0 (their output is lo = hi or
    every value is checked)."""
    c, n = t.shape
    inside = (t > I32_MIN) & (t <= I32_MAX)
    lo = out_min + (t <= I32_MIN).sum(axis=1)
    hi = out_min + (t <= I32_MAX).sum(axis=1)
    slope = np.zeros(c, np.float32)
    offset = (lo.astype(np.float64) - 0.5).astype(np.float32)
    stray = np.where(lo == hi, 0.0, np.inf)
    levels = out_min + np.arange(1, n + 1, dtype=np.float64)
    for j in np.flatnonzero(inside.sum(axis=1) >= 2):
        ii = np.flatnonzero(inside[j])
        tt = t[j, ii].astype(np.float64)
        lv = levels[ii]
        if tt[-1] <= tt[0]:
            continue
        s = np.float32((lv[-1] - lv[0]) / (tt[-1] - tt[0]))
        a = (lv - 0.5) / np.float64(s)  # a_i + offset / slope
        d = tt - a
        o = np.float32(-(d.max() + d.min()) / 2 * np.float64(s))
        a = (lv - 0.5 - np.float64(o)) / np.float64(s)
        slack = 1e-9 * (np.abs(a).max() + 1.0)
        slope[j], offset[j], stray[j] = s, o, float(np.abs(tt - a).max()) + slack
    return {"slope": slope, "offset": offset, "out_lo": lo.astype(np.float32), "out_hi": hi.astype(np.float32),
            "stray": stray}


# above this expected share of elements checked against the thresholds, requantize_block wins
MAX_CHECKED_SHARE = 0.25


def checked_share(d) -> float:
    """The expected share of elements requantize_block32 checks against the thresholds, for
    accumulators below 2**24 spread evenly: 1 - 2*safe_distance per channel, averaged."""
    return float(np.mean(np.clip(1.0 - 2.0 * safe_distance(d, 1 << 24).astype(np.float64), 0.0, 1.0)))


def counted32_rows(k: ChannelConstants, t):
    """all_counted32's per-channel rows tiled t times: float32 slope, offset, output bounds, and
    to_index = c*W - out_min (index into the rows = output + to_index)."""
    d = k.counted32
    hit = d["tiles"].get(t)
    if hit is None:
        cw = np.arange(k.channels, dtype=np.int64) * d["width"]
        hit = {key: np.tile(d[key], t) for key in ("slope", "offset", "out_lo", "out_hi")}
        hit["to_index"] = cw - k.out_min
        d["tiles"][t] = hit
    return hit


U32 = 2.0**-24  # unit roundoff of float32 (round to nearest)


def safe_distance(d, x_abs_max):
    """Per channel the largest |A(x) - rint(A(x))| (float32 A, as requantize_block32 computes it)
    that proves rint(A(x)) is the output, for |x| <= x_abs_max; <= 0 where nothing is proved.

    With a(x) = x*slope + offset exact, the float32 A(x) = f32(f32(f32(x)*slope) + offset) is within
    eps = 2**-24 * (3*|x|*slope + |offset|) (1.001 for the higher-order terms) of a(x). If
    |A - q| < 1/2 - slope*stray - eps for the integer q = rint(A), then a + 1/2 lies strictly
    between q + slope*stray and q + 1 - slope*stray, so every threshold of level <= q is <= x and
    every other is > x (each lies within stray of where the line reaches its level): the output is
    clamp(q, lo, hi) (levels whose thresholds are outside int32 are counted by lo and hi)."""
    s = d["slope"].astype(np.float64)
    o = np.abs(d["offset"].astype(np.float64))
    eps = U32 * 1.001 * (3.0 * float(x_abs_max) * s + o + 1.0)
    # a channel without a line (stray inf, slope 0) proves nothing: every element is checked
    safe = 0.5 - np.where(np.isfinite(d["stray"]), s * np.where(np.isfinite(d["stray"]), d["stray"], 0.0), np.inf) - eps
    safe = np.where(d["out_lo"] == d["out_hi"], 1.0, safe)  # one output whatever x is
    # round down into float32, so the float32 comparison is never looser
    s32 = safe.astype(np.float32)
    return np.where(s32.astype(np.float64) > safe, np.nextafter(s32, np.float32(-1)), s32)


def requantize_block32(x, k: ChannelConstants, out, flagged):
    """One block of int32 accumulators x [m, C] -> out [m, C] (all_counted32): out = clamp(rint(A(x)),
    lo, hi) with the float32 line A of each channel, exact wherever |A - rint(A)| is below
    safe_distance (the proof is there); the other elements' positions (in the block) are appended
    to `flagged` with the block, for fix_flagged."""
    m, c = x.shape
    t = k.tile if m % k.tile == 0 else 1
    d = k.counted32
    rows = counted32_rows(k, t)
    xw = x.reshape(m // t, t * c)
    x_abs = max(-int(x.min()), int(x.max())) if x.size else 0
    bound = 1 << max(x_abs, 1).bit_length()  # > |x|: one row per power of two, kept
    safe = d["tiles"].get((t, bound))
    if safe is None:
        safe = d["tiles"][(t, bound)] = np.tile(safe_distance(d, bound), t)
    f = np.empty(xw.shape, np.float32)
    np.copyto(f, xw, casting="unsafe")
    f *= rows["slope"]
    f += rows["offset"]
    q = np.rint(f)
    f -= q
    np.abs(f, out=f)
    pos = np.flatnonzero(f >= safe)
    np.maximum(q, rows["out_lo"], out=q)
    np.minimum(q, rows["out_hi"], out=q)
    np.copyto(out.reshape(xw.shape), q, casting="unsafe")
    if pos.size:
        flagged.append(pos)


def fix_flagged(acc, k: ChannelConstants, out, starts, flagged):
    """The exact outputs of the flagged elements of all blocks (block row starts, positions in each
    block), from their guess in out: the count moved by one while x is outside [E[c, j], E[c, j+1])
    (as correct_counts, lean: these are few), the rest by correct_counts."""
    d = k.counted32
    c, w = acc.shape[1], d["width"]
    gpos = starts[0] * c + flagged[0] if len(flagged) == 1 else \
        np.concatenate([r0 * c + p for r0, p in zip(starts, flagged)])
    xs = acc.reshape(-1)[gpos].astype(np.int64)
    base = (gpos % c) * w - k.out_min
    idx = out.reshape(-1)[gpos].astype(np.intp)
    idx += base  # c*W + j; the guess is an output in [lo, hi], so j is in [0, W - 1]
    low, high = d["low"], d["high"]
    for _ in range(CORRECTION_STEPS):
        up = xs >= high[idx]
        down = xs < low[idx]
        if not (up.any() or down.any()):
            break
        idx += up
        idx -= down
    else:
        idx = correct_counts(xs, idx, low, high, w, lambda: offset_levels(d, high, k.channels, w))
    out.reshape(-1)[gpos] = idx - base


# -- the constants, prepared once per node ---------------------------------------------------------
_CACHE: dict = {}
PARAM_KEYS = ("multiplier", "shift", "bias", "frac", "use_table", "thresholds", "use_segments", "seg_bounds",
              "seg_bias", "seg_frac")


def cached_for(arrays, extra, build):
    """build(), kept while the NumPy arrays `arrays` (None allowed after the first) live, keyed by
    their identity and the hashable `extra`: a program's constants are not changed in place
    (replace an array to change it). Not cached (built on every call) unless they are all arrays."""
    if not isinstance(arrays[0], np.ndarray) or not all(a is None or isinstance(a, np.ndarray) for a in arrays):
        return build()
    key = tuple(id(a) for a in arrays) + tuple(extra)
    hit = _CACHE.get(key)
    if hit is not None and all((r() if r is not None else None) is a for r, a in zip(hit[0], arrays)):
        return hit[1]
    val = build()
    refs = [None if a is None else weakref.ref(a) for a in arrays]
    weakref.finalize(arrays[0], _CACHE.pop, key, None)  # the entry goes with its first array
    if len(_CACHE) > 4096:
        _CACHE.clear()
    _CACHE[key] = (refs, val)
    return val


def cached_prepare(p, channels: int) -> ChannelConstants | None:
    """prepare(p, channels), once per parameter arrays (cached_for)."""
    extra = (int(channels), p["out_zero_point"], p["out_min"], p["out_max"], p["rounding"], p.get("bits", 32))
    return cached_for([p.get(k) for k in PARAM_KEYS], extra, lambda: prepare(p, channels))


# -- the computation ---------------------------------------------------------------------------------

def segment_index(a, bounds_flat, count):
    """s = #{i : a[:, j] >= bounds[j, i]} for a int64 [m, J], bounds [J, count] sorted per row
    (flattened): branchless binary search, one gather per halving."""
    base = (np.arange(a.shape[1], dtype=np.int64) * count)[None, :]
    s = np.zeros(a.shape, np.int64)
    step = 1 << (max(count, 1).bit_length() - 1)
    while step:
        cand = s + step
        ok = cand <= count
        g = np.take(bounds_flat, base + np.minimum(cand, count) - 1)
        s = np.where(ok & (g <= a), cand, s)
        step >>= 1
    return s


def correct_counts(x, idx, low, high, width, levels_flat):
    """The counts idx (flat int64, idx = c*width + j, in place) made exact for the values x (flat
    int64): j += [x >= E[c, j+1]] - [x < E[c, j]] (low/high from wide_rows) while an element moves,
    each step toward its count, which it then keeps; elements still moving after
    CORRECTION_STEPS are counted with one searchsorted over levels_flat() (the rows E[c, 1:width],
    +inf as LIMIT, offset by c*2**40: values lie in [-LIMIT, LIMIT), so each row's count stays its own)."""
    up = x >= np.take(high, idx)
    moving = x < np.take(low, idx)
    moving |= up
    pos = np.flatnonzero(moving)
    for _ in range(CORRECTION_STEPS):
        if not pos.size:
            return idx
        idx[pos] += np.where(up[pos], 1, -1)
        xi, ii = x[pos], idx[pos]
        up_p = xi >= np.take(high, ii)
        still = up_p | (xi < np.take(low, ii))
        pos = pos[still]
        up[pos] = up_p[still]
    if pos.size:
        c = idx[pos] // width
        off = np.int64(1) << 40
        idx[pos] = c * width + np.searchsorted(levels_flat(), x[pos] + c * off, side="right") - c * (width - 1)
    return idx


def offset_levels(store: dict, high, channels: int, width: int):
    """Rows E[c, 1:width] of every channel (from high, E[c, j+1] at c*width + j; +inf as LIMIT),
    offset by c*2**40, flattened: for correct_counts' last step. Built when first needed, then kept
    in `store`."""
    hit = store.get("levels")
    if hit is None:
        rows = np.minimum(high.reshape(channels, width)[:, :-1], LIMIT)
        hit = (rows + (np.arange(channels, dtype=np.int64) << 40)[:, None]).reshape(-1)
        store["levels"] = hit
    return hit


def requantize_block(acc, k: ChannelConstants, out):
    """One block: acc [m, C] (any integer dtype, values in [k.acc_lo, k.acc_hi]) -> out [m, C].
    index = clamp(((acc*M0 + K) >> n) + zo - out_min, 0, out_max - out_min) + c*W per element
    (the multiplier form: the output of the multiplier channels, the first guess of the counted
    ones), corrected to the counts, then out = index - c*W + out_min."""
    m, c = acc.shape
    t = k.tile if m % k.tile == 0 else 1
    rows = tiled_rows(k, t)
    x = acc.astype(np.int64)
    if k.fused_add is not None:
        with np.errstate(over="ignore"):
            v = np.multiply(x.reshape(m // t, t * c), rows["mult"])
            v += rows["fused"]
        np.right_shift(v, k.uniform_shift if k.uniform_shift is not None else rows["shift"], out=v)
    else:
        v = requantize_values(x, k.multiplier, k.shift, k.bias, k.frac, k.out_zero_point, k.out_min, k.out_max,
                              k.rounding, k.bits).reshape(m // t, t * c)
    v += rows["add"]
    np.clip(v, rows["lo"], rows["hi"], out=v)
    idx = v.reshape(m, c)
    if k.seg_cols.size:  # segment channels whose staircase is not written as thresholds
        idx[:, k.seg_cols] = segment_rows(x[:, k.seg_cols], k) + rows["back"][k.seg_cols]
    if k.width:
        correct_counts(x.reshape(-1), idx.reshape(-1), k.low, k.high, k.width,
                       lambda: offset_levels(k.tiled, k.high, k.channels, k.width))
    np.subtract(v, rows["back"], out=out.reshape(m // t, t * c), casting="unsafe")


def segment_rows(sa, k: ChannelConstants):
    """The segment channels' outputs (seg_cols; sa int64 [m, len(seg_cols)]): the segment index by
    binary search, then their bias and fraction, then the multiplier form."""
    s = segment_index(sa, k.seg_bounds, k.seg_count)
    at = (np.arange(k.seg_cols.size, dtype=np.int64) * (k.seg_count + 1))[None, :] + s
    if k.seg_add is not None:
        with np.errstate(over="ignore"):
            sa *= k.multiplier[k.seg_cols]
            sa += np.take(k.seg_add, at)
        np.right_shift(sa, k.shift[k.seg_cols], out=sa)
        sa += k.out_zero_point
        return np.clip(sa, k.out_min, k.out_max, out=sa)
    return requantize_values(sa, k.multiplier[k.seg_cols], k.shift[k.seg_cols], np.take(k.seg_bias, at),
                             np.take(k.seg_frac, at), k.out_zero_point, k.out_min, k.out_max, k.rounding, k.bits)


def requantize_rows(acc, k: ChannelConstants, dtype) -> np.ndarray | None:
    """out [M, C] of `dtype` for acc [M, C] (C-contiguous integers), in row blocks on every core;
    None when some accumulator value lies outside [k.acc_lo, k.acc_hi] (the caller takes the
    reference)."""
    if acc.dtype.kind not in "iu":
        return None
    info = np.iinfo(acc.dtype)
    if (int(info.min) < k.acc_lo or int(info.max) > k.acc_hi) and acc.size and \
            (int(acc.min()) < k.acc_lo or int(acc.max()) > k.acc_hi):
        return None
    out = np.empty(acc.shape, dtype)
    fast32 = k.counted32 is not None and acc.size and np.dtype(dtype).kind in "iu" and \
        int(np.iinfo(dtype).min) <= int(k.counted32["out_lo"].min()) and \
        int(k.counted32["out_hi"].max()) <= int(np.iinfo(dtype).max)
    if fast32 and acc.dtype != np.int32:
        fast32 = I32_MIN <= int(acc.min()) and int(acc.max()) <= I32_MAX
        if fast32:
            acc = acc.astype(np.int32)
    blocks = parallel.row_blocks(acc.shape[0], acc.shape[1], k.tile)
    if not fast32:
        parallel.for_blocks(blocks, lambda r0, r1: requantize_block(acc[r0:r1], k, out[r0:r1]))
        return out
    flagged = []  # (block row start, positions): list.append is atomic, blocks run on several threads

    def body(r0, r1):
        got = []
        requantize_block32(acc[r0:r1], k, out[r0:r1], got)
        if got:
            flagged.append((r0, got[0]))
    parallel.for_blocks(blocks, body)
    if flagged:
        fix_flagged(acc, k, out, [r0 for r0, _ in flagged], [p for _, p in flagged])
    return out


def reference_rows(acc, p):
    """The reference (requant.apply_plan) on acc [M, C], channel last: what requantize_rows equals."""
    from .requant import apply_plan

    return apply_plan(np.asarray(acc, np.int64), p, np.arange(acc.shape[-1]))

