"""Snapshots → machine events: candidate events per snapshot, then a per-host state machine (SPEC §2).

Candidates, from each record of each snapshot:

* ``CREATE`` at the record's ``created_at`` (the snapshot time when unknown), with its properties;
* ``UPDATE`` at its ``updated_at`` (live records only), with its properties;
* ``DELETE`` at its ``deleted_at`` (soft-deleted records), and at the snapshot time of the first snapshot
  in which a host of the previous snapshot is gone (bare metal too) — unless a later snapshot shows it
  again with the same identity: then that snapshot lacked it (a partial dump; warned), nothing was deleted;
* ``ENABLE``/``DISABLE``: when the record is seen for the first time, at its CREATE — the state a host
  has when it first appears is its initial state (heartbeats move ``status_at`` every minute, so it
  dates nothing then); after that, when its state differs from the record's previous sighting or was
  written since, at its ``status_at`` (at the CREATE when earlier). A soft-deleted record gives its last state too (a host
  disabled, then deleted before the next dump): at its ``status_at``, or one second before the deletion
  when the deletion was the row's last write.

Identical candidates from several snapshots are one (the earliest snapshot's is kept, so a CREATE carries
the properties of the earliest snapshot that shows the host).

The state machine walks each host's candidates in time order (ties: CREATE < DELETE < DISABLE < ENABLE <
UPDATE, then snapshot order) and keeps:

* nothing before the first CREATE, and nothing but a CREATE while the host is deleted (the original kept
  an UPDATE or DISABLE after a DELETE: an event of a host that does not exist);
* no repeat of the previous kept event's type with equal properties; no UPDATE whose properties equal
  the previous kept event's;
* CREATE only when not created, DELETE only when created; ENABLE only when not enabled, DISABLE only when
  enabled. A host starts not enabled, and a DELETE makes it not enabled again (so a re-created host gets
  its ENABLE).

Skipped (unreadable) snapshots are simply absent: a host is compared with the last snapshot that was
read, so missing data never looks like a deletion.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Set, Tuple

from ..errors import SnapshotTimeError
from ..events import EVENT_ORDER, MachineEvent
from .state import HostState, Identity, Properties, Snapshot

log = logging.getLogger(__name__)


#: How long before its deletion a soft-deleted row's last state is dated when the deletion itself was
#: the row's last write (its ``updated_at``): the state changed before, the dump does not say when.
BEFORE = dt.timedelta(seconds=1)

#: The sources a candidate comes from (the manifest counts kept events per source).
SNAPSHOTS, LOG = "snapshots", "log"


class Candidate(NamedTuple):
    """A candidate event, with where it came from (a tuple: a log can give millions).

    ``snapshot`` is the index of the snapshot that produced it (-1: not a snapshot); ``observed`` when its
    source saw the state it tells (a snapshot's time; an audit row's write time). Equal times and types
    are ordered by observation, so that a CREATE carries the properties of the earliest observation.
    ``properties`` None (an ENABLE or DISABLE of the audit log) takes the host's properties of the moment.
    ``exact``: an audit row dates it as it happened (a change the log records).
    """

    time: dt.datetime
    host: str
    event: str
    properties: Optional[Properties]
    snapshot: int
    observed: Optional[dt.datetime] = None
    source: str = SNAPSHOTS
    exact: bool = False

    def order(self) -> Tuple:
        return (
            self.time,
            EVENT_ORDER[self.event],
            self.observed or dt.datetime.min,
            self.source != LOG,
            self.snapshot,
        )


Record = Tuple[str, Identity]


def record_of(state: HostState) -> Record:
    """A host record's key across snapshots and the audit log: host key and row identity."""
    return (state.host, state.identity or (None, state.created_at))


