"""The statement walker on real dumps: checked-in fixtures and dumps of the real OpenStack schemas.

Fixtures come from ``tests/fixtures/reader/make_reader_fixtures.py`` (real mysqldump of the real schemas,
plus the documented MySQL-8 and CRLF transforms); the expected rows are the ones that script inserted.
"""

from __future__ import annotations

import bz2
import datetime as dt
import gzip
import io
import lzma
import os
import re
from pathlib import Path
from typing import Any, Dict, List, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tests.fixtures.reader.make_reader_fixtures as mrf
from starcompactor.dump import DumpReader, read_info, read_rows
from starcompactor.errors import (
    CorruptArchiveError,
    DumpError,
    DumpSyntaxError,
    LineTooLongError,
    NotADumpError,
    TruncatedDumpError,
    UnknownColumnsError,
    UnknownCompressionError,
)
from tests.support.paths import READER_FIXTURES, SCHEMAS

READER = READER_FIXTURES

NOVA = [("nova", "compute_nodes"), ("nova", "services")]
ALL = NOVA + [("sc_extra", "blobs")]


def expected_rows() -> Dict[str, List[Dict[str, Any]]]:
    return {
        "compute_nodes": mrf.compute_node_rows(),
        "services": mrf.service_rows(),
        "blobs": mrf.blob_rows(),
    }


