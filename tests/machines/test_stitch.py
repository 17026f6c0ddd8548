"""Stitching snapshots with the audit log, on simulated histories with known truth.

A host — a KVM compute node, or an Ironic node with its Blazar host — lives through random changes
(disable, enable, capacity); nightly snapshots show its state as Nova, Ironic and Blazar leave it in a
dump (``updated_at`` moved by heartbeats, never before the last change); the log — the
role's rows, backfill included, built as :mod:`starcompactor.audit.records` rows — records the changes
from its installation on, except while its triggers are dropped (a gap). The stitched trace must agree
with the truth wherever a source saw it, date every logged change exactly, and invent nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Dict, List, Optional, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st

from starcompactor.audit.dumps import DumpLog
from starcompactor.audit.records import AuditRow, TableLayout
from starcompactor.machines.audit import log_candidates
from starcompactor.machines.diff import LOG, Candidate
from starcompactor.machines.state import HostState, Snapshot, SnapshotSettings
from starcompactor.machines.stitch import stitched_events

T0 = dt.datetime(2024, 3, 1)
HOST, LINK = "r1-n01.example", "cmp-1"
SETTINGS = SnapshotSettings("vm", ("nova",), r"^(r\d+)-", 1, ())
DAYS = 4
SNAPSHOTS = [T0 + dt.timedelta(days=k, hours=3) for k in range(DAYS)]
CREATED = T0 - dt.timedelta(days=10)
HEARTBEAT = dt.timedelta(seconds=30)


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes, seconds=7)


def vcpus(version: int) -> int:
    return 8 + 8 * version


def props(version: int) -> Tuple:
    return (
        ("rack", "r1"),
        ("vcpu_capability", vcpus(version)),
        ("memory_capability_mb", 1024),
        ("disk_capability_gb", 10),
    )


class Truth:
    """The host's true history: created (enabled) at ``created``, then (time, kind) changes, kind
    'status' or 'props'."""

    def __init__(self, changes: List[Tuple[dt.datetime, str]], created: dt.datetime = CREATED) -> None:
        self.created = created
        self.changes = sorted(c for c in changes if c[0] > created)

    def state(self, when: dt.datetime) -> Tuple[bool, int]:
        enabled, version = True, 0
        for t, kind in self.changes:
            if t > when:
                break
            if kind == "status":
                enabled = not enabled
            else:
                version += 1
        return enabled, version

    def last(self, kind: str, when: dt.datetime) -> Optional[dt.datetime]:
        times = [t for t, k in self.changes if k == kind and t <= when]
        return times[-1] if times else self.created


def snapshot(truth: Truth, when: dt.datetime) -> Snapshot:
    """The host as a nightly dump shows it (nothing before its creation); heartbeats move updated_at,
    which is never before the last change."""
    hosts: Tuple[HostState, ...] = ()
    created = truth.created
    if created <= when:
        enabled, version = truth.state(when)
        status_at = max(when - HEARTBEAT, truth.last("status", when))
        updated_at = max(when - 2 * HEARTBEAT, truth.last("props", when))
        record = HostState(
            HOST, created, updated_at, props(version), enabled, status_at, None, ("1", created), LINK
        )
        hosts = (record,)
    return Snapshot(f"mem://{when.isoformat()}", when.isoformat(), when, "name", hosts)


LAYOUTS = {
    name: TableLayout(
        name,
        (
            "audit_id",
            "id",
            "audit_event_type",
            "audit_event_time",
            "audit_changed_by",
            "audit_changed_at",
            "data",
        ),
        True,
        True,
        True,
    )
    for name in ("nova_compute_nodes", "nova_services")
}
BY = "nova@10.0.0.5"


def node_data(version: int, created: dt.datetime) -> Dict:
    return {
        "id": 1,
        "hypervisor_hostname": HOST,
        "host": LINK,
        "vcpus": vcpus(version),
        "memory_mb": 1024,
        "local_gb": 10,
        "created_at": created.isoformat(sep=" "),
        "deleted_at": None,
    }


def service_data(enabled: bool, created: dt.datetime) -> Dict:
    return {
        "id": 5,
        "host": LINK,
        "binary": "nova-compute",
        "disabled": 0 if enabled else 1,
        "created_at": created.isoformat(sep=" "),
    }


def audit_log(
    truth: Truth, installed: dt.datetime, gap: Optional[Tuple[dt.datetime, dt.datetime]]
) -> DumpLog:
    """The role's rows: the backfill at installation (the state then) of what existed — or the trigger
    INSERTs of the host's creation (its service a minute before its node), unless in the gap (then the
    backfill that follows the gap writes them); a trigger row per change after that, outside the gap."""
    created = truth.created
    service_created = created - dt.timedelta(minutes=1)
    services: List[AuditRow] = []
    nodes: List[AuditRow] = []

    def in_gap(t: dt.datetime) -> bool:
        return gap is not None and gap[0] <= t < gap[1]

    def seen_at(born: dt.datetime) -> dt.datetime:
        if born <= installed:
            return installed
        return gap[1] if gap is not None and in_gap(born) else born

    for born, rows, table, row_id in (
        (service_created, services, "nova_services", "5"),
        (created, nodes, "nova_compute_nodes", "1"),
    ):
        seen = seen_at(born)
        enabled, version = truth.state(seen)
        data = service_data(enabled, service_created) if row_id == "5" else node_data(version, created)
        by = BY if seen == born else "backfill"
        rows.append(AuditRow(table, 1, row_id, "INSERT", born, by, seen, data))
    for t, kind in truth.changes:
        if t <= installed or in_gap(t):
            continue
        enabled, version = truth.state(t)
        if kind == "status":
            services.append(
                AuditRow(
                    "nova_services",
                    len(services) + 1,
                    "5",
                    "UPDATE",
                    t,
                    BY,
                    t,
                    service_data(enabled, service_created),
                )
            )
        else:
            nodes.append(
                AuditRow(
                    "nova_compute_nodes", len(nodes) + 1, "1", "UPDATE", t, BY, t, node_data(version, created)
                )
            )
    for rows in (services, nodes):
        rows.sort(key=lambda r: (r.changed_at, r.audit_id))
        rows[:] = [r._replace(audit_id=i) for i, r in enumerate(rows, 1)]
    return DumpLog("mem://audit", dict(LAYOUTS), {"nova_compute_nodes": nodes, "nova_services": services})


# -- the same host on bare metal: an Ironic node (maintenance) and its Blazar host with capabilities ----

NODE, BLAZAR_ID = "00000001-aaaa-4bbb-8ccc-000000000001", "host-0001"
BM_SETTINGS = SnapshotSettings("baremetal", baremetal_properties=("node_type", "main_memory.ram_size"))
NODE_HEARTBEAT = dt.timedelta(minutes=5)


def ram(version: int) -> str:
    return str(65536 * (version + 1))


def bm_props(version: int) -> Tuple:
    return (("node_type", "compute"), ("main_memory.ram_size", ram(version)))


def bm_snapshot(truth: Truth, when: dt.datetime) -> Snapshot:
    """As a dump shows it: capability rows keep their own ``updated_at``; the node's moves with its
    periodic syncs (never before its last change)."""
    hosts: Tuple[HostState, ...] = ()
    created = truth.created
    if created <= when:
        enabled, version = truth.state(when)
        status_at = max(when - NODE_HEARTBEAT, truth.last("status", when))
        updated_at = truth.last("props", when)
        identity = (BLAZAR_ID, created)
        hosts = (
            HostState(NODE, created, updated_at, bm_props(version), enabled, status_at, None, identity, NODE),
        )
    return Snapshot(f"mem://{when.isoformat()}", when.isoformat(), when, "name", hosts)


def bm_audit_log(
    truth: Truth, installed: dt.datetime, gap: Optional[Tuple[dt.datetime, dt.datetime]]
) -> DumpLog:
    """The role's rows for it: the node (enrolled four hours before its Blazar host), the Blazar host and
    its two capabilities (inserted with it), the property names; backfilled at installation, or written
    by triggers (by the backfill after the gap when made in it); a trigger row per change after that."""
    created = truth.created
    enrolled = created - dt.timedelta(hours=4)
    tables: Dict[str, List[AuditRow]] = {
        "ironic_nodes": [],
        "blazar_computehosts": [],
        "blazar_computehost_extra_capabilities": [],
        "blazar_resource_properties": [],
    }

    def in_gap(t: dt.datetime) -> bool:
        return gap is not None and gap[0] <= t < gap[1]

    def seen_at(born: dt.datetime) -> dt.datetime:
        if born <= installed:
            return installed
        return gap[1] if gap is not None and in_gap(born) else born

    def node(enabled: bool) -> Dict:
        return {
            "id": 1,
            "uuid": NODE,
            "maintenance": 0 if enabled else 1,
            "created_at": enrolled.isoformat(sep=" "),
        }

    def cap(cap_id: str, prop: str, value: str) -> Dict:
        return {"id": cap_id, "computehost_id": BLAZAR_ID, "capability_value": value, "property_id": prop}

    def add(table: str, row_id: str, kind: str, when: dt.datetime, seen: dt.datetime, data: Dict) -> None:
        by = "backfill" if seen != when and kind == "INSERT" else BY
        tables[table].append(AuditRow(table, 0, row_id, kind, when, by, seen, data))

    for prop, name in (("p1", "node_type"), ("p2", "main_memory.ram_size")):
        add(
            "blazar_resource_properties",
            prop,
            "INSERT",
            T0 - dt.timedelta(days=60),
            installed,
            {"property_name": name},
        )
    seen = seen_at(enrolled)
    add("ironic_nodes", "1", "INSERT", enrolled, seen, node(truth.state(seen)[0]))
    seen = seen_at(created)
    host = {"id": BLAZAR_ID, "hypervisor_hostname": NODE, "created_at": created.isoformat(sep=" ")}
    add("blazar_computehosts", BLAZAR_ID, "INSERT", created, seen, host)
    add("blazar_computehost_extra_capabilities", "c1", "INSERT", created, seen, cap("c1", "p1", "compute"))
    add(
        "blazar_computehost_extra_capabilities",
        "c2",
        "INSERT",
        created,
        seen,
        cap("c2", "p2", ram(truth.state(seen)[1])),
    )
    for t, kind in truth.changes:
        if t <= installed or in_gap(t):
            continue
        enabled, version = truth.state(t)
        if kind == "status":
            add("ironic_nodes", "1", "UPDATE", t, t, node(enabled))
        else:
            add("blazar_computehost_extra_capabilities", "c2", "UPDATE", t, t, cap("c2", "p2", ram(version)))
    columns = LAYOUTS["nova_services"].columns
    layouts = {name: TableLayout(name, columns, True, True, True) for name in tables}
    for rows in tables.values():
        rows.sort(key=lambda r: r.changed_at)
        rows[:] = [r._replace(audit_id=i) for i, r in enumerate(rows, 1)]
    return DumpLog("mem://audit", layouts, tables)


SITES = {
    "vm": (SETTINGS, snapshot, lambda *a: audit_log(*a), lambda p: p["vcpu_capability"], vcpus),
    "baremetal": (BM_SETTINGS, bm_snapshot, bm_audit_log, lambda p: p["main_memory.ram_size"], ram),
}


def replay(events, when: dt.datetime, before: bool = False, value=lambda p: p["vcpu_capability"]):
    """The trace's state at ``when`` (just before it, with ``before``): a host starts not enabled."""
    enabled, vcpu = False, None
    for e in events:
        if e.time > when or (before and e.time == when):
            break
        if e.event == "ENABLE":
            enabled = True
        elif e.event == "DISABLE":
            enabled = False
        if e.event in ("CREATE", "UPDATE", "ENABLE", "DISABLE"):
            vcpu = value(e.properties)
    return enabled, vcpu


