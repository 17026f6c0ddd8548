"""Snapshots and the audit log → one machine trace (SPEC §1.4: stitching).

Both sources give candidates (:mod:`~starcompactor.machines.diff`, :mod:`~starcompactor.machines.audit`);
one state machine (:func:`~starcompactor.machines.diff.refine`) keeps the valid ones, per host. What
makes the result one event per true change, never one from each source:

* every candidate is a *state* (properties, enabled, gone), so a source that sees a change already kept
  adds nothing: the state machine drops repeats;
* a snapshot dates what it sees at the row's own ``updated_at``/``deleted_at`` — the last write, never
  before the change — so a change the log records is met first at the log's exact time;
* and, whatever the clocks say, a snapshot's candidate is dropped when the log records the same change
  (same host, type and, for an UPDATE, properties) in that snapshot's window (:func:`recorded_by_log`);
* the initial state of a record is dated at its CREATE by the source that saw the record first (the
  other source's first sighting is an observation at its own time); a CREATE carries the properties of
  the earliest observation (ties are ordered by observation time).

What only the snapshots see stays: history before the log, cells and tables it does not audit, soft
deletes not archived yet, changes made while the triggers were dropped (an upgrade), columns it does not
watch — each dated in its snapshot window, as without a log.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ..events import MachineEvent
from .diff import LOG, Candidate, Gap, candidate_events, refine, sort_events
from .state import Properties, Snapshot


@dataclass
class Stitched:
    """The events, and how many of them each source gave."""

    events: List[MachineEvent]
    sources: Counter


def recorded_by_log(
    snapshots: Sequence[Snapshot], candidates: Iterable[Candidate], log: Iterable[Candidate]
) -> List[Candidate]:
    """The snapshot candidates whose change the log does not record: a candidate of snapshot k is dropped
    when an exact log candidate of the same host and type (and properties, for an UPDATE) falls in
    snapshot k's window (the previous snapshot's time, snapshot k's time] no later than the candidate —
    the same change, which the snapshot saw late. (From the beginning when the candidate itself is dated
    before the window: an initial state at a CREATE.) A snapshot candidate earlier than the log's is
    another change (a Blazar host soft-deleted before its Ironic node was deleted) and stays; CREATEs
    always stay."""
    exact: Dict[Tuple[str, str], List[Tuple[dt.datetime, Optional[Properties]]]] = {}
    for c in log:
        if c.exact and c.event != "CREATE":
            exact.setdefault((c.host, c.event), []).append((c.time, c.properties))
    for times in exact.values():
        times.sort(key=lambda item: item[0])
    kept = []
    for c in candidates:
        found = exact.get((c.host, c.event)) if c.event != "CREATE" and c.snapshot >= 0 else None
        if found:
            hi = min(snapshots[c.snapshot].time, c.time)
            lo = snapshots[c.snapshot - 1].time if c.snapshot > 0 else None
            if lo is not None and c.time <= lo:
                lo = None
            start = 0 if lo is None else bisect.bisect_right([t for t, _ in found], lo)
            if any(t <= hi and (c.event != "UPDATE" or props == c.properties) for t, props in found[start:]):
                continue
        kept.append(c)
    return kept


def stitched_events(
    snapshots: Sequence[Snapshot],
    log: Sequence[Candidate] = (),
    known: Optional[Dict] = None,
    gaps: Optional[Dict[int, Gap]] = None,
) -> Stitched:
    """The machine events of ``snapshots`` (in order) and the audit log's candidates ``log`` (see
    :func:`~starcompactor.machines.audit.log_candidates`; ``known`` its records seen first)."""
    from_snapshots = candidate_events(snapshots, gaps, known) if snapshots else []
    if log:
        from_snapshots = recorded_by_log(snapshots, from_snapshots, log)
    seen = set()
    merged: List[Candidate] = []
    for c in list(log) + from_snapshots:  # the log's first: of two equal candidates, the log's stays
        key = (c.time, c.host, c.event, c.properties)
        if key not in seen:
            seen.add(key)
            merged.append(c)
    sources: Counter = Counter()
    events = sort_events(refine(merged, sources))
    return Stitched(events, Counter({LOG: sources[LOG], "snapshots": sources["snapshots"]}))
