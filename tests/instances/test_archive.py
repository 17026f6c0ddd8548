"""Instance events from archived dumps (``--source dump``) against the database source over the same state.

The REAL MariaDB of the session fixture holds two Nova cells (the real schema); the real mysqldump writes
the archive. The reference is ``--source db`` over the same rows: for a dump's ``shadow_*`` tables, after
moving them back into the live tables (the database source reads only those); for a history whose older
dumps hold purged rows, over the union of every dump's rows (each dump restored in turn with REPLACE).
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Sequence

import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from starcompactor.dump.cache import DumpCache
from starcompactor.instances import DatabaseSource, DbSettings
from starcompactor.instances.archive import DumpSource, dropped_rows, read_dump_events, union_rows
from starcompactor.instances.hosts import physical_host
from starcompactor.machines.backups import list_backups
from tests.support.instances import as_tuples

A, B = "ar_nova", "ar_nova_cell1"
REF_A, REF_B = "ar_ref_nova", "ar_ref_nova_cell1"
TABLES = ("instances", "instance_actions", "instance_actions_events")


def _q(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"


def instance(
    uuid,
    name="vm",
    user="u",
    project="p",
    host="c01",
    node="c01.example.org",
    flavor=(2048, 20, 2),
    deleted=0,
):
    return dict(
        id=int(uuid[:8]) + 1,  # explicit: live and shadow ids must not collide when shadow moves back
        uuid=uuid,
        hostname=name,
        user_id=user,
        project_id=project,
        host=host,
        node=node,
        memory_mb=flavor[0],
        root_gb=flavor[1],
        vcpus=flavor[2],
        deleted=deleted,
    )


def action(action_id, uuid, created, request="req"):
    return dict(
        id=action_id, instance_uuid=uuid, created_at=created, request_id=f"{request}-{action_id}", action="x"
    )


def event(event_id, action_id, name, start, finish, result="Success", host=None, traceback=None):
    return dict(
        id=event_id,
        action_id=action_id,
        event=name,
        start_time=start,
        finish_time=finish,
        result=result,
        host=host,
        traceback=traceback,
    )


def insert(table: str, rows: Sequence[Dict]) -> str:
    if not rows:
        return ""
    columns = sorted({k for row in rows for k in row})
    values = ",".join("(" + ",".join(_q(row.get(c)) for c in columns) + ")" for row in rows)
    return f"INSERT INTO `{table}` ({','.join(f'`{c}`' for c in columns)}) VALUES {values};\n"


def load(server, database: str, live: Dict[str, List[Dict]], shadow: Dict[str, List[Dict]] = None) -> None:
    """Replace the instance tables of ``database`` with these rows."""
    sql = "SET FOREIGN_KEY_CHECKS=0;\n"
    for table in TABLES:
        sql += f"DELETE FROM `{table}`; DELETE FROM `shadow_{table}`;\n"
        sql += insert(table, live.get(table, []))
        sql += insert(f"shadow_{table}", (shadow or {}).get(table, []))
    server.sql(sql, database)


@pytest.fixture(scope="module")
def cells(mariadb):
    for database in (A, B, REF_A, REF_B):
        mariadb.sql(f"DROP DATABASE IF EXISTS `{database}`")
        mariadb.load_schema("nova.sql", database=database)
    yield mariadb
    for database in (A, B, REF_A, REF_B):
        mariadb.sql(f"DROP DATABASE IF EXISTS `{database}`")


def settings(server) -> DbSettings:
    return DbSettings(socket=server.socket, user="root")


def write_dump(server, directory: Path, day: int, databases=(A, B)) -> Path:
    """The real mysqldump of ``databases``, gzip, named as Chameleon's backup job names it."""
    directory.mkdir(parents=True, exist_ok=True)
    data = server.dump(["--single-transaction", "--databases", *databases])
    path = directory / f"mysqldump-2024-01-{day:02d}T03:00:00Z.mysql.gz"
    path.write_bytes(gzip.compress(data, 1))
    return path


