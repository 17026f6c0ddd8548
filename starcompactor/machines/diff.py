"""Snapshots → machine events: candidate events per snapshot, then a per-host state machine (SPEC §2).

Candidates, from each record of each snapshot:

* ``CREATE`` at the record's ``created_at`` (the snapshot time when unknown), with its properties;
* ``UPDATE`` at its ``updated_at`` (live records only), with its properties;
* ``DELETE`` at its ``deleted_at`` (soft-deleted records), and at the snapshot time of the first snapshot
  in which a host of the previous snapshot is gone (bare metal too);
* ``ENABLE``/``DISABLE`` at its ``status_at`` (live records only), dated at the CREATE when earlier — the
  state a host has when it first appears is its initial state.

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
from dataclasses import dataclass
from typing import Dict, Iterable, List, Sequence, Set, Tuple

from ..events import EVENT_ORDER, MachineEvent
from .state import Properties, Snapshot


@dataclass(frozen=True)
class Candidate:
    """A candidate event with the index of the snapshot that produced it (for ties)."""

    time: dt.datetime
    host: str
    event: str
    properties: Properties
    snapshot: int

    def order(self) -> Tuple:
        return (self.time, EVENT_ORDER[self.event], self.snapshot)


def candidates_of(snapshot: Snapshot, index: int) -> Iterable[Candidate]:
    """The candidate events one snapshot yields by itself (everything but vanished hosts)."""
    for state in snapshot.hosts:
        created = state.created_at or snapshot.time
        yield Candidate(created, state.host, "CREATE", state.properties, index)
        if state.deleted:
            yield Candidate(state.deleted_at, state.host, "DELETE", (), index)  # type: ignore[arg-type]
            continue
        if state.updated_at is not None:
            yield Candidate(state.updated_at, state.host, "UPDATE", state.properties, index)
        if state.enabled is not None:
            when = state.status_at or created
            if when < created:
                when = created
            yield Candidate(
                when, state.host, "ENABLE" if state.enabled else "DISABLE", state.properties, index
            )


def candidate_events(snapshots: Sequence[Snapshot]) -> List[Candidate]:
    """All candidates of ``snapshots`` (already in snapshot order), de-duplicated, earliest snapshot first."""
    seen: Set[Tuple] = set()
    out: List[Candidate] = []

    def add(candidate: Candidate) -> None:
        key = (candidate.time, candidate.host, candidate.event, candidate.properties)
        if key not in seen:
            seen.add(key)
            out.append(candidate)

    previous: Set[str] = set()
    for index, snapshot in enumerate(snapshots):
        present = snapshot.present()
        for host in sorted(previous - present):
            add(Candidate(snapshot.time, host, "DELETE", (), index))
        previous = present
        for candidate in candidates_of(snapshot, index):
            add(candidate)
    return out


def refine(candidates: Iterable[Candidate]) -> List[MachineEvent]:
    """Apply the per-host state machine; returns kept events per host in time order, hosts sorted."""
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
            if prev_type is not None:
                if c.event == prev_type and c.properties == prev_props:
                    continue
                if c.event == "UPDATE" and c.properties == prev_props:
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
            prev_type, prev_props = c.event, c.properties
            kept.append(MachineEvent(c.time, host, c.event, dict(c.properties)))
    return kept


def machine_events(snapshots: Sequence[Snapshot]) -> List[MachineEvent]:
    """The machine events of a history of snapshots (in snapshot order), sorted by time, host, type."""
    events = refine(candidate_events(snapshots))
    return sort_events(events)


def sort_events(events: Iterable[MachineEvent]) -> List[MachineEvent]:
    """Time, then host, then SPEC §2's tie order (stable: a host's equal keys keep their order)."""
    return sorted(events, key=MachineEvent.sort_key)


def order_snapshots(snapshots: Iterable[Snapshot]) -> List[Snapshot]:
    """Snapshot order of SPEC §1.1: by snapshot time, then name."""
    return sorted(snapshots, key=lambda s: (s.time, s.name))
