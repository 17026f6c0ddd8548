"""``starcompactor inspect`` on every kind of fixture dump, as a user runs it.

Row counts (counted without tokenizing) are checked against the full tokenizer on the same file; the
audit-log dump is made now with the real MariaDB and mariadb-dump.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional, Tuple

import pytest

from starcompactor.cli import main as cli_main
from starcompactor.dump import DumpReader
from starcompactor.dump.inspect import summarize
from starcompactor.errors import NotADumpError
from tests.support.paths import MACHINE_FIXTURES, READER_FIXTURES, REPO

VM = MACHINE_FIXTURES / "vm" / "mysqldump-2024-01-01T03:00:00Z.mysql.gz"
BLAZAR = {
    "bm_old": ("mysql_backup_20240101-030000.sql.bz2", "capability_name"),
    "bm_chameleon": ("mysqldump-2024-01-01T03:00:00Z.mysql.gz", "extra_capabilities"),
    "bm_upstream": ("mysqldump-2024-01-01T03:00:00Z.mysql.gz", "resource_properties"),
}
TRUNCATED = READER_FIXTURES / "truncated-in-table.sql.gz"
COMPACT = READER_FIXTURES / "nova-compact.sql"
MYSQL = READER_FIXTURES / "all-mysql8.sql.bz2"


def inspect_json(capsys, *paths) -> Tuple[int, list, str]:
    code = cli_main(["inspect", "--json", *map(str, paths)])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def counts(report) -> Dict[Tuple[Optional[str], str], int]:
    return {(d["name"], t["name"]): t["rows"] for d in report["databases"] for t in d["tables"]}


def tokenized_counts(path: Path, tables) -> Dict[Tuple[Optional[str], str], int]:
    """Rows per table through the full tokenizer (every table asked for)."""
    out = {key: 0 for key in tables}
    for db, table, _row in DumpReader(path, list(tables), stop_early=False):
        out[(db, table)] += 1
    return out


@pytest.mark.parametrize("path", [VM, COMPACT, MYSQL], ids=["vm", "compact", "mysql-style"])
def test_counts_agree_with_the_tokenizer(capsys, path):
    code, [report], err = inspect_json(capsys, path)
    assert code == 0 and err == ""
    got = counts(report)
    assert sum(got.values()) > 20
    assert got == tokenized_counts(path, got)
    assert report["row_count"] == sum(got.values())


def test_vm_dump(capsys):
    code, [report], _ = inspect_json(capsys, VM)
    assert code == 0
    assert (report["flavor"], report["distribution"], report["compression"]) == (
        "MariaDB",
        "10.11.19-MariaDB",
        "gzip",
    )
    assert report["server_version"].startswith("10.11.19-MariaDB")
    assert report["completed_at"] == "2024-01-01 03:00:00" and report["ended_cleanly"] is True
    assert [d["name"] for d in report["databases"]][:3] == ["keystone", "mysql", "nova"]
    got = counts(report)
    assert got[("nova", "compute_nodes")] == 4 and got[("nova_cell1", "compute_nodes")] > 0
    assert report["blazar_schema"] is None and report["audit_log"] is None
    assert (report["sql_mode"], report["character_set"], report["time_zone"]) == (
        "NO_AUTO_VALUE_ON_ZERO",
        "utf8mb4",
        "+00:00",
    )


@pytest.mark.parametrize("site", sorted(BLAZAR))
def test_blazar_schemas(capsys, site):
    name, layout = BLAZAR[site]
    code, [report], _ = inspect_json(capsys, MACHINE_FIXTURES / site / name)
    assert code == 0 and report["blazar_schema"]["layout"] == layout
    assert ("blazar", "computehost_extra_capabilities") in counts(report)
    assert counts(report)[("ironic", "nodes")] > 0


def test_compact_dump_says_what_it_cannot_tell(capsys):
    code, [report], _ = inspect_json(capsys, COMPACT)
    assert code == 0 and report["ended_cleanly"] is None and report["flavor"] is None
    assert report["databases"][0]["name"] is None and counts(report)[(None, "compute_nodes")] == 13
    cli_main(["inspect", str(COMPACT)])
    assert "no header or trailer to tell" in capsys.readouterr().out


def test_mysql_style_dump(capsys):
    code, [report], _ = inspect_json(capsys, MYSQL)
    assert code == 0 and report["flavor"] == "MySQL" and report["distribution"] == "8.0.36"


def test_truncated_dump_is_reported_with_what_was_read(capsys):
    code, [report], err = inspect_json(capsys, TRUNCATED)
    assert code == 1 and report["ended_cleanly"] is False and report["error_kind"] == "TruncatedDumpError"
    assert len(report["databases"]) >= 1 and sum(len(d["tables"]) for d in report["databases"]) > 10
    assert err.count("\n") == 1 and err.startswith("starcompactor: error: ") and "truncated" in err
    code = cli_main(["inspect", str(TRUNCATED), str(VM)])
    out = capsys.readouterr().out
    assert code == 1 and "TRUNCATED" in out and "cleanly" in out  # the other dump is still reported


def test_truncated_summary_and_what_is_not_a_dump(tmp_path):
    summary = summarize(TRUNCATED)
    assert summary.ended_cleanly is False and summary.tables and summary.error is not None
    bad = tmp_path / "x.sql.gz"
    bad.write_bytes(gzip.compress(b"host,vcpus\nc01,4\n"))
    with pytest.raises(NotADumpError):
        summarize(bad)


def test_command_line_table_and_exit_status():
    """As a user runs it: the installed entry point, a table for people."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "starcompactor",
            "inspect",
            str(MACHINE_FIXTURES / "bm_upstream" / BLAZAR["bm_upstream"][0]),
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Blazar        resource_properties" in done.stdout
    assert "computehost_extra_capabilities" in done.stdout and "Traceback" not in done.stderr


