"""The per-host state machine and candidate events of SPEC §2, rule by rule, on hand-made snapshots."""

from __future__ import annotations

import datetime as dt
from typing import List, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from starcompactor.errors import SnapshotTimeError
from starcompactor.events import EVENT_ORDER
from starcompactor.machines.diff import (
    Candidate,
    candidate_events,
    machine_events,
    one_per_time,
    refine,
    snapshot_gaps,
)
from starcompactor.machines.state import HostState, Snapshot

T = dt.datetime(2024, 1, 1)
P1 = (("rack", "r1"), ("vcpu_capability", 8))
P2 = (("rack", "r1"), ("vcpu_capability", 16))


def h(hours: float) -> dt.datetime:
    return T + dt.timedelta(hours=hours)


def state(
    host="h", created=0, updated=None, props=P1, enabled=True, status=None, deleted=None, identity=None
) -> HostState:
    return HostState(
        host,
        h(created) if created is not None else None,
        h(updated) if updated is not None else None,
        props,
        enabled,
        h(status) if status is not None else None,
        h(deleted) if deleted is not None else None,
        (identity, h(created) if created is not None else None) if identity is not None else None,
    )


def snap(at: float, *hosts: HostState, name: Optional[str] = None) -> Snapshot:
    return Snapshot(f"mem://{at}", name or f"s{at}", h(at), "name", tuple(hosts))


def cand(at: float, event: str, props=P1, host="h", index=0) -> Candidate:
    return Candidate(h(at), host, event, props, index)


def kept(candidates: List[Candidate]):
    return [(e.time, e.event, tuple(e.properties.items())) for e in refine(candidates)]


# -- the state machine, rule by rule --------------------------------------------------------------


def test_first_event_must_be_create():
    assert kept([cand(1, "UPDATE", P2), cand(2, "ENABLE"), cand(3, "CREATE")]) == [(h(3), "CREATE", P1)]


def test_repeat_of_same_type_and_properties_keeps_the_earliest():
    got = kept(
        [cand(0, "CREATE"), cand(1, "ENABLE"), cand(2, "DISABLE"), cand(3, "DISABLE"), cand(4, "DISABLE")]
    )
    assert [e for _, e, _ in got] == ["CREATE", "ENABLE", "DISABLE"]
    assert got[-1][0] == h(2)


def test_update_with_unchanged_properties_is_dropped():
    got = kept([cand(0, "CREATE"), cand(1, "UPDATE"), cand(2, "UPDATE", P2), cand(3, "UPDATE", P2)])
    assert got == [(h(0), "CREATE", P1), (h(2), "UPDATE", P2)]


def test_update_compares_with_previous_kept_event_of_any_type():
    got = kept([cand(0, "CREATE"), cand(1, "ENABLE", P2), cand(2, "UPDATE", P2)])
    assert [e for _, e, _ in got] == ["CREATE", "ENABLE"]


def test_create_only_when_not_created_and_delete_only_when_created():
    got = kept(
        [
            cand(0, "CREATE"),
            cand(1, "CREATE", P2),
            cand(2, "DELETE", ()),
            cand(3, "DELETE", ()),
            cand(4, "CREATE", P2),
        ]
    )
    assert [(t, e) for t, e, _ in got] == [(h(0), "CREATE"), (h(2), "DELETE"), (h(4), "CREATE")]


def test_enable_only_when_not_enabled_disable_only_when_enabled():
    got = kept(
        [
            cand(0, "CREATE"),
            cand(1, "DISABLE"),
            cand(2, "ENABLE"),
            cand(3, "ENABLE", P2),
            cand(4, "DISABLE"),
            cand(5, "DISABLE", P2),
        ]
    )
    assert [(t, e) for t, e, _ in got] == [(h(0), "CREATE"), (h(2), "ENABLE"), (h(4), "DISABLE")]


def test_a_host_starts_not_enabled_so_a_healthy_host_gives_create_then_enable():
    # SPEC §2: a host first seen enabled gets its ENABLE at its CREATE (not at the heartbeat, 5)
    got = machine_events([snap(10, state(created=0, status=5))])
    assert [(e.time, e.event) for e in got] == [(h(0), "CREATE"), (h(0), "ENABLE")]


