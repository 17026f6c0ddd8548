"""Machine events with the openstack_audit log, checked against what each fixture scenario really did.

The scenarios (tests/fixtures/audit/, made with the role's real triggers and backfill on MariaDB) write
their true events in ``truth.json``: ``from`` = ``log`` when an audit row dates the event exactly,
``snapshots`` when only the dumps see it. The checks (``assert_truth``) are the issue's goal, not this
code's output: every transition present, nothing invented, every change the log records at its exact
time (±1 s), every initial ENABLE at its CREATE, and what only the dumps see dated in its snapshot window.
Forms: the dumps' own log, a Parquet export (with and without the dumps; local and s3://), a live server.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import pytest

from starcompactor.audit.dumps import read_dump_log
from starcompactor.config import load_config
from starcompactor.machines import make_machine_trace
from starcompactor.machines.trace import AuditSource
from starcompactor.mask import Masker, natural_key
from tests.support.paths import FIXTURES
from tests.support.s3 import s3_client, use_s3_endpoint

AUDIT = FIXTURES / "audit"
D = dt.datetime
SECOND = dt.timedelta(seconds=1)
BM = ("bm_old", "bm_chameleon", "bm_upstream")
ALL = ("vm",) + BM


def truth(scenario: str) -> Dict[str, Any]:
    return json.loads((AUDIT / scenario / "truth.json").read_text())


def config_of(scenario: str, tmp_path: Path):
    t = truth(scenario)
    c = t["config"]
    path = tmp_path / f"{scenario}.config"
    if t["site"] == "vm":
        path.write_text(
            f"[default]\nnova_databases = {c['nova_databases']}\n[kvm]\n"
            f"hypervisor_hostname_regex = {c['hypervisor_hostname_regex']}\n"
            f"rack_extract_group = {c['rack_extract_group']}\n"
        )
    else:
        path.write_text(f"[baremetal]\nproperties = {c['properties']}\n")
    return load_config(str(path))


def kind_of(scenario: str) -> str:
    return "vm" if truth(scenario)["site"] == "vm" else "baremetal"


def run(scenario, tmp_path, *, dumps=True, audit=None, name="out"):
    out = tmp_path / f"{name}.jsonl"
    result = make_machine_trace(
        str(AUDIT / scenario / "dumps") if dumps else None,
        str(out),
        instance_type=kind_of(scenario),
        config=config_of(scenario, tmp_path),
        fmt="jsonl",
        masker=Masker("none"),
        workers=1,
        audit=audit,
    )
    return result


Event = Tuple[dt.datetime, str, str, Dict[str, Any]]


def written(result) -> List[Event]:
    """The events as written, racks turned back from ranks to names (ranks follow the racks present)."""
    rack = "rack" if result.manifest["instance_type"] == "vm" else "placement.rack"
    out = [(e.time, e.host, e.event, dict(e.properties)) for e in result.events]
    return out, rack


def true_events(scenario: str) -> List[Tuple[dt.datetime, str, str, Dict[str, Any], str]]:
    return [
        (D.fromisoformat(e["time"]), host, e["event"], e["properties"], e["from"])
        for host, events in truth(scenario)["hosts"].items()
        for e in events
    ]


def ranked(events, rack: str, racks: Sequence[str]):
    rank = {r: i for i, r in enumerate(sorted(set(racks), key=natural_key))}
    out = []
    for item in events:
        props = dict(item[3])
        if rack in props:
            props[rack] = rank[props[rack]]
        out.append((*item[:3], props, *item[4:]))
    return out


def snapshot_times(scenario: str) -> List[dt.datetime]:
    return [D.fromisoformat(d["time"]) for d in truth(scenario)["dumps"]]


def key(props: Dict[str, Any]) -> str:
    return json.dumps(props, sort_keys=True)


def assert_truth(result, scenario: str, *, exact_from_log: bool = True) -> None:
    """Every true event present once and nothing else; a log-dated one at its time (±1 s) when the log
    was read; a CREATE and an initial ENABLE at the CREATE; the rest in its snapshot window: no earlier
    than the change, no later than the first dump after it."""
    got, rack = written(result)
    want = true_events(scenario)
    want = ranked(want, rack, [e[3][rack] for e in want if rack in e[3]])
    assert Counter((h, e, key(p)) for _, h, e, p in got) == Counter((h, e, key(p)) for _, h, e, p, _ in want)
    created = {h: t for t, h, e, _, _ in want if e == "CREATE"}
    times = snapshot_times(scenario)
    pending: Dict[Tuple[str, str, str], List[dt.datetime]] = {}
    for t, h, e, p in sorted(got, key=lambda x: x[0]):
        pending.setdefault((h, e, key(p)), []).append(t)
    for t, h, e, p, source in sorted(want, key=lambda x: x[0]):
        at = pending[(h, e, key(p))].pop(0)
        what = f"{h} {e} at {at} (true: {t}, {source})"
        if e == "CREATE" or (e == "ENABLE" and t == created.get(h)) or (source == "log" and exact_from_log):
            assert abs(at - t) <= SECOND, what
        else:
            after = [s for s in times if s >= t]
            assert t <= at <= (after[0] if after else at), what


# -- the dumps' own log, and without it -------------------------------------------------------------


@pytest.mark.parametrize("scenario", ALL)
def test_dumps_with_their_log_give_every_true_event_at_its_time(tmp_path, scenario):
    result = run(scenario, tmp_path)
    assert_truth(result, scenario)
    manifest = result.manifest
    assert manifest["sources"] == ["snapshots", "audit-log"]
    log = manifest["audit_log"]
    assert log["form"] == "dump" and log["source"].endswith(truth(scenario)["dumps"][-1]["file"])
    installed = D.fromisoformat(truth(scenario)["log"]["installed"])
    assert installed <= log["coverage_start"] <= installed + dt.timedelta(minutes=1)
    by_source = manifest["events_by_source"]
    assert by_source["snapshots"] + by_source["audit-log"] == len(result.events)
    exact = sum(1 for *_, source in true_events(scenario) if source == "log")
    assert by_source["audit-log"] >= exact - 1  # an event both see at one time may be either's


@pytest.mark.parametrize("scenario", ALL)
def test_dumps_without_their_log_as_today_minus_the_losses(tmp_path, scenario):
    """--no-audit-log: the same events, the log's dated in their snapshot windows instead (a soft
    deletion's last state kept, the initial ENABLE at the CREATE)."""
    result = run(scenario, tmp_path, audit=AuditSource(dumps=False))
    assert_truth(result, scenario, exact_from_log=False)
    assert result.manifest["sources"] == ["snapshots"] and result.manifest["audit_log"] is None