minutes = st.integers(min_value=1, max_value=DAYS * 24 * 60 - 1)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(minutes, st.sampled_from(["status", "props"])), max_size=8, unique_by=lambda c: c[0]),
    minutes,
    st.one_of(st.none(), st.tuples(minutes, st.integers(min_value=1, max_value=24 * 60))),
    st.one_of(st.none(), minutes),
    st.sampled_from(sorted(SITES)),
)
def test_stitched_trace_agrees_with_the_truth_and_dates_logged_changes_exactly(
    changes, install, gap, born, site
):
    site_settings, make_snapshot, make_log, value, vcpus = SITES[site]
    created = CREATED if born is None else at(born) + dt.timedelta(seconds=20)
    truth = Truth([(at(m), kind) for m, kind in changes], created)
    installed = at(install) - dt.timedelta(seconds=3)
    gap_times = (at(gap[0]), at(gap[0] + gap[1])) if gap else None
    snaps = [make_snapshot(truth, s) for s in SNAPSHOTS]
    found = log_candidates(make_log(truth, installed, gap_times).log(), site_settings, snaps)
    events = stitched_events(snaps, found.candidates, found.known).events

    # created once, at its creation
    assert [e.time for e in events if e.event == "CREATE"] == [created]
    # the trace's state agrees with the truth at every snapshot that shows the host
    for s in SNAPSHOTS:
        if s >= created:
            enabled, version = truth.state(s)
            assert replay(events, s, value=value) == (enabled, vcpus(version)), s
    logged = [
        (t, kind)
        for t, kind in truth.changes
        if t > installed and not (gap_times and gap_times[0] <= t < gap_times[1])
    ]
    # every logged change is there at its exact time (when the trace knew the state before it: a change
    # made while the triggers were dropped and undone before any dump is seen by nobody)
    for t, kind in logged:
        earlier = truth.state(t - dt.timedelta(seconds=1))
        if replay(events, t, before=True, value=value) != (earlier[0], vcpus(earlier[1])):
            continue
        enabled, version = truth.state(t)
        if kind == "status":
            event = "ENABLE" if enabled else "DISABLE"
            assert any(e.time == t and e.event == event for e in events), (t, kind)
        else:
            assert any(
                e.time == t and e.event == "UPDATE" and value(e.properties) == vcpus(version) for e in events
            )
    # nothing invented: every event after the initial ones is a true change, at its time when logged,
    # else no earlier than it and no later than the first snapshot after it
    for e in events:
        if e.time == created:
            assert e.event in ("CREATE", "ENABLE")
            continue
        kind = "props" if e.event == "UPDATE" else "status"
        matches = []
        for t, k in truth.changes:
            if k != kind:
                continue
            enabled, version = truth.state(t)
            if kind == "status" and (e.event == "ENABLE") != enabled:
                continue
            if kind == "props" and value(e.properties) != vcpus(version):
                continue
            after = [s for s in SNAPSHOTS if s >= t]
            if (t, k) in logged:
                matches.append(e.time == t)
            else:
                matches.append(t <= e.time <= (after[0] if after else e.time))
        assert any(matches), f"invented: {e}"


