"""Bulk reading of a streamed (unbuffered) text-protocol result set over a PyMySQL connection.

PyMySQL reads each row packet with two buffered-file reads, a ``struct.unpack``, a packet object and
three method calls per field: about 9 µs per row of the instance-event join on a 2-core machine, more
than everything else the pipeline does. :func:`stream_rows` takes over once PyMySQL has sent the query
and read the column definitions: it reads the socket in large pieces and cuts the row packets out of
them in one loop (MySQL client/server protocol: 3-byte length, 1-byte sequence id, then each field as a
length-encoded string, ``0xFB`` for NULL; ``0xFE`` with a short packet ends the result; ``0xFF`` is an
error). Values are converted with PyMySQL's own converters for the result's columns, by a parser
generated for those columns (:func:`packet_parser`). :func:`stream_chunks` and :func:`parse_chunk` are
the same split in two: whole row packets cut out in one process, decoded in another. The last columns
of a result can be read as one item made once per distinct content (:class:`SharedColumns`): the "one"
side of a join.

PyMySQL stays in charge of connecting, authentication, TLS and sending the query. When its internals do
not look as expected (another major version), or the first row decoded here differs from PyMySQL's own
decoding of the same packet, rows come from PyMySQL's ``fetchmany`` instead.
"""

from __future__ import annotations

import datetime as dt
import errno as errno_codes
import logging
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from ..errors import ProtocolError
from ..times import datetime_or_none

log = logging.getLogger(__name__)

#: Bytes asked of the socket per read.
READ_SIZE = 1 << 18

#: Rows per batch handed to the caller.
BATCH_ROWS = 4096

_MAX_PACKET = 0xFFFFFF
_DEPRECATE_EOF = 1 << 24  # CLIENT_DEPRECATE_EOF: the result would end with an OK packet instead

Converter = Tuple[Optional[str], Optional[Callable[[Any], Any]]]


def field_decoders(converters: Sequence[Converter]) -> List[Callable[[bytes], Any]]:
    """One function per column, bytes → value, equivalent to PyMySQL's (encoding, converter) pair.

    Integer and DATETIME converters take the raw bytes directly (``int(b"42")`` is valid), which
    saves the ASCII decode PyMySQL does first.
    """
    decoders: List[Callable[[bytes], Any]] = []
    for encoding, converter in converters:
        if converter is None:
            if encoding is None:
                decoders.append(bytes)
            else:
                decoders.append(_decode_with(encoding))
        elif converter is int and encoding == "ascii":
            decoders.append(int)
        elif converter is datetime_or_none or encoding is None:
            decoders.append(converter)
        else:
            decoders.append(_convert_after(encoding, converter))
    return decoders


def _decode_with(encoding: str) -> Callable[[bytes], str]:
    def decode(value: bytes) -> str:
        return value.decode(encoding)

    return decode


def _convert_after(encoding: str, converter: Callable[[str], Any]) -> Callable[[bytes], Any]:
    def convert(value: bytes) -> Any:
        return converter(value.decode(encoding))

    return convert


def decode_row(payload: bytes, decoders: Sequence[Callable[[bytes], Any]]) -> tuple:
    """One row packet's payload → tuple of values (any field length, NULLs)."""
    pos = 0
    row: List[Any] = []
    for decode in decoders:
        length = payload[pos]
        if length < 251:
            pos += 1
        elif length == 251:
            row.append(None)
            pos += 1
            continue
        elif length == 252:
            length = payload[pos + 1] | payload[pos + 2] << 8
            pos += 3
        elif length == 253:
            length = payload[pos + 1] | payload[pos + 2] << 8 | payload[pos + 3] << 16
            pos += 4
        else:
            length = int.from_bytes(payload[pos + 1 : pos + 9], "little")
            pos += 9
        row.append(decode(payload[pos : pos + length]))
        pos += length
    if pos != len(payload):
        raise ProtocolError(f"row packet has {len(payload) - pos} bytes after its {len(decoders)} fields")
    return tuple(row)


