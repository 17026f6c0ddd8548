"""Instance events from the openstack_audit log (``instances --source audit``), against the fixture's truth.

tests/fixtures/audit/instances was played against a real MariaDB with the role's triggers: every event
row is inserted without a finish time and updated with it; ``truth.json`` lists the instance events SPEC
§1.3 gives over the log's final state.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import subprocess

import pytest

from starcompactor.audit.dumps import read_dump_log
from starcompactor.audit.parquet import read_parquet_log
from starcompactor.errors import AuditLogError
from starcompactor.instances import make_instance_trace
from starcompactor.instances.audit import AuditInstanceSource
from starcompactor.mask import Masker
from tests.support.paths import FIXTURES

AUDIT = FIXTURES / "audit"
SCENARIO = AUDIT / "instances"
TRUTH = json.loads((SCENARIO / "truth.json").read_text())
NEWEST = SCENARIO / "dumps" / TRUTH["dumps"][-1]["file"]
D = dt.datetime
EPOCH = D(2015, 9, 17)


def expected(*, unfinished: bool = False):
    return [
        (
            e["INSTANCE_UUID"],
            e["EVENT"],
            D.fromisoformat(e["START_TIME"]),
            D.fromisoformat(e["FINISH_TIME"]) if e["FINISH_TIME"] else None,
            e["RESULT"],
            e["INSTANCE_NAME"],
            e["USER_ID"],
            e["PROJECT_ID"],
            e["HOST_NAME (PHYSICAL)"],
        )
        for e in TRUTH["instance_events"]
        if unfinished or e["FINISH_TIME"]
    ]


def rows(source):
    return [
        (
            e.instance_uuid,
            e.event,
            e.start_time,
            e.finish_time,
            e.result,
            e.instance_name,
            e.user_id,
            e.project_id,
            e.host,
        )
        for e in source
    ]


@pytest.mark.parametrize("form", ["parquet", "dump"])
def test_final_rows_give_the_true_instance_events(form):
    log = read_parquet_log(str(SCENARIO / "parquet-naive")) if form == "parquet" else read_dump_log(NEWEST)
    source = AuditInstanceSource(log)
    assert rows(source) == expected()
    assert source.skipped_unfinished == 1  # I4's build has no finish time at the last dump
    assert rows(AuditInstanceSource(log, include_unfinished=True)) == expected(unfinished=True)


def test_events_written_after_the_log_started_keep_their_finish_time():
    """Upstream keeps only the INSERT rows: an event's INSERT has no finish time (its UPDATE brings it),
    so every event after the log's installation was dropped. Here I1's reboot and I2's life are there."""
    log = read_parquet_log(str(SCENARIO / "parquet-naive"))
    inserts = [
        r for r in log.read("nova_instance_actions_events") if r.event_type == "INSERT" and not r.is_backfill
    ]
    assert inserts and all(r.data["finish_time"] is None for r in inserts)
    after = [e for e in rows(AuditInstanceSource(log)) if e[2] > D.fromisoformat(TRUTH["log"]["installed"])]
    assert [(e[0][-2:], e[1], e[3]) for e in after] == [
        ("a1", "compute_reboot_instance", D(2024, 4, 3, 13, 0, 31)),
        ("a2", "compute__do_build_and_run_instance", D(2024, 4, 4, 9, 0, 50)),
        ("a2", "compute_terminate_instance", D(2024, 4, 5, 15, 0, 9)),
        ("a3", "compute__do_build_and_run_instance", D(2024, 4, 5, 18, 0, 20)),
    ]


def test_an_instance_without_a_node_takes_the_events_host():
    """SPEC §1.3: I3's build failed and its node was cleared; the event names where it ran."""
    got = {e[0][-2:]: e[8] for e in rows(AuditInstanceSource(read_dump_log(NEWEST)))}
    assert got["a3"] == "cmp-a" and got["a2"] == "r1-n01.vm.example"


def test_window_bounds_the_actions_creation_and_properties_follow_the_site_type():
    log = read_dump_log(NEWEST)
    source = AuditInstanceSource(log, start=D(2024, 4, 3), end=D(2024, 4, 5, 15))
    assert [(e[0][-2:], e[1]) for e in rows(source)] == [
        ("a1", "compute_reboot_instance"),
        ("a2", "compute__do_build_and_run_instance"),
        ("a2", "compute_terminate_instance"),
    ]
    vm = list(AuditInstanceSource(log))
    assert {tuple(e.properties.items()) for e in vm} == {(("memory_mb", 2048), ("root_gb", 20), ("vcpus", 2))}
    assert all(e.properties == {} for e in AuditInstanceSource(log, instance_type="baremetal"))


def test_a_log_without_the_action_tables_is_one_clear_error():
    with pytest.raises(AuditLogError) as info:
        AuditInstanceSource(read_parquet_log(str(AUDIT / "vm" / "parquet-naive")))
    message = str(info.value)
    assert "audit_nova_instances, audit_nova_instance_actions, audit_nova_instance_actions_events" in message
    assert "vm/parquet-naive" in message and "\n" not in message


def test_the_trace_and_manifest(tmp_path):
    out = tmp_path / "instances.csv"
    source = AuditInstanceSource(read_parquet_log(str(SCENARIO / "parquet-naive")))
    manifest = make_instance_trace(source, str(out), masker=Masker("none"), epoch=EPOCH).manifest
    lines = out.read_text().splitlines()
    assert len(lines) == 1 + len(expected())
    assert manifest["source"] == "audit" and manifest["skipped_unfinished"] == 1
    assert manifest["inputs"] == [
        {"source": "openstack_audit", "location": str(SCENARIO / "parquet-naive"), "form": "parquet"}
    ]


@pytest.mark.mariadb
def test_a_live_servers_log_gives_the_same_events(mariadb):
    from starcompactor.audit.server import read_server_log
    from starcompactor.server.settings import DbSettings

    mariadb.sql("DROP DATABASE IF EXISTS `openstack_audit`; CREATE DATABASE `openstack_audit`")
    with gzip.open(NEWEST) as f:
        text = f.read()
    try:
        subprocess.run(
            mariadb.client_args() + ["--one-database", "openstack_audit"],
            input=text,
            check=True,
            capture_output=True,
        )
        log = read_server_log(DbSettings(socket=mariadb.socket, user="root"))
        assert rows(AuditInstanceSource(log)) == expected()
    finally:
        mariadb.sql("DROP DATABASE IF EXISTS `openstack_audit`")
