"""Pictures for the HTML explanation: inline SVG drawn with matplotlib (the `plots` extra).

Each function returns one `<svg>` element as text, with every piece of text escaped by
matplotlib's SVG writer (names are drawn with math parsing off, so a `$` in a name is a `$`; no
other text holds a name) and every element id prefixed per picture, so that several SVGs inlined
in one page never share an id (a shared clip-path id would clip one picture with another's box).
Nothing here reads the engine: the numbers come from the LayerFacts the builder collected.
"""
from __future__ import annotations

import io
import re

import numpy as np

GRAPH_LABEL_CHARS = 26  # longer node names are cut in the graph (the table of contents has them whole)
OP_COLOURS = {"conv": "#cfe0fb", "linear": "#cfe0fb", "add": "#fde2c4", "mul": "#fde2c4", "cat": "#fde2c4",
              "quantize": "#e4e4e4", "dequantize": "#e4e4e4"}
ACC_LIMITS = (("int16", 15), ("int24", 23), ("int32", 31))  # magnitude bits of signed accumulators


def matplotlib_missing():
    """None when matplotlib can be imported, else the one-line reason the page has no pictures."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "no pictures: matplotlib is not installed (pip install 'qgolden[plots]')"
    return None


def _figure(width_in, height_in):
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), dpi=72)


STYLE = {"svg.fonttype": "none", "font.family": "sans-serif", "font.size": 9.0, "axes.titlesize": 9.5,
         "axes.labelsize": 9.0, "xtick.labelsize": 8.0, "ytick.labelsize": 8.0, "legend.fontsize": 8.0,
         "axes.spines.top": False, "axes.spines.right": False}


def title(ax, text):
    """A title above the axes' left corner (plain text: ax.set_title measures every tick label to place it)."""
    ax.text(0.0, 1.03, text, transform=ax.transAxes, ha="left", va="bottom", fontsize=9.5)


def svg_text(fig, salt: str) -> str:
    """The figure as one inline <svg> element: the XML prolog and DOCTYPE dropped, ids salted."""
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    buf = io.StringIO()
    with matplotlib.rc_context({**STYLE, "svg.hashsalt": salt}):
        FigureCanvasSVG(fig)
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    return prefix_ids(re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S), salt)


def prefix_ids(svg: str, prefix: str) -> str:
    """Every id defined in svg renamed prefix-id, and the references to them (url(#id), href="#id")
    with it; links to ids outside the picture (the page's layers) are left alone."""
    defined = set(re.findall(r'\bid="([^"]+)"', svg))
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    return re.sub(r'(url\(#|href="#)([^")]+)',
                  lambda m: m.group(1) + (f"{prefix}-{m.group(2)}" if m.group(2) in defined else m.group(2)), svg)


def short(name: str, n: int = GRAPH_LABEL_CHARS) -> str:
    """name cut to n characters with an ellipsis; control characters shown as spaces."""
    s = "".join(ch if ch.isprintable() else " " for ch in str(name))
    return s if len(s) <= n else s[:n - 1] + "…"


def graph_levels(graph) -> dict:
    """Level of each node key: 0 for nodes fed only by the model's inputs, else 1 + the deepest producer."""
    level = {}
    for key, _, _, _, srcs in graph:
        level[key] = 1 + max((level[s] for s in srcs if s in level), default=-1)
    return level


def graph_svg(graph, linked: dict, salt: str = "graph", edge_labels=None) -> str:
    """The model graph, one row per level (top to bottom), edges from producers to consumers labelled
    with their tensor's scale and zero point (edge_labels: (producer, consumer) -> text); a node
    with a section links to it (linked: key -> HTML id)."""
    from matplotlib.patches import FancyBboxPatch

    level = graph_levels(graph)
    rows = {}
    for key, *_ in graph:
        rows.setdefault(level[key], []).append(key)
    width = max(len(r) for r in rows.values())
    pos = {}
    for lv, keys in rows.items():
        for j, k in enumerate(keys):
            pos[k] = (j - (len(keys) - 1) / 2.0, -lv)
    bw, bh = 0.86, 0.62
    import matplotlib

    with matplotlib.rc_context(STYLE):
        fig = _figure(2.3 * width, 0.58 * len(rows) + 0.2)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        for key, number, name, op, srcs in graph:
            x, y = pos[key]
            for s in srcs:
                sx, sy = pos[s]
                ax.annotate("", xy=(x, y + bh / 2), xytext=(sx, sy - bh / 2),
                            arrowprops=dict(arrowstyle="-|>", color="#667", lw=0.8, shrinkA=0, shrinkB=0,
                                            mutation_scale=8), zorder=1)
                label = (edge_labels or {}).get((s, key))
                if label:
                    ax.text((x + sx) / 2, (y + bh / 2 + sy - bh / 2) / 2, label, ha="center", va="center",
                            fontsize=6, color="#335", parse_math=False, zorder=4,
                            bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.85))
            box = FancyBboxPatch((x - bw / 2, y - bh / 2), bw, bh, boxstyle="round,pad=0,rounding_size=0.08",
                                 fc=OP_COLOURS.get(op, "#d8f0d8"), ec="#445", lw=0.8, zorder=2)
            ax.add_patch(box)
            t = ax.text(x, y, f"{number}. {short(name)}\n{short(op)}", ha="center", va="center", fontsize=7.5,
                        parse_math=False, zorder=3)
            if key in linked:
                box.set_url("#" + linked[key])
                t.set_url("#" + linked[key])
        ax.set_xlim(-width / 2.0, width / 2.0)
        ax.set_ylim(-(len(rows) - 1) - 0.5, 0.5)
        return svg_text(fig, salt)


