"""The ``openstack_audit`` log → machine-event candidates at the times its rows record (SPEC §1.4, §2).

What each row is worth (the role's facts: :mod:`starcompactor.audit.records`):

* A **trigger row** is a change as it happened, at ``audit_event_time`` (``audit_changed_at`` when the
  event time is later: a row older than that column, stamped when it was added). Its ``data`` is the
  whole row after the change, so every candidate is a *state* — the host's properties, its service's or
  node's state — and the state machine of :mod:`~starcompactor.machines.diff` keeps only real changes
  (a watched column outside the properties, ``mapped`` or a service's ``version``, changes nothing).
* A **backfill row** is state, not history: the row as it was when the role ran (one *run*: its rows'
  ``audit_changed_at`` within an hour), dated at its ``created_at`` (INSERT) or ``deleted_at`` (DELETE).
  It dates a CREATE or a DELETE exactly, and is an *observation* of everything else at the run's time.
* A DELETE row (an archived soft delete, a hard delete, a backfilled soft delete) dates the DELETE at
  ``data.deleted_at`` when set, else at its event time.

Hosts are the snapshots' (SPEC §1.2). vm: a compute node row, keyed by ``hypervisor_hostname``; its
status is the ``nova-compute`` service on its ``host`` (``services.host = compute_nodes.host``, never the
FQDN). Bare metal: a Blazar host row keyed by its Ironic node uuid, with the configured capabilities as
properties and the node's ``maintenance`` as status; the node's deletion removes the host too.
Capability rows name their capability in whatever column the site's role captured: ``property_id`` →
``resource_properties`` (the log's, else the dumps'), ``capability_id`` → ``extra_capabilities``,
``capability_name``, else — the role's columns fit none of the Blazar schemas exactly — the dumps' own
``computehost_extra_capabilities`` row with the same ``id``.

The initial state of a record (its ENABLE at its CREATE) is dated by whichever source saw the record
first; :class:`LogCandidates` tells the snapshots which records the log saw first (``known``).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Set, Tuple

from ..audit.records import BACKFILL_USER, RUN_GAP, AuditLog, AuditRow, json_time
from .diff import LOG, Candidate, Record, record_of
from .snapshot import NOVA_COMPUTE, rack_of
from .state import AUDIT_KEEP, AUDIT_TABLES, Properties, Snapshot, SnapshotSettings, as_int, as_text

log = logging.getLogger(__name__)

#: The audit tables each site type reads.
VM_TABLES = AUDIT_TABLES["vm"]
BM_TABLES = AUDIT_TABLES["baremetal"]
#: Without these a site type's log gives nothing (the others only add to it).
REQUIRED = {"vm": VM_TABLES, "baremetal": ("blazar_computehosts", "ironic_nodes")}
#: What the manifest and the warnings say each table gives.
GIVES = {
    "nova_compute_nodes": "CREATE, UPDATE and DELETE",
    "nova_services": "ENABLE and DISABLE",
    "blazar_computehosts": "CREATE and DELETE",
    "blazar_computehost_extra_capabilities": "UPDATE (capabilities)",
    "ironic_nodes": "ENABLE and DISABLE",
}

_NEVER = dt.datetime.max
_new = tuple.__new__


class Row(NamedTuple):
    """An audit row with its two times settled: ``at`` when it was written (a backfill row: when its run
    ended, so that one run is one observation) and ``when`` the time of what it tells."""

    at: dt.datetime
    when: dt.datetime
    kind: str
    backfill: bool
    id: str
    data: Mapping[str, Any]
    audit_id: int

    @property
    def deleted_at(self) -> dt.datetime:
        """A DELETE row's time: the soft delete it archives (``data.deleted_at``), else its own."""
        return json_time(self.data.get("deleted_at")) or self.when


