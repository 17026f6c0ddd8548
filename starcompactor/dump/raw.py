"""Rows as tuples of raw tokens: the fast way through tables of millions of rows.

:class:`~starcompactor.dump.reader.DumpReader` hands out a dict per row, each value typed by its column
(datetimes parsed, integers converted). A caller that reads millions of rows and needs a handful of
columns — the instance events of a Nova archive — is faster with a tuple of those columns' tokens, in
the order it asked for, converted only where it must: :class:`RawDumpReader`. Tokens are what the VALUES
tokenizer gives (:mod:`starcompactor.dump.values`): ``None``, unescaped ``bytes``, or a
:class:`~starcompactor.dump.values.NumberLiteral` (bytes as written); a column the table lacks is
``None``. :func:`raw_int` and :func:`raw_time` turn tokens into values; text is decoded as the dump's
``SET NAMES`` says, strictly (as :class:`DumpReader` does).

The rows are the ones :class:`DumpReader` gives, under the same rules: names in any form the reader
reads, a row repeating an earlier row's primary key left out (refused inside a REPLACE), past versions
of a system-versioned table left out, text that is not in the dump's character set one error naming
the column.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from .reader import DumpReader, TableKey, _Insert, _Plan
from .schema import Column, _column_error, converter_for
from .values import _STR, BitLiteral, NumberLiteral, Token, unescape

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


#: How a column's token is handed out: as it is, or converted (see :func:`raw_int` …).
#: "text" and "name" are text in the dump's character set; "name" keeps one str per distinct value.
KINDS = ("raw", "text", "name", "int", "time")


class _RawPlan(_Plan):
    """A plan for tuples: ``build`` (tokens → tuple) for the general path, and for the fast one the row
    expression, the function turning its groups into the tuple, and the group of the (single-column)
    primary key or the function giving the key's token (several columns)."""

    __slots__ = ("convert", "key_group", "key_of", "pattern")

    def __init__(
        self,
        build: Callable[[List[Any]], Any],
        key: Tuple[int, ...],
        row_end: Optional[Tuple[int, Callable[[Any], Any]]],
        pattern: Optional["re.Pattern[bytes]"] = None,
        convert: Optional[Callable[[Tuple[Any, ...]], Tuple[Any, ...]]] = None,
        key_group: int = -1,
        key_of: Optional[Callable[[Tuple[Any, ...]], Any]] = None,
    ) -> None:
        super().__init__(build, key, row_end)
        self.pattern = pattern
        self.convert = convert
        self.key_group = key_group
        self.key_of = key_of


def _key_token(s: Optional[bytes], r: Optional[bytes]) -> Token:
    """The token the VALUES tokenizer gives for a value the row expression cut (string body ``s``, or
    NULL or a number ``r``): repeated keys are told apart by tokens, whichever path cut the row."""
    if s is not None:
        return unescape(s)
    if r is None or r == b"NULL":
        return None
    return NumberLiteral(r)


def _row_pattern(
    names: Sequence[str], wanted: Sequence[str], kinds: Sequence[str], key: Sequence[int], decode: Any
) -> Optional[Tuple["re.Pattern[bytes]", Any, int, Any]]:
    """One regular expression for a whole row of a table with columns ``names``, capturing the ``wanted``
    ones and the primary key's (``key``: their indexes), then the separator; the function turning its
    groups into the row's tuple (in ``wanted`` order, each value converted as its kind says; a column
    the table lacks is None); and how to get the key's token. None when a wanted column is named twice
    (the general path then)."""
    position = {name: i for i, name in enumerate(names)}
    if not wanted or len(set(wanted)) != len(wanted):
        return None
    kept = {position[name] for name in wanted if name in position} | set(key)
    body = b",".join(_KEPT if i in kept else _ANY for i in range(len(names)))
    pattern = re.compile(rb"\(" + body + rb"\)[ \t\r\n]*(?:(,)[ \t\r\n]*|;)")
    # groups come in table order, two per kept column: (string body, NULL-or-number)
    group_of = {i: 2 * k for k, i in enumerate(sorted(kept))}
    groups = [group_of[position[name]] if name in position else -1 for name in wanted]
    key_groups = [group_of[i] for i in key]
    key_group = key_groups[0] if len(key_groups) == 1 else -1
    key_of = None
    if len(key_groups) > 1:

        def key_of(g: Tuple[Any, ...]) -> Any:
            return tuple(_key_token(g[i], g[i + 1]) for i in key_groups)

    return pattern, _converter(groups, kinds, decode), key_group, key_of


