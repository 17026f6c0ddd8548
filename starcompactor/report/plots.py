"""The report's plots: matplotlib figures written as SVG text, each with the table of its numbers.

matplotlib because it writes clean, self-contained SVG with no JavaScript and no network (the page must
open offline), it is packaged everywhere, and its SVG output can be made byte-for-byte reproducible
(``svg.hashsalt``, no date in the metadata). Figures are made with :class:`matplotlib.figure.Figure`
directly, never pyplot: no global state, no GUI backend. Text stays text (``svg.fonttype = none``):
smaller files, and a host's hash can be found with the browser's search.

Everything plotted is aggregated first (see :mod:`~starcompactor.report.aggregate`): a step series is
cut to the instants where it changes, host strips are one rectangle per state span.
"""

from __future__ import annotations

import io
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from ..errors import MissingDependencyError
from .aggregate import (
    DAY,
    MONDAY,
    NO_RACK,
    US,
    WEEK,
    InstanceSummary,
    JoinSummary,
    MachineSummary,
    natural_key,
)
from .read import iso

#: Rows of a table shown under a plot; the --json summary has them all.
TABLE_ROWS = 400
EVENT_COLORS = {"CREATE": "#2a9d8f", "DELETE": "#d62728", "DISABLE": "#f4a261", "ENABLE": "#1f77b4",
                "UPDATE": "#9467bd"}  # fmt: skip
STATE_COLORS = {"enabled": "#2a9d8f", "disabled": "#f4a261", "deleted": "#d0d0d0"}
STATE_LABELS = {"enabled": "enabled", "disabled": "disabled / in maintenance", "deleted": "deleted"}
WIDTH = 10.0  #: figure width, inches (720 pt: the page scales it to its column)
LEGEND = 2.5  #: right margin (inches) of a figure with its legend on the right
STYLE = {
    "svg.fonttype": "none",
    "date.epoch": "1970-01-01T00:00:00",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"],
    "font.size": 9.0,
    "axes.titlesize": 11.0,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 9.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#e6e6e6",
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "legend.fontsize": 8.0,
    "xtick.labelsize": 8.0,
    "ytick.labelsize": 8.0,
    "path.simplify": True,
}


@dataclass
class Table:
    """The numbers behind a plot, shown under it."""

    columns: List[str]
    rows: List[List[Any]]
    note: str = ""


@dataclass
class Plot:
    key: str
    title: str
    svg: str
    caption: str = ""
    table: Optional[Table] = None
    notes: List[str] = field(default_factory=list)


def matplotlib_modules() -> Tuple[Any, Any, Any]:
    """(matplotlib, Figure, mdates), or the error naming the extra."""
    try:
        import matplotlib
        import matplotlib.dates as mdates
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingDependencyError("matplotlib", "report", "starcompactor report") from exc
    return matplotlib, Figure, mdates


@contextmanager
def _figure(
    key: str, height: float, rows: int = 1, *, left: float = 0.8, right: float = 0.3, top: float = 0.2,
    bottom: float = 0.65, gap: float = 0.45,
) -> Iterator[Tuple[Any, List[Any]]]:  # fmt: skip
    """A figure of ``rows`` axes sharing x, with margins in inches (a fixed layout: matplotlib's
    automatic ones draw every figure twice, and a report has ten figures)."""
    matplotlib, Figure, _ = matplotlib_modules()
    with matplotlib.rc_context({**STYLE, "svg.hashsalt": f"starcompactor-{key}"}):
        figure = Figure(figsize=(WIDTH, height))
        axes = figure.subplots(rows, 1, sharex=True, squeeze=False)[:, 0].tolist()
        figure.subplots_adjust(
            left=left / WIDTH,
            right=1 - right / WIDTH,
            top=1 - top / height,
            bottom=bottom / height,
            hspace=gap * rows / max(height - top - bottom, 0.5),
        )
        yield figure, axes


