"""quantized::conv1d / conv2d (+relu), quint8 activations, qint8 weights.

Conv1d runs as conv2d with H = 1 (MakeArgForConv1d in qconv.cpp). Padding uses the input
zero point (real 0). Engine -> kernel (profile.conv_backend):
    fbgemm   PackedConvWeight::apply_impl -> fbgemm::fbgemmConv, which picks
             depthwise / groupwise / pointwise / im2col (FBGEMM src/FbgemmConv.cc)
    qnnpack  PackedConvWeightsQnnp -> q8conv / q8dwconv (exact int32)
    onednn   PackedConvWeightsOnednn -> oneDNN convolution
"""
from __future__ import annotations

import numpy as np

from ..cpu import cpu_class
from ..errors import NotModelled
from ..numerics import accumulate as A
from ..numerics.profile import conv_backend, detect_isa_cpu_only, gemm_saturates
from ..numerics.quantize import dequantize_per_tensor
from ..numerics.requantize import requantize_fbgemm, requantize_onednn, requantize_qnnpack
from .linear import count_pair_saturations
from .spec import OpSpec


def _pair(v, n=2):
    if np.ndim(v) == 0:
        return (int(v),) * n
    v = tuple(int(i) for i in v)
    return v if len(v) == n else v * n


def fbgemm_conv_path(c_in, c_out, groups, kernel, stride, padding, dilation, conv1d):
    """Which FBGEMM conv kernel runs (src/FbgemmConv.cc ConvFastPath), for the 2-D
    conv_param_t PyTorch builds (conv1d: H = 1, kernel (1, k)).

    depthwise : G == IC, OC in {IC, 2*IC}, G % 8 == 0, all strides in {1,2}, square
                kernel 3 or 5, dilation 1, pad == (K-1)/2 on every side
                (takeDepthWiseFastPath; OC == 2*IC per numerics.md §3, measured on a VNNI
                host, the stored FBGEMM source shows OC == IC only. On AVX2 the choice
                cannot change the numbers: im2col with 1 channel per group pairs the
                same taps (t = r*K + s) as the depthwise kernel.)
    groupwise : IC/G == OC/G in {2,4,8,16}, G >= G_together, 3x3, pad 1, dilation 1,
                strides all 1 or all 2                           (fbgemmOptimizedGConv)
    pointwise : 1x1, stride 1, pad 0, dilation 1                 (plain GEMM)
    im2col    : everything else
    """
    kh, kw = kernel
    if (not conv1d and groups == c_in and c_out in (c_in, 2 * c_in) and groups % 8 == 0
            and all(s in (1, 2) for s in stride) and kh == kw and kh in (3, 5)
            and dilation == (1, 1) and padding == ((kh - 1) // 2,) * 2):
        return "depthwise"
    cpg, kpg = c_in // groups, c_out // groups
    if (not conv1d and cpg == kpg and cpg in (2, 4, 8, 16) and groups >= _gconv_groups_together(cpg)
            and (kh, kw) == (3, 3) and padding == (1, 1) and dilation == (1, 1)
            and stride in ((1, 1), (2, 2))):
        return "groupwise"
    if (kh, kw) == (1, 1) and stride == (1, 1) and padding == (0, 0) and dilation == (1, 1):
        return "pointwise"
    return "im2col"


def onednn_conv_impl(c_per_g, k_per_g, groups):
    """Which oneDNN int8 conv implementation runs on AVX2 (ONEDNN_VERBOSE, and
    jit_uni_x8s8s32x_fwd_kernel::init_conf in src/cpu/x64/jit_uni_x8s8s32x_conv_kernel.cpp):

        jit_dw : groups > 1 and IC/G == OC/G == 1 (depthwise kernel; exact int32 products)
        jit    : groups == 1 (channels zero-padded to 8), or IC/G and OC/G both multiples
                 of 4 (ic/oc blocks of 8 or 4)   -> vpmaddubsw pairs of input channels
        ref    : other grouped convs (e.g. 2 or 3 channels per group, depthwise with
                 multiplier 2) -> ref:any, exact int32 accumulation
    """
    if groups > 1 and c_per_g == 1 and k_per_g == 1:
        return "jit_dw"
    if groups == 1 or (c_per_g % 4 == 0 and k_per_g % 4 == 0):
        return "jit"
    return "ref"


def saturation_correction(x4, w4, x_zero_point, layout, kernel, stride, padding, dilation, groups):
    """What int16 pair saturation adds to the exact sum, Σ_pairs (sat_int16(P) - P), for a
    kernel's pairing of the u8*s8 products P = x[k]w[k] + x[k+1]w[k+1]:

        'fbgemm'  im2col order k = (r*KW + s)*Cg + c, pairs (2j, 2j+1), padding = zx
        'onednn'  adjacent channels (2j, 2j+1) within a tap, Cg padded with 0 to even,
                  padded taps contribute 0 (onednn_conv_acc)

    Sparse, as saturation is rare: a list of (rows, channels, corr) with corr int64
    [len(rows), len(channels)] the correction at the flat output positions `rows`;
    None when nothing saturates. Groups whose channel maxima cannot make any pair leave int16
    are skipped; in the others, a pair can only leave int16 if both its inputs reach
    T = ceil((32768 - A*xmax) / A) (A = max|w| of the group: x0*A + xmax*A >= 32768 is
    needed), so only the output positions whose window reads such a value are evaluated."""
    x4 = np.asarray(x4)
    w4 = np.asarray(w4)
    nb, c_in, h, wd = x4.shape
    c_out, cpg, kh, kw = w4.shape
    kpg = c_out // groups
    pad_value = int(x_zero_point) if layout == "fbgemm" else 0
    chmax = A.per_channel_max(x4)
    if any(padding):
        chmax = np.maximum(chmax, pad_value)
    oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    m = nb * oh * ow
    entries = []
    for gi in range(groups):
        c0, c1, o0, o1 = gi * cpg, (gi + 1) * cpg, gi * kpg, (gi + 1) * kpg
        wg = A.weight_rows(w4, layout, o0, o1)
        if layout == "fbgemm":
            cm = np.tile(chmax[c0:c1], kh * kw)
        else:
            cm = np.tile(np.concatenate([chmax[c0:c1], np.zeros(cpg % 2, np.int64)]), kh * kw)
        kk = cm.size - cm.size % 2
        wp, wn = A.weight_column_bounds(wg)
        amax = int(max(wp.max(), wn.max())) if wp.size else 0  # max |w| of the group
        if amax == 0 or A.pair_saturation_columns(cm[:kk], (wp[:kk], wn[:kk])).size == 0:
            continue
        xmax = int(chmax[c0:c1].max())
        threshold = -(-(32768 - amax * xmax) // amax)
        even = layout == "onednn"
        hot = np.full((nb, h + 2 * padding[0], wd + 2 * padding[1]), pad_value >= threshold)  # padded grid
        hot[:, padding[0]:padding[0] + h, padding[1]:padding[1] + wd] = A.channel_max(x4, c0, c1) >= threshold
        if int(hot.sum()) * kh * kw >= m:
            rows = np.arange(m)
            cols = A.im2col_rows(x4, (kh, kw), stride, padding, dilation, pad_value, c0, c1, even_channels=even)
        else:
            rows = A.rows_reading(hot, (oh, ow), (kh, kw), stride, dilation)
            cols = A.im2col_rows_at(x4, rows, (oh, ow), (kh, kw), stride, padding, dilation, pad_value, c0, c1,
                                    even_channels=even)
        if rows.size == 0:
            continue
        corr = A.pair_saturation_correction(cols, wg, none_if_zero=True)
        if corr is None:
            continue
        hit = corr.any(axis=1)
        if hit.any():
            entries.append((rows[hit], np.arange(o0, o1), corr[hit]))
    return entries or None


def _onednn_host_acc(x4, w4, zx, stride, padding, dilation, groups, cpg, kpg, kernel, backend, profile,
                     as_float=False, x_range=None):
    """The target kernel's accumulator from this machine's oneDNN int8 conv (torch backend):
    acc_target = acc_host - correction(host pairing) + correction(target pairing), the
    corrections skipped when both kernels pair and saturate alike (same pairs: Cg even and
    padding equal to 0 in both, i.e. zx = 0 or no padding). None when oneDNN cannot serve
    (unknown host pairing, |acc| >= 2**24)."""
    mode = A.onednn_host_conv_mode()
    if mode is None:
        return None
    can_saturate = A.pairs_can_saturate(x4, w4, x_range)
    if mode == "saturate" and can_saturate and not _host_pairing_measured():
        return None
    host_sat = mode == "saturate" and onednn_conv_impl(cpg, kpg, groups) == "jit"
    if backend == "qnnpack":  # exact int32 sums
        target_layout, target_sat, same_pairs = "onednn", False, True
    elif backend == "fbgemm":
        target_layout, target_sat = "fbgemm", gemm_saturates(profile)
        same_pairs = cpg % 2 == 0 and (zx == 0 or not any(padding))
    else:
        target_layout, target_sat = "onednn", gemm_saturates(profile) and onednn_conv_impl(cpg, kpg, groups) == "jit"
        same_pairs = True
    acc = A.onednn_conv_raw(x4, w4, zx, stride, padding, dilation, groups, as_float, x_range)
    if acc is None or not can_saturate or (host_sat == target_sat and (same_pairs or not host_sat)):
        return acc
    add = saturation_correction(x4, w4, zx, target_layout, kernel, stride, padding, dilation, groups) \
        if target_sat else None
    sub = saturation_correction(x4, w4, zx, "onednn", kernel, stride, padding, dilation, groups) \
        if host_sat else None
    return _corrected(acc, add, sub)


def _host_pairing_measured() -> bool:
    """Whether this machine's oneDNN pairing of saturating u8*s8 sums is the one onednn_conv_acc models:
    measured on AVX2 hosts only (oneDNN's AVX2 jit kernels); VNNI and AMX hosts sum exactly
    (onednn_host_conv_mode 'exact'), so this only matters on AVX-512 hosts without VNNI."""
    return cpu_class(detect_isa_cpu_only()).onednn_isa == "avx2"


def _host_conv_is_exact(cpg, kpg, groups):
    """Whether this machine's oneDNN int8 conv sums exactly for this grouping: every kernel of a
    VNNI or AMX host does (onednn_host_conv_mode 'exact'); on an AVX2 host its jit_dw and ref
    kernels do (onednn_conv_impl), the pairing jit kernel does not."""
    mode = A.onednn_host_conv_mode()
    if mode is None or (mode == "saturate" and not _host_pairing_measured()):
        return False
    return mode == "exact" or onednn_conv_impl(cpg, kpg, groups) != "jit"


def _corrected(acc, add=None, sub=None):
    """acc + add - sub, the corrections sparse lists from saturation_correction (or None).
    A float32 acc (exact integers below 2**24) is patched in place while every patched value
    stays below 2**24, so it remains exact; otherwise acc becomes int64. acc itself when both
    are None."""
    if not add and not sub:
        return acc
    if acc.dtype != np.float32:
        acc = acc.astype(np.int64)
    for sign, entries in ((1, add), (-1, sub)):
        for rows, channels, corr in entries or ():
            at = np.ix_(rows, channels)
            cur = acc[at].astype(np.int64)
            cur += corr if sign > 0 else -corr
            if acc.dtype == np.float32 and cur.size and int(np.abs(cur).max()) >= 2 ** 24:
                acc = acc.astype(np.int64)
            acc[at] = cur
    return acc


def onednn_output_stage(profile, x_shape, w_shape, groups, stride, padding, dilation=(1, 1)) -> str:
    """The output stage (requantize_onednn) of the oneDNN conv kernel that runs for input
    [N, C, H, W] (conv1d: [N, C, L]) and weight [O, C/G, KH, KW] ([O, C/G, K]) on the
    profile's CPU class: CpuClass.onednn_conv_kernel, then onednn_output_stage."""
    conv1d = len(w_shape) == 3
    if conv1d:
        kernel, stride, padding, dilation = (1, w_shape[2]), (1, _pair(stride, 1)[0]), (0, _pair(padding, 1)[0]), \
            (1, _pair(dilation, 1)[0])
        h, wd = 1, x_shape[2]
    else:
        kernel, stride, padding, dilation = tuple(w_shape[2:]), _pair(stride), _pair(padding), _pair(dilation)
        h, wd = x_shape[2], x_shape[3]
    out_hw = tuple(max(0, (n + 2 * p - d * (k - 1) - 1) // s + 1)
                   for n, p, d, k, s in zip((h, wd), padding, dilation, kernel, stride))
    g = int(groups)
    cls = cpu_class(profile)
    fam = cls.onednn_conv_kernel(int(w_shape[1]), int(w_shape[0]) // g, g, kernel, stride, padding,
                                 int(x_shape[0]), out_hw, int(profile.get("num_threads", 1)))
    why = cls.onednn_conv_not_modelled(fam, int(w_shape[1]), int(w_shape[0]) // g, g, kernel, out_hw)
    if why:
        raise NotModelled(why)
    return cls.onednn_output_stage(fam)


def _gconv_groups_together(c_per_g):
    """PackWeightMatrixForGConv::numOfGroupsTogether on AVX2/AVX512 (ymm-based kernel):
    (assumed max(1, 8 // C_per_G)). Only decides the label: on AVX2 the groupwise kernel
    gives exactly the im2col numbers (verified: pairs of adjacent input channels within a
    tap, same as im2col's (r, s, c) order since C_per_G is even)."""
    return max(1, 8 // c_per_g)


def conv(x, *, x_scale, x_zero_point, weight, weight_scale, weight_zero_point, bias,
         out_scale, out_zero_point, stride, padding, dilation, groups, relu, per_channel=False,
         profile, trace=None, out_quant_min=None, out_quant_max=None, out_dtype=None, post_op=None,
         post_op_args=None):
    """x uint8 [N, C, L] or [N, C, H, W]; weight int8 [O, C/groups, k] or [O, C/groups, KH, KW];
    weight_scale float64 [O] (or [1]), weight_zero_point int64 [O] (or [1]); bias float32 [O]
    or None. Returns uint8 [N, O, L'] or [N, O, H', W']."""
    if conv_backend(profile) in ("pt2e_reference", "onednn_inductor", "xnnpack"):  # PT2E runtimes (ops/qdq.py)
        from . import qdq

        return qdq.conv_pt2e(conv_backend(profile), x, x_scale=x_scale, x_zero_point=x_zero_point,
                             weight=weight, weight_scale=weight_scale, weight_zero_point=weight_zero_point,
                             bias=bias, out_scale=out_scale, out_zero_point=out_zero_point, stride=stride,
                             padding=padding, dilation=dilation, groups=groups, relu=relu,
                             per_channel=per_channel, out_quant_min=out_quant_min, out_quant_max=out_quant_max,
                             out_dtype=out_dtype, profile=profile, trace=trace, post_op=post_op,
                             post_op_args=post_op_args)
    acc, ctx = conv_accumulate(x, weight, x_zero_point, weight_zero_point, stride, padding, dilation,
                               groups, profile, exact_float=trace is None and conv_backend(profile) in ("fbgemm", "onednn"))
    (conv1d, x4, w4, stride, padding, dilation, nb, oh, ow, c_out, g, cpg, kpg, kh, kw, zx, zw, backend,
     path, patches) = (ctx[k] for k in _CTX)
    req = {"fbgemm": requantize_fbgemm, "qnnpack": requantize_qnnpack,
           "onednn": requantize_onednn}[backend]
    t = {} if trace is not None else None
    extra = {"kernel": onednn_output_stage(profile, x4.shape, w4.shape, g, stride, padding, dilation)} \
        if backend == "onednn" else {}
    out = req(acc, x_scale=x_scale, weight_scale=weight_scale, out_scale=out_scale,
              out_zero_point=out_zero_point, bias=bias, per_channel=per_channel, relu=relu, trace=t, **extra)
    # an NCHW view of the NHWC result: the next conv and elementwise ops read this memory order
    out = out.reshape(nb, oh, ow, c_out).transpose(0, 3, 1, 2)
    if conv1d:
        out = np.ascontiguousarray(out[:, :, 0, :])
    if trace is not None:
        if patches is None:
            patches = A.im2col_patches(x4, (kh, kw), stride, padding, dilation, np.uint8(zx))
        trace["path"] = path
        trace["acc"] = acc.reshape(nb, oh, ow, c_out)
        trace.update(t)
        trace["out"] = out
        _explain_extras(trace, patches, x4, w4, g, cpg, kpg, zx, zw, backend, path, profile,
                        (kh, kw), stride, padding, dilation)
        trace["out_real"] = dequantize_per_tensor(out, out_scale, out_zero_point)
    return out


def _explain_extras(trace, patches, x4, w4, g, cpg, kpg, zx, zw, backend, path, profile,
                    kernel, stride, padding, dilation):
    """Trace-only (explanations; the computation above is unchanged): `acc_exact`, the exact
    int sum, and `saturated_pairs`, how many u8*s8 pair sums the kernel clipped to int16,
    both [N, OH, OW, O] like `acc`."""
    nb, oh, ow = patches.shape[:3]
    m = nb * oh * ow
    c_out = w4.shape[0]
    exact = np.empty((m, c_out), dtype=np.int64)
    sat = np.zeros((m, c_out), dtype=np.int64)
    for gi in range(g):
        cols = A.im2col_fbgemm(patches, gi * cpg, (gi + 1) * cpg)
        wg = A.weight_fbgemm(w4, gi * kpg, (gi + 1) * kpg)
        zg = zw[gi * kpg:(gi + 1) * kpg]
        exact[:, gi * kpg:(gi + 1) * kpg] = A.matmul_exact(
            cols.astype(np.int64) - zx, (wg.astype(np.int64) - zg[:, None]).T)
        if backend == "fbgemm" and path != "depthwise" and gemm_saturates(profile):
            sat[:, gi * kpg:(gi + 1) * kpg] = count_pair_saturations(cols, wg)
    if path == "depthwise":
        b, _, _, c_in, kh, kw = patches.shape
        xt = patches.reshape(b, oh, ow, c_in, kh * kw).astype(np.int64)
        if c_out != c_in:
            xt = np.repeat(xt, c_out // c_in, axis=3)
        wt = w4.reshape(c_out, kh * kw).astype(np.int64)
        if (kh * kw) % 2:
            xt = np.concatenate([xt, np.zeros(xt.shape[:-1] + (1,), np.int64)], axis=-1)
            wt = np.concatenate([wt, np.zeros((c_out, 1), np.int64)], axis=-1)
        p = xt[..., 0::2] * wt[:, 0::2] + xt[..., 1::2] * wt[:, 1::2]
        sat = ((p > 32767) | (p < -32768)).sum(axis=-1).reshape(m, c_out)
    elif backend == "onednn" and path == "jit" and gemm_saturates(profile):
        nbx, _, h, wd = x4.shape
        patches0 = A.im2col_patches(x4, kernel, stride, padding, dilation, np.uint8(0))
        for gi in range(g):
            sat[:, gi * kpg:(gi + 1) * kpg] = count_pair_saturations(
                A.im2col_onednn(patches0, gi * cpg, (gi + 1) * cpg), A.weight_onednn(w4, gi * kpg, (gi + 1) * kpg))
    trace["acc_exact"] = exact.reshape(nb, oh, ow, c_out)
    trace["saturated_pairs"] = sat.reshape(nb, oh, ow, c_out)


_CTX = ("conv1d", "x4", "w4", "stride", "padding", "dilation", "nb", "oh", "ow", "c_out", "g", "cpg", "kpg",
        "kh", "kw", "zx", "zw", "backend", "path", "patches")


def conv_accumulate(x, weight, x_zero_point, weight_zero_point, stride, padding, dilation, groups, profile,
                    exact_float=False):
    """The engine's integer accumulator of a conv, before requantization: (acc, ctx) with acc
    int64 [N*OH*OW, O] = Σ (x - zx)(w - zw) exactly as the kernel forms it (int16 pair
    saturation included), ctx the shapes and the kernel path (keys in _CTX). Used by conv()
    and by the integer-only conv_acc op. exact_float: acc may come back as float32 holding
    the exact integers (|acc| < 2**24), which saves conversions."""
    x = np.asarray(x)
    w = np.asarray(weight)
    conv1d = x.ndim == 3
    if conv1d:
        x4 = x[:, :, None, :]
        # one 4-D array per weight, so the per-weight caches (packed oneDNN weights, bounds) hit; a
        # copy, not a view: a view would keep w alive, and with it this cache entry, for good
        w4 = A._cached_weight(w, "as_conv2d", lambda: w[:, :, None, :].copy())
        stride, padding, dilation = (1, _pair(stride, 1)[0]), (0, _pair(padding, 1)[0]), (1, _pair(dilation, 1)[0])
    else:
        x4, w4 = x, w
        stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    nb, c_in, h, wd = x4.shape
    c_out, cpg, kh, kw = w4.shape
    g = int(groups)
    zx = int(x_zero_point)
    zw = np.broadcast_to(np.asarray(weight_zero_point, dtype=np.int64).reshape(-1), (c_out,))
    symmetric = not np.any(zw != 0)
    backend = conv_backend(profile, g, symmetric)
    patches = None  # built only by the paths that read it (conv() builds it for a trace)
    oh = max(0, (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1)
    ow = max(0, (wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1)
    m = nb * oh * ow
    kpg = c_out // g
    acc = None  # allocated only by the per-group loops below (the other paths return their own)
    path = backend
    if backend == "fbgemm":
        path = fbgemm_conv_path(c_in, c_out, g, (kh, kw), stride, padding, dilation, conv1d)
    if backend == "onednn" and not symmetric:
        raise ValueError("onednn conv requires weight zero point 0")
    fast = A._BACKEND == "torch"
    acc_host = None
    x_range = A.value_range(x4)  # one pass, read by every bound below
    if fast and symmetric and backend in ("fbgemm", "onednn", "qnnpack") and path != "depthwise":
        acc_host = _onednn_host_acc(x4, w4, zx, stride, padding, dilation, g, cpg, kpg, (kh, kw),
                                    backend, profile, exact_float, x_range)
    if acc_host is not None:
        acc = acc_host
        if backend == "onednn":
            path = onednn_conv_impl(cpg, kpg, g)
    elif path == "depthwise":
        # FBGEMM's depthwise kernel (depthwise_fbgemm_acc): the exact sum, plus what int16
        # saturation takes off the few (channel, tap pair)s that can clip
        exact = None
        if fast and symmetric and _host_conv_is_exact(cpg, kpg, g):
            exact = A.onednn_conv_raw(x4, w4, zx, stride, padding, dilation, g, exact_float, x_range)
        if exact is None and fast:
            exact = A.conv_exact_torch(x4, w4, zx, zw, stride, padding, dilation, g, exact_float)
        elif exact is None:
            exact = A.depthwise_exact_acc(x4, w4, zx, zw, stride, padding, dilation).reshape(m, c_out)
            if not exact_float and exact.dtype == np.float32:
                exact = exact.astype(np.int64)
        acc = _corrected(exact, A.depthwise_pair_correction(x4, w4, zx, stride, padding, dilation))
    elif fast and not A.pairs_can_saturate(x4, w4, x_range):
        # no int16 pair can saturate on these data, so every kernel's sum is the exact one
        acc = A.conv_exact_torch(x4, w4, zx, zw, stride, padding, dilation, g, exact_float)
    elif fast and backend == "fbgemm":
        # FBGEMM's im2col GEMM: the exact sum, plus what saturation takes off the pairs that can clip
        acc = _corrected(A.conv_exact_torch(x4, w4, zx, zw, stride, padding, dilation, g, exact_float),
                         saturation_correction(x4, w4, zx, "fbgemm", (kh, kw), stride, padding, dilation, g))
    elif backend == "onednn" and gemm_saturates(profile) and onednn_conv_impl(cpg, kpg, g) == "jit":
        path = "jit"
        sat = True
        patches0 = A.im2col_patches(x4, (kh, kw), stride, padding, dilation, np.uint8(0))
        valid = A.im2col_patches(np.ones((nb, 1, h, wd), np.uint8), (kh, kw), stride, padding,
                                 dilation, np.uint8(0)).reshape(m, kh * kw)
        acc = np.empty((m, c_out), dtype=np.int64)
        for gi in range(g):
            acc[:, gi * kpg:(gi + 1) * kpg] = A.onednn_conv_acc(
                patches0, valid, w4, gi * cpg, (gi + 1) * cpg, gi * kpg, (gi + 1) * kpg, zx, sat)
    else:
        # fbgemm im2col / pointwise / groupwise: k = (r*KW + s)*Cg + c, pairs (2j, 2j+1)
        # of that order per group; qnnpack and oneDNN kernels that do not saturate (VNNI / AMX,
        # jit_dw, ref): the exact sum, which im2col with padding zx gives as well (padded taps
        # contribute (zx - zx) * w = 0, as oneDNN's skipped taps do)
        if backend == "onednn":
            path = onednn_conv_impl(cpg, kpg, g)
        sat = backend == "fbgemm" and gemm_saturates(profile)
        xa = max(abs(x_range[0]), abs(x_range[1]), abs(zx))  # max |x| over the columns, padding (zx) included
        for gi in range(g):
            o0, o1 = gi * kpg, (gi + 1) * kpg
            cols = A.im2col_rows(x4, (kh, kw), stride, padding, dilation, zx, gi * cpg, (gi + 1) * cpg)  # [M, K]
            wg = A.weight_rows(w4, "fbgemm", o0, o1)  # [Og, K]
            zg = zw[o0:o1]
            # Σ_k x*w (pair-saturated), then the zero-point terms: - zx*Σw - zg*Σx + K*zx*zg
            as_float = exact_float and g == 1 and not np.any(zg != 0)
            a = (A.matmul_pair_saturated(cols, wg, as_float=as_float) if sat
                 else A.matmul_weight_exact(cols, wg, as_float=as_float))
            zx_term = zx * A._cached_weight(wg, "row_sums", lambda: wg.astype(np.int64).sum(axis=1))
            if a.dtype == np.float32 and (xa + abs(zx)) * A.max_abs_row_sum(wg) < 2**24:
                a -= zx_term.astype(np.float32)  # every value, before and after, an integer below 2**24
            else:
                a = a.astype(np.int64)
                a -= zx_term[None, :]
            if np.any(zg != 0):
                a = a - cols.astype(np.int64).sum(axis=1)[:, None] * zg[None, :] + cols.shape[1] * zx * zg[None, :]
            if g == 1:
                acc = a
            else:
                if acc is None:
                    acc = np.empty((m, c_out), dtype=np.int64)
                acc[:, o0:o1] = a
    return acc, {k: v for k, v in locals().items() if k in _CTX}


SPECS = [
    OpSpec("conv", "conv", integer="gemm",
           torch=('nnq.Conv1d/2d', 'nniq.ConvReLU1d/2d', 'quantized::conv1d', 'quantized::conv1d_relu', 'quantized::conv2d', 'quantized::conv2d_relu')),
]
