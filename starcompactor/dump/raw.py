"""Rows as tuples of raw tokens: the fast way through tables of millions of rows.

:class:`~starcompactor.dump.reader.DumpReader` hands out a dict per row, each value typed by its column
(datetimes parsed, integers converted). A caller that reads millions of rows and needs a handful of
columns — the instance events of a Nova archive — is faster with a tuple of those columns' tokens, in
the order it asked for, converted only where it must: :class:`RawDumpReader`. Tokens are what the VALUES
tokenizer gives (:mod:`starcompactor.dump.values`): ``None``, unescaped ``bytes``, or a
:class:`~starcompactor.dump.values.NumberLiteral` (bytes as written); a column the table lacks is
``None``. :func:`raw_text`, :func:`raw_int` and :func:`raw_time` turn tokens into values.
"""

from __future__ import annotations

import re
from operator import itemgetter
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from ..errors import DumpSyntaxError, TokenizeError, TruncatedDumpError, UnknownColumnsError
from .reader import _COLUMN_NAME, DumpReader, TableKey, _ident
from .values import _STR, BitLiteral, Token, iter_rows, unescape

#: A DATETIME/TIMESTAMP as mysqldump writes it; zero dates ('0000-00-00 …') are not times.
_TIME_TEXT = re.compile(
    rb"[1-9]\d{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])(?: \d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)?"
)


#: Any value, not captured (the alternatives of the VALUES tokenizer).
_ANY = (
    rb"(?:'" + _STR + rb"'|_(?:binary|utf8mb4|utf8mb3|utf8|latin1)[ ]*'" + _STR + rb"'|0x[0-9A-Fa-f]*"
    rb"|[Xx]'[0-9A-Fa-f]*'|[Bb]'[01]*'|NULL|[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)"
)
#: A kept value: a quoted string's body (group 1), or NULL or a number as written (group 2). A kept
#: value written any other way (hex, ``_binary``) makes the row take the general tokenizer.
_KEPT = rb"(?:'(" + _STR + rb")'|(NULL|[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?))"


#: How a column's token is handed out: as it is, or converted (see :func:`raw_text` …).
KINDS = ("raw", "text", "name", "int", "time")


def _row_pattern(
    names: Sequence[str], wanted: Sequence[str], kinds: Sequence[str]
) -> Optional[Tuple["re.Pattern[bytes]", Any]]:
    """One regular expression for a whole row of a table with columns ``names``, capturing the ``wanted``
    ones and then the separator, and the function turning its groups into the row's tuple (in ``wanted``
    order, each value converted as its kind says). None when a wanted column is missing or named twice
    (the general path then)."""
    position = {name: i for i, name in enumerate(names)}
    if not wanted or len(set(wanted)) != len(wanted) or any(name not in position for name in wanted):
        return None
    kept = {position[name] for name in wanted}
    body = b",".join(_KEPT if i in kept else _ANY for i in range(len(names)))
    pattern = re.compile(rb"\(" + body + rb"\)[ \t\r\n]*(?:(,)[ \t\r\n]*|;)")
    # groups come in table order, two per kept column: (string body, NULL-or-number)
    group_of = {name: 2 * k for k, name in enumerate(sorted(wanted, key=position.__getitem__))}
    return pattern, _converter([group_of[name] for name in wanted], kinds)