def _field_code(
    index: int, encoding: Optional[str], converter: Any, raw: str, text: Optional[str]
) -> Tuple[str, Dict[str, Any]]:
    """Python source converting one column's bytes ``raw`` (or their latin-1 ``text``) to ``v<index>``.

    ``text`` is given when the row is known to be ASCII: it then already is the decoded value of a text
    column.
    """
    if converter is None:
        if encoding is None:
            return f"v{index} = {raw}", {}
        return f"v{index} = {text or f'{raw}.decode({encoding!r})'}", {}
    if converter is int and encoding == "ascii":
        return f"v{index} = int({text or raw})", {}
    if converter is datetime_or_none:
        code = (
            f"try:\n    v{index} = fromisoformat({text or raw + '.decode(' + repr('ascii') + ')'})\n"
            f"except ValueError:\n    v{index} = None"
        )
        return code, {"fromisoformat": dt.datetime.fromisoformat}
    name = f"convert{index}"
    if encoding is None:
        return f"v{index} = {name}({raw})", {name: converter}
    return f"v{index} = {name}({text or f'{raw}.decode({encoding!r})'})", {name: converter}


def _ascii_row_code(
    converters: Sequence[Converter], shared_from: int, indent: str, namespace: Dict[str, Any]
) -> str:
    """Fields of an all-ASCII row: no NULL (0xFB) and no length of 128 or more can occur in it, so each
    field is one length byte and its bytes, with no branch."""
    lines = []
    for index, (encoding, converter) in enumerate(converters[:shared_from]):
        code, names = _field_code(index, encoding, converter, "buf[q:p]", "text[q:p]")
        namespace.update(names)
        lines.append(f"{indent}q = p + 1\n{indent}p = q + buf[p]\n")
        lines.append("".join(f"{indent}{line}\n" for line in code.splitlines()))
    if shared_from < len(converters):
        lines.append(_shared_code(shared_from, indent))
    return "".join(lines)


def _shared_code(shared_from: int, indent: str) -> str:
    """The last columns, to the end of the packet, as one key. Not walked here: their bytes are only
    decoded (and checked) when a new key is seen (:meth:`SharedColumns.__missing__`)."""
    return f"{indent}v{shared_from} = shared[text[p:end]]\n{indent}p = end\n"


def _general_row_code(
    converters: Sequence[Converter], shared_from: int, indent: str, namespace: Dict[str, Any]
) -> str:
    """Fields of any row with fields shorter than 251 bytes; NULLs allowed."""
    blocks = []
    shared = _shared_code(shared_from, indent) if shared_from < len(converters) else ""
    for index, (encoding, converter) in enumerate(converters[:shared_from]):
        code, names = _field_code(index, encoding, converter, "buf[p:p + n]", None)
        namespace.update(names)
        body = "".join(f"{indent}    {line}\n" for line in code.splitlines())
        blocks.append(
            f"{indent}n = buf[p]\n"
            f"{indent}if n < 251:\n"
            f"{indent}    p += 1\n"
            f"{body}"
            f"{indent}    p += n\n"
            f"{indent}elif n == 251:\n"
            f"{indent}    v{index} = None\n"
            f"{indent}    p += 1\n"
            f"{indent}else:\n"
            f"{indent}    return pos, seq, SPECIAL\n"
        )
    return "".join(blocks) + shared


#: What a packet parser stopped at (see :func:`packet_parser`).
MORE, SPECIAL = 0, 1