def _svg(figure: Any, key: str, title: str) -> str:
    """The figure as SVG text to put inline: no XML prolog, ids prefixed (many SVGs share one page),
    width from the page, no date."""
    matplotlib, _, _ = matplotlib_modules()
    buffer = io.StringIO()
    with matplotlib.rc_context({**STYLE, "svg.hashsalt": f"starcompactor-{key}"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, count=1, flags=re.S)
    text = re.sub(r'(\bid="|href="#|url\(#)', lambda m: m.group(1) + key + "-", text)
    text = _PATH_DATA.sub(lambda m: _NUMBER.sub(_round, m.group(0)), text)
    text = re.sub(r'<svg ([^>]*?)width="([\d.]+)pt" height="([\d.]+)pt"',
                  lambda m: f'<svg {m.group(1)}class="plot" role="img" aria-label="{_attr(title)}"', text, count=1)  # fmt: skip
    return text.strip() + "\n"


def _attr(text: str) -> str:
    import html

    return html.escape(text, quote=True)


_PATH_DATA = re.compile(r'\b(?:d|points)="[^"]*"|\b(?:x|y|width|height)="-?[\d.]+"')
_NUMBER = re.compile(r"-?\d+\.\d{3,}")


def _round(match: Any) -> str:
    """A coordinate to 2 decimals (1/100 pt): paths are most of an SVG's bytes, 6 decimals say nothing."""
    text = f"{float(match.group(0)):.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _dates(axis: Any, values: Sequence[int]) -> List[float]:
    """Microseconds since 1970 → matplotlib date numbers (days since 1970), with a date axis."""
    _, _, mdates = matplotlib_modules()
    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    axis.xaxis.set_major_locator(locator)
    axis.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=True))
    return [v / DAY for v in values]


def _changes(layers: Sequence[Sequence[float]]) -> List[int]:
    """Indices where any layer changes value (and the first and last): a step plot needs no others."""
    n = len(layers[0]) if layers else 0
    keep = [0] if n else []
    for i in range(1, n):
        if any(layer[i] != layer[i - 1] for layer in layers) or i == n - 1:
            keep.append(i)
    # a step "post" plot holds a value until the next kept point: keep the point before each change too
    out = sorted({j for i in keep for j in (i - 1, i) if 0 <= j < n})
    return out


def _stack(axis: Any, x: Sequence[float], layers: Sequence[Tuple[str, Sequence[float], str]]) -> None:
    """Stacked step areas (step "post": a value holds until the next instant)."""
    import numpy as np

    keep = _changes([values for _, values, _ in layers])
    xs = np.asarray(x)[keep]
    # a few hundred changes: steps; more (daily counts over years): a line through the points is the
    # same picture at this width, in half the bytes
    step = "post" if len(keep) <= 240 else None
    base = np.zeros(len(keep))
    for label, values, color in layers:
        top = base + np.asarray(values, dtype=float)[keep]
        axis.fill_between(xs, base, top, step=step, color=color, label=label, linewidth=0)
        base = top
    axis.set_ylim(bottom=0)


def _palette(n: int) -> List[Any]:
    _, _, _ = matplotlib_modules()
    from matplotlib import colormaps

    if n <= 10:
        cmap = colormaps["tab10"]
        return [cmap(i % 10) for i in range(n)]
    cmap = colormaps["tab20"]
    return [cmap(i % 20) for i in range(n)]


def _hex(color: Any) -> str:
    from matplotlib.colors import to_hex

    return str(to_hex(color))


def _limit_rows(rows: List[List[Any]], what: str) -> Tuple[List[List[Any]], str]:
    if len(rows) <= TABLE_ROWS:
        return rows, ""
    return rows[:TABLE_ROWS], f"First {TABLE_ROWS} of {len(rows)} {what}; --json writes them all."


def _legend(axis: Any, entries: int, title: Optional[str] = None) -> None:
    if entries:
        axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, title=title, title_fontsize=8,
                    ncol=1 if entries <= 16 else 2)  # fmt: skip


def short(value: str, n: int = 12) -> str:
    """A masked id shortened for a label (the tables hold it whole)."""
    return value if len(value) <= n + 1 else value[:n] + "…"


def _empty(key: str, title: str, why: str) -> Plot:
    return Plot(key, title, "", notes=[why])


# -- machines ---------------------------------------------------------------------------------------


