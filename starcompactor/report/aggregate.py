"""Traces → the numbers behind every plot of the report, aggregated while reading.

Times are integers here: microseconds since 1970-01-01 (naive UTC, as the traces write them).

Machines (small: one row per host change) are replayed per host into *segments* — spans of time in
one state (``enabled``, ``disabled`` i.e. created but not enabled / in maintenance, ``deleted``) with
the host's properties — from which counts at any instant follow. Instances (tens of millions of rows)
are counted a pyarrow table at a time with numpy: per day and event type, per duration bin, per
project, per host; each instance keeps three numbers (a creation step seen, first successful build,
first successful terminate), so memory grows with instances, not events.

When an instance is alive (SPEC §1.3 events): from the finish of its first successful
``compute__do_build_and_run_instance`` to the finish of its first successful
``compute_terminate_instance``. An instance with no creation step in the trace (no build, no scheduling)
was there before the trace began: alive from the trace's first event. One whose creation steps all
failed was never alive.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from .read import MachineRecord, arrow, iso

US = 1_000_000
HOUR = 3600 * US
DAY = 24 * HOUR
WEEK = 7 * DAY
MONDAY = 4 * DAY  #: 1970-01-05, a Monday: weeks start on Mondays (ISO)
#: Grid steps for series over time: the finest giving at most MAX_POINTS instants.
STEPS = (HOUR, 6 * HOUR, DAY, WEEK)
MAX_POINTS = 1500
NEVER = (1 << 63) - 1  #: "no such time" in int64 arrays
NO_TIME = -(1 << 63)
#: Times further apart than this are not a trace's (a year 1 or 9999 typed by hand): refused.
MAX_SPAN = 100 * 366 * DAY

BUILD = "compute__do_build_and_run_instance"
TERMINATE = "compute_terminate_instance"
#: Events that show an instance was created within the trace (its build, and Nova's scheduling of it).
CREATION_STEPS = frozenset({BUILD, "conductor_schedule_and_build_instances", "conductor_build_instances"})

#: Duration histogram: bin 0 holds durations under 1 ms (0 s included); then PER_DECADE bins a decade
#: from 1 ms to 10^7 s (115 days); the last bin holds anything longer.
PER_DECADE = 5
LOW_EXP = -3
HIGH_EXP = 7
DURATION_BINS = 1 + (HIGH_EXP - LOW_EXP) * PER_DECADE + 1

STATES = ("enabled", "disabled", "deleted")
NO_RACK = "(no rack)"
VM_CAPACITY = (("vcpu_capability", "vcpus"), ("memory_capability_mb", "memory_mb"),
               ("disk_capability_gb", "disk_gb"))  # fmt: skip


def duration_edges() -> List[float]:
    """Lower edges (seconds) of the duration bins: 0, then 10^-3, 10^-2.8, …, 10^7."""
    steps = (HIGH_EXP - LOW_EXP) * PER_DECADE
    return [0.0] + [10 ** (LOW_EXP + k / PER_DECADE) for k in range(steps + 1)]


def natural_key(value: Any) -> Tuple[Any, ...]:
    """Sort key putting numbers in numeric order ('2' < '10'), missing values last."""
    if value is None or value == NO_RACK:
        return (2, ())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, ((0, value, ""),))
    parts = re.split(r"(\d+)", str(value))
    return (1, tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts if p))


def time_grid(first: int, last: int, max_points: int = MAX_POINTS) -> Tuple[int, List[int]]:
    """(step, instants) from ``first`` rounded down to ``last`` rounded up, at the finest of
    :data:`STEPS` that gives at most ``max_points`` instants (weeks start on Mondays)."""
    for step in STEPS:
        origin = MONDAY if step == WEEK else 0
        start = (first - origin) // step * step + origin
        end = -((origin - last) // step) * step + origin
        count = (end - start) // step + 1
        if count <= max_points or step == STEPS[-1]:
            return step, list(range(start, end + 1, step))
    raise AssertionError("unreachable")


def check_span(first: Optional[int], last: Optional[int], what: str) -> None:
    if first is not None and last is not None and last - first > MAX_SPAN:
        from .read import TraceReadError

        raise TraceReadError(what, f"times from {iso(first)} to {iso(last)}: more than 100 years apart")


# -- machines ---------------------------------------------------------------------------------------


@dataclass
class Segment:
    """A span of one host's life in one state with one set of properties; ``end`` None: still so."""

    start: int
    end: Optional[int]
    state: str
    properties: Dict[str, Any]


