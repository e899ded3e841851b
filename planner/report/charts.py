"""Charts of the report, drawn with matplotlib (no pyplot, no global state) and returned as inline SVG.

One palette for every chart: a term (weights, tp_comm, pp_bubble, ...) has the same colour in the
memory bar, the step-time bar and the pipeline timeline. Text is drawn as paths, so an SVG looks
the same in every browser without fonts; element ids are prefixed per chart so that several SVGs can
live in one HTML page.
"""

from __future__ import annotations

import hashlib
import io
import re

import matplotlib
import matplotlib.text
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

PALETTE = {
    # per-GPU memory terms (GiB)
    "weights": "#4e79a7", "gradients": "#a0cbe8", "optimizer": "#f28e2b", "activations": "#59a14f",
    "other": "#bab0ac",
    # host RAM per node (planner.estimate.memory.HOST_PARTS); "host" when the parts are not given
    "offloaded_states": "#9c755f", "pinned_buffers": "#d4a6a0", "process_base": "#d9d2cc", "host": "#9c755f",
    # step time terms (s); "optimizer" above is also the optimizer step
    "compute": "#6a51a3", "recompute": "#d4b9da", "tp_comm": "#e15759", "cp_comm": "#ff9d9a",
    "ep_comm": "#b6992d", "pp_comm": "#d37295", "pp_bubble": "#edc948", "dp_comm": "#499894",
    "offload": "#9c755f",
    # pipeline timeline: shades of compute
    "forward": "#9e9ac8", "backward": "#54278f",
    # limits and trade-offs
    "capacity": "#222222", "overflow": "#d62728", "plans": "#7f9fbf", "pareto": "#d62728",
    "top": "#222222",
}
LABELS = {"offloaded_states": "offloaded states", "pinned_buffers": "pinned buffers",
          "process_base": "OS and processes", "tp_comm": "TP comm", "cp_comm": "CP comm", "ep_comm": "EP comm",
          "pp_comm": "PP comm", "pp_bubble": "pipeline bubble", "dp_comm": "DP comm"}


def label(term: str) -> str:
    return LABELS.get(term, term)