def test_events_of_a_deleted_host_are_dropped_and_re_created_host_is_enabled_again():
    got = kept(
        [
            cand(0, "CREATE"),
            cand(1, "ENABLE"),
            cand(2, "DELETE", ()),
            cand(2, "UPDATE", P2),
            cand(3, "DISABLE"),
            cand(4, "CREATE", P2),
            cand(5, "ENABLE", P2),
        ]
    )
    assert [(t, e) for t, e, _ in got] == [
        (h(0), "CREATE"),
        (h(1), "ENABLE"),
        (h(2), "DELETE"),
        (h(4), "CREATE"),
        (h(5), "ENABLE"),
    ]


def test_ties_follow_spec_order():
    # all at one time, given in reverse order: CREATE < DELETE < DISABLE < ENABLE < UPDATE
    got = kept([cand(0, "UPDATE", P2), cand(0, "ENABLE"), cand(0, "CREATE")])
    assert [e for _, e, _ in got] == ["CREATE", "ENABLE", "UPDATE"]


# -- candidates from snapshots ---------------------------------------------------------------------


def test_enable_before_create_is_dated_at_create():
    got = machine_events([snap(10, state(created=5, status=1))])
    assert [(e.time, e.event) for e in got] == [(h(5), "CREATE"), (h(5), "ENABLE")]


def test_disable_before_create_is_dated_at_create_and_dropped_as_initial_state():
    got = machine_events(
        [snap(10, state(created=5, status=1, enabled=False)), snap(20, state(created=5, status=15))]
    )
    assert [(e.time, e.event) for e in got] == [(h(5), "CREATE"), (h(15), "ENABLE")]


def test_create_carries_properties_of_the_earliest_snapshot():
    got = machine_events([snap(10, state(props=P1, updated=9)), snap(20, state(props=P2, updated=19))])
    assert [(e.event, tuple(e.properties.items())) for e in got if e.event == "CREATE"] == [("CREATE", P1)]
    assert [(e.time, e.event) for e in got if e.event == "UPDATE"] == [(h(19), "UPDATE")]


def test_vanished_host_is_deleted_at_the_first_snapshot_without_it():
    got = machine_events([snap(10, state()), snap(20, state(host="other")), snap(30)])
    deletes = [(e.host, e.time) for e in got if e.event == "DELETE"]
    assert deletes == [("h", h(20)), ("other", h(30))]


def test_soft_deleted_record_gives_delete_at_deleted_at_and_no_update():
    got = machine_events([snap(10, state(updated=9)), snap(20, state(updated=15, deleted=15, props=P2))])
    assert [e.event for e in got][:2] == ["CREATE", "ENABLE"]
    assert [(e.time, e.event) for e in got if e.event in ("DELETE", "UPDATE")] == [(h(15), "DELETE")]


def test_deleted_row_beside_a_live_row_of_the_same_host():
    # SPEC §2: the deleted row tells its last state (enabled, from its CREATE); each row's initial
    # state is dated at its own CREATE
    old = state(created=0, deleted=5)
    new = state(created=6, props=P2, status=7)
    got = machine_events([snap(10, old, new)])
    assert [(e.time, e.event) for e in got] == [
        (h(0), "CREATE"),
        (h(0), "ENABLE"),
        (h(5), "DELETE"),
        (h(6), "CREATE"),
        (h(6), "ENABLE"),
    ]


def test_host_seen_only_as_deleted_gets_create_and_delete():
    # SPEC §2: a soft-deleted row still tells its state (enabled from its CREATE)
    got = machine_events([snap(10, state(created=1, deleted=3))])
    assert [(e.time, e.event) for e in got] == [(h(1), "CREATE"), (h(1), "ENABLE"), (h(3), "DELETE")]
    got = machine_events([snap(10, state(created=1, deleted=3, enabled=False))])
    assert [(e.time, e.event) for e in got] == [(h(1), "CREATE"), (h(3), "DELETE")]


def test_unknown_enabled_state_gives_no_enable_or_disable():
    got = machine_events([snap(10, state(enabled=None, status=2))])
    assert [e.event for e in got] == ["CREATE"]


def test_missing_snapshot_is_not_a_deletion():
    # the diff only sees snapshots that were read: a skipped one is simply absent
    got = machine_events([snap(10, state()), snap(30, state())])
    assert "DELETE" not in {e.event for e in got}


def test_output_sorted_by_time_then_host_then_type():
    got = machine_events([snap(10, state("b", created=0, status=0), state("a", created=0, status=0))])
    assert [(e.host, e.event) for e in got] == [
        ("a", "CREATE"),
        ("a", "ENABLE"),
        ("b", "CREATE"),
        ("b", "ENABLE"),
    ]