def _top_racks(summary: MachineSummary, limit: int = 19) -> Tuple[List[str], Dict[str, str]]:
    """Racks in natural order; beyond ``limit`` (by peak hosts), the smallest ones as "other racks"."""
    racks = summary.racks
    if len(racks) <= limit + 1:
        return racks, {r: r for r in racks}
    peak = {
        r: max(a + b for a, b in zip(summary.by_state["enabled"].get(r, [0] * len(summary.grid)),
                                     summary.by_state["disabled"].get(r, [0] * len(summary.grid))))
        for r in racks
    }  # fmt: skip
    kept = set(sorted(racks, key=lambda r: (-peak[r], natural_key(r)))[:limit])
    ordered = [r for r in racks if r in kept] + ["other racks"]
    return ordered, {r: (r if r in kept else "other racks") for r in racks}


def rack_label(rack: str, key: Optional[str]) -> str:
    if rack in (NO_RACK, "other racks"):
        return rack
    return f"rack {rack}" if key in ("rack", None) else f"{key} {rack}"


def hosts_by_state(summary: MachineSummary) -> Plot:
    title = "Hosts over time by state, stacked by rack"
    if not summary.grid:
        return _empty("hosts", title, "The machine trace has no events.")
    racks, group = _top_racks(summary)
    colors = dict(zip(racks, _palette(len(racks))))
    n = len(summary.grid)
    series: Dict[str, Dict[str, List[int]]] = {}
    for state in ("enabled", "disabled"):
        merged: Dict[str, List[int]] = {}
        for rack, values in summary.by_state[state].items():
            target = merged.setdefault(group[rack], [0] * n)
            for i, v in enumerate(values):
                target[i] += v
        series[state] = merged
    with _figure("hosts", 5.4, rows=2, right=LEGEND, top=0.35, gap=0.55) as (figure, (top, bottom)):
        x = _dates(bottom, summary.grid)
        for axis, state in ((top, "enabled"), (bottom, "disabled")):
            layers = [
                (rack_label(r, summary.rack_key), series[state][r], colors[r])
                for r in racks
                if r in series[state]
            ]
            if layers:
                _stack(axis, x, layers)
            axis.set_ylabel("hosts")
            axis.set_title(f"{STATE_LABELS[state].capitalize()} hosts", fontsize=9.5, fontweight="normal")
        handles = [(rack_label(r, summary.rack_key), colors[r]) for r in racks]
        from matplotlib.patches import Patch

        top.legend(handles=[Patch(color=c, label=label) for label, c in handles], loc="upper left",
                   bbox_to_anchor=(1.01, 1.0), ncol=1 if len(handles) <= 14 else 2, title="stacked by")  # fmt: skip
        bottom.set_xlabel("time (UTC)")
        svg = _svg(figure, "hosts", title)
    columns = ["time (UTC)", "enabled", "disabled"] + [
        f"{rack_label(r, summary.rack_key)} (alive)" for r in racks[:20]
    ]
    rows = []
    for i, t in enumerate(summary.grid):
        enabled = sum(v[i] for v in series["enabled"].values())
        disabled = sum(v[i] for v in series["disabled"].values())
        per_rack = [
            series["enabled"].get(r, [0] * n)[i] + series["disabled"].get(r, [0] * n)[i] for r in racks[:20]
        ]
        rows.append([iso(t), enabled, disabled, *per_rack])
    rows, note = _limit_rows(rows, "instants")
    step = "hour" if summary.grid_step < DAY else "day" if summary.grid_step == DAY else "week"
    caption = (
        f"Hosts alive at each {step} ({iso(summary.grid[0])} to {iso(summary.grid[-1])}), by state: enabled, or "
        "disabled / in maintenance (created but not enabled). A host is counted from its CREATE to its DELETE."
    )
    return Plot("hosts", title, svg, caption, Table(columns, rows, note))