def to_svg(fig: Figure) -> str:
    """The figure as an <svg> element: no XML header or DOCTYPE; ids prefixed with a hash of the SVG,
    so two charts of a page never share an id unless they are the same chart."""
    buf = io.StringIO()
    # Names are text, not TeX: a '$' in a node or workload name must not start mathtext (it raised).
    for t in fig.findobj(matplotlib.text.Text):
        t.set_parse_math(False)
    with matplotlib.rc_context({"text.parse_math": False}):  # tick labels are made while drawing
        fig.savefig(buf, format="svg",
                    metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    p = "s" + hashlib.sha1(text.encode()).hexdigest()[:10]
    text = re.sub(r'\bid="([^"]+)"', rf'id="{p}-\1"', text)
    text = re.sub(r'href="#([^"]+)"', rf'href="#{p}-\1"', text)
    return re.sub(r"url\(#([^)]+)\)", rf"url(#{p}-\1)", text)


def _fig(width: float, height: float, fixed: bool = False) -> Figure:
    """A figure laid out by matplotlib's constrained layout, or with `fixed` by _margins (constrained
    layout measures every text twice: about half the drawing time of a bar chart)."""
    fig = Figure(figsize=(width, height), dpi=100)
    if not fixed:
        fig.set_layout_engine("constrained")
    return fig


# Fixed layout, in inches: one legend row, the x label with its tick labels, a title.
LEGEND_ROW_IN, XLABEL_IN, TITLE_IN = 0.2, 0.5, 0.3


def _margins(fig: Figure, left: float, legend_rows: int, gap: float = 0.8, right: float = 0.25) -> None:
    """Axes placed by margins in inches: `left` for the y tick labels, a title on top, below the x
    label and `legend_rows` of legend, `gap` between stacked axes (a title and an x label)."""
    w, h = fig.get_size_inches()
    bottom = XLABEL_IN + LEGEND_ROW_IN * legend_rows + 0.1
    rows = max(1, len(fig.axes))
    inner = h - bottom - TITLE_IN - gap * (rows - 1)
    fig.subplots_adjust(left=left / w, right=1 - right / w, bottom=bottom / h, top=1 - TITLE_IN / h,
                        hspace=gap / (inner / rows) if rows > 1 else 0.2)


def _stacked_bar(ax, parts: dict, y: float, unit: str, total_for_labels: float) -> None:
    """One horizontal stacked bar of the non-zero parts, values written inside wide enough segments."""
    left = 0.0
    for term, value in parts.items():
        if value <= 0:
            continue
        ax.barh(y, value, left=left, color=PALETTE.get(term, "#999999"), edgecolor="white", linewidth=0.6,
                label=f"{label(term)} {value:,.2f} {unit}")
        if value >= 0.07 * total_for_labels:
            ax.text(left + value / 2, y, f"{value:,.1f}", ha="center", va="center", fontsize=8,
                    color="white" if term in ("weights", "compute", "backward", "dp_comm", "tp_comm") else "black")
        left += value


def _legend_below(fig: Figure, ncol: int = 4) -> int:
    """One legend for the whole figure, under it; returns its number of rows (for _margins)."""
    seen: dict = {}
    for ax in fig.axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    if fig.get_layout_engine() is not None:
        fig.legend(seen.values(), seen.keys(), loc="outside lower center", ncol=ncol, fontsize=8.5, frameon=False)
    else:
        fig.legend(seen.values(), seen.keys(), loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=ncol,
                   fontsize=8.5, frameon=False)
    return -(-len(seen) // ncol)


def _limit(ax, capacity: float, total: float, unit: str, name: str, fits_below: float | None = None) -> None:
    """Capacity line, the 'fits' threshold, and the overflow beyond the capacity hatched in red."""
    ax.axvline(capacity, color=PALETTE["capacity"], linewidth=1.6, label=f"{name} {capacity:,.1f} {unit}", zorder=3)
    if fits_below is not None:
        ax.axvline(fits_below, color=PALETTE["capacity"], linewidth=1.1, linestyle="--", zorder=3,
                   label=f"'fits' below {fits_below:,.1f} {unit} ({100 * fits_below / capacity:.0f}%)")
    if total > capacity:
        ax.barh(0, total - capacity, left=capacity, height=0.95, color="none", edgecolor=PALETTE["overflow"],
                hatch="///", linewidth=1.2, label=f"over capacity by {total - capacity:,.1f} {unit}")
    ax.set_xlim(0, max(total, capacity) * 1.06)


def memory_chart(row: dict, title: str) -> str:
    """Per-GPU memory by term against the GPU's capacity; host RAM per node by part when the plan
    offloads (or when the host is what overflows)."""
    m, p = row["memory"], row["plan"]
    host_cap = m.get("host_capacity_gib")
    offloads = p["offload"] != "none" or p["offload_params"] != "none"
    show_host = offloads or (host_cap is not None and m["host_per_node_gib"] > host_cap)
    fig = _fig(11, 4.4 if show_host else 2.6, fixed=True)
    axes = fig.subplots(2 if show_host else 1, 1, squeeze=False)[:, 0]
    ax = axes[0]
    total = m["per_gpu_gib"]
    _stacked_bar(ax, m["breakdown_gib"], 0, "GiB", max(total, m["capacity_gib"]))
    _limit(ax, m["capacity_gib"], total, "GiB", "GPU memory", m.get("fits_below_gib"))
    ax.set_yticks([0], [f"per GPU\n{total:,.1f} GiB"])
    ax.set_xlabel("GiB per GPU")
    ax.set_title(title, fontsize=10, loc="left")
    if show_host:
        hx = axes[1]
        host = m["host_per_node_gib"]
        _stacked_bar(hx, m.get("host_parts_gib") or {"host": host}, 0, "GiB", max(host, host_cap or host))
        _limit(hx, host_cap if host_cap is not None else host, host, "GiB", "host RAM")
        nvme = m.get("nvme_per_node_gb") or 0
        hx.set_yticks([0], [f"host RAM\n{host:,.0f} GiB"])
        hx.set_xlabel("GiB of host RAM per node" + (f"  (and {nvme:,.0f} GB on NVMe per node)" if nvme else ""))
    _margins(fig, 1.1, _legend_below(fig), gap=0.6)
    return to_svg(fig)


def time_chart(row: dict, title: str) -> str:
    """Step time by term (compute, exposed communication per dimension, bubble, optimizer, offload)."""
    tm = row["time"]
    step = tm["step_s"]
    fig = _fig(11, 2.6, fixed=True)
    ax = fig.add_subplot()
    parts = {k: v for k, v in tm["breakdown_s"].items() if v > 0}
    left = 0.0
    for term, value in parts.items():
        ax.barh(0, value, left=left, color=PALETTE.get(term, "#999999"), edgecolor="white", linewidth=0.6,
                label=f"{label(term)} {value:,.3f} s ({100 * value / step:.1f}%)")
        if value >= 0.07 * step:
            ax.text(left + value / 2, 0, f"{value:,.2f} s", ha="center", va="center", fontsize=8,
                    color="white" if term in ("compute", "tp_comm", "dp_comm") else "black")
        left += value
    ax.set_xlim(0, step * 1.02)
    ax.set_yticks([0], [f"step\n{step:,.2f} s"])
    ax.set_xlabel("seconds per optimizer step")
    ax.set_title(title, fontsize=10, loc="left")
    _margins(fig, 1.1, _legend_below(fig, ncol=3))
    return to_svg(fig)


def _stage_spans(tl: dict) -> list[list[tuple[float, float]]]:
    """Per stage, the sorted (start, end) of its tasks (computed once per timeline)."""
    if "_stage_spans" not in tl:
        spans: list[list[tuple[float, float]]] = [[] for _ in range(tl["pp"])]
        for n, a, b in tl["tasks"]:
            spans[n.stage].append((a, b))
        tl["_stage_spans"] = [sorted(s) for s in spans]
    return tl["_stage_spans"]


def _idle_segments(tl: dict) -> list[list[tuple[float, float]]]:
    """Per stage, the (start, length) of every gap in [0, makespan] where the stage runs no task."""
    out = []
    for spans in _stage_spans(tl):
        gaps, cursor = [], 0.0
        for a, b in spans + [(tl["makespan_s"], tl["makespan_s"])]:
            if a - cursor > 1e-12 * tl["makespan_s"]:
                gaps.append((cursor, a - cursor))
            cursor = max(cursor, b)
        out.append(gaps)
    return out


# A window with more tasks than this is drawn as busy stretches and idle gaps, not task by task
# (deep pipelines: 32 stages x 64 micro-batches would be thousands of bars and numbers).
DETAIL_TASKS = 600


# Merged views: an image of IMAGE_COLUMNS time columns, each stage SUBROWS rows of which the first
# and last are blank (the gap between bars).
IMAGE_COLUMNS, SUBROWS = 1100, 10
# At most this many stage labels on the y axis.
STAGE_LABELS = 16


def _merged_image(ax, tl: dict, lo: float, hi: float) -> None:
    """Busy (compute colour) and idle (bubble colour) of every stage in [lo, hi] as one image."""
    from matplotlib.colors import ListedColormap

    pp = tl["pp"]
    grid = np.ones((pp, IMAGE_COLUMNS))
    col = lambda t: int(np.clip(round((t - lo) / (hi - lo) * IMAGE_COLUMNS), 0, IMAGE_COLUMNS))  # noqa: E731
    for s, gaps in enumerate(_idle_segments(tl)):
        for a, d in gaps:
            if a < hi and a + d > lo:
                grid[s, col(a):max(col(a + d), col(a) + 1)] = 0.0
    rows = np.repeat(grid, SUBROWS, axis=0)
    blank = np.zeros(pp * SUBROWS, dtype=bool)
    blank[0::SUBROWS] = blank[SUBROWS - 1::SUBROWS] = True
    rows = np.ma.masked_array(rows, np.broadcast_to(blank[:, None], rows.shape))
    ax.imshow(rows, cmap=ListedColormap([PALETTE["pp_bubble"], PALETTE["compute"]]), vmin=0, vmax=1,
              aspect="auto", interpolation="none", extent=(lo, hi, pp - 0.5, -0.5))


def _draw_tasks(ax, tl: dict, window: tuple[float, float], detail: bool, width_pt: float) -> None:
    """Tasks inside `window` on one axis. With `detail` (and at most DETAIL_TASKS tasks in the
    window), forward and backward bars numbered by micro-batch where the number fits in the bar
    (`width_pt`: the axis width in points) and idle gaps in the bubble colour; else one image of
    busy and idle stretches (_merged_image)."""
    lo, hi = window
    inside = lambda a, d: a < hi and a + d > lo  # noqa: E731
    detail = detail and sum(1 for _, a, b in tl["tasks"] if inside(a, b - a)) <= DETAIL_TASKS
    if not detail:
        _merged_image(ax, tl, lo, hi)
    else:
        for s, gaps in enumerate(_idle_segments(tl)):
            ax.broken_barh([g for g in gaps if inside(*g)], (s - 0.4, 0.8), facecolors=PALETTE["pp_bubble"])
        groups: dict = {}
        for n, a, b in tl["tasks"]:
            if inside(a, b - a):
                groups.setdefault((n.stage, n.phase), []).append((a, b - a, n))
        for (s, phase), bars in groups.items():
            ax.broken_barh([(a, d) for a, d, _ in bars], (s - 0.4, 0.8), edgecolor="white", linewidth=0.4,
                           facecolors=PALETTE["forward" if phase == "F" else "backward"])
            for a, d, n in bars:
                text = str(n.microbatch + 1)
                if d / (hi - lo) * width_pt >= 4.2 * len(text) + 2 and lo <= a + d / 2 <= hi:
                    ax.text(a + d / 2, s, text, ha="center", va="center", fontsize=7,
                            color="black" if phase == "F" else "white")
    ax.set_xlim(lo, hi)
    ax.set_ylim(tl["pp"] - 0.5, -0.5)
    shown = range(0, tl["pp"], -(-tl["pp"] // STAGE_LABELS))
    ax.set_yticks(shown, [f"stage {s}" for s in shown], fontsize=8)
    ax.set_xlabel("time within the step (s)", fontsize=9)


def _timeline_legend(fig: Figure, tl: dict, zoomed: bool) -> None:
    from matplotlib.patches import Patch

    each = " per chunk" if tl["vpp"] > 1 else ""
    handles = [Patch(color=PALETTE["forward"], label=f"forward{each} {tl['forward_s'] / tl['vpp']:.4g} s"),
               Patch(color=PALETTE["backward"],
                     label=f"backward{each} (incl. recompute) {tl['backward_s'] / tl['vpp']:.4g} s"),
               Patch(color=PALETTE["pp_bubble"], label="idle (pipeline bubble)")]
    if zoomed:
        handles.append(Patch(color=PALETTE["compute"], label="busy (merged where bars would not fit)"))
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=len(handles), fontsize=8.5,
               frameon=False)


def timeline_chart(tl: dict, title: str) -> str:
    """Gantt chart of one step's pipeline (planner.report.timeline). With many micro-batches the
    whole step is one busy block per stage, so the warm-up and the cool-down, where the bubble is,
    are drawn again enlarged."""
    span = tl["makespan_s"]
    per_mb = (tl["forward_s"] + tl["backward_s"]) / tl["vpp"]
    zoom = tl["microbatches"] * tl["vpp"] > 12
    width_in, row_in = 11.0, 0.3 * min(tl["pp"], STAGE_LABELS) + 0.9  # deeper pipelines: thinner rows
    fig = _fig(width_in, row_in * (3.2 if zoom else 1) + 1.1 + (1.6 if zoom else 0), fixed=True)
    width_pt = (width_in - 1.05) * 72
    if not zoom:
        ax = fig.add_subplot()
        _draw_tasks(ax, tl, (0.0, span), True, width_pt)
        ax.set_title(title, fontsize=10, loc="left")
    else:
        full, first, last = fig.subplots(3, 1, height_ratios=[0.8, 1.2, 1.2])
        _draw_tasks(full, tl, (0.0, span), False, width_pt)
        full.set_title(title, fontsize=10, loc="left")
        window = min(span / 2, (2 * tl["pp"] + 2) * per_mb)
        _draw_tasks(first, tl, (0.0, window), True, width_pt)
        _draw_tasks(last, tl, (span - window, span), True, width_pt)
        first.set_title("warm-up: the start of the step, enlarged", fontsize=9, loc="left")
        last.set_title("cool-down: the end of the step, enlarged", fontsize=9, loc="left")
    _timeline_legend(fig, tl, zoom)
    _margins(fig, 0.8, 1)
    return to_svg(fig)


def _money_tick(x: float) -> str:
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"${x / div:g}{suffix}"
    return f"${x:g}"


def _wants_log(values) -> bool:
    """More than a 20x span of positive values."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    return bool(len(v) and v.max() > 20 * v.min())


def _auto_log(ax, axis: str, values) -> None:
    """A log scale on `axis` ("x" or "y"), ticks at 1-2-5, when the values span more than 20x."""
    if _wants_log(values):
        getattr(ax, f"set_{axis}scale")("log")
        getattr(ax, f"{axis}axis").set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        getattr(ax, f"{axis}axis").set_minor_formatter(NullFormatter())


def _money_axis(axis) -> None:
    axis.set_major_formatter(FuncFormatter(lambda x, _: _money_tick(x)))


def _front(x: np.ndarray, y_min: np.ndarray) -> np.ndarray:
    """Indices of the points not dominated when minimising both x and y_min, sorted by x."""
    from planner.search.rank import pareto_mask

    idx = np.flatnonzero(pareto_mask(x, y_min))
    return idx[np.argsort(x[idx])]


def _mark_top(ax, top: list[tuple[float, float]]) -> None:
    """Circle the top plans and label them #1, #2, ... with leader lines fanned out to the right."""
    for i, (tx, ty) in enumerate(top, 1):
        ax.scatter([tx], [ty], s=70, facecolors="none", edgecolors=PALETTE["top"], linewidths=1.3, zorder=4,
                   label="top plans of the table" if i == 1 else None)
        ax.annotate(f"#{i}", (tx, ty), textcoords="offset points", xytext=(28, 14 - 16 * (i - 1)), fontsize=9,
                    va="center", arrowprops={"arrowstyle": "-", "color": "#555555", "linewidth": 0.7})


# Above this many plans the cloud is drawn as a 2-D histogram (one raster image of DENSITY_BINS cells)
# instead of one marker per plan: the page's size and drawing time no longer grow with the count.
DENSITY_ABOVE = 2000
DENSITY_BINS = (220, 110)


def _edges(v: np.ndarray, n: int, log: bool) -> np.ndarray:
    lo, hi = float(v.min()), float(v.max())
    if not hi > lo:
        lo, hi = (lo * 0.99, hi * 1.01) if lo > 0 else (lo - 1, hi + 1)
    return np.geomspace(lo, hi, n + 1) if log else np.linspace(lo, hi, n + 1)


def _density(ax, x: np.ndarray, y: np.ndarray, log_x: bool) -> list:
    """Plans per cell of a DENSITY_BINS grid (log-spaced in x on a log axis), empty cells left blank,
    colour on a log scale of the count, rasterised. Returns the legend entry."""
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Patch

    h, xe, ye = np.histogram2d(x, y, bins=(_edges(x, DENSITY_BINS[0], log_x), _edges(y, DENSITY_BINS[1], False)))
    ax.pcolormesh(xe, ye, np.ma.masked_equal(h, 0).T, cmap="Blues", norm=LogNorm(vmin=0.5, vmax=max(h.max(), 1)),
                  rasterized=True, shading="flat")
    return [Patch(color=PALETTE["plans"], label=f"feasible plans ({len(x):,}; darker cells hold more)")]


def tradeoff_chart(points: dict, top: list[tuple[float, float]], x_label: str, title: str,
                   money: bool = False) -> str:
    """Throughput (y) of every feasible plan against a cost (x: dollars, GPU-hours, GiB), the Pareto
    front (no other plan has more throughput for less cost) and the top plans marked.

    `points`: x, tokens_per_s and gpus (arrays); up to DENSITY_ABOVE plans one marker each (GPU
    counts in different colours), beyond that a density (_density)."""
    x, y, gpus = (np.asarray(points[k], dtype=float) for k in ("x", "tokens_per_s", "gpus"))
    fig = _fig(11, 5, fixed=True)
    ax = fig.add_subplot()
    extra = []
    if len(x) > DENSITY_ABOVE:
        extra = _density(ax, x, y, _wants_log(x))
    else:
        counts = sorted(set(gpus.astype(int)))
        groups = [(gpus == c, f"C{i % 10}", f"{c:,} GPUs ({int((gpus == c).sum()):,} plans)")
                  for i, c in enumerate(counts)]
        if len(counts) == 1:
            groups = [(gpus == counts[0], PALETTE["plans"], f"feasible plans ({len(x):,})")]
        for sel, colour, name in groups:
            ax.scatter(x[sel], y[sel], s=9, alpha=0.45, color=colour, linewidths=0, label=name)
    f = _front(x, -y)
    ax.plot(x[f], y[f], "-o", color=PALETTE["pareto"], markersize=4, linewidth=1.4, zorder=3,
            label=f"Pareto front ({len(f)} plan{'s' if len(f) != 1 else ''})")
    _mark_top(ax, top)
    _auto_log(ax, "x", x)
    if money:
        _money_axis(ax.xaxis)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xlabel(x_label)
    ax.set_ylabel("throughput (tokens/s)")
    ax.set_title(title, fontsize=10, loc="left")
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(extra + handles, [h.get_label() for h in extra] + labels, fontsize=8, loc="upper left",
              bbox_to_anchor=(1.01, 1.0), frameon=False)  # outside: "best" searches every cell
    _margins(fig, 1.15, 0, right=3.5)
    return to_svg(fig)


# Above this many points a days/cost chart draws its points as one raster image and labels only the
# Pareto front (a sweep of 25,600 purchase options was 14 MB of markers and labels).
LABELLED_POINTS = 60


def days_cost_chart(points: list[dict], title: str) -> str:
    """Days against dollars: one point per entry (`days`, `cost_usd`, `pareto`, `label` written next to
    it, `group` for the colour and the legend), the Pareto front joined and ringed. Used for the node
    counts of one scenario and for purchase options per workload. Above LABELLED_POINTS points, the
    points are rasterised and only the front is labelled."""
    pts = [p for p in points if p.get("days") is not None and p.get("cost_usd") is not None]
    many = len(pts) > LABELLED_POINTS
    fig = _fig(11, 5.2, fixed=True)
    ax = fig.add_subplot()
    groups: dict = {}
    for p in pts:
        groups.setdefault(p["group"], []).append(p)
    for i, (g, mine) in enumerate(groups.items()):
        ax.scatter([p["days"] for p in mine], [p["cost_usd"] for p in mine], s=12 if many else 40,
                   color=f"C{i % 10}", label=f"{g} ({len(mine):,})" if many else g, zorder=3, rasterized=many)
    on = sorted((p for p in pts if p["pareto"]), key=lambda p: p["days"])
    ax.plot([p["days"] for p in on], [p["cost_usd"] for p in on], "-o", color=PALETTE["pareto"], markersize=11,
            markerfacecolor="none", linewidth=1.2, zorder=2, label="Pareto front (nothing faster and cheaper)")
    for p in on if many else pts:
        ax.annotate(p["label"], (p["days"], p["cost_usd"]), textcoords="offset points", xytext=(7, 3), fontsize=8)
    _auto_log(ax, "x", [p["days"] for p in pts])
    _auto_log(ax, "y", [p["cost_usd"] for p in pts])
    _money_axis(ax.yaxis)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("days to train")
    ax.set_ylabel("cost to train (USD)")
    ax.set_title(title, fontsize=10, loc="left")
    ax.grid(True, alpha=0.3)
    ax.margins(0.08)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    _margins(fig, 0.95, 0, right=_legend_width(ax))
    return to_svg(fig)


LEGEND_CHAR_IN, LEGEND_MARKER_IN = 0.06, 0.5  # a character of 8-point text, a legend marker and its gaps


def _legend_width(ax) -> float:
    """Inches right of the axes for a legend there (8-point labels): fixed margins instead of the
    constrained layout, which measures every text twice (about half the drawing time of a chart)."""
    return LEGEND_MARKER_IN + LEGEND_CHAR_IN * max((len(t) for t in ax.get_legend_handles_labels()[1]), default=0)
