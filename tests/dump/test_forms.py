"""Dumps that once read as empty, or read wrong, without a word: each is now read right or refused in one line.

Real dumps where the tools here can make them (mariadb-dump ``--dump-history``; ``--compatible=ansi`` and
``--skip-quote-names`` are in test_reader.py's real-dump tests), MySQL 8.4's forms as its output shows
them (tests/fixtures/reader/mysql84.py), and crafted variants of the vm fixture (tests/support/crafted.py).
"""

from __future__ import annotations

import gzip
import io
import logging
import os

import pytest

from starcompactor.dump import DumpReader
from starcompactor.errors import DumpSyntaxError, TruncatedDumpError
from starcompactor.machines.backups import BackupFile
from starcompactor.machines.snapshot import read_snapshot
from starcompactor.machines.state import SnapshotSettings
from tests.fixtures.reader import mysql84
from tests.support import crafted

NOVA = [("nova", "compute_nodes"), ("nova", "services")]
VM = SnapshotSettings("vm", crafted.NOVA_DATABASES)


def rows_of(data: bytes, tables=NOVA, **kwargs):
    out = {}
    reader = DumpReader(io.BytesIO(data), tables, name="mem.sql", **kwargs)
    for _db, table, row in reader:
        out.setdefault(table, []).append(row)
    return out, reader


def assert_mysql84_rows(got) -> None:
    for table, want in (("compute_nodes", mysql84.compute_nodes()), ("services", mysql84.services())):
        assert [{k: row[k] for k in w} for row, w in zip(got[table], want)] == want
        assert len(got[table]) == len(want)


@pytest.mark.parametrize("data", [mysql84.ANSI, mysql84.SKIP_QUOTE_NAMES], ids=["ansi", "skip-quote-names"])
def test_mysql84_forms(data):
    """Before: zero rows and no error (every table looked absent: a trace of every host DELETEd)."""
    got, reader = rows_of(data, stop_early=False)
    assert_mysql84_rows(got)
    assert reader.info.flavor == "MySQL" and reader.info.ended_cleanly
    assert reader.schemas[("nova", "services")].column_names[5] == "binary"


def test_double_quoted_names_where_sql_mode_says_they_are_strings_are_refused():
    data = mysql84.ANSI.replace(b"'NO_AUTO_VALUE_ON_ZERO,ANSI'", b"'NO_AUTO_VALUE_ON_ZERO'")
    with pytest.raises(DumpSyntaxError, match="ANSI_QUOTES") as caught:
        rows_of(data)
    assert "\n" not in str(caught.value) and "mem.sql" in str(caught.value)


def test_a_dump_that_never_sets_sql_mode_reads_double_quoted_names():
    """``--compact --compatible=ansi`` writes no SQL_MODE: a double-quoted table name can only be a name."""
    data = b"".join(line + b"\n" for line in mysql84.ANSI.split(b"\n") if b"SQL_MODE" not in line)
    got, _ = rows_of(data)
    assert_mysql84_rows(got)


@pytest.mark.parametrize(
    "head",
    [b"INSERT INTO [compute_nodes] VALUES", b"INSERT INTO 'compute_nodes' VALUES", b"insert into `x"],
)
def test_an_insert_whose_table_cannot_be_named_is_refused(head):
    data = mysql84.ANSI.replace(b'INSERT INTO "compute_nodes" VALUES', head, 1)
    with pytest.raises(DumpSyntaxError, match="cannot read the table name") as caught:
        rows_of(data)
    assert "\n" not in str(caught.value)


def test_a_wanted_insert_whose_column_list_cannot_be_read_is_refused():
    data = mysql84.ANSI.replace(
        b'INSERT INTO "compute_nodes" VALUES', b'INSERT INTO "compute_nodes" SELECT', 1
    )
    with pytest.raises(DumpSyntaxError, match="column list or VALUES"):
        rows_of(data)


def test_rows_in_a_plain_comment_are_not_data():
    """Before: the fake compute node in the comment was a host of the snapshot."""
    got, _ = rows_of(crafted.commented_rows(), [("nova", "compute_nodes")])
    hosts = [row["hypervisor_hostname"] for row in got["compute_nodes"]]
    assert hosts and crafted.FAKE_HOST.decode() not in hosts
    # a conditional comment is run by the server: what it holds is read
    executed = (
        crafted.commented_rows().replace(b"/*\nINSERT", b"/*!40000 */\nINSERT").replace(b";\n*/\n", b";\n")
    )
    got, _ = rows_of(executed, [("nova", "compute_nodes")])
    assert crafted.FAKE_HOST.decode() in [row["hypervisor_hostname"] for row in got["compute_nodes"]]


def test_an_unclosed_comment_is_truncation():
    data = crafted.commented_rows()
    cut = data[: data.index(b"/*\nINSERT") + 40]
    with pytest.raises(TruncatedDumpError, match="inside a /\\* comment"):
        rows_of(cut, [("nova", "compute_nodes")])


