"""RawDumpReader (tuples of a few columns, cut by one expression per row) gives the values DumpReader
gives; decompressing ahead in a thread gives the same rows and the same errors."""

from __future__ import annotations

import datetime as dt
import gzip
import threading

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from starcompactor.dump import DumpReader
from starcompactor.dump.raw import RawDumpReader
from starcompactor.errors import TruncatedDumpError
from starcompactor.machines.trace import _prefetch

HEAD = b"-- MySQL dump 10.13\n\nUSE `nova`;\n"
CREATE = (
    b"CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `name` varchar(255) DEFAULT NULL,\n"
    b"  `blob` text,\n  `at` datetime DEFAULT NULL,\n  `n` int(11) DEFAULT NULL,\n  PRIMARY KEY (`id`)\n);\n"
)
TAIL = b"-- Dump completed on 2024-01-01  3:00:00\n"
COLUMNS = ("at", "id", "name", "n")  # not in table order
KINDS = ("time", "int", "name", "int")


def sql_string(value):
    if value is None:
        return b"NULL"
    escaped = value.encode().replace(b"\\", b"\\\\").replace(b"'", b"\\'").replace(b"\n", b"\\n")
    return b"'" + escaped + b"'"


def dump_of(rows, one_per_line=True):
    values = []
    for i, (name, blob, at, n) in enumerate(rows, 1):
        values.append(
            b"(%d,%s,%s,%s,%s)"
            % (
                i,
                sql_string(name),
                sql_string(blob),
                sql_string(at),
                b"NULL" if n is None else str(n).encode(),
            )
        )
    sep = b",\n" if one_per_line else b","
    insert = (
        b"INSERT INTO `t` VALUES " + (b"\n" if one_per_line else b"") + sep.join(values) + b";\n"
        if rows
        else b""
    )
    return HEAD + CREATE + b"LOCK TABLES `t` WRITE;\n" + insert + b"UNLOCK TABLES;\n" + TAIL


def typed(rows_dicts):
    out = []
    for row in rows_dicts:
        at = row["at"]
        out.append((at.isoformat(" ") if at is not None else None, row["id"], row["name"], row["n"]))
    return out


_text = (
    st.none()
    | st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",)), max_size=12)
    | st.sampled_from(["a,b", "(x)", "it's", "back\\slash", "line\nbreak", "''", "NULL", "0x1"])
)
_times = (
    st.none()
    | st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2100, 1, 1)).map(
        lambda t: t.replace(microsecond=0).isoformat(" ")
    )
    | st.just("0000-00-00 00:00:00")
)


@hsettings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.tuples(_text, _text, _times, st.none() | st.integers(-(2**31), 2**31 - 1)), max_size=12),
    one_per_line=st.booleans(),
)
def test_raw_rows_are_the_typed_rows(tmp_path_factory, rows, one_per_line):
    path = tmp_path_factory.mktemp("raw") / "d.sql"
    path.write_bytes(dump_of(rows, one_per_line))
    key = ("nova", "t")
    expected = typed(row for _, _, row in DumpReader(str(path), [key]))
    raw = RawDumpReader(str(path), [key], {key: COLUMNS}, {key: KINDS})
    assert [row for _, _, row in raw] == expected


def test_a_row_the_expression_does_not_fit_takes_the_tokenizer(tmp_path):
    text = dump_of([("a", "b", "2024-01-01 00:00:00", 1), ("c", "d", None, 2)], one_per_line=False)
    # a blank inside a row, and a kept column written as _binary: the general tokenizer's job
    text = text.replace(b"(2,'c'", b"( 2 , _binary 'c'")
    path = tmp_path / "d.sql"
    path.write_bytes(text)
    key = ("nova", "t")
    got = [row for _, _, row in RawDumpReader(str(path), [key], {key: COLUMNS}, {key: KINDS})]
    assert got == [("2024-01-01 00:00:00", 1, "a", 1), (None, 2, "c", 2)]


def test_a_missing_column_is_none(tmp_path):
    path = tmp_path / "d.sql"
    path.write_bytes(dump_of([("a", "b", None, 1)]))
    key = ("nova", "t")
    got = [row for _, _, row in RawDumpReader(str(path), [key], {key: ("id", "nope")})]
    assert got == [(b"1", None)]


def test_decompressing_ahead_gives_the_same_rows_and_errors(tmp_path):
    rows = [(f"name-{i}", "x" * 200, "2024-01-01 00:00:00", i) for i in range(20000)]
    data = gzip.compress(dump_of(rows), 1)
    path = tmp_path / "d.sql.gz"
    path.write_bytes(data)
    key = ("nova", "t")
    plain = list(DumpReader(str(path), [key], chunk_size=1 << 16))
    threads = set()

    def progress(_: int) -> None:
        threads.update(t.name for t in threading.enumerate())

    seen = list(DumpReader(str(path), [key], chunk_size=1 << 16, prefetch=True, on_progress=progress))
    assert "decompress-ahead" in threads
    assert seen == plain
    assert not any(t.name == "decompress-ahead" for t in threading.enumerate())
    cut = tmp_path / "cut.sql.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(TruncatedDumpError):
        list(DumpReader(str(cut), [key], chunk_size=1 << 16, prefetch=True))


def test_which_dumps_are_decompressed_ahead():
    assert _prefetch(3, 2, cores=2) == [False, False, True]  # the third is read alone
    assert _prefetch(4, 2, cores=2) == [False] * 4  # every round is full
    assert _prefetch(1, None, cores=2) == [True]
    assert _prefetch(5, 1, cores=2) == [True] * 5  # one process, two cores
    assert _prefetch(3, 1, cores=1) == [False] * 3