def test_duplicate_candidates_from_many_snapshots_are_one():
    # CREATE, UPDATE and the first snapshot's ENABLE (at the CREATE, SPEC §2); the later snapshots show
    # the same record in the same state: nothing new
    snaps = [snap(10 * k, state(updated=1, status=2)) for k in range(1, 5)]
    assert len(candidate_events(snaps)) == 3


# -- SPEC §2 as revised: initial state, last state of a deleted row, partial dumps, equal times -------


def test_first_seen_enabled_host_gets_its_enable_at_its_create_not_at_a_heartbeat():
    # created long before the first dump, whose heartbeat says nothing about when it was enabled
    old = [snap(100 + 24 * k, state("old", created=0, status=99 + 24 * k, identity="1")) for k in range(3)]
    got = machine_events(old)
    assert [(e.time, e.event) for e in got] == [(h(0), "CREATE"), (h(0), "ENABLE")]
    # a host first seen in a later dump: its ENABLE is at its own CREATE too
    late = state("new", created=110, status=123.9, identity="2")
    got = machine_events([snap(100), snap(124, late), snap(148, late)])
    assert [(e.time, e.event) for e in got] == [(h(110), "CREATE"), (h(110), "ENABLE")]


def test_first_seen_disabled_host_gets_no_enable_until_it_is_enabled():
    history = [
        snap(100, state(created=0, enabled=False, status=50, identity="1")),
        snap(124, state(created=0, enabled=True, status=120, identity="1")),
    ]
    got = machine_events(history)
    assert [(e.time, e.event) for e in got] == [(h(0), "CREATE"), (h(120), "ENABLE")]


def test_a_disabled_then_soft_deleted_host_keeps_its_disable():
    # enabled in the dump at 03:00; disabled at 22:21, soft-deleted at 00:21, both before the next dump
    first = state(created=-100, status=2.98, identity="7")
    gone = state(created=-100, enabled=False, status=19 + 21 / 60, deleted=21 + 21 / 60, identity="7")
    got = machine_events([snap(3, first), snap(27, gone)])
    assert [(e.time, e.event) for e in got] == [
        (h(-100), "CREATE"),
        (h(-100), "ENABLE"),
        (h(19 + 21 / 60), "DISABLE"),
        (h(21 + 21 / 60), "DELETE"),
    ]


def test_a_state_written_with_the_deletion_is_dated_just_before_it():
    # the soft delete also wrote updated_at (21:00): the DISABLE came before it, the dump lost when
    first = state(created=0, status=2, identity="7")
    gone = state(created=0, enabled=False, status=21, deleted=21, identity="7")
    got = machine_events([snap(3, first), snap(27, gone)])
    assert [(e.time, e.event) for e in got] == [
        (h(0), "CREATE"),
        (h(0), "ENABLE"),
        (h(21) - dt.timedelta(seconds=1), "DISABLE"),
        (h(21), "DELETE"),
    ]
    # unchanged (still enabled when deleted): nothing but the DELETE
    same = state(created=0, enabled=True, status=21, deleted=21, identity="7")
    got = machine_events([snap(3, first), snap(27, same)])
    assert [e.event for e in got] == ["CREATE", "ENABLE", "DELETE"]


def test_a_host_missing_from_one_dump_and_back_with_the_same_identity_was_never_deleted(caplog):
    a = state("a", created=0, identity="1")
    b = state("b", created=0, identity="2")
    history = [snap(10, a, b), snap(20, b, name="partial"), snap(30, b), snap(40, a, b)]
    with caplog.at_level("WARNING"):
        got = machine_events(history)
    assert [(e.host, e.event) for e in got if e.host == "a"] == [("a", "CREATE"), ("a", "ENABLE")]
    assert "DELETE" not in {e.event for e in got}
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "mem://20" in warnings[0] and "1 host" in warnings[0]
    gaps = snapshot_gaps(history)
    assert {i: g.hosts for i, g in gaps.items()} == {1: ("a",)}


def test_a_host_back_with_another_identity_was_deleted_and_created_again():
    history = [
        snap(10, state("a", created=0, identity="1")),
        snap(20),
        snap(30, state("a", created=25, props=P2, identity="9")),
    ]
    got = machine_events(history)
    assert [(e.time, e.event) for e in got] == [
        (h(0), "CREATE"),
        (h(0), "ENABLE"),
        (h(20), "DELETE"),
        (h(25), "CREATE"),
        (h(25), "ENABLE"),
    ]