def acc_range_svg(f, salt: str) -> str:
    """The accumulator's magnitude (observed on this input, and the worst case over every input) as
    bars on a log2 axis, against the int16 / int24 / int32 limits."""
    import matplotlib

    with matplotlib.rc_context(STYLE):
        fig = _figure(6.4, 1.75)
        ax = fig.add_axes((0.2, 0.3, 0.77, 0.55))
        bars = [("this input", f.acc_observed, f.acc_bits, "#4a74c9")]
        if f.acc_worst is not None:
            bars.append(("worst case", f.acc_worst, f.acc_worst_bits, "#9aa9c9"))
        for i, (label, (lo, hi), bits, colour) in enumerate(bars):
            mag = max(abs(lo), abs(hi), 1)
            ax.barh(i, mag, left=1, color=colour, height=0.6)
            ax.text(mag * 1.15, i, f"[{lo}, {hi}]: {bits} bits", va="center", fontsize=8)
        ax.set_yticks(range(len(bars)), [b[0] for b in bars])
        ax.invert_yaxis()
        ax.set_xscale("log", base=2)
        ax.set_xlim(1, 2.0 ** 34)
        ax.set_xticks([2.0 ** k for k in range(0, 35, 4)], [f"2^{k}" for k in range(0, 35, 4)])
        for name, bits in ACC_LIMITS:
            ax.axvline(2.0 ** bits, color="#c33", lw=1, ls="--")
            ax.text(2.0 ** bits, -0.62, name, color="#c33", ha="center", va="bottom", fontsize=8)
        ax.set_xlabel("|accumulator| (log2 axis)")
        return svg_text(fig, salt)


def histogram_svg(f, salt: str) -> str:
    """How many output integers take each value of the dtype's range; values at qmin / qmax (the
    clamps) in red, the range ends dashed."""
    import matplotlib
    from matplotlib.ticker import FuncFormatter, NullFormatter

    lo, hi = f.out_avail
    counts = f.out_counts

    with matplotlib.rc_context(STYLE):
        fig = _figure(6.4, 2.1)
        ax = fig.add_axes((0.12, 0.22, 0.85, 0.62))
        # one filled outline for all values (a bar per value is slow to draw); empty values sit on
        # the 0.5 baseline of the log axis; the clamp ends are redrawn red
        log = max(counts) > 50  # a log axis when a spike (e.g. ReLU's zeros) would flatten the rest
        base = 0.5 if log else 0.0
        if log:
            ax.set_yscale("log")
            ax.yaxis.set_minor_formatter(NullFormatter())
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # no mathtext: quicker
        ax.stairs([c if c else base for c in counts], np.arange(lo - 0.5, hi + 1.0), fill=True, baseline=base,
                  color="#4a74c9")
        for x, c in ((lo, counts[0]), (hi, counts[-1])):
            if c:
                ax.bar([x], [c - base], width=1.6, bottom=base, color="#d22")
        ax.set_ylim(base, max(counts) * (1.6 if log else 1.1))
        for x in (lo, hi):
            ax.axvline(x, color="#d22", lw=0.8, ls="--")
        ax.set_xlim(lo - 3, hi + 3)
        ax.set_xlabel("output integer")
        ax.set_ylabel("count (log)" if log else "count")
        title(ax, f"{f.n_values} values; at qmin {lo}: {counts[0]}, at qmax {hi}: {counts[-1]}")
        return svg_text(fig, salt)


def zoom_window(st, steps: int = 3):
    """(acc lo, acc hi) around the first near-tie (else the middle of the observed accumulators),
    wide enough for about `steps` output steps either side (from the float line's slope)."""
    (x0, y0), (x1, y1) = st.line
    slope = abs(y1 - y0) / (x1 - x0) if x1 != x0 else 0.0
    centre = st.near_ties[0][0] if st.near_ties else (st.ties[0][0] if st.ties else (x0 + x1) / 2.0)
    half = steps / slope if slope > 0 else (x1 - x0) / 2.0 + 1
    return centre - half, centre + half


