/* qgolden reference kernels: integer only, no dynamic allocation, no floating point.
 * One plain function per op kind, in the style of TFLite Micro's reference kernels:
 * explicit zero points, named parameters in const structs, NCHW row-major tensors.
 * Activations are bytes: uint8 (quint8) or int8 (qint8) per the `is_signed` flags. */

/* ---- helpers ------------------------------------------------------------------------- */

/* The value of byte i of a quantized tensor (uint8, or int8 when is_signed). */
static int32_t qg_load(const uint8_t *data, int32_t i, int32_t is_signed)
{
    int32_t v = (int32_t)data[i];
    return is_signed ? (v ^ 0x80) - 0x80 : v;
}

/* The byte storing value v (two's complement for int8). */
static uint8_t qg_store(int32_t v)
{
    return (uint8_t)(v & 0xFF);
}

static int64_t qg_clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* floor(v / 2**n) for n >= 0, without shifting a negative number. */
static int64_t qg_floor_shift(int64_t v, int32_t n)
{
    if (n <= 0) {
        return v;
    }
    if (v >= 0) {
        return v >> n;
    }
    return -((-(v + 1)) >> n) - 1;
}

/* #{k < count : sorted[k] <= value} (numpy searchsorted side=right), binary search. */
static int32_t qg_count_le(const int64_t *sorted, int32_t count, int64_t value)
{
    int32_t lo = 0;
    int32_t hi = count;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (sorted[mid] <= value) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* Saturate to int16 (vpmaddubsw's pair sum). */
static int32_t qg_sat16(int32_t v)
{
    return v < -32768 ? -32768 : (v > 32767 ? 32767 : v);
}

/* ---- requantization -------------------------------------------------------------------- */

enum { QG_HALF_UP = 0, QG_HALF_EVEN = 1, QG_HALF_AWAY = 2, QG_TFLITE = 3 };

typedef struct {
    int32_t rounding;              /* QG_HALF_UP | QG_HALF_EVEN | QG_HALF_AWAY | QG_TFLITE */
    int32_t bits;                  /* multiplier width (TFLite rounding: Q(bits-1)) */
    int32_t out_zero_point;
    int32_t out_min;
    int32_t out_max;
    const int64_t *multiplier;     /* [classes] M0 */
    const int32_t *shift;          /* [classes] n */
    const int64_t *bias;           /* [classes] B, accumulator units */
    const int64_t *frac;           /* [classes] F, product units */
    const uint8_t *use_table;      /* [classes] 1: output = out_min + #{thresholds <= acc}; or NULL */
    const int64_t *thresholds;     /* [classes][num_thresholds] sorted */
    int32_t num_thresholds;
    const uint8_t *use_segments;   /* [classes] 1: bias/frac per binade segment; or NULL */
    const int64_t *segment_bounds; /* [classes][num_segment_bounds] */
    int32_t num_segment_bounds;
    const int64_t *segment_bias;   /* [classes][num_segment_bounds + 1] */
    const int64_t *segment_frac;   /* [classes][num_segment_bounds + 1] */
    const int64_t *divisor;        /* [classes] > 0: exact rounding division instead; or NULL */
    const int64_t *div_offset;
    const int64_t *div_rounding;   /* 0 half up, 1 half even, 2 half away */
    const int64_t *div_zero_point;
} qg_requant_t;

/* v / 2**n rounded to nearest (n >= 1), ties as `rounding` says. */
static int64_t qg_round_shift(int64_t v, int32_t n, int32_t rounding)
{
    int64_t half = (int64_t)1 << (n - 1);
    if (rounding == QG_HALF_EVEN) {
        int64_t q = qg_floor_shift(v, n);
        int64_t r = v - q * ((int64_t)1 << n);
        return q + ((r > half || (r == half && (q % 2) != 0)) ? 1 : 0);
    }
    if (rounding == QG_HALF_AWAY) {
        if (v < 0) {
            return -qg_floor_shift(-v + half, n);
        }
        return qg_floor_shift(v + half, n);
    }
    return qg_floor_shift(v + half, n);
}

/* TFLite MultiplyByQuantizedMultiplier: SaturatingRoundingDoublingHighMul with a Q(bits-1)
 * multiplier, then RoundingDivideByPOT by shift - (bits-1). */
static int64_t qg_tflite_multiply(int64_t x, int64_t multiplier, int32_t shift, int32_t bits)
{
    int32_t q = bits - 1;
    int64_t ab = x * multiplier;
    int64_t nudge = ab >= 0 ? ((int64_t)1 << (q - 1)) : 1 - ((int64_t)1 << (q - 1));
    int64_t s = ab + nudge;
    int64_t high = s >= 0 ? (s >> q) : -((-s) >> q);
    int32_t e = shift - q;
    int64_t mask = ((int64_t)1 << e) - 1;
    int64_t floor_part = qg_floor_shift(high, e);
    int64_t remainder = high - floor_part * ((int64_t)1 << e);
    int64_t threshold = (mask >> 1) + (high < 0 ? 1 : 0);
    return floor_part + (remainder > threshold ? 1 : 0);
}

/* x / d (d > 0) rounded to nearest, ties: 0 up, 1 to even, 2 away from zero. */
static int64_t qg_round_div(int64_t x, int64_t d, int64_t tie_rule)
{
    int64_t q = x / d;
    int64_t r2;
    int32_t up;
    if ((x % d) != 0 && x < 0) {
        q -= 1; /* floor */
    }
    r2 = 2 * (x - q * d);
    up = r2 > d;
    if (r2 == d) {
        up = tie_rule == 0 || (tie_rule == 1 && (q % 2) != 0) || (tie_rule == 2 && q >= 0);
    }
    return q + (up ? 1 : 0);
}

/* The 8-bit output of accumulator `acc` for class (channel) c. */
static int32_t qg_requantize(int64_t acc, const qg_requant_t *p, int32_t c)
{
    int64_t bias;
    int64_t frac;
    int64_t y;
    if (p->use_table != 0 && p->use_table[c]) {
        return p->out_min + qg_count_le(p->thresholds + (int64_t)c * p->num_thresholds, p->num_thresholds, acc);
    }
    if (p->divisor != 0 && p->divisor[c] > 0) {
        y = qg_round_div(acc + p->div_offset[c], p->divisor[c], p->div_rounding[c]) + p->div_zero_point[c];
        return (int32_t)qg_clamp64(y, p->out_min, p->out_max);
    }
    bias = p->bias[c];
    frac = p->frac[c];
    if (p->use_segments != 0 && p->use_segments[c]) {
        int32_t nb = p->num_segment_bounds;
        int32_t s = qg_count_le(p->segment_bounds + (int64_t)c * nb, nb, acc);
        bias = p->segment_bias[(int64_t)c * (nb + 1) + s];
        frac = p->segment_frac[(int64_t)c * (nb + 1) + s];
    }
    if (p->rounding == QG_TFLITE) {
        y = qg_tflite_multiply(acc + bias, p->multiplier[c], p->shift[c], p->bits);
    } else {
        y = qg_round_shift((acc + bias) * p->multiplier[c] + frac, p->shift[c], p->rounding);
    }
    return (int32_t)qg_clamp64(y + p->out_zero_point, p->out_min, p->out_max);
}

/* ---- linear (fully connected) ------------------------------------------------------------ */

typedef struct {
    int32_t batches;               /* rows of the input [batches][input_depth] */
    int32_t input_depth;           /* K */
    int32_t output_depth;          /* N */
    int32_t input_zero_point;
    int32_t input_signed;          /* 1: the input holds int8 (qint8) values (exact mode only) */
    const int8_t *weights;         /* [N][K] */
    const int32_t *weight_zero_points; /* [N] */
    const int32_t *weight_sums;    /* [N] sum_k w[n][k] (paired mode) */
    int32_t paired;                /* 1: sum u8*s8 product pairs in saturating int16, as the engine does */
    const int32_t *block_starts;   /* K blocks, each paired from its own start (paired mode) */
    int32_t num_blocks;
    const qg_requant_t *requant;   /* per output channel n */
} qg_linear_params_t;

static void qg_linear(const qg_linear_params_t *p, const uint8_t *input, uint8_t *output)
{
    int32_t b, n, k, blk;
    const int32_t K = p->input_depth;
    for (b = 0; b < p->batches; ++b) {
        const uint8_t *x = input + (int64_t)b * K;
        int32_t x_sum = 0;
        if (p->paired) {
            for (k = 0; k < K; ++k) {
                x_sum += x[k];
            }
        }
        for (n = 0; n < p->output_depth; ++n) {
            const int8_t *w = p->weights + (int64_t)n * K;
            const int32_t zw = p->weight_zero_points[n];
            int32_t acc = 0;
            if (!p->paired) {
                for (k = 0; k < K; ++k) {
                    const int32_t xk = p->input_signed ? (int32_t)(int8_t)x[k] : (int32_t)x[k];
                    acc += (xk - p->input_zero_point) * ((int32_t)w[k] - zw);
                }
            } else {
                for (blk = 0; blk < p->num_blocks; ++blk) {
                    int32_t k0 = p->block_starts[blk];
                    int32_t k1 = blk + 1 < p->num_blocks ? p->block_starts[blk + 1] : K;
                    for (k = k0; k + 1 < k1; k += 2) {
                        acc += qg_sat16((int32_t)x[k] * w[k] + (int32_t)x[k + 1] * w[k + 1]);
                    }
                    if (k < k1) {
                        acc += (int32_t)x[k] * w[k];
                    }
                }
                acc += -p->input_zero_point * p->weight_sums[n] - zw * x_sum + K * p->input_zero_point * zw;
            }
            output[(int64_t)b * p->output_depth + n] = qg_store(qg_requantize(acc, p->requant, n));
        }
    }
}

/* ---- convolution (NCHW; conv1d runs with height 1) ---------------------------------------- */

enum { QG_CONV_EXACT = 0, QG_CONV_PAIRS_FBGEMM = 1, QG_CONV_PAIRS_ONEDNN = 2 };

typedef struct {
    int32_t batches;
    int32_t input_channels, input_height, input_width;
    int32_t output_channels, output_height, output_width;
    int32_t kernel_height, kernel_width;
    int32_t stride_height, stride_width;
    int32_t pad_height, pad_width;
    int32_t dilation_height, dilation_width;
    int32_t groups;
    int32_t input_zero_point;
    /* 0: uint8 input; 0x80: int8 input, read as the uint8 x ^ 0x80 = x + 128 (input_zero_point is then
     * the int8 zero point + 128), so every path sums the same (x - zx)(w - zw) */
    int32_t input_flip;
    /* weights [O][KH*KW][C/groups] (tap-major, channel fastest: FBGEMM's im2col order).
     * QG_CONV_EXACT: exact sum of (x - zx)(w - zw).
     * QG_CONV_PAIRS_FBGEMM: products of the raw values paired in
     *   that order (padding reads the input zero point), each pair saturated to int16.
     * QG_CONV_PAIRS_ONEDNN: same weight order; pairs of channels within each tap, taps in the
     *   padding skipped, zero-point correction over the valid taps. */
    int32_t mode;
    const int8_t *weights;
    const int32_t *weight_zero_points; /* [O] */
    const int32_t *weight_sums;        /* [O] sum of the weights */
    const int32_t *input_offsets;      /* [KH*KW*C/groups] element offset of each tap (window inside the input) */
    const qg_requant_t *requant;       /* per output channel */
    /* 1: qg_conv_direct (QG_CONV_EXACT, stride 1, every weight zero point 0), with scratch of
     * input_channels * Hp * Wp int16 (qg_conv_direct) */
    int32_t direct;
    int16_t *scratch;
} qg_conv_params_t;

/* Output (o, oy, ox) whose window lies inside the input: every tap is read through
 * input_offsets (no bounds checks). */
static int32_t qg_conv_interior_acc(const qg_conv_params_t *p, const uint8_t *x, int32_t o)
{
    const int32_t K = p->kernel_height * p->kernel_width * (p->input_channels / p->groups);
    const int8_t *w = p->weights + (int64_t)o * K;
    const int32_t *off = p->input_offsets;
    const int32_t zx = p->input_zero_point, zw = p->weight_zero_points[o];
    int32_t k;
    int32_t raw = 0, x_sum = 0;
    if (p->mode == QG_CONV_EXACT) {
        for (k = 0; k < K; ++k) {
            raw += (int32_t)(x[off[k]] ^ p->input_flip) * w[k];
        }
    } else {
        for (k = 0; k + 1 < K; k += 2) {
            raw += qg_sat16((int32_t)(x[off[k]] ^ p->input_flip) * w[k] + (int32_t)(x[off[k + 1]] ^ p->input_flip) * w[k + 1]);
        }
        if (k < K) {
            raw += (int32_t)(x[off[k]] ^ p->input_flip) * w[k];
        }
    }
    if (zw != 0) {
        for (k = 0; k < K; ++k) {
            x_sum += x[off[k]] ^ p->input_flip;
        }
    }
    return raw - zx * p->weight_sums[o] - zw * x_sum + K * zx * zw;
}

/* Exact sum of (x - zx)(w - zw) over the taps inside the input (padding contributes 0). */
static int32_t qg_conv_exact_acc(const qg_conv_params_t *p, const uint8_t *x, int32_t o, int32_t oy, int32_t ox)
{
    const int32_t cpg = p->input_channels / p->groups;
    const int32_t H = p->input_height, W = p->input_width, KW = p->kernel_width;
    const int32_t taps = p->kernel_height * KW;
    const int32_t zx = p->input_zero_point, zw = p->weight_zero_points[o];
    const int32_t iy0 = oy * p->stride_height - p->pad_height;
    const int32_t ix0 = ox * p->stride_width - p->pad_width;
    const int8_t *w = p->weights + (int64_t)o * taps * cpg; /* [tap][c] */
    int32_t t, c;
    int32_t acc = 0;
    for (t = 0; t < taps; ++t) {
        const int32_t iy = iy0 + (t / KW) * p->dilation_height;
        const int32_t ix = ix0 + (t % KW) * p->dilation_width;
        if (iy < 0 || iy >= H || ix < 0 || ix >= W) {
            continue;
        }
        for (c = 0; c < cpg; ++c) {
            acc += ((int32_t)(x[(int64_t)c * H * W + (int64_t)iy * W + ix] ^ p->input_flip) - zx) * ((int32_t)w[t * cpg + c] - zw);
        }
    }
    return acc;
}

static int32_t qg_conv_paired_acc(const qg_conv_params_t *p, const uint8_t *x, int32_t o, int32_t oy, int32_t ox)
{
    const int32_t cpg = p->input_channels / p->groups;
    const int32_t c0 = 0; /* x points at the group's first channel */
    const int32_t H = p->input_height, W = p->input_width, KH = p->kernel_height, KW = p->kernel_width;
    const int32_t zx = p->input_zero_point, zw = p->weight_zero_points[o];
    const int32_t iy0 = oy * p->stride_height - p->pad_height;
    const int32_t ix0 = ox * p->stride_width - p->pad_width;
    const int32_t taps = KH * KW;
    const int8_t *w = p->weights + (int64_t)o * taps * cpg; /* [tap][c] */
    int32_t t, c;
    int32_t raw = 0, x_sum = 0, w_sum = 0;
    int32_t have = 0, x_prev = 0, w_prev = 0; /* a pending first product of a pair */
    for (t = 0; t < taps; ++t) {
        const int32_t iy = iy0 + (t / KW) * p->dilation_height;
        const int32_t ix = ix0 + (t % KW) * p->dilation_width;
        const int valid = iy >= 0 && iy < H && ix >= 0 && ix < W;
        if (p->mode == QG_CONV_PAIRS_ONEDNN) {
            if (!valid) {
                continue;
            }
            for (c = 0; c < cpg; c += 2) {
                int32_t x0 = x[(int64_t)(c0 + c) * H * W + (int64_t)iy * W + ix] ^ p->input_flip;
                int32_t pair = x0 * w[t * cpg + c];
                w_sum += w[t * cpg + c];
                if (c + 1 < cpg) {
                    pair += (int32_t)(x[(int64_t)(c0 + c + 1) * H * W + (int64_t)iy * W + ix] ^ p->input_flip) * w[t * cpg + c + 1];
                    w_sum += w[t * cpg + c + 1];
                }
                raw += qg_sat16(pair);
            }
            continue;
        }
        for (c = 0; c < cpg; ++c) {
            const int32_t xv = valid ? (int32_t)(x[(int64_t)(c0 + c) * H * W + (int64_t)iy * W + ix] ^ p->input_flip) : zx;
            const int32_t wv = w[t * cpg + c];
            x_sum += xv;
            if (have) {
                raw += qg_sat16(x_prev * w_prev + xv * wv);
                have = 0;
            } else {
                x_prev = xv;
                w_prev = wv;
                have = 1;
            }
        }
    }
    if (p->mode == QG_CONV_PAIRS_ONEDNN) {
        return raw - zx * w_sum;
    }
    if (have) {
        raw += x_prev * w_prev;
    }
    return raw - zx * p->weight_sums[o] - zw * x_sum + taps * cpg * zx * zw;
}

/* Column kernel for QG_CONV_EXACT and QG_CONV_PAIRS_FBGEMM. For each output row (and chunk of it)
 * the input values each output reads are laid out im2col-style, col[k][i] = the value of product
 * k ([tap][channel] order) for output column i, the padding materialised as the input zero point
 * (what FBGEMM's im2col reads; in the exact sum a zero-point tap contributes 0). The innermost
 * loops then run along the output row over contiguous bytes in fixed blocks of QG_LANES, which
 * the compiler vectorises at -O2. Pairs and their int16 saturation are those of the flat path:
 * products k and k+1. */
#define QG_LANES 16
#define QG_CONV_CHUNK 128   /* output columns per pass (multiple of QG_LANES) */
#define QG_CONV_COL 131072  /* bytes of col: products * columns (static: not on the stack) */

static int32_t qg_conv_cols_fit(const qg_conv_params_t *p)
{
    const int32_t K = p->kernel_height * p->kernel_width * (p->input_channels / p->groups);
    return p->mode != QG_CONV_PAIRS_ONEDNN && K * QG_LANES <= QG_CONV_COL;
}

/* acc[i] += sat16(a[i] * w0 + b[i] * w1) for i < n (n a multiple of QG_LANES). */
static void qg_pairs_sat(int32_t *restrict acc, const uint8_t *restrict a, const uint8_t *restrict b,
                         int32_t w0, int32_t w1, int32_t n)
{
    int32_t i, j;
    for (i = 0; i < n; i += QG_LANES) {
        for (j = 0; j < QG_LANES; ++j) {
            int32_t v = (int32_t)a[i + j] * w0 + (int32_t)b[i + j] * w1;
            v = v < -32768 ? -32768 : v;
            v = v > 32767 ? 32767 : v;
            acc[i + j] += v;
        }
    }
}

/* acc[i] += a[i] * w0 + b[i] * w1 for i < n (n a multiple of QG_LANES). */
static void qg_pairs_exact(int32_t *restrict acc, const uint8_t *restrict a, const uint8_t *restrict b,
                           int32_t w0, int32_t w1, int32_t n)
{
    int32_t i, j;
    for (i = 0; i < n; i += QG_LANES) {
        for (j = 0; j < QG_LANES; ++j) {
            acc[i + j] += (int32_t)a[i + j] * w0 + (int32_t)b[i + j] * w1;
        }
    }
}

/* acc[i] += a[i] * w0 for i < n (n a multiple of QG_LANES). */
static void qg_taps_exact(int32_t *restrict acc, const uint8_t *restrict a, int32_t w0, int32_t n)
{
    int32_t i, j;
    for (i = 0; i < n; i += QG_LANES) {
        for (j = 0; j < QG_LANES; ++j) {
            acc[i + j] += (int32_t)a[i + j] * w0;
        }
    }
}

/* y[i] = qg_requantize(acc[i], p, c) for i < n, with the per-class choices made once. */
static void qg_requantize_row(const int32_t *acc, int32_t n, const qg_requant_t *p, int32_t c, uint8_t *y)
{
    int32_t i;
    if ((p->use_table == 0 || !p->use_table[c]) && (p->divisor == 0 || p->divisor[c] <= 0)
        && (p->use_segments == 0 || !p->use_segments[c]) && p->rounding != QG_TFLITE) {
        const int64_t bias = p->bias[c], frac = p->frac[c], m = p->multiplier[c];
        const int32_t shift = p->shift[c], rounding = p->rounding;
        const int64_t lo = p->out_min, hi = p->out_max, zo = p->out_zero_point;
        if (rounding == QG_HALF_UP && shift >= 1) {
            /* floor((v + 2^(n-1)) / 2^n) without shifting a negative number */
            const int64_t half = (int64_t)1 << (shift - 1);
            for (i = 0; i < n; ++i) {
                const int64_t v = ((int64_t)acc[i] + bias) * m + frac + half;
                int64_t r = v >= 0 ? v >> shift : -((-(v + 1)) >> shift) - 1;
                r += zo;
                y[i] = qg_store((int32_t)(r < lo ? lo : (r > hi ? hi : r)));
            }
            return;
        }
        for (i = 0; i < n; ++i) {
            int64_t v = qg_round_shift(((int64_t)acc[i] + bias) * m + frac, shift, rounding) + zo;
            y[i] = qg_store((int32_t)qg_clamp64(v, lo, hi));
        }
        return;
    }
    for (i = 0; i < n; ++i) {
        y[i] = qg_store(qg_requantize(acc[i], p, c));
    }
}

static void qg_conv_cols(const qg_conv_params_t *p, const uint8_t *input, uint8_t *output)
{
    static uint8_t col[QG_CONV_COL];
    int32_t acc[QG_CONV_CHUNK];
    int32_t xsum[QG_CONV_CHUNK] = {0}; /* initialised: read only when a weight zero point is not 0 */
    const int32_t H = p->input_height, W = p->input_width, KH = p->kernel_height, KW = p->kernel_width;
    const int32_t cpg = p->input_channels / p->groups, opg = p->output_channels / p->groups;
    const int32_t K = KH * KW * cpg, OW = p->output_width, sw = p->stride_width;
    const int32_t zx = p->input_zero_point;
    const int64_t in_size = (int64_t)p->input_channels * H * W;
    const int64_t out_plane = (int64_t)p->output_height * OW;
    int32_t chunk = (OW + QG_LANES - 1) / QG_LANES * QG_LANES;
    int32_t b, g, oy, x0, o, k, i, any_zw = 0;
    if (chunk > QG_CONV_CHUNK) {
        chunk = QG_CONV_CHUNK;
    }
    while (K * chunk > QG_CONV_COL) {
        chunk -= QG_LANES;
    }
    for (o = 0; o < p->output_channels; ++o) {
        any_zw |= p->weight_zero_points[o] != 0;
    }
    for (b = 0; b < p->batches; ++b) {
        for (g = 0; g < p->groups; ++g) {
            const uint8_t *x = input + b * in_size + (int64_t)g * cpg * H * W;
            for (oy = 0; oy < p->output_height; ++oy) {
                for (x0 = 0; x0 < OW; x0 += chunk) {
                    const int32_t cols = OW - x0 < chunk ? OW - x0 : chunk;
                    const int32_t n = (cols + QG_LANES - 1) / QG_LANES * QG_LANES;
                    int32_t c = 0, kx = 0, ky = 0; /* product k = (ky, kx, c) */
                    /* col[k][i]: product k of output column x0 + i */
                    for (k = 0; k < K; ++k) {
                        const int32_t iy = oy * p->stride_height - p->pad_height + ky * p->dilation_height;
                        const int32_t ixa = x0 * sw - p->pad_width + kx * p->dilation_width; /* column 0 */
                        uint8_t *dst = col + k * n;
                        int32_t lo = 0, hi = 0; /* columns [lo, hi) read the input */
                        if (iy >= 0 && iy < H) {
                            const uint8_t *src = x + (int64_t)c * H * W + (int64_t)iy * W;
                            lo = ixa >= 0 ? 0 : (-ixa + sw - 1) / sw;
                            hi = ixa < W ? (W - 1 - ixa) / sw + 1 : 0;
                            hi = hi > n ? n : hi;
                            lo = lo > hi ? hi : lo;
                            if (sw == 1) {
                                for (i = lo; i < hi; ++i) {
                                    dst[i] = (uint8_t)(src[ixa + i] ^ p->input_flip);
                                }
                            } else {
                                for (i = lo; i < hi; ++i) {
                                    dst[i] = (uint8_t)(src[ixa + i * sw] ^ p->input_flip);
                                }
                            }
                        }
                        for (i = 0; i < lo; ++i) {
                            dst[i] = (uint8_t)zx;
                        }
                        for (i = hi; i < n; ++i) {
                            dst[i] = (uint8_t)zx;
                        }
                        if (++c == cpg) {
                            c = 0;
                            if (++kx == KW) {
                                kx = 0;
                                ++ky;
                            }
                        }
                    }
                    if (any_zw) {
                        for (i = 0; i < n; ++i) {
                            xsum[i] = 0;
                        }
                        for (k = 0; k < K; ++k) {
                            for (i = 0; i < n; ++i) {
                                xsum[i] += col[k * n + i];
                            }
                        }
                    }
                    for (o = g * opg; o < (g + 1) * opg; ++o) {
                        const int8_t *w = p->weights + (int64_t)o * K;
                        const int32_t zw = p->weight_zero_points[o];
                        const int32_t corr = -zx * p->weight_sums[o] + K * zx * zw;
                        uint8_t *y = output + (int64_t)b * p->output_channels * out_plane + o * out_plane
                                     + (int64_t)oy * OW + x0;
                        for (i = 0; i < n; ++i) {
                            acc[i] = corr;
                        }
                        if (p->mode == QG_CONV_EXACT) {
                            for (k = 0; k + 1 < K; k += 2) {
                                qg_pairs_exact(acc, col + k * n, col + (k + 1) * n, w[k], w[k + 1], n);
                            }
                        } else {
                            for (k = 0; k + 1 < K; k += 2) {
                                qg_pairs_sat(acc, col + k * n, col + (k + 1) * n, w[k], w[k + 1], n);
                            }
                        }
                        if (k < K) {
                            qg_taps_exact(acc, col + k * n, w[k], n);
                        }
                        if (zw != 0) {
                            for (i = 0; i < n; ++i) {
                                acc[i] -= zw * xsum[i];
                            }
                        }
                        qg_requantize_row(acc, cols, p->requant, o, y);
                    }
                }
            }
        }
    }
}

/* Direct convolution for QG_CONV_EXACT with stride 1 and weight zero points 0, where the sum is
 *     acc = sum over taps inside the input of (x - zx) * w     ((x - zx) * w fits int16)
 * The input, less its zero point, is copied once into scratch with the padding as zeros: rows of
 * Wp = W + 2 pad_width. On the grid q = oy * Wp + ox (ox < Wp; columns ox >= OW are computed and
 * dropped) tap (ky, kx) of channel c reads scratch[c][q + ky * dh * Wp + kx * dw]: every tap is one
 * contiguous pass over q, in blocks of QG_DIRECT_LANES (32: a constant trip count that -O2
 * vectorises and -O3 does not unroll away), with no bounds checks. */
#define QG_DIRECT_LANES 32
#define QG_DIRECT_CHUNK 256  /* grid positions per pass (multiple of QG_DIRECT_LANES) */

#define QG_DIRECT_MAX_TAPS 128

/* acc[i] += sum over taps t of x[offsets[t] + i] * w[t], for i < n (n a multiple of
 * QG_DIRECT_LANES); each product fits int16, two taps per pass over acc. */
static void qg_direct_taps(int32_t *restrict acc, const int16_t *restrict x, const int32_t *restrict offsets,
                           const int16_t *restrict w, int32_t taps, int32_t n)
{
    int32_t i, j, t;
    for (t = 0; t + 1 < taps; t += 2) {
        const int16_t *x0 = x + offsets[t], *x1 = x + offsets[t + 1];
        const int16_t w0 = w[t], w1 = w[t + 1];
        for (i = 0; i < n; i += QG_DIRECT_LANES) {
            for (j = 0; j < QG_DIRECT_LANES; ++j) {
                acc[i + j] += (int32_t)(int16_t)(x0[i + j] * w0) + (int16_t)(x1[i + j] * w1);
            }
        }
    }
    if (t < taps) {
        const int16_t *x0 = x + offsets[t];
        const int16_t w0 = w[t];
        for (i = 0; i < n; i += QG_DIRECT_LANES) {
            for (j = 0; j < QG_DIRECT_LANES; ++j) {
                acc[i + j] += (int16_t)(x0[i + j] * w0);
            }
        }
    }
}

static void qg_conv_direct(const qg_conv_params_t *p, const uint8_t *input, uint8_t *output)
{
    int32_t acc[QG_DIRECT_CHUNK];
    int32_t offsets[QG_DIRECT_MAX_TAPS];
    int16_t wt[QG_DIRECT_MAX_TAPS];
    const int32_t H = p->input_height, W = p->input_width, KH = p->kernel_height, KW = p->kernel_width;
    const int32_t ph = p->pad_height, pw = p->pad_width, OH = p->output_height, OW = p->output_width;
    const int32_t Wp = W + 2 * pw;
    const int32_t Hp = H + 2 * ph + 1 + (QG_DIRECT_LANES + Wp - 1) / Wp; /* the last block reads past the grid */
    const int32_t cpg = p->input_channels / p->groups, opg = p->output_channels / p->groups;
    const int32_t taps = KH * KW, K = taps * cpg, zx = p->input_zero_point;
    const int32_t grid = OH * Wp;
    const int64_t plane = (int64_t)Hp * Wp, out_plane = (int64_t)OH * OW;
    int16_t *xp = p->scratch;
    int32_t b, c, y, x, o, t, q0, i;
    for (t = 0; t < taps; ++t) {
        offsets[t] = (t / KW) * p->dilation_height * Wp + (t % KW) * p->dilation_width;
    }
    for (b = 0; b < p->batches; ++b) {
        const uint8_t *in = input + (int64_t)b * p->input_channels * H * W;
        uint8_t *out = output + (int64_t)b * p->output_channels * out_plane;
        for (c = 0; c < p->input_channels; ++c) {
            int16_t *d = xp + c * plane;
            const uint8_t *s = in + (int64_t)c * H * W;
            for (i = 0; i < plane; ++i) {
                d[i] = 0;
            }
            for (y = 0; y < H; ++y) {
                for (x = 0; x < W; ++x) {
                    d[(y + ph) * Wp + x + pw] = (int16_t)((s[y * W + x] ^ p->input_flip) - zx);
                }
            }
        }
        for (q0 = 0; q0 < grid; q0 += QG_DIRECT_CHUNK) {
            const int32_t len = grid - q0 < QG_DIRECT_CHUNK ? grid - q0 : QG_DIRECT_CHUNK;
            const int32_t n = (len + QG_DIRECT_LANES - 1) / QG_DIRECT_LANES * QG_DIRECT_LANES;
            const int32_t oy0 = q0 / Wp, ox0 = q0 % Wp;
            for (o = 0; o < p->output_channels; ++o) {
                const int32_t g = o / opg;
                const int8_t *w = p->weights + (int64_t)o * K; /* [tap][c] */
                for (i = 0; i < n; ++i) {
                    acc[i] = 0;
                }
                for (c = 0; c < cpg; ++c) {
                    for (t = 0; t < taps; ++t) {
                        wt[t] = w[t * cpg + c];
                    }
                    qg_direct_taps(acc, xp + (int64_t)(g * cpg + c) * plane + q0, offsets, wt, taps, n);
                }
                /* grid positions of this chunk that are outputs (ox < OW), row piece by row piece */
                y = oy0;
                x = ox0;
                for (i = 0; i < len; ) {
                    int32_t run = (x < OW ? OW - x : Wp - x);
                    run = run < len - i ? run : len - i;
                    if (x < OW) {
                        qg_requantize_row(acc + i, run, p->requant, o, out + o * out_plane + (int64_t)y * OW + x);
                    }
                    i += run;
                    x += run;
                    if (x == Wp) {
                        x = 0;
                        ++y;
                    }
                }
            }
        }
    }
}

static void qg_conv(const qg_conv_params_t *p, const uint8_t *input, uint8_t *output)
{
    int32_t b, o, oy, ox;
    const int32_t H = p->input_height, W = p->input_width;
    const int32_t cpg = p->input_channels / p->groups, opg = p->output_channels / p->groups;
    const int32_t reach_h = (p->kernel_height - 1) * p->dilation_height;
    const int32_t reach_w = (p->kernel_width - 1) * p->dilation_width;
    const int64_t in_size = (int64_t)p->input_channels * H * W;
    const int64_t out_plane = (int64_t)p->output_height * p->output_width;
    /* oneDNN pairs channels within a tap: the flat pairing only matches it for an even channel count */
    const int32_t flat_pairs = p->mode != QG_CONV_PAIRS_ONEDNN || cpg % 2 == 0;
    if (p->direct) {
        qg_conv_direct(p, input, output);
        return;
    }
    if (qg_conv_cols_fit(p)) {
        qg_conv_cols(p, input, output);
        return;
    }
    for (b = 0; b < p->batches; ++b) {
        uint8_t *y = output + b * p->output_channels * out_plane;
        for (o = 0; o < p->output_channels; ++o) {
            const uint8_t *x = input + b * in_size + (int64_t)(o / opg) * cpg * H * W; /* the group's channels */
            for (oy = 0; oy < p->output_height; ++oy) {
                const int32_t iy0 = oy * p->stride_height - p->pad_height;
                for (ox = 0; ox < p->output_width; ++ox) {
                    const int32_t ix0 = ox * p->stride_width - p->pad_width;
                    int32_t acc;
                    if (flat_pairs && iy0 >= 0 && ix0 >= 0 && iy0 + reach_h < H && ix0 + reach_w < W) {
                        acc = qg_conv_interior_acc(p, x + (int64_t)iy0 * W + ix0, o);
                    } else if (p->mode == QG_CONV_EXACT) {
                        acc = qg_conv_exact_acc(p, x, o, oy, ox);
                    } else {
                        acc = qg_conv_paired_acc(p, x, o, oy, ox);
                    }
                    y[o * out_plane + (int64_t)oy * p->output_width + ox] = qg_store(qg_requantize(acc, p->requant, o));
                }
            }
        }
    }
}

/* ---- window reductions: avg / adaptive pools, mean, max pool, nearest upsample ------------- */

enum { QG_WINDOW_SUM = 0, QG_WINDOW_MAX = 1 };

typedef struct {
    int32_t outer;                 /* batches (and channels for mean: rows) */
    int32_t channels;
    int32_t input_plane;           /* input elements per (outer, channel) */
    int32_t output_plane;          /* outputs per (outer, channel) */
    const int32_t *window_start;   /* [output_plane + 1] into window_index */
    const int32_t *window_index;   /* input positions (within the plane) of each output's window */
    int32_t input_signed;
    int32_t mode;                  /* QG_WINDOW_SUM (then requantize) | QG_WINDOW_MAX (max; empty: type min) */
    int32_t sum_zero_point;        /* subtracted from every summed value */
    const int32_t *classes;        /* [1 or channels][output_plane] requantization class */
    int32_t classes_per_channel;
    const qg_requant_t *requant;
    int32_t write_nhwc;            /* torch's NHWC-written-as-NCHW layout quirk */
} qg_window_params_t;

static void qg_window(const qg_window_params_t *p, const uint8_t *input, uint8_t *output)
{
    int32_t n, c, o, k;
    for (n = 0; n < p->outer; ++n) {
        for (c = 0; c < p->channels; ++c) {
            const int32_t base = (n * p->channels + c) * p->input_plane;
            for (o = 0; o < p->output_plane; ++o) {
                int32_t value;
                int32_t dst;
                if (p->mode == QG_WINDOW_MAX) {
                    value = p->input_signed ? -128 : 0;
                    for (k = p->window_start[o]; k < p->window_start[o + 1]; ++k) {
                        int32_t v = qg_load(input, base + p->window_index[k], p->input_signed);
                        value = v > value ? v : value;
                    }
                } else {
                    int32_t sum = 0;
                    int32_t cls = p->classes[(p->classes_per_channel ? c * p->output_plane : 0) + o];
                    for (k = p->window_start[o]; k < p->window_start[o + 1]; ++k) {
                        sum += qg_load(input, base + p->window_index[k], p->input_signed) - p->sum_zero_point;
                    }
                    value = qg_requantize(sum, p->requant, cls);
                }
                dst = p->write_nhwc ? (n * p->output_plane + o) * p->channels + c
                                    : (n * p->channels + c) * p->output_plane + o;
                output[dst] = qg_store(value);
            }
        }
    }
}

/* ---- elementwise ----------------------------------------------------------------------------- */

#define QG_MAX_RANK 6

typedef struct {
    int32_t rank;
    int32_t shape[QG_MAX_RANK];    /* the output's shape */
    int32_t strides[QG_MAX_RANK];  /* the operand's element strides along it (0: broadcast) */
    int32_t offset;
} qg_view_t;

/* Element index in the operand of output element i (row-major over view->shape). */
static int32_t qg_view_index(const qg_view_t *v, int32_t i)
{
    int32_t d;
    int32_t index = v->offset;
    for (d = v->rank - 1; d >= 0; --d) {
        index += (i % v->shape[d]) * v->strides[d];
        i /= v->shape[d];
    }
    return index;
}

typedef struct {
    int32_t size;
    int32_t input_signed;
    const uint8_t *table;          /* [256] output bytes, indexed by value - type min */
    const uint8_t *scalar_table;   /* elements listed in scalar_elements use this one (ATen's scalar tail) */
    const int32_t *scalar_elements;
    int32_t num_scalar_elements;
} qg_lut_params_t;

static void qg_lut(const qg_lut_params_t *p, const uint8_t *input, uint8_t *output)
{
    int32_t i;
    const int32_t in_min = p->input_signed ? -128 : 0;
    for (i = 0; i < p->size; ++i) {
        output[i] = p->table[qg_load(input, i, p->input_signed) - in_min];
    }
    for (i = 0; i < p->num_scalar_elements; ++i) {
        int32_t e = p->scalar_elements[i];
        output[e] = p->scalar_table[qg_load(input, e, p->input_signed) - in_min];
    }
}

typedef struct {
    int32_t size;
    int32_t input_signed;
    const qg_view_t *b_view;       /* NULL: b has a's shape */
    const uint8_t *table;          /* [256 * 256]: (a - type min) * 256 + (b - type min) */
    const uint8_t *scalar_table;
    const int32_t *scalar_elements;
    int32_t num_scalar_elements;
} qg_lut2_params_t;

static void qg_lut2(const qg_lut2_params_t *p, const uint8_t *a, const uint8_t *b, uint8_t *output)
{
    int32_t i;
    const int32_t in_min = p->input_signed ? -128 : 0;
    for (i = 0; i < p->size; ++i) {
        int32_t bi = p->b_view != 0 ? qg_view_index(p->b_view, i) : i;
        int32_t key = (qg_load(a, i, p->input_signed) - in_min) * 256 + (qg_load(b, bi, p->input_signed) - in_min);
        output[i] = p->table[key];
    }
    for (i = 0; i < p->num_scalar_elements; ++i) {
        int32_t e = p->scalar_elements[i];
        int32_t bi = p->b_view != 0 ? qg_view_index(p->b_view, e) : e;
        int32_t key = (qg_load(a, e, p->input_signed) - in_min) * 256 + (qg_load(b, bi, p->input_signed) - in_min);
        output[e] = p->scalar_table[key];
    }
}

typedef struct {
    int32_t size;
    int32_t channels;
    int32_t inner;                 /* elements per channel block */
    int32_t input_signed;
    const uint8_t *table;          /* [channels][256] */
} qg_lut_channel_params_t;

static void qg_lut_channel(const qg_lut_channel_params_t *p, const uint8_t *input, uint8_t *output)
{
    int32_t i;
    const int32_t in_min = p->input_signed ? -128 : 0;
    for (i = 0; i < p->size; ++i) {
        int32_t c = (i / p->inner) % p->channels;
        output[i] = p->table[c * 256 + qg_load(input, i, p->input_signed) - in_min];
    }
}

typedef struct {
    int32_t size;
    int32_t a_zero_point;
    int32_t b_zero_point;
    const qg_view_t *b_view;       /* NULL: b has a's shape */
    const qg_requant_t *requant;   /* class 0 */
} qg_mul_params_t;

static void qg_mul(const qg_mul_params_t *p, const uint8_t *a, const uint8_t *b, uint8_t *output)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        int32_t bi = p->b_view != 0 ? qg_view_index(p->b_view, i) : i;
        int64_t product = (int64_t)((int32_t)a[i] - p->a_zero_point) * ((int32_t)b[bi] - p->b_zero_point);
        output[i] = qg_store(qg_requantize(product, p->requant, 0));
    }
}