@dataclass
class LogCandidates:
    """What the log gives the stitch: candidates, the records whose state it saw first, and what it lacked."""

    candidates: List[Candidate] = field(default_factory=list)
    #: record → when the log first saw its state (earlier than any snapshot: the log dates its ENABLE)
    known: Dict[Record, dt.datetime] = field(default_factory=dict)
    missing: Tuple[str, ...] = ()
    notes: List[str] = field(default_factory=list)
    rows: int = 0
    coverage_start: Optional[dt.datetime] = None


# -- rows -------------------------------------------------------------------------------------------


def backfill_run_ends(
    rows: Iterable[AuditRow], gap: dt.timedelta = RUN_GAP
) -> Dict[dt.datetime, dt.datetime]:
    """``audit_changed_at`` of each backfill row → the end of its run (writes at most ``gap`` apart)."""
    stamps = sorted({r.changed_at for r in rows if r.is_backfill and r.changed_at is not None})
    ends: Dict[dt.datetime, dt.datetime] = {}
    group: List[dt.datetime] = []
    for stamp in stamps + [_NEVER]:
        if group and (stamp is _NEVER or stamp - group[-1] > gap):
            for member in group:
                ends[member] = group[-1]
            group = []
        group.append(stamp)
    return ends


def settle(row: AuditRow, run_end: Mapping[dt.datetime, dt.datetime]) -> Optional[Row]:
    """The :class:`Row` of an audit row; None when it has no time at all."""
    when = row.event_time or row.changed_at
    if when is None:
        return None
    changed_at = row.changed_at
    backfill = row.changed_by == BACKFILL_USER
    if backfill:
        at = run_end.get(changed_at, changed_at) if changed_at is not None else when
    else:
        if changed_at is not None and when > changed_at:
            when = changed_at  # stamped when audit_event_time was added to the table
        at = when
    return _new(
        Row, (at, when, (row.event_type or "").upper(), backfill, row.id or "", row.data, row.audit_id)
    )


def by_id(rows: Iterable[Row]) -> Dict[str, List[Row]]:
    """Rows of each source row, in the order they were written."""
    out: Dict[str, List[Row]] = {}
    for row in sorted(rows, key=lambda r: (r.at, r.audit_id)):
        out.setdefault(row.id, []).append(row)
    return out


def _enabled(value: Any, on_means_disabled: bool = True) -> Optional[bool]:
    """``services.disabled`` / ``nodes.maintenance`` (0/1, true/false, text) → enabled; None unknown."""
    flag = as_int(value)
    if isinstance(flag, bool):
        flag = int(flag)
    if flag is None or not isinstance(flag, int):
        return None
    return flag != 1 if on_means_disabled else flag == 1


# -- status rows (services, Ironic nodes) ----------------------------------------------------------


@dataclass(frozen=True)
class Status:
    """One status row: a service's ``disabled`` or a node's ``maintenance`` at a time."""

    at: dt.datetime
    when: dt.datetime
    enabled: Optional[bool]  #: None: the row is gone (deleted)
    backfill: bool
    owner: str  #: the service or node row's id
    order: int  #: ``audit_id``: the order rows were written (a trigger row during a backfill run too)


def status_timeline(rows: Iterable[Row], column: str) -> List[Status]:
    """Status rows in write order (a DELETE row: the service or node is gone from then)."""
    out = []
    for row in rows:
        if row.kind == "DELETE":
            out.append(Status(row.at, row.deleted_at, None, row.backfill, row.id, row.audit_id))
        else:
            enabled = _enabled(row.data.get(column))
            out.append(Status(row.at, row.when, enabled, row.backfill, row.id, row.audit_id))
    return sorted(out, key=lambda s: s.order)


def initial_index(timeline: Sequence[Status], born: dt.datetime, backfilled: bool) -> Optional[int]:
    """Which status row gives a record's state when the log first sees it (at ``born``): for a record
    the backfill wrote, the last status row that run wrote (the state then — a trigger row during the
    run comes after it); otherwise the last row written by ``born``."""
    if backfilled:
        same_run = [
            i for i, s in enumerate(timeline) if s.backfill and s.at == born and s.enabled is not None
        ]
        if same_run:
            return same_run[-1]
    written = [i for i, s in enumerate(timeline) if s.at <= born and s.enabled is not None]
    return written[-1] if written else None