def capacity(summary: MachineSummary) -> Plot:
    title = "Capacity over time" if summary.site == "vm" else "Nodes over time by node_type"
    if not summary.grid:
        return _empty("capacity", title, "The machine trace has no events.")
    if summary.site != "vm":
        return _node_types(summary, title)
    panels = [
        ("vcpus", "vCPUs", 1.0),
        ("memory_mb", "RAM (GiB)", 1 / 1024),
        ("disk_gb", "disk (TB)", 1 / 1000),
    ]
    with _figure("capacity", 6.4, rows=3, right=LEGEND, top=0.2, gap=0.3) as (figure, axes):
        x = _dates(axes[-1], summary.grid)
        for axis, (name, label, scale) in zip(axes, panels):
            alive = [v * scale for v in summary.capacity[f"{name}_alive"]]
            enabled = [v * scale for v in summary.capacity[f"{name}_enabled"]]
            keep = _changes([alive, enabled])
            axis.step([x[i] for i in keep], [alive[i] for i in keep], where="post", color="#264653",
                      label="all hosts", linewidth=1.4)  # fmt: skip
            axis.step([x[i] for i in keep], [enabled[i] for i in keep], where="post", color="#2a9d8f",
                      linestyle="--", label="enabled hosts", linewidth=1.2)  # fmt: skip
            axis.set_ylabel(label)
            axis.set_ylim(bottom=0)
        _legend(axes[0], 2)
        axes[-1].set_xlabel("time (UTC)")
        svg = _svg(figure, "capacity", title)
    columns = ["time (UTC)", "vCPUs", "RAM (MiB)", "disk (GB)", "vCPUs enabled", "RAM enabled (MiB)",
               "disk enabled (GB)"]  # fmt: skip
    cap = summary.capacity
    rows = [
        [iso(t), cap["vcpus_alive"][i], cap["memory_mb_alive"][i], cap["disk_gb_alive"][i],
         cap["vcpus_enabled"][i], cap["memory_mb_enabled"][i], cap["disk_gb_enabled"][i]]
        for i, t in enumerate(summary.grid)
    ]  # fmt: skip
    rows, note = _limit_rows(rows, "instants")
    caption = (
        "Sum of vcpu_capability, memory_capability_mb and disk_capability_gb over the hosts alive at each "
        "instant: all of them (enabled or in maintenance), and the enabled ones."
    )
    return Plot("capacity", "Capacity over time", svg, caption, Table(columns, rows, note))


def _node_types(summary: MachineSummary, title: str) -> Plot:
    kinds = list(summary.node_types)
    colors = _palette(len(kinds))
    with _figure("capacity", 3.6, right=LEGEND) as (figure, (axis,)):
        x = _dates(axis, summary.grid)
        if kinds:
            _stack(axis, x, [(k, summary.node_types[k], c) for k, c in zip(kinds, colors)])
        axis.set_ylabel("nodes")
        axis.set_xlabel("time (UTC)")
        _legend(axis, len(kinds), "node_type")
        svg = _svg(figure, "capacity", title)
    columns = ["time (UTC)", *kinds]
    rows = [[iso(t), *(summary.node_types[k][i] for k in kinds)] for i, t in enumerate(summary.grid)]
    rows, note = _limit_rows(rows, "instants")
    caption = "Nodes alive (enabled or in maintenance) at each instant, stacked by their node_type property."
    return Plot("capacity", title, svg, caption, Table(columns, rows, note))


def machine_events_per_week(summary: MachineSummary) -> Plot:
    title = "Machine events per week by type"
    if not summary.weeks:
        return _empty("machine-weeks", title, "The machine trace has no events.")
    kinds = list(summary.per_week)
    with _figure("machine-weeks", 3.4, right=LEGEND) as (figure, (axis,)):
        x = _dates(axis, summary.weeks)
        bottom = [0] * len(x)
        colors = _palette(len(kinds))
        for i, kind in enumerate(kinds):
            values = summary.per_week[kind]
            axis.bar(x, values, width=6.0, bottom=bottom, align="edge", label=kind,
                     color=EVENT_COLORS.get(kind, colors[i]), linewidth=0)  # fmt: skip
            bottom = [b + v for b, v in zip(bottom, values)]
        axis.set_ylabel("events per week")
        axis.set_xlabel("week starting Monday (UTC)")
        _legend(axis, len(kinds), "event")
        svg = _svg(figure, "machine-weeks", title)
    rows = [
        [_day(w), *(summary.per_week[k][i] for k in kinds), sum(summary.per_week[k][i] for k in kinds)]
        for i, w in enumerate(summary.weeks)
    ]
    rows, note = _limit_rows(rows, "weeks")
    return Plot("machine-weeks", title, svg, "Events of each type in each week (Monday 00:00 to Monday 00:00, UTC).",
                Table(["week", *kinds, "total"], rows, note))  # fmt: skip


