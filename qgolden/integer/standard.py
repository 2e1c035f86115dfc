"""The standard integer requantization pipeline of TFLite, gemmlowp and CMSIS-NN, and how far it is
from the engine.

What DSPs and NPUs implement (TFLite `reference_integer_ops`, gemmlowp's output stage
`OutputStageQuantizeDownInt32ByFixedPoint`, CMSIS-NN `arm_nn_requantize`):

    bias_q   = round(b / (s_x * s_w))                  int32 bias, rounded half away from zero
                                                       (TFLite's bias quantization: std::round)
    M        = s_x * s_w / s_y                          double; QuantizeMultiplier(M) = (M0, e):
                                                       M = M0 * 2**(e - 31), M0 in [2**30, 2**31)
    y        = RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(acc + bias_q, M0), -e)
    out      = clamp(y + z_y, act_min, act_max)

(tensorflow/lite/kernels/internal/quantization_util.cc QuantizeMultiplier; common.h
MultiplyByQuantizedMultiplier; gemmlowp fixedpoint.h SaturatingRoundingDoublingHighMul,
RoundingDivideByPOT.) Both roundings are half away from zero; the doubling high multiply
saturates only for INT32_MIN * INT32_MIN, which CMSIS-NN's non-saturating variant leaves out:
on an accumulator below 2**31 the three libraries compute the same integers.

In qgolden's integer form (fixedpoint.requantize_values, rounding 'tflite') that is multiplier
M0, shift n = 31 - e, bias bias_q, fraction 0. `standard_plan` builds it and certifies it like
any other plan: over every reachable accumulator value, against the engine's own float formula.
"""
from __future__ import annotations

import math

import numpy as np

from .requant import LayerPlan, certify_plan
from .thresholds import step_thresholds

# the libraries whose output stage this is; each is the 'tflite' integer arithmetic
STANDARD_ROUNDINGS = ("tflite", "gemmlowp", "cmsis-nn")


def quantize_multiplier(real: float, bits: int = 32):
    """TFLite QuantizeMultiplier: (M0, n) with real ≈ M0 * 2**-n, M0 in [2**(bits-2), 2**(bits-1)).

    q, e = frexp(real); M0 = round(q * 2**(bits-1)) (half away); M0 == 2**(bits-1) -> M0 /= 2, e += 1;
    n = (bits - 1) - e. None when real <= 0 or real >= 1 would need a left shift (n < bits - 1)."""
    if not real > 0 or not math.isfinite(real):
        return None
    q, e = math.frexp(real)
    top = 1 << (bits - 1)
    m0 = int(math.floor(q * top + 0.5))
    if m0 == top:
        m0 //= 2
        e += 1
    n = (bits - 1) - e
    if n < bits - 1:
        return None
    return m0, n


def natural_bias(bias, x_scale, weight_scale, channels: int):
    """bias_q[c] = round(b[c] / (s_x * s_w[c])) in double, half away from zero (std::round); 0 without bias."""
    sw = np.broadcast_to(np.asarray(weight_scale, np.float64).reshape(-1), (channels,))
    if bias is None:
        return np.zeros(channels, np.int64)
    b = np.broadcast_to(np.asarray(bias, np.float64).reshape(-1), (channels,))
    v = b / (float(x_scale) * sw)
    return (np.sign(v) * np.floor(np.abs(v) + 0.5)).astype(np.int64)


def standard_plan(ref_fn, lo, hi, *, multiplier, bias_q, zo, out_min, out_max, bits=32,
                  enumerate_budget=1 << 22, overflow_check=None):
    """The standard pipeline for the columns of `ref_fn` (the engine's requantization, acc [L, C] ->
    out [L, C]) with real multipliers `multiplier` [C] and int biases `bias_q` [C], certified over
    [lo, hi] per column; None if a multiplier cannot be represented (>= 1 or <= 0)."""
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    nc = lo.shape[0]
    mult = np.broadcast_to(np.asarray(multiplier, np.float64).reshape(-1), (nc,))
    m0 = np.zeros(nc, np.int64)
    sh = np.zeros(nc, np.int64)
    for c in range(nc):
        r = quantize_multiplier(float(mult[c]), bits)
        if r is None:
            return None
        m0[c], sh[c] = r
    levels = np.arange(out_min + 1, out_max + 1, dtype=np.int64)
    t = step_thresholds(ref_fn, lo, hi, levels)
    zeros = np.zeros(nc, np.int64)
    plan = LayerPlan(multiplier=m0, shift=sh, bias=np.asarray(bias_q, np.int64).copy(), frac=zeros.copy(),
                     use_table=np.zeros(nc, bool), use_segments=np.zeros(nc, bool),
                     seg_bounds=np.full((nc, 1), 1 << 38, np.int64), seg_bias=np.zeros((nc, 2), np.int64),
                     seg_frac=np.zeros((nc, 2), np.int64), thresholds=t.T.copy(), out_zero_point=int(zo),
                     out_min=int(out_min), out_max=int(out_max), rounding="tflite", bits=bits, lo=lo, hi=hi,
                     solved=np.zeros(nc, bool), divisor=zeros.copy(), div_offset=zeros.copy(),
                     div_rounding=zeros.copy(), div_zero_point=zeros.copy())
    certify_plan(plan, ref_fn, levels, t, enumerate_budget, overflow_check)
    plan.solved = plan.mismatches == 0
    return plan


