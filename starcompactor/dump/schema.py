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
from typing import Any, Callable, Collection, Dict, List, Optional, Sequence, Tuple, Union

from .values import BinaryLiteral, BitLiteral, NumberLiteral, Token, quoted_end

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
    """A table as its ``CREATE TABLE`` describes it.

    ``primary_key`` names its key columns (empty: none declared). A system-versioned table (MariaDB's
    ``WITH SYSTEM VERSIONING``) dumped with ``--dump-history`` holds every past version of a row
    beside the current one; ``row_end`` names the column that tells them apart.
    """

    database: Optional[str]
    table: str
    columns: Tuple[Column, ...]
    primary_key: Tuple[str, ...] = ()
    system_versioned: bool = False
    row_end: Optional[str] = None

    @property
    def column_names(self) -> Tuple[str, ...]:
        return tuple(c.name for c in self.columns)


#: Largest ``CREATE TABLE`` text kept once its string literals and comments are left out (MySQL allows
#: 4096 columns: a few hundred KB). Literals may be long (a 20 MB COMMENT): they are skipped, not kept.
MAX_DDL_SKELETON = 1 << 20

_DDL_SPECIAL = re.compile(rb"[`'\"#]|/\*|--(?=[ \t\r\n]|\Z)")
_SKELETON_CACHE_LIMIT = 64 << 10


