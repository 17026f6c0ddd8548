"""The fast row reader (RawDumpReader) reads by the typed reader's rules: whatever a dump holds, it gives
the typed reader's rows (the wanted columns, converted by kind), leaves out the same rows (repeated
primary keys, past versions of --dump-history tables) and refuses the same dumps with the same one-line
error. Checked on the hardened reader's own cases (real dumps in every form mysqldump writes, MySQL 8.4's
ANSI and bare names, crafted dumps) and on generated statements that switch between the row expression
and the tokenizer mid-statement."""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tests.fixtures.reader.make_reader_fixtures as mrf
from starcompactor.dump import DumpReader
from starcompactor.dump.raw import RawDumpReader
from starcompactor.errors import DumpSyntaxError, StarCompactorError
from tests.dump.test_reader import decompress
from tests.fixtures.reader import mysql84
from tests.support import crafted
from tests.support.paths import READER_FIXTURES

Key = Tuple[Optional[str], str]

_INT = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint"}
_TEXT = {"char", "varchar", "text", "tinytext", "mediumtext", "longtext", "enum", "set"}


def kinds_of(reader: DumpReader, key: Key) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """The columns of ``key`` the raw reader can hand out converted, and their kinds (from the typed
    reader's schema), in reverse table order (a tuple need not follow the table)."""
    schema = reader.schemas.get(key) or next((s for k, s in reader.schemas.items() if k[1] == key[1]), None)
    picked = []
    for column in schema.columns if schema is not None else ():
        if column.type in _INT:
            picked.append((column.name, "int"))
        elif column.type in ("datetime", "timestamp"):
            picked.append((column.name, "time"))
        elif column.type in _TEXT:
            picked.append((column.name, "name" if len(picked) % 2 else "text"))
    picked.reverse()
    return tuple(n for n, _ in picked), tuple(k for _, k in picked)