def move_shadow_into_live(server, database: str) -> None:
    """What the database source would see had nothing been archived (REPLACE: a newer row wins)."""
    server.sql(
        "SET FOREIGN_KEY_CHECKS=0;\n"
        + "".join(
            f"REPLACE INTO `{t}` SELECT * FROM `shadow_{t}`; DELETE FROM `shadow_{t}`;\n" for t in TABLES
        ),
        database,
    )


def db_events(server, databases, **options) -> list:
    return as_tuples(list(DatabaseSource(settings(server), databases, **options)))


def dump_events(directory: Path, databases, **options) -> list:
    return as_tuples(list(DumpSource(list_backups(str(directory)), databases, **options)))


# -- one dump: live + shadow tables, vm and bare metal, two cells --------------------------------------

U1, U2, U3, U4, U5 = (f"{i}{i}{i}{i}{i}{i}{i}{i}-0000-4000-8000-00000000000{i}" for i in range(1, 6))

STATE_A = {
    "instances": [
        instance(U1, "web-1", node="c01-01.example.org"),
        instance(U3, "no-node", node="", host="c03"),
        instance(U5, 'ünïcödé, "quoted"\\n', node=None, host=None, flavor=(None, 1, 1)),
    ],
    "instance_actions": [
        action(1, U1, "2024-01-01 00:00:00"),
        action(2, U1, "2024-01-02 10:00:00"),
        action(4, U3, "2024-01-03 00:00:00"),
        action(5, U5, "2024-01-03 00:00:00"),
        action(9, "99999999-0000-4000-8000-000000000009", "2024-01-03 00:00:00"),  # no such instance
    ],
    "instance_actions_events": [
        event(
            1,
            1,
            "compute__do_build_and_run_instance",
            "2024-01-01 00:00:01",
            "2024-01-01 00:00:31",
            host="c01",
        ),
        event(2, 2, "compute_reboot_instance", "2024-01-02 10:00:05", None, None),
        event(
            3, 4, "compute_stop_instance", "2024-01-03 00:00:00", "2024-01-03 00:00:01", None, host="c03-x"
        ),
        event(
            4,
            5,
            "conductor_schedule_and_build_instances",
            "2024-01-03 00:00:00",
            "2024-01-03 00:00:02",
            "Error",
            host="conductor-1",
            traceback="Traceback:\n  'x'",
        ),
        event(5, 9, "compute_stop_instance", "2024-01-03 00:00:00", "2024-01-03 00:00:01"),
        event(6, 77, "orphan", "2024-01-03 00:00:00", "2024-01-03 00:00:01"),  # no such action
    ],
}
SHADOW_A = {  # U2 was deleted and archived: its rows are in shadow_* only
    "instances": [instance(U2, "gone", node=None, host="c02", flavor=(4096, 40, 4), deleted=7)],
    "instance_actions": [action(3, U2, "2024-01-01 12:00:00")],
    "instance_actions_events": [
        event(7, 3, "compute_terminate_instance", "2024-01-01 12:00:00", "2024-01-01 12:00:10", "Error"),
        event(
            8, 3, "compute_terminate_instance", "2024-01-01 12:00:00", "2024-01-01 12:00:10"
        ),  # same second
    ],
}
STATE_B = {
    "instances": [
        instance(
            U4, "bm-1", host="ironic-conductor", node="9e5476bd-a4ec-4653-93d6-72c93aa682ba", flavor=(0, 0, 0)
        )
    ],
    "instance_actions": [action(6, U4, "2023-12-31 23:59:00"), action(7, U4, "2024-01-01 06:00:00")],
    "instance_actions_events": [
        event(1, 6, "compute_reboot_instance", "2023-12-31 23:59:00", "2024-01-01 00:00:30"),
        event(2, 7, "compute__do_build_and_run_instance", "2024-01-01 06:00:00", "2024-01-01 06:05:00"),
        event(3, 7, "conductor_schedule_and_build_instances", "2024-01-01 05:59:58", "2024-01-01 06:00:00"),
        event(
            4, 7, "compute__do_build_and_run_instance", "2024-01-01 00:00:01", "2024-01-01 00:00:02"
        ),  # ties cell A
    ],
}


