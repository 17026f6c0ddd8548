"""The audit log's flags, as a user runs them: machines --no-audit-log / --audit-dir / --audit-db, and
instances --source audit."""

from __future__ import annotations

import csv
import gzip
import subprocess
from pathlib import Path

import orjson
import pytest

from starcompactor.cli import main as cli_main
from tests.support.paths import FIXTURES

AUDIT = FIXTURES / "audit"
VM_CONFIG = "[default]\nnova_databases = nova,nova_cell1\n[kvm]\nhypervisor_hostname_regex = ^(r\\d+)-n\\d+\nrack_extract_group = 1\n"
B = "r1-n02.vm.example"


@pytest.fixture(autouse=True)
def _private_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("STARCOMPACTOR_MASKING_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "vm.config").write_text(VM_CONFIG)


def machines(tmp_path, *args, out="trace.csv"):
    argv = [
        "machines",
        "--config",
        str(tmp_path / "vm.config"),
        "--hashed-masking-method",
        "none",
        "--workers",
        "1",
    ]
    return cli_main([*argv, *args, str(tmp_path / out)])


def table(path: Path):
    with open(path, newline="") as handle:
        return [r for r in csv.reader(handle)][1:]


def manifest(path: Path):
    return orjson.loads(Path(str(path) + ".manifest.json").read_bytes())


def b_status(rows):
    return [(r[0], r[3]) for r in rows if r[2] == B and r[3] in ("ENABLE", "DISABLE")]


def test_the_dumps_log_is_used_and_no_audit_log_turns_it_off(tmp_path):
    dumps = str(AUDIT / "vm" / "dumps")
    assert machines(tmp_path, "--backup-dir", dumps, out="with.csv") == 0
    assert machines(tmp_path, "--backup-dir", dumps, "--no-audit-log", out="without.csv") == 0
    assert b_status(table(tmp_path / "with.csv")) == [
        ("2024-02-21T09:00:00", "ENABLE"),
        ("2024-03-03T14:30:00", "DISABLE"),
        ("2024-03-04T09:15:00", "ENABLE"),
    ]
    assert b_status(table(tmp_path / "without.csv")) == [
        ("2024-02-21T09:00:00", "ENABLE"),
        ("2024-03-04T02:59:30", "DISABLE"),
        ("2024-03-05T02:59:30", "ENABLE"),
    ]
    assert manifest(tmp_path / "with.csv")["sources"] == ["snapshots", "audit-log"]
    assert manifest(tmp_path / "without.csv")["sources"] == ["snapshots"]


def test_an_export_alone_and_with_the_dumps(tmp_path, capsys):
    export = str(AUDIT / "vm" / "parquet-naive")
    assert machines(tmp_path, "--audit-dir", export, "-v", out="alone.csv") == 0
    err = capsys.readouterr().err
    assert "from 0 snapshot(s) and the audit log" in err
    alone = manifest(tmp_path / "alone.csv")
    assert alone["sources"] == ["audit-log"] and alone["inputs"] == []
    assert alone["audit_log"]["coverage_start"] == "2024-03-02T12:00:07"
    assert (
        machines(tmp_path, "--backup-dir", str(AUDIT / "vm" / "dumps"), "--audit-dir", export, out="both.csv")
        == 0
    )
    both = manifest(tmp_path / "both.csv")
    assert both["sources"] == ["snapshots", "audit-log"] and both["audit_log"]["form"] == "parquet"
    assert sum(both["events_by_source"].values()) == len(table(tmp_path / "both.csv"))
    assert table(tmp_path / "both.csv") == table_of_dumps_log(tmp_path)


def table_of_dumps_log(tmp_path):
    assert machines(tmp_path, "--backup-dir", str(AUDIT / "vm" / "dumps"), out="dumps.csv") == 0
    return table(tmp_path / "dumps.csv")


def test_flag_mistakes_are_one_line_errors(tmp_path, capsys):
    export = str(AUDIT / "vm" / "parquet-naive")
    assert machines(tmp_path, "--audit-dir", export, "--no-audit-log") == 1
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith("--no-audit-log with --audit-dir or --audit-db: give one or the other")
    )
    assert machines(tmp_path, "--audit-dir", export, "--audit-db") == 1
    assert "give one of them" in capsys.readouterr().err
    assert machines(tmp_path, "--audit-dir", str(tmp_path / "nowhere")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("audit export directory does not exist") and not (tmp_path / "trace.csv").exists()


def test_instances_from_the_export(tmp_path, capsys):
    out = tmp_path / "instances.csv"
    argv = ["instances", "--source", "audit", "--hashed-masking-method", "none", "--quiet"]
    assert cli_main([*argv, "--audit-dir", str(AUDIT / "instances" / "parquet-naive"), str(out)]) == 0
    rows = table(out)
    assert len(rows) == 7 and {r[11] for r in rows} == {"r1-n01.vm.example", "cmp-a"}
    assert (
        cli_main([*argv, "--audit-dir", str(AUDIT / "vm" / "parquet-naive"), str(tmp_path / "none.csv")]) == 1
    )
    assert "lacks audit_nova_instances" in capsys.readouterr().err
    assert not (tmp_path / "none.csv").exists()
    assert cli_main([*argv, str(tmp_path / "x.csv")]) == 1
    assert "--source audit needs --audit-dir URI or --audit-db" in capsys.readouterr().err


@pytest.mark.mariadb
def test_audit_db_reads_option_files_and_keeps_the_password_out(mariadb, tmp_path, capsys):
    """--audit-db with the connection options of instances --source db: the password comes from an
    option file, and appears in no output, manifest or message."""
    secret = "s3cr#t w0rd"
    mariadb.sql(
        "DROP DATABASE IF EXISTS `openstack_audit`; CREATE DATABASE `openstack_audit`;"
        "DROP USER IF EXISTS 'auditor'@'localhost';"
        f"CREATE USER 'auditor'@'localhost' IDENTIFIED BY '{secret}';"
        "GRANT SELECT ON `openstack_audit`.* TO 'auditor'@'localhost';"
    )
    newest = AUDIT / "vm" / "dumps" / "mysqldump-2024-03-09T03:00:00Z.mysql.gz"
    with gzip.open(newest) as f:
        subprocess.run(
            mariadb.client_args() + ["--one-database", "openstack_audit"],
            input=f.read(),
            check=True,
            capture_output=True,
        )
    cnf = tmp_path / "auditor.cnf"
    cnf.write_text(f'[client]\nuser = auditor\npassword = "{secret}"\n')
    cnf.chmod(0o600)
    try:
        args = ["--backup-dir", str(AUDIT / "vm" / "dumps"), "--audit-db", "--defaults-file", str(cnf)]
        assert machines(tmp_path, *args, "--db-socket", mariadb.socket, "-v", out="db.csv") == 0
        assert table(tmp_path / "db.csv") == table_of_dumps_log(tmp_path)
        log = manifest(tmp_path / "db.csv")["audit_log"]
        assert (
            log["form"] == "server"
            and log["source"] == f"MySQL server socket {mariadb.socket} database openstack_audit"
        )
        cnf.write_text("[client]\nuser = auditor\npassword = wrong-one\n")
        assert machines(tmp_path, *args, "--db-socket", mariadb.socket, out="bad.csv") == 1
        err = capsys.readouterr().err
        assert "(MySQL error 1045)" in err and "wrong-one" not in err and secret not in err
        assert not (tmp_path / "bad.csv").exists()
        for path in tmp_path.iterdir():
            if path.is_file() and path != cnf:
                assert secret not in path.read_text(errors="replace")
    finally:
        mariadb.sql("DROP DATABASE IF EXISTS `openstack_audit`; DROP USER IF EXISTS 'auditor'@'localhost'")