def host_timeline(summary: MachineSummary) -> Plot:
    title = "Per-host timeline"
    hosts = summary.timeline
    if not hosts or not summary.grid:
        return _empty("timeline", title, "The machine trace has no hosts.")
    from matplotlib.collections import PolyCollection
    from matplotlib.patches import Patch

    start = summary.grid[0]
    end = max(summary.grid[-1], summary.end or summary.grid[-1])
    height = min(max(2.4, 0.9 + 0.085 * len(hosts)), 40.0)
    with _figure("timeline", height, left=1.9 if len(hosts) <= 40 else 1.1, right=LEGEND) as (
        figure,
        (axis,),
    ):
        _dates(axis, [start, end])
        boxes: Dict[str, List[List[Tuple[float, float]]]] = {s: [] for s in STATE_COLORS}
        for row, history in enumerate(hosts):
            y0, y1 = row - 0.4, row + 0.4
            spans: List[List[Any]] = []  # [start, end, state], a change of properties alone is no new box
            for segment in history.segments:
                stop = segment.end if segment.end is not None else end
                if spans and spans[-1][2] == segment.state and spans[-1][1] == segment.start:
                    spans[-1][1] = stop
                else:
                    spans.append([segment.start, stop, segment.state])
            for a, b, state in spans:
                boxes[state].append([(a / DAY, y0), (b / DAY, y0), (b / DAY, y1), (a / DAY, y1)])
        for state, verts in boxes.items():
            if verts:
                axis.add_collection(PolyCollection(verts, facecolors=STATE_COLORS[state], edgecolors="none"))
        axis.set_xlim(start / DAY, end / DAY)
        axis.set_ylim(len(hosts) - 0.5, -0.5)
        axis.grid(axis="y", visible=False)
        racks = [summary.rack_of(h.segments[0].properties) if h.segments else NO_RACK for h in hosts]
        if len(hosts) <= 40:
            axis.set_yticks(range(len(hosts)))
            axis.set_yticklabels(
                [f"{short(h.host, 10)}  {rack_label(r, summary.rack_key)}" for h, r in zip(hosts, racks)]
            )
        else:
            starts = [i for i, r in enumerate(racks) if i == 0 or r != racks[i - 1]]
            bounds = [*starts, len(racks)]
            axis.set_yticks([(a + b - 1) / 2 for a, b in zip(bounds, bounds[1:])])
            axis.set_yticklabels([rack_label(racks[i], summary.rack_key) for i in starts])
            for i in starts[1:]:
                axis.axhline(i - 0.5, color="#888888", linewidth=0.5)
        axis.tick_params(axis="y", length=0)
        axis.set_xlabel("time (UTC)")
        axis.set_ylabel(f"{len(hosts)} hosts, by rack then creation")
        axis.legend(handles=[Patch(color=STATE_COLORS[s], label=STATE_LABELS[s]) for s in STATE_COLORS],
                    loc="upper left", bbox_to_anchor=(1.01, 1.0), title="state")  # fmt: skip
        svg = _svg(figure, "timeline", title)
    rows = []
    for history, rack in zip(hosts, racks):
        states = [s.state for s in history.segments]
        last = history.segments[-1].state if history.segments else ""
        rows.append([history.host, rack, iso(history.created), states.count("disabled"), states.count("deleted"),
                     history.recreated, last])  # fmt: skip
    columns = [
        "host",
        summary.rack_key or "rack",
        "first CREATE",
        "spans disabled",
        "deletions",
        "re-created",
        "state at end",
    ]
    rows, note = _limit_rows(rows, "hosts")
    shown = (
        f"{len(hosts)} of {len(summary.hosts)} hosts"
        if len(hosts) < len(summary.hosts)
        else f"all {len(hosts)} hosts"
    )
    caption = f"One strip per host ({shown}): enabled, disabled / in maintenance, deleted; blank before its first CREATE."
    return Plot("timeline", title, svg, caption, Table(columns, rows, note))