def test_the_log_is_read_in_the_same_pass_as_the_newest_snapshot(tmp_path):
    result = run("vm", tmp_path)
    carrying = [s.name for s in result.snapshots if s.audit is not None]
    assert carrying == [truth("vm")["dumps"][-1]["file"]]


def test_a_change_the_log_records_is_not_repeated_at_a_snapshot_time(tmp_path):
    """B's memory change (03-03 10:00), disable (14:30) and enable (03-04 09:15) are each one event, at
    the log's time; the dumps saw them at heartbeats (03-04 02:59, 03-04 02:59:30, 03-05 02:59:30)."""
    got, _ = written(run("vm", tmp_path))
    b = [(t, e) for t, h, e, _ in got if h == "r1-n02.vm.example" and e != "CREATE"]
    assert b == [
        (D(2024, 2, 21, 9), "ENABLE"),
        (D(2024, 3, 3, 10), "UPDATE"),
        (D(2024, 3, 3, 14, 30), "DISABLE"),
        (D(2024, 3, 4, 9, 15), "ENABLE"),
    ]


def test_changes_in_the_logs_gap_come_from_the_snapshots(tmp_path, caplog):
    """The triggers were dropped 03-07 12:00 – 03-08 10:00 (an upgrade): A's local_gb 400→800 at 03-07
    18:00 has no row; the 03-08 dump shows it (dated by its heartbeat), and the next logged change keeps
    it (memory 393216 with local_gb 800 at 03-08 20:00, exact)."""
    got, _ = written(run("vm", tmp_path))
    a = [
        (t, e, p["disk_capability_gb"], p["memory_capability_mb"])
        for t, h, e, p in got
        if h == "r1-n01.vm.example"
    ]
    assert a[-2:] == [
        (D(2024, 3, 8, 2, 59), "UPDATE", 800, 196608),
        (D(2024, 3, 8, 20), "UPDATE", 800, 393216),
    ]