def _plain(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


def create_table_columns(schema_file: str, table: str) -> List[str]:
    """Column names of ``table`` read straight from the schema file (not through the reader)."""
    text = (SCHEMAS / schema_file).read_text()
    body = text[text.index(f"CREATE TABLE `{table}` (") :]
    body = body[: body.index("\n) ")]
    return re.findall(r"^  `([^`]+)` ", body, re.MULTILINE)


def collect(rows) -> Dict[str, List[Dict[str, Any]]]:
    out: Dict[str, List[Dict[str, Any]]] = {}
    for _db, table, row in rows:
        out.setdefault(table, []).append(row)
    return out


def assert_rows(got: Dict[str, List[Dict[str, Any]]], tables: Sequence[str]) -> None:
    expected = expected_rows()
    for table in tables:
        want = expected[table]
        have = got.get(table, [])
        assert len(have) == len(want), table
        for w, h in zip(want, have):
            assert {k: h[k] for k in w} == {k: _plain(v) for k, v in w.items()}, (table, w["id"])


def decompress(path: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix == ".gz":
        return gzip.decompress(data)
    if path.suffix == ".bz2":
        return bz2.decompress(data)
    if path.suffix == ".xz":
        return lzma.decompress(data)
    if path.suffix == ".zst":
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


# -- checked-in fixtures ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, tables",
    [
        ("all-mariadb.sql.gz", ALL),
        ("all-mysql8.sql.bz2", ALL),
        ("all-mysql8-crlf.sql.xz", ALL),
        ("nova-single.sql.zst", NOVA),
        ("nova-compact.sql", NOVA),
    ],
)
@pytest.mark.parametrize("stop_early", [True, False])
def test_fixture_rows(name, tables, stop_early):
    reader = DumpReader(READER / name, tables, stop_early=stop_early)
    got = collect(reader)
    assert_rows(got, [t for _, t in tables])
    for table, schema_file in (("compute_nodes", "nova.sql"), ("services", "nova.sql")):
        assert list(got[table][0]) == create_table_columns(schema_file, table)


def test_fixture_databases_are_reported():
    rows = list(read_rows(READER / "all-mariadb.sql.gz", ALL))
    assert {db for db, _, _ in rows} == {"nova", "sc_extra"}
    # a single-database dump names its database in the header only
    rows = list(read_rows(READER / "nova-single.sql.zst", NOVA))
    assert {db for db, _, _ in rows} == {"nova"}
    # a --compact single-database dump never names it: rows come with None, matched by table name
    rows = list(read_rows(READER / "nova-compact.sql", NOVA))
    assert {db for db, _, _ in rows} == {None}


@pytest.mark.parametrize(
    "name, flavor, distribution, crlf, compression",
    [
        ("all-mariadb.sql.gz", "MariaDB", "10.11.19-MariaDB", False, "gzip"),
        ("all-mysql8.sql.bz2", "MySQL", "8.0.36", False, "bzip2"),
        ("all-mysql8-crlf.sql.xz", "MySQL", "8.0.36", True, "xz"),
        ("nova-single.sql.zst", "MariaDB", "10.11.19-MariaDB", False, "zstd"),
    ],
)
def test_fixture_metadata(name, flavor, distribution, crlf, compression):
    info = read_info(READER / name)
    assert (info.flavor, info.distribution, info.crlf, info.compression) == (
        flavor,
        distribution,
        crlf,
        compression,
    )
    assert info.has_header and info.has_trailer and info.ended_cleanly is True
    text = decompress(READER / name)
    stamp = re.search(rb"-- Dump completed on (\d{4}-\d\d-\d\d) +(\d+):(\d\d):(\d\d)", text)
    assert info.completed_at == dt.datetime.combine(
        dt.date.fromisoformat(stamp.group(1).decode()), dt.time(*(int(g) for g in stamp.group(2, 3, 4)))
    )
    assert info.time_zone == "+00:00"
    assert info.bytes_read == len(text)
    if name.startswith("all-"):
        assert info.databases == ["keystone", "nova", "nova_cell0", "sc_extra"]
        assert ("nova", "compute_nodes") in info.tables and ("nova_cell0", "compute_nodes") in info.tables
        assert ("sc_extra", "latin") in info.tables
    else:
        assert info.databases == ["nova"]
    assert info.server_version.startswith("8.0.36" if flavor == "MySQL" else "10.11.19-MariaDB")


def test_compact_dump_has_no_metadata_but_reads():
    info = read_info(READER / "nova-compact.sql")
    assert not info.has_header and not info.has_trailer and info.ended_cleanly is None
    assert info.databases == [] and (None, "compute_nodes") in info.tables


def test_early_exit_stops_before_the_end_with_complete_rows():
    full = len(decompress(READER / "all-mariadb.sql.gz"))
    reader = DumpReader(READER / "all-mariadb.sql.gz", NOVA)
    early = collect(reader)
    assert reader.info.stopped_early and reader.info.bytes_read < full // 2
    assert reader.info.ended_cleanly is None and reader.info.completed_at is None
    assert "nova_cell0" not in reader.info.databases
    assert_rows(early, ["compute_nodes", "services"])
    late = DumpReader(READER / "all-mariadb.sql.gz", NOVA, stop_early=False)
    assert collect(late) == early
    assert not late.info.stopped_early and late.info.bytes_read == full


def test_leaving_a_database_completes_its_absent_tables():
    """A requested table the dump does not hold (another Blazar layout's) must not force a full read."""
    full = len(decompress(READER / "all-mariadb.sql.gz"))
    wanted = [*NOVA, ("nova", "no_such_table")]
    reader = DumpReader(READER / "all-mariadb.sql.gz", wanted)
    rows = collect(reader)
    assert_rows(rows, ["compute_nodes", "services"])
    assert reader.info.stopped_early and reader.info.bytes_read < full
    assert "nova_cell0" in reader.info.databases  # it stopped on entering the next database


def test_cell_databases_are_kept_apart():
    """nova and nova_cell0 have the same tables; only nova's compute nodes are asked for."""
    got = list(
        read_rows(READER / "all-mariadb.sql.gz", [("nova_cell0", "services"), ("nova", "compute_nodes")])
    )
    cell0 = [row for db, table, row in got if db == "nova_cell0"]
    assert [r["binary"] for r in cell0] == ["nova-conductor"]
    assert len([1 for db, table, _ in got if (db, table) == ("nova", "compute_nodes")]) == 13


def test_any_database_request_reads_every_cell():
    got = list(read_rows(READER / "all-mariadb.sql.gz", [(None, "services")]))
    assert {db for db, _, _ in got} == {"nova", "nova_cell0"}
    assert len(got) == len(mrf.service_rows()) + 1


def test_truncated_after_requested_tables_still_reads_them():
    rows = collect(read_rows(READER / "truncated-after.sql.gz", NOVA))
    assert_rows(rows, ["compute_nodes", "services"])
    with pytest.raises(TruncatedDumpError, match="truncated-after.sql.gz"):
        list(read_rows(READER / "truncated-after.sql.gz", NOVA, stop_early=False))


@pytest.mark.parametrize("name", ["truncated-in-table.sql.gz", "truncated-in-table.sql.bz2"])
def test_truncated_inside_requested_table_raises(name):
    with pytest.raises(TruncatedDumpError) as err:
        list(read_rows(READER / name, NOVA))
    assert name in str(err.value) and "truncated" in str(err.value)


@pytest.mark.parametrize(
    "name, error, words",
    [
        ("corrupt.sql.gz", CorruptArchiveError, "corrupt archive"),
        ("not-a-dump.csv.gz", NotADumpError, "first line is not SQL (text"),  # described, never quoted
        ("dump.zip", UnknownCompressionError, "zip"),
        ("no-create.sql", UnknownColumnsError, "nova.compute_nodes"),
    ],
)
def test_bad_files(name, error, words):
    with pytest.raises(error) as err:
        list(read_rows(READER / name, NOVA + [("sc_extra", "blobs")], stop_early=False))
    message = str(err.value)
    assert isinstance(err.value, DumpError) and "\n" not in message
    assert name in message and words in message


def test_no_create_table_is_fine_for_tables_not_requested():
    assert list(read_rows(READER / "no-create.sql", [("nova", "services")], stop_early=False)) == []


def test_line_over_the_bound():
    with pytest.raises(LineTooLongError, match="all-mysql8.sql.bz2"):
        list(read_rows(READER / "all-mysql8.sql.bz2", NOVA, max_statement_bytes=3000))
    # a bound above the largest wanted statement is fine, however large the unwanted ones
    reader = DumpReader(READER / "all-mysql8.sql.bz2", NOVA, max_statement_bytes=8000)
    assert_rows(collect(reader), ["compute_nodes", "services"])


def test_text_is_decoded_as_the_dump_says():
    """``mariadb-dump --default-character-set=latin1`` writes ``SET NAMES latin1`` and latin1 bytes: read as
    latin1, not as UTF-8 with the bytes escaped (before: 'caf\\udce9', which no output could encode)."""
    reader = DumpReader(READER / "latin1.sql", [("sc_extra", "latin")])
    names = [row["name"] for _, _, row in reader]
    assert names == [r["name"] for r in mrf.latin_rows()]
    assert reader.info.character_set == "latin1"


def test_text_that_is_not_in_the_dumps_character_set_is_one_error():
    """Invalid UTF-8 in a host name of a utf8mb4 dump: refused, naming the dump, the table and the column."""
    data = single_dump()
    bad = data.replace(b"'c01-01'", b"'c01-\xff01'", 1)
    assert bad != data
    with pytest.raises(DumpSyntaxError) as caught:
        read_bytes(bad)
    message = str(caught.value)
    assert "\n" not in message and "mem.sql" in message and "`compute_nodes`" in message
    assert re.search(r"column `(host|hypervisor_hostname)`: text that is not utf-8", message)


def test_trigger_and_routine_bodies_are_not_data():
    reader = DumpReader(READER / "all-mariadb.sql.gz", [("sc_extra", "blobs")], stop_early=False)
    ids = [row["id"] for _, _, row in reader]
    assert ids == [r["id"] for r in mrf.blob_rows()]  # not 998/999 from the bodies
    text = decompress(READER / "all-mariadb.sql.gz")
    assert b"\nINSERT INTO `blobs` VALUES (999," in text and b"\nDELIMITER ;\nINSERT INTO `blobs`" in text


@settings(max_examples=25, deadline=None)
@given(chunk=st.integers(1, 400) | st.integers(401, 70000))
def test_any_chunk_size_gives_the_same_rows(chunk):
    """Statements and needles straddling buffer refills (the buffer is rebased on every refill)."""
    for name in ("all-mysql8-crlf.sql.xz", "nova-compact.sql"):
        reader = DumpReader(READER / name, NOVA, chunk_size=chunk)
        assert_rows(collect(reader), ["compute_nodes", "services"])


# -- synthetic variants of real dumps (rough spots) ------------------------------------------------


def single_dump() -> bytes:
    return decompress(READER / "nova-single.sql.zst")


def read_bytes(data: bytes, tables=NOVA, **kwargs) -> Dict[str, List[Dict[str, Any]]]:
    return collect(DumpReader(io.BytesIO(data), tables, name="mem.sql", **kwargs))


def test_database_qualified_inserts_and_insert_variants():
    data = single_dump()
    # statements start lines; dumped strings never hold a raw newline, so this touches statements only
    qualified = data.replace(b"\nINSERT INTO `compute_nodes`", b"\nINSERT INTO `nova`.`compute_nodes`")
    assert_rows(read_bytes(qualified), ["compute_nodes", "services"])
    for verb in (b"INSERT IGNORE INTO", b"REPLACE INTO", b"insert into"):
        assert_rows(read_bytes(data.replace(b"\nINSERT INTO", b"\n" + verb)), ["compute_nodes", "services"])


def test_byte_order_mark_and_header_only_database():
    data = b"\xef\xbb\xbf" + single_dump()
    info_reader = DumpReader(io.BytesIO(data), NOVA, stop_early=False)
    assert_rows(collect(info_reader), ["compute_nodes", "services"])
    assert info_reader.info.has_header and info_reader.info.databases == ["nova"]


def test_missing_trailer_is_truncation():
    data = single_dump()
    cut = data[: data.index(b"-- Dump completed")]
    with pytest.raises(TruncatedDumpError, match="Dump completed"):
        read_bytes(cut, stop_early=False)
    # a cut at a statement boundary inside the requested table (one-row INSERTs)
    rows_at = data.index(b"INSERT INTO `compute_nodes`")
    cut = data[: data.index(b"\n", rows_at) + 1]
    with pytest.raises(TruncatedDumpError):
        read_bytes(cut)
    cut = data[: rows_at + 40]
    with pytest.raises(TruncatedDumpError):
        read_bytes(cut)


def test_column_list_without_create_table_types_by_literal():
    data = (READER / "nova-compact.sql").read_bytes()
    statements = [s for s in data.split(b";\n") if s.startswith(b"INSERT INTO `compute_nodes`")]
    rows = read_bytes(b";\n".join(statements) + b";\n")["compute_nodes"]
    want = mrf.compute_node_rows()
    assert [r["hypervisor_hostname"] for r in rows] == [w["hypervisor_hostname"] for w in want]
    assert [r["vcpus"] for r in rows] == [w["vcpus"] for w in want]
    assert rows[0]["created_at"] == str(want[0]["created_at"])  # no type: a quoted value stays text


def test_zero_dates_bit_values_and_odd_column_names():
    dump = b"""-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)
CREATE TABLE `t` (
  `id` int NOT NULL,
  `a)b` varchar(10) DEFAULT NULL,
  `d` datetime DEFAULT NULL,
  `day` date DEFAULT NULL,
  `flag` bit(1) DEFAULT NULL,
  `wide` bit(16) DEFAULT NULL,
  `f` float DEFAULT NULL,
  `y` year DEFAULT NULL
) ENGINE=InnoDB;
INSERT INTO `t` (`id`, `a)b`, `d`, `day`, `flag`, `wide`, `f`, `y`) VALUES \
(1,'x','0000-00-00 00:00:00','0000-00-00',b'1',_binary '01',1.5e-7,2024),\
(2,NULL,'2024-02-29 23:59:59','2024-02-29',0x00,X'0102',-0,1901);
-- Dump completed on 2024-01-20  3:00:00
"""
    rows = read_bytes(dump, [(None, "t")])["t"]
    assert rows[0] == {
        "id": 1,
        "a)b": "x",
        "d": None,
        "day": None,
        "flag": 1,
        "wide": 0x3031,
        "f": 1.5e-7,
        "y": 2024,
    }
    assert rows[1] == {
        "id": 2,
        "a)b": None,
        "d": dt.datetime(2024, 2, 29, 23, 59, 59),
        "day": dt.date(2024, 2, 29),
        "flag": 0,
        "wide": 0x0102,
        "f": 0.0,
        "y": 1901,
    }


def test_named_time_zone_converts_timestamps():
    dump = b"""/*!40103 SET TIME_ZONE='Europe/Paris' */;
CREATE TABLE `t` (
  `ts` timestamp NULL DEFAULT NULL,
  `dt` datetime DEFAULT NULL
);
INSERT INTO `t` VALUES ('2024-07-01 12:00:00','2024-07-01 12:00:00'),('2024-01-01 12:00:00',NULL);
"""
    rows = read_bytes(dump, [(None, "t")])["t"]
    assert rows == [
        {"ts": dt.datetime(2024, 7, 1, 10), "dt": dt.datetime(2024, 7, 1, 12)},
        {"ts": dt.datetime(2024, 1, 1, 11), "dt": None},
    ]


def test_delimiter_line_inside_a_routine_body():
    dump = b"""-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)
CREATE TABLE `t` (
  `id` int NOT NULL
);
DELIMITER ;;
CREATE PROCEDURE `p`()
BEGIN
SELECT 'x;
DELIMITER ;
INSERT INTO `t` VALUES (998);';
END ;;
DELIMITER ;
INSERT INTO `t` VALUES (1),(2);
-- Dump completed on 2024-01-20  3:00:00
"""
    assert [r["id"] for r in read_bytes(dump, [(None, "t")])["t"]] == [1, 2]


def test_not_a_dump_fails_fast():
    """A file with no line end in sight is refused from its first bytes, not after reading it all."""
    data = os.urandom(1 << 20).replace(b"\n", b"x")
    with pytest.raises(NotADumpError, match="mem.sql"):
        read_bytes(data)
    with pytest.raises(NotADumpError, match="empty"):
        read_bytes(b"")


# -- dumps of the real schemas, made now by the real mysqldump -------------------------------------

PREFIX = f"rdr{os.getpid()}_"


@pytest.fixture(scope="module")
def openstack(mariadb):
    names = {db: PREFIX + db for db in mrf.DATABASES}
    mrf.populate(mariadb, names)
    yield mariadb, names
    mariadb.sql("".join(f"DROP DATABASE IF EXISTS `{n}`;" for n in names.values()))


OPTION_SETS = [
    [],
    ["--skip-extended-insert"],
    ["--complete-insert"],
    ["--hex-blob"],
    ["--insert-ignore"],
    ["--replace"],
    ["--skip-add-locks", "--skip-disable-keys"],
    ["--skip-comments"],
    ["--routines", "--triggers", "--events"],
    ["--single-transaction", "--quick", "--skip-dump-date"],
    ["--net-buffer-length=4096"],  # several INSERT statements per table
    ["--no-autocommit", "--extended-insert", "--order-by-primary"],
    # names in double quotes, SQL_MODE='NO_AUTO_VALUE_ON_ZERO,ANSI' (before: every table looked absent)
    # (mariadb-dump --compatible writes latin1 and no SET NAMES unless told: see the test below)
    ["--compatible=ansi", "--default-character-set=utf8mb4"],
    ["--compatible=ansi", "--default-character-set=utf8mb4", "--complete-insert", "--skip-extended-insert"],
]


@pytest.mark.parametrize("options", OPTION_SETS, ids=lambda o: " ".join(o) or "default")
def test_real_dumps(openstack, options):
    server, names = openstack
    dump = server.dump([*options, "--databases", *names.values()])
    wanted = [(names["nova"], "compute_nodes"), (names["nova"], "services"), (names["sc_extra"], "blobs")]
    for variant in (dump, mrf.crlf(dump), mrf.mysql8_style(dump)):
        for compress in (gzip.compress, bz2.compress, lambda d: d):
            reader = DumpReader(io.BytesIO(compress(variant)), wanted, name="live.sql")
            got = collect(reader)
            assert_rows(got, ["compute_nodes", "services", "blobs"])
            assert reader.info.stopped_early
    info = read_info(io.BytesIO(dump))
    assert info.databases == [names[db] for db in mrf.DATABASES]
    assert info.ended_cleanly is (None if "--skip-comments" in options else True)


def test_real_ansi_dump_in_latin1_without_set_names_is_refused(openstack):
    """mariadb-dump --compatible=ansi writes text in latin1 ('☃' already lost as '?') and no SET NAMES:
    nothing in the dump says how to read it, so non-UTF-8 text is one error, not a guess."""
    server, names = openstack
    dump = server.dump(["--compatible=ansi", "--databases", names["sc_extra"]])
    assert b"SET NAMES" not in dump and b'INSERT INTO "blobs"' in dump
    blobs = (names["sc_extra"], "blobs")
    with pytest.raises(DumpSyntaxError, match="no SET NAMES") as caught:
        list(DumpReader(io.BytesIO(dump), [blobs], name="ansi.sql"))
    assert "\n" not in str(caught.value) and "column `note`" in str(caught.value)
    # columns without such text read
    reader = DumpReader(io.BytesIO(dump), [blobs], columns={blobs: ("id", "seen")})
    assert [row["id"] for _, _, row in reader] == [r["id"] for r in mrf.blob_rows()]


@pytest.mark.parametrize("options", [[], ["--complete-insert"], ["--compact", "--complete-insert"]])
def test_real_skip_quote_names(openstack, options):
    """Bare names (mariadb-dump still quotes the ones a keyword needs). Before: zero rows, no error.
    (One table: mariadb-dump itself fails on a bare keyword column, `services`.`binary`, with this option.)"""
    server, names = openstack
    dump = server.dump(["--skip-quote-names", *options], [names["nova"], "compute_nodes"])
    assert b"INSERT INTO compute_nodes" in dump
    tables = [(names["nova"], "compute_nodes")]
    for variant in (dump, mrf.mysql8_style(dump)):
        assert_rows(collect(DumpReader(io.BytesIO(variant), tables)), ["compute_nodes"])


def test_real_single_database_and_compact(openstack):
    server, names = openstack
    for options in ([], ["--compact"], ["--compact", "--complete-insert", "--hex-blob"]):
        dump = server.dump(options, [names["nova"]])
        got = collect(
            DumpReader(io.BytesIO(dump), [(names["nova"], "compute_nodes"), (names["nova"], "services")])
        )
        assert_rows(got, ["compute_nodes", "services"])


def test_real_no_create_info(openstack):
    server, names = openstack
    dump = server.dump(["--no-create-info"], [names["nova"], "compute_nodes"])
    with pytest.raises(UnknownColumnsError, match="compute_nodes"):
        list(DumpReader(io.BytesIO(dump), [(names["nova"], "compute_nodes")]))
    dump = server.dump(["--no-create-info", "--complete-insert"], [names["nova"], "compute_nodes"])
    rows = [row for _, _, row in DumpReader(io.BytesIO(dump), [(names["nova"], "compute_nodes")])]
    assert [r["memory_mb"] for r in rows] == [r["memory_mb"] for r in mrf.compute_node_rows()]
    assert [r["cpu_info"] for r in rows] == [r["cpu_info"] for r in mrf.compute_node_rows()]


def test_real_all_databases_skips_other_databases(openstack):
    """--all-databases holds the mysql system tables and whatever else is on the server."""
    server, names = openstack
    dump = server.dump(["--routines", "--triggers"])
    reader = DumpReader(io.BytesIO(gzip.compress(dump)), [(names["nova"], "compute_nodes")])
    assert len(list(reader)) == len(mrf.compute_node_rows())
    assert "mysql" in reader.info.databases


def test_a_second_iteration_reads_the_dump_again():
    reader = DumpReader(READER / "all-mariadb.sql.gz", NOVA)
    first = list(reader)
    info = reader.info
    second = list(reader)
    assert first and second == first
    assert reader.info.tables == info.tables and reader.info.stopped_early == info.stopped_early
    assert reader.info is not info  # a fresh description of the second read


def test_a_second_iteration_over_a_file_object_is_refused():
    with open(READER / "all-mariadb.sql.gz", "rb") as handle:
        reader = DumpReader(handle, NOVA)
        assert list(reader)
        with pytest.raises(RuntimeError, match="reads it once"):
            list(reader)


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_kept_columns_are_the_full_rows_projected(data):
    """``columns=`` keeps only the named columns, with the values a full read gives them."""
    full = collect(DumpReader(READER / "all-mariadb.sql.gz", NOVA))
    names = sorted(full["compute_nodes"][0])
    keep = data.draw(st.sets(st.sampled_from(names + ["no_such_column"])))
    reader = DumpReader(READER / "all-mariadb.sql.gz", NOVA, columns={("nova", "compute_nodes"): keep})
    kept = collect(reader)
    expected = [{k: v for k, v in row.items() if k in keep} for row in full["compute_nodes"]]
    assert kept["compute_nodes"] == expected
    assert kept["services"] == full["services"]  # tables without a projection keep every column
