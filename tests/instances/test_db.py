"""Instance events from live Nova databases: the REAL MariaDB of the session fixture, the real Nova schema.

Two cells (``ie_nova`` and ``ie_nova_cell1``, both loaded from nova.sql) hold instances, actions and
events whose trace is written out by hand below: deleted instances, unfinished events, NULL hosts, a
bare-metal node, unicode names, actions outside a time window.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import subprocess
import sys

import orjson
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from starcompactor.errors import ConfigError, DatabaseError
from starcompactor.instances import DatabaseSource, DbSettings, make_instance_trace, resolve_settings
from starcompactor.instances.db import build_query
from starcompactor.mask import Masker, MaskingKey
from starcompactor.server.mycnf import read_option_files
from tests.support.instances import as_tuples
from tests.support.paths import MACHINE_FIXTURES, TESTS

D = dt.datetime
CELL_A, CELL_B = "ie_nova", "ie_nova_cell1"
EPOCH = D(2015, 9, 17)

U1 = "11111111-1111-4111-8111-111111111111"  # vm, live
U2 = "22222222-2222-4222-8222-222222222222"  # vm, deleted, node NULL, event host NULL → instances.host
U3 = "33333333-3333-4333-8333-333333333333"  # vm, node '' and host NULL → the event's host
U4 = "44444444-4444-4444-8444-444444444444"  # bare metal node, other cell
NODE_BM = "9e5476bd-a4ec-4653-93d6-72c93aa682ba"
NAME2 = "ünïcödé-名前"

INSTANCES = {
    CELL_A: [
        # uuid, hostname, user, project, host, node, memory_mb, root_gb, vcpus, deleted, deleted_at
        (U1, "web-1", "user-a", "proj-a", "c01-01", "c01-01.example.org", 2048, 20, 2, 0, None),
        (U2, NAME2, "user-b", "proj-a", "c02", None, 4096, 40, 4, 2, "2024-01-01 12:00:10"),
        (U3, "no-host", "user-a", "proj-b", None, "", 512, 1, 1, 0, None),
    ],
    CELL_B: [(U4, "bm-1", "user-c", "proj-c", "ironic-conductor", NODE_BM, 0, 0, 0, 0, None)],
}
# cell, action id, instance, action created_at, [(event, start, finish, result)]
ACTIONS = [
    (
        CELL_A,
        1,
        U1,
        "2024-01-01 00:00:00",
        [("compute__do_build_and_run_instance", "2024-01-01 00:00:01", "2024-01-01 00:00:31", "Success")],
    ),
    (CELL_A, 2, U1, "2024-01-02 10:00:00", [("compute_reboot_instance", "2024-01-02 10:00:05", None, None)]),
    (
        CELL_A,
        3,
        U2,
        "2024-01-01 12:00:00",
        [("compute_terminate_instance", "2024-01-01 12:00:00", "2024-01-01 12:00:10", "Error")],
    ),
    (
        CELL_A,
        4,
        U3,
        "2024-01-03 00:00:00",
        [("compute_stop_instance", "2024-01-03 00:00:00", "2024-01-03 00:00:01", None)],
    ),
    (
        CELL_B,
        5,
        U4,
        "2024-01-01 06:00:00",
        [
            ("compute__do_build_and_run_instance", "2024-01-01 06:00:00", "2024-01-01 06:05:00", "Success"),
            (
                "conductor_schedule_and_build_instances",
                "2024-01-01 05:59:58",
                "2024-01-01 06:00:00",
                "Success",
            ),
        ],
    ),
    (
        CELL_B,
        6,
        U4,
        "2023-12-31 23:59:00",
        [("compute_reboot_instance", "2023-12-31 23:59:00", "2024-01-01 00:00:30", "Success")],
    ),
]

VM1 = {"memory_mb": 2048, "root_gb": 20, "vcpus": 2}
VM2 = {"memory_mb": 4096, "root_gb": 40, "vcpus": 4}
VM3 = {"memory_mb": 512, "root_gb": 1, "vcpus": 1}
BM0 = {"memory_mb": 0, "root_gb": 0, "vcpus": 0}

# (uuid, event, start, finish, result, name, user, project, host, properties) in start-time order
EXPECTED_ALL = [
    (
        U4,
        "compute_reboot_instance",
        D(2023, 12, 31, 23, 59),
        D(2024, 1, 1, 0, 0, 30),
        "Success",
        "bm-1",
        "user-c",
        "proj-c",
        NODE_BM,
        BM0,
    ),
    (
        U1,
        "compute__do_build_and_run_instance",
        D(2024, 1, 1, 0, 0, 1),
        D(2024, 1, 1, 0, 0, 31),
        "Success",
        "web-1",
        "user-a",
        "proj-a",
        "c01-01.example.org",
        VM1,
    ),
    (
        U4,
        "conductor_schedule_and_build_instances",
        D(2024, 1, 1, 5, 59, 58),
        D(2024, 1, 1, 6),
        "Success",
        "bm-1",
        "user-c",
        "proj-c",
        NODE_BM,
        BM0,
    ),
    (
        U4,
        "compute__do_build_and_run_instance",
        D(2024, 1, 1, 6),
        D(2024, 1, 1, 6, 5),
        "Success",
        "bm-1",
        "user-c",
        "proj-c",
        NODE_BM,
        BM0,
    ),
    (
        U2,
        "compute_terminate_instance",
        D(2024, 1, 1, 12),
        D(2024, 1, 1, 12, 0, 10),
        "Error",
        NAME2,
        "user-b",
        "proj-a",
        "c02",
        VM2,
    ),
    (
        U1,
        "compute_reboot_instance",
        D(2024, 1, 2, 10, 0, 5),
        None,
        None,
        "web-1",
        "user-a",
        "proj-a",
        "c01-01.example.org",
        VM1,
    ),
    (
        U3,
        "compute_stop_instance",
        D(2024, 1, 3),
        D(2024, 1, 3, 0, 0, 1),
        None,
        "no-host",
        "user-a",
        "proj-b",
        "svc",  # no node: the event's own host (SPEC §1.3)
        VM3,
    ),
]
FINISHED = [e for e in EXPECTED_ALL if e[3] is not None]


def _q(value):
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"


@pytest.fixture(scope="module")
def nova(mariadb):
    """Two Nova cells with the rows above; dropped at the end (the server is shared)."""
    statements = []
    for cell in (CELL_A, CELL_B):
        mariadb.sql(f"DROP DATABASE IF EXISTS `{cell}`")
        mariadb.load_schema("nova.sql", database=cell)
        for i, row in enumerate(INSTANCES[cell], 1):
            uuid, hostname, user, project, host, node, mem, root, vcpus, deleted, deleted_at = row
            statements.append(
                f"INSERT INTO `{cell}`.instances (id, created_at, uuid, hostname, display_name, user_id, project_id, "
                f"host, node, memory_mb, root_gb, vcpus, deleted, deleted_at, vm_state) VALUES ({i}, "
                f"'2023-12-31 00:00:00', {_q(uuid)}, {_q(hostname)}, {_q(hostname)}, {_q(user)}, {_q(project)}, "
                f"{_q(host)}, {_q(node)}, {mem}, {root}, {vcpus}, {deleted}, {_q(deleted_at)}, "
                f"{_q('deleted' if deleted else 'active')});"
            )
    event_id = 0
    for cell, action_id, uuid, created, events in ACTIONS:
        statements.append(
            f"INSERT INTO `{cell}`.instance_actions (id, created_at, action, instance_uuid, request_id, "
            f"start_time, deleted) VALUES ({action_id}, {_q(created)}, 'act', {_q(uuid)}, 'req-{action_id}', "
            f"{_q(created)}, 0);"
        )
        for name, start, finish, result in events:
            event_id += 1
            statements.append(
                f"INSERT INTO `{cell}`.instance_actions_events (id, created_at, event, action_id, start_time, "
                f"finish_time, result, host, deleted) VALUES ({event_id}, {_q(start)}, {_q(name)}, {action_id}, "
                f"{_q(start)}, {_q(finish)}, {_q(result)}, {_q(None if uuid == U2 else 'svc')}, 0);"
            )
    mariadb.sql("SET NAMES utf8mb4;\n" + "\n".join(statements))
    yield mariadb
    mariadb.sql(f"DROP DATABASE IF EXISTS `{CELL_A}`; DROP DATABASE IF EXISTS `{CELL_B}`;")


def settings(db) -> DbSettings:
    return DbSettings(socket=db.socket, user="root")


def test_two_cells_merged_in_time_order_unfinished_skipped(nova):
    source = DatabaseSource(settings(nova), [CELL_A, CELL_B]).open()
    assert as_tuples(source) == FINISHED
    assert source.skipped_unfinished == 1
    assert [(c.database, c.events, c.skipped_unfinished) for c in source.cells] == [
        (CELL_A, 3, 1),
        (CELL_B, 3, 0),
    ]


def test_include_unfinished_keeps_events_without_finish_time(nova):
    source = DatabaseSource(settings(nova), [CELL_A, CELL_B], include_unfinished=True)
    assert as_tuples(source) == EXPECTED_ALL
    assert source.skipped_unfinished == 0


def test_time_window_bounds_action_creation_inclusively(nova):
    source = DatabaseSource(
        settings(nova), [CELL_B, CELL_A], start=D(2024, 1, 1), end=D(2024, 1, 2, 10), include_unfinished=True
    )
    expected = [
        e for e in EXPECTED_ALL if e[2] >= D(2024, 1, 1) - dt.timedelta(seconds=2) and e[2] < D(2024, 1, 3)
    ]
    # action 6 (created 2023-12-31) and action 4 (created 2024-01-03) are out; action 2, created exactly at
    # the end bound, is in; action 5's early conductor event (05:59:58) comes with its action.
    assert as_tuples(source) == expected
    assert [e[2] for e in expected][0] == D(2024, 1, 1, 0, 0, 1)


def test_baremetal_properties_are_empty(nova):
    events = as_tuples(DatabaseSource(settings(nova), [CELL_B], instance_type="baremetal"))
    assert [e[:9] for e in events] == [e[:9] for e in FINISHED if e[0] == U4]
    assert all(e[9] == {} for e in events)


def test_query_quotes_identifiers_and_parameterizes_values():
    sql, params = build_query("we`ird", start=D(2024, 1, 1), end=D(2024, 2, 1))
    assert "`we``ird`.`instances`" in sql and "%s" in sql
    assert params == [D(2024, 1, 1), D(2024, 2, 1)]
    assert "2024" not in sql
    assert "i.`memory_mb`" not in build_query("nova", instance_type="baremetal")[0]


def test_legacy_csv_is_the_originals_format_byte_for_byte(nova, tmp_path):
    """Columns, PROPERTIES dict repr (memory_mb, root_gb, vcpus), float seconds, None, CRLF, sha2-salted."""
    out = tmp_path / "instance_events.csv"
    masker = Masker("sha2-salted", MaskingKey(b"chameleon", "test"))
    source = DatabaseSource(settings(nova), [CELL_A, CELL_B]).open()
    manifest = make_instance_trace(source, str(out), masker=masker, epoch=EPOCH, fmt="legacy-csv").manifest

    def h(value):
        return hashlib.sha256(b"chameleon" + value.encode()).hexdigest()[:32] if value else ""

    lines = [
        "INSTANCE_UUID,EVENT,START_TIME,START_SEC,FINISH_TIME,FINISH_SEC,EVENT_DURATION,RESULT,"
        "INSTANCE_NAME,USER_ID,PROJECT_ID,HOST_NAME (PHYSICAL),PROPERTIES"
    ]
    for uuid, event, start, finish, result, name, user, project, host, props in FINISHED:
        cells = [
            h(uuid),
            event,
            start.isoformat(),
            str((start - EPOCH).total_seconds()),
            finish.isoformat(),
            str((finish - EPOCH).total_seconds()),
            str((finish - start).total_seconds()),
            str(result),
            h(name),
            h(user),
            h(project),
            h(host),
            '"' + repr(props) + '"',
        ]
        lines.append(",".join(cells))
    assert out.read_bytes() == ("\r\n".join(lines) + "\r\n").encode("utf-8")
    assert b"\"{'memory_mb': 2048, 'root_gb': 20, 'vcpus': 2}\"" in out.read_bytes()
    assert manifest["skipped_unfinished"] == 1
    assert manifest["events"] == len(FINISHED)
    assert manifest["masking"]["key_fingerprint"] == MaskingKey(b"chameleon", "test").fingerprint
    written = orjson.loads((tmp_path / "instance_events.csv.manifest.json").read_bytes())
    assert written["inputs"] == [
        {
            "source": "mysql",
            "server": f"MySQL server socket {nova.socket}",
            "database": CELL_A,
            "events": 3,
            "skipped_unfinished": 1,
        },
        {
            "source": "mysql",
            "server": f"MySQL server socket {nova.socket}",
            "database": CELL_B,
            "events": 3,
            "skipped_unfinished": 0,
        },
    ]
    assert "chameleon" not in (tmp_path / "instance_events.csv.manifest.json").read_text()


def test_unknown_database_is_one_clear_error_and_no_output(nova, tmp_path):
    out = tmp_path / "out.csv"
    with pytest.raises(DatabaseError) as info:
        source = DatabaseSource(settings(nova), [CELL_A, "ie_no_such_cell"]).open()
        make_instance_trace(source, str(out), masker=Masker("none"), epoch=EPOCH)
    message = str(info.value)
    assert message.startswith(f"MySQL server socket {nova.socket} database ie_no_such_cell: Unknown database")
    assert "\n" not in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("workers", [1, 2])
def test_missing_table_midway_leaves_no_output(nova, tmp_path, workers):
    nova.sql("DROP DATABASE IF EXISTS ie_empty; CREATE DATABASE ie_empty;")
    try:
        out = tmp_path / "out.csv"
        source = DatabaseSource(settings(nova), [CELL_A, "ie_empty"]).open()
        with pytest.raises(DatabaseError) as info:
            make_instance_trace(source, str(out), masker=Masker("none"), epoch=EPOCH, workers=workers)
        assert "database ie_empty: Table 'ie_empty.instances' doesn't exist (MySQL error 1146)" in str(
            info.value
        )
        assert list(tmp_path.iterdir()) == []
    finally:
        nova.sql("DROP DATABASE IF EXISTS ie_empty")


# -- option files ---------------------------------------------------------------------------------


def test_option_files_are_read_like_the_mysql_client(tmp_path):
    inc = tmp_path / "conf.d"
    inc.mkdir()
    (inc / "10-extra.cnf").write_text("[client]\nport = 3307\n")
    (inc / "ignored.txt").write_text("[client]\nport = 9\n")
    (tmp_path / "other.cnf").write_text("[mysql]\nhost=db.example   # trailing comment\n")
    main = tmp_path / "my.cnf"
    main.write_text(
        "# comment\n; also a comment\n[mysqld]\nuser = not-me\n[client]\nuser = first\n"
        "password = \"p#ss w'rd\"  # the quotes keep the hash\nsocket='/run/my sock'\n"
        "ssl_ca = /etc/ca.pem\nloose-default-character-set = utf8mb4\nskip-auto-rehash\n"
        "[mysql]\nuser=second\n!include other.cnf\n!includedir conf.d\n[client]\n"
        "init-command = a\\tb\\sc\\\\d\\q\n"
    )
    options = read_option_files([main])
    assert options["user"] == "second"  # later wins, whichever group
    assert options["password"] == "p#ss w'rd"
    assert options["socket"] == "/run/my sock"
    assert options["host"] == "db.example"
    assert options["port"] == "3307"
    assert options["ssl-ca"] == "/etc/ca.pem"
    assert options["default-character-set"] == "utf8mb4"
    assert options["skip-auto-rehash"] is None
    assert options["init-command"] == "a\tb c\\d\\q"
    settings = resolve_settings(defaults_file=str(main))
    assert (settings.user, settings.password, settings.port, settings.socket) == (
        "second",
        "p#ss w'rd",
        3307,
        "/run/my sock",
    )
    assert settings.ssl == {"ca": "/etc/ca.pem"}
    assert "p#ss" not in repr(settings)


def test_world_writable_option_file_is_ignored(tmp_path, caplog):
    path = tmp_path / "my.cnf"
    path.write_text("[client]\nuser=x\n")
    os.chmod(path, 0o666)
    assert read_option_files([path]) == {}
    assert "world-writable" in caplog.text


def test_missing_defaults_file_and_bad_lines_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="nope.cnf: option file does not exist"):
        resolve_settings(defaults_file=str(tmp_path / "nope.cnf"))
    bad = tmp_path / "bad.cnf"
    bad.write_text("user=x\n")
    with pytest.raises(ConfigError, match=r"bad.cnf:1: option outside of any \[group\]"):
        read_option_files([bad])


def test_bare_password_line_or_prompt_flag_asks_on_the_terminal(tmp_path, monkeypatch):
    asked = []
    monkeypatch.setattr("getpass.getpass", lambda prompt: asked.append(prompt) or "typed")
    path = tmp_path / "my.cnf"
    path.write_text("[client]\nuser=u\npassword\n")
    assert resolve_settings(defaults_file=str(path)).password == "typed"
    path.write_text("[client]\nuser=u\npassword=fromfile\n")
    assert resolve_settings(defaults_file=str(path)).password == "fromfile"
    assert resolve_settings(defaults_file=str(path), prompt=True).password == "typed"
    assert len(asked) == 2 and "u" in asked[0]


# -- command line: errors ---------------------------------------------------------------------------


def run_cli(*args, cwd=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "starcompactor", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


def test_access_denied_is_one_line_naming_server_and_database(nova, tmp_path):
    nova.sql(
        "DROP USER IF EXISTS 'ie_nobody'@'localhost'; CREATE USER 'ie_nobody'@'localhost' IDENTIFIED BY 'p#w \"x';"
    )
    try:
        cnf = tmp_path / "client.cnf"
        cnf.write_text("[client]\nuser = ie_nobody\npassword = 'p#w \"x'\n")
        out = tmp_path / "out.csv"
        common = [
            "instances",
            "--source",
            "db",
            "--defaults-file",
            str(cnf),
            "--db-socket",
            nova.socket,
            "--nova-databases",
            CELL_A,
            "--hashed-masking-method",
            "none",
        ]
        done = run_cli(*common, str(out))
        assert done.returncode == 1
        lines = done.stderr.strip().splitlines()
        assert lines[-1].startswith(
            f"starcompactor: error: MySQL server socket {nova.socket} database {CELL_A}: "
        )
        assert (
            "Access denied for user 'ie_nobody'@'localhost' to database 'ie_nova' (MySQL error 1044)"
            in lines[-1]
        )
        assert not out.exists() and list(tmp_path.iterdir()) == [cnf]
        # a wrong password: refused at login, and the password is never echoed
        cnf.write_text("[client]\nuser = ie_nobody\npassword = wrong-secret\n")
        done = run_cli(*common, str(out))
        assert done.returncode == 1
        assert "(MySQL error 1045)" in done.stderr and "wrong-secret" not in done.stderr
        assert not out.exists()
    finally:
        nova.sql("DROP USER IF EXISTS 'ie_nobody'@'localhost'")


def test_unknown_database_from_the_command_line(nova, tmp_path):
    cnf = tmp_path / "client.cnf"
    cnf.write_text("[client]\nuser=root\n")
    out = tmp_path / "out.csv"
    done = run_cli(
        "instances",
        "--defaults-file",
        str(cnf),
        "--db-socket",
        nova.socket,
        "--nova-databases",
        f"{CELL_A},ie_nope",
        "--hashed-masking-method",
        "none",
        str(out),
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"starcompactor: error: MySQL server socket {nova.socket} database ie_nope: "
        "Unknown database 'ie_nope' (MySQL error 1049)"
    )
    assert not out.exists()


def test_cli_writes_with_workers_and_rejects_zero_before_touching_keys(nova, tmp_path):
    cnf = tmp_path / "client.cnf"
    cnf.write_text("[client]\nuser=root\n")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    common = [
        "instances",
        "--defaults-file",
        str(cnf),
        "--db-socket",
        nova.socket,
        "--nova-databases",
        f"{CELL_A},{CELL_B}",
    ]
    done = run_cli(*common, "--workers", "0", str(tmp_path / "zero.csv"), env=env)
    assert done.returncode == 1 and done.stderr.strip().endswith("--workers must be at least 1")
    assert not (tmp_path / "config").exists() and not (tmp_path / "zero.csv").exists()
    for workers in ("1", "2"):
        done = run_cli(*common, "--workers", workers, "--quiet", str(tmp_path / f"w{workers}.csv"), env=env)
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "w1.csv").read_bytes() == (tmp_path / "w2.csv").read_bytes()
    assert (tmp_path / "w1.csv").read_text().count("\n") == 1 + len(FINISHED)


def test_unreachable_server_names_it(tmp_path):
    settings = DbSettings(host="127.0.0.1", port=1, user="x", connect_timeout=2)
    with pytest.raises(DatabaseError) as info:
        DatabaseSource(settings, ["nova"]).open()
    assert str(info.value).startswith("MySQL server 127.0.0.1:1 database nova: Can't connect")


# -- the join with the machine trace ---------------------------------------------------------------

HERE = TESTS
MACHINES = MACHINE_FIXTURES


@pytest.mark.skipif(not (MACHINES / "vm").is_dir(), reason="machine fixtures not present")
def test_instance_and_machine_traces_share_host_keys(nova, tmp_path):
    """Same key → HOST_NAME (PHYSICAL) values of both traces are equal for the same hosts, vm and bare metal."""
    from starcompactor.config import load_config
    from starcompactor.machines import make_machine_trace

    key = MaskingKey(b"join-test-key", "test")
    cfg = tmp_path / "vm.config"
    cfg.write_text("[default]\nnova_databases = nova,nova_cell0,nova_cell1\n")
    config = load_config(str(cfg))
    plain = {}
    masked = {}
    for kind, directory in (("vm", "vm"), ("baremetal", "bm_upstream")):
        runs = {}
        for name, masker in (("plain", Masker("none")), ("masked", Masker("hmac-sha256", key))):
            result = make_machine_trace(
                str(MACHINES / directory),
                str(tmp_path / f"{kind}-{name}.csv"),
                instance_type=kind,
                config=config,
                masker=masker,
                workers=1,
            )
            runs[name] = {e.host for e in result.events}
        plain[kind], masked[kind] = runs["plain"], runs["masked"]
    vm_host = sorted(plain["vm"])[0]
    bm_node = sorted(plain["baremetal"])[0]

    cell = "ie_join"
    nova.sql(f"DROP DATABASE IF EXISTS `{cell}`")
    nova.load_schema("nova.sql", database=cell)
    try:
        short = vm_host.split(".")[0]
        nova.sql(
            f"INSERT INTO `{cell}`.instances (id, uuid, hostname, user_id, project_id, host, node, memory_mb, root_gb, "
            f"vcpus, deleted) VALUES (1, 'j1', 'a', 'u', 'p', {_q(short)}, {_q(vm_host)}, 1, 1, 1, 0), "
            f"(2, 'j2', 'b', 'u', 'p', 'ironic', {_q(bm_node)}, 0, 0, 0, 0);"
            f"INSERT INTO `{cell}`.instance_actions (id, created_at, instance_uuid, request_id) VALUES "
            "(1, '2024-01-02', 'j1', 'r1'), (2, '2024-01-02', 'j2', 'r2');"
            f"INSERT INTO `{cell}`.instance_actions_events (id, event, action_id, start_time, finish_time) VALUES "
            "(1, 'e', 1, '2024-01-02', '2024-01-02 00:00:01'), (2, 'e', 2, '2024-01-02 00:01', '2024-01-02 00:02');"
        )
        for kind, uuid in (("vm", "j1"), ("baremetal", "j2")):
            out = tmp_path / f"instances-{kind}.jsonl"
            source = DatabaseSource(settings(nova), [cell], instance_type=kind)
            make_instance_trace(source, str(out), masker=Masker("hmac-sha256", key), epoch=EPOCH, fmt="jsonl")
            rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
            mine = [r for r in rows if r["INSTANCE_UUID"] == Masker("hmac-sha256", key)(uuid)]
            assert len(mine) == 1
            assert mine[0]["HOST_NAME (PHYSICAL)"] in masked[kind]
        # the original's choice, instances.host, would not have joined
        assert Masker("hmac-sha256", key)(short) not in masked["vm"]
    finally:
        nova.sql(f"DROP DATABASE IF EXISTS `{cell}`")


@pytest.mark.skipif(shutil.which("mariadb") is None and shutil.which("mysql") is None, reason="no client")
def test_the_join_matches_the_mysql_client(nova):
    """Same rows as the mysql client prints for the SPEC join (the baseline of benchmarks/instances.py)."""
    sql, _ = build_query(CELL_A)
    out = nova.sql(sql)
    rows = [line.split("\t") for line in out.splitlines()]
    assert [(r[4], r[0], r[1]) for r in rows] == [
        (e[0], e[1], str(e[2])) for e in EXPECTED_ALL if e[0] in (U1, U2, U3)
    ]


# -- merging cells, worker processes ------------------------------------------------------------------


@hsettings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(st.tuples(st.integers(0, 6), st.integers(1, 4))), min_size=1, max_size=4), st.randoms()
)
def test_batch_merge_is_heapq_merge_of_the_items(cells, rnd):
    """Cells as sorted streams cut into random batches merge exactly as heapq.merge merges the items."""
    import heapq

    from starcompactor.instances.merge import merge_sorted_batches

    items = [sorted((key, cell, n) for n, (key, _) in enumerate(rows)) for cell, rows in enumerate(cells)]
    sizes = [[size for _, size in rows] for rows in cells]

    def batches(cell):
        rows, i = items[cell], 0
        for size in sizes[cell]:
            if i < len(rows):
                yield rows[i : i + size]
                i += size
        if i < len(rows):
            yield rows[i:]

    expected = list(heapq.merge(*items, key=lambda item: item[0]))
    got = [
        item
        for batch in merge_sorted_batches([batches(c) for c in range(len(items))], lambda item: item[0])
        for item in batch
    ]
    assert got == expected


def test_batch_masking_equals_event_masking():
    from starcompactor.events import InstanceEvent
    from starcompactor.mask import mask_instance_batch, mask_instance_event

    masker = Masker("hmac-sha256", MaskingKey(b"k", "test"))
    events = [InstanceEvent(*row) for row in EXPECTED_ALL] + [
        InstanceEvent("", "e", None, None, None, None, None, None, None)
    ]
    assert mask_instance_batch(events, masker) == [mask_instance_event(e, masker) for e in events]
    assert all(type(e) is InstanceEvent for e in mask_instance_batch(events, masker))


@pytest.mark.parametrize("method", ["hmac-sha256", "sha1-raw", "none"])
@pytest.mark.parametrize("kind", ["vm", "baremetal"])
def test_masking_while_reading_equals_masking_the_events(nova, method, kind):
    """The database source masks an instance's fields once, as it reads; the result must be what
    masking each event gives (NULL hosts, unicode names, unfinished events included)."""
    from starcompactor.events import InstanceEvent
    from starcompactor.mask import mask_instance_batch

    key = MaskingKey(b"k", "test")
    plain = list(
        DatabaseSource(settings(nova), [CELL_A, CELL_B], instance_type=kind, include_unfinished=True)
    )
    source = DatabaseSource(settings(nova), [CELL_A, CELL_B], instance_type=kind, include_unfinished=True)
    masked = [event for batch in source.masked_batches(Masker(method, key)) for event in batch]
    assert len(plain) == len(EXPECTED_ALL)
    assert masked == mask_instance_batch(plain, Masker(method, key))
    assert all(type(e) is InstanceEvent for e in masked)
    assert masked != plain or method == "none"


def test_parquet_from_the_database_holds_the_csv_rows(nova, tmp_path):
    """Parquet is written from events (masked as read), csv from rows: the same trace either way."""
    import csv

    pq = pytest.importorskip("pyarrow.parquet")
    masker = Masker("hmac-sha256", MaskingKey(b"k", "test"))
    traces = {}
    for fmt in ("csv", "parquet"):
        out = tmp_path / f"t.{fmt}"
        source = DatabaseSource(settings(nova), [CELL_A, CELL_B], include_unfinished=True).open()
        manifest = make_instance_trace(
            source, str(out), masker=masker, epoch=EPOCH, fmt=fmt, workers=2
        ).manifest
        traces[fmt] = (out, manifest["counts"], manifest["time_range"])
    with open(traces["csv"][0], newline="") as handle:
        rows = list(csv.DictReader(handle))
    table = pq.read_table(traces["parquet"][0]).to_pylist()
    assert len(table) == len(rows) == len(EXPECTED_ALL)
    for record, row in zip(table, rows):
        for column in (
            "INSTANCE_UUID",
            "EVENT",
            "RESULT",
            "INSTANCE_NAME",
            "USER_ID",
            "PROJECT_ID",
            "HOST_NAME (PHYSICAL)",
            "PROPERTIES",
        ):
            assert (record[column] or "") == row[column]
        start = record["START_TIME"]
        assert (start.isoformat() if start else "") == row["START_TIME"]
        assert record["START_SEC"] == (float(row["START_SEC"]) if row["START_SEC"] else None)
    assert traces["csv"][1:] == traces["parquet"][1:]


@pytest.mark.parametrize("fmt", ["csv", "legacy-csv", "jsonl"])
@pytest.mark.parametrize("cells", [[CELL_A, CELL_B], [CELL_A]])
def test_worker_processes_write_the_same_trace(nova, tmp_path, fmt, cells, monkeypatch):
    from starcompactor.instances import workers as instances_parallel

    used = []
    real = instances_parallel.write_database_trace
    monkeypatch.setattr(
        instances_parallel, "write_database_trace", lambda *a, **k: used.append(1) or real(*a, **k)
    )
    masker = Masker("hmac-sha256", MaskingKey(b"k", "test"))
    outputs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}.out"
        source = DatabaseSource(settings(nova), cells, include_unfinished=True).open()
        manifest = make_instance_trace(
            source, str(out), masker=masker, epoch=EPOCH, fmt=fmt, workers=workers
        ).manifest
        outputs.append((out.read_bytes(), manifest["counts"], manifest["time_range"], manifest["inputs"]))
    assert used == [1]  # the second run went through the worker processes
    assert outputs[0] == outputs[1]
    assert outputs[0][0].count(b"\n") == (len(EXPECTED_ALL) if len(cells) == 2 else 4) + (fmt != "jsonl")