def packet_parser(
    converters: Sequence[Converter], shared_from: Optional[int] = None
) -> Callable[..., Tuple[int, int, int]]:
    """A function cutting row packets out of a buffer, written for one result's columns.

    ``parse(buf, text, pos, size, seq, append, shared) -> (pos, seq, status)``, where ``text`` is
    ``buf`` decoded as latin-1, appends a tuple per complete row packet whose fields are all shorter
    than 251 bytes; it stops with ``MORE`` at an incomplete packet, with ``SPECIAL`` at anything else
    (end of result, error, long field, 16 MB packet, bad sequence id), with ``pos`` and ``seq`` at that
    packet, for the caller to handle. With ``shared_from``, the columns from that index on are not
    decoded: the row's last item is ``shared[<their bytes as latin-1 text>]`` (see
    :class:`SharedColumns`).

    The loop is generated, one block per column, as :func:`collections.namedtuple` does: a loop over
    decoder functions costs twice as much. A row whose bytes are all ASCII (nearly every row of Nova)
    takes its text values as slices of ``text`` instead of decoding each field.
    """
    namespace: Dict[str, Any] = {}
    if shared_from is None or shared_from >= len(converters):
        shared_from = len(converters)
    ascii_blocks = _ascii_row_code(converters, shared_from, "            ", namespace)
    byte_blocks = _general_row_code(converters, shared_from, "            ", namespace)
    values = ", ".join(f"v{i}" for i in range(min(shared_from + 1, len(converters))))
    source = (
        "def parse(buf, text, pos, size, seq, append, shared=None):\n"
        "    while pos + 4 <= size:\n"
        "        length = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16\n"
        "        end = pos + 4 + length\n"
        "        if end > size:\n"
        "            return pos, seq, MORE\n"
        "        p = pos + 4\n"
        "        if buf[pos + 3] != seq or length == 0xFFFFFF:\n"
        "            return pos, seq, SPECIAL\n"
        "        if text[p:end].isascii():\n"  # so neither 0xFE (end of result) nor 0xFF (error)
        f"{ascii_blocks}"
        "        else:\n"
        "            if buf[p] in (0xFE, 0xFF):\n"
        "                return pos, seq, SPECIAL\n"
        f"{byte_blocks}"
        "        if p != end:\n"
        "            return pos, seq, SPECIAL\n"
        f"        append(({values},))\n"
        "        pos = end\n"
        "        seq = (seq + 1) & 0xFF\n"
        "    return pos, seq, MORE\n"
    )
    namespace.update(MORE=MORE, SPECIAL=SPECIAL)
    exec(compile(source, "<mysql_rows.packet_parser>", "exec"), namespace)  # noqa: S102 - our own text
    return namespace["parse"]


class SharedColumns(Dict[Any, Any]):
    """The last columns of a result, from index ``first`` on, turned into one value once per distinct
    content: the row's last item.

    In a join, the columns of the "one" side (an instance's uuid, name, owner, host, flavor) repeat on
    every row of the "many" side (its events). Cut out as one key (their bytes, as latin-1 text), they
    cost a row one slice and one lookup, and whatever is made of them (masked values, say) is made
    once per instance instead of once per event. ``make(values)`` turns their decoded values into the
    item. When ``limit`` contents are held, the memory starts over.
    """

    def __init__(self, first: int, make: Callable[[tuple], Any], limit: int = 1 << 16) -> None:
        super().__init__()
        self.first = first
        self.make = make
        self.limit = limit
        self._decoders: List[Callable[[bytes], Any]] = []

    def bind(self, converters: Sequence[Converter]) -> None:
        """Use the column converters of a result (those of columns ``first`` and after)."""
        self._decoders = field_decoders(converters[self.first :])

    def __missing__(self, key: Any) -> Any:
        # a tuple: the values of a row decoded in full; else their bytes as latin-1 text
        values = key if isinstance(key, tuple) else decode_row(key.encode("latin-1"), self._decoders)
        item = self.make(values)
        if len(self) >= self.limit:
            self.clear()
        self[key] = item
        return item

    def regroup(self, row: Sequence[Any]) -> tuple:
        """A row decoded in full → the shape the packet parser gives."""
        first = self.first
        return (*row[:first], self[tuple(row[first:])])


def _shaper(shared: Optional[SharedColumns]) -> Callable[[Sequence[Any]], tuple]:
    return tuple if shared is None else shared.regroup


def _ends_result(buf: bytes, pos: int, end: int) -> bool:
    """Whether the packet at ``buf[pos:end]`` is an EOF or an error packet (a row packet never starts
    with 0xFF, and one starting with 0xFE holds a field of 16 MB or more)."""
    if end - pos < 5:
        return False
    first = buf[pos + 4]
    return first == 0xFF or (first == 0xFE and end - pos - 4 < 9)


