"""``starcompactor instances`` and the original's ``instance_event_db_dump`` entry point, end to end."""

from __future__ import annotations

import csv
import hashlib
import io
import subprocess
import sys

import orjson
import pytest

from starcompactor.instances import DatabaseSource, DbSettings, make_instance_trace
from starcompactor.mask import Masker, MaskingKey
from tests.instances.test_db import CELL_A, CELL_B, EPOCH, FINISHED, nova  # noqa: F401 - the fixture


@pytest.fixture(autouse=True)
def _private_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.my.cnf of the machine's user
    monkeypatch.delenv("STARCOMPACTOR_MASKING_KEY", raising=False)
    monkeypatch.setenv("TQDM_DISABLE", "1")


def run(module, *args, cwd=None, input=None):
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=cwd, input=input
    )


def test_instances_db_csv(nova, tmp_path):  # noqa: F811
    cnf = tmp_path / "my.cnf"
    cnf.write_text(f"[client]\nuser=root\nsocket={nova.socket}\n")
    out = tmp_path / "trace.csv"
    done = run(
        "starcompactor",
        "instances",
        "--source",
        "db",
        "--defaults-file",
        str(cnf),
        "--nova-databases",
        f"{CELL_A},{CELL_B}",
        "--hashed-masking-method",
        "none",
        "--quiet",
        str(out),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert rows[0][0] == "INSTANCE_UUID" and len(rows) == len(FINISHED) + 1
    for row, (uuid, event, start, finish, result, name, user, project, host, props) in zip(
        rows[1:], FINISHED
    ):
        assert row == [
            uuid,
            event,
            start.isoformat(),
            str(int((start - EPOCH).total_seconds())),
            finish.isoformat(),
            str(int((finish - EPOCH).total_seconds())),
            str(int((finish - start).total_seconds())),
            result or "",
            name,
            user,
            project,
            host or "",
            orjson.dumps(props).decode(),
        ]
    manifest = orjson.loads((tmp_path / "trace.csv.manifest.json").read_bytes())
    assert manifest["trace"] == "instance" and manifest["source"] == "db"
    assert manifest["skipped_unfinished"] == 1 and manifest["events"] == len(FINISHED)


def test_include_unfinished_and_window_flags(nova, tmp_path):  # noqa: F811
    out = tmp_path / "trace.jsonl"
    done = run(
        "starcompactor",
        "instances",
        "--no-defaults",
        "--db-user",
        "root",
        "--db-socket",
        nova.socket,
        "--nova-databases",
        CELL_A,
        "--include-unfinished",
        "--start",
        "2024-01-02T00:00:00Z",
        "--end",
        "2024-01-02T23:00:00",
        "--format",
        "jsonl",
        "--hashed-masking-method",
        "none",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [(r["EVENT"], r["FINISH_TIME"]) for r in rows] == [("compute_reboot_instance", None)]


def test_password_is_never_taken_from_argv(nova, tmp_path):  # noqa: F811
    done = run("starcompactor", "instances", "--db-socket", nova.socket, "-psecret", str(tmp_path / "o.csv"))
    assert done.returncode == 2
    assert not (tmp_path / "o.csv").exists()


def test_original_entry_point_writes_the_legacy_format(nova, tmp_path):  # noqa: F811
    """``instance_event_db_dump`` with the original's flags: same code, legacy csv, sha2-salted by default."""
    nova.sql(
        "DROP USER IF EXISTS 'ie_compat'@'localhost'; CREATE USER 'ie_compat'@'localhost' IDENTIFIED BY 'pw';"
        f"GRANT SELECT ON `{CELL_A}`.* TO 'ie_compat'@'localhost'; GRANT SELECT ON `{CELL_B}`.* TO 'ie_compat'@'localhost';"
    )
    try:
        (tmp_path / "starcompactor.config").write_text(f"[default]\nnova_databases = {CELL_A},{CELL_B}\n")
        out = tmp_path / "legacy.csv"
        done = run(
            "starcompactor.instance_event_db_dump",
            "-u",
            "ie_compat",
            "--password",
            "pw",
            "--db-socket",
            nova.socket,
            "--hashed-masking-salt",
            "chameleon",
            "--debug",
            str(out),
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        assert "password on the command line is visible" in done.stderr
        assert "pw" not in done.stderr.replace("password", "")
        expected = tmp_path / "expected.csv"
        source = DatabaseSource(DbSettings(socket=nova.socket, user="root"), [CELL_A, CELL_B])
        make_instance_trace(
            source,
            str(expected),
            masker=Masker("sha2-salted", MaskingKey(b"chameleon", "t")),
            epoch=EPOCH,
            fmt="legacy-csv",
        )
        assert out.read_bytes() == expected.read_bytes()
        first = out.read_bytes().split(b"\r\n")[1].split(b",")
        assert first[0].decode() == hashlib.sha256(b"chameleon" + FINISHED[0][0].encode()).hexdigest()[:32]
        # --jsons: JSON lines
        done = run(
            "starcompactor.instance_event_db_dump",
            "-u",
            "ie_compat",
            "-p",
            "pw",
            "--db-socket",
            nova.socket,
            "--hashed-masking-salt",
            "chameleon",
            "--jsons",
            str(tmp_path / "j"),
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        assert len((tmp_path / "j").read_bytes().splitlines()) == len(FINISHED)
    finally:
        nova.sql("DROP USER IF EXISTS 'ie_compat'@'localhost'")


@pytest.mark.parametrize(
    "module", ["starcompactor.instance_event_db_dump", "starcompactor.instance_event_api_dump"]
)
def test_original_flags_are_accepted(module):
    done = run(module, "--help")
    assert done.returncode == 0
    flags = [
        "--instance-type",
        "--hashed-masking-method",
        "--hashed-masking-salt",
        "--jsons",
        "--start",
        "--end",
        "--verbose",
        "--debug",
        "output_file",
    ]
    if module.endswith("db_dump"):
        flags += ["--db-user", "-u", "--password", "-p", "--host", "-H", "--port", "-P"]
    else:
        flags += ["--osrc", "--os-cloud"]
    for flag in flags:
        assert flag in done.stdout
