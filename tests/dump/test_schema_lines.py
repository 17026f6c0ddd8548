"""mysqldump's CREATE TABLE read line by line gives what sqlparse gives, for every table of the real
OpenStack schemas; a layout it does not know goes to sqlparse."""

from __future__ import annotations

import re

import pytest

from starcompactor.dump import schema
from tests.support.paths import SCHEMAS

STATEMENTS = [
    m.group(0)
    for path in sorted(SCHEMAS.glob("*.sql"))
    for m in re.finditer(r"CREATE TABLE `[^`]+` \(.*?\n\)[^;]*;", path.read_text(), re.S)
]


def test_every_real_table_is_read_line_by_line_as_sqlparse_reads_it(monkeypatch):
    assert len(STATEMENTS) > 300
    fast = [schema._parse_create_table_lines(sql) for sql in STATEMENTS]
    assert all(f is not None for f in fast)
    schema._parse_create_table.cache_clear()
    monkeypatch.setattr(schema, "_parse_create_table_lines", lambda sql: None)
    try:
        slow = [schema._parse_create_table(sql) for sql in STATEMENTS]
    finally:
        schema._parse_create_table.cache_clear()
    assert fast == slow


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE `t` (`a` int, `b` text);",  # one line
        "CREATE TABLE `t` (\n  `a` int,\n  weird stuff\n);",
        "CREATE TABLE t (\n  `a` int\n);",
    ],
)
def test_other_layouts_go_to_sqlparse(sql):
    assert schema._parse_create_table_lines(sql) is None


def test_crlf_and_double_precision():
    sql = "CREATE TABLE `t` (\r\n  `a` double precision DEFAULT NULL,\r\n  `b``c` INT(11),\r\n  KEY `k` (`a`)\r\n);"
    assert schema._parse_create_table_lines(sql) == (
        "t",
        (schema.Column("a", "double precision"), schema.Column("b`c", "int")),
    )