class ResultStream:
    """The rest of the current unbuffered result of a PyMySQL connection, in batches of row tuples.

    Build with :func:`stream_rows`; it has checked the preconditions. Reading raises PyMySQL's own
    exceptions (``OperationalError`` for a lost connection, the mapped class for an error packet), so
    callers handle one set of errors whichever path reads the rows.
    """

    def __init__(self, connection: Any, result: Any, shared: Optional[SharedColumns] = None) -> None:
        self._connection = connection
        self._result = result
        self._decoders = field_decoders(result.converters)
        self._parse = packet_parser(result.converters, shared.first if shared is not None else None)
        self._read = connection._rfile.read1
        self._seq = connection._next_seq_id
        self._shared = shared
        self._shape = _shaper(shared)

    def _more(self) -> bytes:
        import pymysql.err
        from pymysql.constants import CR

        while True:
            try:
                data = self._read(READ_SIZE)
                break
            except OSError as exc:
                if exc.errno == errno_codes.EINTR:
                    continue
                self._connection._force_close()
                raise pymysql.err.OperationalError(
                    CR.CR_SERVER_LOST, f"Lost connection to MySQL server during query ({exc})"
                ) from None
        if not data:
            self._connection._force_close()
            raise pymysql.err.OperationalError(
                CR.CR_SERVER_LOST, "Lost connection to MySQL server during query"
            )
        return data

    def _finish(self) -> None:
        result = self._result
        result.unbuffered_active = False
        result.connection = None
        result.rows = None
        self._connection._next_seq_id = self._seq

    def batches(self) -> Iterator[List[tuple]]:
        """Yield lists of decoded rows until the end of the result."""
        import pymysql.err

        parse = self._parse
        decoders = self._decoders
        shared = self._shared
        shape = self._shape
        buf = b""
        pos = 0
        seq = self._seq
        while True:
            data = self._more()
            buf = buf[pos:] + data if pos < len(buf) else data
            pos = 0
            text = buf.decode("latin-1")  # same offsets as buf: see packet_parser
            rows: List[tuple] = []
            append = rows.append
            while True:
                size = len(buf)
                pos, seq, status = parse(buf, text, pos, size, seq, append, shared)
                if status == MORE:
                    break
                # The packet at pos is not a plain row: see what it is.
                length = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
                if buf[pos + 3] != seq:
                    raise ProtocolError(f"packet sequence number {buf[pos + 3]}, expected {seq}")
                if length == _MAX_PACKET:
                    # A row of 16 MB or more spans several packets: gather it, then decode it.
                    payload, pos, seq, buf = self._long_packet(buf, pos, seq)
                    text = buf.decode("latin-1")
                    append(shape(decode_row(payload, decoders)))
                    continue
                end = pos + 4 + length
                payload = buf[pos + 4 : end]
                seq = (seq + 1) & 0xFF
                if _ends_result(buf, pos, end):
                    self._seq = seq
                    self._finish()
                    if rows:
                        yield rows
                    if payload[0] == 0xFF:
                        pymysql.err.raise_mysql_exception(payload)
                    return
                pos = end
                append(shape(decode_row(payload, decoders)))  # a field of 251 bytes or more
            if rows:
                yield rows

    def packet_chunks(self) -> Iterator[Tuple[Any, int]]:
        """The rest of the result as ``(chunk, seq)`` without decoding it, for decoding elsewhere.

        ``chunk`` is either bytes holding whole row packets (headers included; ``seq`` is the sequence
        id of the first, see :func:`parse_chunk`) or, for a row of 16 MB or more, a list with that row
        decoded. The end of the result and error packets are handled here, sequence ids checked.
        """
        import pymysql.err

        decoders = self._decoders
        buf = b""
        pos = 0
        seq = self._seq
        while True:
            data = self._more()
            buf = buf[pos:] + data if pos < len(buf) else data
            pos = start = 0
            start_seq = seq
            size = len(buf)
            last = -1  # the last complete packet
            while pos + 4 <= size:
                length = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
                end = pos + 4 + length
                if end > size:
                    break
                if buf[pos + 3] != seq:
                    raise ProtocolError(f"packet sequence number {buf[pos + 3]}, expected {seq}")
                if length == _MAX_PACKET:
                    if pos > start:
                        yield buf[start:pos], start_seq
                    payload, pos, seq, buf = self._long_packet(buf, pos, seq)
                    yield [self._shape(decode_row(payload, decoders))], seq
                    start, start_seq, size, last = pos, seq, len(buf), -1
                    continue
                seq = (seq + 1) & 0xFF
                last = pos
                pos = end
            # The result ends with an EOF or an error packet, after which the server sends nothing: only
            # the last complete packet can be one (parse_chunk rejects one anywhere else).
            if last >= start and _ends_result(buf, last, pos):
                if last > start:
                    yield buf[start:last], start_seq
                self._seq = seq
                self._finish()
                if buf[last + 4] == 0xFF:
                    pymysql.err.raise_mysql_exception(buf[last + 4 : pos])
                return
            if pos > start:
                yield buf[start:pos], start_seq

    def _long_packet(self, buf: bytes, pos: int, seq: int) -> Tuple[bytes, int, int, bytes]:
        """Concatenate a payload split over packets of 0xFFFFFF bytes; returns (payload, pos, seq, buf)."""
        parts = []
        while True:
            while len(buf) - pos < 4:
                buf = buf[pos:] + self._more()
                pos = 0
            length = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
            if buf[pos + 3] != seq:
                raise ProtocolError(f"packet sequence number {buf[pos + 3]}, expected {seq}")
            seq = (seq + 1) & 0xFF
            while len(buf) - pos < 4 + length:
                buf = buf[pos:] + self._more()
                pos = 0
            parts.append(buf[pos + 4 : pos + 4 + length])
            pos += 4 + length
            if length < _MAX_PACKET:
                return b"".join(parts), pos, seq, buf


