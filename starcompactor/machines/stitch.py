"""Snapshots and the audit log → one machine trace (SPEC §1.4: stitching).

Both sources give candidates (:mod:`~starcompactor.machines.diff`, :mod:`~starcompactor.machines.audit`);
one state machine (:func:`~starcompactor.machines.diff.refine`) keeps the valid ones, per host. What
makes the result one event per true change, never one from each source:

* every candidate is a *state* (properties, enabled, gone), so a source that sees a change already kept
  adds nothing: the state machine drops repeats;
* a snapshot dates what it sees at the row's own ``updated_at``/``deleted_at`` — the last write, never
  before the change — so a change the log records is met first at the log's exact time;
* and, whatever the clocks say, a snapshot's candidate is dropped when the log's latest record in that
  snapshot's window, up to the candidate, already says the same (:func:`recorded_by_log`);
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
from .state import Snapshot


@dataclass
class Stitched:
    """The events, and how many of them each source gave."""

    events: List[MachineEvent]
    sources: Counter


#: How far a snapshot's time for a change may run ahead of the log's for the same change: the services
#: write ``updated_at`` with their own clocks, the triggers with the database server's.
SKEW = dt.timedelta(minutes=2)

#: What a candidate tells of its host: whether it exists, its status, its properties.
ASPECT = {"CREATE": "exists", "DELETE": "exists", "ENABLE": "status", "DISABLE": "status", "UPDATE": "props"}


def recorded_by_log(
    snapshots: Sequence[Snapshot], candidates: Iterable[Candidate], log: Iterable[Candidate]
) -> List[Candidate]:
    """The snapshot candidates whose state the log does not already record.

    A candidate of snapshot k (time t) is dropped when, among the log's exact candidates of the same host
    and aspect (existence, status, properties) in snapshot k's window up to t (plus :data:`SKEW`) — (the
    previous snapshot's time, t]; from the beginning for a candidate dated before the window, an initial
    state at a CREATE — the latest says the same (same type; same properties for an UPDATE): the snapshot
    saw a change the log dates, late or by another clock. When the latest says otherwise the snapshot saw
    a change the log missed (its triggers were dropped), and it stays. CREATEs always stay (ties go to
    the earliest observation).
    """
    exact: Dict[Tuple[str, str], List[Tuple[dt.datetime, Candidate]]] = {}
    items: Optional[List[Tuple[dt.datetime, Candidate]]]
    for c in log:
        if c.exact:
            exact.setdefault((c.host, ASPECT[c.event]), []).append((c.time, c))
    for items in exact.values():
        items.sort(key=lambda item: item[0])
    kept = []
    for c in candidates:
        items = exact.get((c.host, ASPECT[c.event])) if c.event != "CREATE" and c.snapshot >= 0 else None
        if items:
            lo = snapshots[c.snapshot - 1].time if c.snapshot > 0 else None
            if lo is not None and c.time <= lo:
                lo = None
            times = [t for t, _ in items]
            last = bisect.bisect_right(times, min(c.time + SKEW, snapshots[c.snapshot].time)) - 1
            if last >= 0 and (lo is None or times[last] > lo):
                said = items[last][1]
                if said.event == c.event and (c.event != "UPDATE" or said.properties == c.properties):
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