def as_raw(value: Any) -> Any:
    """A typed value as the raw reader gives it (times as text, compared as times)."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, bool):
        return int(value)
    return value


def parse_time(value: Any, kind: str) -> Any:
    return dt.datetime.fromisoformat(value) if kind == "time" and value is not None else value


def read_both(
    data: bytes,
    tables: Sequence[Key],
    columns: Optional[Dict[Key, Tuple[Tuple[str, ...], Tuple[str, ...]]]] = None,
) -> Dict[str, Any]:
    """Both readers over ``data``: asserts they agree (rows, dropped rows, or the error); returns what
    they gave."""
    if columns is None:
        learn = DumpReader(io.BytesIO(data), tables, stop_early=False)
        try:
            for _ in learn:
                pass
        except StarCompactorError:
            pass
        columns = {key: kinds_of(learn, key) for key in tables}
    typed = DumpReader(
        io.BytesIO(data),
        tables,
        name="mem.sql",
        stop_early=False,
        columns={k: c for k, (c, _) in columns.items()},
    )
    typed_rows: List[Tuple[Any, ...]] = []
    typed_error: Optional[StarCompactorError] = None
    try:
        for db, table, row in typed:
            typed_rows.append((db, table, row))
    except StarCompactorError as exc:
        typed_error = exc
    raw = RawDumpReader(
        io.BytesIO(data),
        tables,
        {k: c for k, (c, _) in columns.items()},
        {k: kinds for k, (_, kinds) in columns.items()},
        name="mem.sql",
        stop_early=False,
    )
    raw_rows: List[Tuple[Any, ...]] = []
    raw_error: Optional[StarCompactorError] = None
    try:
        for db, table, row in raw:
            raw_rows.append((db, table, row))
    except StarCompactorError as exc:
        raw_error = exc
    assert (type(raw_error), str(raw_error)) == (type(typed_error), str(typed_error))
    want = []
    for db, table, row in typed_rows:
        names, kinds = columns[raw.request.answers((db, table))]  # type: ignore[index]
        want.append((db, table, tuple(as_raw(row.get(n)) for n in names)))
    got = []
    for db, table, row in raw_rows:
        _, kinds = columns[raw.request.answers((db, table))]  # type: ignore[index]
        got.append((db, table, tuple(parse_time(v, k) for v, k in zip(row, kinds))))
    assert got == want
    assert raw.info.duplicate_rows == typed.info.duplicate_rows
    assert raw.info.history_rows == typed.info.history_rows
    return {"rows": raw_rows, "error": raw_error, "reader": raw}


def fast_plans(reader: RawDumpReader) -> List[bool]:
    return [getattr(plan, "pattern", None) is not None for plan in reader._plans.values()]


NOVA = [("nova", "compute_nodes"), ("nova", "services")]


@pytest.mark.parametrize("data", [mysql84.ANSI, mysql84.SKIP_QUOTE_NAMES], ids=["ansi", "skip-quote-names"])
def test_mysql84_names_in_double_quotes_and_bare(data):
    got = read_both(data, NOVA)
    assert len(got["rows"]) == len(mysql84.compute_nodes()) + len(mysql84.services())
    assert all(fast_plans(got["reader"]))  # the row expression serves these names too


@pytest.mark.parametrize(
    "name", ["all-mariadb.sql.gz", "all-mysql8.sql.bz2", "all-mysql8-crlf.sql.xz", "nova-compact.sql"]
)
def test_checked_in_fixtures(name):
    data = decompress(READER_FIXTURES / name)
    got = read_both(data, [*NOVA, ("sc_extra", "blobs")])
    assert got["error"] is None and len(got["rows"]) > 5


def test_text_in_the_dumps_character_set():
    data = (READER_FIXTURES / "latin1.sql").read_bytes()
    got = read_both(data, [("sc_extra", "latin")])
    assert [row[-1] for _, _, row in got["rows"]] == [r["id"] for r in mrf.latin_rows()]
    assert {row[0] for _, _, row in got["rows"]} == {r["name"] for r in mrf.latin_rows()}


def test_text_not_in_the_dumps_character_set_is_the_typed_readers_error():
    data = mysql84.ANSI.replace(b"'c01-01','0000", b"'c01-\xff01','0000", 1)
    assert data != mysql84.ANSI
    got = read_both(data, NOVA)
    message = str(got["error"])
    assert isinstance(got["error"], DumpSyntaxError) and "\n" not in message
    assert "column `host`: text that is not utf-8" in message


def test_repeated_keys_keep_the_first_row(caplog):
    with caplog.at_level(logging.WARNING, logger="starcompactor.dump.reader"):
        got = read_both(crafted.duplicate_keys(), NOVA)
    assert got["reader"].info.duplicate_rows == {("nova", "compute_nodes"): 1}
    hosts = {v for _, _, row in got["rows"] for v in row if isinstance(v, str)}
    assert crafted.DUPLICATE_HOST.decode() not in hosts and "r2-n01.vm.example" in hosts
    assert any("first is kept" in r.getMessage() for r in caplog.records)


def test_a_repeated_key_in_replace_is_refused():
    data = crafted.duplicate_keys().replace(b"INSERT INTO `compute_nodes`", b"REPLACE INTO `compute_nodes`")
    got = read_both(data, NOVA)
    assert "REPLACE INTO `compute_nodes` repeats the primary key" in str(got["error"])


def test_many_repeated_rows():
    data = b"".join(crafted.many_rows(20_000, 500))
    got = read_both(data, NOVA)
    assert got["reader"].info.duplicate_rows == {("nova", "services"): 20_000}


def test_named_time_zone_converts_timestamps_wanted_as_times():
    dump = b"""/*!40103 SET TIME_ZONE='Europe/Paris' */;