AUDIT_DDL = """
CREATE TABLE `audit_nova_services` (
  `audit_id` bigint NOT NULL AUTO_INCREMENT,
  `id` int NOT NULL,
  `audit_event_type` enum('INSERT','UPDATE','DELETE') NOT NULL,
  `audit_event_time` datetime(6) NOT NULL,
  `audit_changed_by` varchar(255) DEFAULT NULL,
  `audit_changed_at` datetime(6) NOT NULL DEFAULT current_timestamp(6),
  `data` json DEFAULT NULL,
  PRIMARY KEY (`audit_id`)
);
"""


@pytest.mark.mariadb
def test_audit_log(mariadb, capsys, tmp_path):
    """A real openstack_audit database, dumped by mariadb-dump: from when the log covers history."""
    names = ("openstack_audit",)
    mariadb.sql(f"DROP DATABASE IF EXISTS `{names[0]}`; CREATE DATABASE `{names[0]}`;")
    mariadb.sql(AUDIT_DDL, database=names[0])
    mariadb.sql(
        "INSERT INTO `audit_nova_services` (`id`, `audit_event_type`, `audit_event_time`, `audit_changed_by`,"
        " `audit_changed_at`, `data`) VALUES"
        " (1, 'INSERT', '2022-05-01 10:00:00', 'backfill', '2024-03-01 09:30:00', '{\"host\": \"c01\"}'),"
        " (2, 'INSERT', '2023-01-02 10:00:00', 'backfill', '2024-03-01 09:30:01', '{\"host\": \"c02\"}'),"
        " (2, 'UPDATE', '2024-03-05 12:00:00', 'nova@10.0.0.5', '2024-03-05 12:00:00', '{\"disabled\": 1}'),"
        " (3, 'INSERT', '2024-04-01 08:00:00', 'nova@10.0.0.5', '2024-04-01 08:00:00', '{\"host\": \"c03\"}');",
        database=names[0],
    )
    try:
        path = tmp_path / "with-audit.sql.gz"
        path.write_bytes(gzip.compress(mariadb.dump(["--databases", names[0]])))
        mariadb.sql(
            "DELETE FROM `audit_nova_services` WHERE `audit_changed_by` = 'backfill';", database=names[0]
        )
        no_backfill = tmp_path / "no-backfill.sql"
        no_backfill.write_bytes(mariadb.dump(["--databases", names[0]]))
    finally:
        mariadb.sql(f"DROP DATABASE `{names[0]}`;")
    code, [report, later], _ = inspect_json(capsys, path, no_backfill)
    assert code == 0
    audit = report["audit_log"]
    assert audit["since"] == "2024-03-01 09:30:00" and audit["since_from"].startswith("first backfill")
    assert audit["tables"]["audit_nova_services"] == {
        "rows": 4,
        "first_backfill": "2024-03-01 09:30:00",
        "first_event": "2022-05-01 10:00:00",
    }
    assert later["audit_log"]["since"] == "2024-03-05 12:00:00"
    assert later["audit_log"]["since_from"].startswith("first event")
    cli_main(["inspect", str(path)])
    assert "openstack_audit: 1 table(s), 4 row(s), from 2024-03-01 09:30:00" in capsys.readouterr().out