def later_changes(timeline: Sequence[Status]) -> List[dt.datetime]:
    """For each row, the earliest time a row written after it changed the state (``datetime.max``: none).
    A backfill row observes the state at its run's end; a trigger row written during the run is newer,
    and supersedes the observation when it is dated by then."""
    out = [_NEVER] * len(timeline)
    earliest = _NEVER
    for index in range(len(timeline) - 1, -1, -1):
        out[index] = earliest
        status = timeline[index]
        if status.enabled is not None and status.when < earliest:
            earliest = status.when
    return out


def status_candidates(
    host: str,
    record: Record,
    created: dt.datetime,
    born: Optional[dt.datetime],
    backfilled: bool,
    dead: Optional[dt.datetime],
    timeline: Sequence[Status],
    snap_first: Mapping[Record, dt.datetime],
    out: LogCandidates,
) -> None:
    """ENABLE/DISABLE candidates of one host record from its status rows (in write order).

    The state when the log first sees the record (``born``; the first status row when the log does not
    hold the record itself) is dated at the CREATE when no snapshot saw the record earlier (SPEC §2), else
    at the observation. Every row written after it is a state at its own time (a backfill row: its run's).
    A status owner deleted before the record was created (an older service of the same host) says
    nothing of it.
    """
    gone = {s.owner for s in timeline if s.enabled is None and s.when <= created}
    timeline = [s for s in timeline if s.owner not in gone]
    if born is None:
        live = [s for s in timeline if s.enabled is not None and (dead is None or s.when < dead)]
        if not live:
            return
        born, backfilled = live[0].at, live[0].backfill
    start = initial_index(timeline, born, backfilled)
    newer = later_changes(timeline)
    if start is not None:
        initial = timeline[start]
        # the log knows this state since the row was written (a service created before its node: since
        # then, so at the node's CREATE too; a backfill row: since its run)
        known = initial.at
        seen = snap_first.get(record)
        if seen is None or known < seen:
            when = created
            out.known[record] = known
        else:
            when = max(known, created)
        if (dead is None or when < dead) and newer[start] > when:
            event = "ENABLE" if initial.enabled else "DISABLE"
            out.candidates.append(Candidate(when, host, event, None, -1, known, LOG, False))
    first = (start + 1) if start is not None else 0
    for index in range(first, len(timeline)):
        status = timeline[index]
        if status.enabled is None or (start is None and status.at <= born):
            continue
        when = status.at if status.backfill else status.when
        if (dead is not None and when >= dead) or (status.backfill and newer[index] <= when):
            continue
        event = "ENABLE" if status.enabled else "DISABLE"
        out.candidates.append(
            Candidate(max(when, created), host, event, None, -1, status.at, LOG, not status.backfill)
        )


# -- vm ---------------------------------------------------------------------------------------------