CREATE TABLE `t` (
  `id` int NOT NULL,
  `ts` timestamp NULL DEFAULT NULL,
  `dt` datetime DEFAULT NULL,
  PRIMARY KEY (`id`)
);
INSERT INTO `t` VALUES (1,'2024-07-01 12:00:00','2024-07-01 12:00:00'),(2,'2024-01-01 12:00:00',NULL);
"""
    got = read_both(dump, [(None, "t")])
    assert [row[0] for _, _, row in got["rows"]] == ["2024-07-01 12:00:00", None]  # dt as written
    assert [row[1][:19] for _, _, row in got["rows"]] == ["2024-07-01 10:00:00", "2024-01-01 11:00:00"]


# -- generated statements ------------------------------------------------------------------------------

CREATE = (
    b"CREATE TABLE `t` (\n  `id` int NOT NULL,\n  `k` varchar(8) NOT NULL,\n  `v` varchar(40) DEFAULT NULL,\n"
    b"  `n` int DEFAULT NULL,\n  PRIMARY KEY (%s)\n);\n"
)
KEYS = {"id": b"`id`", "id,k": b"`id`,`k`", "k": b"`k`"}


def _sql(value: Any) -> bytes:
    if value is None:
        return b"NULL"
    if isinstance(value, int):
        return str(value).encode()
    return b"'" + value.replace(b"\\", b"\\\\").replace(b"'", b"\\'").replace(b"\n", b"\\n") + b"'"


_texts = st.one_of(
    st.none(),
    st.binary(max_size=6),  # any bytes: not always UTF-8
    st.text(max_size=6).map(lambda t: t.encode()),
    st.sampled_from([b"a,b", b"(x)", b"it's", b"back\\slash", b"", b"NULL"]),
)
_rows = st.tuples(
    st.integers(0, 6),  # ids from a small range: keys repeat
    st.sampled_from([b"x", b"y", b"\xe9"]),
    _texts,
    st.none() | st.integers(-5, 5),
    st.booleans(),  # written with blanks: the tokenizer's row
)


@settings(max_examples=200, deadline=None)
@given(
    statements=st.lists(st.lists(_rows, min_size=1, max_size=6), min_size=1, max_size=4),
    key=st.sampled_from(sorted(KEYS)),
    replace=st.booleans(),
    charset=st.sampled_from([b"utf8mb4", b"latin1", None]),
    ansi=st.booleans(),
)
def test_generated_statements(statements, key, replace, charset, ansi):
    head = b"/*!40101 SET NAMES %s */;\n" % charset if charset else b""
    if ansi:
        head += b"/*!40101 SET SQL_MODE='ANSI' */;\n"
    body = [CREATE % KEYS[key]]
    verb = b"REPLACE" if replace else b"INSERT"
    for rows in statements:
        values = []
        for id_, k, v, n, blanks in rows:
            parts = [_sql(id_), _sql(k), _sql(v), _sql(n)]
            values.append(b"( " + b" , ".join(parts) + b" )" if blanks else b"(" + b",".join(parts) + b")")
        body.append(verb + b" INTO `t` VALUES " + b",".join(values) + b";\n")
    data = head + b"".join(body)
    if ansi:
        data = data.replace(b"`", b'"')
    columns = {(None, "t"): (("n", "v", "id", "k"), ("int", "text", "int", "name"))}
    read_both(data, [(None, "t")], columns)


def test_dump_history_reads_the_current_rows(mariadb):
    db = f"rawhist{os.getpid()}"
    mariadb.sql(
        f"DROP DATABASE IF EXISTS `{db}`; CREATE DATABASE `{db}`; USE `{db}`;"
        "CREATE TABLE `hosts` (`id` int NOT NULL PRIMARY KEY, `name` varchar(20), `vcpus` int) WITH SYSTEM VERSIONING;"
        "INSERT INTO `hosts` VALUES (1, 'a', 8), (2, 'b', 16), (3, 'c', 32);"
        "UPDATE `hosts` SET `vcpus` = 64 WHERE `id` = 1; DELETE FROM `hosts` WHERE `id` = 2;"
    )
    try:
        history = mariadb.dump(["--dump-history"], [db])
    finally:
        mariadb.sql(f"DROP DATABASE `{db}`;")
    columns = {(db, "hosts"): (("vcpus", "name", "id"), ("int", "text", "int"))}
    got = read_both(history, [(db, "hosts")], columns)
    assert [row for _, _, row in got["rows"]] == [(64, "a", 1), (32, "c", 3)]
    assert got["reader"].info.history_rows == {(db, "hosts"): 2}


@pytest.fixture(scope="module")
def openstack(mariadb):
    names = {db: f"raw{os.getpid()}_{db}" for db in mrf.DATABASES}
    mrf.populate(mariadb, names)
    yield mariadb, names
    mariadb.sql("".join(f"DROP DATABASE IF EXISTS `{n}`;" for n in names.values()))


@pytest.mark.parametrize(
    "options",
    [
        [],
        ["--replace"],
        ["--hex-blob", "--complete-insert"],
        ["--skip-extended-insert"],
        ["--compatible=ansi", "--default-character-set=utf8mb4"],
        ["--compatible=ansi"],  # latin1 and no SET NAMES: refused by both, naming the column
    ],
    ids=lambda o: " ".join(o) or "default",
)
def test_real_dumps(openstack, options):
    server, names = openstack
    dump = server.dump([*options, "--databases", *names.values()])
    tables = [(names["nova"], "compute_nodes"), (names["nova"], "services"), (names["sc_extra"], "blobs")]
    for variant in (dump, mrf.crlf(dump), mrf.mysql8_style(dump)):
        got = read_both(variant, tables)
        if options == ["--compatible=ansi"]:
            assert "no SET NAMES" in str(got["error"])
        else:
            assert got["error"] is None and len(got["rows"]) > 5


def test_real_skip_quote_names(openstack):
    server, names = openstack
    dump = server.dump(["--skip-quote-names"], [names["nova"], "compute_nodes"])
    got = read_both(dump, [(names["nova"], "compute_nodes")])
    assert len(got["rows"]) == len(mrf.compute_node_rows())
    assert all(fast_plans(got["reader"]))