def _states(*sightings):
    """Snapshots of one host record: (snapshot hour, enabled, status_at hour)."""
    return [
        Snapshot(
            f"mem://{hour}",
            f"s{hour}",
            T0 + dt.timedelta(hours=hour),
            "name",
            (
                HostState(
                    HOST,
                    CREATED,
                    None,
                    props(0),
                    enabled,
                    T0 + dt.timedelta(hours=status),
                    None,
                    ("1", CREATED),
                    LINK,
                ),
            ),
        )
        for hour, enabled, status in sightings
    ]


def _logged(*changes):
    return [
        Candidate(
            T0 + dt.timedelta(hours=hour), HOST, event, None, -1, T0 + dt.timedelta(hours=hour), LOG, True
        )
        for hour, event in changes
    ]


def test_a_change_the_log_records_is_dated_by_the_log_even_when_a_dump_dates_it_earlier():
    """A service's clock 30 s behind the database's: the dump says 11:59:30, the log 12:00:00 — one
    DISABLE, at the log's time."""
    snaps = _states((3, True, 2), (27, False, 12 - 1 / 120))
    stitched = stitched_events(snaps, _logged((12, "DISABLE")))
    assert [(e.time, e.event) for e in stitched.events][-1] == (T0 + dt.timedelta(hours=12), "DISABLE")
    assert stitched.sources[LOG] == 1 and len(stitched.events) == 3


def test_a_second_change_of_the_same_kind_in_one_window_is_kept_when_the_log_missed_it():
    """Disabled at 10:00 and enabled at 12:00 (both logged), disabled again at 20:00 while the triggers
    were dropped: the next dump's DISABLE is that third change, not the first one seen late."""
    snaps = _states((3, True, 2), (27, False, 20))
    stitched = stitched_events(snaps, _logged((10, "DISABLE"), (12, "ENABLE")))
    assert [(e.time, e.event) for e in stitched.events] == [
        (CREATED, "CREATE"),
        (CREATED, "ENABLE"),
        (T0 + dt.timedelta(hours=10), "DISABLE"),
        (T0 + dt.timedelta(hours=12), "ENABLE"),
        (T0 + dt.timedelta(hours=20), "DISABLE"),
    ]
    assert stitched.sources == {"snapshots": 3, LOG: 2}
