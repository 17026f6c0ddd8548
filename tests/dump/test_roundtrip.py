"""Round trip through the real server and the real mysqldump: what goes in comes out of the reader.

Random rows (Hypothesis) go into a MariaDB table through PyMySQL (parameterized), the table is dumped by
mysqldump under every option set and compression the field uses, and the reader must return exactly
the inserted values. Each example inserts a batch of rows and is dumped many ways, so that the file stays
fast with few examples.
"""

from __future__ import annotations

import bz2
import datetime as dt
import gzip
import io
import json
import lzma
import os
from decimal import Decimal
from typing import Any, Dict, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from starcompactor.dump import DumpReader
from tests.fixtures.reader.make_reader_fixtures import crlf, mysql8_style  # noqa: E402

DB = f"rt_roundtrip_{os.getpid()}"
TABLE = "vals"

DDL = f"""
CREATE TABLE `{TABLE}` (
  `id` int NOT NULL PRIMARY KEY,
  `txt` text,
  `name` varchar(200),
  `bin` varbinary(255),
  `blb` blob,
  `i8` tinyint,
  `u16` smallint unsigned,
  `i32` int,
  `i64` bigint,
  `u64` bigint unsigned,
  `dec` decimal(30,10),
  `dbl` double,
  `dt` datetime(6),
  `ts` timestamp(6) NULL DEFAULT NULL,
  `doc` json,
  `bits` bit(64)
) DEFAULT CHARSET=utf8mb4
"""

#: A trigger whose body holds INSERT text for our own table, and a ``;`` + newline in a string.
TRIGGER = f"""CREATE TRIGGER `{TABLE}_bi` BEFORE INSERT ON `{TABLE}` FOR EACH ROW
BEGIN
SET @last = 'x;
INSERT INTO `{TABLE}` VALUES (999);
UNLOCK TABLES;';
END"""

TRICKY_CHARS = "'\"\\\x00\n\r\t\x1a%_(),;`é☃🚀"
TRICKY_BYTES = b"'\"\\\x00\n\r\t\x1a(),;\x80\xff"

text = st.text(
    alphabet=st.one_of(
        st.sampled_from(TRICKY_CHARS),
        st.characters(blacklist_categories=("Cs",), max_codepoint=0x10FFFF),
    ),
    max_size=40,
) | st.sampled_from(["", "),(", "');\nUNLOCK TABLES;", "NULL", "\\N", "0x41", "_binary 'x'"])
binary = st.binary(max_size=60) | st.lists(st.sampled_from(list(TRICKY_BYTES)), max_size=20).map(bytes)


def ints(lo: int, hi: int) -> st.SearchStrategy[int]:
    return st.sampled_from([lo, hi, 0, -1 if lo < 0 else 1]) | st.integers(lo, hi)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)

TS_MIN = dt.datetime(1970, 1, 1, 0, 0, 1)
TS_MAX = dt.datetime(2038, 1, 19, 3, 14, 7)