@pytest.fixture(scope="module")
def one_dump(cells, tmp_path_factory):
    server = cells
    load(server, A, STATE_A, SHADOW_A)
    load(server, B, STATE_B)
    directory = tmp_path_factory.mktemp("one-dump")
    write_dump(server, directory, 1)
    for database in (A, B):
        move_shadow_into_live(server, database)
    return server, directory


@pytest.mark.parametrize("instance_type", ["vm", "baremetal"])
@pytest.mark.parametrize("include_unfinished", [False, True])
def test_one_dump_gives_the_database_rows(one_dump, instance_type, include_unfinished):
    server, directory = one_dump
    options = dict(instance_type=instance_type, include_unfinished=include_unfinished)
    expected = db_events(server, [A, B], **options)
    got = dump_events(directory, [A, B], **options)
    assert got == expected
    assert (
        len(expected) == (11 if include_unfinished else 10) - 1
    )  # the dangling action's event is not joined
    uuids = {row[0] for row in got}
    assert U2 in uuids  # only in the shadow tables
    if instance_type == "baremetal":
        assert all(row[-1] == {} for row in got)


def test_events_spilled_in_small_runs_merge_into_the_same_rows(one_dump, tmp_path):
    """Runs of 1, 2 or 3 events go to disk and are merged back: the rows of one run kept in memory
    (which the tests above check against the database), ties on start time in cell then id order."""
    _server, directory = one_dump
    (dump,) = list_backups(str(directory))
    whole = list(read_dump_events(dump.uri, dump.name, [A, B], "vm", str(tmp_path)))
    assert len(whole) == 10
    starts = [(row[0], row[1], row[2]) for row in whole]
    assert starts == sorted(starts) and ("2024-01-01 00:00:01", 1, 4) in starts
    for size in (1, 2, 3):
        assert (
            list(read_dump_events(dump.uri, dump.name, [A, B], "vm", str(tmp_path), run_size=size)) == whole
        )
    assert os.listdir(tmp_path) == []  # the runs are removed


def test_identity_keys_made_in_the_join_are_those_of_the_rows(one_dump, tmp_path):
    from starcompactor.instances.archive import _identity_text

    _, directory = one_dump
    dump = sorted(directory.iterdir())[-1]
    rows = list(read_dump_events(str(dump), dump.name, [A, B], "vm", str(tmp_path), identities=True))
    assert rows and all(len(row) == 14 for row in rows)
    assert [row[13] for row in rows] == [_identity_text(row[:13], 1) for row in rows]


def test_window_and_cell_list(one_dump):
    server, directory = one_dump
    window = dict(start=dt.datetime(2024, 1, 1, 0, 0, 0, 500000), end=dt.datetime(2024, 1, 2, 10))
    assert dump_events(directory, [B, A], **window) == db_events(server, [B, A], **window)
    assert dump_events(directory, [A], **window) == db_events(server, [A], **window)


def test_host_rule_node_then_event_host_then_instance_host(one_dump):
    _, directory = one_dump
    hosts = {(row[0], row[1]): row[8] for row in dump_events(directory, [A, B], include_unfinished=True)}
    assert hosts[(U1, "compute__do_build_and_run_instance")] == "c01-01.example.org"  # node wins
    assert hosts[(U3, "compute_stop_instance")] == "c03-x"  # node '' → the event's host
    assert hosts[(U5, "conductor_schedule_and_build_instances")] == "conductor-1"  # node NULL → event host
    assert hosts[(U2, "compute_terminate_instance")] == "c02"  # neither → instances.host
    assert physical_host(None, None, None) is None and physical_host("", "", "") == ""


def test_cli_writes_the_same_trace_as_the_database_source(one_dump, tmp_path):
    server, directory = one_dump
    key = tmp_path / "key"
    key.write_text("the-key\n")
    common = ["--nova-databases", f"{A},{B}", "--hashed-masking-key-file", str(key), "--quiet"]
    env = dict(os.environ, TQDM_DISABLE="1")
    for fmt in ("csv", "legacy-csv", "jsonl"):
        db_out, dump_out = tmp_path / f"db.{fmt}", tmp_path / f"dump.{fmt}"
        base = [sys.executable, "-m", "starcompactor", "instances", "--format", fmt, *common]
        subprocess.run(
            [
                *base,
                "--source",
                "db",
                "--no-defaults",
                "--db-user",
                "root",
                "--db-socket",
                server.socket,
                str(db_out),
            ],
            check=True,
            env=env,
            cwd=tmp_path,
        )
        subprocess.run(
            [*base, "--source", "dump", "--backup-dir", str(directory), str(dump_out)],
            check=True,
            env=env,
            cwd=tmp_path,
        )
        assert dump_out.read_bytes() == db_out.read_bytes()
        assert dump_out.read_bytes().count(b"\n") > 5


