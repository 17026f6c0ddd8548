"""Table schemas from a dump's own ``CREATE TABLE``, and typing of tokens by column type.

OpenStack schemas changed across releases, so columns are never taken from hard-coded positions: each
dump says what its tables look like. sqlparse lexes the DDL (quoted names, nested parentheses, strings
in DEFAULT and COMMENT clauses); we only walk its tokens.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Collection, Dict, List, Optional, Sequence, Tuple

from .values import BinaryLiteral, BitLiteral, NumberLiteral, Token

Converter = Callable[[Token], Any]

_INT_TYPES = {
    "tinyint",
    "smallint",
    "mediumint",
    "int",
    "integer",
    "bigint",
    "serial",
    "year",
    "bool",
    "boolean",
}
_DECIMAL_TYPES = {"decimal", "numeric", "dec", "fixed"}
_FLOAT_TYPES = {"float", "double", "real", "double precision"}
_BINARY_TYPES = {
    "binary",
    "varbinary",
    "tinyblob",
    "blob",
    "mediumblob",
    "longblob",
    "geometry",
    "point",
    "linestring",
    "polygon",
    "multipoint",
    "multilinestring",
    "multipolygon",
    "geometrycollection",
}
_DATETIME_TYPES = {"datetime", "timestamp"}
#: The type of a column named by an INSERT's column list when no CREATE TABLE says more: values are
#: typed by how they are written (number, quoted string, hex …).
UNKNOWN_TYPE = ""
_CONSTRAINT_WORDS = {
    "PRIMARY",
    "UNIQUE",
    "KEY",
    "INDEX",
    "CONSTRAINT",
    "FOREIGN",
    "FULLTEXT",
    "SPATIAL",
    "CHECK",
    "PERIOD",
    "VECTOR",
}


@dataclass(frozen=True)
class Column:
    """One column of a dumped table: its name and its SQL type (lower case, without size)."""

    name: str
    type: str


@dataclass(frozen=True)
class TableSchema:
    database: Optional[str]
    table: str
    columns: Tuple[Column, ...]

    @property
    def column_names(self) -> Tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _unquote_identifier(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == "`":
        return text[1:-1].replace("``", "`")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('""', '"')
    return text


def parse_create_table(sql: str, database: Optional[str] = None) -> TableSchema:
    """Parse one ``CREATE TABLE`` statement as mysqldump writes it.

    Cached by statement text: every Nova cell, and every nightly dump a worker reads, repeats the same
    DDL, and sqlparse takes tens of milliseconds per table.
    """
    name, columns = _parse_create_table(sql)
    return TableSchema(database, name, columns)


_LINE_HEAD = re.compile(
    r"CREATE[ ]+(?:TEMPORARY[ ]+)?TABLE[ ]+(?:IF[ ]+NOT[ ]+EXISTS[ ]+)?`((?:[^`]|``)+)`[ ]*\($"
)
_LINE_COLUMN = re.compile(r"[ ]+`((?:[^`]|``)*)`[ ]+([A-Za-z]+)(?:[ ]+(precision)\b)?")


def _parse_create_table_lines(sql: str) -> Optional[Tuple[str, Tuple[Column, ...]]]:
    """mysqldump's own layout (one column or constraint per line), read line by line: a thousand times
    faster than sqlparse, which takes tens of milliseconds per table. None when a line is not of that
    layout (then sqlparse decides)."""
    lines = sql.replace("\r\n", "\n").split("\n")
    head = _LINE_HEAD.match(lines[0].strip())
    if head is None:
        return None
    columns: List[Column] = []
    for line in lines[1:]:
        if line.startswith(")"):
            return _unquote_identifier("`" + head.group(1) + "`"), tuple(columns)
        stripped = line.lstrip()
        if stripped.startswith("`"):
            m = _LINE_COLUMN.match(line)
            if m is None:
                return None
            kind = m.group(2).lower()
            if kind == "double" and m.group(3):
                kind = "double precision"
            columns.append(Column(m.group(1).replace("``", "`"), kind))
        elif stripped.split(" ", 1)[0].split("(", 1)[0].upper() not in _CONSTRAINT_WORDS:
            return None
    return None


@functools.lru_cache(maxsize=256)
def _parse_create_table(sql: str) -> Tuple[str, Tuple[Column, ...]]:
    fast = _parse_create_table_lines(sql)
    if fast is not None:
        return fast
    import sqlparse
    from sqlparse import tokens as T

    statement = sqlparse.parse(sql)[0]
    name: Optional[str] = None
    definitions: List[List[Any]] = []
    depth = 0
    current: List[Any] = []
    for token in statement.flatten():
        if depth == 0:
            if token.ttype in T.Name or (token.ttype is T.Literal.String.Symbol):
                if name is None:
                    name = _unquote_identifier(token.value)
                continue
            if token.ttype is T.Punctuation and token.value == "(":
                depth = 1
            continue
        if token.ttype is T.Punctuation and token.value == "(":
            depth += 1
        elif token.ttype is T.Punctuation and token.value == ")":
            depth -= 1
            if depth == 0:
                definitions.append(current)
                break
        elif depth == 1 and token.ttype is T.Punctuation and token.value == ",":
            definitions.append(current)
            current = []
            continue
        if depth >= 1 and not token.is_whitespace and token.ttype not in T.Comment:
            current.append((token, depth))
    if name is None:
        raise ValueError("CREATE TABLE without a table name")
    columns: List[Column] = []
    for definition in definitions:
        if not definition:
            continue
        first, _ = definition[0]
        if not first.value.startswith(("`", '"')) and first.value.upper().split()[0] in _CONSTRAINT_WORDS:
            continue
        col_name = _unquote_identifier(first.value)
        type_words: List[str] = []
        for token, depth in definition[1:]:
            if depth != 1:
                continue
            value = token.value
            if value == "(" or value == ")":
                continue
            upper = value.upper()
            if upper in {"PRECISION"} and type_words == ["double"]:
                type_words.append("precision")
                continue
            if not type_words:
                type_words.append(value.lower())
            break
        columns.append(Column(col_name, " ".join(type_words) or "text"))
    return name, tuple(columns)


_DATETIME = re.compile(rb"(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?)?$")


def _text(token: Token) -> Any:
    if token is None:
        return None
    if isinstance(token, int):
        return str(int(token))
    return token.decode("utf-8", "surrogateescape")


def _binary(token: Token) -> Any:
    if token is None:
        return None
    if isinstance(token, int):
        return int(token).to_bytes(max(1, (int(token).bit_length() + 7) // 8), "big")
    return bytes(token)


def _integer(token: Token) -> Any:
    if token is None:
        return None
    if isinstance(token, int):
        return int(token)
    if isinstance(token, BinaryLiteral):
        return int.from_bytes(token, "big")
    return int(token)


def _bit(token: Token) -> Any:
    """BIT values are dumped as raw bytes in quotes (``'\\0\x05'``), as hex, or as ``b'101'``."""
    if token is None:
        return None
    if isinstance(token, BitLiteral):
        return int(token)
    if isinstance(token, NumberLiteral):
        return int(token)
    return int.from_bytes(token, "big")


_INTEGER_LITERAL = re.compile(rb"[-+]?[0-9]+")


def _literal(token: Token) -> Any:
    """A value typed by how it is written, for columns of unknown type."""
    if token is None:
        return None
    if isinstance(token, BitLiteral):
        return int(token)
    if isinstance(token, NumberLiteral):
        if _INTEGER_LITERAL.fullmatch(token):
            return int(token)
        if b"e" in token or b"E" in token:
            return float(token)
        return Decimal(token.decode("ascii"))
    if isinstance(token, BinaryLiteral):
        return bytes(token)
    return token.decode("utf-8", "surrogateescape")


def _decimal(token: Token) -> Any:
    if token is None:
        return None
    return Decimal(token.decode("ascii") if isinstance(token, bytes) else int(token))


def _float(token: Token) -> Any:
    if token is None:
        return None
    return float(token)


def _date(token: Token) -> Any:
    if token is None:
        return None
    m = _DATETIME.match(bytes(token))
    if not m or m.group(1) == b"0000" or m.group(2) == b"00" or m.group(3) == b"00":
        return None  # zero dates have no Python equivalent
    return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))


def _make_datetime(zone: Optional[dt.tzinfo]) -> Converter:
    # a fixed zero offset needs no conversion; a named zone may have one at some dates only
    convert_zone = zone is not None and (not isinstance(zone, dt.timezone) or bool(zone.utcoffset(None)))

    def convert(token: Token) -> Any:
        if token is None:
            return None
        m = _DATETIME.match(bytes(token))
        if not m or m.group(1) == b"0000" or m.group(2) == b"00" or m.group(3) == b"00":
            return None
        frac = m.group(7)
        value = dt.datetime(
            int(m.group(1)),
            int(m.group(2)),
            int(m.group(3)),
            int(m.group(4) or 0),
            int(m.group(5) or 0),
            int(m.group(6) or 0),
            int(frac.ljust(6, b"0")) if frac else 0,
        )
        if convert_zone:
            value = (value.replace(tzinfo=zone).astimezone(dt.timezone.utc)).replace(tzinfo=None)
        return value

    return convert


_PLAIN_DATETIME = _make_datetime(None)


def converter_for(sql_type: str, time_zone: Optional[dt.tzinfo] = None) -> Converter:
    """The function turning a token into a Python value for a column of ``sql_type``.

    ``time_zone`` is the dump's ``SET TIME_ZONE`` offset; it applies to TIMESTAMP only (DATETIME values
    are stored as written; OpenStack writes them in UTC).
    """
    t = sql_type.lower()
    if t == UNKNOWN_TYPE:
        return _literal
    if t in _INT_TYPES:
        return _integer
    if t == "bit":
        return _bit
    if t in _DECIMAL_TYPES:
        return _decimal
    if t in _FLOAT_TYPES:
        return _float
    if t == "datetime":
        return _PLAIN_DATETIME
    if t == "timestamp":
        return _make_datetime(time_zone)
    if t == "date":
        return _date
    if t in _BINARY_TYPES:
        return _binary
    return _text


def row_builder(
    columns: Sequence[Column],
    time_zone: Optional[dt.tzinfo] = None,
    keep: Optional[Collection[str]] = None,
) -> Callable[[List[Token]], Dict[str, Any]]:
    """A function turning one token row into ``{column name: typed value}``.

    With ``keep``, only those columns are converted and returned (a row still needs all its values):
    a snapshot keeps a dozen small columns of tables whose other columns hold kilobytes of JSON.
    """
    names = [c.name for c in columns]
    converters = [converter_for(c.type, time_zone) for c in columns]
    n = len(names)
    if keep is None:
        pairs = list(zip(names, converters))

        def build(tokens: List[Token]) -> Dict[str, Any]:
            if len(tokens) != n:
                raise ValueError(f"row has {len(tokens)} values for {n} columns")
            return {name: conv(tok) for (name, conv), tok in zip(pairs, tokens)}

        return build
    kept = [(i, name, conv) for i, (name, conv) in enumerate(zip(names, converters)) if name in keep]

    def build_kept(tokens: List[Token]) -> Dict[str, Any]:
        if len(tokens) != n:
            raise ValueError(f"row has {len(tokens)} values for {n} columns")
        return {name: conv(tokens[i]) for i, name, conv in kept}

    return build_kept