typedef struct {
    int32_t batches;
    int32_t channels;
    int32_t plane;                 /* elements per channel */
    int32_t input_signed;
    int32_t has_min, min_value, has_max, max_value;
    int32_t write_nhwc;            /* QNNPACK clamp layout quirk */
} qg_clamp_params_t;

static void qg_clamp(const qg_clamp_params_t *p, const uint8_t *input, uint8_t *output)
{
    int32_t n, c, i;
    for (n = 0; n < p->batches; ++n) {
        for (c = 0; c < p->channels; ++c) {
            for (i = 0; i < p->plane; ++i) {
                int32_t src = (n * p->channels + c) * p->plane + i;
                int32_t v = qg_load(input, src, p->input_signed);
                int32_t dst = p->write_nhwc ? (n * p->plane + i) * p->channels + c : src;
                if (p->has_min && v < p->min_value) {
                    v = p->min_value;
                }
                if (p->has_max && v > p->max_value) {
                    v = p->max_value;
                }
                output[dst] = qg_store(v);
            }
        }
    }
}

typedef struct {
    int32_t outer;                 /* product of the dims before the cat dim */
    int32_t chunk;                 /* this input's elements per outer index */
    int32_t output_chunk;          /* the output's elements per outer index */
    int32_t offset;                /* where this input starts within an output chunk */
    int32_t input_signed;
    const uint8_t *table;          /* [256] requantization table, or NULL: copy */
} qg_cat_params_t;

static void qg_cat(const qg_cat_params_t *p, const uint8_t *input, uint8_t *output)
{
    int32_t o, i;
    const int32_t in_min = p->input_signed ? -128 : 0;
    for (o = 0; o < p->outer; ++o) {
        const uint8_t *src = input + (int64_t)o * p->chunk;
        uint8_t *dst = output + (int64_t)o * p->output_chunk + p->offset;
        for (i = 0; i < p->chunk; ++i) {
            dst[i] = p->table != 0 ? p->table[qg_load(src, i, p->input_signed) - in_min] : src[i];
        }
    }
}

typedef struct {
    int32_t size;
    const qg_view_t *view;         /* where each output element is read (permute, slicing) */
} qg_gather_params_t;

static void qg_gather(const qg_gather_params_t *p, const uint8_t *input, uint8_t *output)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        output[i] = input[qg_view_index(p->view, i)];
    }
}

static void qg_copy(int32_t size, const uint8_t *input, uint8_t *output)
{
    int32_t i;
    for (i = 0; i < size; ++i) {
        output[i] = input[i];
    }
}