def test_dumps_with_the_same_snapshot_time_are_one_when_identical(caplog):
    one = Snapshot("/b/x.sql.gz", "x.sql.gz", h(10), "name", (state(identity="1"),))
    same = Snapshot("/b/x.sql.zst", "x.sql.zst", h(10), "name", (state(identity="1"),))
    later = Snapshot("/b/y.sql.gz", "y.sql.gz", h(20), "name", (state(identity="1"),))
    with caplog.at_level("WARNING"):
        assert one_per_time([later, same, one]) == [one, later]
    assert "/b/x.sql.gz and /b/x.sql.zst" in caplog.text


def test_dumps_with_the_same_snapshot_time_and_different_hosts_are_an_error():
    one = Snapshot("/b/x.sql.gz", "x.sql.gz", h(10), "name", (state(identity="1"),))
    other = Snapshot("/b/z.sql.gz", "z.sql.gz", h(10), "trailer", (state(identity="1", props=P2),))
    with pytest.raises(SnapshotTimeError) as info:
        one_per_time([other, one])
    assert "/b/x.sql.gz and /b/z.sql.gz" in str(info.value) and "2024-01-01T10:00:00" in str(info.value)


# -- invariants over random histories -----------------------------------------------------------------

hours = st.integers(min_value=0, max_value=40)
records = st.builds(
    lambda host, created, upd, props, enabled, status, deleted: state(
        host, created, upd, props, enabled, status, deleted if deleted is None else max(created, deleted)
    ),
    st.sampled_from(["h1", "h2", "h3"]),
    hours,
    st.one_of(st.none(), hours),
    st.sampled_from([P1, P2]),
    st.sampled_from([True, False, None]),
    st.one_of(st.none(), hours),
    st.one_of(st.none(), hours),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(records, max_size=4), min_size=1, max_size=5))
def test_state_machine_invariants(histories):
    snaps = [snap(50 + 10 * i, *hosts) for i, hosts in enumerate(histories)]
    events = machine_events(snaps)
    keys = [(e.time, e.host, EVENT_ORDER[e.event]) for e in events]
    assert keys == sorted(keys)
    for host in {e.host for e in events}:
        mine = [e for e in events if e.host == host]
        assert mine[0].event == "CREATE"
        created = enabled = False
        prev = None
        for e in mine:
            if e.event == "CREATE":
                assert not created
                created, enabled = True, False
            elif e.event == "DELETE":
                assert created
                created, enabled = False, False
            else:
                assert created
                if e.event == "ENABLE":
                    assert not enabled
                    enabled = True
                elif e.event == "DISABLE":
                    assert enabled
                    enabled = False
                else:
                    assert prev is not None and e.properties != prev.properties
            prev = e


identified = st.builds(
    lambda host, created, upd, props, enabled, status: state(
        host, created, upd, props, enabled, status, None, identity=f"{host}-{created}"
    ),
    st.sampled_from(["h1", "h2", "h3"]),
    st.integers(min_value=0, max_value=3),
    st.one_of(st.none(), hours),
    st.sampled_from([P1, P2]),
    st.sampled_from([True, False, None]),
    st.one_of(st.none(), hours),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(identified, max_size=3, unique_by=lambda r: r.host), min_size=2, max_size=5), st.data()
)
def test_a_partial_copy_of_a_dump_changes_nothing(histories, data):
    """A dump that lacks some hosts (a partial copy of the one before it) between two dumps that both
    show them with the same identity changes no event: they were never deleted."""
    snaps = [snap(50 + 10 * i, *hosts) for i, hosts in enumerate(histories)]
    j = data.draw(st.integers(min_value=0, max_value=len(snaps) - 2))
    before, after = snaps[j].identities(), snaps[j + 1].identities()
    droppable = sorted(host for host in before if before[host] & after.get(host, set()))
    dropped = set(data.draw(st.lists(st.sampled_from(droppable), unique=True))) if droppable else set()
    partial = snap(55 + 10 * j, *(r for r in snaps[j].hosts if r.host not in dropped), name="partial")
    assert machine_events(snaps[: j + 1] + [partial] + snaps[j + 1 :]) == machine_events(snaps)