def _converter(
    groups: Sequence[int], kinds: Sequence[str], decode: Callable[[bytes], str]
) -> Callable[[Tuple[Any, ...]], Tuple[Any, ...]]:
    """``groups -> tuple`` for the given group pairs (-1: a column the table lacks), as straight-line
    code (a row costs one call, not a loop over its values). The code is made from integers and the
    fixed texts below only. Text is decoded by ``decode`` (strict): a ValueError sends the row to the
    general path, which names the column."""
    parts = []
    for i, kind in zip(groups, kinds):
        if i < 0:
            parts.append("None")
            continue
        s, r = f"g[{i}]", f"g[{i + 1}]"
        string = f"(_unescape({s}) if b'\\\\' in {s} or b\"''\" in {s} else {s})"
        literal = f"(None if {r} == b'NULL' else {r})"
        # NULL or a number written bare: its text (no call for NULL)
        literal_text = f"(None if {r} == b'NULL' else _decode({r}))"
        if kind == "text":
            code = f"(_decode({string}) if {s} is not None else {literal_text})"
        elif kind == "name":  # a short text that repeats: one str object per distinct value, looked up as
            # written (escapes and all), so that a repeat costs one dict lookup
            code = f"((_names_get({s}) or _name({s})) if {s} is not None else {literal_text})"
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

    def name(written: bytes) -> str:
        """The text of a string body as written (cached under that)."""
        text = decode(unescape(written))
        if len(cache) < 65536:
            cache[written] = text
        return text

    names = {
        "_unescape": unescape,
        "_decode": decode,
        "raw_time": raw_time,
        "_DIGITS_1_9": _DIGITS_1_9,
        "_names_get": cache.get,
        "_name": name,
    }
    return eval(source, names)  # noqa: S307 - the source is built from integers and fixed texts


def _decoder(codec: str) -> Callable[[bytes], str]:
    """Strict decoding in the dump's character set (the text converter of :mod:`.schema` without its
    cases for tokens that are not bytes, which the row expression never gives)."""
    text = converter_for("text", None, codec)
    if codec == "utf-8":
        return bytes.decode
    return text


def _zone_converts(zone: Optional[dt.tzinfo]) -> bool:
    """Whether TIMESTAMP values of a dump in ``zone`` differ from what is written (as the typed reader
    converts them)."""
    return zone is not None and (not isinstance(zone, dt.timezone) or bool(zone.utcoffset(None)))