def vm_candidates(
    nodes: Optional[List[Row]],
    services: Optional[List[Row]],
    settings: SnapshotSettings,
    snapshots: Sequence[Snapshot],
    snap_first: Mapping[Record, dt.datetime],
    out: LogCandidates,
) -> None:
    """Candidates of a KVM site's log: compute nodes (``nodes``) and services (``services``); either
    may be None (the table is not in the log): then the snapshots' records stand in for the nodes."""
    pattern = re.compile(settings.hypervisor_hostname_regex) if settings.hypervisor_hostname_regex else None

    racks: Dict[str, str] = {}

    def properties(data: Mapping[str, Any], host: str) -> Properties:
        rack = racks.get(host)
        if rack is None:
            rack = racks[host] = rack_of(host, pattern, settings.rack_extract_group)
        return (
            ("rack", rack),
            ("vcpu_capability", as_int(data.get("vcpus"))),
            ("memory_capability_mb", as_int(data.get("memory_mb"))),
            ("disk_capability_gb", as_int(data.get("local_gb"))),
        )

    by_link: Dict[str, List[Row]] = {}
    for row in services or ():
        if as_text(row.data.get("binary")) == NOVA_COMPUTE and row.data.get("host") is not None:
            by_link.setdefault(as_text(row.data["host"]) or "", []).append(row)
    timelines = {link: status_timeline(rows, "disabled") for link, rows in by_link.items()}
    # a compute node is a host when a nova-compute service runs on its host (SPEC §1.2)
    computes: Set[str] = set(by_link) | {s.link for snap in snapshots for s in snap.hosts if s.link}
    check_service = services is not None or bool(computes)

    if nodes is None:  # the snapshots' records, for the status rows
        records: Dict[Record, Tuple[str, Optional[str], dt.datetime, Optional[dt.datetime]]] = {}
        for snap in snapshots:
            for state in snap.hosts:
                records[record_of(state)] = (
                    state.host,
                    state.link,
                    state.created_at or snap.time,
                    state.deleted_at,
                )
        for key, (name, via, since, gone) in records.items():
            timeline = timelines.get(via or "")
            if timeline:
                status_candidates(name, key, since, None, False, gone, timeline, snap_first, out)
        return

    for row_id, rows in by_id(nodes).items():
        first = rows[0]
        host = as_text(first.data.get("hypervisor_hostname"))
        link = as_text(first.data.get("host")) or ""
        if not host or (check_service and link not in computes):
            continue
        created = json_time(first.data.get("created_at")) or first.when
        record: Record = (host, (row_id, json_time(first.data.get("created_at"))))
        dead = next((r.deleted_at for r in rows if r.kind == "DELETE"), None)
        props = properties(first.data, host)
        out.candidates.append(
            Candidate(created, host, "CREATE", props, -1, first.at, LOG, not first.backfill)
        )
        newer = any(r.kind == "UPDATE" and not r.backfill and r.when <= first.at for r in rows[1:])
        if first.backfill and first.kind != "DELETE" and not newer:  # the state at the run: an observation
            out.candidates.append(Candidate(max(first.at, created), host, "UPDATE", props, -1, first.at, LOG))
        for row in rows:
            if row.kind == "DELETE":
                out.candidates.append(Candidate(row.deleted_at, host, "DELETE", (), -1, row.at, LOG, True))
            elif row is not first and row.kind == "UPDATE" and not row.backfill:
                out.candidates.append(
                    Candidate(row.when, host, "UPDATE", properties(row.data, host), -1, row.at, LOG, True)
                )
        timeline = timelines.get(link)
        if timeline:
            status_candidates(
                host, record, created, first.at, first.backfill, dead, timeline, snap_first, out
            )


# -- bare metal -------------------------------------------------------------------------------------


@dataclass
class CapabilityNames:
    """Where a capability row's name is found (see the module's docstring), and the rows it could not name."""

    by_property: Dict[str, str] = field(default_factory=dict)  #: resource_properties / extra_capabilities id
    by_row: Dict[str, str] = field(default_factory=dict)  #: the dumps' capability rows
    unnamed: Set[str] = field(default_factory=set)

    def name(self, row: Row) -> Optional[str]:
        data = row.data
        name = as_text(data.get("capability_name"))
        if name:
            return name
        for column in ("property_id", "capability_id"):
            ref = as_text(data.get(column))
            if ref is not None and ref in self.by_property:
                return self.by_property[ref]
        found = self.by_row.get(row.id)
        if found is None:
            self.unnamed.add(row.id)
        return found


def capability_names(
    properties: Optional[List[Row]], extra: Optional[List[Row]], snapshots: Sequence[Snapshot]
) -> CapabilityNames:
    names = CapabilityNames()
    for snap in snapshots:  # older first: the newer dumps' names win
        names.by_property.update(snap.detail.get("capability_names") or {})
        names.by_row.update(snap.detail.get("capability_rows") or {})
    for rows, column in ((properties, "property_name"), (extra, "capability_name")):
        for row_id, versions in by_id(rows or ()).items():
            name = as_text(versions[-1].data.get(column))
            if name:
                names.by_property[row_id] = name
    return names