def nullable(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


row_values = st.fixed_dictionaries(
    {
        "txt": nullable(text),
        "name": nullable(text.map(lambda s: s[:200])),
        "bin": nullable(binary),
        "blb": nullable(binary),
        "i8": nullable(ints(-128, 127)),
        "u16": nullable(ints(0, 2**16 - 1)),
        "i32": nullable(ints(-(2**31), 2**31 - 1)),
        "i64": nullable(ints(-(2**63), 2**63 - 1)),
        "u64": nullable(ints(0, 2**64 - 1)),
        "dec": nullable(
            st.decimals(
                min_value=Decimal("-1e19") + 1,
                max_value=Decimal("1e19") - 1,
                places=10,
                allow_nan=False,
                allow_infinity=False,
            )
        ),
        "dbl": nullable(st.floats(allow_nan=False, allow_infinity=False, width=64)),
        "dt": nullable(st.datetimes(dt.datetime(1000, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999))),
        "ts": nullable(st.datetimes(TS_MIN, TS_MAX)),
        "doc": nullable(json_values.map(lambda v: json.dumps(v, ensure_ascii=False))),
        "bits": nullable(ints(0, 2**64 - 1)),
    }
)
batches = st.lists(row_values, min_size=1, max_size=6)

#: (name, mysqldump options, transform of the dump, whether the dump names its database)
OPTION_SETS = [
    ("default", ["--databases"], None),
    ("skip-extended-insert", ["--skip-extended-insert", "--databases"], None),
    ("complete-insert", ["--complete-insert", "--databases"], None),
    ("hex-blob", ["--hex-blob", "--databases"], None),
    ("compact", ["--compact"], None),  # single database: no USE, no comments, no locks
    ("routines-triggers", ["--routines", "--triggers", "--databases"], None),
    ("mysql8-style", ["--hex-blob", "--routines", "--triggers", "--databases"], mysql8_style),
    ("crlf", ["--skip-extended-insert", "--triggers", "--databases"], crlf),
]


def _compress(data: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(data, compresslevel=1)
    if how == "bzip2":
        return bz2.compress(data, 1)
    if how == "xz":
        return lzma.compress(data, preset=0)
    if how == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=1).compress(data)
    return data


COMPRESSIONS = ["gzip", "bzip2", "xz", "zstd", "plain"]


@pytest.fixture(scope="module")
def roundtrip_db(mariadb):
    mariadb.sql(f"DROP DATABASE IF EXISTS `{DB}`; CREATE DATABASE `{DB}` DEFAULT CHARACTER SET utf8mb4;")
    conn = mariadb.connect(DB)
    with conn.cursor() as cur:
        cur.execute(DDL)
        cur.execute(TRIGGER)
        cur.execute("SET time_zone = '+00:00'")
    yield mariadb, conn
    conn.close()
    mariadb.sql(f"DROP DATABASE IF EXISTS `{DB}`")


def _load(conn: Any, rows: List[Dict[str, Any]]) -> None:
    with conn.cursor() as cur:
        cur.execute(f"DELETE FROM `{TABLE}`")
        for i, row in enumerate(rows, start=1):
            names = ", ".join(f"`{n}`" for n in ["id", *row])
            marks = ", ".join(["%s"] * (len(row) + 1))
            values = [i] + [
                v.to_bytes(8, "big") if k == "bits" and v is not None else v for k, v in row.items()
            ]
            cur.execute(f"INSERT INTO `{TABLE}` ({names}) VALUES ({marks})", values)


def _stored(conn: Any) -> List[Dict[str, Any]]:
    """What the server kept (doubles and JSON come back as the server stores them)."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT `dbl` FROM `{TABLE}` ORDER BY `id`")
        return [{"dbl": r[0]} for r in cur.fetchall()]


def _expected(rows: List[Dict[str, Any]], stored: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    out = []
    for i, (row, kept) in enumerate(zip(rows, stored), start=1):
        out.append({"id": i, **row, "dbl": kept["dbl"]})
    return out


def _read(data: bytes, **kwargs: Any) -> List[Dict[str, Any]]:
    reader = DumpReader(io.BytesIO(data), [(DB, TABLE)], name="roundtrip.sql", **kwargs)
    got = []
    for db, table, row in reader:
        assert table == TABLE
        assert db in (DB, None)
        got.append(row)
    return got


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=batches)
def test_values_survive_mysqldump(roundtrip_db, rows):
    server, conn = roundtrip_db
    _load(conn, rows)
    expected = _expected(rows, _stored(conn))
    for n, (name, options, transform) in enumerate(OPTION_SETS):
        args = options + [DB] if "--databases" in options else options
        dump = server.dump(args, [] if "--databases" in options else [DB])
        if transform is not None:
            dump = transform(dump)
        for how in (COMPRESSIONS[n % len(COMPRESSIONS)], COMPRESSIONS[(n + 2) % len(COMPRESSIONS)]):
            got = _read(_compress(dump, how))
            assert got == expected, f"option set {name}, {how}"


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=batches)
def test_timestamp_without_tz_utc(roundtrip_db, rows):
    """--skip-tz-utc writes TIMESTAMPs in the server's zone and says nothing: the caller names it."""
    server, conn = roundtrip_db
    _load(conn, rows)
    expected = _expected(rows, _stored(conn))
    zone = dt.timezone(dt.timedelta(hours=5, minutes=30))
    old = server.sql("SELECT @@GLOBAL.time_zone").strip()
    server.sql("SET GLOBAL time_zone = '+05:30'")
    try:
        dump = server.dump(["--skip-tz-utc", "--databases", DB])
        utc_dump = server.dump(["--databases", DB])
    finally:
        server.sql(f"SET GLOBAL time_zone = '{old}'")
    assert b"SET TIME_ZONE='+00:00'" not in dump
    assert _read(dump, time_zone=zone) == expected
    assert _read(utc_dump) == expected  # the default dump says +00:00 and the reader honours it
    as_written = _read(dump)  # not told: values as written, i.e. 5h30 ahead
    for got, want in zip(as_written, expected):
        if want["ts"] is not None:
            assert got["ts"] == want["ts"] + dt.timedelta(hours=5, minutes=30)
