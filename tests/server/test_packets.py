"""Bulk reading of streamed results (mysql_rows) against PyMySQL's own reading of the same rows, on the
REAL MariaDB of the session fixture: random text, bytes, NULLs, long fields, zero dates, 16 MB rows."""

from __future__ import annotations

import datetime as dt
import gc
import warnings

import pymysql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from starcompactor.server import packets as mysql_rows
from starcompactor.server.connect import _conversions

DB = "mr_rows"
TABLE = f"""
CREATE TABLE `{DB}`.t (
  id INT PRIMARY KEY,
  s VARCHAR(300) CHARACTER SET utf8mb4,
  b VARBINARY(300),
  long_text MEDIUMTEXT CHARACTER SET utf8mb4,
  n BIGINT,
  d DATETIME,
  blob_ LONGBLOB
)"""


@pytest.fixture(scope="module")
def db(mariadb):
    mariadb.sql(f"DROP DATABASE IF EXISTS `{DB}`; CREATE DATABASE `{DB}`; {TABLE};")
    yield mariadb
    mariadb.sql(f"DROP DATABASE IF EXISTS `{DB}`")


def connect(db, unbuffered=True):
    return pymysql.connect(
        unix_socket=db.socket,
        user="root",
        database=DB,
        charset="utf8mb4",
        autocommit=True,
        conv=_conversions(),
        init_command="SET SESSION sql_mode = ''",
        cursorclass=pymysql.cursors.SSCursor if unbuffered else pymysql.cursors.Cursor,
    )