def rounded_line_steps(line, clamp, lo, hi):
    """(x, y) of the staircase clamp(round(float line)) over accumulators [lo, hi], for drawing only:
    the float line crosses k + 0.5 at x = (k + 0.5 − b) / m (the engine's own outputs are the dots)."""
    (x0, y0), (x1, y1) = line
    if x1 == x0 or y1 == y0:
        y = float(min(max(np.round(y0), clamp[0]), clamp[1]))
        return [lo, hi], [y, y]
    m = (y1 - y0) / (x1 - x0)
    b = y0 - m * x0
    ya, yb = sorted((m * lo + b, m * hi + b))
    ks = np.arange(np.floor(ya - 0.5), np.ceil(yb + 0.5) + 1)
    ks = ks[(ks + 1 > clamp[0]) & (ks < clamp[1])]
    xs = (ks + 0.5 - b) / m
    inside = (xs > lo) & (xs < hi)
    xs, ks = xs[inside], ks[inside]
    order = np.argsort(xs)
    xs, ks = xs[order], ks[order]
    def level(x):
        return float(min(max(np.round(m * x + b), clamp[0]), clamp[1]))
    x = [lo] + [float(v) for v in xs] + [hi]
    y = [level(lo)] + [level(v + 1e-9 * max(1.0, abs(v))) for v in xs] + [level(hi)]
    return x, y


def staircase_svg(f, salt: str) -> str:
    """The requantization staircase of one channel over its observed accumulators: the engine's
    (accumulator, output integer) pairs as dots, the rounded float line as a thin staircase, the
    float line, the clamp bounds, near-ties and .5 ties marked; beside it a zoom on a few steps around
    the first near-tie, where the float line crosses a .5 boundary."""
    import matplotlib
    from matplotlib.ticker import MaxNLocator

    st = f.stair
    (x0, y0), (x1, y1) = st.line
    with matplotlib.rc_context(STYLE):
        fig = _figure(8.6, 2.9)
        main = fig.add_axes((0.075, 0.16, 0.5, 0.72))
        zoom = fig.add_axes((0.66, 0.16, 0.32, 0.72))
        za, zb = zoom_window(st)
        for ax, (lo, hi) in ((main, (x0, x1)), (zoom, (za, zb))):
            sx, sy = rounded_line_steps(st.line, st.clamp, lo, hi)
            ax.step(sx, sy, where="post", color="#9bb3e0", lw=1.0, label="rounded float line")
            ax.plot([x0, x1], [y0, y1], color="#777", lw=0.9, label="float, before rounding")
            ax.plot(st.acc, st.out, ".", color="#1f4fa8", ms=4.5, label="engine (observed)")
            if st.standard_out is not None:
                diff = [(x, y) for x, y, e in zip(st.acc, st.standard_out, st.out) if y != e]
                ax.plot([x for x, _ in diff], [y for _, y in diff], "s", mfc="none", color="#d22", ms=5,
                        label=f"TFLite pipeline where it differs ({len(diff)} of {len(st.acc)})")
            for b in st.clamp:
                ax.axhline(b, color="#d22", lw=0.8, ls="--")
            if st.near_ties:
                ax.plot([a for a, _, _ in st.near_ties], [o for _, o, _ in st.near_ties], "x", color="#e69500",
                        ms=7, mew=1.8, label="near-tie")
            if st.ties:
                ax.plot([a for a, _, _ in st.ties], [o for _, o, _ in st.ties], "o", mfc="none", color="#a0a",
                        ms=7, label=".5 tie (to even)")
        lo_y = min(min(st.out), st.clamp[0])
        hi_y = min(max(max(st.out), y0, y1), st.clamp[1])
        pad = 0.06 * (hi_y - lo_y + 1) + 1
        main.set_ylim(lo_y - pad, hi_y + pad)
        main.set_xlim(x0 - 0.02 * (x1 - x0 + 1), x1 + 0.02 * (x1 - x0 + 1))
        main.set_xlabel("accumulator (int32)")
        main.set_ylabel("output integer")
        title(main, f"channel {st.channel}; {st.n_near_ties_layer} near-ties in the layer")
        main.legend(loc="upper left", frameon=False)
        slope = (y1 - y0) / (x1 - x0) if x1 != x0 else 0.0
        ya, yb = y0 + slope * (za - x0), y0 + slope * (zb - x0)
        zoom.set_xlim(za, zb)
        zoom.set_ylim(min(ya, yb) - 1.5, max(ya, yb) + 1.5)
        for k in range(int(np.floor(min(ya, yb))) - 2, int(np.ceil(max(ya, yb))) + 2):
            zoom.axhline(k + 0.5, color="#e69500", lw=0.5, ls=":")
        zoom.set_xlabel("accumulator (zoom)")
        title(zoom, "zoom: dotted = .5 boundaries")
        zoom.ticklabel_format(useOffset=False, style="plain")
        zoom.xaxis.set_major_locator(MaxNLocator(4))
        return svg_text(fig, salt)