# -- upstream StarCompactor's defects (each of these fails on its logic) ----------------------------


def test_backfilled_hosts_get_no_event_at_the_backfill_run(tmp_path):
    """Upstream dates events at audit_changed_at: every backfilled host got a CREATE or UPDATE at the
    run (2024-03-02 12:00:xx, 2024-03-08 10:00:xx). Here the export alone dates CREATEs at created_at."""
    result = run(
        "vm",
        tmp_path,
        dumps=False,
        audit=AuditSource(dumps=False, directory=str(AUDIT / "vm" / "parquet-naive")),
    )
    runs = [D.fromisoformat(b["at"]) for b in truth("vm")["log"]["backfills"]]
    for t, host, event, _ in written(result)[0]:
        assert all(abs(t - r) > dt.timedelta(minutes=5) for r in runs), (t, host, event)
    creates = {h: t for t, h, e, _ in written(result)[0] if e == "CREATE"}
    assert creates["r1-n01.vm.example"] == D(2024, 2, 20, 8) and creates["r3-n08.vm.example"] == D(
        2024, 3, 8, 1
    )


def test_kvm_services_join_their_compute_nodes_by_host(tmp_path):
    """Upstream joins services to compute nodes by hypervisor_hostname = services.host: on KVM that never
    matches, so it has no ENABLE/DISABLE at all. The export alone gives B's and F's, exact."""
    result = run(
        "vm",
        tmp_path,
        dumps=False,
        audit=AuditSource(dumps=False, directory=str(AUDIT / "vm" / "parquet-naive")),
    )
    status = [
        (t, h, e)
        for t, h, e, _ in written(result)[0]
        if e in ("DISABLE",) or (e == "ENABLE" and t.month == 3)
    ]
    assert status == [
        (D(2024, 3, 3, 14, 30), "r1-n02.vm.example", "DISABLE"),
        (D(2024, 3, 4, 9, 15), "r1-n02.vm.example", "ENABLE"),
        (D(2024, 3, 4, 16, 45, 10), "r1-n04.vm.example", "ENABLE"),
        (D(2024, 3, 5, 22, 21), "r2-n06.vm.example", "DISABLE"),
        (D(2024, 3, 8, 1), "r3-n08.vm.example", "ENABLE"),
    ]


@pytest.mark.parametrize(
    "scenario, deletes",
    [
        (
            "vm",
            {  # an archived soft delete dates at data.deleted_at, not at the archive (03-06 20:00)
                "r2-n05.vm.example": D(2024, 3, 5, 11),
                "r2-n06.vm.example": D(2024, 3, 6, 0, 21),
                "r2-n07.vm.example": D(2024, 2, 28, 16),
            },
        ),
        ("bm_upstream", {"00000002-aaaa-4bbb-8ccc-000000000002": D(2024, 5, 5, 11)}),
    ],
)
def test_delete_rows_give_deletes(tmp_path, scenario, deletes):
    """Upstream never emits a DELETE (and none at all on bare metal)."""
    result = run(
        scenario,
        tmp_path,
        dumps=False,
        audit=AuditSource(dumps=False, directory=str(AUDIT / scenario / "parquet-naive")),
    )
    assert {h: t for t, h, e, _ in written(result)[0] if e == "DELETE"} == deletes


