"""The per-host state machine and candidate events of SPEC §2, rule by rule, on hand-made snapshots."""

from __future__ import annotations

import datetime as dt
from typing import List, Optional

from hypothesis import given, settings
from hypothesis import strategies as st

from starcompactor.events import EVENT_ORDER
from starcompactor.machines.diff import Candidate, candidate_events, machine_events, refine
from starcompactor.machines.state import HostState, Snapshot

T = dt.datetime(2024, 1, 1)
P1 = (("rack", "r1"), ("vcpu_capability", 8))
P2 = (("rack", "r1"), ("vcpu_capability", 16))


def h(hours: float) -> dt.datetime:
    return T + dt.timedelta(hours=hours)


def state(host="h", created=0, updated=None, props=P1, enabled=True, status=None, deleted=None) -> HostState:
    return HostState(
        host,
        h(created) if created is not None else None,
        h(updated) if updated is not None else None,
        props,
        enabled,
        h(status) if status is not None else None,
        h(deleted) if deleted is not None else None,
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
    got = machine_events([snap(10, state(created=0, status=5))])
    assert [(e.time, e.event) for e in got] == [(h(0), "CREATE"), (h(5), "ENABLE")]


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
    old = state(created=0, deleted=5)
    new = state(created=6, props=P2, status=7)
    got = machine_events([snap(10, old, new)])
    assert [(e.time, e.event) for e in got] == [
        (h(0), "CREATE"),
        (h(5), "DELETE"),
        (h(6), "CREATE"),
        (h(7), "ENABLE"),
    ]


def test_host_seen_only_as_deleted_gets_create_and_delete():
    got = machine_events([snap(10, state(created=1, deleted=3))])
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
    snaps = [snap(10 * k, state(updated=1, status=2)) for k in range(1, 5)]
    assert len(candidate_events(snaps)) == 3


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