def candidates_of(
    snapshot: Snapshot,
    index: int,
    seen: Optional[Dict[Record, Tuple[Optional[bool], dt.datetime]]] = None,
    known: Optional[Mapping[Record, dt.datetime]] = None,
) -> Iterable[Candidate]:
    """The candidate events one snapshot yields by itself (everything but vanished hosts).

    ``seen`` maps each record (host, identity) of the earlier snapshots to its state and the time of the
    snapshot that last showed it, and gets this snapshot's. A record seen for the first time has its
    state dated at its CREATE (SPEC §2: the initial state) — unless ``known`` says another source (the
    audit log) saw its state before this snapshot: then that source dates the initial state, and this one
    is an observation like any other. After that, a sighting is a candidate when its state changed or was
    written since the last sighting (another source may have changed the trace's state meanwhile; the
    state machine drops what repeats) — not a copy of an older dump showing the same row as it was.
    """
    seen = {} if seen is None else seen
    at = snapshot.time
    for state in snapshot.hosts:
        created = state.created_at or at
        record = record_of(state)
        first = record not in seen
        before, last_seen = seen.get(record, (None, dt.datetime.min))
        seen[record] = (state.enabled, at)
        yield Candidate(created, state.host, "CREATE", state.properties, index, at)
        if state.deleted:
            yield Candidate(state.deleted_at, state.host, "DELETE", (), index, at)  # type: ignore[arg-type]
        elif state.updated_at is not None:
            yield Candidate(state.updated_at, state.host, "UPDATE", state.properties, index, at)
        written = state.status_at is not None and state.status_at > last_seen
        if state.enabled is None or (not first and state.enabled == before and not written):
            continue
        earlier = known.get(record) if known else None
        initial = first and (earlier is None or earlier > at)
        when = created if initial else max(state.status_at or created, created)
        gone = state.deleted_at
        if gone is not None and when >= gone:
            # the row's last write is its deletion: the change came before it, at a time the dump lost
            when = gone - BEFORE
            if when < created:
                continue
        event = "ENABLE" if state.enabled else "DISABLE"
        yield Candidate(when, state.host, event, state.properties, index, at)


@dataclass(frozen=True)
class Gap:
    """Hosts a snapshot lacks that the snapshots before and after it show with the same identity."""

    snapshot: Snapshot
    hosts: Tuple[str, ...]


def snapshot_gaps(snapshots: Sequence[Snapshot]) -> Dict[int, Gap]:
    """Snapshot index → the hosts it lacks though they were never deleted (SPEC §2): present in the
    snapshot before, absent, then present again with one of the same identities. A damaged or partial
    dump, not deletions."""
    identities = [s.identities() for s in snapshots]
    gaps: Dict[int, List[str]] = {}
    for index in range(1, len(snapshots)):
        before, now = identities[index - 1], snapshots[index].present()
        for host in sorted(set(before) - now):
            for later in identities[index + 1 :]:
                if host in later:
                    if later[host] & before[host]:
                        gaps.setdefault(index, []).append(host)
                    break
    return {i: Gap(snapshots[i], tuple(hosts)) for i, hosts in gaps.items()}


def candidate_events(
    snapshots: Sequence[Snapshot],
    gaps: Optional[Dict[int, Gap]] = None,
    known: Optional[Mapping[Record, dt.datetime]] = None,
) -> List[Candidate]:
    """All candidates of ``snapshots`` (already in snapshot order), de-duplicated, earliest snapshot first.

    ``gaps`` (default: :func:`snapshot_gaps`, each said once as a warning) are hosts a snapshot lacks
    that were never deleted: they get no DELETE. ``known``: when another source first saw each record's
    state (see :func:`candidates_of`).
    """
    if gaps is None:
        gaps = snapshot_gaps(snapshots)
        warn_gaps(gaps)
    seen: Set[Tuple] = set()
    records: Dict[Record, Tuple[Optional[bool], dt.datetime]] = {}
    out: List[Candidate] = []

    def add(candidate: Candidate) -> None:
        key = (candidate.time, candidate.host, candidate.event, candidate.properties)
        if key not in seen:
            seen.add(key)
            out.append(candidate)

    previous: Set[str] = set()
    for index, snapshot in enumerate(snapshots):
        present = snapshot.present()
        lacking = set(gaps[index].hosts) if index in gaps else set()
        for host in sorted(previous - present - lacking):
            add(Candidate(snapshot.time, host, "DELETE", (), index, snapshot.time))
        previous = present
        for candidate in candidates_of(snapshot, index, records, known):
            add(candidate)
    return out


