"""CREATE TABLE parsing on the real OpenStack schemas, and typing of values by column type."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest

from starcompactor.dump.schema import (
    UNKNOWN_TYPE,
    Column,
    converter_for,
    parse_create_table,
    row_builder,
)
from starcompactor.dump.values import BinaryLiteral, BitLiteral, NumberLiteral
from starcompactor.times import parse_time_zone
from tests.support.paths import SCHEMAS

CREATE = re.compile(r"^CREATE TABLE `([^`]+)` \(\n(.*?)\n\) [^;]*;", re.MULTILINE | re.DOTALL)


def _tables():
    for path in sorted(SCHEMAS.glob("*.sql")):
        for m in CREATE.finditer(path.read_text()):
            yield pytest.param(m, id=f"{path.stem}.{m.group(1)}")


@pytest.mark.skipif(not SCHEMAS.is_dir(), reason="no OpenStack schemas")
def test_every_real_table_parses():
    count = 0
    for path in sorted(SCHEMAS.glob("*.sql")):
        for m in CREATE.finditer(path.read_text()):
            schema = parse_create_table(m.group(0), path.stem)
            lines = [line.strip() for line in m.group(2).splitlines()]
            want = [re.match(r"`([^`]+)` (\w+)", line).groups() for line in lines if line.startswith("`")]
            assert [(c.name, c.type) for c in schema.columns] == [(n, t.lower()) for n, t in want], m.group(1)
            assert schema.table == m.group(1)
            count += 1
    assert count > 300


def test_tricky_definitions():
    schema = parse_create_table(
        "CREATE TABLE `a``b` (\n  `key` int(11) /*!80023 INVISIBLE */ NOT NULL,\n  `d` double precision,\n"
        "  `c` varchar(3) GENERATED ALWAYS AS (concat(`key`,')')) VIRTUAL,\n  `e` enum('x,y','z') DEFAULT 'x,y',\n"
        "  `u` bigint unsigned COMMENT 'a, (b)',\n  PRIMARY KEY (`key`),\n  KEY `i` (`c`,`e`),\n"
        "  CONSTRAINT `f` FOREIGN KEY (`u`) REFERENCES `o` (`id`)\n) /*!50100 PARTITION BY HASH (`key`) */;"
    )
    assert schema.table == "a`b"
    assert [(c.name, c.type) for c in schema.columns] == [
        ("key", "int"),
        ("d", "double precision"),
        ("c", "varchar"),
        ("e", "enum"),
        ("u", "bigint"),
    ]


def test_converters():
    assert converter_for("bigint")(NumberLiteral(b"-9223372036854775808")) == -(2**63)
    assert converter_for("decimal")(NumberLiteral(b"-0.0001")) == Decimal("-0.0001")
    assert converter_for("double")(NumberLiteral(b"1.5e-7")) == 1.5e-7
    assert converter_for("varbinary")(b"a\x00") == b"a\x00"
    assert converter_for("blob")(BinaryLiteral(b"\xff")) == b"\xff"
    assert converter_for("text")(b"\xc3\xa9") == "é"
    with pytest.raises(ValueError):  # text that is not in the dump's character set is refused, not altered
        converter_for("text")(b"\xc3\xa9\xff")
    # MySQL's latin1 is cp1252, with the five bytes cp1252 leaves undefined kept as those code points
    assert converter_for("text", codec="mysql-latin1")(b"\xe9\x80\x81") == "é€\x81"
    assert converter_for("json")(b'{"a": 1}') == '{"a": 1}'
    assert converter_for("bit")(b"01") == 0x3031  # raw bytes, even when they look like digits
    assert converter_for("bit")(BitLiteral(5)) == 5 and converter_for("bit")(NumberLiteral(b"7")) == 7
    assert converter_for("datetime")(b"2024-02-29 23:59:59.5") == dt.datetime(2024, 2, 29, 23, 59, 59, 500000)
    assert converter_for("datetime")(b"0000-00-00 00:00:00") is None
    assert converter_for("date")(b"2024-01-00") is None
    for conv in map(converter_for, ("int", "text", "datetime", "bit", "decimal", "blob", UNKNOWN_TYPE)):
        assert conv(None) is None


def test_literal_typing_for_unknown_columns():
    conv = converter_for(UNKNOWN_TYPE)
    assert conv(NumberLiteral(b"42")) == 42 and conv(NumberLiteral(b"4.20")) == Decimal("4.20")
    assert conv(NumberLiteral(b"1e3")) == 1000.0 and conv(BinaryLiteral(b"\x00")) == b"\x00"
    assert conv(b"x") == "x"


def test_timestamps_honour_the_zone_datetimes_do_not():
    plus2 = parse_time_zone("+02:00")
    build = row_builder([Column("ts", "timestamp"), Column("dt", "datetime")], plus2)
    assert build([b"2024-01-01 01:00:00", b"2024-01-01 01:00:00"]) == {
        "ts": dt.datetime(2023, 12, 31, 23),
        "dt": dt.datetime(2024, 1, 1, 1),
    }
    assert parse_time_zone("SYSTEM") is None
    assert parse_time_zone("-05:30").utcoffset(None) == -dt.timedelta(hours=5, minutes=30)
    with pytest.raises(ValueError, match="2 values for 1 columns"):
        row_builder([Column("a", "int")])([b"1", b"2"])


def test_a_repeated_time_is_one_object_and_every_time_still_converts():
    """Time converters remember the values they made (an audit row repeats its time): a repeat is the same
    object; past the bound they start over, and zero dates, zones and bad values read as before."""
    from starcompactor.dump import schema

    convert = converter_for("datetime")
    first = convert(b"2024-03-01 10:00:00")
    assert convert(NumberLiteral(b"2024-03-01 10:00:00")) is first == dt.datetime(2024, 3, 1, 10)
    for k in range(schema._TIMES_REMEMBERED + 10):
        assert convert(f"2024-03-01 10:00:00.{k:06d}".encode()) == dt.datetime(2024, 3, 1, 10, 0, 0, k)
    assert convert(b"2024-03-01 10:00:00") == first
    assert convert(b"0000-00-00 00:00:00") is None and convert(b"0000-00-00 00:00:00") is None
    shifted = converter_for("timestamp", parse_time_zone("+02:00"))
    assert shifted(b"2024-03-01 10:00:00") == shifted(b"2024-03-01 10:00:00") == dt.datetime(2024, 3, 1, 8)
    with pytest.raises(ValueError):
        convert(b"2024-13-01 10:00:00")
    with pytest.raises(ValueError):
        convert(b"2024-13-01 10:00:00")