def test_an_absent_table_is_said_once_and_the_rest_is_used(tmp_path, caplog):
    """Upstream's pd.read_parquet crashes on a missing file. Without audit_nova_services: ENABLE and
    DISABLE from the dumps (in their windows), everything else from the log."""
    with caplog.at_level(logging.WARNING):
        result = run(
            "vm",
            tmp_path,
            audit=AuditSource(dumps=False, directory=str(AUDIT / "vm" / "parquet-missing-table")),
        )
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "audit_nova_services" in warnings[0] and "\n" not in warnings[0]
    assert result.manifest["audit_log"]["tables_missing"] == ["audit_nova_services"]
    got, _ = written(result)
    b = [(t, e) for t, h, e, _ in got if h == "r1-n02.vm.example" and e in ("DISABLE", "ENABLE")]
    assert b == [
        (D(2024, 2, 21, 9), "ENABLE"),
        (D(2024, 3, 4, 2, 59, 30), "DISABLE"),
        (D(2024, 3, 5, 2, 59, 30), "ENABLE"),
    ]
    assert ("r1-n02.vm.example", "UPDATE", D(2024, 3, 3, 10)) in [(h, e, t) for t, h, e, _ in got]


# -- the export: alone (its period), with the dumps (one trace), s3:// -------------------------------


@pytest.mark.parametrize(
    "scenario, form", [("vm", "parquet-naive"), ("vm", "parquet-utc"), ("bm_upstream", "parquet-naive")]
)
def test_export_with_the_dumps_is_the_stitched_trace(tmp_path, scenario, form):
    """Naive and UTC timestamps alike."""
    result = run(scenario, tmp_path, audit=AuditSource(dumps=False, directory=str(AUDIT / scenario / form)))
    assert_truth(result, scenario)
    assert result.manifest["audit_log"]["form"] == "parquet"
    assert [s.audit for s in result.snapshots] == [None] * len(result.snapshots)  # the dumps' log unread


@pytest.mark.parametrize("scenario", ("vm", "bm_upstream"))
def test_export_alone_gives_its_period_and_invents_nothing(tmp_path, scenario):
    """Every event the log dates is there at its time; every event written is a true one (host, type,
    time); a host the log knows is CREATEd and ENABLEd at its CREATE; what only the dumps saw is absent."""
    result = run(
        scenario,
        tmp_path,
        dumps=False,
        audit=AuditSource(dumps=False, directory=str(AUDIT / scenario / "parquet-naive")),
    )
    got, rack = written(result)
    want = true_events(scenario)
    truly = {(h, e, t) for t, h, e, _, _ in want}
    for t, h, e, _ in got:
        assert (h, e, t) in truly, f"invented: {h} {e} at {t}"
    at = {(h, e, t) for t, h, e, _ in got}
    for t, h, e, _, source in want:
        if source == "log":
            assert (h, e, t) in at, f"lost: {h} {e} at {t}"
    assert result.manifest["sources"] == ["audit-log"] and result.snapshots == []


def test_export_on_s3_gives_the_local_exports_trace(tmp_path, s3_endpoint, monkeypatch):
    use_s3_endpoint(monkeypatch, s3_endpoint)
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket="machine-audit")
    for path in (AUDIT / "vm" / "parquet-utc").iterdir():
        client.put_object(Bucket="machine-audit", Key=f"export/{path.name}", Body=path.read_bytes())
    remote = run(
        "vm", tmp_path, audit=AuditSource(dumps=False, directory="s3://machine-audit/export"), name="s3"
    )
    local = run("vm", tmp_path, audit=AuditSource(dumps=False, directory=str(AUDIT / "vm" / "parquet-naive")))
    assert remote.events == local.events
    assert remote.manifest["audit_log"]["source"] == "s3://machine-audit/export"