def test_a_dump_without_instance_tables_is_an_error(tmp_path):
    from starcompactor.errors import StarCompactorError

    plain = tmp_path / "mysqldump-2024-01-01T03:00:00Z.sql"
    plain.write_text("-- MySQL dump 10.13\nUSE `other`;\n-- Dump completed on 2024-01-01  3:00:00\n")
    with pytest.raises(StarCompactorError, match="none of the Nova databases nova"):
        list(DumpSource(list_backups(str(tmp_path)), ["nova"]))


# -- a history: archive, purge, id reuse ----------------------------------------------------------------


def union_reference(server, dumps_data: Sequence[Dict[str, bytes]]) -> None:
    """REF_A/REF_B hold every dump's rows, the newest version of each, shadow moved into live."""
    for ref, cell in ((REF_A, A), (REF_B, B)):
        load(server, ref, {})
        for data in dumps_data:
            done = subprocess.run([*server.client_args(), ref], input=data[cell], capture_output=True)
            assert done.returncode == 0, done.stderr
        move_shadow_into_live(server, ref)


def snapshot_for_reference(server) -> Dict[str, bytes]:
    """The rows of both cells as REPLACE statements (data only, no database names)."""
    return {
        cell: server.dump(
            ["--no-create-info", "--replace", "--skip-triggers", "--skip-add-locks"], databases=[cell]
        )
        for cell in (A, B)
    }


def write_history(server, directory: Path, days: int = 3) -> List[str]:
    """Dumps of three days (the first ``days``): day 1 with an unfinished event and an instance to be
    deleted; day 2 with it archived (shadow tables) and the event finished; day 3 with it purged and an
    action of cell B purged too. Returns each day's reference snapshot."""
    refs = []
    # day 1: U1 live with an unfinished event; U2 live (to be deleted, archived, purged)
    day1 = {
        "instances": [instance(U1, "web-1"), instance(U2, "doomed", node="c02.example.org")],
        "instance_actions": [action(1, U1, "2024-01-01 00:00:00"), action(2, U2, "2024-01-01 01:00:00")],
        "instance_actions_events": [
            event(1, 1, "compute__do_build_and_run_instance", "2024-01-01 00:00:01", None, None),
            event(2, 2, "compute__do_build_and_run_instance", "2024-01-01 01:00:01", "2024-01-01 01:00:30"),
        ],
    }
    load(server, A, day1)
    load(server, B, STATE_B)
    write_dump(server, directory, 1)
    refs.append(snapshot_for_reference(server))
    if days < 2:
        return refs
    # day 2: U1's event finished; U2 deleted and archived (moved to shadow_*); a new event
    day2_live = {
        "instances": [instance(U1, "web-1")],
        "instance_actions": [action(1, U1, "2024-01-01 00:00:00"), action(3, U1, "2024-01-02 00:00:00")],
        "instance_actions_events": [
            event(1, 1, "compute__do_build_and_run_instance", "2024-01-01 00:00:01", "2024-01-01 00:00:40"),
            event(3, 3, "compute_reboot_instance", "2024-01-02 00:00:01", "2024-01-02 00:00:09"),
        ],
    }
    day2_shadow = {
        "instances": [instance(U2, "doomed", node="c02.example.org", deleted=2)],
        "instance_actions": [action(2, U2, "2024-01-01 01:00:00")],
        "instance_actions_events": [
            event(2, 2, "compute__do_build_and_run_instance", "2024-01-01 01:00:01", "2024-01-01 01:00:30"),
            event(4, 2, "compute_terminate_instance", "2024-01-02 05:00:00", "2024-01-02 05:00:03"),
        ],
    }
    load(server, A, day2_live, day2_shadow)
    write_dump(server, directory, 2)
    refs.append(snapshot_for_reference(server))
    if days < 3:
        return refs
    # day 3: purged: U2 is gone from every table; B's oldest action purged too
    day3_b = {k: [r for r in v if r.get("id") != 6 and r.get("action_id") != 6] for k, v in STATE_B.items()}
    load(server, A, day2_live)
    load(server, B, day3_b)
    write_dump(server, directory, 3)
    refs.append(snapshot_for_reference(server))
    return refs