@contextmanager
def _reading(connection: Any, result: Any) -> Iterator[None]:
    """Around reading a result past PyMySQL: protocol errors become PyMySQL's ``OperationalError``; a
    result left unfinished (abandoned, failed) closes the connection, because bytes of it sit in our
    buffer and PyMySQL could not read on from the socket."""
    import pymysql.err
    from pymysql.constants import CR

    try:
        yield
    except (ProtocolError, IndexError) as exc:
        raise pymysql.err.OperationalError(
            CR.CR_SERVER_LOST, f"MySQL protocol error in a result row: {exc}"
        ) from None
    finally:
        if result.unbuffered_active:
            result.unbuffered_active = False
            result.connection = None
            connection._force_close()


def stream_rows(
    cursor: Any, batch_rows: int = BATCH_ROWS, shared: Optional[SharedColumns] = None
) -> Iterator[List[tuple]]:
    """Batches of rows of ``cursor``'s current result (an executed PyMySQL ``SSCursor``).

    The first row is read by PyMySQL and compared with this module's decoding of the same packet; rows
    after it are read in bulk when they agree, through ``fetchmany`` otherwise. Abandoning the iterator
    before the end closes the connection instead of reading the rest of the result. With ``shared``,
    each row's columns from ``shared.first`` on come as one item (see :class:`SharedColumns`), whichever
    way the rows were read.
    """
    return _stream(cursor, batch_rows, ResultStream.batches, shared)


def stream_chunks(cursor: Any, batch_rows: int = BATCH_ROWS) -> Iterator[Tuple[Any, int]]:
    """Like :func:`stream_rows`, but rows after the first stay undecoded: ``(chunk, seq)`` pairs as
    :meth:`ResultStream.packet_chunks` gives them, to be decoded by :func:`parse_chunk` (in another
    process, say). Decoded batches (the first row; everything if PyMySQL's internals differ; a row of
    16 MB or more) come as ``(list of rows, 0)``, every column decoded."""
    for item in _stream(cursor, batch_rows, ResultStream.packet_chunks):
        yield (item, 0) if isinstance(item, list) else item


def _stream(
    cursor: Any,
    batch_rows: int,
    rest: Callable[[ResultStream], Iterator[Any]],
    shared: Optional[SharedColumns] = None,
) -> Iterator[Any]:
    """Decoded batches (lists) of the first row, or of everything through ``fetchmany`` when bulk reading
    does not apply; then ``rest`` of a :class:`ResultStream` over the remaining rows. With ``shared``,
    the decoded batches are regrouped as the stream's own rows are."""

    def decoded(rows: List[tuple]) -> List[tuple]:
        return rows if shared is None else [shared.regroup(row) for row in rows]

    decoders = _bulk_decoders(cursor)
    if decoders is None:
        yield from map(decoded, _fetchmany(cursor, batch_rows))
        return
    connection = cursor.connection
    result = cursor._result
    if shared is not None:
        shared.bind(result.converters)
    with _reading(connection, result):
        first = _first_row(result, decoders)
        if first is None:
            # The decoders disagree with PyMySQL's (or it was the end): PyMySQL reads on.
            row = result.rows[0] if result.rows else None
            if row is not None:
                yield decoded([row])
                yield from map(decoded, _fetchmany(cursor, batch_rows))
            return
        yield decoded([first])
        if result.unbuffered_active:
            yield from rest(ResultStream(connection, result, shared))