def _converter(groups: Sequence[int], kinds: Sequence[str]) -> Callable[[Tuple[Any, ...]], Tuple[Any, ...]]:
    """``groups -> tuple`` for the given group pairs, as straight-line code (a row costs one call, not a
    loop over its values). The code is made from integers and the fixed texts below only."""
    parts = []
    for i, kind in zip(groups, kinds):
        s, r = f"g[{i}]", f"g[{i + 1}]"
        string = f"(_unescape({s}) if b'\\\\' in {s} or b\"''\" in {s} else {s})"
        literal = f"(None if {r} == b'NULL' else {r})"
        if kind == "text":
            code = f"({string}.decode('utf-8', 'surrogateescape') if {s} is not None else _text({literal}))"
        elif kind == "name":  # a short text that repeats: one str object per distinct value
            code = f"((_names_get({string}) or _name({string})) if {s} is not None else _text({literal}))"
        elif kind == "int":
            code = (
                f"(int({r}) if {r} is not None and {r} != b'NULL' else (None if {s} is None else int({s})))"
            )
        elif kind == "time":
            code = (
                f"(({s}.decode('ascii') if {s}[:1] in _DIGITS_1_9 and b'-00' not in {s}[4:10] "
                f"and len({s}) >= 10 else raw_time({s})) if {s} is not None else None)"
            )
        else:
            code = f"({string} if {s} is not None else {literal})"
        parts.append(code)
    source = "lambda g: (" + ", ".join(parts) + ",)"
    cache: Dict[bytes, str] = {}

    def name(raw: bytes) -> str:
        text = raw.decode("utf-8", "surrogateescape")
        if len(cache) < 65536:
            cache[raw] = text
        return text

    names = {
        "_unescape": unescape,
        "_text": raw_text,
        "raw_time": raw_time,
        "_DIGITS_1_9": _DIGITS_1_9,
        "_names_get": cache.get,
        "_name": name,
    }
    return eval(source, names)  # noqa: S307 - the source is built from integers and fixed texts


class RawDumpReader(DumpReader):
    """A :class:`DumpReader` whose rows are tuples of the tokens of ``columns[key]``, in that order.

    ``columns`` is required here: for each requested key, the column names wanted (a name the table does
    not have gives ``None``). Iterating yields ``(database, table, tuple)``.

    Rows as mysqldump writes them (no blanks inside a row) are cut by one regular expression per row,
    compiled for the table's columns (:func:`_row_pattern`): about three times faster than the value
    tokenizer, which takes over for the rest of a statement at the first row the expression does not fit.
    """

    def __init__(
        self,
        source: Any,
        tables: Sequence[TableKey],
        columns: Mapping[TableKey, Sequence[str]],
        kinds: Optional[Mapping[TableKey, Sequence[str]]] = None,
        **options: Any,
    ) -> None:
        super().__init__(source, tables, columns=columns, **options)
        self.raw_columns: Dict[TableKey, Tuple[str, ...]] = {k: tuple(v) for k, v in columns.items()}
        #: per key, how each column's token is handed out (:data:`KINDS`; default "raw")
        self.kinds: Dict[TableKey, Tuple[str, ...]] = {
            k: tuple((kinds or {}).get(k) or ("raw",) * len(v)) for k, v in self.raw_columns.items()
        }
        for key, column_kinds in self.kinds.items():
            if len(column_kinds) != len(self.raw_columns[key]) or not set(column_kinds) <= set(KINDS):
                raise ValueError(f"kinds of {key}: one of {KINDS} per column")
        self._patterns: Dict[Any, Any] = {}

    def _insert(self, head: "re.Match[bytes]") -> Iterator[Tuple[Optional[str], str, Any]]:
        db = _ident(head.group(1)) if head.group(1) else self._db
        table = _ident(head.group(2))
        key = (db, table)
        if key != self._table:
            self._enter_table(key)
        if self.request.answers(key) is None:
            self._skip_statement()
            return
        values_offset = head.end() - self._b.pos
        end, unterminated = self._statement_end()
        start = self._b.pos
        statement = self._b.buf[start:end]
        self._b.pos = end
        cols = head.group("cols")
        build = self._builder(key, cols)
        if build is None:
            raise UnknownColumnsError(self.info.path, db, table, self._b.base + start)
        position = values_offset
        compiled = self._patterns.get((key, cols))
        if compiled is not None:
            match = compiled[0].match
            convert = compiled[1]
            while True:
                m = match(statement, position)
                if m is None:
                    break
                position = m.end()
                groups = m.groups()
                yield db, table, convert(groups)
                if groups[-1] is None:  # the row ended the statement
                    return
        try:
            for tokens in iter_rows(statement, position):
                try:
                    row = build(tokens)
                except ValueError as exc:
                    raise DumpSyntaxError(self.info.path, f"`{table}`: {exc}", self._b.base + start) from exc
                yield db, table, row
        except TokenizeError as exc:
            if unterminated:
                raise TruncatedDumpError(
                    self.info.path, f"the dump ends inside an INSERT into `{table}`", self._b.base + start
                ) from exc
            raise DumpSyntaxError(
                self.info.path, f"INSERT INTO `{table}`: {exc}", self._b.base + start + exc.position
            ) from exc

    def _builder(self, key: TableKey, cols: Optional[bytes]) -> Any:
        cache_key = (key, cols, None)
        cached = self._builders.get(cache_key)
        if cached is not None:
            return cached
        schema = (
            self.schemas.get(key) or self.schemas.get((self._db, key[1])) or self.schemas.get((None, key[1]))
        )
        if cols is not None:
            names = [_ident(n) for n in _COLUMN_NAME.findall(cols)]
        elif schema is not None:
            names = list(schema.column_names)
        else:
            return None
        answered = self.request.answers(key)
        wanted = self.raw_columns.get(answered) if answered is not None else None
        kinds = self.kinds.get(answered) if answered is not None else None
        wanted = wanted if wanted is not None else tuple(names)
        kinds = kinds if kinds is not None else ("raw",) * len(wanted)
        build: Any = _tuple_builder(names, wanted, kinds)
        self._builders[cache_key] = build
        self._patterns[(key, cols)] = _row_pattern(names, wanted, kinds)
        return build