def test_history_with_archived_and_purged_rows(cells, tmp_path):
    server = cells
    directory = tmp_path / "history"
    refs = write_history(server, directory)

    union_reference(server, refs)
    for include_unfinished in (False, True):
        options = dict(include_unfinished=include_unfinished)
        expected = db_events(server, [REF_A, REF_B], **options)
        got = dump_events(directory, [A, B], **options)  # every dump: the default (SPEC §6)
        assert got == expected
        newest_only = dump_events(directory, [A, B], all_dumps=False, **options)
        assert len(newest_only) == len(expected) - 3  # U2's build and terminate, B's purged reboot
        assert not any(row[0] == U2 for row in newest_only)
    # the finished version of U1's build (day 2) wins over its unfinished one (day 1)
    builds = [row for row in got if row[0] == U1 and row[1] == "compute__do_build_and_run_instance"]
    assert [row[3] for row in builds] == [dt.datetime(2024, 1, 1, 0, 0, 40)]


def test_an_id_reused_after_purge_is_another_event(cells, tmp_path):
    """InnoDB (before MySQL 8.0) resets AUTO_INCREMENT at a restart: a purged event's id comes back."""
    server = cells
    directory = tmp_path / "history"
    old = {
        "instances": [instance(U1, "a")],
        "instance_actions": [action(1, U1, "2024-01-01 00:00:00")],
        "instance_actions_events": [
            event(1, 1, "compute_start_instance", "2024-01-01 00:00:01", "2024-01-01 00:00:02")
        ],
    }
    new = {
        "instances": [instance(U3, "b")],
        "instance_actions": [action(1, U3, "2024-01-02 00:00:00")],
        "instance_actions_events": [
            event(1, 1, "compute_stop_instance", "2024-01-02 00:00:01", "2024-01-02 00:00:02")
        ],
    }
    load(server, B, {})
    load(server, A, old)
    write_dump(server, directory, 1)
    load(server, A, new)
    write_dump(server, directory, 2)
    got = dump_events(directory, [A, B], all_dumps=True)
    assert [(row[0], row[1]) for row in got] == [
        (U1, "compute_start_instance"),
        (U3, "compute_stop_instance"),
    ]


def test_dropped_and_union_in_identity_order():
    def row(start, cell, event_id, uuid="u", name="e", finish=None):
        return [start, cell, event_id, uuid, name, finish, None, None, None, None, None, None, 0]

    older = [row("a", 0, 1), row("b", 0, 2), row("b", 1, 2), row("c", 0, 3)]
    newer = [row("b", 0, 2, finish="x"), row("d", 0, 4)]
    dropped = list(dropped_rows(older, newer))
    assert dropped == [row("a", 0, 1), row("b", 1, 2), row("c", 0, 3)]
    merged = list(union_rows([newer, dropped]))
    assert merged == [
        row("a", 0, 1),
        row("b", 0, 2, finish="x"),
        row("b", 1, 2),
        row("c", 0, 3),
        row("d", 0, 4),
    ]


_identities = st.tuples(
    st.sampled_from(["", "2024-01-01 00:00:00", "2024-01-01 00:00:01", "2024-01-02 10:00:00"]),
    st.integers(0, 1),
    st.sampled_from([1, 2, 3, 2**40, -(2**63), 2**64 - 1]),
    st.sampled_from(["u1", "u2", "", "u\u00e9"]),
    st.sampled_from(["start", "stop", ""]),
)