_PARSERS: Dict[
    Tuple[Tuple[Converter, ...], Optional[int]],
    Tuple[Callable[..., Tuple[int, int, int]], List[Callable[[bytes], Any]]],
] = {}


def parse_chunk(
    chunk: bytes, seq: int, converters: Sequence[Converter], shared: Optional[SharedColumns] = None
) -> List[tuple]:
    """The rows of a chunk of whole row packets from :meth:`ResultStream.packet_chunks` (shaped by
    ``shared`` as :func:`stream_rows` does)."""
    first = shared.first if shared is not None else None
    key = (tuple(converters), first)
    parser = _PARSERS.get(key)
    if parser is None:
        parser = _PARSERS[key] = (packet_parser(converters, first), field_decoders(converters))
    parse, decoders = parser
    if shared is not None:
        shared.bind(converters)
    shape = _shaper(shared)
    text = chunk.decode("latin-1")
    rows: List[tuple] = []
    append = rows.append
    pos, size = 0, len(chunk)
    while pos < size:
        pos, seq, status = parse(chunk, text, pos, size, seq, append, shared)
        if status == MORE:
            break
        # a row with a field of 251 bytes or more (the rest was sorted out by packet_chunks)
        end = pos + 4 + (chunk[pos] | chunk[pos + 1] << 8 | chunk[pos + 2] << 16)
        if _ends_result(chunk, pos, end) or chunk[pos + 3] != seq:
            raise ProtocolError("a chunk of row packets holds the end of a result or a sequence error")
        append(shape(decode_row(chunk[pos + 4 : end], decoders)))
        pos, seq = end, (seq + 1) & 0xFF
    if pos != size:
        raise ProtocolError(f"a chunk of row packets ends with {size - pos} bytes of a partial packet")
    return rows


def _bulk_decoders(cursor: Any) -> Optional[List[Callable[[bytes], Any]]]:
    """The column decoders when this PyMySQL exposes what bulk reading needs, else None."""
    result = getattr(cursor, "_result", None)
    connection = getattr(cursor, "connection", None)
    needed = (
        getattr(result, "unbuffered_active", False) is True
        and callable(getattr(result, "_read_row_from_packet", None))
        and callable(getattr(result, "_check_packet_is_eof", None))
        and callable(getattr(connection, "_read_packet", None))
        and callable(getattr(connection, "_force_close", None))
        and callable(getattr(getattr(connection, "_rfile", None), "read1", None))
        and isinstance(getattr(connection, "_next_seq_id", None), int)
        and isinstance(getattr(result, "converters", None), list)
        and not getattr(connection, "client_flag", 0) & _DEPRECATE_EOF
    )
    if not needed:
        log.debug("PyMySQL internals differ: reading rows with fetchmany")
        return None
    return field_decoders(result.converters)  # type: ignore[union-attr]


def _first_row(result: Any, decoders: List[Callable[[bytes], Any]]) -> Optional[tuple]:
    """Read one packet the PyMySQL way; return its row if our decoding agrees, else None (row kept in
    ``result.rows`` for the caller)."""
    packet = result.connection._read_packet()
    if result._check_packet_is_eof(packet):
        result.unbuffered_active = False
        result.connection = None
        result.rows = None
        return None
    payload = bytes(packet._data)
    theirs = result._read_row_from_packet(packet)
    result.rows = (theirs,)
    try:
        ours = decode_row(payload, decoders)
    except Exception:  # noqa: BLE001 - any disagreement means: use PyMySQL
        ours = None
    if ours is None or ours != theirs or [type(v) for v in ours] != [type(v) for v in theirs]:
        log.debug("bulk row decoding disagrees with PyMySQL on the first row: using fetchmany")
        return None
    return theirs


def _fetchmany(cursor: Any, batch_rows: int) -> Iterator[List[tuple]]:
    fetch = cursor.fetchmany
    while True:
        rows = fetch(batch_rows)
        if not rows:
            return
        yield list(rows)