@dataclass
class HostHistory:
    host: str
    segments: List[Segment] = field(default_factory=list)
    created: Optional[int] = None
    recreated: int = 0

    def state_at(self, time: int) -> Optional[Segment]:
        for segment in self.segments:
            if segment.start <= time and (segment.end is None or time < segment.end):
                return segment
        return None


@dataclass
class MachineSummary:
    """Everything the machine plots show, and queries for any instant."""

    site: str  #: "vm" or "baremetal"
    rack_key: Optional[str]
    hosts: Dict[str, HostHistory]
    events: int
    counts: Dict[str, int]
    first: Optional[int]
    last: Optional[int]
    end: Optional[int]  #: the end of the period plotted (last event, or the last snapshot after it)
    anomalies: List[str]
    grid_step: int = DAY
    grid: List[int] = field(default_factory=list)
    by_state: Dict[str, Dict[str, List[int]]] = field(default_factory=dict)  #: state → rack → counts
    capacity: Dict[str, List[float]] = field(default_factory=dict)
    node_types: Dict[str, List[int]] = field(default_factory=dict)
    weeks: List[int] = field(default_factory=list)
    per_week: Dict[str, List[int]] = field(default_factory=dict)
    timeline: List[HostHistory] = field(default_factory=list)

    def rack_of(self, properties: Dict[str, Any]) -> str:
        if self.rack_key is None:
            return NO_RACK
        value = properties.get(self.rack_key)
        return NO_RACK if value is None or value == "" else str(value)

    def hosts_at(self, time: int) -> Dict[str, int]:
        """How many hosts are in each state at ``time`` (exact, from the segments)."""
        counts = dict.fromkeys(STATES, 0)
        for history in self.hosts.values():
            segment = history.state_at(time)
            if segment is not None:
                counts[segment.state] += 1
        return counts

    def racks_at(self, time: int) -> Dict[Tuple[str, str], int]:
        """(state, rack) → hosts at ``time``, enabled and disabled hosts only."""
        counts: Counter[Tuple[str, str]] = Counter()
        for history in self.hosts.values():
            segment = history.state_at(time)
            if segment is not None and segment.state != "deleted":
                counts[(segment.state, self.rack_of(segment.properties))] += 1
        return dict(counts)

    def capacity_at(self, time: int, *, enabled_only: bool = False) -> Dict[str, float]:
        totals = {name: 0.0 for _, name in VM_CAPACITY}
        for history in self.hosts.values():
            segment = history.state_at(time)
            if segment is None or segment.state == "deleted":
                continue
            if enabled_only and segment.state != "enabled":
                continue
            for key, name in VM_CAPACITY:
                totals[name] += _number(segment.properties.get(key))
        return totals

    @property
    def racks(self) -> List[str]:
        names = {rack for by_rack in self.by_state.values() for rack in by_rack}
        return sorted(names, key=natural_key)

    @property
    def recreated_hosts(self) -> List[str]:
        return [h.host for h in self.hosts.values() if h.recreated]

    def vanished_racks(self) -> List[Tuple[str, int]]:
        """Racks that had hosts and have none at the end of the period: (rack, last instant with hosts)."""
        out = []
        for rack in self.racks:
            alive = [
                sum(values)
                for values in zip(
                    *(self.by_state[s].get(rack, [0] * len(self.grid)) for s in ("enabled", "disabled"))
                )
            ]
            if any(alive) and alive[-1] == 0:
                last = max(i for i, n in enumerate(alive) if n)
                out.append((rack, self.grid[last]))
        return out

    def empty_weeks(self) -> List[int]:
        totals = [sum(values) for values in zip(*self.per_week.values())] if self.per_week else []
        return [week for week, total in zip(self.weeks, totals) if total == 0]

    def to_json(self) -> Dict[str, Any]:
        return {
            "site": self.site,
            "rack_key": self.rack_key,
            "events": self.events,
            "counts": dict(sorted(self.counts.items())),
            "hosts": len(self.hosts),
            "time_range": {"first": iso(self.first), "last": iso(self.last), "end": iso(self.end)},
            "hosts_over_time": {
                "step_seconds": self.grid_step // US,
                "times": [iso(t) for t in self.grid],
                "by_state": {state: dict(racks) for state, racks in self.by_state.items()},
            },
            "capacity_over_time": {"times": [iso(t) for t in self.grid], **self.capacity}
            if self.capacity
            else {"times": [iso(t) for t in self.grid], "node_type": self.node_types},
            "events_per_week": {"weeks": [iso(t) for t in self.weeks], "counts": self.per_week},
            "timeline": {
                "shown": len(self.timeline),
                "hosts": len(self.hosts),
                "rows": [
                    {
                        "host": h.host,
                        "rack": self.rack_of(h.segments[0].properties) if h.segments else NO_RACK,
                        "segments": [[iso(s.start), iso(s.end), s.state] for s in h.segments],
                    }
                    for h in self.timeline
                ],
            },
            "recreated_hosts": self.recreated_hosts,
            "vanished_racks": [{"rack": r, "last_seen": iso(t)} for r, t in self.vanished_racks()],
            "anomalies": self.anomalies,
        }