def differences(plan, ref_fn, max_values: int = 1 << 20):
    """Per column: (largest |integer form - engine| over the differing accumulator values, or 0)."""
    nc = plan.lo.shape[0]
    worst = np.zeros(nc, np.int64)
    for c in range(nc):
        vals = [np.arange(s, e, dtype=np.int64) for s, e in plan.bad[c]]
        if not vals:
            continue
        acc = np.concatenate(vals)[:max_values]
        grid = np.broadcast_to(acc[:, None], (acc.size, nc))
        ours = plan.int_fn(grid)[:, c]
        theirs = np.asarray(ref_fn(grid)).astype(np.int64)[:, c]
        worst[c] = int(np.abs(ours - theirs).max())
    return worst


def observed_hits(plan, observed, axis: int):
    """Per column: how many of the observed accumulator values (the user's inputs) fall on a value
    where the plan differs from the engine. observed: int array with channels on `axis`."""
    nc = plan.lo.shape[0]
    hits = np.zeros(nc, np.int64)
    if observed is None:
        return None
    obs = np.moveaxis(np.asarray(observed), axis, -1).reshape(-1, nc)
    for c in range(nc):
        for s, e in plan.bad[c]:
            hits[c] += int(((obs[:, c] >= s) & (obs[:, c] < e)).sum())
    return hits


def constant_channels(plan):
    """{column: its one output value} for the columns whose output is the same on every reachable
    accumulator value (a channel always clamped, e.g. dead after ReLU): any bias serves there."""
    const = {}
    for c in range(plan.lo.shape[0]):
        t = plan.thresholds[c]
        inside = (t > plan.lo[c]) & (t <= plan.hi[c])
        if not inside.any():
            const[c] = int(plan.out_min + (t <= plan.lo[c]).sum())
    return const


PLAN_ROWS = ("multiplier", "shift", "bias", "frac", "use_table", "use_segments", "seg_bounds", "seg_bias",
             "seg_frac", "thresholds", "solved", "divisor", "div_offset", "div_rounding", "div_zero_point",
             "mismatches")


def prefer_standard(solved, standard, allow_tables: bool):
    """Per channel, the plan to keep: the standard pipeline where it is exact, the solver's where
    only the solver is exact (its own multiplier/bias, or a table where tables are allowed), and
    the standard pipeline again where neither is exact (the textbook answer, reported with its
    differences, beats a fallback). Returns (merged LayerPlan, used_standard bool [C])."""
    solver_exact = (solved.mismatches == 0) & (allow_tables | ~np.asarray(solved.use_table))
    use = (standard.mismatches == 0) | ~solver_exact
    merged = LayerPlan(**dict(solved.__dict__))
    for key in PLAN_ROWS:
        a, b = np.asarray(getattr(solved, key)), np.asarray(getattr(standard, key))
        if a.ndim == 2 and a.shape[1] != b.shape[1]:  # segment tables of other widths: pad the narrower
            width = max(a.shape[1], b.shape[1])
            fill = (1 << 38) if key == "seg_bounds" else 0
            a = np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=fill)
            b = np.pad(b, ((0, 0), (0, width - b.shape[1])), constant_values=fill)
        sel = use.reshape((-1,) + (1,) * (a.ndim - 1))
        setattr(merged, key, np.where(sel, b, a))
    merged.bad = [standard.bad[c] if use[c] else solved.bad[c] for c in range(use.size)]
    return merged, use
