"""Integer-only parameters and accumulator widths as extra blocks of each linear/conv section.

They come from qgolden.integer: the certified (M0, n, int32 bias) per channel that
replace the engine's float32 requantization, and the accumulator interval a hardware
accumulator must hold. Shown next to the engine's own numbers, not instead of them.
"""
from __future__ import annotations

from .doc import Extra

SHOWN_CHANNELS = 4  # big layers are elided consistently, like tensors


def cached_integer_params(program) -> dict:
    """integer_params of the whole program, computed once per program object."""
    cached = getattr(program, "_integer_params", None)
    if cached is None:
        from ..integer import integer_params

        try:
            cached = integer_params(program)
        except Exception as e:  # an op with no integer form: say so in each section
            cached = {"__error__": f"{type(e).__name__}: {e}"}
        program._integer_params = cached
    return cached


def _channel_row(ch) -> tuple:
    c = ch.get("channel")
    if ch.get("method") == "thresholds":
        th = ch.get("thresholds") or []
        return (f"channel {c}", [f"threshold table: {len(th)} int32 thresholds"
                                 + (f" ({', '.join(str(t) for t in th[:6])}{', ...' if len(th) > 6 else ''})" if th else "")])
    parts = [f"M0 = {ch['M0']}, n = {ch['n']}, int32 bias = {ch['bias']}"]
    if "frac" in ch:
        parts.append(f", frac = {ch['frac']}")
    if ch.get("segment_starts"):
        parts.append(f", bias per binade segment ({len(ch['segment_starts'])} segments)")
    return (f"channel {c}", ["".join(parts)])


def integer_form(node, program):
    """Extra block: the certified integer-only requantization of a linear/conv node."""
    if node.op not in ("linear", "conv"):
        return None
    params = cached_integer_params(program)
    blocks = []
    p = params.get(node.name)
    if p is None:
        why = params.get("__error__", "no integer form was derived for this op")
        if node.attrs.get("out_dtype") == "float32":
            from ..integer.transform import float_why

            why = float_why(program, node)
        blocks.append(Extra("integer-only form", [("status", [f"not available: {why}"])]))
    else:
        rows = [("formula", [p.get("formula", "")]),
                ("rounding", [f"{p.get('rounding')}; output clamp [{p.get('out_min')}, {p.get('out_max')}], "
                              f"zero point {p.get('out_zero_point')}"])]
        if node.attrs.get("out_dtype") == "float32":
            rows.insert(0, ("folded", ["this float32 output, the non-decreasing float ops and max pools after it "
                                       "and the quantize that ends them are one integer requantization of the "
                                       "accumulator (then the max pools on integers)"]))
        chans = p.get("channels", [])
        rows += [_channel_row(ch) for ch in chans[:SHOWN_CHANNELS]]
        if len(chans) > SHOWN_CHANNELS:
            rows.append(("...", [f"{len(chans) - SHOWN_CHANNELS} more channels"]))
        blocks.append(Extra("integer-only form (certified equal to the engine over every reachable "
                            "accumulator value; qgolden certify)", rows))
    acc = accumulator_block(node, program)
    if acc is not None:
        blocks.append(acc)
    return blocks


def worst_case_accumulator(node, program):
    """(report of integer.accumulate.analyse over every input integer of the input's dtype, input lo,
    input hi), or None when the op has no accumulator analysis."""
    from ..integer.accumulate import analyse

    info = program.tensors.get(node.inputs[0]) if node.inputs and isinstance(node.inputs[0], str) else None
    lo_in, hi_in = (-128, 127) if info is not None and info.dtype == "int8" else (0, 255)
    try:
        return analyse(node, program.profile, lo_in, hi_in), lo_in, hi_in
    except Exception:  # an op without weights of the analysed form: no accumulator block
        return None


def accumulator_block(node, program):
    """Extra block: worst-case accumulator interval and the bits a hardware accumulator needs."""
    got = worst_case_accumulator(node, program)
    if got is None:
        return None
    rep, lo_in, hi_in = got
    rows = [("worst case", [f"acc in [{int(rep['lo'].min())}, {int(rep['hi'].max())}] over all inputs "
                            f"{lo_in}..{hi_in}: {rep['bits_needed']} bits"])]
    if rep.get("note"):
        rows.append(("int16 pairs", [rep["note"]]))
    return Extra("accumulator", rows)