def _split(items: list, sizes: List[int]) -> List[list]:
    """``items`` in batches of the given sizes, cycled (a batch may be empty)."""
    batches, i, k = [], 0, 0
    while i < len(items):
        size = sizes[k % len(sizes)]
        batches.append(items[i : i + size])
        i, k = i + size, k + 1
    return batches


@hsettings(max_examples=300, deadline=None)
@given(
    older=st.sets(_identities, max_size=40),
    newer=st.sets(_identities, max_size=40),
    older_sizes=st.lists(st.integers(1, 7), min_size=1, max_size=4),
    newer_sizes=st.lists(st.integers(0, 7), min_size=1, max_size=4).filter(any),
    low=st.none() | _identities,
    high=st.none() | _identities,
)
def test_stored_keys_find_the_rows_the_newer_dump_lacks(older, newer, older_sizes, newer_sizes, low, high):
    """Comparing two dumps' stored keys (batches of any size, compared a batch at a time where they agree)
    finds what comparing their rows finds: the older rows whose identity the newer lacks, in order; within
    a range of order prefixes ``[low, high)`` (a part of the trace) too."""
    from starcompactor.instances.archive import (
        CELL,
        ID,
        START,
        OlderKeys,
        _identity_text,
        _order_prefix,
        keys_dropped,
    )

    def bound(identity):
        return None if identity is None else _order_prefix(list(identity[:3]) + [None] * 10, 1)

    low_prefix, high_prefix = bound(low), bound(high)

    def in_range(row):
        prefix = _order_prefix(row, 1)
        return (low_prefix is None or prefix >= low_prefix) and (high_prefix is None or prefix < high_prefix)

    def rows(identities):
        made = [[s, c, i, u, e, "fin", None, None, None, None, None, None, 0] for s, c, i, u, e in identities]
        return sorted(made, key=lambda r: (r[START], r[CELL], r[ID], r[3], r[4]))

    old_rows, new_rows = rows(older), rows(newer)
    width = 1
    lines = [
        (orjson.dumps([_identity_text(r, width) for r in batch]), orjson.dumps(batch))
        for batch in _split(old_rows, older_sizes)
    ]
    new_part = [r for r in new_rows if in_range(r)]
    new_keys = [[_identity_text(r, width) for r in batch] for batch in _split(new_part, newer_sizes)]
    older_keys = OlderKeys(iter(lines), low_prefix)
    got = [row for batch in keys_dropped(older_keys, new_keys, high_prefix) for row in batch]
    assert got == list(dropped_rows([r for r in old_rows if in_range(r)], new_part))


# -- property: random tables through the real mysqldump ------------------------------------------------

_names = st.sampled_from(
    ["compute_start_instance", "compute_stop_instance", "compute_reboot_instance", "x,y"]
)
_times = st.datetimes(min_value=dt.datetime(2023, 12, 30), max_value=dt.datetime(2024, 1, 3)).map(
    lambda t: t.replace(microsecond=0).isoformat(" ")
)
_text = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs", "Cc")), max_size=8) | st.just(
    "a'b\\c\nd"
)
_maybe = lambda s: st.none() | s  # noqa: E731


@st.composite
def cell_tables(draw):
    uuids = [f"{i:08d}-0000-4000-8000-000000000000" for i in range(draw(st.integers(1, 4)))]
    instances_live, instances_shadow = [], []
    for uuid in uuids:
        row = instance(
            uuid,
            draw(_maybe(_text)),
            draw(_maybe(_text)),
            draw(st.sampled_from(["p1", "p2"])),
            draw(_maybe(st.sampled_from(["c1", ""]))),
            draw(_maybe(st.sampled_from(["n1.example.org", ""]))),
            (draw(_maybe(st.integers(0, 10**6))), 1, draw(st.integers(0, 64))),
        )
        (instances_shadow if draw(st.booleans()) else instances_live).append(row)
    actions = [
        action(i + 1, draw(st.sampled_from(uuids + ["missing"])), draw(_times))
        for i in range(draw(st.integers(0, 6)))
    ]
    events = [
        event(
            i + 1,
            draw(st.integers(1, len(actions) + 1)),
            draw(_names),
            draw(_maybe(_times)),
            draw(_maybe(_times)),
            draw(_maybe(st.sampled_from(["Success", "Error"]))),
            draw(_maybe(st.sampled_from(["c9", ""]))),
        )
        for i in range(draw(st.integers(0, 12)))
    ]
    shadow_actions = [a for a in actions if draw(st.booleans())]
    return (
        {
            "instances": instances_live,
            "instance_actions": [a for a in actions if a not in shadow_actions],
            "instance_actions_events": events,
        },
        {"instances": instances_shadow, "instance_actions": shadow_actions},
    )