# -- instances --------------------------------------------------------------------------------------


def _top_events(summary: InstanceSummary, limit: int = 8) -> Tuple[List[str], bool]:
    names = summary.event_names
    return names[:limit], len(names) > limit


def instances_alive(summary: InstanceSummary) -> Plot:
    title = "Instances alive over time"
    if not summary.grid:
        return _empty("alive", title, "The instance trace has no events with a start time.")
    with _figure("alive", 3.2) as (figure, (axis,)):
        x = _dates(axis, summary.grid)
        keep = _changes([summary.alive])
        axis.fill_between(
            [x[i] for i in keep], [summary.alive[i] for i in keep], step="post", color="#8ecae6", linewidth=0
        )
        axis.step(
            [x[i] for i in keep],
            [summary.alive[i] for i in keep],
            where="post",
            color="#023047",
            linewidth=1.2,
        )
        axis.set_ylim(bottom=0)
        axis.set_ylabel("instances")
        axis.set_xlabel("time (UTC)")
        svg = _svg(figure, "alive", title)
    rows, note = _limit_rows([[iso(t), n] for t, n in zip(summary.grid, summary.alive)], "instants")
    caption = (
        f"Alive: from the finish of an instance's successful build to the finish of its successful terminate. "
        f"{summary.alive_at_start:,} instance(s) with no build in the trace are counted from its first event; "
        f"{summary.failed_builds:,} whose builds all failed are never counted."
    )
    return Plot("alive", title, svg, caption, Table(["time (UTC)", "instances alive"], rows, note))


def instance_events_per_day(summary: InstanceSummary) -> Plot:
    title = "Instance events per day by type"
    if not summary.days:
        return _empty("instance-days", title, "The instance trace has no events with a start time.")
    top, more = _top_events(summary)
    layers = [(name, summary.per_day.get(name, [0] * len(summary.days))) for name in top]
    if more:
        other = [0] * len(summary.days)
        for name, values in summary.per_day.items():
            if name not in top:
                other = [a + b for a, b in zip(other, values)]
        layers.append(("other events", other))
    colors = _palette(len(layers))
    with _figure("instance-days", 3.8, right=3.3) as (figure, (axis,)):
        x = _dates(axis, [*summary.days, summary.days[-1] + DAY])
        series = [(name, [*values, values[-1]], c) for (name, values), c in zip(layers, colors)]
        _stack(axis, x, series)
        axis.set_ylabel("events per day")
        axis.set_xlabel("day (UTC, by start time)")
        _legend(axis, len(layers), "event")
        svg = _svg(figure, "instance-days", title)
    rows = [
        [_day(d), *(values[i] for _, values in layers), sum(v[i] for v in summary.per_day.values())]
        for i, d in enumerate(summary.days)
    ]
    rows, note = _limit_rows(rows, "days")
    return Plot("instance-days", title, svg, "Events by the day of their START_TIME.",
                Table(["day", *(name for name, _ in layers), "total"], rows, note))  # fmt: skip


def durations(summary: InstanceSummary) -> Plot:
    title = "Event durations by type"
    top, _ = _top_events(summary)
    top = [name for name in top if name in summary.durations]
    if not top:
        return _empty("durations", title, "No event has a duration.")
    edges = summary.duration_edges
    colors = _palette(len(top))
    with _figure("durations", 3.8, right=3.3) as (figure, (axis,)):
        for name, color in zip(top, colors):
            counts = summary.durations[name]
            xs = edges[1:] + [edges[-1] * 10 ** (1 / 5)]
            ys = counts[1:]
            nonzero = [i for i, v in enumerate(ys) if v]
            if not nonzero:
                continue
            lo, hi = nonzero[0], nonzero[-1] + 1
            axis.stairs(
                ys[lo:hi], xs[lo : hi + 1], color=color, linewidth=1.4, label=f"{name} ({sum(counts):,})"
            )
        _log_axes(axis)
        axis.set_xlabel("duration (log scale; 5 bins per decade)")
        axis.set_ylabel("events per bin (log scale)")
        _legend(axis, len(top), "event (events)")
        svg = _svg(figure, "durations", title)
    rows = []
    for name in summary.event_names:
        bins = summary.durations.get(name)
        if not bins:
            continue
        rows.append([name, sum(bins), bins[0], _seconds(summary.quantile(name, 0.5)),
                     _seconds(summary.quantile(name, 0.9)), _seconds(summary.quantile(name, 0.99))])  # fmt: skip
    caption = (
        "Durations (FINISH_TIME − START_TIME) in log-spaced bins; durations under 1 ms (0 s included) are not "
        "on a log axis: their count is in the table. Quantiles are the upper edge of their bin."
    )
    columns = ["event", "events with a duration", "under 1 ms", "median ≤ (s)", "90 % ≤ (s)", "99 % ≤ (s)"]
    return Plot("durations", title, svg, caption, Table(columns, rows))


