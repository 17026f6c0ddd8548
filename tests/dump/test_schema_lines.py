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


def _skeleton(sql: str) -> bytes:
    return schema.ddl_skeleton(sql.encode())


def test_every_real_table_is_read_line_by_line_as_sqlparse_reads_it(monkeypatch):
    assert len(STATEMENTS) > 300
    fast = [schema._parse_skeleton_lines(_skeleton(sql).decode()) for sql in STATEMENTS]
    assert all(f is not None for f in fast)
    assert sum(1 for f in fast if f is not None and f[2]) > 300  # primary keys read too
    schema._parse_skeleton.cache_clear()
    monkeypatch.setattr(schema, "_parse_skeleton_lines", lambda text: None)
    try:
        slow = [schema._parse_skeleton(_skeleton(sql)) for sql in STATEMENTS]
    finally:
        schema._parse_skeleton.cache_clear()
    assert fast == slow


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE `t` (`a` int, `b` text);",  # one line
        "CREATE TABLE `t` (\n  `a` int,\n  weird stuff\n);",
        "CREATE TABLE t (\n  `a` int\n);",
        "CREATE TABLE `t` (\n  `a` int NOT NULL PRIMARY KEY\n);",
        "CREATE TABLE `t` (\n  `a` int,\n  PRIMARY KEY (`a`) USING BTREE\n);",
        "CREATE TABLE `t` (\n  `a` int,\n  `e` timestamp(6) GENERATED ALWAYS AS ROW END\n) WITH SYSTEM VERSIONING;",
        "CREATE TABLE `t` (\n  `a` int\n) ENGINE=InnoDB WITH SYSTEM VERSIONING;",
    ],
)
def test_other_layouts_go_to_sqlparse(sql):
    assert schema._parse_skeleton_lines(sql) is None
    assert schema.parse_create_table(sql).columns  # and sqlparse reads them


def test_crlf_double_precision_and_primary_key():
    sql = (
        "CREATE TABLE `t` (\r\n  `a` double precision DEFAULT NULL,\r\n  `b``c` INT(11),\r\n"
        "  PRIMARY KEY (`a`,`b``c`(10)),\r\n  KEY `k` (`a`)\r\n);"
    )
    assert schema._parse_skeleton_lines(sql) == (
        "t",
        (schema.Column("a", "double precision"), schema.Column("b`c", "int")),
        ("a", "b`c"),
        False,
        None,
    )
