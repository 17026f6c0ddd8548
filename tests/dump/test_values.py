"""The VALUES tokenizer: every literal form mysqldump writes, every escape MySQL defines."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from starcompactor.dump.values import (
    BinaryLiteral,
    BitLiteral,
    NumberLiteral,
    TokenizeError,
    iter_rows,
    unescape,
)
from tests.fixtures.reader.make_reader_fixtures import mysql_escape  # noqa: E402


@pytest.mark.parametrize(
    "escaped, raw",
    [
        (rb"\0", b"\x00"),
        (rb"\'", b"'"),
        (rb"\"", b'"'),
        (rb"\b", b"\x08"),
        (rb"\n", b"\n"),
        (rb"\r", b"\r"),
        (rb"\t", b"\t"),
        (rb"\Z", b"\x1a"),
        (rb"\\", b"\\"),
        (rb"\%", b"\\%"),
        (rb"\_", b"\\_"),
        (b"''", b"'"),
        (rb"\x", b"x"),
        (rb"a\\''b", b"a\\'b"),
    ],
)
def test_every_escape(escaped, raw):
    assert unescape(escaped) == raw
    assert list(iter_rows(b"('" + escaped + b"');")) == [[raw]]


def test_literal_forms():
    data = (
        b"(NULL,'',-12,3.50,1e-7,.5,_binary 'a\\0',0x00FF,X'41',x'',b'101',b'',_utf8mb4'\xc3\xa9'),\n"
        b"(1,'),(;','x');"
    )
    first, second = iter_rows(data)
    assert first == [
        None,
        b"",
        b"-12",
        b"3.50",
        b"1e-7",
        b".5",
        b"a\x00",
        b"\x00\xff",
        b"A",
        b"",
        5,
        0,
        b"\xc3\xa9",
    ]
    assert [type(v) for v in first[2:6]] == [NumberLiteral] * 4
    assert [type(v) for v in first[6:10]] == [BinaryLiteral] * 4
    assert isinstance(first[10], BitLiteral) and type(first[1]) is bytes
    assert second == [b"1", b"),(;", b"x"]


def test_rows_spread_over_lines_and_crlf():
    assert list(iter_rows(b"VALUES\r\n(1,'a'),\r\n(2,'b');\r\n", 6)) == [[b"1", b"a"], [b"2", b"b"]]


@pytest.mark.parametrize("bad", [b"(1,'unterminated);", b"(1,2", b"1,2);", b"(1,2)x", b"(1,@x);", b"(1,,2);"])
def test_malformed(bad):
    with pytest.raises(TokenizeError):
        list(iter_rows(bad))


values = st.one_of(
    st.none(),
    st.binary(max_size=30),
    st.integers(-(2**64), 2**64),
    st.lists(st.sampled_from(list(b"'\\\"\x00\n\r\x1a(),;%_")), max_size=12).map(bytes),
)


def _literal(value):
    if value is None:
        return b"NULL"
    if isinstance(value, int):
        return str(value).encode()
    return b"'" + mysql_escape(value) + b"'"


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.lists(values, min_size=1, max_size=6), min_size=1, max_size=5), multiline=st.booleans()
)
def test_escaped_values_come_back(rows, multiline):
    """Whatever mysql_real_escape_string wrote, the tokenizer undoes, in one-line or one-row-per-line form."""
    width = len(rows[0])
    rows = [(r * width)[:width] for r in rows]
    sep = b",\n" if multiline else b","
    data = (
        b"INSERT INTO `t` VALUES "
        + sep.join(b"(" + b",".join(_literal(v) for v in r) + b")" for r in rows)
        + b";\n"
    )
    got = list(iter_rows(data, len(b"INSERT INTO `t` VALUES ")))
    want = [[None if v is None else str(v).encode() if isinstance(v, int) else v for v in r] for r in rows]
    assert got == want


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.sampled_from([b"a", b"\\", b"'", b'"', b"n", b"0", b"Z", b"b", b"%", b"_", b"t", b"r", b"x"]),
        max_size=30,
    )
)
def test_unescape_fast_path_agrees_with_the_general_rule(parts):
    from starcompactor.dump.values import _ESCAPE, _unescape_match, unescape

    raw = b"".join(parts)
    assert unescape(raw) == _ESCAPE.sub(_unescape_match, raw)


# -- bounded memory, and the row counter -----------------------------------------------------------

_PIECES = [b"a", b"(", b")", b",", b";", b"\\\\", b"\\'", b"''", b"\\n", b"\\%", b"\\x", b'\\"', b"\\0"]


def _reference_unescape(raw: bytes) -> bytes:
    from starcompactor.dump.values import _ESCAPE, _unescape_match

    return _ESCAPE.sub(_unescape_match, raw)


@settings(max_examples=40, deadline=None)
@given(pieces=st.lists(st.sampled_from(_PIECES), max_size=60), repeat=st.sampled_from([1, 3, 5000]))
def test_long_escaped_strings_read_as_short_ones(pieces, repeat):
    """Past ESCAPES_PER_MATCH escapes a string is read piece by piece: the same bytes come out."""
    from starcompactor.dump.values import ESCAPES_PER_MATCH

    raw = b"".join(pieces) * repeat
    want = _reference_unescape(raw)
    assert unescape(raw) == want
    assert list(iter_rows(b"(1,'" + raw + b"',_binary '" + raw + b"');")) == [[b"1", want, want]]
    if repeat == 5000 and raw.count(b"\\") > ESCAPES_PER_MATCH:
        assert list(iter_rows(b"('" + raw + b"')")) == [[want]]


_VALUES = st.one_of(
    st.none(),
    st.integers(-(2**63), 2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.binary(max_size=40),
    st.text(alphabet=st.sampled_from("a(),;'\"\\\n\r\x00% _é"), max_size=40),
)


def _literal(value) -> bytes:
    if value is None:
        return b"NULL"
    if isinstance(value, (int, float)):
        return repr(value).encode()
    if isinstance(value, bytes):
        return b"_binary '" + mysql_escape(value) + b"'" if value else b"0x"
    return b"'" + mysql_escape(value.encode()) + b"'"


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.lists(_VALUES, min_size=1, max_size=6), min_size=1, max_size=8),
    separator=st.sampled_from([b",", b",\n", b", "]),
)
def test_row_counter_agrees_with_the_tokenizer(rows, separator):
    """count_rows (no tokenizing: quotes and escapes only) against the full tokenizer."""
    from starcompactor.dump.values import count_rows

    body = separator.join(b"(" + b",".join(_literal(v) for v in row) + b")" for row in rows)
    statement = b"INSERT INTO `t` VALUES " + body + b";\n"
    offset = len(b"INSERT INTO `t` VALUES ")
    assert count_rows(statement, offset) == len(list(iter_rows(statement, offset))) == len(rows)
    with pytest.raises(TokenizeError):
        count_rows(statement[: -len(b");\n") - 1] + b"'", offset)


# -- the fast paths agree with the general rules -------------------------------------------------------

_JSON_PIECES = [
    b"a",
    b"\\\\",
    b"\\0",
    b'\\"',
    b"\\'",
    b"\\n",
    b"\\r",
    b"\\t",
    b"\\",
    b"\xc3\xa9",
    b"\x00",
    b"0",
    b"7",
    b"''",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_JSON_PIECES), max_size=40))
def test_unescape_of_json_like_strings_agrees_with_the_general_rule(pieces):
    """Strings whose escapes are those of JSON (in JSON) take the bytes-literal decoder: same bytes."""
    raw = b"".join(pieces)
    assert unescape(raw) == _reference_unescape(raw)


_ANY_PIECES = [b"a", b"\\", b"'", b"''", b"\\'", b'"', b",", b")", b"(", b" ", b"\n", b";", b"1", b"NULL"]


def _tokens(data: bytes):
    try:
        return list(iter_rows(data))
    except TokenizeError:
        return TokenizeError


@settings(max_examples=500, deadline=None)
@given(
    first=st.lists(st.sampled_from(_ANY_PIECES), max_size=16),
    rest=st.lists(st.sampled_from(_ANY_PIECES), max_size=8),
)
def test_string_end_by_search_agrees_with_the_regex(first, rest):
    """A string's end found by searching for its quote (a string right after ``(``) is the one the value
    regex finds (a space before the quote sends the same string down the regex): same tokens, same errors."""
    body = b"".join(first) + b"'" + b"".join(rest)
    assert _tokens(b"('" + body) == _tokens(b"( '" + body)