def _unquote_identifier(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == "`":
        return text[1:-1].replace("``", "`")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('""', '"')
    return text


def _identifier_end(sql: bytes, pos: int, quote: bytes) -> int:
    """Index of the quote closing an identifier whose name starts at ``sql[pos]`` (doubled quotes inside)."""
    while True:
        i = sql.find(quote, pos)
        if i < 0 or not sql.startswith(quote, i + 1):
            return i
        pos = i + 2


def ddl_skeleton(sql: bytes, ansi_quotes: bool = False) -> bytes:
    """``sql`` with every string literal made empty (``''``) and every comment a space.

    What is left (names, types, punctuation) is what :func:`parse_create_table` reads, and it is small
    whatever the literals hold: a general SQL lexer keeps ~150 bytes of regex state per character of a
    string, so a 20 MB COMMENT cost 3 GB. Double quotes enclose a name when the dump's SQL_MODE has
    ANSI_QUOTES, a string otherwise. Raises ValueError on an unterminated literal or comment, or when
    the skeleton is over :data:`MAX_DDL_SKELETON`.
    """
    out: List[bytes] = []
    size = 0
    pos, n = 0, len(sql)
    search = _DDL_SPECIAL.search
    while pos < n:
        m = search(sql, pos)
        start = m.start() if m is not None else n
        piece = sql[pos:start]
        if m is not None:
            token = m.group()
            if token == b"`" or (token == b'"' and ansi_quotes):
                close = _identifier_end(sql, start + 1, token)
                if close < 0:
                    raise ValueError(f"a name quoted with {token.decode()} is not closed")
                piece += sql[start : close + 1]
                pos = close + 1
            elif token in (b"'", b'"'):
                close = quoted_end(sql, start + 1, n, token)
                if close < 0:
                    raise ValueError("a string literal is not closed")
                piece += b"''"
                pos = close + 1
            elif token == b"/*":
                close = sql.find(b"*/", start + 2)
                if close < 0:
                    raise ValueError("a /* comment is not closed")
                piece += b" "
                pos = close + 2
            else:  # "#" or "-- ": to the end of the line
                close = sql.find(b"\n", start)
                piece += b" "
                pos = n if close < 0 else close
        else:
            pos = n
        size += len(piece)
        if size > MAX_DDL_SKELETON:
            raise ValueError(
                f"more than {MAX_DDL_SKELETON} bytes of definitions besides strings and comments"
            )
        out.append(piece)
    return b"".join(out)


def parse_create_table(
    sql: Union[str, bytes], database: Optional[str] = None, *, ansi_quotes: bool = False
) -> TableSchema:
    """Parse one ``CREATE TABLE`` statement as mysqldump writes it.

    In bounded memory, whatever its literals hold (see :func:`ddl_skeleton`): sqlparse's lexer reads the
    skeleton only (no grouping, so no token limit either). Cached by skeleton: every Nova cell, and every
    nightly dump a worker reads, repeats the same DDL. Raises ValueError when it cannot be read.
    """
    if isinstance(sql, str):
        sql = sql.encode("utf-8", "surrogateescape")
    skeleton = ddl_skeleton(sql, ansi_quotes)
    if len(skeleton) <= _SKELETON_CACHE_LIMIT:
        parsed = _parse_skeleton(skeleton)
    else:
        parsed = _parse_skeleton.__wrapped__(skeleton)
    return TableSchema(database, *parsed)


_ParsedTable = Tuple[str, Tuple[Column, ...], Tuple[str, ...], bool, Optional[str]]


_LINE_HEAD = re.compile(
    r"CREATE[ ]+(?:TEMPORARY[ ]+)?TABLE[ ]+(?:IF[ ]+NOT[ ]+EXISTS[ ]+)?`((?:[^`]|``)+)`[ ]*\($"
)
_LINE_COLUMN = re.compile(r"[ ]+`((?:[^`]|``)*)`[ ]+([A-Za-z]+)(?:[ ]+(precision)\b)?")
_LINE_PRIMARY_KEY = re.compile(r"[ ]*PRIMARY[ ]+KEY[ ]*\((.*)\)[ ]*,?$", re.I)
_LINE_NAME = re.compile(r"`((?:[^`]|``)*)`")
#: Words that make a line mean more than a column's name and type: such tables go to sqlparse.
_LINE_SPECIAL = re.compile(r"PRIMARY|VERSIONING|ROW[ ]+(?:START|END)|PERIOD", re.I)


def _parse_skeleton_lines(text: str) -> Optional[_ParsedTable]:
    """mysqldump's own layout (one column or constraint per line), read line by line: a thousand times
    faster than sqlparse, which takes tens of milliseconds per table. None when a line is not of that
    layout or names system versioning (then sqlparse decides)."""
    lines = text.replace("\r\n", "\n").split("\n")
    head = _LINE_HEAD.match(lines[0].strip())
    if head is None:
        return None
    columns: List[Column] = []
    primary_key: Tuple[str, ...] = ()
    for line in lines[1:]:
        if line.startswith(")"):
            if _LINE_SPECIAL.search(line):
                return None
            name = _unquote_identifier("`" + head.group(1) + "`")
            return name, tuple(columns), primary_key, False, None
        stripped = line.lstrip()
        if stripped.startswith("`"):
            m = _LINE_COLUMN.match(line)
            if m is None or _LINE_SPECIAL.search(line, m.end()):
                return None
            kind = m.group(2).lower()
            if kind == "double" and m.group(3):
                kind = "double precision"
            columns.append(Column(m.group(1).replace("``", "`"), kind))
            continue
        if stripped[:7].upper() == "PRIMARY":
            key = _LINE_PRIMARY_KEY.match(line)
            names = _LINE_NAME.findall(key.group(1)) if key is not None else []
            if not names:
                return None
            primary_key = tuple(n.replace("``", "`") for n in names)
        elif stripped.split(" ", 1)[0].split("(", 1)[0].upper() not in _CONSTRAINT_WORDS:
            return None
    return None


@functools.lru_cache(maxsize=256)
def _parse_skeleton(skeleton: bytes) -> _ParsedTable:
    text = skeleton.decode("utf-8", "surrogateescape")
    fast = _parse_skeleton_lines(text)
    if fast is not None:
        return fast
    from sqlparse import lexer
    from sqlparse import tokens as T

    name: Optional[str] = None
    definitions: List[List[Tuple[Any, str, int]]] = []
    depth = 0
    current: List[Tuple[Any, str, int]] = []
    tail: List[str] = []  # what follows the definitions (table options)
    closed = False
    for ttype, value in lexer.tokenize(text):
        if closed:
            tail.append(value)
            continue
        if ttype in T.Whitespace or ttype in T.Newline or ttype in T.Comment:
            continue
        if depth == 0:
            if (
                ttype in T.Name
                or ttype is T.Literal.String.Symbol
                or (ttype in T.Keyword and name is not None)
            ):
                if value != ".":
                    name = _unquote_identifier(value)  # the last of db.table
                continue
            if ttype is T.Punctuation and value == "(":
                depth = 1
            continue
        if ttype is T.Punctuation and value == "(":
            depth += 1
        elif ttype is T.Punctuation and value == ")":
            depth -= 1
            if depth == 0:
                definitions.append(current)
                closed = True
                continue
        elif depth == 1 and ttype is T.Punctuation and value == ",":
            definitions.append(current)
            current = []
            continue
        current.append((ttype, value, depth))
    if name is None or not closed:
        raise ValueError("not a CREATE TABLE (name) (definitions) statement")
    columns: List[Column] = []
    primary_key: Tuple[str, ...] = ()
    row_end: Optional[str] = None
    versioned = "SYSTEM VERSIONING" in " ".join(" ".join(tail).upper().split())
    for definition in definitions:
        if not definition:
            continue
        first_type, first, _ = definition[0]
        words = first.upper().split()
        quoted = first.startswith(("`", '"'))
        if not quoted and words and words[0] in _CONSTRAINT_WORDS:
            if words[:2] == ["PRIMARY", "KEY"] or (words == ["PRIMARY"] and _next_word(definition) == "KEY"):
                primary_key = tuple(
                    _unquote_identifier(v)
                    for t, v, d in definition
                    if d == 2
                    and (t in T.Name or t is T.Literal.String.Symbol or t in T.Keyword)
                    and v.upper() not in ("ASC", "DESC", "KEY")
                )
            continue
        col_name = _unquote_identifier(first)
        type_words: List[str] = []
        for _ttype, value, depth in definition[1:]:
            if depth != 1:
                continue
            if value == "(" or value == ")":
                continue
            upper = value.upper()
            if upper in {"PRECISION"} and type_words == ["double"]:
                type_words.append("precision")
                continue
            if not type_words:
                type_words.append(value.lower())
            break
        flat = " ".join(" ".join(v.upper().split()) for _, v, d in definition[1:] if d == 1)
        if "PRIMARY KEY" in flat:
            primary_key = (col_name,)
        if "AS ROW END" in flat:
            row_end = col_name
        if "WITH SYSTEM VERSIONING" in flat:
            versioned = True
        columns.append(Column(col_name, " ".join(type_words) or "text"))
    if versioned and row_end is None:
        row_end = "row_end"  # MariaDB's implicit, invisible period column
    return name, tuple(columns), primary_key, versioned, row_end


def _next_word(definition: Sequence[Tuple[Any, str, int]]) -> str:
    return definition[1][1].upper() if len(definition) > 1 else ""


# -- text: the dump's character set ------------------------------------------------------------------

#: MySQL character set names (``SET NAMES x``) → Python codecs. MySQL's ``latin1`` is cp1252 with the
#: five bytes cp1252 leaves undefined mapped to the same code points (see :func:`_decode_mysql_latin1`).
CHARSETS: Dict[str, str] = {
    "utf8": "utf-8",
    "utf8mb3": "utf-8",
    "utf8mb4": "utf-8",
    "latin1": "mysql-latin1",
    "ascii": "ascii",
    "latin2": "iso8859-2",
    "latin5": "iso8859-9",
    "latin7": "iso8859-13",
    "greek": "iso8859-7",
    "hebrew": "iso8859-8",
    "cp1250": "cp1250",
    "cp1251": "cp1251",
    "cp1256": "cp1256",
    "cp1257": "cp1257",
    "cp850": "cp850",
    "cp852": "cp852",
    "cp866": "cp866",
    "koi8r": "koi8-r",
    "koi8u": "koi8-u",
    "macroman": "mac-roman",
    "sjis": "shift_jis",
    "cp932": "cp932",
    "ujis": "euc_jp",
    "eucjpms": "euc_jp",
    "euckr": "euc_kr",
    "gb2312": "gb2312",
    "gbk": "gbk",
    "gb18030": "gb18030",
    "big5": "big5",
    "utf16": "utf-16-be",
    "utf16le": "utf-16-le",
    "utf32": "utf-32-be",
    "ucs2": "utf-16-be",
}

_LATIN1_TABLE = {b: (bytes([b]).decode("cp1252", "ignore") or chr(b)) for b in range(0x80, 0xA0)}


def _decode_mysql_latin1(raw: bytes) -> str:
    text = raw.decode("latin-1")
    return text.translate(_LATIN1_TABLE) if not text.isascii() else text


def codec_for(charset: Optional[str]) -> Optional[str]:
    """The Python codec of a MySQL character set name (None: one we do not know)."""
    if charset is None:
        return "utf-8"
    return CHARSETS.get(charset.lower())


def _decoder(codec: str) -> Callable[[bytes], str]:
    if codec == "utf-8":
        return bytes.decode  # utf-8, strict: the fastest
    if codec == "mysql-latin1":
        return _decode_mysql_latin1
    return functools.partial(_decode_codec, codec=codec)


def _decode_codec(raw: bytes, codec: str) -> str:
    return raw.decode(codec)


_DATETIME = re.compile(rb"(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?)?$")


def _make_text(decode: Callable[[bytes], str]) -> Converter:
    def convert(token: Token) -> Any:
        if token is None:
            return None
        if isinstance(token, int):
            return str(int(token))
        return decode(token)

    return convert


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


def _make_literal(decode: Callable[[bytes], str]) -> Converter:
    """Values typed by how they are written, for columns of unknown type."""

    def convert(token: Token) -> Any:
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
        return decode(token)

    return convert


@functools.cache
def _text_converters(codec: str) -> Tuple[Converter, Converter]:
    decode = _decoder(codec)
    return _make_text(decode), _make_literal(decode)


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


#: How many distinct values a time converter remembers (then it starts over): a row often repeats a time
#: (an audit row's event and write times, a backfill run's one write time), and a repeated value is then
#: one lookup, and one object (pickled once when a worker hands rows back).
_TIMES_REMEMBERED = 4096


def _make_datetime(zone: Optional[dt.tzinfo]) -> Converter:
    # a fixed zero offset needs no conversion; a named zone may have one at some dates only
    convert_zone = zone is not None and (not isinstance(zone, dt.timezone) or bool(zone.utcoffset(None)))
    seen: Dict[Any, Any] = {}

    def convert(token: Token) -> Any:
        if token is None:
            return None
        value = seen.get(token)
        if value is None:
            value = parse(token)
            if len(seen) >= _TIMES_REMEMBERED:
                seen.clear()
            seen[token] = value
        return value

    def parse(token: Union[bytes, int]) -> Any:
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


def converter_for(sql_type: str, time_zone: Optional[dt.tzinfo] = None, codec: str = "utf-8") -> Converter:
    """The function turning a token into a Python value for a column of ``sql_type``.

    ``time_zone`` is the dump's ``SET TIME_ZONE`` offset; it applies to TIMESTAMP only (DATETIME values
    are stored as written; OpenStack writes them in UTC). ``codec`` decodes text (the dump's ``SET
    NAMES``, see :func:`codec_for`), strictly: text that is not in it raises ValueError, never comes out
    altered.
    """
    t = sql_type.lower()
    text, literal = _text_converters(codec)
    if t == UNKNOWN_TYPE:
        return literal
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
    return text


def row_builder(
    columns: Sequence[Column],
    time_zone: Optional[dt.tzinfo] = None,
    keep: Optional[Collection[str]] = None,
    codec: str = "utf-8",
) -> Callable[[List[Token]], Dict[str, Any]]:
    """A function turning one token row into ``{column name: typed value}``.

    With ``keep``, only those columns are converted and returned (a row still needs all its values):
    a snapshot keeps a dozen small columns of tables whose other columns hold kilobytes of JSON.
    A value that does not convert raises ValueError naming its column.
    """
    names = [c.name for c in columns]
    converters = [converter_for(c.type, time_zone, codec) for c in columns]
    n = len(names)
    if keep is None:
        pairs = list(zip(names, converters))

        def build(tokens: List[Token]) -> Dict[str, Any]:
            if len(tokens) != n:
                raise ValueError(f"row has {len(tokens)} values for {n} columns")
            try:
                return {name: conv(tok) for (name, conv), tok in zip(pairs, tokens)}
            except ValueError as exc:
                raise _column_error(names, converters, tokens, codec) from exc

        return build
    kept = [(i, name, conv) for i, (name, conv) in enumerate(zip(names, converters)) if name in keep]

    def build_kept(tokens: List[Token]) -> Dict[str, Any]:
        if len(tokens) != n:
            raise ValueError(f"row has {len(tokens)} values for {n} columns")
        try:
            return {name: conv(tokens[i]) for i, name, conv in kept}
        except ValueError as exc:
            raise _column_error(names, converters, tokens, codec) from exc

    return build_kept


def _column_error(
    names: Sequence[str], converters: Sequence[Converter], tokens: Sequence[Token], codec: str
) -> ValueError:
    """The error of the first value of a row that does not convert, naming its column (error path only)."""
    for name, conv, token in zip(names, converters, tokens):
        try:
            conv(token)
        except UnicodeDecodeError as exc:
            bad = exc.object[exc.start : exc.start + 4]
            return ValueError(
                f"column `{name}`: text that is not {codec} (byte {bad[:1].hex()} at {exc.start}: "
                f"{bytes(exc.object[max(0, exc.start - 20) : exc.start + 4])!r}); the dump's SET NAMES says "
                "how its text is encoded"
            )
        except (ValueError, ArithmeticError) as exc:
            return ValueError(f"column `{name}`: {exc}")
    return ValueError("a value does not convert")
