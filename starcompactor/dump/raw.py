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


def _row_pattern(names: Sequence[str], wanted: Sequence[str]) -> Optional[Tuple["re.Pattern[bytes]", Any]]:
    """One regular expression for a whole row of a table with columns ``names``, capturing the ``wanted``
    ones (in table order) and then the separator; with the function putting the captured values in
    ``wanted`` order. None when a wanted column is missing or named twice (the general path then)."""
    position = {name: i for i, name in enumerate(names)}
    if len(set(wanted)) != len(wanted) or any(name not in position for name in wanted):
        return None
    in_table_order = sorted(range(len(wanted)), key=lambda k: position[wanted[k]])
    kept = {position[name] for name in wanted}
    body = b",".join(_KEPT if i in kept else _ANY for i in range(len(names)))
    pattern = re.compile(rb"\(" + body + rb"\)[ \t\r\n]*(?:(,)[ \t\r\n]*|;)")
    # the k-th captured value (table order) is wanted[in_table_order[k]]; reorder to wanted order
    order = [0] * len(wanted)
    for k, w in enumerate(in_table_order):
        order[w] = k
    reorder = None if order == list(range(len(wanted))) else (itemgetter(*order) if len(order) > 1 else None)
    return pattern, reorder


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
        **options: Any,
    ) -> None:
        super().__init__(source, tables, columns=columns, **options)
        self.raw_columns: Dict[TableKey, Tuple[str, ...]] = {k: tuple(v) for k, v in columns.items()}
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
            reorder = compiled[1]
            width = 2 * len(self.raw_columns.get(self.request.answers(key) or key, ()))
            pairs = range(0, width, 2)
            while True:
                m = match(statement, position)
                if m is None:
                    break
                position = m.end()
                groups = m.groups()
                values = tuple(
                    (None if groups[i + 1] == b"NULL" else groups[i + 1])
                    if groups[i] is None
                    else (unescape(groups[i]) if b"\\" in groups[i] or b"''" in groups[i] else groups[i])
                    for i in pairs
                )
                yield db, table, (reorder(values) if reorder is not None else values)
                if groups[width] is None:  # the row ended the statement
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
        wanted = wanted if wanted is not None else tuple(names)
        build: Any = _tuple_builder(names, wanted)
        self._builders[cache_key] = build
        self._patterns[(key, cols)] = _row_pattern(names, wanted)
        return build


def _tuple_builder(names: Sequence[str], wanted: Sequence[str]) -> Callable[[List[Token]], Tuple[Any, ...]]:
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
    if _TIME_TEXT.fullmatch(token) is None:
        return None
    return token.decode("ascii")


__all__ = ["RawDumpReader", "raw_int", "raw_text", "raw_time"]