@hsettings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=cell_tables(), second=cell_tables(), unfinished=st.booleans())
def test_random_tables_give_the_database_rows(cells, tmp_path_factory, first, second, unfinished):
    server = cells
    directory = tmp_path_factory.mktemp("random")
    # live events may only point at live actions (foreign key): move those of shadow actions to shadow too
    for (live, shadow), cell in ((first, A), (second, B)):
        shadow_ids = {a["id"] for a in shadow["instance_actions"]}
        shadow["instance_actions_events"] = [
            e for e in live["instance_actions_events"] if e["action_id"] in shadow_ids
        ]
        live_events = [e for e in live["instance_actions_events"] if e["action_id"] not in shadow_ids]
        load(server, cell, dict(live, instance_actions_events=live_events), shadow)
    write_dump(server, directory, 1)
    for database in (A, B):
        move_shadow_into_live(server, database)
    options = dict(include_unfinished=unfinished)
    assert dump_events(directory, [A, B], **options) == db_events(server, [A, B], **options)


def test_the_cache_gives_the_same_events_and_reads_only_new_dumps(cells, tmp_path):
    server = cells
    directory = tmp_path / "history"
    load(server, A, STATE_A, SHADOW_A)
    load(server, B, STATE_B)
    write_dump(server, directory, 1)
    load(server, A, STATE_A)
    write_dump(server, directory, 2)
    cold = dump_events(directory, [A, B], all_dumps=True)
    cache = DumpCache(str(tmp_path / "cache"))
    first = as_tuples(list(DumpSource(list_backups(str(directory)), [A, B], all_dumps=True, cache=cache)))
    assert cache.hits == 0
    assert len(first) == len(cold)
    assert first == cold
    load(server, A, {k: v[:1] for k, v in STATE_A.items()})
    write_dump(server, directory, 3)
    expected = dump_events(directory, [A, B], all_dumps=True)
    cache = DumpCache(str(tmp_path / "cache"))
    source = DumpSource(list_backups(str(directory)), [A, B], all_dumps=True, cache=cache)
    assert as_tuples(list(source)) == expected
    assert [s.read for s in source.stats] == [False, False, True]  # only the new dump is read
    assert any(row[0] == U2 for row in expected)  # only dump 1's shadow tables had U2


def test_a_truncated_dump_is_one_line_and_no_output(one_dump, tmp_path):
    _, directory = one_dump
    source = sorted(directory.iterdir())[-1]
    broken = tmp_path / "dumps"
    broken.mkdir()
    data = gzip.decompress(source.read_bytes())
    (broken / source.name).write_bytes(gzip.compress(data[: len(data) * 2 // 3]))
    out = tmp_path / "out.csv"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "starcompactor",
            "instances",
            "--source",
            "dump",
            "--backup-dir",
            str(broken),
            "--nova-databases",
            f"{A},{B}",
            "--hashed-masking-method",
            "none",
            "-q",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("starcompactor: error: ") and source.name in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_every_dump_is_read_by_default_and_newest_only_on_request():
    """SPEC §6: `--source dump --backup-dir DIR` gives the purged history too; `--newest-dump-only` opts out."""
    from starcompactor.cli.main import build_parser

    parser = build_parser()
    base = ["instances", "--source", "dump", "--backup-dir", "d", "out.csv"]
    assert parser.parse_args(base).all_dumps is True
    assert parser.parse_args([*base[:-1], "--all-dumps", "out.csv"]).all_dumps is True
    assert parser.parse_args([*base[:-1], "--newest-dump-only", "out.csv"]).all_dumps is False
    with pytest.raises(SystemExit):
        parser.parse_args([*base[:-1], "--all-dumps", "--newest-dump-only", "out.csv"])