def warn_gaps(gaps: Dict[int, Gap]) -> None:
    """One warning per snapshot that lacks hosts which were never deleted."""
    for gap in gaps.values():
        shown = ", ".join(gap.hosts[:3]) + (", …" if len(gap.hosts) > 3 else "")
        log.warning(
            "%s lacks %d host(s) present before and after it with the same identity (%s): not deletions; "
            "is the dump partial?",
            gap.snapshot.uri,
            len(gap.hosts),
            shown,
        )


def refine(candidates: Iterable[Candidate], sources: Optional[Counter] = None) -> List[MachineEvent]:
    """Apply the per-host state machine; returns kept events per host in time order, hosts sorted.
    ``sources`` (when given) counts the kept events by the source of their candidate."""
    by_host: Dict[str, List[Candidate]] = {}
    for candidate in candidates:
        by_host.setdefault(candidate.host, []).append(candidate)
    kept: List[MachineEvent] = []
    for host in sorted(by_host):
        created = enabled = False
        prev_type = None
        prev_props: Properties = ()
        for c in sorted(by_host[host], key=Candidate.order):
            if not created and c.event != "CREATE":
                continue
            props = prev_props if c.properties is None else c.properties
            if prev_type is not None:
                if c.event == prev_type and props == prev_props:
                    continue
                if c.event == "UPDATE" and props == prev_props:
                    continue
            if c.event == "CREATE" and created:
                continue
            if c.event == "ENABLE" and enabled:
                continue
            if c.event == "DISABLE" and not enabled:
                continue
            if c.event == "CREATE":
                created, enabled = True, False
            elif c.event == "DELETE":
                created, enabled = False, False
            elif c.event == "ENABLE":
                enabled = True
            elif c.event == "DISABLE":
                enabled = False
            prev_type, prev_props = c.event, props
            kept.append(MachineEvent(c.time, host, c.event, dict(props)))
            if sources is not None:
                sources[c.source] += 1
    return kept


def machine_events(
    snapshots: Sequence[Snapshot], gaps: Optional[Dict[int, Gap]] = None
) -> List[MachineEvent]:
    """The machine events of a history of snapshots (in snapshot order), sorted by time, host, type."""
    events = refine(candidate_events(snapshots, gaps))
    return sort_events(events)


def sort_events(events: Iterable[MachineEvent]) -> List[MachineEvent]:
    """Time, then host, then SPEC §2's tie order (stable: a host's equal keys keep their order)."""
    return sorted(events, key=MachineEvent.sort_key)


def order_snapshots(snapshots: Iterable[Snapshot]) -> List[Snapshot]:
    """Snapshot order of SPEC §1.1: by snapshot time, then name."""
    return sorted(snapshots, key=lambda s: (s.time, s.name))


def one_per_time(snapshots: Sequence[Snapshot]) -> List[Snapshot]:
    """Snapshots in order, one per snapshot time (SPEC §2): dumps with the same time and the same host
    records are one snapshot (the first by name is kept; said once); with different records they cannot
    both be the state at that time, which raises :class:`~starcompactor.errors.SnapshotTimeError`."""
    out: List[Snapshot] = []
    for snapshot in order_snapshots(snapshots):
        if out and out[-1].time == snapshot.time:
            kept = out[-1]
            if kept.hosts != snapshot.hosts:
                raise SnapshotTimeError(kept.uri, snapshot.uri, snapshot.time.isoformat())
            log.warning(
                "%s and %s have the same snapshot time (%s) and the same hosts: read as one snapshot",
                kept.uri,
                snapshot.uri,
                snapshot.time.isoformat(),
            )
            continue
        out.append(snapshot)
    return out