def _tuple_builder(
    names: Sequence[str], wanted: Sequence[str], kinds: Sequence[str]
) -> Callable[[List[Token]], Tuple[Any, ...]]:
    """The general path: the tokenizer's tokens → the wanted values, converted by kind."""
    plain = _plain_tuple_builder(names, wanted)
    if all(kind == "raw" for kind in kinds):
        return plain
    converters = [_CONVERT[kind] for kind in kinds]

    def build(tokens: List[Token]) -> Tuple[Any, ...]:
        return tuple(convert(value) for convert, value in zip(converters, plain(tokens)))

    return build


def _plain_tuple_builder(
    names: Sequence[str], wanted: Sequence[str]
) -> Callable[[List[Token]], Tuple[Any, ...]]:
    n = len(names)
    position = {name: i for i, name in enumerate(names)}
    # a missing column reads the extra None appended below (index n)
    indexes = [position.get(name, n) for name in wanted]
    missing = any(i == n for i in indexes)
    if len(indexes) == 1:
        index = indexes[0]

        def build_one(tokens: List[Token]) -> Tuple[Any, ...]:
            if len(tokens) != n:
                raise ValueError(f"row has {len(tokens)} values for {n} columns")
            return (None,) if missing else (tokens[index],)

        return build_one
    pick = itemgetter(*indexes)

    def build(tokens: List[Token]) -> Tuple[Any, ...]:
        if len(tokens) != n:
            raise ValueError(f"row has {len(tokens)} values for {n} columns")
        if missing:
            tokens.append(None)
        return pick(tokens)

    return build


def raw_text(token: Token) -> Optional[str]:
    """A string column's token as text (``None`` stays ``None``)."""
    if token is None:
        return None
    if isinstance(token, BitLiteral):
        return str(int(token))
    return token.decode("utf-8", "surrogateescape")


def raw_int(token: Token) -> Optional[int]:
    """An integer column's token as an int (``None`` stays ``None``)."""
    if token is None:
        return None
    if isinstance(token, int):
        return int(token)
    return int(token)


def raw_time(token: Token) -> Optional[str]:
    """A DATETIME column's token as its text (``YYYY-MM-DD HH:MM:SS``, which sorts as the times do), or
    ``None`` for NULL and zero dates (as :class:`DumpReader` gives)."""
    if token is None or isinstance(token, int):
        return None
    if token[:1] in _DIGITS_1_9 and b"-00" not in token[4:10] and len(token) >= 10:
        return token.decode("ascii")
    if _TIME_TEXT.fullmatch(token) is None:
        return None
    return token.decode("ascii")


_DIGITS_1_9 = frozenset(b"123456789"[i : i + 1] for i in range(9))


def _raw(token: Token) -> Any:
    return token


_CONVERT: Dict[str, Callable[[Token], Any]] = {
    "raw": _raw,
    "text": raw_text,
    "name": raw_text,
    "int": raw_int,
    "time": raw_time,
}


__all__ = ["RawDumpReader", "raw_int", "raw_text", "raw_time"]