def _rewritten_export(source: Path, target: Path, form: str) -> None:
    """The export at ``source`` written another way a site's exporter may write it."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    target.mkdir()
    for path in sorted(source.glob("*.parquet")):
        table = pq.read_table(path)
        columns = {}
        for name in table.column_names:
            column = table[name]
            if form == "struct-data" and name == "data":
                column = pa.array([json.loads(text) for text in column.to_pylist()])
            elif form == "binary-data" and name == "data":
                column = column.cast(pa.binary())
            elif form == "text-times" and pa.types.is_timestamp(column.type):
                column = pc.strftime(column, "%Y-%m-%d %H:%M:%S")
            elif form == "ms-utc" and pa.types.is_timestamp(column.type):
                column = column.cast(pa.timestamp("ms")).cast(pa.timestamp("ms", tz="UTC"))
            elif form == "dictionary" and pa.types.is_string(column.type) and name != "data":
                column = pc.dictionary_encode(column)
            columns[name] = column
        rewritten = pa.table(columns)
        if form == "directory":  # a dataset writer's layout: the file name is a directory of parts
            parts = target / path.name
            parts.mkdir()
            half = rewritten.num_rows // 2
            pq.write_table(rewritten.slice(0, half), parts / "part-0.parquet")
            pq.write_table(rewritten.slice(half), parts / "part-1.parquet")
            (parts / "_SUCCESS").write_bytes(b"")
        else:
            pq.write_table(rewritten, target / path.name)


@pytest.mark.parametrize(
    "form", ["struct-data", "binary-data", "text-times", "ms-utc", "dictionary", "directory"]
)
def test_other_export_forms_give_the_same_trace(tmp_path, form):
    """data as a struct or bytes, times as text or aware milliseconds, dictionary-encoded columns, a
    table as a directory of part files: the trace of the export as SPEC describes it."""
    export = tmp_path / form
    _rewritten_export(AUDIT / "vm" / "parquet-naive", export, form)
    got = run("vm", tmp_path, dumps=False, audit=AuditSource(dumps=False, directory=str(export)), name=form)
    want = run(
        "vm",
        tmp_path,
        dumps=False,
        audit=AuditSource(dumps=False, directory=str(AUDIT / "vm" / "parquet-naive")),
    )
    assert got.events == want.events and len(got.events) > 10


def test_an_export_table_as_a_directory_on_s3(tmp_path, s3_endpoint, monkeypatch):
    use_s3_endpoint(monkeypatch, s3_endpoint)
    export = tmp_path / "parts"
    _rewritten_export(AUDIT / "vm" / "parquet-naive", export, "directory")
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket="audit-parts")
    for path in export.rglob("*"):
        if path.is_file():
            client.put_object(
                Bucket="audit-parts", Key=f"x/{path.relative_to(export)}", Body=path.read_bytes()
            )
    remote = run(
        "vm", tmp_path, dumps=False, audit=AuditSource(dumps=False, directory="s3://audit-parts/x"), name="s3"
    )
    local = run(
        "vm",
        tmp_path,
        dumps=False,
        audit=AuditSource(dumps=False, directory=str(AUDIT / "vm" / "parquet-naive")),
    )
    assert remote.events == local.events and len(remote.events) > 10


# -- bare metal: capability names the role's columns do not hold -----------------------------------


@pytest.mark.parametrize("scenario", ("bm_old", "bm_chameleon"))
def test_capability_names_come_from_the_dumps_by_row_id(tmp_path, scenario):
    """The role's capability columns (property_id) fit neither old Blazar (capability_name) nor the
    2020–24 fork (capability_id): the log's rows carry no name. With the dumps, N2's memory change is
    named by its row's id (exact); the log alone cannot name it, says so once, and still gives the rest."""
    newest = AUDIT / scenario / "dumps" / truth(scenario)["dumps"][-1]["file"]
    with_dumps = run(scenario, tmp_path)
    update = [(t, p) for t, h, e, p in written(with_dumps)[0] if e == "UPDATE" and h.startswith("00000002")]
    assert update == [
        (
            D(2024, 5, 4, 12),
            {"node_type": "compute_haswell", "placement.rack": 1, "main_memory.ram_size": "262144"},
        )
    ]
    alone = run(
        scenario,
        tmp_path,
        dumps=False,
        audit=AuditSource(dumps=False, log=read_dump_log(newest)),
        name="alone",
    )
    notes = alone.manifest["audit_log"]["notes"]
    assert any("capability row(s) name no capability" in n for n in notes)
    status = [(t, e) for t, h, e, _ in written(alone)[0] if h.startswith("00000001")]
    assert status == [
        (D(2024, 4, 20, 9), "CREATE"),
        (D(2024, 4, 20, 9), "ENABLE"),
        (D(2024, 5, 3, 16), "DISABLE"),
        (D(2024, 5, 4, 20), "ENABLE"),
    ]