def bm_candidates(
    hosts: List[Row],
    capabilities: Optional[List[Row]],
    nodes: Optional[List[Row]],
    names: CapabilityNames,
    settings: SnapshotSettings,
    snap_first: Mapping[Record, dt.datetime],
    out: LogCandidates,
) -> None:
    """Candidates of a bare-metal site's log: Blazar hosts, their capabilities, Ironic nodes."""
    wanted = settings.baremetal_properties
    caps_of: Dict[str, List[Tuple[Row, Optional[str]]]] = {}
    for rows in by_id(capabilities or ()).values():
        for row in rows:
            host_id = as_text(row.data.get("computehost_id"))
            if host_id is not None:
                caps_of.setdefault(host_id, []).append((row, names.name(row)))
    node_rows: Dict[str, List[Row]] = {}
    for row in nodes or ():
        uuid = as_text(row.data.get("uuid"))
        if uuid:
            node_rows.setdefault(uuid, []).append(row)
    timelines = {uuid: status_timeline(rows, "maintenance") for uuid, rows in node_rows.items()}

    for host_id, rows in by_id(hosts).items():
        first = rows[0]
        uuid = as_text(first.data.get("hypervisor_hostname"))
        if not uuid:
            continue
        created = json_time(first.data.get("created_at")) or first.when
        record: Record = (uuid, (host_id, json_time(first.data.get("created_at"))))
        caps = sorted(caps_of.get(host_id, []), key=lambda c: (c[0].at, c[0].audit_id))

        def props_at(at: dt.datetime, caps: List[Tuple[Row, Optional[str]]] = caps) -> Properties:
            values: Dict[str, Any] = {}
            for row, name in caps:
                if row.at > at:
                    break
                if name is None:
                    continue
                if row.kind == "DELETE" or json_time(row.data.get("deleted_at")) is not None:
                    values.pop(name, None)
                else:
                    values[name] = as_text(row.data.get("capability_value"))
            return tuple((name, values[name]) for name in wanted if name in values)

        deaths = [r.deleted_at for r in rows if r.kind == "DELETE"]
        deaths += [t for r in rows if (t := json_time(r.data.get("deleted_at"))) is not None]
        node_gone = [s.when for s in timelines.get(uuid, ()) if s.enabled is None and s.when >= created]
        deaths += node_gone[:1]
        dead = min(deaths) if deaths else None
        # without capability rows the log does not know the properties: the snapshots' CREATE wins
        observed = first.at if capabilities is not None else _NEVER
        props = props_at(first.at)
        out.candidates.append(
            Candidate(created, uuid, "CREATE", props, -1, observed, LOG, not first.backfill)
        )
        if capabilities is not None and first.backfill and first.kind != "DELETE":
            out.candidates.append(Candidate(max(first.at, created), uuid, "UPDATE", props, -1, first.at, LOG))
        if dead is not None:
            out.candidates.append(Candidate(dead, uuid, "DELETE", (), -1, dead, LOG, True))
        changes: Dict[dt.datetime, Tuple[dt.datetime, bool]] = {}
        for row, _name in caps:
            if row.at > first.at:
                changes[row.at] = (row.at if row.backfill else row.when, not row.backfill)
        for at, (when, exact) in sorted(changes.items()):
            if dead is not None and when >= dead:
                continue
            out.candidates.append(
                Candidate(max(when, created), uuid, "UPDATE", props_at(at), -1, at, LOG, exact)
            )
        timeline = timelines.get(uuid)
        if timeline:
            status_candidates(
                uuid, record, created, first.at, first.backfill, dead, timeline, snap_first, out
            )


# -- the log as a whole -----------------------------------------------------------------------------

#: The ``data`` keys each table's rows are kept with (the snapshot worker cuts the dumps' log to them).
KEEP = AUDIT_KEEP