class RawDumpReader(DumpReader):
    """A :class:`DumpReader` whose rows are tuples of the tokens of ``columns[key]``, in that order.

    ``columns`` is required here: for each requested key, the column names wanted (a name the table does
    not have gives ``None``). Iterating yields ``(database, table, tuple)``.

    Rows as mysqldump writes them (no blanks inside a row) are cut by one regular expression per row,
    compiled for the table's columns (:func:`_row_pattern`): about three times faster than the value
    tokenizer, which takes over for the rest of a statement at the first row the expression does not fit
    or whose values do not convert (it then says which column). The general path also takes the tables
    the expression does not serve: a system-versioned table dumped with its history, and a TIMESTAMP
    wanted as a time in a dump whose zone is not UTC.
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

    def _new_plan(
        self,
        key: TableKey,
        columns: List[Column],
        pk: Tuple[int, ...],
        row_end: Optional[Tuple[int, Callable[[Any], Any]]],
    ) -> _Plan:
        assert self._codec is not None  # checked by _plan
        names = [c.name for c in columns]
        answered = self.request.answers(key)
        wanted = self.raw_columns.get(answered) if answered is not None else None
        kinds = self.kinds.get(answered) if answered is not None else None
        wanted = wanted if wanted is not None else tuple(names)
        kinds = kinds if kinds is not None else ("raw",) * len(wanted)
        build = _tuple_builder(names, wanted, kinds, self._codec)
        types = {c.name: c.type for c in columns}
        zoned = _zone_converts(self._zone) and any(
            kind == "time" and types.get(name) == "timestamp" for name, kind in zip(wanted, kinds)
        )
        if zoned:  # the typed converter's zone applies: the general path with it
            build = _tuple_builder(names, wanted, kinds, self._codec, self._zone, types)
        if row_end is not None or zoned:
            return _RawPlan(build, pk, row_end)
        fast = _row_pattern(names, wanted, kinds, pk, _decoder(self._codec))
        if fast is None:
            return _RawPlan(build, pk, row_end)
        pattern, convert, key_group, key_of = fast
        return _RawPlan(build, pk, row_end, pattern, convert, key_group, key_of)

    def _rows(self, insert: _Insert, plan: _Plan) -> Iterator[Tuple[Optional[str], str, Any]]:
        pattern = plan.pattern if isinstance(plan, _RawPlan) else None
        if pattern is None:
            yield from super()._rows(insert, plan)
            return
        assert isinstance(plan, _RawPlan) and plan.convert is not None
        db, table, statement = insert.db, insert.table, insert.statement
        key = (db, table)
        position = insert.values_offset
        match = pattern.match
        convert = plan.convert
        counted = 0
        if plan.key:
            seen = self._seen(key)
            seen_add = seen.add
            ascending = seen.ascending
            key_group = plan.key_group
            key_of = plan.key_of
        try:
            while True:
                m = match(statement, position)
                if m is None:
                    break
                groups = m.groups()
                try:
                    row = convert(groups)
                except ValueError:
                    break  # the general path takes this row on, and names the column
                position = m.end()
                counted += 1
                if plan.key:
                    if key_group >= 0:
                        r = groups[key_group + 1]
                        # keys mostly come ascending: an int above the last one is new (no search), as
                        # _SeenKeys.add decides it
                        if r is not None and r.isdigit():
                            k = int(r)
                            if not ascending or k > ascending[-1]:
                                ascending.append(k)
                                new = True
                            else:
                                new = seen_add(NumberLiteral(r))
                            pk: Any = r
                        else:
                            pk = _key_token(groups[key_group], r)
                            new = seen_add(pk)
                    else:
                        pk = key_of(groups)  # type: ignore[misc]
                        new = seen_add(pk)
                    if not new and not self._repeated(key, pk, insert.replace, insert.start):
                        if groups[-1] is None:
                            return
                        continue
                yield db, table, row
                if groups[-1] is None:  # the row ended the statement
                    return
        finally:
            if self.count_rows:
                self.info.row_counts[key] = self.info.row_counts.get(key, 0) + counted
        if position == insert.values_offset:
            yield from super()._rows(insert, plan)
        else:
            yield from super()._rows(_rest_of(insert, position), plan)


def _rest_of(insert: _Insert, position: int) -> _Insert:
    """The statement from ``position`` on (a row start), for the general path."""
    return _Insert(
        insert.db,
        insert.table,
        insert.statement,
        position,
        insert.start,
        insert.unterminated,
        insert.replace,
    )


def _tuple_builder(
    names: Sequence[str],
    wanted: Sequence[str],
    kinds: Sequence[str],
    codec: str,
    zone: Optional[dt.tzinfo] = None,
    types: Optional[Mapping[str, str]] = None,
) -> Callable[[List[Token]], Tuple[Any, ...]]:
    """The general path: the tokenizer's tokens → the wanted values, converted by kind; a value that
    does not convert raises ValueError naming its column. With ``zone``, a TIMESTAMP wanted as a time is
    converted from it (as the typed reader does) and given as text."""
    n = len(names)
    position = {name: i for i, name in enumerate(names)}
    # a missing column reads the extra None appended below (index n)
    indexes = [position.get(name, n) for name in wanted]
    text = converter_for("text", None, codec)
    converters: List[Callable[[Token], Any]] = []
    for name, kind in zip(wanted, kinds):
        if kind == "time" and zone is not None and (types or {}).get(name) == "timestamp":
            converters.append(_zoned_time(converter_for("timestamp", zone, codec)))
        else:
            converters.append(text if kind in ("text", "name") else _CONVERT[kind])
    pairs = list(zip(indexes, converters))
    # an error names the first column that does not convert in table order, as the typed reader's does
    in_order = sorted(range(len(wanted)), key=indexes.__getitem__)
    order_names = [wanted[k] for k in in_order]
    order_converters = [converters[k] for k in in_order]

    def build(tokens: List[Token]) -> Tuple[Any, ...]:
        if len(tokens) != n:
            raise ValueError(f"row has {len(tokens)} values for {n} columns")
        tokens.append(None)
        try:
            return tuple([convert(tokens[i]) for i, convert in pairs])
        except ValueError as exc:
            picked = [tokens[indexes[k]] for k in in_order]
            raise _column_error(order_names, order_converters, picked, codec) from exc

    return build


def _zoned_time(convert: Callable[[Token], Any]) -> Callable[[Token], Optional[str]]:
    def time_text(token: Token) -> Optional[str]:
        value = convert(token)
        return None if value is None else value.isoformat(" ")

    return time_text


def raw_text(token: Token, codec: str = "utf-8") -> Optional[str]:
    """A string column's token as text in ``codec`` (strict; ``None`` stays ``None``)."""
    if token is None:
        return None
    if isinstance(token, BitLiteral):
        return str(int(token))
    text: Optional[str] = converter_for("text", None, codec)(token)
    return text


def raw_int(token: Token) -> Optional[int]:
    """An integer column's token as an int (``None`` stays ``None``)."""
    if token is None:
        return None
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
    "int": raw_int,
    "time": raw_time,
}


__all__ = ["RawDumpReader", "raw_int", "raw_text", "raw_time"]