# -- a live server ----------------------------------------------------------------------------------


def _restore(mariadb, dump: Path) -> None:
    """The dump's openstack_audit, restored with the real client (``--one-database``: nothing else)."""
    mariadb.sql("DROP DATABASE IF EXISTS `openstack_audit`; CREATE DATABASE `openstack_audit`")
    with gzip.open(dump) as f:
        text = f.read()
    subprocess.run(
        mariadb.client_args() + ["--one-database", "openstack_audit"],
        input=text,
        check=True,
        capture_output=True,
    )


@pytest.mark.mariadb
@pytest.mark.parametrize("scenario", ("vm", "bm_chameleon"))
def test_a_live_servers_log_with_the_dumps(mariadb, tmp_path, scenario):
    from starcompactor.server.settings import DbSettings

    _restore(mariadb, AUDIT / scenario / "dumps" / truth(scenario)["dumps"][-1]["file"])
    try:
        server = DbSettings(socket=mariadb.socket, user="root")
        result = run(scenario, tmp_path, audit=AuditSource(dumps=False, server=server))
    finally:
        mariadb.sql("DROP DATABASE IF EXISTS `openstack_audit`")
    assert_truth(result, scenario)
    log = result.manifest["audit_log"]
    assert (
        log["form"] == "server"
        and log["source"] == f"MySQL server socket {mariadb.socket} database openstack_audit"
    )


def test_a_machines_run_reads_only_the_machine_tables_of_the_log(tmp_path, caplog):
    """The instance fixture's dumps also audit the instance tables (on a real site: millions of action
    rows): the machine trace's worker reads the two Nova tables only, says nothing of the others, and the
    manifest names the rest as unread."""
    from starcompactor.machines.backups import list_backups
    from starcompactor.machines.snapshot import read_snapshot
    from starcompactor.machines.state import SnapshotSettings

    dumps = AUDIT / "instances" / "dumps"
    newest = list_backups(str(dumps))[-1]
    with caplog.at_level(logging.INFO, logger="starcompactor"):
        snapshot = read_snapshot(newest, SnapshotSettings(audit_log=True))
        result = make_machine_trace(str(dumps), str(tmp_path / "m.csv"))
    assert snapshot.audit is not None
    assert sorted(snapshot.audit.rows) == ["nova_compute_nodes", "nova_services"]
    assert "nova_instance_actions_events" in snapshot.audit.unread
    assert not [r for r in caplog.records if "not read" in r.getMessage()]
    summary = result.manifest["audit_log"]
    assert "audit_log" in result.manifest and summary is not None
    assert "nova_instance_actions_events" in summary["unread"]
    assert result.manifest["events_by_source"]["audit-log"] > 0