def read_projected(audit: AuditLog, name: str) -> List[AuditRow]:
    """The rows of ``audit_<name>``, a batch at a time, each ``data`` cut to the keys :data:`KEEP` names."""
    keys = KEEP[name]
    kept = frozenset(keys)
    make = tuple.__new__
    out: List[AuditRow] = []
    for batch in audit.batches(name):
        out += [
            row
            if row[7].keys() <= kept
            else make(AuditRow, (*row[:7], {k: row[7][k] for k in keys if k in row[7]}))
            for row in batch
        ]  # a row cut already (by the snapshot worker) is kept as it is
    return out


def first_status_seen(snapshots: Sequence[Snapshot]) -> Dict[Record, dt.datetime]:
    """Record → the time of the first snapshot that shows its state."""
    first: Dict[Record, dt.datetime] = {}
    for snap in snapshots:
        for state in snap.hosts:
            if state.enabled is not None:
                first.setdefault(record_of(state), snap.time)
    return first


def log_candidates(
    audit: AuditLog, settings: SnapshotSettings, snapshots: Sequence[Snapshot] = ()
) -> LogCandidates:
    """Every candidate the log gives for the site type of ``settings``; ``snapshots`` (in order) tell
    which records they saw first, and name what the log's capability rows do not. Tables the log lacks are
    said once, as a warning naming what then comes from the snapshots only."""
    out = LogCandidates()
    kind = settings.instance_type
    tables = VM_TABLES if kind == "vm" else BM_TABLES
    raw = {name: read_projected(audit, name) for name in tables if name in audit}
    out.rows = sum(len(rows) for rows in raw.values())
    out.missing = tuple(t for t in tables if t not in audit and t in GIVES)
    if not any(t in raw for t in REQUIRED[kind]):
        out.notes.append(
            f"{audit.source}: the audit log has none of the {kind} tables ({', '.join('audit_' + t for t in REQUIRED[kind])}): "
            "snapshots only"
        )
        log.warning("%s", out.notes[-1])
        return out
    if out.missing:
        lacking = "; ".join(f"audit_{t} ({GIVES[t]})" for t in out.missing)
        out.notes.append(f"{audit.source}: the audit log lacks {lacking}: those come from the snapshots only")
        log.warning("%s", out.notes[-1])
    run_end = backfill_run_ends(row for rows in raw.values() for row in rows)
    # from the first backfill run's first write (the role's installation), else the first write
    out.coverage_start = min(run_end) if run_end else None
    settled: Dict[str, List[Row]] = {}
    untimed = 0
    for name, rows in raw.items():
        settled[name] = []
        for audit_row in rows:
            row = settle(audit_row, run_end)
            if row is None:
                untimed += 1
            else:
                settled[name].append(row)
    raw.clear()  # the settled rows keep what they need
    if untimed:
        out.notes.append(f"{audit.source}: {untimed} audit row(s) without any time left out")
        log.warning("%s", out.notes[-1])
    if out.coverage_start is None:
        out.coverage_start = min((r.at for rows in settled.values() for r in rows), default=None)
    snap_first = first_status_seen(snapshots)
    if kind == "vm":
        vm_candidates(
            settled.get("nova_compute_nodes"),
            settled.get("nova_services"),
            settings,
            snapshots,
            snap_first,
            out,
        )
    else:
        names = capability_names(
            settled.get("blazar_resource_properties"), settled.get("blazar_extra_capabilities"), snapshots
        )
        bm_candidates(
            settled.get("blazar_computehosts", []),
            settled.get("blazar_computehost_extra_capabilities"),
            settled.get("ironic_nodes"),
            names,
            settings,
            snap_first,
            out,
        )
        if names.unnamed:
            out.notes.append(
                f"{audit.source}: {len(names.unnamed)} capability row(s) name no capability the log or the "
                "dumps know: their values come from the snapshots only"
            )
            log.warning("%s", out.notes[-1])
    return out