def _number(value: Any) -> float:
    if isinstance(value, bool) or value is None:
        return 0.0
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


_ORDER = {"CREATE": 0, "DELETE": 1, "DISABLE": 2, "ENABLE": 3, "UPDATE": 4}


def guess_rack_key(records: Sequence[MachineRecord]) -> Optional[str]:
    """The property naming a host's rack: ``rack`` (vm), else one named like ``placement.rack``."""
    keys: Counter[str] = Counter()
    for record in records:
        keys.update(list(record.properties))
    if "rack" in keys:
        return "rack"
    candidates = sorted((k for k in keys if k.lower().endswith("rack")), key=lambda k: (-keys[k], k))
    return candidates[0] if candidates else None


def guess_site(records: Sequence[MachineRecord], manifest: Optional[Dict[str, Any]]) -> str:
    said = (manifest or {}).get("instance_type")
    if said in ("vm", "baremetal"):
        return str(said)
    return "vm" if any("vcpu_capability" in r.properties for r in records) else "baremetal"


def aggregate_machines(
    records: Iterable[MachineRecord], *, manifest: Optional[Dict[str, Any]] = None,
    rack_key: Optional[str] = None, max_hosts: int = 300, max_points: int = MAX_POINTS,
) -> MachineSummary:  # fmt: skip
    """Replay a machine trace per host (SPEC §2 state machine) into segments, then count on a grid."""
    rows = sorted(records, key=lambda r: (r.time, r.host, _ORDER.get(r.event, 9)))
    site = guess_site(rows, manifest)
    rack = rack_key if rack_key is not None else guess_rack_key(rows)
    hosts: Dict[str, HostHistory] = {}
    anomalies: List[str] = []
    counts: Counter[str] = Counter()
    weeks: Counter[Tuple[int, str]] = Counter()
    for record in rows:
        counts[record.event] += 1
        weeks[((record.time - MONDAY) // WEEK * WEEK + MONDAY, record.event)] += 1
        history = hosts.setdefault(record.host, HostHistory(record.host))
        problem = _apply(history, record)
        if problem:
            anomalies.append(f"{iso(record.time)} {record.host[:12]}: {problem}")
    first = rows[0].time if rows else None
    last = rows[-1].time if rows else None
    check_span(first, last, "machine trace")
    end = last
    snapshot_times = [
        i.get("snapshot_time") for i in (manifest or {}).get("inputs", []) or [] if isinstance(i, dict)
    ]
    from .read import parse_iso

    for text in snapshot_times:
        try:
            value = parse_iso(text)
        except ValueError:
            continue
        if end is not None and value > end and value - end < 400 * DAY:
            end = value
    summary = MachineSummary(site, rack, hosts, len(rows), dict(counts), first, last, end, anomalies)
    if first is None or end is None:
        return summary
    summary.grid_step, summary.grid = time_grid(first, end, max_points)
    _count_on_grid(summary)
    all_weeks = sorted({w for w, _ in weeks})
    summary.weeks = list(range(all_weeks[0], all_weeks[-1] + WEEK, WEEK))
    events = sorted(counts, key=lambda e: (_ORDER.get(e, 9), e))
    summary.per_week = {e: [weeks.get((w, e), 0) for w in summary.weeks] for e in events}
    ordered = sorted(
        hosts.values(),
        key=lambda h: (natural_key(summary.rack_of(h.segments[0].properties) if h.segments else NO_RACK),
                       h.created if h.created is not None else NEVER, h.host),
    )  # fmt: skip
    summary.timeline = ordered[:max_hosts]
    return summary


def _apply(history: HostHistory, record: MachineRecord) -> Optional[str]:
    """One event on a host's history; returns what is wrong with it, if anything."""
    current = history.segments[-1] if history.segments else None
    state = current.state if current else None
    properties = current.properties if current else {}
    event = record.event
    if event == "CREATE":
        if state in ("enabled", "disabled"):
            return "CREATE of a host that exists"
        if state == "deleted":
            history.recreated += 1
        if history.created is None:
            history.created = record.time
        new_state, new_properties = "disabled", record.properties
    elif event in ("ENABLE", "DISABLE"):
        if state not in ("enabled", "disabled"):
            return f"{event} of a host that does not exist"
        new_state = "enabled" if event == "ENABLE" else "disabled"
        new_properties = record.properties or properties
    elif event == "UPDATE":
        if state not in ("enabled", "disabled"):
            return "UPDATE of a host that does not exist"
        new_state, new_properties = state, record.properties or properties
    elif event == "DELETE":
        if state not in ("enabled", "disabled"):
            return "DELETE of a host that does not exist"
        new_state, new_properties = "deleted", properties
    else:
        return f"unknown event {event!r}"
    if current is not None and new_state == state and new_properties == properties:
        return None
    if current is not None:
        current.end = record.time
        if current.end == current.start:
            history.segments.pop()  # two changes at one instant: only the last one lasts
    history.segments.append(Segment(record.time, None, new_state, new_properties))
    return None


def _count_on_grid(summary: MachineSummary) -> None:
    import numpy as np

    grid = np.asarray(summary.grid, dtype=np.int64)
    n = len(grid)
    by_state: Dict[str, Dict[str, Any]] = {"enabled": {}, "disabled": {}}
    capacity = {f"{name}_{which}": np.zeros(n) for _, name in VM_CAPACITY for which in ("alive", "enabled")}
    node_types: Dict[str, Any] = {}
    for history in summary.hosts.values():
        for segment in history.segments:
            if segment.state == "deleted":
                continue
            lo = int(np.searchsorted(grid, segment.start, "left"))
            hi = n if segment.end is None else int(np.searchsorted(grid, segment.end, "left"))
            if lo >= hi:
                continue
            rack = summary.rack_of(segment.properties)
            series = by_state[segment.state].setdefault(rack, np.zeros(n, np.int64))
            series[lo:hi] += 1
            if summary.site == "vm":
                for key, name in VM_CAPACITY:
                    value = _number(segment.properties.get(key))
                    capacity[f"{name}_alive"][lo:hi] += value
                    if segment.state == "enabled":
                        capacity[f"{name}_enabled"][lo:hi] += value
            else:
                kind = segment.properties.get("node_type")
                label = "(no node_type)" if kind in (None, "") else str(kind)
                node_types.setdefault(label, np.zeros(n, np.int64))[lo:hi] += 1
    summary.by_state = {
        state: {rack: [int(v) for v in racks[rack]] for rack in sorted(racks, key=natural_key)}
        for state, racks in by_state.items()
    }
    if summary.site == "vm":
        summary.capacity = {name: [_plain(v) for v in values] for name, values in capacity.items()}
    else:
        summary.node_types = {k: [int(v) for v in node_types[k]] for k in sorted(node_types, key=natural_key)}


def _plain(value: float) -> Any:
    return int(value) if float(value).is_integer() else float(value)


# -- instances --------------------------------------------------------------------------------------

INSTANCE_READ = (
    "INSTANCE_UUID", "EVENT", "START_TIME", "FINISH_TIME", "EVENT_DURATION", "RESULT", "PROJECT_ID",
    "HOST_NAME (PHYSICAL)",
)  # fmt: skip


class _Buckets:
    """Counts per (integer bucket, category), in a numpy array grown as buckets and categories appear."""

    def __init__(self) -> None:
        import numpy as np

        self.np = np
        self.origin = 0
        self.data = np.zeros((0, 0), np.int64)

    def add(self, buckets: Any, codes: Any, categories: int, weights: Any = None) -> None:
        np = self.np
        self._fit(categories, buckets)
        if not len(buckets):
            return
        rows, cols = self.data.shape
        flat = (buckets - self.origin) * cols + codes
        counted = np.bincount(flat, weights=weights, minlength=rows * cols)
        self.data += counted.astype(np.int64).reshape(rows, cols)

    def _fit(self, categories: int, buckets: Any) -> None:
        np = self.np
        rows, cols = self.data.shape
        lo, hi = (int(buckets.min()), int(buckets.max())) if len(buckets) else (self.origin, self.origin - 1)
        if rows:
            lo, hi = min(lo, self.origin), max(hi, self.origin + rows - 1)
        elif not len(buckets):
            lo, hi = 0, -1
        new_rows = hi - lo + 1
        new_cols = max(cols, categories)
        if (new_rows, new_cols) == (rows, cols) and lo == self.origin:
            return
        data = np.zeros((max(new_rows, 0), new_cols), np.int64)
        if rows:
            data[self.origin - lo : self.origin - lo + rows, :cols] = self.data
        self.origin = lo if new_rows > 0 else self.origin
        self.data = data

    def column(self, category: int, origin: int, rows: int) -> List[int]:
        """One category's counts for the buckets ``origin`` … ``origin + rows - 1`` (zeros where none)."""
        out = [0] * rows
        data = self.data
        if category < data.shape[1]:
            for i, value in enumerate(data[:, category].tolist()):
                j = self.origin + i - origin
                if 0 <= j < rows:
                    out[j] = value
        return out


@dataclass
class InstanceSummary:
    """Everything the instance plots show; :meth:`alive_at` answers for any instant."""

    events: int
    first: Optional[int]
    last: Optional[int]
    event_names: List[str]  #: by total count, most first
    counts: Dict[str, int]
    no_start: int
    unfinished: int
    negative_durations: int
    results: Dict[str, int]
    days: List[int]
    per_day: Dict[str, List[int]]
    errors_per_day: List[int]
    results_per_day: List[int]
    duration_edges: List[float]
    durations: Dict[str, List[int]]
    projects: Dict[str, int]
    hosts: Dict[str, int]
    instances: int
    built: int
    failed_builds: int
    alive_at_start: int
    deleted: int
    grid_step: int
    grid: List[int]
    alive: List[int]
    births: Any = None  #: sorted numpy array of the times instances became alive
    deaths: Any = None  #: sorted numpy array of the times alive instances were deleted

    def alive_at(self, time: int) -> int:
        """Instances alive at ``time`` (one born at ``time`` counts; one deleted at ``time`` does not)."""
        if self.births is None:
            return 0
        np_ = _numpy()
        born = int(np_.searchsorted(self.births, time, "right"))
        gone = int(np_.searchsorted(self.deaths, time, "right"))
        return born - gone

    def top_projects(self, n: int = 20) -> List[Tuple[str, int]]:
        return sorted(self.projects.items(), key=lambda kv: (-kv[1], kv[0]))[:n]

    def empty_weeks(self) -> List[int]:
        """Weeks (Monday 00:00) inside the trace's range without a single event."""
        if not self.days:
            return []
        totals: Counter[int] = Counter()
        for i, day in enumerate(self.days):
            week = (day - MONDAY) // WEEK * WEEK + MONDAY
            totals[week] += sum(series[i] for series in self.per_day.values())
        weeks = sorted(totals)
        return [w for w in range(weeks[0], weeks[-1] + WEEK, WEEK) if totals.get(w, 0) == 0]

    def quantile(self, event: str, q: float) -> Optional[float]:
        """The upper edge of the duration bin holding the ``q`` quantile (an upper bound)."""
        bins = self.durations.get(event)
        if not bins or not sum(bins):
            return None
        target = q * sum(bins)
        edges = self.duration_edges
        running = 0
        for i, n in enumerate(bins):
            running += n
            if running >= target:
                return edges[i + 1] if i + 1 < len(edges) else float("inf")
        return None

    def to_json(self) -> Dict[str, Any]:
        with_result = self.results_per_day
        return {
            "events": self.events,
            "time_range": {"first": iso(self.first), "last": iso(self.last)},
            "counts": dict(sorted(self.counts.items())),
            "results": dict(sorted(self.results.items())),
            "no_start_time": self.no_start,
            "unfinished": self.unfinished,
            "negative_durations": self.negative_durations,
            "instances": {
                "seen": self.instances,
                "built_in_trace": self.built,
                "failed_builds": self.failed_builds,
                "alive_at_start": self.alive_at_start,
                "deleted": self.deleted,
            },  # fmt: skip
            "alive_over_time": {
                "step_seconds": self.grid_step // US,
                "times": [iso(t) for t in self.grid],
                "alive": self.alive,
            },  # fmt: skip
            "events_per_day": {"days": [str(iso(d))[:10] for d in self.days], "counts": self.per_day},
            "errors_per_day": {
                "days": [str(iso(d))[:10] for d in self.days],
                "errors": self.errors_per_day,
                "with_result": with_result,
                "rate": [e / n if n else None for e, n in zip(self.errors_per_day, with_result)],
            },
            "durations": {"bin_lower_edges_seconds": self.duration_edges, "counts": self.durations},
            "projects": {"distinct": len(self.projects), "top": [[p, n] for p, n in self.top_projects(20)]},
            "hosts": {"distinct": len(self.hosts)},
        }


def _numpy() -> Any:
    import numpy

    return numpy


class InstanceAggregator:
    """Counts an instance trace a pyarrow table at a time (see :mod:`~starcompactor.report.read`)."""

    columns = INSTANCE_READ

    def __init__(self, group_rows: int = 1 << 20, max_points: int = MAX_POINTS) -> None:
        import numpy as np

        self.np = np
        self.pa = arrow()
        import pyarrow.compute as pc

        self.pc = pc
        self.group_rows = group_rows
        self.max_points = max_points
        self.names: List[str] = []
        self.codes: Dict[str, int] = {}
        self.per_day = _Buckets()
        self.results_day = _Buckets()  # column 0: events with a result, 1: errors
        self.durations = np.zeros((0, DURATION_BINS), np.int64)
        self.projects: Counter[str] = Counter()
        self.hosts: Counter[str] = Counter()
        self.results: Counter[str] = Counter()
        self.events = self.no_start = self.unfinished = self.negative = 0
        self.totals = np.zeros(0, np.int64)
        self.first: Optional[int] = None
        self.last: Optional[int] = None
        # per instance (by position in ``known``): a creation step seen, first successful build, first
        # successful terminate; rows wait in ``pending`` to be matched to instances a group at a time
        self.known: Any = None
        self.created = np.zeros(0, bool)
        self.built = np.zeros(0, np.int64)
        self.gone = np.zeros(0, np.int64)
        self.pending: List[Tuple[Any, ...]] = []
        self.pending_rows = 0

    # -- per table

    def add(self, table: Any) -> None:
        np, pc = self.np, self.pc
        n = table.num_rows
        if not n:
            return
        self.events += n
        codes = self._event_codes(table.column("EVENT"))
        counted = np.bincount(codes, minlength=len(self.names))
        if len(self.totals) < len(counted):
            self.totals = np.concatenate([self.totals, np.zeros(len(counted) - len(self.totals), np.int64)])
        self.totals[: len(counted)] += counted
        start = self._times(table.column("START_TIME"))
        finish = self._times(table.column("FINISH_TIME"))
        has_start = start != NO_TIME
        self.no_start += int(n - has_start.sum())
        self.unfinished += int((finish == NO_TIME).sum())
        if has_start.any():
            valid = start[has_start]
            lo, hi = int(valid.min()), int(valid.max())
            self.first = lo if self.first is None else min(self.first, lo)
            self.last = hi if self.last is None else max(self.last, hi)
            check_span(self.first, self.last, "instance trace")
        days = start[has_start] // DAY
        categories = len(self.names)
        self.per_day.add(days, codes[has_start], categories)
        # results: counts, and per day the events with a result and the errors
        result = table.column("RESULT")
        self._count_strings(result, self.results, missing="(none)")
        is_error = self._is(result, "Error")
        is_success = self._is(result, "Success")
        has_result = pc.is_valid(result).to_numpy(zero_copy_only=False)
        both = np.concatenate(
            [np.zeros(int(has_start.sum()), np.int64), np.ones(int(has_start.sum()), np.int64)]
        )
        weights = np.concatenate([has_result[has_start], is_error[has_start]]).astype(np.float64)
        self.results_day.add(np.concatenate([days, days]), both, 2, weights)
        self._durations(table.column("EVENT_DURATION"), codes)
        self._count_strings(table.column("PROJECT_ID"), self.projects)
        self._count_strings(table.column("HOST_NAME (PHYSICAL)"), self.hosts)
        # per instance
        done = np.where(finish != NO_TIME, finish, start)
        creation = self._lut(lambda name: name in CREATION_STEPS)[codes]
        build_ok = (codes == self.codes.get(BUILD, -1)) & is_success & (done != NO_TIME)
        gone_ok = (codes == self.codes.get(TERMINATE, -1)) & is_success & (done != NO_TIME)
        offset = self.pending_rows
        build_rows, gone_rows = np.flatnonzero(build_ok), np.flatnonzero(gone_ok)
        self.pending.append((
            pc.fill_null(table.column("INSTANCE_UUID"), ""), np.flatnonzero(creation) + offset,
            build_rows + offset, done[build_rows], gone_rows + offset, done[gone_rows],
        ))  # fmt: skip
        self.pending_rows += n
        if self.pending_rows >= self.group_rows:
            self._flush()

    def _event_codes(self, column: Any) -> Any:
        np, pc = self.np, self.pc
        encoded = pc.dictionary_encode(column.combine_chunks())
        names = encoded.dictionary.to_pylist()
        lut = np.array([self._code(name) for name in names] + [self._code("(no event)")], np.int64)
        index = pc.fill_null(encoded.indices, len(names)).to_numpy(zero_copy_only=False)
        return lut[index]

    def _code(self, name: str) -> int:
        code = self.codes.get(name)
        if code is None:
            code = self.codes[name] = len(self.names)
            self.names.append(name)
        return code

    def _lut(self, test: Any) -> Any:
        return self.np.array([bool(test(name)) for name in self.names], bool)

    def _times(self, column: Any) -> Any:
        pa, pc = self.pa, self.pc
        return pc.fill_null(column.cast(pa.int64()), NO_TIME).to_numpy()

    def _durations(self, column: Any, codes: Any) -> Any:
        np = self.np
        values = column.to_numpy()
        finite = ~np.isnan(values)
        self.negative += int((values[finite] < 0).sum())
        keep = finite & (values >= 0)
        values, kinds = values[keep], codes[keep]
        bins = np.zeros(len(values), np.int64)
        positive = values >= 10.0**LOW_EXP
        with np.errstate(divide="ignore"):
            scaled = np.floor((np.log10(values[positive]) - LOW_EXP) * PER_DECADE + 1e-9).astype(np.int64)
        bins[positive] = np.clip(scaled + 1, 1, DURATION_BINS - 1)
        categories = len(self.names)
        if self.durations.shape[0] < categories:
            grown = np.zeros((categories, DURATION_BINS), np.int64)
            grown[: self.durations.shape[0]] = self.durations
            self.durations = grown
        counted = np.bincount(kinds * DURATION_BINS + bins, minlength=categories * DURATION_BINS)
        self.durations += counted.reshape(categories, DURATION_BINS)

    def _count_strings(self, column: Any, counter: Counter[str], missing: str = "") -> None:
        """Count each value (one hash pass in pyarrow; a Python step per distinct value only)."""
        counts = self.pc.value_counts(column)
        for value, count in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist()):
            counter[missing if value is None else value] += count

    def _is(self, column: Any, value: str) -> Any:
        """A boolean numpy array: the column equals ``value`` (missing: False)."""
        pc = self.pc
        return pc.fill_null(pc.equal(column, value), False).to_numpy(zero_copy_only=False)

    def _flush(self) -> None:
        """Fold the pending rows into the per-instance arrays: one hash pass over known + new uuids
        (a dictionary encoding keeps the known ones' order, so their positions stay theirs)."""
        if not self.pending:
            return
        np, pa, pc = self.np, self.pa, self.pc
        chunks = [c for item in self.pending for c in item[0].chunks]
        before = [self.known] if self.known is not None and len(self.known) else []
        encoded = pc.dictionary_encode(pa.chunked_array(before + chunks, type=pa.string()))
        self.known = encoded.chunk(encoded.num_chunks - 1).dictionary
        ids = np.concatenate(
            [c.indices.to_numpy(zero_copy_only=False) for c in encoded.chunks[len(before) :]]
        )
        size = len(self.known)
        if size > len(self.created):
            grow = size - len(self.created)
            self.created = np.concatenate([self.created, np.zeros(grow, bool)])
            self.built = np.concatenate([self.built, np.full(grow, NEVER, np.int64)])
            self.gone = np.concatenate([self.gone, np.full(grow, NEVER, np.int64)])
        creation, build_rows, build_times, gone_rows, gone_times = (
            np.concatenate([item[k] for item in self.pending]) for k in range(1, 6)
        )
        self.created[ids[creation]] = True
        np.minimum.at(self.built, ids[build_rows], build_times)
        np.minimum.at(self.gone, ids[gone_rows], gone_times)
        self.pending = []
        self.pending_rows = 0

    # -- at the end

    def finish(self) -> InstanceSummary:
        np = self.np
        self._flush()
        totals = self.totals
        order = sorted(
            (c for c in range(len(self.names)) if totals[c]), key=lambda c: (-int(totals[c]), self.names[c])
        )
        names = [self.names[c] for c in order]
        counts = {self.names[c]: int(totals[c]) for c in order}
        data = self.per_day.data
        days = [(self.per_day.origin + i) * DAY for i in range(data.shape[0])]
        per_day = {
            self.names[c]: data[:, c].tolist() for c in order if c < data.shape[1] and data[:, c].any()
        }
        with_result = self.results_day.column(0, self.per_day.origin, len(days))
        errors = self.results_day.column(1, self.per_day.origin, len(days))
        durations = {
            self.names[c]: self.durations[c].tolist()
            for c in order
            if c < self.durations.shape[0] and self.durations[c].any()
        }
        # alive instances
        created, built, gone = self.created, self.built, self.gone
        before = ~created
        ok = created & (built != NEVER)
        alive = before | ok
        start = self.first if self.first is not None else 0
        birth = np.where(before, start, built)[alive]
        death = np.maximum(gone[alive], birth)
        deleted = death != NEVER
        births = np.sort(birth)
        deaths = np.sort(death[deleted])
        if self.first is not None and self.last is not None:
            step, grid = time_grid(self.first, self.last, self.max_points)
        else:
            step, grid = DAY, []
        grid_array = np.asarray(grid, np.int64)
        alive_series = (
            np.searchsorted(births, grid_array, "right") - np.searchsorted(deaths, grid_array, "right")
        ).tolist()
        return InstanceSummary(
            events=self.events, first=self.first, last=self.last, event_names=names, counts=counts,
            no_start=self.no_start, unfinished=self.unfinished, negative_durations=self.negative,
            results=dict(self.results), days=days, per_day=per_day, errors_per_day=errors,
            results_per_day=with_result, duration_edges=duration_edges(), durations=durations,
            projects=dict(self.projects), hosts=dict(self.hosts), instances=len(created),
            built=int(ok.sum()), failed_builds=int((created & ~ok).sum()), alive_at_start=int(before.sum()),
            deleted=int(deleted.sum()), grid_step=step, grid=grid, alive=alive_series, births=births,
            deaths=deaths,
        )  # fmt: skip


def aggregate_instances(tables: Iterable[Any], **kwargs: Any) -> InstanceSummary:
    aggregator = InstanceAggregator(**kwargs)
    for table in tables:
        aggregator.add(table)
    return aggregator.finish()


# -- both -------------------------------------------------------------------------------------------


@dataclass
class JoinSummary:
    """How many instance events' hosts are hosts of the machine trace, and what the keys say."""

    events: int
    joined: int
    unjoined: int
    no_host: int
    hosts: int
    hosts_joined: int
    machine_hosts: int
    machine_hosts_used: int
    key: str  #: "same", "different" or "unknown"
    fingerprints: Tuple[Optional[str], Optional[str]]
    methods: Tuple[Optional[str], Optional[str]]
    unjoined_top: List[Tuple[str, int]]

    def to_json(self) -> Dict[str, Any]:
        return {
            "instance_events": self.events, "joined": self.joined, "not_joined": self.unjoined,
            "no_host": self.no_host, "instance_hosts": self.hosts, "instance_hosts_joined": self.hosts_joined,
            "machine_hosts": self.machine_hosts, "machine_hosts_with_instance_events": self.machine_hosts_used,
            "masking_key": self.key,
            "key_fingerprints": {"machine": self.fingerprints[0], "instance": self.fingerprints[1]},
            "masking_methods": {"machine": self.methods[0], "instance": self.methods[1]},
            "not_joined_top": [[h, n] for h, n in self.unjoined_top],
        }  # fmt: skip


def join_traces(
    machines: MachineSummary, instances: InstanceSummary, machine_manifest: Optional[Dict[str, Any]],
    instance_manifest: Optional[Dict[str, Any]],
) -> JoinSummary:  # fmt: skip
    known = set(machines.hosts)
    joined = unjoined = no_host = hosts_joined = 0
    missing: List[Tuple[str, int]] = []
    for host, count in instances.hosts.items():
        if not host:
            no_host += count
        elif host in known:
            joined += count
            hosts_joined += 1
        else:
            unjoined += count
            missing.append((host, count))
    masks = [(m or {}).get("masking") or {} for m in (machine_manifest, instance_manifest)]
    prints = (masks[0].get("key_fingerprint"), masks[1].get("key_fingerprint"))
    methods = (masks[0].get("method"), masks[1].get("method"))
    if machine_manifest is None or instance_manifest is None:
        key = "unknown"
    elif methods[0] == methods[1] and prints[0] == prints[1]:
        key = "same"
    else:
        key = "different"
    missing.sort(key=lambda kv: (-kv[1], kv[0]))
    return JoinSummary(
        events=instances.events, joined=joined, unjoined=unjoined, no_host=no_host,
        hosts=len([h for h in instances.hosts if h]), hosts_joined=hosts_joined, machine_hosts=len(known),
        machine_hosts_used=len(known & set(instances.hosts)), key=key, fingerprints=prints, methods=methods,
        unjoined_top=missing[:10],
    )  # fmt: skip
