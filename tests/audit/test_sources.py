"""The openstack_audit log read from its three forms: dumps, Parquet exports (local and s3://), a live server.

The fixtures (tests/fixtures/audit/) were made by playing each scenario against a real MariaDB with the
role's triggers; ``audit_rows.json`` is what a plain ``SELECT`` returned at the end of the timeline and
``truth.json`` what the scenario did. Every reader must give exactly those rows.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

from starcompactor.audit.dumps import has_audit_log, newest_with_log, read_dump_log
from starcompactor.audit.parquet import export_files, read_parquet_log
from starcompactor.audit.records import EXPECTED_TABLES, AuditLog, AuditRow
from starcompactor.errors import AuditLogError, ConfigError, DatabaseError, MissingDependencyError
from tests.support.paths import FIXTURES
from tests.support.s3 import s3_client, use_s3_endpoint

AUDIT = FIXTURES / "audit"
SCENARIOS = ("vm", "instances", "bm_old", "bm_chameleon", "bm_upstream")
D = dt.datetime


def truth(scenario: str) -> Dict[str, Any]:
    return json.loads((AUDIT / scenario / "truth.json").read_text())


def dumps(scenario: str) -> List[Path]:
    return [AUDIT / scenario / "dumps" / d["file"] for d in truth(scenario)["dumps"]]


def recorded(scenario: str) -> Dict[str, List[AuditRow]]:
    """audit_rows.json (the server's own answer at the end of the timeline) as AuditRows."""
    out = {}
    for table, rows in json.loads((AUDIT / scenario / "audit_rows.json").read_text()).items():
        out[table] = [
            AuditRow(
                table,
                r["audit_id"],
                None if r["id"] is None else str(r["id"]),
                r["audit_event_type"],
                D.fromisoformat(r["audit_event_time"]) if r.get("audit_event_time") else None,
                r["audit_changed_by"],
                D.fromisoformat(r["audit_changed_at"]),
                r["data"],
            )
            for r in rows
        ]
    return out


def last_dump_log(scenario: str) -> AuditLog:
    return read_dump_log(dumps(scenario)[-1])


# -- dumps ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_last_dump_holds_the_whole_log(scenario):
    log = last_dump_log(scenario)
    assert log.read_all() == recorded(scenario)
    assert log.form == "dump"
    assert log.tables == tuple(sorted(t[len("audit_") :] for t in truth(scenario)["log"]["tables"]))


def test_an_earlier_dump_holds_the_log_up_to_its_time_with_timestamp_columns():
    """The vm log's first dumps were taken while its time columns were TIMESTAMP (an early role)."""
    files = dumps("vm")
    with gzip.open(files[2]) as f:
        head = f.read().decode()
    assert "`audit_changed_at` timestamp" in head
    when = D(2024, 3, 3, 3)
    expected = {t: [r for r in rows if r.changed_at < when] for t, rows in recorded("vm").items()}
    assert read_dump_log(files[2]).read_all() == expected
    assert sum(map(len, expected.values())) == 15  # the first backfill only


def test_dump_taken_in_the_gap_has_the_tables_but_no_triggers():
    """During an upgrade the triggers are dropped, the tables stay: the dump still holds the log."""
    entry = truth("vm")["dumps"][7]
    assert (entry["log"], entry["triggers"]) == (True, False)
    path = AUDIT / "vm" / "dumps" / entry["file"]
    with gzip.open(path) as f:
        assert b"TRIGGER" not in f.read()
    log = read_dump_log(path)
    assert {t: len(r) for t, r in log.read_all().items()} == {"nova_compute_nodes": 12, "nova_services": 14}


def test_dumps_before_installation_give_an_empty_log_that_says_what_it_lacks():
    for path, entry in zip(dumps("vm"), truth("vm")["dumps"]):
        assert has_audit_log(path) is entry["log"], path.name
        if not entry["log"]:
            log = read_dump_log(path)
            assert log.tables == ()
            assert log.missing == EXPECTED_TABLES
            assert log.read("nova_services") == []
            assert log.coverage_start is None and log.backfill_runs() == []


def test_newest_dump_with_the_log():
    files = dumps("vm")
    assert newest_with_log(files) == (len(files) - 1, files[-1])
    assert newest_with_log(files[:2]) is None
    assert newest_with_log(files[:3]) == (2, files[2])


def test_coverage_and_backfill_runs_from_the_log_match_the_scenario():
    log = last_dump_log("vm")
    backfills = truth("vm")["log"]["backfills"]
    runs = log.backfill_runs()
    assert [r.started for r in runs] == [
        D.fromisoformat(backfills[0]["at"]),
        D.fromisoformat(backfills[4]["at"]),
    ]
    assert [r.rows for r in runs] == [
        sum(b["rows"] for b in backfills[:4]),
        sum(b["rows"] for b in backfills[4:]),
    ]
    assert log.coverage_start == runs[0].started
    assert log.coverage_start > D.fromisoformat(truth("vm")["log"]["installed"])
    summary = log.summary()
    assert summary["tables"] == {"nova_compute_nodes": 15, "nova_services": 16}
    assert summary["coverage_start"] == runs[0].started.isoformat()


def test_second_backfill_dates_a_soft_deleted_host_at_its_deleted_at():
    """F was soft-deleted (no row) before the gap; the second backfill writes its DELETE at deleted_at."""
    log = last_dump_log("vm")
    (row,) = [r for r in log.rows("nova_compute_nodes") if r.id == "6" and r.event_type == "DELETE"]
    assert row.is_backfill
    assert row.event_time == D(2024, 3, 6, 0, 21)
    assert row.changed_at.date() == dt.date(2024, 3, 8)
    assert row.data["deleted_at"] == "2024-03-06 00:21:00"


WATCHED = {
    "nova_services": ("host", "binary", "topic", "disabled", "disabled_reason", "forced_down", "version"),
    "nova_compute_nodes": (
        "vcpus",
        "cpu_allocation_ratio",
        "memory_mb",
        "ram_allocation_ratio",
        "local_gb",
        "disk_allocation_ratio",
        "hypervisor_hostname",
        "host",
        "hypervisor_version",
        "supported_instances",
        "mapped",
    ),
}


@pytest.mark.parametrize("table", sorted(WATCHED))
def test_heartbeats_leave_no_row(table):
    """Every UPDATE row changed a watched column since the row before it (heartbeats ran every night)."""
    previous: Dict[str, Dict[str, Any]] = {}
    updates = 0
    for row in last_dump_log("vm").rows(table):
        if row.event_type == "UPDATE":
            updates += 1
            before = previous[row.id]
            assert any(before[c] != row.data[c] for c in WATCHED[table]), row
        previous[row.id] = row.data
    assert updates >= 2


def test_bare_metal_layouts_lack_what_their_schema_lacks():
    """Old and Chameleon Blazar have no resource_properties: the site could not enable that table."""
    for layout in ("old", "chameleon"):
        log = last_dump_log(f"bm_{layout}")
        assert "blazar_resource_properties" in log.missing
        assert log.read("blazar_resource_properties") == []
        caps = log.read("blazar_computehost_extra_capabilities")
        assert caps and all("property_id" not in r.data for r in caps)
    upstream = last_dump_log("bm_upstream")
    assert upstream.lacks("ironic_nodes", "blazar_resource_properties") == ()
    assert all("property_id" in r.data for r in upstream.rows("blazar_computehost_extra_capabilities"))


def test_early_column_wise_table_reads_as_json_rows():
    """files/audit_blazar_computehosts.sql: no data, no audit_event_time."""
    t = truth("early")
    log = read_dump_log(AUDIT / "early" / "dumps" / t["dumps"][0]["file"])
    rows = log.read("blazar_computehosts")
    assert log.layouts["blazar_computehosts"].has_data is False
    got = [(r.id, r.event_type, r.event_time.isoformat()) for r in rows]
    assert got == [(e["id"], e["event_type"], e["time"]) for e in t["audit_events"]]
    assert all(r.event_time == r.changed_at for r in rows)
    assert rows[0].data["reservable"] == 0 and rows[0].data["id"] == "host-0001"
    assert rows[2].data["created_at"] == "2024-04-22 09:00:00"  # times as JSON_OBJECT writes them
    assert log.coverage_start == D(2024, 5, 3, 10)  # no backfill: the first write


# -- dumps made here: wrong columns, tables the reader was not asked for ----------------------------


@pytest.fixture(scope="module")
def odd_audit_dump(mariadb, tmp_path_factory):
    """A dump whose openstack_audit has a site-added table and a table that is not an audit table."""
    mariadb.sql(
        "DROP DATABASE IF EXISTS openstack_audit; CREATE DATABASE openstack_audit;"
        "CREATE TABLE openstack_audit.audit_site_hosts (audit_id INT AUTO_INCREMENT PRIMARY KEY, id INT,"
        " audit_event_type ENUM('INSERT','UPDATE','DELETE'), audit_event_time DATETIME, audit_changed_by VARCHAR(255),"
        " audit_changed_at DATETIME, data JSON);"
        "INSERT INTO openstack_audit.audit_site_hosts VALUES (1, 7, 'INSERT', '2024-01-01 00:00:00', 'x@y',"
        " '2024-01-01 00:00:01', '{\"name\": \"a\"}');"
    )
    good = tmp_path_factory.mktemp("odd") / "extra.sql"
    good.write_bytes(mariadb.dump(["--databases", "openstack_audit"]))
    mariadb.sql("CREATE TABLE openstack_audit.audit_nova_services (id INT, note TEXT)")
    bad = good.with_name("bad.sql")
    bad.write_bytes(mariadb.dump(["--databases", "openstack_audit"]))
    mariadb.sql("DROP DATABASE openstack_audit")
    return good, bad


@pytest.mark.mariadb
def test_tables_not_asked_for_are_listed_then_read_on_request(odd_audit_dump, caplog):
    good, _ = odd_audit_dump
    log = read_dump_log(good)
    assert log.tables == () and log.unread == ("site_hosts",)
    assert "audit tables not read" in caplog.text and "site_hosts" in caplog.text
    (row,) = read_dump_log(good, tables=["site_hosts"]).read("site_hosts")
    assert row == AuditRow(
        "site_hosts", 1, "7", "INSERT", D(2024, 1, 1), "x@y", D(2024, 1, 1, 0, 0, 1), {"name": "a"}
    )


@pytest.mark.mariadb
def test_a_table_with_the_wrong_columns_is_one_line_naming_dump_and_table(odd_audit_dump):
    _, bad = odd_audit_dump
    with pytest.raises(AuditLogError) as info:
        read_dump_log(bad)
    message = str(info.value)
    assert "\n" not in message
    assert str(bad) in message and "openstack_audit.audit_nova_services" in message
    assert "audit_id" in message and "audit_event_type" in message


# -- Parquet ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["parquet-naive", "parquet-utc"])
def test_parquet_export_gives_the_dump_rows(variant):
    log = read_parquet_log(str(AUDIT / "vm" / variant))
    assert log.form == "parquet"
    assert log.read_all() == recorded("vm")
    assert log.backfill_runs() == last_dump_log("vm").backfill_runs()
    assert log.stats()["nova_services"].rows == 16


def test_parquet_time_columns_differ_between_the_variants():
    """The two exports really are naive and tz-aware (else the test above proves nothing)."""
    import pyarrow.parquet as pq

    name = "openstack_audit.audit_nova_services.parquet"
    naive = pq.read_schema(AUDIT / "vm" / "parquet-naive" / name).field("audit_changed_at").type
    aware = pq.read_schema(AUDIT / "vm" / "parquet-utc" / name).field("audit_changed_at").type
    assert naive.tz is None and naive.unit == "ns"
    assert aware.tz == "UTC"
    assert pq.ParquetFile(AUDIT / "vm" / "parquet-naive" / name).num_row_groups > 1


@pytest.mark.parametrize("scenario", ["instances", "bm_upstream"])
def test_parquet_exports_of_other_scenarios(scenario):
    assert read_parquet_log(str(AUDIT / scenario / "parquet-naive")).read_all() == recorded(scenario)


def test_parquet_export_missing_a_table():
    log = read_parquet_log(str(AUDIT / "vm" / "parquet-missing-table"))
    assert log.tables == ("nova_compute_nodes",)
    assert "nova_services" in log.missing and log.lacks("nova_compute_nodes", "nova_services") == (
        "nova_services",
    )
    assert list(log.batches("nova_services")) == []
    assert log.read("nova_compute_nodes") == recorded("vm")["nova_compute_nodes"]


def test_parquet_batches_are_bounded():
    log = read_parquet_log(str(AUDIT / "instances" / "parquet-naive"), batch_rows=5)
    batches = list(log.batches("nova_instances"))
    assert len(batches) > 2 and all(len(b) <= 5 for b in batches)
    assert [r for b in batches for r in b] == recorded("instances")["nova_instances"]


def _write(path: Path, columns: Dict[str, Any]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path)


def test_parquet_column_wise_and_text_times(tmp_path):
    """An export of the early form, with times as ISO text with a zone: the same rows as the dump's."""
    import pyarrow as pa

    rows = read_dump_log(AUDIT / "early" / "dumps" / truth("early")["dumps"][0]["file"]).read(
        "blazar_computehosts"
    )
    cols: Dict[str, Any] = {
        "audit_id": pa.array([r.audit_id for r in rows], pa.int32()),
        "id": [r.id for r in rows],
        "audit_event_type": pa.array([r.event_type for r in rows]).dictionary_encode(),
        "audit_changed_by": [r.changed_by for r in rows],
        "audit_changed_at": [(r.changed_at - dt.timedelta(hours=5)).isoformat() + "-05:00" for r in rows],
    }
    for key in rows[0].data:
        if key != "id":
            cols[key] = [r.data[key] for r in rows]
    cols["created_at"] = pa.array([D.fromisoformat(r.data["created_at"]) for r in rows], pa.timestamp("s"))
    _write(tmp_path / "openstack_audit.audit_blazar_computehosts.parquet", cols)
    log = read_parquet_log(str(tmp_path))
    assert log.read("blazar_computehosts") == rows


def test_parquet_errors_are_one_line_naming_the_file(tmp_path):
    good = AUDIT / "vm" / "parquet-naive" / "openstack_audit.audit_nova_services.parquet"
    (tmp_path / good.name).write_bytes(good.read_bytes()[:-100])  # cut: no footer
    with pytest.raises(
        AuditLogError,
        match=r"audit_nova_services\.parquet: table openstack_audit\.audit_nova_services: cannot read Parquet",
    ):
        read_parquet_log(str(tmp_path))
    (tmp_path / good.name).write_text("audit_id,id\n1,2\n")
    with pytest.raises(AuditLogError, match="cannot read Parquet") as info:
        read_parquet_log(str(tmp_path))
    assert "\n" not in str(info.value)
    _write(tmp_path / good.name, {"audit_id": [1], "id": [2], "data": ["{}"]})
    with pytest.raises(
        AuditLogError, match="not an audit table: no column audit_event_type, audit_changed_at"
    ):
        read_parquet_log(str(tmp_path))
    _write(
        tmp_path / good.name,
        {
            "audit_id": [1, 2],
            "id": [2, 3],
            "audit_event_type": ["INSERT"] * 2,
            "audit_changed_at": [D(2024, 1, 1)] * 2,
            "data": ["{}", "{not json"],
        },
    )
    log = read_parquet_log(str(tmp_path))  # schemas are fine; the bad value is found when read
    with pytest.raises(AuditLogError, match="audit_id 2: data is not JSON"):
        log.read("nova_services")
    _write(
        tmp_path / good.name,
        {
            "audit_id": [1],
            "id": [2],
            "audit_event_type": ["INSERT"],
            "audit_changed_at": [D(2024, 1, 1)],
            "data": ["[1, 2]"],
        },
    )
    with pytest.raises(AuditLogError, match="audit_id 1: data is not a JSON object"):
        read_parquet_log(str(tmp_path)).read("nova_services")


def test_parquet_location_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_parquet_log(str(tmp_path / "nowhere"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(AuditLogError, match=r"no openstack_audit\.audit_<name>\.parquet file"):
        read_parquet_log(str(tmp_path))
    with pytest.raises(ConfigError, match=r"cannot list a gs:// audit export"):
        read_parquet_log("gs://bucket/export")


def test_missing_pyarrow_names_the_extra(monkeypatch):
    for name in ("pyarrow", "pyarrow.parquet", "pyarrow.compute"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'starcompactor\[parquet\]'"):
        read_parquet_log(str(AUDIT / "vm" / "parquet-naive"))


def test_importing_the_package_imports_neither_pyarrow_nor_pymysql():
    code = "import sys, starcompactor.audit.dumps, starcompactor.audit.parquet; print('pyarrow' in sys.modules, 'pymysql' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


# -- s3:// ------------------------------------------------------------------------------------------


@pytest.fixture
def s3_export(s3_endpoint, monkeypatch):
    use_s3_endpoint(monkeypatch, s3_endpoint)
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket="audit-exports")
    for path in (AUDIT / "vm" / "parquet-utc").iterdir():
        client.put_object(Bucket="audit-exports", Key=f"2024-03-09/{path.name}", Body=path.read_bytes())
    client.put_object(Bucket="audit-exports", Key="2024-03-09/README.txt", Body=b"not parquet")
    client.put_object(Bucket="audit-exports", Key="2024-03-09/old/openstack_audit.audit_x.parquet", Body=b"x")
    return client


def test_s3_export_gives_the_same_rows(s3_export):
    files = export_files("s3://audit-exports/2024-03-09")
    assert files == {
        "nova_compute_nodes": "s3://audit-exports/2024-03-09/openstack_audit.audit_nova_compute_nodes.parquet",
        "nova_services": "s3://audit-exports/2024-03-09/openstack_audit.audit_nova_services.parquet",
    }
    log = read_parquet_log("s3://audit-exports/2024-03-09/")
    assert log.read_all() == recorded("vm")
    assert log.coverage_start == last_dump_log("vm").coverage_start
    explicit = read_parquet_log("s3://audit-exports/2024-03-09", transport_params={"client": s3_export})
    assert explicit.read("nova_services") == recorded("vm")["nova_services"]


def test_s3_export_that_is_not_there(s3_export):
    with pytest.raises(AuditLogError, match="no openstack_audit"):
        read_parquet_log("s3://audit-exports/2024-01-01")
    with pytest.raises(ConfigError, match="cannot list audit export"):
        read_parquet_log("s3://no-such-bucket/x")


# -- a live server ----------------------------------------------------------------------------------


def _restore(mariadb, dump: Path, database: str = "openstack_audit") -> None:
    """The dump's openstack_audit, restored with the real client (``--one-database``: nothing else)."""
    mariadb.sql(f"DROP DATABASE IF EXISTS `{database}`; CREATE DATABASE `{database}`")
    with gzip.open(dump) as f:
        text = f.read()
    subprocess.run(
        mariadb.client_args() + ["--one-database", database], input=text, check=True, capture_output=True
    )


@pytest.fixture
def audit_server(mariadb):
    from starcompactor.server.settings import DbSettings

    yield DbSettings(socket=mariadb.socket, user="root")
    mariadb.sql("DROP DATABASE IF EXISTS openstack_audit")


@pytest.mark.mariadb
@pytest.mark.parametrize("scenario", ["vm", "instances", "bm_chameleon"])
def test_server_gives_the_dump_rows(mariadb, audit_server, scenario):
    from starcompactor.audit.server import read_server_log

    _restore(mariadb, dumps(scenario)[-1])
    log = read_server_log(audit_server)
    assert log.form == "server" and "database openstack_audit" in log.source
    assert log.read_all() == recorded(scenario)
    assert log.backfill_runs() == last_dump_log(scenario).backfill_runs()
    assert log.summary()["tables"] == {t: len(r) for t, r in recorded(scenario).items()}


@pytest.mark.mariadb
def test_server_timestamp_columns_come_back_in_utc(mariadb, audit_server):
    """The vm log's early dumps have TIMESTAMP columns; a server in another zone must not shift them."""
    from starcompactor.audit.server import read_server_log

    _restore(mariadb, dumps("vm")[3])
    mariadb.sql("SET GLOBAL time_zone = '+05:00'")
    try:
        rows = read_server_log(audit_server).read_all()
        shifted = mariadb.sql(
            "SELECT audit_changed_at FROM openstack_audit.audit_nova_services WHERE audit_id = 1"
        )
    finally:
        mariadb.sql("SET GLOBAL time_zone = SYSTEM")
    assert shifted.strip() == "2024-03-02 17:00:10"  # the server's own view is in its zone
    expected = {t: [r for r in rs if r.changed_at < D(2024, 3, 4, 3)] for t, rs in recorded("vm").items()}
    assert rows == expected


@pytest.mark.mariadb
def test_server_early_form_and_single_database_dump(mariadb, audit_server, tmp_path):
    from starcompactor.audit.server import read_server_log

    dump = AUDIT / "early" / "dumps" / truth("early")["dumps"][0]["file"]
    _restore(mariadb, dump)
    assert read_server_log(audit_server).read_all() == read_dump_log(dump).read_all()
    single = tmp_path / "audit-only.sql"  # mysqldump openstack_audit: no USE, the header names it
    single.write_bytes(mariadb.dump(databases=["openstack_audit"]))
    assert b"USE `openstack_audit`" not in single.read_bytes()
    assert has_audit_log(single)
    assert read_dump_log(single).read_all() == read_dump_log(dump).read_all()


@pytest.mark.mariadb
def test_server_errors(mariadb, audit_server):
    from starcompactor.audit.server import read_server_log

    with pytest.raises(DatabaseError, match="database nowhere: Unknown database"):
        read_server_log(audit_server, database="nowhere")
    mariadb.sql(
        "CREATE DATABASE openstack_audit; CREATE TABLE openstack_audit.audit_ironic_nodes (id INT, x INT)"
    )
    with pytest.raises(AuditLogError) as info:
        read_server_log(audit_server)
    assert str(info.value).startswith(
        f"{audit_server.server} database openstack_audit: table openstack_audit.audit_ironic_nodes: not an audit table"
    )
    mariadb.sql("DROP TABLE openstack_audit.audit_ironic_nodes")
    log = read_server_log(audit_server)
    assert log.tables == () and log.missing == EXPECTED_TABLES and log.coverage_start is None


def test_a_log_read_for_a_consumer_keeps_its_keys_and_travels_by_pickle_unchanged():
    """A snapshot worker cuts ``data`` to what the machine trace reads (none for the other tables) and hands
    the log back pickled: the same rows come out, with the same counts and summary."""
    import pickle

    from starcompactor.audit.dumps import DumpLogCollector, audit_keys
    from starcompactor.dump import DumpReader

    path = dumps("vm")[-1]
    keep = {"nova_compute_nodes": ("host", "vcpus", "no_such_key")}
    reader = DumpReader(str(path), audit_keys(), stop_early=True)
    collector = DumpLogCollector(str(path), keep=keep)
    for _db, table, row in reader:
        collector.add(reader, table, row)
    found = collector.finish(reader)
    full = read_dump_log(path)
    assert {name: len(rows) for name, rows in found.rows.items()} == {
        name: len(rows) for name, rows in full.read_all().items()
    }
    for name, rows in full.read_all().items():
        keys = keep.get(name, ())
        assert found.rows[name] == [
            r._replace(data={k: r.data[k] for k in keys if k in r.data}) for r in rows
        ]
    assert any(r.data for r in found.rows["nova_compute_nodes"])
    assert not any(r.data for r in found.rows["nova_services"])
    back = pickle.loads(pickle.dumps(found))
    assert back.rows == found.rows and back.layouts == found.layouts and back.source == found.source
    assert all(type(r) is AuditRow for rows in back.rows.values() for r in rows)
    assert back.log().summary() == found.log().summary() == full.summary() | {"source": found.source}