def load(db, rows):
    with connect(db, unbuffered=False) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM t")
        cur.executemany("INSERT INTO t VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)


def pymysql_rows(db):
    with connect(db, unbuffered=False) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM t ORDER BY id")
        return list(cur.fetchall())


def bulk_rows(db, shared=None):
    with connect(db) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM t ORDER BY id")
        return [row for batch in mysql_rows.stream_rows(cur, shared=shared) for row in batch]


def chunk_rows(db, shared=None):
    """The worker-process path: undecoded chunks, decoded by parse_chunk."""
    with connect(db) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM t ORDER BY id")
        converters = cur._result.converters
        out = []
        for chunk, seq in mysql_rows.stream_chunks(cur):
            if isinstance(chunk, bytes):
                out.extend(mysql_rows.parse_chunk(chunk, seq, converters, shared))
            else:
                out.extend(chunk if shared is None else map(shared.regroup, chunk))
        return out


def grouped(rows, first):
    """What reading with SharedColumns(first, made) must give."""
    return [(*row[:first], made(tuple(row[first:]))) for row in rows]


def made(values):
    return ("made", values)


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)
long_text = st.one_of(
    st.none(), st.text(max_size=5), st.text(alphabet="aé€😀", min_size=200, max_size=30_000)
)
dates = st.one_of(
    st.none(),
    st.just("0000-00-00 00:00:00"),
    st.datetimes(min_value=dt.datetime(1000, 1, 1), max_value=dt.datetime(9999, 12, 31)).map(
        lambda d: d.replace(microsecond=0)
    ),
)
row = st.tuples(
    st.one_of(st.none(), text),
    st.one_of(st.none(), st.binary(max_size=300)),
    long_text,
    st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
    dates,
    st.one_of(st.none(), st.binary(max_size=2000)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(row, min_size=1, max_size=25))
def test_random_rows_read_in_bulk_equal_pymysqls_reading(db, rows):
    load(db, [(i, *r) for i, r in enumerate(rows)])
    expected = pymysql_rows(db)
    assert bulk_rows(db) == expected
    assert chunk_rows(db) == expected
    for first in (1, 4, 6):  # the last columns read as one item, from a text, a DATETIME, a LONGBLOB column
        want = grouped(expected, first)
        assert bulk_rows(db, mysql_rows.SharedColumns(first, made)) == want
        assert chunk_rows(db, mysql_rows.SharedColumns(first, made)) == want


def test_shared_columns_are_made_once_per_distinct_content(db):
    owners = [(b"\x00\xfb", None, 1, b"x"), (None, "é" * 400, -2, None), (b"\x00\xfb", None, 1, b"x")]
    load(
        db,
        [
            (i, f"event {i}", *o[:3], "2021-03-04 05:06:07", o[3])
            for i, o in ((i, owners[i % 3]) for i in range(3000))
        ],
    )
    with connect(db, unbuffered=False) as conn, conn.cursor() as cur:
        cur.execute("SELECT id, s, d, b, long_text, n, blob_ FROM t ORDER BY id")
        expected = list(cur.fetchall())
    calls = []

    def make(values):
        calls.append(values)
        return values

    for read in (bulk_rows, chunk_rows):
        calls.clear()
        shared = mysql_rows.SharedColumns(3, make)
        with connect(db) as conn, conn.cursor() as cur:
            cur.execute("SELECT id, s, d, b, long_text, n, blob_ FROM t ORDER BY id")
            if read is bulk_rows:
                got = [row for batch in mysql_rows.stream_rows(cur, shared=shared) for row in batch]
            else:
                converters = cur._result.converters
                got = []
                for chunk, seq in mysql_rows.stream_chunks(cur):
                    got.extend(
                        mysql_rows.parse_chunk(chunk, seq, converters, shared)
                        if isinstance(chunk, bytes)
                        else map(shared.regroup, chunk)
                    )
        assert got == [(*row[:3], tuple(row[3:])) for row in expected]
        # two distinct owners; the first row (decoded by PyMySQL) may add one more call for its content
        assert 2 <= len(calls) <= 3 and {tuple(c) for c in calls} == {tuple(r[3:]) for r in expected[:2]}
        assert got[1][3] is got[4][3]


def test_shared_columns_start_over_at_their_limit():
    shared = mysql_rows.SharedColumns(0, lambda values: values, limit=2)
    for value in ("a", "b", "c"):
        shared[(value,)]
    assert len(shared) == 1 and shared[("c",)] == ("c",)


def test_many_reads_long_fields_and_a_16_mb_row(db):
    rows = [
        (i, f"name-{i}", bytes([i % 256]) * (i % 7), "é" * (i % 300), i * 7919, "2024-02-29 23:59:59", None)
        for i in range(20_000)
    ]
    rows[777] = (777, "x", b"", "y" * 70_000, None, None, b"\xfb\xfe\xff" * 6_000_000)  # 18 MB: 2 packets
    load(db, rows)
    expected = pymysql_rows(db)
    got = bulk_rows(db)
    assert len(got) == 20_000 and got == expected
    assert len(got[777][6]) == 18_000_000
    assert chunk_rows(db) == expected


def test_type_checks_and_empty_result(db):
    load(db, [(1, "a", b"b", "c", 5, "2020-01-02 03:04:05", b"z")])
    (row,) = bulk_rows(db)
    assert row == (1, "a", b"b", "c", 5, dt.datetime(2020, 1, 2, 3, 4, 5), b"z")
    load(db, [])
    assert bulk_rows(db) == [] and chunk_rows(db) == []


def test_abandoning_a_stream_closes_the_connection_quietly(db):
    load(db, [(i, "v", None, None, i, None, None) for i in range(50_000)])
    conn = connect(db)
    cur = conn.cursor()
    cur.execute("SELECT * FROM t ORDER BY id")
    stream = mysql_rows.stream_rows(cur)
    next(stream)
    next(stream)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stream.close()
        cur.close()  # must not try to read the rest of the result through the closed socket
        del cur, stream
        gc.collect()
    assert not conn.open


def test_server_error_mid_result_is_pymysqls_exception(db):
    # MAX_STATEMENT_TIME kills the query while rows stream: the error packet comes after some rows.
    load(db, [(i, "v", None, None, i, None, None) for i in range(200)])
    with connect(db) as conn, conn.cursor() as cur:
        # ~2 s of rows, one per 10 ms; the limit is 0.5 s
        cur.execute("SET STATEMENT max_statement_time=0.5 FOR SELECT SLEEP(0.01), id FROM t")
        with pytest.raises(pymysql.err.OperationalError) as info:
            for _ in mysql_rows.stream_rows(cur):
                pass
        assert info.value.args[0] == 1969  # ER_STATEMENT_TIMEOUT
    with connect(db) as conn, conn.cursor() as cur:  # the same through the chunk path
        cur.execute("SET STATEMENT max_statement_time=0.5 FOR SELECT SLEEP(0.01), id FROM t")
        converters = cur._result.converters
        rows = []
        with pytest.raises(pymysql.err.OperationalError) as info:
            for chunk, seq in mysql_rows.stream_chunks(cur):
                rows.extend(
                    mysql_rows.parse_chunk(chunk, seq, converters) if isinstance(chunk, bytes) else chunk
                )
        assert info.value.args[0] == 1969
        assert 10 <= len(rows) < 200 and [r[1] for r in rows] == list(range(len(rows)))


def test_a_chunk_holding_an_end_of_result_or_a_sequence_gap_is_rejected(db):
    load(db, [(i, "v" * 300, None, None, i, None, None) for i in range(3)])  # 300 bytes: the long-field path
    with connect(db) as conn, conn.cursor() as cur:
        cur.execute("SELECT s, n FROM t ORDER BY id")
        converters = cur._result.converters
        chunks = list(mysql_rows.stream_chunks(cur))
    packets, seq = next((c, s) for c, s in chunks if isinstance(c, bytes))
    assert mysql_rows.parse_chunk(packets, seq, converters) == [("v" * 300, 1), ("v" * 300, 2)]
    eof = bytes([5, 0, 0, (seq + 2) & 0xFF, 0xFE, 0, 0, 0x22, 0])
    with pytest.raises(mysql_rows.ProtocolError):
        mysql_rows.parse_chunk(packets + eof, seq, converters)
    with pytest.raises(mysql_rows.ProtocolError):
        mysql_rows.parse_chunk(packets, (seq + 1) & 0xFF, converters)


def test_other_pymysql_internals_fall_back_to_fetchmany(db, monkeypatch):
    load(db, [(i, "v", None, None, i, None, None) for i in range(10)])
    with connect(db) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM t ORDER BY id")

        class ReadOnly:  # a file without read1, as a different PyMySQL might have
            def __init__(self, raw):
                self.read = raw.read
                self.close = raw.close

        monkeypatch.setattr(conn, "_rfile", ReadOnly(conn._rfile))
        rows = [row for batch in mysql_rows.stream_rows(cur) for row in batch]
    assert [r[0] for r in rows] == list(range(10))
    with connect(db) as conn, conn.cursor() as cur:  # rows read by PyMySQL are regrouped all the same
        cur.execute("SELECT * FROM t ORDER BY id")
        monkeypatch.setattr(conn, "_rfile", ReadOnly(conn._rfile))
        shared = mysql_rows.SharedColumns(4, made)
        rows = [row for batch in mysql_rows.stream_rows(cur, shared=shared) for row in batch]
    assert rows == grouped([(i, "v", None, None, i, None, None) for i in range(10)], 4)


# -- over TCP with TLS, as against a remote server -----------------------------------------------------


def test_rows_over_tls_from_option_file_settings(tls_server, tmp_path, monkeypatch):
    from starcompactor.server.connect import connect as db_connect
    from starcompactor.server.settings import resolve_settings

    server, port, cert = tls_server
    cnf = tmp_path / "client.cnf"
    cnf.write_text(
        f"[client]\nhost=127.0.0.1\nport={port}\nuser=tls\npassword=pw\nssl-ca={cert}\nssl-verify-server-cert\n"
    )
    settings_ = resolve_settings(defaults_file=str(cnf))
    rows = [
        (i, "é" * (i % 5), bytes([i % 256]), "x" * (i * 37 % 400), i, "2024-01-01 00:00:00", None)
        for i in range(5000)
    ]
    with (
        pymysql.connect(
            host="127.0.0.1",
            port=port,
            user="tls",
            password="pw",
            database=DB,
            ssl={"ca": str(cert)},
            conv=_conversions(),
            autocommit=True,
        ) as conn,
        conn.cursor() as cur,
    ):
        cur.executemany("INSERT INTO t VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)
        cur.execute("SELECT * FROM t ORDER BY id")
        expected = list(cur.fetchall())
    conn = db_connect(settings_, DB)
    monkeypatch.setattr(mysql_rows, "_fetchmany", None)  # the bulk path must be the one taken
    with conn.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        assert cur.fetchall()[0][1]  # the connection is encrypted
        cur.execute("SELECT * FROM t ORDER BY id")
        got = [row for batch in mysql_rows.stream_rows(cur) for row in batch]
    conn.close()
    assert got == expected and len(got) == 5000