def _day(value: int) -> str:
    return str(iso(value))[:10]


#: Tick marks of the duration axis: (seconds, label).
DURATION_TICKS = [(0.001, "1 ms"), (0.01, "10 ms"), (0.1, "0.1 s"), (1, "1 s"), (10, "10 s"), (60, "1 min"),
                  (600, "10 min"), (3600, "1 h"), (6 * 3600, "6 h"), (86400, "1 d"), (10 * 86400, "10 d"),
                  (100 * 86400, "100 d")]  # fmt: skip


def _log_axes(axis: Any) -> None:
    """Log scales labelled in plain text: durations as "10 s", "1 h"; counts as "100", "10k" (matplotlib's
    default log labels go through its TeX-like parser, a second per figure)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator

    axis.set_xscale("log")
    axis.set_yscale("log")
    low, high = axis.get_xlim()
    ticks = [(v, label) for v, label in DURATION_TICKS if low <= v <= high] or DURATION_TICKS[3:6]
    axis.xaxis.set_major_locator(FixedLocator([v for v, _ in ticks]))
    labels = dict(ticks)
    axis.xaxis.set_major_formatter(FuncFormatter(lambda v, _: labels.get(v, "")))
    axis.xaxis.set_minor_locator(NullLocator())  # minor ticks: dozens of artists each, no information
    low, high = axis.get_ylim()
    few = high / max(low, 1e-9) <= 1000  # three decades or less: label 1, 2, 5, 10, 20, …
    axis.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if few else (1.0,)))
    axis.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _count_label(v)))
    axis.yaxis.set_minor_locator(NullLocator())


def _count_label(value: float) -> str:
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def _seconds(value: Optional[float]) -> Any:
    if value is None:
        return ""
    return f"{value:.3g}"


def error_rate(summary: InstanceSummary) -> Plot:
    title = "Error rate over time"
    if not summary.days:
        return _empty("errors", title, "The instance trace has no events with a start time.")
    rates = [e / n * 100 if n else None for e, n in zip(summary.errors_per_day, summary.results_per_day)]
    weekly = len(summary.days) > 60
    with _figure("errors", 3.0, right=LEGEND if weekly else 0.3) as (figure, (axis,)):
        x = _dates(axis, [d + DAY // 2 for d in summary.days])
        pairs = [(a, r) for a, r in zip(x, rates) if r is not None]
        if pairs:
            axis.plot([a for a, _ in pairs], [r for _, r in pairs], color="#e5989b" if weekly else "#c1121f",
                      linewidth=0.7 if weekly else 1.0, marker="." if len(pairs) < 120 else None, markersize=4,
                      label="per day")  # fmt: skip
        if weekly:
            # per week (Monday to Monday): a day's noise averaged out, from the same counts
            weeks: Dict[int, List[int]] = {}
            for day, n, e in zip(summary.days, summary.results_per_day, summary.errors_per_day):
                week = (day - MONDAY) // WEEK * WEEK + MONDAY
                totals = weeks.setdefault(week, [0, 0])
                totals[0] += n
                totals[1] += e
            points = [((w + WEEK / 2) / DAY, e / n * 100) for w, (n, e) in sorted(weeks.items()) if n]
            axis.plot(
                [p for p, _ in points],
                [r for _, r in points],
                color="#9d0208",
                linewidth=1.6,
                label="per week",
            )
            _legend(axis, 2)
        axis.set_ylim(bottom=0)
        axis.set_ylabel("events with RESULT Error (%)")
        axis.set_xlabel("time (UTC, by start time)")
        svg = _svg(figure, "errors", title)
    rows = [
        [_day(d), n, e, f"{r:.2f}" if r is not None else ""]
        for d, n, e, r in zip(summary.days, summary.results_per_day, summary.errors_per_day, rates)
    ]
    rows, note = _limit_rows(rows, "days")
    caption = "Events whose RESULT is Error, among the events with a RESULT (empty results left out)" + (
        ", per day and per week (Monday to Monday)." if weekly else ", per day."
    )
    return Plot(
        "errors",
        title,
        svg,
        caption,
        Table(["day", "events with a result", "errors", "error rate (%)"], rows, note),
    )


def projects(summary: InstanceSummary, n: int = 20) -> Plot:
    title = f"Events per project, top {n}"
    top = summary.top_projects(n)
    if not top:
        return _empty("projects", title, "No events.")
    with _figure("projects", max(2.4, 1.1 + 0.2 * len(top)), left=1.6) as (figure, (axis,)):
        labels = [short(p) if p else "(no project)" for p, _ in top]
        axis.barh(range(len(top)), [c for _, c in top], color="#457b9d")
        axis.set_yticks(range(len(top)))
        axis.set_yticklabels(labels, fontfamily="monospace")
        axis.invert_yaxis()
        axis.grid(axis="y", visible=False)
        axis.set_xlabel("events")
        axis.set_ylabel("project (masked)")
        svg = _svg(figure, "projects", title)
    total = summary.events or 1
    rows = [[i + 1, p or "(no project)", c, f"{c / total * 100:.2f}"] for i, (p, c) in enumerate(top)]
    others = summary.events - sum(c for _, c in top)
    caption = f"{len(summary.projects):,} projects in all" + (
        f"; the others hold {others:,} events." if others else "."
    )
    return Plot("projects", title, svg, caption, Table(["rank", "project", "events", "share (%)"], rows))


# -- both -------------------------------------------------------------------------------------------


def join(summary: JoinSummary) -> Plot:
    title = "Instance events whose host is a host of the machine trace"
    parts = [("joined", summary.joined, "#2a9d8f"), ("host not in the machine trace", summary.unjoined, "#d62728"),
             ("no host", summary.no_host, "#bbbbbb")]  # fmt: skip
    with _figure("join", 1.5, right=3.3, bottom=0.55) as (figure, (axis,)):
        left = 0
        for label, value, color in parts:
            axis.barh([0], [value], left=left, color=color, label=f"{label} ({value:,})", height=0.6)
            left += value
        axis.set_yticks([])
        axis.set_xlim(0, max(left, 1))
        axis.set_xlabel("instance events")
        axis.grid(axis="y", visible=False)
        axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        svg = _svg(figure, "join", title)
    rows = [
        [label, value, f"{value / summary.events * 100:.2f}" if summary.events else ""]
        for label, value, _ in parts
    ]
    caption = {
        "same": "Both traces were masked with the same key (equal fingerprints): every host should join.",
        "different": "The traces were masked with different keys (or methods): hosts cannot join.",
        "unknown": "A manifest is missing: whether the keys match is unknown.",
    }[summary.key]
    return Plot("join", title, svg, caption, Table(["instance events", "count", "share (%)"], rows))


def all_plots(
    machines: Optional[MachineSummary], instances: Optional[InstanceSummary], joined: Optional[JoinSummary]
) -> Dict[str, List[Plot]]:
    """Every plot of the page, by section."""
    sections: Dict[str, List[Plot]] = {}
    if machines is not None:
        sections["machines"] = [hosts_by_state(machines), capacity(machines), machine_events_per_week(machines),
                                host_timeline(machines)]  # fmt: skip
    if instances is not None:
        sections["instances"] = [instances_alive(instances), instance_events_per_day(instances),
                                 durations(instances), error_rate(instances), projects(instances)]  # fmt: skip
    if joined is not None:
        sections["join"] = [join(joined)]
    return sections


__all__ = ["Plot", "Table", "all_plots", "matplotlib_modules", "US"]