def test_a_repeated_primary_key_keeps_the_first_row_with_a_warning(caplog, tmp_path):
    """A restore (mysql --force) keeps the first row and fails the later INSERT: so does the reader, and
    says so once per table, naming the dump. Before: both rows, two records for one compute node."""
    data = crafted.duplicate_keys()
    with caplog.at_level(logging.WARNING, logger="starcompactor.dump.reader"):
        got, reader = rows_of(data, [("nova", "compute_nodes")])
    hosts = [row["hypervisor_hostname"] for row in got["compute_nodes"]]
    assert crafted.DUPLICATE_HOST.decode() not in hosts and "r2-n01.vm.example" in hosts
    assert [row["id"] for row in got["compute_nodes"]].count(1) == 1
    assert reader.info.duplicate_rows == {("nova", "compute_nodes"): 1}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "mem.sql" in warnings[0] and "nova.compute_nodes" in warnings[0]
    assert "(id)" in warnings[0] and "first is kept" in warnings[0]
    path = tmp_path / "mysqldump-2024-01-01T03:00:00Z.sql.gz"
    path.write_bytes(gzip.compress(data))
    snapshot = read_snapshot(BackupFile(str(path), path.name), VM)
    assert crafted.DUPLICATE_HOST.decode() not in {h.host for h in snapshot.hosts}


def test_a_repeated_key_in_replace_statements_is_refused():
    data = crafted.duplicate_keys().replace(b"INSERT INTO `compute_nodes`", b"REPLACE INTO `compute_nodes`")
    with pytest.raises(DumpSyntaxError, match="REPLACE INTO `compute_nodes` repeats the primary key"):
        rows_of(data, [("nova", "compute_nodes")])


def test_keys_out_of_order_and_not_integers():
    rows = b",".join(
        b"(%d,'%s')" % (i, name) for i, name in ((3, b"a"), (1, b"b"), (2, b"c"), (1, b"d"), (3, b"e"))
    )
    data = (
        b"CREATE TABLE `t` (\n  `id` int NOT NULL,\n  `v` varchar(9),\n  PRIMARY KEY (`id`)\n);\n"
        b"INSERT INTO `t` VALUES " + rows + b";\n"
        b"CREATE TABLE `u` (\n  `a` varchar(9) NOT NULL,\n  `b` int NOT NULL,\n  PRIMARY KEY (`a`,`b`)\n);\n"
        b"INSERT INTO `u` VALUES ('x',1),('x',2),('y',1),('x',1);\n"
    )
    got, reader = rows_of(data, [(None, "t"), (None, "u")])
    assert [row["v"] for row in got["t"]] == ["a", "b", "c"]
    assert [(row["a"], row["b"]) for row in got["u"]] == [("x", 1), ("x", 2), ("y", 1)]
    assert reader.info.duplicate_rows == {(None, "t"): 2, (None, "u"): 1}


def test_create_table_over_sqlparse_token_limit():
    """sqlparse ≥ 0.5 refuses to group more than 10,000 tokens (before: SQLParseError, a traceback)."""
    columns = ",\n".join(f"  `c{i}` int DEFAULT NULL COMMENT 'column {i}'" for i in range(3000))
    values = ",".join(str(i) for i in range(3000))
    data = (
        f"CREATE TABLE `wide` (\n  `id` int NOT NULL,\n{columns},\n  PRIMARY KEY (`id`)\n);\n"
        f"INSERT INTO `wide` VALUES (1,{values});\n"
    ).encode()
    got, reader = rows_of(data, [(None, "wide")])
    assert len(reader.schemas[(None, "wide")].columns) == 3001
    assert got["wide"][0]["c2999"] == 2999


def test_an_overlong_create_table_is_one_error():
    """Names and types past the skeleton bound (literals do not count): one line, not gigabytes."""
    columns = ",\n".join(f"  `column_with_a_long_name_{i:07d}` int" for i in range(40000))
    data = f"CREATE TABLE `wide` (\n{columns}\n);\n".encode()
    with pytest.raises(DumpSyntaxError, match="CREATE TABLE `wide`: more than") as caught:
        rows_of(data, [(None, "wide")])
    assert "\n" not in str(caught.value)


def test_dump_history_reads_the_current_rows(mariadb):
    """mariadb-dump --dump-history writes bare `row_start, row_end` in the column list (before: the whole
    dump was refused) and every past version of a row beside the current one: the reader gives what a
    SELECT gives now, and says how many past versions it left out."""
    db = f"hist{os.getpid()}"
    mariadb.sql(
        f"DROP DATABASE IF EXISTS `{db}`; CREATE DATABASE `{db}`; USE `{db}`;"
        "CREATE TABLE `hosts` (`id` int NOT NULL PRIMARY KEY, `name` varchar(20), `vcpus` int) WITH SYSTEM VERSIONING;"
        "INSERT INTO `hosts` VALUES (1, 'a', 8), (2, 'b', 16), (3, 'c', 32);"
        "UPDATE `hosts` SET `vcpus` = 64 WHERE `id` = 1; UPDATE `hosts` SET `vcpus` = 128 WHERE `id` = 1;"
        "DELETE FROM `hosts` WHERE `id` = 2;"
    )
    try:
        history = mariadb.dump(["--dump-history"], [db])
        plain = mariadb.dump([], [db])
        now = mariadb.sql(f"SELECT id, name, vcpus FROM `{db}`.`hosts` ORDER BY id")
    finally:
        mariadb.sql(f"DROP DATABASE `{db}`;")
    assert b"row_start, row_end) VALUES" in history
    want = [
        dict(zip(("id", "name", "vcpus"), (int(a), b, int(c))))
        for a, b, c in (line.split("\t") for line in now.split("\n") if line)
    ]
    for data in (history, plain):
        got, reader = rows_of(data, [(db, "hosts")], stop_early=False)
        assert [{k: row[k] for k in ("id", "name", "vcpus")} for row in got["hosts"]] == want
        assert reader.info.duplicate_rows == {}
    _, reader = rows_of(history, [(db, "hosts")])
    assert reader.info.history_rows == {(db, "hosts"): 3}  # id 1 twice before, id 2 deleted
    assert reader.schemas[(db, "hosts")].system_versioned
